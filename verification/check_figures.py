"""Figures of the convergence checks: error against the small parameter on log-log axes, with the fitted
power law. Written next to the report (``figures/<model>-<check>.png``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .outdir import atomic_write
from .checks import CHECKS
from .session import CheckResult

#: fixed metadata so that reruns give identical files
PNG_METADATA = {"Software": "srflow"}

def plot_check(res: CheckResult, folder: Path) -> str | None:
    """Plot ``res`` if it is a ladder check with data; returns the path relative to the report folder."""
    check = CHECKS.get(res.name)
    series = check.series if check is not None else ()
    if not series or "ladder" not in res.details:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FixedLocator, NullFormatter

    x = np.asarray(res.details["ladder"], float)
    fig, ax = plt.subplots(figsize=(3.4, 2.6), dpi=150)
    for key, label, exp_key in ((c.key, c.label, c.verdict) for c in series):
        if key not in res.details:
            continue
        y = np.maximum(np.asarray(res.details[key], float), 1e-300)
        verdict = res.details.get(exp_key) if exp_key else None
        p = verdict.get("order") if isinstance(verdict, dict) else None
        p = p if p is not None and np.isfinite(p) else None
        ax.loglog(x, y, "o-" if "naive" not in key else "s--", ms=3, lw=1,
                  label=label + (f"  (slope {p:.2f})" if p is not None else ""))
    # ticks at the ladder's values only: a ladder spanning about a decade would otherwise get crowded minor labels
    ax.xaxis.set_major_locator(FixedLocator(np.unique(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(np.unique(x), [f"{v:g}" for v in np.unique(x)], rotation=35, fontsize=6.5)
    ax.tick_params(axis="y", labelsize=6.5)
    ax.set_xlabel(check.xlabel, fontsize=7.5)
    ax.set_ylabel("error", fontsize=7.5)
    ax.set_title(f"{res.model}: {res.name} [{res.status}]", fontsize=8)
    # below the axes, so that it never covers data
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.42), ncol=1, frameon=False)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{res.model}-{res.name}.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata=PNG_METADATA, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
    return f"{folder.name}/{path.name}"
