"""Figure 10, sharpness reduction on a real network: the spherical sharpness λ₁(∇²L(w̄_t)) = ‖w_t‖²λ₁(∇²L(w_t))
(docs/theory.md §1) of the BN MLP on scikit-learn's digits (``toy_models.bn_nets``) over τ = ηλt for GD+WD at
several ηλ (one η, one random start direction ū), and GD without WD on its own clock s = log(‖w_t‖²/‖w₀‖²)
(docs/theory.md §5).

GD+WD starts at ``RATIO`` × the edge-of-stability norm of ū (``theory.equilibrium_norm_sq``). GD without WD
starts from the direction of the first GD+WD run at its EoS entry (the first record with λ₁ at or above the
threshold), near Γ, rescaled to η_eff λ₁(∇²L(w̄)) = 2(1 + ε) (``theory.nowd_start_norm_sq``). λ₁ by Lanczos
on HVPs (``verification.compiled``), recorded with an odd stride and averaged over consecutive records
(opposite phases of the period-2 flip).
The flow's prediction is not drawn: ``theory.sharpness_reduction_flow`` is dense (D ≤ 2048 for a JAX model) and
its rank test of Γ failed on the smaller BN MLPs tried (D = 576 to 2048); see ``caption``.
"""

from __future__ import annotations

import numpy as np

from ._common import WIDE, bn_init, bn_net, lam1, pair_mean

NAME = "fig10_bn_sharpness"
SIZE = WIDE
LR = 0.1
RATIO = 1.5
NOWD_EPS = 0.2
SIZES = {True: {"widths": (32, 32), "n_train": 64}, False: {}}


def _settings(quick: bool):
    """(ladder of ηλ, τ horizon, records per run (odd stride), GD-without-WD steps)."""
    return ((4e-3, 2e-3), 2.0, 25, 400) if quick else ((4e-3, 2e-3, 1e-3), 3.0, 60, 800)


