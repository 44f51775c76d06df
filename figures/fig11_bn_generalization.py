"""Figure 11, generalization on a real network: test error of the BN MLP on scikit-learn's digits
(``toy_models.bn_nets``) over training and against its spherical sharpness, GD with and without weight decay,
and the same architecture without normalization as a reference.

Protocol, per seed (one random start direction ū per seed, shared by every run of that seed):

* BN MLP, GD+WD at each ηλ of ``WD_LRS`` and GD without WD, the same η, from w₀ = ū at ``RATIO`` × the
  edge-of-stability norm ‖w₀‖² = RATIO·ηλ₁(∇²L(ū))/2 (``theory.equilibrium_norm_sq`` with λ = 0), the same
  number of steps;
* the network without normalization (not scale-invariant, so its start is its own initialization ū, a standard
  normal vector for a_l = tanh(W_l a_{l-1}/√h_{l-1})) by GD and by GD+WD at the first ηλ, with the stable step
  η = 1/λ₁(∇²L(w₀)) (half the stability threshold 2/λ₁).

Recorded every ``every`` steps (odd, so that consecutive records sit on opposite phases of the period-2 flip):
test and training 0-1 error, training loss, λ₁(∇²L(w_t)) (Lanczos on HVPs) and, for the BN network, the
spherical sharpness ‖w_t‖²λ₁(∇²L(w_t)) = λ₁(∇²L(w̄_t)) (docs/theory.md §1), averaged over consecutive records.
"""

from __future__ import annotations

import numpy as np

from ._common import bn_init, bn_net, lam1, pair_mean

NAME = "fig11_bn_generalization"
SIZE = (7.0, 2.8)
LR = 0.1
WD_LRS = (2e-3, 5e-4)
RATIO = 4.0
#: network sizes (quick, full): quick is a smaller network on fewer images, so that ``--quick`` stays fast
SIZES = {True: {"widths": (32, 32), "n_train": 64}, False: {}}


def _settings(quick: bool):
    """(seeds, steps, record stride)."""
    return (1, 1200, 61) if quick else (3, 3000, 151)


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
    for j in range(seeds):
        u = {norm: bn_init(model, seed, j) for norm, model in nets.items()}
        for i, (_, norm, eta_lambda) in enumerate(rows):
            model = nets[norm]
            if norm:
                lr = LR
                w0 = u[norm] / np.linalg.norm(u[norm])
                w0 = w0 * np.sqrt(RATIO * equilibrium_norm_sq(lr, 0.0, lam1(model, w0)))
            else:
                w0 = u[norm]
                lr = 1.0 / lam1(model, w0)
            tr = simulate_batch(model, w0[None], lr, steps, wd=eta_lambda / lr, every=every, pairs=False,
                                keep_iterates=True)[0]
            if tr.diverged:
                raise RuntimeError(f"{rows[i][0]}, seed {j}: {tr.diverged}")
            res["test"][i][j] = [model.test_error(w) for w in tr.iterates]
            res["train"][i][j] = [model.train_error(w) for w in tr.iterates]
            res["loss"][i][j], res["sharp"][i][j] = tr.loss, tr.lam1
            res["sph"][i][j] = tr.lam1 * tr.norm_sq
            res["lr_used"][i][j] = np.full(len(tr.steps), lr)
            out["steps"] = tr.steps
    for k in keys:
        out[k] = np.array(res[k], dtype=np.float64)  # (conditions, seeds, records)
    return out


STYLES = ("-", "--", ":", "-.", (0, (1, 1)))


