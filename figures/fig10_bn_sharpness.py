"""Figure 10, sharpness reduction on a real network: the spherical sharpness λ₁(∇²L(w̄_t)) = ‖w_t‖²λ₁(∇²L(w_t))
(docs/theory.md §1) of the BN MLP on scikit-learn's digits (``toy_models.bn_nets``) over τ = ηλt for GD+WD at
several ηλ (one η, one random start direction ū), and GD without WD on its own clock s = log(‖w_t‖²/‖w₀‖²)
(docs/theory.md §5).

GD+WD starts at ``RATIO`` × the edge-of-stability norm of ū (``theory.equilibrium_norm_sq``). GD without WD
starts from the direction of the first GD+WD run at its EoS entry (the first record with λ₁ at or above the
threshold), near Γ, rescaled to η_eff λ₁(∇²L(w̄)) = 2(1 + ε) (``theory.nowd_start_norm_sq``). λ₁ by Lanczos
on HVPs (``verification.compiled``), recorded with an odd stride and averaged over consecutive records
(opposite phases of the period-2 flip).
The flow's prediction (``theory.sharpness_reduction_flow``, matrix-free at this D) starts at Φ of the first run's
EoS entry and is drawn on the GD+WD clock τ - τ₀ = ½[s + log(λ₁(ζ(0))/λ₁(ζ(s)))] (``theory.gdwd_tau``) for as
long as it is defined: the flow needs a simple top eigenvalue, and on this network the top of the spectrum is a
cluster (docs/theory.md §9). It is integrated in pieces of FLOW_CHUNK in s and stops at the first piece in which
λ₁ - λ₂ falls below ``theory.manifold.GAP_RTOL``·λ₁; the caption states where. Squares: λ₁(Φ(w̄_t)) at
PHI_RECORDS records of the first run (Φ matrix-free). Flow and squares are computed in full mode only.
"""

from __future__ import annotations

import numpy as np

from ._common import WIDE, bn_init, bn_net, lam1, pair_mean

