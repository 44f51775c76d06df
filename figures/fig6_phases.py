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
            "eta_lambda": eta_lambda, "lr": lr}


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
    """The three phases as measured (``_claims``): the loss's fall in phase 1, the norm's decay rate in phase 2
    against ``theory.norm_decay_rate`` and ηλ₁'s rise, the entry step against the prediction within eos-entry's
    tolerance ENTRY_LOG_RTOL/(2ηλ) steps."""
    from srflow.verification.tolerances import ENTRY_LOG_RTOL, ON_GAMMA_RTOL_MAX

    from . import _claims

    eta_lambda, lr = float(d["eta_lambda"]), float(d.get("lr", 0.1))
    steps, on_gamma, observed = d["steps"], int(d["on_gamma"]), float(d["observed"])
    i, j = int(np.searchsorted(steps, on_gamma)), int(np.searchsorted(steps, observed)) - 1
    loss = _claims.change(d["loss"][:i + 1], "the loss")
    decay = _claims.norm_decay(steps, d["norm_sq"], on_gamma, observed, lr, eta_lambda, ON_GAMMA_RTOL_MAX)
    rise = _claims.change(d["eta_sharp"][i:j + 1], "ηλ₁(∇²L(w_t))")
    entry = _claims.within(observed, float(d["predicted"]), ENTRY_LOG_RTOL / (2 * eta_lambda), "EoS begins",
                           " steps")
    return (f"One run of GD+WD on `bn_linear` (η = {lr:g}, ηλ = {eta_lambda:g}). Phase 1: {loss} until the run is on Γ "
            f"(step {on_gamma}: ‖∇L‖ ≤ {ON_GAMMA_RTOL_MAX:g}·λ₁‖w‖); phase 2: {decay}, and {rise}; phase 3: {entry} (the interpolated "
            "crossing of 2(1−ηλ), predicted from the state on Γ by `theory.phase2_duration`; tolerance "
            f"{ENTRY_LOG_RTOL:g}/(2ηλ) steps, as in the eos-entry check).")
