"""Figure 11, generalization on a real network: test error of the BN MLP on scikit-learn's digits
(``toy_models.bn_nets``), GD with and without weight decay over ``SEEDS`` random starts, compared **paired by
seed** (mean difference with its 95% confidence interval, paired t and Wilcoxon signed-rank tests:
``_claims.paired_difference``), and the same architecture without normalization as a reference.

Protocol, per seed (one random start direction ū per seed, shared by every run of that seed, so that a difference
between conditions on the same seed is free of the seed-to-seed spread of the start):

* BN MLP, GD+WD at each ηλ of ``WD_LRS`` and GD without WD, the same η, from w₀ = ū at ``RATIO`` × the
  edge-of-stability norm ‖w₀‖² = RATIO·ηλ₁(∇²L(ū))/2 (``theory.equilibrium_norm_sq`` with λ = 0), the same
  number of steps;
* the network without normalization (not scale-invariant, so its start is its own initialization ū, a standard
  normal vector for a_l = tanh(W_l a_{l-1}/√h_{l-1})) by GD and by GD+WD at the first ηλ, with the stable step
  η = 1/λ₁(∇²L(w₀)) (half the stability threshold 2/λ₁).

The seeds of one condition run together (``verification.compiled.simulate_batch``). Recorded every ``every``
steps (odd, so that consecutive records sit on opposite phases of the period-2 flip): test and training 0-1 error,
training loss, λ₁(∇²L(w_t)) (Lanczos on HVPs) and, for the BN network, the spherical sharpness
‖w_t‖²λ₁(∇²L(w_t)) = λ₁(∇²L(w̄_t)) (docs/theory.md §1), averaged over consecutive records. The comparison is at
the end of training; the caption says whether every run is then at 0% training error.
"""

from __future__ import annotations

import numpy as np

from . import _claims
from ._common import bn_init, bn_net, lam1, mean_ci, pair_mean

NAME = "fig11_bn_generalization"
SIZE = (7.0, 2.8)
LR = 0.1
WD_LRS = (2e-3, 5e-4)
RATIO = 4.0
#: network sizes (quick, full): quick is a smaller network on fewer images, so that ``--quick`` stays fast
SIZES = {True: {"widths": (32, 32), "n_train": 64}, False: {}}
#: random starts of the full figure (the quick one has 1: its caption says there is no interval; a second seed
#: cost the quick run 10 s more, and the statistics are tested on synthetic arrays, tests/test_captions.py)
SEEDS = 10


def _settings(quick: bool):
    """(seeds, steps, record stride)."""
    return (1, 1200, 61) if quick else (SEEDS, 3000, 151)


def conditions() -> list[tuple[str, bool, float]]:
    """(label, normalized, ηλ) of each run of a seed: row 0 GD without WD, then GD+WD, then the references."""
    rows = [("BN, GD", True, 0.0)] + [(f"BN, GD+WD ηλ = {x:g}", True, x) for x in WD_LRS]
    return rows + [("no BN, GD", False, 0.0), (f"no BN, GD+WD ηλ = {WD_LRS[0]:g}", False, WD_LRS[0])]


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import equilibrium_norm_sq
    from srflow.verification.compiled import simulate_batch

    seeds, steps, every = _settings(quick)
    nets = {norm: bn_net("bn_mlp", normalized=norm, **SIZES[quick]) for norm in (True, False)}
    rows = conditions()
    out = {"dim": nets[True].dim, "n_train": nets[True].n_train, "n_test": nets[True].n_test, "lr": LR,
           "ratio": RATIO, "labels": np.array([r[0] for r in rows]), "eta_lambdas": np.array([r[2] for r in rows]),
           "normalized": np.array([r[1] for r in rows])}
    keys = ("test", "train", "loss", "sharp", "sph", "lr_used")
    res = {k: [[None] * seeds for _ in rows] for k in keys}
    for i, (label, norm, eta_lambda) in enumerate(rows):
        model = nets[norm]
        w0s, lrs = [], []
        for j in range(seeds):
            u = bn_init(model, seed, j)
            if norm:
                w0 = u / np.linalg.norm(u)
                w0s.append(w0 * np.sqrt(RATIO * equilibrium_norm_sq(LR, 0.0, lam1(model, w0))))
                lrs.append(LR)
            else:
                w0s.append(u)
                lrs.append(1.0 / lam1(model, u))
        lrs = np.array(lrs)
        for j, tr in enumerate(simulate_batch(model, np.array(w0s), lrs, steps, wd=eta_lambda / lrs, every=every,
                                              pairs=False, keep_iterates=True)):
            if tr.diverged:
                raise RuntimeError(f"{label}, seed {j}: {tr.diverged}")
            res["test"][i][j] = [model.test_error(w) for w in tr.iterates]
            res["train"][i][j] = [model.train_error(w) for w in tr.iterates]
            res["loss"][i][j], res["sharp"][i][j] = tr.loss, tr.lam1
            res["sph"][i][j] = tr.lam1 * tr.norm_sq
            res["lr_used"][i][j] = np.full(len(tr.steps), lrs[j])
            out["steps"] = tr.steps
    for k in keys:
        out[k] = np.array(res[k], dtype=np.float64)  # (conditions, seeds, records)
    return out