NAME = "fig10_bn_sharpness"
SIZE = WIDE
LR = 0.1
RATIO = 1.5
NOWD_EPS = 0.2
#: the flow is integrated in pieces of this length in s, up to the first piece where the gap closes
FLOW_CHUNK = 0.01
#: ... up to at most this s (each piece costs ~2 min at D = 15,360; on the digits MLP the gap closed at s ≈ 0.02)
FLOW_S_MAX = 0.05
#: its tolerance: a curve for the eye (the checks integrate at 1e-9)
FLOW_RTOL = 1e-6
#: λ₁(Φ(w̄_t)) is drawn at this many records of the first run, from its EoS entry to its end (one Φ: ~15 s)
PHI_RECORDS = 5
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
    for k, eta_lambda in enumerate(ladder):
        wd = eta_lambda / LR
        steps = int(round(tau_end / eta_lambda))
        w0 = u * np.sqrt(RATIO * equilibrium_norm_sq(LR, wd, lam_u))
        tr = simulate_batch(model, w0[None], LR, steps, wd=wd, every=_odd(steps // records), pairs=False,
                            keep_iterates=k == 0)[0]
        out[f"tau_{k}"], out[f"sph_{k}"] = tr.tau, tr.lam1 * tr.norm_sq
        out[f"loss_{k}"], out[f"above_{k}"] = tr.loss, tr.lam1 >= eos_threshold(LR, wd)
        out[f"rel_{k}"] = tr.lam1 / eos_threshold(LR, wd)
        if k == 0:
            iterates, i_entry = tr.iterates, int(np.argmax(out["above_0"]))
            entry = iterates[i_entry]
    if not quick:  # matrix-free flow on a network: minutes (a quick figure has a 2-minute budget for all figures)
        out.update(_flow_from(model, entry, float(out["tau_0"][i_entry]), FLOW_S_MAX))
        out.update(_phi_along(model, iterates, out["tau_0"], i_entry, float(out["tau_0"][-1]), PHI_RECORDS))
    start = entry / np.linalg.norm(entry) * np.sqrt(nowd_start_norm_sq(LR, lam1(model, entry) * (entry @ entry),
                                                                       NOWD_EPS))
    tr = simulate_batch(model, start[None], LR, nowd_steps, every=_odd(nowd_steps // records), pairs=False)[0]
    out["nowd_s"] = np.log(tr.norm_sq / tr.norm_sq[0])
    out["nowd_sph"], out["nowd_loss"], out["nowd_steps"] = tr.lam1 * tr.norm_sq, tr.loss, tr.steps
    out["nowd_lam"] = tr.lam1
    return out


def _flow_from(model, w, tau0: float, s_max: float) -> dict:
    """The flow from Φ(w̄) in pieces of FLOW_CHUNK until s_max or the first piece whose top eigenvalue loses its gap:
    ``flow_tau`` (τ₀ + τ(s)), ``flow_lam`` λ₁(ζ(s)), ``flow_gap_s`` (s where it stopped, nan if it did not) and the
    relative gap (λ₁ - λ₂)/λ₁ at the start, ``flow_gap0``."""
    from srflow.theory import AssumptionViolated, project_to_manifold, sharpness_reduction_flow
    from srflow.theory.sharpness import top_eigenpairs

    theta = project_to_manifold(model, w).theta
    eig = top_eigenpairs(model, theta, k=2, v0=np.ones(model.dim))  # a fixed Lanczos start (see _common.lam1)
    s_done, ss, lams, stop = 0.0, [0.0], [float(eig.values[0])], float("nan")
    while s_done < s_max - 1e-12:
        try:
            piece = sharpness_reduction_flow(model, theta, FLOW_CHUNK, n_out=3, rtol=FLOW_RTOL, atol=FLOW_RTOL * 1e-3)
        except AssumptionViolated:
            stop = s_done
            break
        ss += list(s_done + piece.s[1:])
        lams += list(piece.lam1[1:])
        theta, s_done = piece.theta[-1], s_done + FLOW_CHUNK
    ss, lams = np.array(ss), np.array(lams)
    return {"flow_s": ss, "flow_lam": lams, "flow_tau": tau0 + 0.5 * (ss + np.log(lams[0] / lams)),
            "flow_gap_s": stop, "flow_gap0": float(eig.gap / eig.values[0])}


def _phi_along(model, iterates, tau, first: int, tau_last: float, records: int) -> dict:
    """λ₁(Φ(w̄_t)) at up to ``records`` records of the first run from its EoS entry (record ``first``) to τ_last:
    what the flow predicts (its λ₁(ζ(s(τ)))), where the spherical sharpness at w̄_t also carries the O(a) offset
    of the iterate from Γ. ``phi_tau``, ``phi_lam``."""
    from srflow.theory import project_to_manifold
    from srflow.theory.sharpness import top_eigenpairs

    last = max(first, int(np.searchsorted(tau, tau_last, side="right")) - 1)
    idx = np.unique(np.linspace(first, last, records).astype(int))
    lams = []
    for i in idx:
        theta = project_to_manifold(model, iterates[i]).theta
        lams.append(float(top_eigenpairs(model, theta, k=1, v0=np.ones(model.dim)).values[0]))
    return {"phi_tau": np.asarray(tau)[idx], "phi_lam": np.array(lams)}


def entry_tau(d, k) -> float:
    """τ of the first record at or above the threshold 2(1 - ηλ)/η (the EoS entry; nan if never)."""
    above = d[f"above_{k}"]
    return float(d[f"tau_{k}"][int(np.argmax(above))]) if above.any() else float("nan")


def plot(d, fig):
    ax, ax2 = fig.subplots(1, 2)
    for k, eta_lambda in enumerate(d["ladder"]):
        line, = ax.plot(pair_mean(d[f"tau_{k}"]), pair_mean(d[f"sph_{k}"]), ls=("-", "--", ":")[k % 3],
                        label=f"GD+WD, ηλ = {eta_lambda:g}")
        ax.axvline(entry_tau(d, k), color=line.get_color(), lw=0.5, alpha=0.6)
    if "flow_lam" in d:
        ax.plot(d["flow_tau"], d["flow_lam"], "k-", lw=2.2, label="flow from Φ(entry), while λ₁ is simple")
        if np.isfinite(float(d["flow_gap_s"])):
            ax.plot(d["flow_tau"][-1], d["flow_lam"][-1], "kx", ms=8)
        ax.plot(d["phi_tau"], d["phi_lam"], "ks", ms=4, mfc="none",
                label=f"λ₁(Φ(w̄_t)), ηλ = {float(d['ladder'][0]):g}")
    ax.set_yscale("log")
    ax.set_xlabel("τ = ηλt")
    ax.set_ylabel("λ₁(∇²L(w̄_t)), record-pair mean")
    ax.set_title(f"BN MLP (D = {int(d['dim'])}), GD+WD (thin: EoS entry)")
    low = min(float(np.min(pair_mean(d[f"sph_{k}"]))) for k in range(len(d["ladder"])))
    ax.set_ylim(bottom=0.3 * low)  # room for the legend below the curves
    ax.legend(loc="lower left", fontsize="x-small")
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
    runs = "; ".join(f"ηλ = {eta_lambda:g}: EoS entry at τ = {entry_tau(d, k):.2f}, λ₁(w̄) {at_entry[k]:.4g} there and "
                     f"{finals[k]:.4g} at τ = {float(d['tau_end']):g} ({100 * (1 - finals[k] / at_entry[k]):.0f}% lower; "
                     f"λ₁(∇²L(w_t)) over the threshold 2(1-ηλ)/η, mean of the last quarter: {tail_rel(d, k):.3f})"
                     for k, eta_lambda in enumerate(d["ladder"]))
    return (f"Spherical sharpness λ₁(∇²L(w̄_t)) = ‖w_t‖²λ₁(∇²L(w_t)) of the BN MLP (D = {int(d['dim'])}, digits, "
            f"η = {float(d['lr']):g}, one random start at {float(d['ratio']):g}× the edge-of-stability norm), averaged "
            f"over consecutive records. Left, GD+WD over τ = ηλt: {runs}. For τ ≥ {start:.2f} "
            f"the curves of the {n} ηλ differ by at most {100 * spread:.1f}% relative at equal τ (the flow predicts "
            "one curve in τ, to leading order in ηλ)." + trend + " Right, GD without WD from the direction of the ηλ = "
            f"{float(d['ladder'][0]):g} run at its EoS entry, on its clock s: λ₁(w̄) goes from "
            f"{float(d['nowd_sph'][0]):.4g} to {float(nowd[-1]):.4g} while log‖w‖² grows by {float(d['nowd_s'][-1]):.3f} in "
            f"{int(d['nowd_steps'][-1])} steps (training loss {float(d['nowd_loss'][-1]):.1e}); η_eff·λ₁ = ηλ₁(∇²L(w_t)) "
            f"goes from {float(d['lr'] * d['nowd_lam'][0]):.3f} to {float(d['lr'] * pair_mean(d['nowd_lam'])[-1]):.3f} "
            "(the edge of stability is 2). " + flow_sentence(d))


def flow_sentence(d) -> str:
    """What the flow's curve shows, from the data: how far it is defined, how λ₁ changes along it, and λ₁(Φ(w̄_t))."""
    if "flow_lam" not in d:
        return ("Quick mode: the flow's curve and λ₁(Φ(w̄_t)) are drawn in the full figure only (the matrix-free flow "
                "takes minutes on a network).")
    flow_lam1, tau = d["flow_lam"], d["flow_tau"]
    text = (f"Black: the sharpness-reduction flow from Φ of the ηλ = {float(d['ladder'][0]):g} run's EoS entry "
            f"(λ₁ = {float(flow_lam1[0]):.4g}, relative gap (λ₁ - λ₂)/λ₁ = {float(d['flow_gap0']):.2g} there), on the GD+WD "
            "clock τ(s)")
    if not np.isfinite(float(d["flow_gap_s"])):
        text += f": λ₁ goes to {float(flow_lam1[-1]):.4g} by τ = {float(tau[-1]):.3g} (s = {float(d['flow_s'][-1]):.3g})."
    elif len(flow_lam1) < 2:
        text += (f": its top eigenvalue loses its gap within the first Δs = {FLOW_CHUNK:g}, so the flow, which needs a "
                 "simple λ₁, is not drawn beyond its start.")
    else:
        text += (f": it is defined up to s = {float(d['flow_gap_s']):.3g} (τ = {float(tau[-1]):.3g}, ×), where λ₁ "
                 f"({float(flow_lam1[-1]):.4g}, {100 * (1 - float(flow_lam1[-1]) / float(flow_lam1[0])):.1f}% below the start) meets λ₂: a "
                 "simple top eigenvalue is an assumption of the theorem, and the reduction GD+WD keeps making beyond "
                 "it is outside its statement (docs/theory.md §9).")
    return text + (f" Squares: λ₁(Φ(w̄_t)) of that run, from {float(d['phi_lam'][0]):.4g} at τ = "
                   f"{float(d['phi_tau'][0]):.3g} to {float(d['phi_lam'][-1]):.4g} at τ = {float(d['phi_tau'][-1]):.3g}; "
                   "the spherical sharpness at w̄_t differs from it by the iterate's offset from Γ, which at these ηλ "
                   "is not small on the scale on which λ₁ varies (docs/theory.md §9).")