def _odd(n: int) -> int:
    return n + 1 - n % 2


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import equilibrium_norm_sq, eos_threshold, nowd_start_norm_sq
    from srflow.verification.compiled import simulate_batch

    model = bn_net("bn_mlp", **SIZES[quick])
    ladder, tau_end, records, nowd_steps = _settings(quick)
    u = bn_init(model, seed)
    u = u / np.linalg.norm(u)
    lam_u = lam1(model, u)
    out = {"ladder": np.array(ladder), "dim": model.dim, "lr": LR, "ratio": RATIO, "tau_end": tau_end,
           "nowd_eps": NOWD_EPS}
    for k, wd_lr in enumerate(ladder):
        wd = wd_lr / LR
        steps = int(round(tau_end / wd_lr))
        w0 = u * np.sqrt(RATIO * equilibrium_norm_sq(LR, wd, lam_u))
        tr = simulate_batch(model, w0[None], LR, steps, wd=wd, every=_odd(steps // records), pairs=False,
                            keep_iterates=k == 0)[0]
        out[f"tau_{k}"], out[f"sph_{k}"] = tr.tau, tr.sharpness * tr.norm_sq
        out[f"loss_{k}"], out[f"above_{k}"] = tr.loss, tr.sharpness >= eos_threshold(LR, wd)
        out[f"rel_{k}"] = tr.sharpness / eos_threshold(LR, wd)
        if k == 0:
            entry = tr.iterates[int(np.argmax(out["above_0"]))]
    start = entry / np.linalg.norm(entry) * np.sqrt(nowd_start_norm_sq(LR, lam1(model, entry) * (entry @ entry),
                                                                       NOWD_EPS))
    tr = simulate_batch(model, start[None], LR, nowd_steps, every=_odd(nowd_steps // records), pairs=False)[0]
    out["nowd_s"] = np.log(tr.norm_sq / tr.norm_sq[0])
    out["nowd_sph"], out["nowd_loss"], out["nowd_steps"] = tr.sharpness * tr.norm_sq, tr.loss, tr.steps
    out["nowd_lam"] = tr.sharpness
    return out


def entry_tau(d, k) -> float:
    """τ of the first record at or above the threshold 2(1 - ηλ)/η (the EoS entry; nan if never)."""
    above = d[f"above_{k}"]
    return float(d[f"tau_{k}"][int(np.argmax(above))]) if above.any() else float("nan")


def plot(d, fig):
    ax, ax2 = fig.subplots(1, 2)
    for k, lw in enumerate(d["ladder"]):
        line, = ax.plot(pair_mean(d[f"tau_{k}"]), pair_mean(d[f"sph_{k}"]), ls=("-", "--", ":")[k % 3],
                        label=f"GD+WD, ηλ = {lw:g}")
        ax.axvline(entry_tau(d, k), color=line.get_color(), lw=0.5, alpha=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("τ = ηλt")
    ax.set_ylabel("λ₁(∇²L(w̄_t)), record-pair mean")
    ax.set_title(f"BN MLP (D = {int(d['dim'])}), GD+WD (thin: EoS entry)")
    ax.legend()
    ax2.plot(pair_mean(d["nowd_s"]), pair_mean(d["nowd_sph"]), "^-", ms=2, lw=0.6, color="gray",
             label="GD, no WD")
    ax2.set_yscale("log")
    ax2.set_xlabel("s = log(‖w_t‖²/‖w₀‖²), GD without WD")
    ax2.set_ylabel("λ₁(∇²L(w̄_t)), record-pair mean")
    ax2.set_title(f"GD without WD, from η_eff λ₁ = 2(1+{float(d['nowd_eps']):g})")
    ax2.legend()


def tail_rel(d, k) -> float:
    """The mean of λ₁(∇²L(w_t))/(2(1 - ηλ)/η) over the last quarter of the records of run k."""
    r = d[f"rel_{k}"]
    return float(np.mean(r[-max(2, len(r) // 4):]))


def caption(d) -> str:
    n = len(d["ladder"])
    finals = [float(pair_mean(d[f"sph_{k}"])[-1]) for k in range(n)]
    # the collapse in τ: the largest relative spread between the ηλ at equal τ over the second half of the time
    # after the last EoS entry (the entry itself overshoots, differently at each ηλ)
    start = max(entry_tau(d, k) for k in range(n))
    start = 0.5 * (start + float(d["tau_end"]))
    grid = np.linspace(start, float(d["tau_end"]), 50)
    curves = np.array([np.interp(grid, pair_mean(d[f"tau_{k}"]), pair_mean(d[f"sph_{k}"])) for k in range(n)])
    spread = float(np.max((curves.max(axis=0) - curves.min(axis=0)) / curves.min(axis=0)))
    at_entry = [float(np.interp(entry_tau(d, k), pair_mean(d[f"tau_{k}"]), pair_mean(d[f"sph_{k}"])))
                for k in range(n)]
    nowd = pair_mean(d["nowd_sph"])
    excess = np.array([tail_rel(d, k) - 1 for k in range(n)])
    trend = ""
    if n >= 2 and np.all(excess > 0):
        p = np.polyfit(np.log(d["ladder"]), np.log(excess), 1)[0]
        trend = (f" The excess of λ₁(∇²L(w_t)) over the threshold {'shrinks' if p > 0 else 'does not shrink'} with ηλ "
                 f"(least-squares exponent {p:.2f} in ηλ).")
    runs = "; ".join(f"ηλ = {lw:g}: EoS entry at τ = {entry_tau(d, k):.2f}, λ₁(w̄) {at_entry[k]:.4g} there and "
                     f"{finals[k]:.4g} at τ = {float(d['tau_end']):g} ({100 * (1 - finals[k] / at_entry[k]):.0f}% lower; "
                     f"λ₁(∇²L(w_t)) over the threshold 2(1-ηλ)/η, mean of the last quarter: {tail_rel(d, k):.3f})"
                     for k, lw in enumerate(d["ladder"]))
    return (f"Spherical sharpness λ₁(∇²L(w̄_t)) = ‖w_t‖²λ₁(∇²L(w_t)) of the BN MLP (D = {int(d['dim'])}, digits, "
            f"η = {float(d['lr']):g}, one random start at {float(d['ratio']):g}× the edge-of-stability norm), averaged "
            f"over consecutive records. Left, GD+WD over τ = ηλt: {runs}. For τ ≥ {start:.2f} "
            f"the curves of the {n} ηλ differ by at most {100 * spread:.1f}% relative at equal τ (the flow predicts "
            "one curve in τ, to leading order in ηλ)." + trend + " Right, GD without WD from the direction of the ηλ = "
            f"{float(d['ladder'][0]):g} run at its EoS entry, on its clock s: λ₁(w̄) goes from "
            f"{float(d['nowd_sph'][0]):.4g} to {float(nowd[-1]):.4g} while log‖w‖² grows by {float(d['nowd_s'][-1]):.3f} in "
            f"{int(d['nowd_steps'][-1])} steps (training loss {float(d['nowd_loss'][-1]):.1e}); η_eff·λ₁ = ηλ₁(∇²L(w_t)) "
            f"goes from {float(d['lr'] * d['nowd_lam'][0]):.3f} to {float(d['lr'] * pair_mean(d['nowd_lam'])[-1]):.3f} "
            "(the edge of stability is 2). Not drawn: the flow's own curve from the EoS entry. "
            "`theory.sharpness_reduction_flow` works with dense Hessians (a JAX model builds them up to D = 2048) "
            "and tests the rank of Γ (∇²L's kernel of dimension dim Γ + 1 at tolerance 1e-6·λ₁); on the smaller BN "
            "MLPs tried (D = 576 to 2048) that test failed at points of Γ, so no flow is drawn on this network.")