STYLES = ("-", "--", ":", "-.", (0, (1, 1)))
COLORS = ["tab:red", "tab:blue", "tab:cyan", "0.35", "0.65"]


def short(label: str) -> str:
    """A condition's label for the x axis, two short lines: "BN\nGD", "BN WD\n0.002" (GD+WD at ηλ = 0.002)."""
    net, rest = label.split(", ", 1)
    return f"{net}\nGD" if rest == "GD" else f"{net} WD\n{rest.split('= ')[-1]}"


def plot(d, fig):
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.25, 1]})
    seeds = d["test"].shape[1]
    for i, label in enumerate(d["labels"]):
        c, ls = COLORS[i % len(COLORS)], STYLES[i % len(STYLES)]
        ax1.plot(d["steps"], 100 * d["test"][i].mean(axis=0), ls=ls, color=c, label=str(label))
    ax1.set_xlabel("step t")
    ax1.set_ylabel(f"test error (%), mean of {seeds} seeds")
    ax1.set_title(f"BN MLP, D = {int(d['dim'])}, η = {float(d['lr']):g}")
    ax1.set_ylim(0, min(100.0, 300 * float(np.max(d['test'][:, :, -1]))))  # the end of training, not the start
    ax1.legend(fontsize=6)
    # (b) the final test error of every seed, joined across conditions (the pairing), and mean ± 95% CI
    end = 100 * d["test"][:, :, -1]
    x = np.arange(len(d["labels"]))
    for j in range(seeds):
        ax2.plot(x, end[:, j], color="0.75", lw=0.5, zorder=1)
    for i in x:
        ax2.plot(np.full(seeds, i), end[i], "o", ms=2.5, mfc="none", color=COLORS[i % len(COLORS)], zorder=2)
        if seeds > 1:
            m, h = mean_ci(end[i])
            ax2.errorbar(i + 0.25, m, yerr=h, fmt="s", ms=3.5, capsize=2, color=COLORS[i % len(COLORS)], zorder=3)
    ax2.set_xticks(x, [short(str(lab)) for lab in d["labels"]], fontsize=6)
    ax2.set_ylabel("final test error (%)")
    ax2.set_title("seeds (o, joined), mean ± 95% CI (■)")
    # (c) final test error against the final spherical sharpness of each BN run
    for i, label in enumerate(d["labels"]):
        if d["normalized"][i]:
            ax3.plot(final(d, "sph", i), end[i], "o", ms=3, mfc="none", color=COLORS[i % len(COLORS)],
                     label=short(str(label)).replace("\n", " "))
    ax3.set_xscale("log")
    ax3.set_xlabel("spherical sharpness λ₁(∇²L(w̄))")
    ax3.set_ylabel("final test error (%)")
    ax3.set_title("BN runs at the end")
    ax3.legend(fontsize=6)


