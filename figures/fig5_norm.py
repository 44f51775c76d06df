"""Figure 5, norm: ‖w_t‖² against the predicted equilibrium η·λ₁(Φ(w̄_t))/(2(1-ηλ)) over one run from a
random start."""

from __future__ import annotations

import numpy as np

from ._common import COLUMN, phases_run

NAME = "fig5_norm"
SIZE = COLUMN


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import equilibrium_norm_sq

    dense, phi, ph, predicted, lr, wd_lr = phases_run(quick, seed)
    return {"steps": dense.steps, "norm_sq": dense.norm_sq, "phi_steps": phi.steps,
            "pred": equilibrium_norm_sq(lr, wd_lr / lr, phi.phi_sharpness), "eos": predicted, "lr": lr,
            "wd_lr": wd_lr, "on_gamma": ph["on-gamma"]}


def plot(d, fig):
    ax = fig.subplots()
    ax.semilogy(d["steps"], d["norm_sq"], lw=0.7, label="‖w_t‖²")
    ax.semilogy(d["phi_steps"], d["pred"], "k--", label="η λ₁(Φ(w̄_t)) / (2(1−ηλ))")
    ax.axvline(float(d["eos"]), color="gray", lw=0.6, ls=":", label="predicted EoS entry")
    ax.set_xlabel("step t")
    ax.set_ylabel("squared norm")
    ax.set_title(f"bn_linear: norm at equilibrium, ηλ = {float(d['wd_lr']):g}")
    ax.legend()


def caption(d) -> str:
    """What the panel shows, as measured (``_claims``): the decay rate on Γ before the predicted entry against
    ``theory.norm_decay_rate``; whether ‖w_t‖² tracks the prediction over the second half of phase 3; the ratio's
    range over its first half (the entry transient)."""
    from srflow.verification.tolerances import ON_GAMMA_RTOL_MAX

    from . import _claims

    eos, last = float(d["eos"]), float(d["steps"][-1])
    decay = _claims.norm_decay(d["steps"], d["norm_sq"], float(d["on_gamma"]), eos, float(d["lr"]),
                               float(d["wd_lr"]), ON_GAMMA_RTOL_MAX)
    ratio = np.interp(d["phi_steps"], d["steps"], d["norm_sq"]) / d["pred"]
    late, early = d["phi_steps"] > 0.5 * (eos + last), (d["phi_steps"] >= eos) & (d["phi_steps"] <= 0.5 * (eos + last))
    observed = np.interp(d["phi_steps"][late], d["steps"], d["norm_sq"])
    track = _claims.tracks(observed, d["pred"][late], "‖w_t‖²", "the prediction")
    transient = (f"; over the first half of phase 3 (from the entry) the ratio lies in [{ratio[early].min():.3f}, "
                 f"{ratio[early].max():.3f}]" if early.any() else "")
    mantissa, exponent = f"{float(d['wd_lr']):.0e}".split("e")  # ηλ as 1e-3
    return (f"‖w_t‖² for GD+WD on `bn_linear` (η = {float(d['lr']):g}, ηλ = {mantissa}e{int(exponent)}) from a random "
            f"start at 5× the EoS norm, with the predicted equilibrium η λ₁(Φ(w̄_t))/(2(1−ηλ)) (dashed, "
            f"`theory.equilibrium_norm_sq`) and the predicted entry step (dotted). On Γ before the entry, {decay}. "
            f"Over the second half of phase 3, {track}{transient}.")
