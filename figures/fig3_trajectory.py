"""Figure 3, trajectory on Γ: Φ(w̄_t) of GD+WD and the flow ζ, projected on the two leading principal
directions of the flow's path (centred at θ₀); and the distance ‖Φ(w̄_t) − ζ(s(t))‖ along the run for the flow's
clock (2ηλt = s + log(λ₁(ζ(0))/λ₁(ζ(s)))) and the naive clock (s = 2ηλt), which the path plot alone cannot tell
apart (both clocks put ζ on the same curve)."""

from __future__ import annotations

import numpy as np

from ._common import WIDE, eos_runs, model_and_start

NAME = "fig3_trajectory"
SIZE = WIDE
LR = 0.1


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import gdwd_steps, naive_gdwd_steps, s_at_steps, sharpness_reduction_flow

    model, theta0 = model_and_start("mf", seed)
    tau_end, eta_lambda = (0.3, 3e-4) if quick else (1.0, 1e-4)
    flow = sharpness_reduction_flow(model, theta0, s_end=2 * tau_end + 0.05, n_out=301)
    tr = eos_runs(model, theta0, LR, (eta_lambda,), tau_end, records=30 if quick else 60)[0]
    s = s_at_steps(flow, gdwd_steps(flow, LR, eta_lambda / LR), tr.steps)
    s_naive = s_at_steps(flow, naive_gdwd_steps(flow, LR, eta_lambda / LR), tr.steps)  # s = 2τ ≤ the horizon
    path = flow.theta[flow.s <= s_naive[-1] + 1e-12]
    _, _, vt = np.linalg.svd(path - theta0, full_matrices=False)
    basis = vt[:2].T
    return {"flow": (path - theta0) @ basis, "phi": (tr.phi - theta0) @ basis,
            "matched": (flow.at(s) - theta0) @ basis, "naive": (flow.at(s_naive) - theta0) @ basis,
            "error": np.linalg.norm(tr.phi - flow.at(s), axis=1),
            "naive_error": np.linalg.norm(tr.phi - flow.at(s_naive), axis=1), "tau": tr.tau,
            "eta_lambda": eta_lambda, "tau_end": tau_end, "s": s, "s_naive": s_naive}


def plot(d, fig):
    from matplotlib.ticker import MaxNLocator

    ax, ax2 = fig.subplots(1, 2)
    ax.plot(d["flow"][:, 0], d["flow"][:, 1], "k-", lw=0.8, label="flow ζ(s)")
    ax.plot(d["phi"][:, 0], d["phi"][:, 1], "o", ms=3, mfc="none", label="Φ(w̄_t), GD+WD")
    ax.plot(d["matched"][:, 0], d["matched"][:, 1], "k.", ms=2, label="ζ at the flow's clock")
    ax.plot(d["naive"][:, 0], d["naive"][:, 1], "x", ms=2.5, color="tab:red", label="ζ at the naive clock")
    ax.plot([0], [0], "k*", ms=6, label="θ₀")
    ax.set_xlabel("principal direction 1 of the flow path")
    ax.set_ylabel("principal direction 2")
    ax.set_title(f"mf: Φ(w̄_t) on Γ, ηλ = {float(d['eta_lambda']):g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(4))
    ax.legend(fontsize=5.5)
    tau = d["tau"]
    ax2.semilogy(tau[1:], d["error"][1:], "o-", ms=2.5, label="flow's clock (4/(4+G))")
    ax2.semilogy(tau[1:], d["naive_error"][1:], "x--", ms=3, color="tab:red", label="naive clock (s = 2ηλt)")
    ax2.set_xlabel("τ = ηλt")
    ax2.set_ylabel("‖Φ(w̄_t) − ζ(s(t))‖")
    ax2.set_title("distance from the flow point at each clock")
    ax2.legend(fontsize=6)


def caption(d) -> str:
    """Which clock keeps ζ on Φ(w̄_t) (``_claims.closer``) and whether the naive clock runs ahead
    (``_claims.ahead``), from the arrays."""
    from . import _claims

    closer = _claims.closer(d["error"], d["naive_error"], "ζ at the flow's clock", "ζ at the naive clock",
                            to="Φ(w̄_t)")
    ahead = _claims.ahead(d["s_naive"], d["s"], "the naive clock", "the flow's")
    return (f"The path of Φ(w̄_t) on Γ for `mf` (GD+WD, η = 0.1, ηλ = {float(d['eta_lambda']):g}, τ ≤ {float(d['tau_end']):g}) "
            "and of the flow, projected on the flow path's two principal directions (left), and the distance of "
            "Φ(w̄_t) from the flow point at each clock along the run (right). Both clocks place ζ on the same "
            f"curve; {closer}; {ahead}.")