def final(d, key: str, i: int) -> np.ndarray:
    """The value at the last record of each seed of condition i (pair-averaged for the sharpness)."""
    x = d[key][i]
    return np.array([pair_mean(r)[-1] for r in x]) if key == "sph" else x[:, -1]


def comparisons(d) -> list[tuple[int, int]]:
    """(i, j) pairs of conditions compared paired by seed: each BN GD+WD against BN GD (row 0), the network
    without normalization with WD against without, and BN with the first ηλ against no BN with the same ηλ."""
    norm, eta_lambdas = d["normalized"], d["eta_lambdas"]
    bn_gd = 0
    bn_wd = [i for i in range(len(norm)) if norm[i] and eta_lambdas[i] > 0]
    plain_gd = [i for i in range(len(norm)) if not norm[i] and eta_lambdas[i] == 0]
    plain_wd = [i for i in range(len(norm)) if not norm[i] and eta_lambdas[i] > 0]
    pairs = [(i, bn_gd) for i in bn_wd] + [(i, j) for i in plain_wd for j in plain_gd]
    return pairs + [(bn_wd[0], i) for i in plain_wd if eta_lambdas[i] == eta_lambdas[bn_wd[0]]]


def claims(d) -> list[_claims.Claim]:
    """The paired comparisons of ``comparisons`` on the final test error (percentage points)."""
    labels = [str(x) for x in d["labels"]]
    return [_claims.paired_difference(final(d, "test", i), final(d, "test", j), labels[i], labels[j],
                                      unit=" points", scale=100) for i, j in comparisons(d)]


def caption(d) -> str:
    labels = [str(x) for x in d["labels"]]
    seeds = d["test"].shape[1]
    rows = []
    for i, label in enumerate(labels):
        te, tr, loss = 100 * final(d, "test", i), 100 * final(d, "train", i), final(d, "loss", i)
        m, h = mean_ci(te)
        row = (f"{label}: test {m:.1f}%" + (f" ± {h:.1f}" if seeds > 1 else "") + f", training error ≤ {tr.max():.1f}%, "
               f"loss ≤ {loss.max():.1e}")
        if d["normalized"][i]:
            row += f", spherical sharpness {final(d, 'sph', i).mean():.4g}"
        rows.append(row)
    flat = []
    for i in range(1, len(labels)):
        if d["normalized"][i]:
            fewer = int(np.sum(final(d, "sph", i) < final(d, "sph", 0)))
            flat.append(f"{labels[i]} ends flatter (spherical sharpness) than {labels[0]} on {fewer} of {seeds} seeds")
    zero = float(np.max(d["train"][:, :, -1])) == 0
    fit = ("every run ends at 0% training error, so the comparison is between interpolating networks" if zero else
           f"not every run ends at 0% training error (largest {100 * float(np.max(d['train'][:, :, -1])):.1f}%): the "
           "comparison is not between interpolating networks")
    return (f"Test error of the BN MLP (D = {int(d['dim'])}, {int(d['n_train'])} training and {int(d['n_test'])} "
            f"test images of scikit-learn's digits, full-batch GD, {int(d['steps'][-1])} steps, η = {float(d['lr']):g}) "
            f"and of the same network without normalization (GD at η = 1/λ₁ of its start), {seeds} random starts; "
            "every condition of a seed starts from the same direction. (a) Test error over training, mean over seeds. "
            "(b) Final test error of each seed (joined across conditions) and the mean ± 95% CI (WD: GD+WD at the ηλ "
            "below it). (c) Final test error "
            "against the final spherical sharpness of each BN run. At the end"
            + (" (mean ± 95% CI over seeds): " if seeds > 1 else ": ")
            + "; ".join(rows) + f"; {fit}. " + "; ".join(str(c) for c in claims(d))
            + " (between the two networks the pairing is by seed number only: their starts are independent draws). "
            + "; ".join(flat) + ".")