def plot(d, fig):
    ax1, ax2 = fig.subplots(1, 2)
    colors = ["tab:red", "tab:blue", "tab:cyan", "0.35", "0.65"]
    for i, label in enumerate(d["labels"]):
        c, ls = colors[i % len(colors)], STYLES[i % len(STYLES)]
        ax1.plot(d["steps"], 100 * d["test"][i].mean(axis=0), ls=ls, color=c, label=str(label))
        if d["normalized"][i]:
            sph = np.array([pair_mean(x) for x in d["sph"][i]])
            test = np.array([pair_mean(x) for x in d["test"][i]])
            for j in range(sph.shape[0]):
                ax2.plot(sph[j], 100 * test[j], ls=ls, color=c, lw=0.7, label=str(label) if j == 0 else None)
                ax2.plot(sph[j][-1], 100 * test[j][-1], "o", ms=3, color=c)
        else:
            ax2.axhline(100 * d["test"][i][:, -1].mean(), ls=ls, color=c, lw=0.8, label=f"{label} (final)")
    ax1.set_xlabel("step t")
    ax1.set_ylabel("test error (%), mean over seeds")
    ax1.set_title(f"BN MLP on digits (D = {int(d['dim'])}), η = {float(d['lr']):g}")
    ax1.set_ylim(0, min(100.0, 300 * float(np.max(d['test'][:, :, -1]))))  # the end of training, not the start
    ax1.legend(fontsize=5.5)
    ax2.set_xscale("log")
    ax2.set_xlabel("spherical sharpness λ₁(∇²L(w̄_t)), record-pair mean")
    ax2.set_ylabel("test error (%)")
    ax2.set_title("test error along each run (dot: end)")
    ax2.legend(fontsize=5.5)


def final(d, key: str, i: int) -> np.ndarray:
    """The value at the last record of each seed of condition i (pair-averaged for the sharpness)."""
    x = d[key][i]
    return np.array([pair_mean(r)[-1] for r in x]) if key == "sph" else x[:, -1]


def caption(d) -> str:
    labels = [str(x) for x in d["labels"]]
    seeds = d["test"].shape[1]
    rows = []
    for i, label in enumerate(labels):
        te, tr, loss = 100 * final(d, "test", i), 100 * final(d, "train", i), final(d, "loss", i)
        row = (f"{label}: test {te.mean():.1f}% (seeds: {', '.join(f'{x:.1f}' for x in te)}), training error "
               f"{tr.mean():.1f}%, loss ≤ {loss.max():.1e}")
        if d["normalized"][i]:
            row += f", spherical sharpness {final(d, 'sph', i).mean():.4g}"
        rows.append(row)
    base = 100 * final(d, "test", 0)
    comps = []
    for i in range(1, len(labels)):
        if not d["normalized"][i]:
            continue
        diff = 100 * final(d, "test", i) - base
        sharper = final(d, "sph", i).mean() > final(d, "sph", 0).mean()
        word = "lower" if diff.mean() < 0 else "higher" if diff.mean() > 0 else "the same"
        comps.append(f"{labels[i]} ends with {word} test error than BN, GD ({diff.mean():+.1f} points on average, "
                     f"per seed {', '.join(f'{x:+.1f}' for x in diff)}) and is {'sharper' if sharper else 'flatter'}")
    plain = [i for i in range(len(labels)) if not d["normalized"][i]]
    best_bn = min(100 * final(d, "test", i).mean() for i in range(len(labels)) if d["normalized"][i])
    best_plain = min(100 * final(d, "test", i).mean() for i in plain)
    ref = (f"the best BN condition ({best_bn:.1f}%) is {'below' if best_bn < best_plain else 'not below'} the best "
           f"network without normalization ({best_plain:.1f}%)")
    note = (" With one seed these differences carry no error bar." if seeds == 1 else
            f" Over {seeds} seeds only; a difference smaller than the spread between seeds is not a finding.")
    return (f"Test error of the BN MLP (D = {int(d['dim'])}, {int(d['n_train'])} training and {int(d['n_test'])} "
            f"test images of scikit-learn's digits, full-batch GD, {int(d['steps'][-1])} steps, η = {float(d['lr']):g}, "
            f"{seeds} random start(s)) and of the same network without normalization (GD at η = 1/λ₁ of its start). "
            "Left: test error over training (mean over seeds). Right: test error against the spherical sharpness "
            "along each BN run (dot: the end); the networks without normalization as horizontal lines at their final "
            "test error. At the end: " + "; ".join(rows) + ". " + "; ".join(comps) + "; " + ref + "." + note)
