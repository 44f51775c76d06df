"""Figure 7, generalization: matrix completion with batch normalization (``toy_models.completion``, the paper's
"matrix completion with BN" in miniature; why it is scale-invariant and what its sharpness measures:
docs/theory.md §8).

Protocol, per seed (a new target, mask and random start w₀ for each): the same η (ηλ₁(∇²L(w₀)) = 1) for
GD without WD and GD+WD at each ηλ of the ladder; GD+WD runs to the same τ = ηλt, GD without WD as many steps as
the longest WD run. Every run is then **trained to the same training loss** (``finish``: GD without WD at a
stable step until L ≤ LOSS_TARGET) and compared there: held-out relative error and spherical sharpness
λ₁(∇²L(w̄)). (The gradient-flow projection Φ is not used as the finish: in this over-parameterized regime the
flow converges sublinearly near the rank-2 target, and one projection took minutes.)
"""

from __future__ import annotations

import numpy as np

from ._common import mean_ci

NAME = "fig7_generalization"
SIZE = (7.0, 2.8)
TASK = {"size": 20, "rank": 3, "target_rank": 2, "observed": 0.5}
SEEDS = 10
#: every run is trained on (GD without WD at a stable step) to this training loss before it is compared
LOSS_TARGET = 1e-6
FINISH_STEPS = 20_000  # at most this many finishing steps; the caption reports the largest loss reached


def _settings(quick: bool):
    """(ladder of ηλ, τ horizon)."""
    return ((1e-2, 3e-3), 1.0) if quick else ((1e-2, 3e-3, 1e-3), 3.0)


def finish(task, w, lr_eff: float = 1.0, chunk: int = 500):
    """Train ``w`` to the common training loss: GD without WD (``verification.simulate``) in chunks of
    ``chunk`` steps, each from w̄ = w/‖w‖ at the stable step η = ``lr_eff``/λ₁(∇²L(w̄)) (renormalizing between
    chunks undoes the norm growth that would slow GD down), until L ≤ LOSS_TARGET or FINISH_STEPS.
    Returns (w, its loss, steps used)."""
    from srflow.verification.simulate import simulate

    used = 0
    while task.loss(w) > LOSS_TARGET and used < FINISH_STEPS:
        w = w / np.linalg.norm(w)
        lr = lr_eff / float(np.linalg.eigvalsh(task.hess(w))[-1])
        w, used = simulate(task, w, lr, chunk, every=chunk, pairs=False).w_last, used + chunk
    return w, task.loss(w), used


def _trained(d) -> np.ndarray:
    """Mask of the runs that reached the common training loss (the others are not compared)."""
    return d["loss"] <= LOSS_TARGET


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import spherical_sharpness
    from srflow.toy_models.completion import bn_completion
    from srflow.verification.simulate import simulate

    ladder, tau_end = _settings(quick)
    eta_lambdas = (0.0,) + ladder  # row 0: GD without WD
    err = np.zeros((len(eta_lambdas), SEEDS))
    sharp, loss, extra = np.zeros_like(err), np.zeros_like(err), np.zeros_like(err)
    for k in range(SEEDS):
        task = bn_completion(np.random.default_rng([seed, k]), **TASK)
        w0 = np.random.default_rng([seed, k, 1]).standard_normal(task.dim)
        w0 /= np.linalg.norm(w0)
        lr = 1.0 / float(np.linalg.eigvalsh(task.hess(w0))[-1])
        for row, eta_lambda in enumerate(eta_lambdas):
            steps = int(round(tau_end / (eta_lambda or min(ladder))))
            w, loss[row, k], extra[row, k] = finish(task, simulate(task, w0, lr, steps, wd=eta_lambda / lr, every=steps,
                                                                    pairs=False).w_last)
            err[row, k], sharp[row, k] = task.heldout_error(w), spherical_sharpness(task, w)
    return {"eta_lambdas": np.array(eta_lambdas), "tau_end": tau_end, "err": err, "sharp": sharp, "loss": loss,
            "finish_steps": extra}


def _labels(d) -> list[str]:
    return ["GD, no WD" if eta_lambda == 0 else f"GD+WD\nηλ = {eta_lambda:g}" for eta_lambda in d["eta_lambdas"]]


def _spearman(d):
    """Spearman rank correlation of spherical sharpness and held-out error over the trained runs."""
    from scipy.stats import spearmanr

    ok = _trained(d)
    res = spearmanr(d["sharp"][ok], d["err"][ok])
    return float(res.statistic), float(res.pvalue)


