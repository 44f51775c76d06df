"""Figure 5, norm: ‖w_t‖² against the predicted equilibrium η·λ₁(Φ(w̄_t))/(2(1-ηλ)) over one run from a
random start."""

from __future__ import annotations

import numpy as np

from ._common import COLUMN, phases_run

NAME = "fig5_norm"
SIZE = COLUMN


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import equilibrium_norm_sq

    dense, phi, ph, predicted, lr, eta_lambda = phases_run(quick, seed)
    pred = np.full(len(phi.steps), np.nan)  # NaN where Φ was not found
    found = np.isfinite(phi.phi_lam1)
    pred[found] = equilibrium_norm_sq(lr, eta_lambda / lr, phi.phi_lam1[found])
    return {"steps": dense.steps, "norm_sq": dense.norm_sq, "phi_steps": phi.steps,
            "pred": pred, "eos": predicted, "lr": lr, "eta_lambda": eta_lambda,
            "on_gamma": ph["on-gamma"]}


def plot(d, fig):
    ax = fig.subplots()
    ax.semilogy(d["steps"], d["norm_sq"], lw=0.7, label="‖w_t‖²")
    ax.semilogy(d["phi_steps"], d["pred"], "k--", label="η λ₁(Φ(w̄_t)) / (2(1−ηλ))")
    ax.axvline(float(d["eos"]), color="gray", lw=0.6, ls=":", label="predicted EoS entry")
    ax.set_xlabel("step t")
    ax.set_ylabel("squared norm")
    ax.set_title(f"bn_linear: norm at equilibrium, ηλ = {float(d['eta_lambda']):g}")
    ax.legend()


def caption(d) -> str:
    """What the panel shows, as measured (``_claims``): the decay rate on Γ before the predicted entry against
    ``theory.norm_decay_rate``; whether ‖w_t‖² tracks the prediction over the second half of phase 3; the ratio's
    range over its first half (the entry transient)."""
    from srflow.verification.tolerances import ON_GAMMA_RTOL_MAX

    from . import _claims

    eos, last = float(d["eos"]), float(d["steps"][-1])
    decay = _claims.norm_decay(d["steps"], d["norm_sq"], float(d["on_gamma"]), eos, float(d["lr"]),
                               float(d["eta_lambda"]), ON_GAMMA_RTOL_MAX)
    ratio = np.interp(d["phi_steps"], d["steps"], d["norm_sq"]) / d["pred"]
    found = np.isfinite(d["pred"])  # NaN where Φ was not found
    late = found & (d["phi_steps"] > 0.5 * (eos + last))
    early = found & (d["phi_steps"] >= eos) & (d["phi_steps"] <= 0.5 * (eos + last))
    observed = np.interp(d["phi_steps"][late], d["steps"], d["norm_sq"])
    track = _claims.tracks(observed, d["pred"][late], "‖w_t‖²", "the prediction")
    transient = (f"; over the first half of phase 3 (from the entry) the ratio lies in [{np.nanmin(ratio[early]):.3f}, "
                 f"{np.nanmax(ratio[early]):.3f}]" if early.any() else "")
    mantissa, exponent = f"{float(d['eta_lambda']):.0e}".split("e")  # ηλ as 1e-3
    return (f"‖w_t‖² for GD+WD on `bn_linear` (η = {float(d['lr']):g}, ηλ = {mantissa}e{int(exponent)}) from a random "
            f"start at 5× the EoS norm, with the predicted equilibrium η λ₁(Φ(w̄_t))/(2(1−ηλ)) (dashed, "
            f"`theory.equilibrium_norm_sq`) and the predicted entry step (dotted). On Γ before the entry, {decay}. "
            f"Over the second half of phase 3, {track}{transient}.")
