"""Shared machinery of the figures: caching arrays with their config, deterministic files, one style, and
the runs several figures share."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
import warnings
import zipfile
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

#: sizes for a paper column (3.4 in) or the full width (7 in); fonts readable at that size
COLUMN, WIDE = (3.4, 2.6), (7.0, 2.6)
STYLE = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 6.5, "xtick.labelsize": 7,
         "ytick.labelsize": 7, "lines.linewidth": 1.0, "savefig.dpi": 200, "figure.dpi": 100,
         "axes.grid": True, "grid.linewidth": 0.3, "grid.alpha": 0.5, "svg.hashsalt": "srflow"}
#: no text in a figure is smaller than this (points): legends that modules shrink to fit are raised to it
MIN_FONT = 6.0
#: the panel letter: bold, a step above the titles (``panel_letters`` places it)
LETTER = {"fontsize": 9, "fontweight": "bold"}
#: fixed metadata: no dates, so that two runs give byte-identical files
PNG_META = {"Software": "srflow"}
PDF_META = {"Creator": "srflow", "Producer": "srflow", "CreationDate": None, "ModDate": None}
CACHE_VERSION = 2
#: the default output folders of ``srflow figures``, relative to the working directory: the full-size figures
#: (committed in the repository) and the ``--quick`` ones, kept apart (and git-ignored) so that a quick run
#: never overwrites the full-size files
FULL_OUT, QUICK_OUT = Path("figures"), Path("figures") / "quick"


def default_out(quick: bool) -> Path:
    """Where ``srflow figures`` writes without ``--out``: ``figures/`` (full) or ``figures/quick/``."""
    return QUICK_OUT if quick else FULL_OUT


def cache_config(module, quick: bool, seed: int) -> dict:
    """The cache key of a figure: its name, mode, seed, the cache format and the SHA-256 of the figure
    module's source, so that editing the module invalidates its cached arrays."""
    code = hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()
    return {"figure": module.NAME, "quick": quick, "seed": seed, "version": CACHE_VERSION, "code": code}


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place with ``os.replace``
    (atomic on POSIX and Windows): a reader sees the old file or the new one, never a partial one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_cache(folder: Path, name: str, config: dict):
    """The cached arrays if ``<name>.json`` holds ``config`` and ``<name>.npz`` reads; None otherwise. A
    corrupt entry (unreadable JSON, truncated archive) is reported with a warning and recomputed."""
    npz, cfg = folder / f"{name}.npz", folder / f"{name}.json"
    if not (npz.exists() and cfg.exists()):
        return None
    try:
        if json.loads(cfg.read_text()) != config:
            return None
        with np.load(npz, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # JSONDecodeError is a ValueError
        warnings.warn(f"figure cache {folder / name}.(npz|json) is corrupt ({type(exc).__name__}: {exc}); "
                      "recomputing", RuntimeWarning, stacklevel=3)
        return None


def make_figure(module, out: Path, quick: bool = False, seed: int = 0, recompute: bool = False) -> list[Path]:
    """Compute (or load the cached arrays of) one figure module and write its PNG, PDF and caption; every file
    is written atomically (``atomic_write``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = cache_config(module, quick, seed)
    data = None if recompute else _load_cache(data_dir, module.NAME, config)
    if data is None:
        # one BLAS thread: the matrices here are at most a few hundred wide, where threads only add
        # synchronization (a 120×120 Hessian took 2.3 ms on one thread, 40 ms on two of a shared 2-core machine),
        # and a fixed thread count keeps the arrays, hence the files, byte-identical across machines' settings
        with threadpool_limits(limits=1, user_api="blas"):
            data = {k: np.asarray(v) for k, v in module.compute(quick=quick, seed=seed).items()}

        def save_npz(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **data)

        atomic_write(data_dir / f"{module.NAME}.npz", save_npz)
        atomic_write(data_dir / f"{module.NAME}.json",
                     lambda tmp: Path(tmp).write_text(json.dumps(config, indent=1) + "\n"))
    png, pdf, txt = (out / f"{module.NAME}.{ext}" for ext in ("png", "pdf", "txt"))
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=getattr(module, "SIZE", COLUMN))
        module.plot(data, fig)
        house_style(fig)
        fig.tight_layout()
        panel_letters(fig)
        atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", metadata=PNG_META))
        atomic_write(pdf, lambda tmp: fig.savefig(tmp, format="pdf", metadata=PDF_META))
        plt.close(fig)
    atomic_write(txt, lambda tmp: Path(tmp).write_text(module.caption(data) + "\n"))
    return [png, pdf, txt]


def house_style(fig) -> None:
    """The style every figure shares, applied after its ``plot`` and before the layout: no text below MIN_FONT
    points (``panel_letters`` follows the layout)."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        if text.get_fontsize() < MIN_FONT:
            text.set_fontsize(MIN_FONT)


def panel_letters(fig) -> None:
    """Letters a, b, … (in the order of ``fig.axes``) on figures with more than one panel, each at the top left
    corner of its panel's whole area (axes, tick labels, y label and title, as laid out): left of the y label and
    level with the top of the title, so that neither a long title nor a long y label runs into it. Call after
    ``tight_layout``."""
    axes = fig.axes
    if len(axes) < 2:
        return
    renderer = fig.canvas.get_renderer()
    to_fig = fig.transFigure.inverted()
    for letter, ax in zip("abcdefghijklmnopqrstuvwxyz", axes):
        box = ax.get_tightbbox(renderer)
        x0, y1 = to_fig.transform((box.x0, box.y1))
        fig.text(x0, y1, letter, ha="left", va="top", **LETTER)


# -- runs shared by several figures ------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def model_and_start(name: str, seed: int):
    """A registered model and a point θ₀ of Γ drawn with ``seed``."""
    from srflow.toy_models import make_model

    model = make_model(name, rng=0)
    return model, model.minimizer(np.random.default_rng(seed))


@functools.lru_cache(maxsize=None)
def phases_run(quick: bool, seed: int, model_name: str = "bn_linear", eta_lambda: float = 1e-3, lr: float = 0.1,
               ratio: float = 5.0):
    """GD+WD from a random start at ``ratio`` × the EoS norm of its limit: phase 1 (converge to Γ), phase 2
    (weight decay shrinks the norm), phase 3 (EoS). Records every step (λ₁, norm, loss) and Φ every ``k``."""
    from srflow.theory import eos_entry_step, equilibrium_norm_sq, phase2_steps, project_to_manifold
    from srflow.toy_models import make_model
    from srflow.verification.simulate import simulate

    model = make_model(model_name, rng=0)
    u = np.random.default_rng([seed, 7]).standard_normal(model.dim)
    lam1 = float(np.linalg.eigvalsh(model.hess(project_to_manifold(model, u).theta))[-1])
    w0 = u / np.linalg.norm(u) * np.sqrt(ratio * equilibrium_norm_sq(lr, 0.0, lam1))  # the EoS norm at λ = 0
    steps = int(phase2_steps(eta_lambda, ratio) * (1.6 if quick else 3.0)) + 200
    wd = eta_lambda / lr
    dense = simulate(model, w0, lr, steps, wd=wd, every=1, pairs=False)
    phi = simulate(model, w0, lr, steps, wd=wd, every=max(1, steps // (25 if quick else 80)), track_phi=True,
                   pairs=False)
    from srflow.verification.tolerances import ON_GAMMA_RTOL_MAX

    ph = dense.phases(ON_GAMMA_RTOL_MAX)
    i = int(np.searchsorted(dense.steps, ph["on-gamma"]))
    predicted = eos_entry_step(lr, wd, dense.norm_sq[i], dense.lam1[i] * dense.norm_sq[i], step_on_gamma=ph["on-gamma"])
    return dense, phi, ph, predicted, lr, eta_lambda


def eos_runs(model, theta0, lr: float, ladder, tau_end: float, records: int):
    """GD+WD from the EoS norm above θ₀ for each ηλ of ``ladder`` to τ_end, Φ tracked."""
    from srflow.verification.simulate import eos_start, simulate

    runs = []
    for eta_lambda in ladder:
        steps = int(round(tau_end / eta_lambda))
        runs.append(simulate(model, eos_start(model, theta0, lr, eta_lambda / lr), lr, steps, wd=eta_lambda / lr,
                             every=max(1, steps // records), track_phi=True, pairs=False))
    return runs


# -- the real networks (BN MLP and CNN on scikit-learn's digits) ----------------------------------------------
@functools.lru_cache(maxsize=None)
def bn_net(name: str = "bn_mlp", normalized: bool = True, **sizes):
    """The registered network ``name`` at ``sizes`` (data and fixed last layer from rng=0); ``normalized=False``:
    the same architecture without normalization (the generalization reference, not scale-invariant)."""
    from srflow.toy_models import make_model

    return make_model(name, rng=0, normalized=normalized, **sizes)


def bn_init(model, seed: int, k: int = 0) -> np.ndarray:
    """A random start of run ``k`` drawn with ``seed``: the network's own initialization when it has one
    (``model.init(rng)``), else a standard normal vector."""
    rng = np.random.default_rng([seed, 12, k])
    return np.asarray(model.init(rng), dtype=np.float64) if hasattr(model, "init") else rng.standard_normal(model.dim)


def pair_mean(x: np.ndarray) -> np.ndarray:
    """The mean of consecutive records, (x_i + x_{i+1})/2: with an odd record stride the two records sit on
    opposite phases of the period-2 flip at the edge of stability, whose first-order term then cancels."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (x[:-1] + x[1:])


def lam1(model, w) -> float:
    """λ₁(∇²L(w)) by ``theory.sharpness`` with a fixed Lanczos start vector: ARPACK's default start is random, and
    its last-digit differences, once they set a start norm, grow through the chaotic dynamics at the edge of
    stability into visibly different runs."""
    from srflow.theory import sharpness

    return sharpness(model, w, v0=np.random.default_rng(12).standard_normal(model.dim))


# -- statistics over seeds (fig7, fig11) ---------------------------------------------------------------------------
def mean_ci(x, level: float = 0.95) -> tuple[float, float]:
    """Mean of ``x`` and the half-width of its Student-t confidence interval at ``level``:
    t_{(1+level)/2, n-1}·s/√n (s the sample standard deviation; half-width nan for one value)."""
    from scipy.stats import t

    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float(np.mean(x)), float("nan")
    return float(np.mean(x)), float(t.ppf(0.5 + level / 2, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x)))


def paired_stats(a, b) -> dict:
    """The paired comparison of ``a`` and ``b`` (the same seeds, in the same order): n, the mean difference
    a - b and its 95% CI half-width (``mean_ci``), the seeds with a < b and a > b, the two-sided p-values of the
    paired t-test (``scipy.stats.ttest_rel``) and of the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, exact
    for small n without ties, scipy's normal approximation otherwise; zero differences dropped). Degenerate cases: the
    same difference on every seed (to round-off) gives t p = 0 (if nonzero) or 1; all zero give Wilcoxon p = 1."""
    from scipy.stats import ttest_rel, wilcoxon

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a, b: expected two vectors of the same length (one value per seed), got {a.shape}, {b.shape}")
    diff = a - b
    mean, half = mean_ci(diff)
    n = len(diff)
    with warnings.catch_warnings():  # scipy's notes on switching to the normal approximation (zeros, ties)
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        if n < 2:
            t_p = w_p = float("nan")
        elif np.ptp(diff) <= 1e-12 * np.max(np.abs(diff)):  # one difference on every seed (to round-off)
            t_p = 1.0 if not np.any(diff) else 0.0
            w_p = 1.0 if not np.any(diff) else float(wilcoxon(diff).pvalue)
        else:
            t_p = float(ttest_rel(a, b).pvalue)
            w_p = 1.0 if not np.any(diff) else float(wilcoxon(diff).pvalue)
    return {"n": n, "mean": mean, "half": half, "lower": int(np.sum(diff < 0)), "higher": int(np.sum(diff > 0)),
            "t_p": t_p, "wilcoxon_p": w_p}
