"""Figure 6, phases: one GD+WD run from a random start through its three phases (converge to Γ; weight
decay shrinks the norm; edge of stability), with the phase markers and the predicted EoS entry step."""

from __future__ import annotations

import numpy as np

from ._common import WIDE, phases_run

NAME = "fig6_phases"
SIZE = WIDE


def compute(quick: bool, seed: int) -> dict:
    dense, phi, ph, predicted, lr, eta_lambda = phases_run(quick, seed)
    return {"steps": dense.steps, "loss": dense.loss, "eta_sharp": lr * dense.lam1, "norm_sq": dense.norm_sq,
            "on_gamma": ph["on-gamma"], "eos": ph["eos"], "observed": dense.crossing(ph["eos"]), "predicted": predicted,
            "lr": lr, "eta_lambda": eta_lambda}


def plot(d, fig):
    from srflow.theory import eos_lr_sharpness

    axes = fig.subplots(1, 3)
    for ax, key, label, log in zip(axes, ("loss", "eta_sharp", "norm_sq"), ("training loss", "η λ₁(∇²L(w_t))", "‖w_t‖²"),
                                   (True, False, True)):
        (ax.semilogy if log else ax.plot)(d["steps"], d[key], lw=0.5)
        ax.axvline(float(d["on_gamma"]), color="tab:green", ls=":", lw=0.8, label="on Γ (‖∇L‖ ≤ 1e-6 λ₁‖w‖)")
        ax.axvline(float(d["predicted"]), color="tab:red", ls="--", lw=0.8, label="predicted EoS entry")
        ax.set_xlabel("step t")
        ax.set_ylabel(label)
    axes[1].axhline(eos_lr_sharpness(float(d["eta_lambda"])), color="k", lw=0.5)
    axes[0].legend()
    fig.suptitle("bn_linear, GD+WD from a random start: phase 1 (to Γ), 2 (norm decay), 3 (EoS)", fontsize=8)


def caption(d) -> str:
    return (f"One run of GD+WD on `bn_linear` (η = {float(d['lr']):g}, ηλ = {float(d['eta_lambda']):g}). Phase 1: the loss falls until the run is on Γ "
            f"(step {int(d['on_gamma'])}); phase 2: the norm decays as (1−ηλ)^(2t) and ηλ₁(∇²L(w_t)) rises; phase 3: "
            f"EoS from step {float(d['observed']):.2f} (interpolated crossing of 2(1−ηλ)), predicted "
            f"{float(d['predicted']):.2f} from the state on Γ.")
