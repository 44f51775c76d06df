"""Figure 7, generalization: matrix completion with batch normalization (``toy_models.completion``, the paper's
"matrix completion with BN" in miniature; why it is scale-invariant and what its sharpness measures:
docs/theory.md §7).

Protocol, per seed (a new target, mask and random start w₀ for each): the same η (ηλ₁(∇²L(w₀)) = 1) for
GD without WD and GD+WD at each ηλ of the ladder, GD+WD to the same τ = ηλt, GD without WD for as many steps as
the longest WD run. Every run is then **trained to the same training loss** by projecting its last iterate
with gradient flow, Φ(w̄_T) (``theory.project_to_manifold``; the loss there is at round-off), and compared there: held-out relative error and spherical sharpness λ₁(∇²L(Φ)). Φ(w₀) (gradient
flow from the start, the η → 0 limit of GD without WD) is the reference column.
"""

from __future__ import annotations

import numpy as np

NAME = "fig7_generalization"
SIZE = (7.0, 2.8)
TASK = {"size": 20, "rank": 3, "target_rank": 2, "observed": 0.5}
SEEDS = 10
NOWD_TAU_LW = 1e-3  # GD without WD runs as many steps as GD+WD at this ηλ


def _settings(quick: bool):
    """(ladder of ηλ, τ horizon)."""
    return ((1e-2, 3e-3), 1.0) if quick else ((1e-2, 3e-3, 1e-3), 3.0)


def compute(quick: bool, seed: int) -> dict:
    from theory import project_to_manifold, spherical_sharpness
    from toy_models.completion import bn_completion
    from verification.simulate import simulate

    ladder, tau_end = _settings(quick)
    wd_lrs = (0.0,) + ladder  # column 0 of the runs: GD without WD
    err = np.zeros((len(wd_lrs) + 1, SEEDS))  # row 0: Φ(w₀), then one row per run kind
    sharp, loss = np.zeros_like(err), np.zeros_like(err)
    for k in range(SEEDS):
        task = bn_completion(np.random.default_rng([seed, k]), **TASK)
        w0 = np.random.default_rng([seed, k, 1]).standard_normal(task.dim)
        w0 /= np.linalg.norm(w0)
        lr = 1.0 / float(np.linalg.eigvalsh(task.hess(w0))[-1])
        finals = [w0]
        for wd_lr in wd_lrs:
            steps = int(round(tau_end / (wd_lr or min(ladder))))
            finals.append(simulate(task, w0, lr, steps, wd=wd_lr / lr, every=steps, pairs=False).w_last)
        for row, w in enumerate(finals):
            theta = project_to_manifold(task, w).theta
            err[row, k], loss[row, k] = task.heldout_error(theta), task.loss(theta)
            sharp[row, k] = spherical_sharpness(task, theta)
    return {"wd_lrs": np.array(wd_lrs), "tau_end": tau_end, "err": err, "sharp": sharp, "loss": loss}


def _labels(d) -> list[str]:
    return ["gradient flow\nfrom w₀"] + ["GD, no WD" if lw == 0 else f"GD+WD\nηλ = {lw:g}" for lw in d["wd_lrs"]]


def _ci(x) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t confidence interval."""
    from scipy.stats import t

    return float(np.mean(x)), float(t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x)))


def _spearman(d):
    """Spearman rank correlation of spherical sharpness and held-out error over the trained runs (rows ≥ 1)."""
    from scipy.stats import spearmanr

    res = spearmanr(d["sharp"][1:].ravel(), d["err"][1:].ravel())
    return float(res.statistic), float(res.pvalue)


def plot(d, fig):
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    labels, colors = _labels(d), ["0.5", "tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red"]
    jitter = np.linspace(-0.15, 0.15, d["err"].shape[1])
    for row, label in enumerate(labels):
        mean, half = _ci(d["err"][row])
        ax1.plot(row + jitter, d["err"][row], "o", ms=2.5, mfc="none", color=colors[row])
        ax1.errorbar(row + 0.3, mean, yerr=half, fmt="s", ms=3.5, capsize=2, color=colors[row])
    ax1.axhline(0.1, color="k", ls=":", lw=0.7)
    ax1.set_xticks(range(len(labels)), labels, fontsize=6)
    ax1.set_ylabel("held-out relative error at Φ(w̄_T)")
    ax1.set_ylim(bottom=0)
    ax1.set_title(f"{d['err'].shape[1]} seeds, τ = {float(d['tau_end']):g}: runs (o), mean ± 95% CI (■)")
    for row, label in enumerate(labels[1:], start=1):
        ax2.plot(d["sharp"][row], d["err"][row], "o", ms=3, color=colors[row], label=label.replace("\n", " "))
    rho, p = _spearman(d)
    ax2.set_xlabel("spherical sharpness λ₁(∇²L(Φ(w̄_T)))")
    ax2.set_ylabel("held-out relative error")
    ax2.set_title(f"Spearman ρ = {rho:.2f} (p = {p:.2g})")
    ax2.legend(fontsize=5.5)


def caption(d) -> str:
    labels = [lab.replace("\n", " ") for lab in _labels(d)]
    stats = [_ci(row) for row in d["err"]]
    cols = "; ".join(f"{lab}: {m:.3f} ± {h:.3f}" for lab, (m, h) in zip(labels, stats))
    nowd, wd = stats[1], stats[2:]
    lw = d["wd_lrs"][1:]
    separated = [f"{x:g}" for x, (m, h) in zip(lw, wd) if m + h < nowd[0] - nowd[1] or m - h > nowd[0] + nowd[1]]
    lower = [m < nowd[0] for m, _ in wd]
    if all(lower):
        verdict = "GD+WD ends with a lower mean held-out error than GD without WD at every ηλ"
    elif not any(lower):
        verdict = "GD+WD ends with a higher mean held-out error than GD without WD at every ηλ"
    else:
        verdict = "GD+WD is not consistently better or worse than GD without WD in mean held-out error"
    verdict += (f"; the 95% intervals separate at ηλ = {', '.join(separated)}" if separated
                else "; no 95% interval separates from that of GD without WD")
    rho, p = _spearman(d)
    trained = d["err"][1:]
    size, tr, obs = TASK["size"], TASK["target_rank"], TASK["observed"]
    return (f"Matrix completion with batch normalization on the output (no affine parameters; {size}×{size} target of "
            f"rank {tr}, {100 * obs:.0f}% of the entries observed, factors of rank {TASK['rank']}; scale-invariant, "
            f"docs/theory.md §7), {trained.shape[1]} seeds, GD+WD to τ = ηλt = {float(d['tau_end']):g}. Every run "
            f"is compared at Φ of its last iterate (training loss ≤ {float(np.max(np.abs(d['loss']))):.1e}). Held-out "
            f"relative error, mean ± 95% CI: {cols}. {verdict}. Best run {float(trained.min()):.3f}, worst "
            f"{float(trained.max()):.3f}; {int(np.sum(trained < 0.1))} of {trained.size} runs below 0.1. Spherical "
            f"sharpness falls from {float(np.mean(d['sharp'][1])):.2f} (no WD, mean) to "
            f"{float(np.mean(d['sharp'][-1])):.2f} (ηλ = {lw[-1]:g}); over all runs its rank correlation with the "
            f"held-out error is ρ = {rho:.2f} (p = {p:.2g}): "
            + ("flatter completions generalize better here." if rho > 0 and p < 0.05 else
               "flatter completions generalize worse here." if rho < 0 and p < 0.05 else
               "no significant monotone relation between flatness and held-out error across runs."))