def plot(d, fig):
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    labels, colors = _labels(d), ["tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red"]
    jitter = np.linspace(-0.15, 0.15, d["err"].shape[1])
    for row, label in enumerate(labels):
        ok = _trained(d)[row]
        mean, half = mean_ci(d["err"][row][ok])
        ax1.plot((row + jitter)[ok], d["err"][row][ok], "o", ms=2.5, mfc="none", color=colors[row])
        ax1.errorbar(row + 0.3, mean, yerr=half, fmt="s", ms=3.5, capsize=2, color=colors[row])
    ax1.axhline(0.1, color="k", ls=":", lw=0.7)
    ax1.set_xticks(range(len(labels)), labels, fontsize=6)
    ax1.set_ylabel("held-out relative error")
    ax1.set_ylim(bottom=0)
    ax1.set_title(f"{d['err'].shape[1]} seeds, τ = {float(d['tau_end']):g}: runs (o), mean ± 95% CI (■)")
    for row, label in enumerate(labels):
        ok = _trained(d)[row]
        ax2.plot(d["sharp"][row][ok], d["err"][row][ok], "o", ms=3, color=colors[row], label=label.replace("\n", " "))
    rho, p = _spearman(d)
    ax2.set_xlabel("spherical sharpness λ₁(∇²L(w̄)), trained")
    ax2.set_ylabel("held-out relative error")
    ax2.set_title(f"Spearman ρ = {rho:.2f} (p = {p:.2g})")
    ax2.legend(fontsize=5.5)


def caption(d) -> str:
    labels = [lab.replace("\n", " ") for lab in _labels(d)]
    ok = _trained(d)
    stats = [mean_ci(row[keep]) for row, keep in zip(d["err"], ok)]
    cols = "; ".join(f"{lab}: {m:.3f} ± {h:.3f}" for lab, (m, h) in zip(labels, stats))
    nowd, with_wd = stats[0], stats[1:]
    ladder = d["eta_lambdas"][1:]
    separated = [f"{eta_lambda:g}" for eta_lambda, (m, h) in zip(ladder, with_wd)
                 if m + h < nowd[0] - nowd[1] or m - h > nowd[0] + nowd[1]]
    lower = [m < nowd[0] for m, _ in with_wd]
    if all(lower):
        verdict = "GD+WD ends with a lower mean held-out error than GD without WD at every ηλ"
    elif not any(lower):
        verdict = "GD+WD ends with a higher mean held-out error than GD without WD at every ηλ"
    else:
        verdict = "GD+WD is not consistently better or worse than GD without WD in mean held-out error"
    verdict += (f"; the 95% intervals separate at ηλ = {', '.join(separated)}" if separated
                else "; no 95% interval separates from that of GD without WD")
    paired = []  # the same seed with and without WD: the seed-to-seed spread cancels
    for j, eta_lambda in enumerate(ladder, start=1):
        both = ok[0] & ok[j]
        m, h = mean_ci(d["err"][j][both] - d["err"][0][both])
        paired.append(f"ηλ = {eta_lambda:g}: {m:+.3f} ± {h:.3f} ({int(both.sum())} seeds)")
    verdict += ". Paired by seed, held-out error with WD minus without: " + "; ".join(paired)
    rho, p = _spearman(d)
    trained = d["err"][ok]
    size, tr, obs = TASK["size"], TASK["target_rank"], TASK["observed"]
    stuck = (f" (stuck at L ≥ {float(np.min(d['loss'][~ok])):.1e})" if (~ok).any() else "")
    sharp = [float(np.mean(row[keep])) for row, keep in zip(d["sharp"], ok)]
    return (f"Matrix completion with batch normalization on the output (no affine parameters; {size}×{size} target of "
            f"rank {tr}, {100 * obs:.0f}% of the entries observed, factors of rank {TASK['rank']}; scale-invariant, "
            f"docs/theory.md §8), {d['err'].shape[1]} seeds, GD+WD to τ = ηλt = {float(d['tau_end']):g}. Every run "
            f"is trained on (GD without WD, at most {FINISH_STEPS} steps) to the same training loss L ≤ "
            f"{LOSS_TARGET:g} before it is compared: {trained.size} of {d['err'].size} runs reached it "
            f"({int(np.max(d['finish_steps'][ok]))} steps at most); the other {int((~ok).sum())}{stuck} are not "
            f"compared. Held-out relative error, mean ± 95% CI: {cols}. {verdict}. Best run {float(trained.min()):.3f}, "
            f"worst {float(trained.max()):.3f}; {int(np.sum(trained < 0.1))} of {trained.size} runs below 0.1. "
            "Mean spherical sharpness: " + ", ".join(f"{lab} {v:.2f}" for lab, v in zip(labels, sharp))
            + f". Over the compared runs the rank correlation of sharpness and held-out error is ρ = {rho:.2f} "
            f"(p = {p:.2g}): "
            + ("flatter completions generalize better here." if rho > 0 and p < 0.05 else
               "flatter completions generalize worse here." if rho < 0 and p < 0.05 else
               "no significant monotone relation between flatness and held-out error across runs."))
