"""Figure 9, edge of stability on a real network (the paper's Fig. 1 in miniature): the BN MLP on scikit-learn's
digits (``toy_models.bn_nets``), GD+WD from a random start at one ηλ for several η. λ₁(∇²L(w_t)) (Lanczos on
HVPs, ``verification.compiled``) against the threshold 2(1 - ηλ)/η (``theory.eos_threshold``) over training;
and η·λ₁/(2(1 - ηλ)) against τ = ηλt, which sits at 1 at the edge of stability (docs/theory.md §4).

Each run starts at ``RATIO`` × the edge-of-stability norm of its random start direction ū,
‖w₀‖² = RATIO·ηλ₁(∇²L(ū))/(2(1 - ηλ)) (``theory.equilibrium_norm_sq``): GD first converges towards Γ
(phase 1), then weight decay shrinks the norm until η_eff λ₁ reaches 2 (phase 2), where it stays (phase 3).
"""

from __future__ import annotations

import numpy as np

from ._common import WIDE, bn_init, bn_net, lam1, pair_mean

NAME = "fig9_bn_eos"
SIZE = WIDE
LRS = (0.05, 0.1, 0.2)
ETA_LAMBDA = 2e-3
RATIO = 4.0
#: the network's sizes (quick, full): quick is a smaller network on fewer images; D is stated in the caption
SIZES = {True: {"widths": (32, 32), "n_train": 64}, False: {}}


def _settings(quick: bool):
    """(steps, record stride): odd strides, so consecutive records sit on opposite phases of the flip."""
    return (1000, 21) if quick else (2000, 25)


def compute(quick: bool, seed: int) -> dict:
    from srflow.theory import equilibrium_norm_sq, eos_threshold
    from srflow.verification.simulate import simulate

    model = bn_net("bn_mlp", **SIZES[quick])
    steps, every = _settings(quick)
    out = {"lrs": np.array(LRS), "eta_lambda": ETA_LAMBDA, "dim": model.dim, "ratio": RATIO}
    for k, lr in enumerate(LRS):
        u = bn_init(model, seed, k)
        u = u / np.linalg.norm(u)
        wd = ETA_LAMBDA / lr
        w0 = u * np.sqrt(RATIO * equilibrium_norm_sq(lr, wd, lam1(model, u)))
        tr = simulate(model, w0, lr, steps, wd=wd, every=every, pairs=False)
        out[f"steps_{k}"], out[f"sharp_{k}"], out[f"loss_{k}"] = tr.steps, tr.lam1, tr.loss
        out[f"threshold_{k}"] = eos_threshold(lr, wd)
        out[f"train_err_{k}"] = model.train_error(tr.w_last)
    return out


def _ratio(d, k):
    """η·λ₁/(2(1 - ηλ)) = λ₁ over the threshold, pair-averaged."""
    return pair_mean(d[f"sharp_{k}"]) / float(d[f"threshold_{k}"])


def plot(d, fig):
    ax1, ax2 = fig.subplots(1, 2)
    eta_lambda = float(d["eta_lambda"])
    for k, lr in enumerate(d["lrs"]):
        line, = ax1.semilogy(d[f"steps_{k}"], d[f"sharp_{k}"], lw=0.5, label=f"λ₁, η = {lr:g}")
        ax1.axhline(float(d[f"threshold_{k}"]), color=line.get_color(), ls="--", lw=0.9,
                    label=f"2(1-ηλ)/η = {float(d[f'threshold_{k}']):.3g}")
        ax2.plot(pair_mean(d[f"steps_{k}"]) * eta_lambda, _ratio(d, k), ls=("-", "--", ":")[k % 3], lw=0.9,
                 color=line.get_color(), label=f"η = {lr:g}")
    ax1.set_xlabel("step t")
    ax1.set_ylabel("λ₁(∇²L(w_t))")
    ax1.set_title(f"BN MLP (D = {int(d['dim'])}), GD+WD, ηλ = {eta_lambda:g}")
    ax1.legend(ncol=2, fontsize=5.5, loc="lower right")
    ax2.axhline(1.0, color="k", lw=0.6, label="edge of stability")
    ax2.set_xlabel("τ = ηλt")
    ax2.set_ylabel("ηλ₁ / (2(1-ηλ)), record-pair mean")
    ax2.set_ylim(0, max(1.6, 1.1 * max(float(np.max(_ratio(d, k))) for k in range(len(d['lrs'])))))
    ax2.set_title("λ₁ relative to the threshold")
    ax2.legend(fontsize=6, loc="lower right")


def tail_ratio(d, k) -> float:
    """The mean of η·λ₁/(2(1 - ηλ)) over the last quarter of the run."""
    r = d[f"sharp_{k}"] / float(d[f"threshold_{k}"])
    return float(np.mean(r[-max(2, len(r) // 4):]))


def entry_step(d, k) -> float:
    """The first recorded step with λ₁ ≥ the threshold (nan if never)."""
    above = d[f"sharp_{k}"] >= float(d[f"threshold_{k}"])
    return float(d[f"steps_{k}"][int(np.argmax(above))]) if above.any() else float("nan")


def caption(d) -> str:
    n = len(d["lrs"])
    parts = [f"η = {lr:g}: {tail_ratio(d, k):.3f} (first at the threshold at step {entry_step(d, k):.0f}; final "
             f"training loss {float(d[f'loss_{k}'][-1]):.1e}, training error {100 * float(d[f'train_err_{k}']):.1f}%)"
             for k, lr in enumerate(d["lrs"])]
    tails = [tail_ratio(d, k) for k in range(n)]
    spread = max(tails) - min(tails)
    verdict = ("all runs sit at the edge of stability" if all(abs(t - 1) < 0.05 for t in tails) else
               "not every run sits within 5% of the edge of stability")
    where = ("about" if all(abs(t - 1) < 0.05 for t in tails) else "above" if all(t > 1 for t in tails) else
             "below" if all(t < 1 for t in tails) else "on both sides of")
    return (f"Edge of stability on the BN MLP (D = {int(d['dim'])}, scikit-learn digits, full-batch GD+WD at "
            f"ηλ = {float(d['eta_lambda']):g}, {n} values of η, each from its own random start at {float(d['ratio']):g}× "
            "the edge-of-stability norm of its direction). Left: λ₁(∇²L(w_t)) by Lanczos on HVPs, with the "
            "threshold 2(1-ηλ)/η of each η (dashed, same colour): it rises while weight decay shrinks the norm, then "
            f"stays {where} the threshold. Right: λ₁ over the threshold, averaged over consecutive records (odd "
            "stride, opposite phases of the period-2 flip), against τ = ηλt. Mean of λ₁/threshold over the last "
            f"quarter of each run: " + "; ".join(parts) + f". Spread between the η: {spread:.3f}; {verdict}.")
