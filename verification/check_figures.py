"""Figures of the convergence checks: one panel per judged error, error against the small parameter on log-log
axes, with what decided the verdict drawn -- written next to the report (``figures/<model>-<check>.png``).

In each panel (``draw_check`` builds the figure, ``plot_check`` writes it):

* the errors on every rung (``Check.series``: ``details[key]`` against ``details["ladder"]``); filled markers on
  the rungs that decided the verdict (``LadderVerdict.decided``), open ones elsewhere, grey crosses on rungs at
  the numerical floor that the verdict left out; a deciding rung that falls slower than the rule accepts is red;
* the theory's slope p (dotted) and the slowest fall the rule accepts, slope p − margin (dashed), both from the
  first deciding rung: a pass runs along the first and stays below the second; a floor flattens above it
  (``verdicts.judge`` assumes no constant C of e ≤ C·x^p, so none is drawn); a per-rung bound
  ``details[key + "_bound"]`` is drawn instead when a check states one;
* the panel's title gives the verdict of that error and its fitted order, red for a fail; the figure's title the
  check's verdict. Axes are labelled (the check's ``xlabel``, the error's meaning); the legend sits below each
  panel's x label, one entry per line, so that it covers neither data nor another entry.

eos-equilibrium, judged by extrapolating c's deviation to ηλ → 0, gets that extrapolation instead
(``_draw_extrapolation``).
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np

from .outdir import atomic_write
from .session import CheckResult

#: fixed metadata so that reruns give identical files
PNG_METADATA = {"Software": "srflow"}
FAIL_COLOR, PASS_COLOR, OTHER_COLOR = "#c0392b", "#1f6fb2", "#7f7f7f"
#: colours of the error curves of a panel (the judged one first)
CURVE_COLORS = ("#1f6fb2", "#e08a1e", "#2a9d5c")


def _num(x) -> float:
    """A float from a details entry (JSON stores inf as "inf" and NaN as None)."""
    if x is None:
        return float("nan")
    return float(x)


def _array(values) -> np.ndarray:
    return np.array([_num(v) for v in values], dtype=float)


def panels(res: CheckResult) -> list[dict]:
    """What each panel shows: the judged series (a ladder verdict in ``details``) or bounded ones (a per-rung
    bound ``details[key + "_bound"]``) get a panel each; series shown without a verdict or bound are drawn, for
    comparison, in the first panel. Empty when the result has no ladder or no series."""
    from .checks import CHECKS

    check = CHECKS.get(res.name)
    d = res.details
    if check is None or not check.series or "ladder" not in d:
        return []
    x = _array(d["ladder"])
    out, context = [], []
    for s in check.series:
        if s.key not in d or np.ndim(d[s.key]) != 1 or len(d[s.key]) != len(x):
            continue
        y = _array(d[s.key])
        verdict = d.get(s.verdict) if s.verdict else None
        bound = d.get(f"{s.key}_bound")
        if isinstance(verdict, dict) or bound is not None:
            out.append({"key": s.key, "label": s.label, "x": x, "y": y,
                        "verdict": verdict if isinstance(verdict, dict) else None,
                        "bound": None if bound is None else _array(bound), "context": []})
        else:
            context.append({"key": s.key, "label": s.label, "x": x, "y": y})
    if not out and context:  # nothing judged on its own: show the curves, without a verdict
        out, context = [{**context[0], "verdict": None, "bound": None, "context": []}], context[1:]
    if out:
        out[0]["context"] = context
    return out


def _anchor(panel: dict) -> int | None:
    """Index (into the panel's ladder) of the first rung that decided the verdict, or None."""
    mask = _judged(panel) & _decided(panel)
    return int(np.nonzero(mask)[0][0]) if mask.any() else None


def _bound_line(panel: dict) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(x, bound(x), label) of a panel: the per-rung bound when the check states one, else the slowest fall the
    verdict rule accepts -- slope p − margin from the first deciding rung down the ladder (no constant C is
    assumed: ``verdicts.judge``)."""
    v, x, y = panel["verdict"], panel["x"], panel["y"]
    if panel["bound"] is not None:
        ok = np.isfinite(panel["bound"])
        return (x[ok], panel["bound"][ok], "bound on each judged rung") if ok.any() else None
    i = _anchor(panel)
    if v is None or v.get("p") is None or v.get("margin") is None or i is None:
        return None
    slope = _num(v["p"]) - _num(v["margin"])
    xs = np.geomspace(x.min(), x[i], 50)
    return xs, y[i] * (xs / x[i]) ** slope, f"slowest fall accepted: slope p − margin = {slope:g}"


def _decided(panel: dict) -> np.ndarray:
    """A mask of the rungs that decided the panel's verdict (all judged rungs when the verdict does not say)."""
    x, v = panel["x"], panel["verdict"]
    mask = np.zeros(len(x), bool)
    if v is not None and v.get("decided") is not None:
        judged_x = _array(v.get("ladder", []))
        for i in v["decided"]:
            if 0 <= int(i) < len(judged_x):
                mask |= np.isclose(x, judged_x[int(i)], rtol=1e-12, atol=0)
        return mask
    if panel["bound"] is not None:
        return np.isfinite(panel["bound"])
    return np.ones(len(x), bool)


def _judged(panel: dict) -> np.ndarray:
    """A mask of the rungs the verdict judged (rungs at the numerical floor, below them, are left out)."""
    x, v = panel["x"], panel["verdict"]
    if v is None or len(v.get("ladder", [])) == 0:
        return np.isfinite(panel["bound"]) if panel["bound"] is not None else np.ones(len(x), bool)
    judged_x = _array(v["ladder"])
    return np.array([np.any(np.isclose(xi, judged_x, rtol=1e-12, atol=0)) for xi in x])


def _above(panel: dict) -> np.ndarray:
    """A mask of the rungs whose error is above the bound (``_bound_line``), beyond round-off."""
    x, y = panel["x"], panel["y"]
    if panel["bound"] is not None:
        return np.isfinite(panel["bound"]) & (y > panel["bound"])
    line = _bound_line(panel)
    if line is None:
        return np.zeros(len(x), bool)
    i = _anchor(panel)
    slope = _num(panel["verdict"]["p"]) - _num(panel["verdict"]["margin"])
    return _judged(panel) & (x < x[i]) & (y > y[i] * (x / x[i]) ** slope * (1 + 1e-9))


def draw_check(res: CheckResult):
    """The figure of ``res`` (a matplotlib Figure; artists carry a ``gid``: "data:KEY", "bound:KEY",
    "slope:KEY", "context:KEY"), or None when the check has no ladder figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter

    from .checks import CHECKS
    from .report import QUANTITIES

    for spec in EXTRAPOLATED:
        if all(k in res.details for k in spec[:5]):
            return _draw_extrapolation(res, spec)
    ps = panels(res)
    if not ps:
        return None
    check = CHECKS[res.name]
    n = len(ps)
    fig, axes = plt.subplots(1, n, figsize=(3.5 * n, 3.4), dpi=150, squeeze=False)
    failed = res.status == "fail"
    for ax, panel in zip(axes[0], ps):
        key, x, y, v = panel["key"], panel["x"], np.maximum(panel["y"], 1e-300), panel["verdict"]
        judged, decided, above = _judged(panel), _decided(panel), _above(panel)
        status = (v or {}).get("status") or ("fail" if above[judged].any() else "pass" if panel["bound"] is not None
                                             else "")
        status = str(status)
        ax.loglog(x, y, "-", color=CURVE_COLORS[0], lw=1, zorder=2, gid=f"line:{key}")
        groups = [(judged & decided & ~above, "o", CURVE_COLORS[0], CURVE_COLORS[0], "rungs that decided the verdict"),
                  (judged & ~decided & ~above, "o", "white", CURVE_COLORS[0], "other rungs"),
                  (judged & above, "o", FAIL_COLOR, FAIL_COLOR, "falls slower than the rule accepts"
                   if panel["bound"] is None else "above its bound"),
                  (~judged, "x", OTHER_COLOR, OTHER_COLOR,
                   "not judged" + (" (at the numerical floor)" if v is not None else " (no bound on this rung)"))]
        for mask, marker, face, edge, label in groups:
            if mask.any():
                ax.plot(x[mask], y[mask], marker, ms=5, mfc=face, mec=edge, color=edge, ls="none", zorder=3,
                        label=label, gid=f"data:{key}:{label}")
        bound = _bound_line(panel)
        if bound is not None:  # a per-rung bound gets a mark on each rung (one judged rung is still visible)
            ax.plot(bound[0], bound[1], "--", color=FAIL_COLOR, lw=1.1, label=bound[2], gid=f"bound:{key}", zorder=1,
                    marker="_" if panel["bound"] is not None else None, ms=12, mew=1.5)
        if v is not None and v.get("p") is not None and _anchor(panel) is not None:
            i = _anchor(panel)
            p = _num(v["p"])
            xs = np.geomspace(x.min(), x[i], 50)
            ax.plot(xs, y[i] * (xs / x[i]) ** p, ":", color="black", lw=1.2, gid=f"slope:{key}", zorder=1,
                    label=f"theory's slope p = {p:g}")
        for j, c in enumerate(panel["context"]):
            ax.loglog(c["x"], np.maximum(c["y"], 1e-300), "s--", ms=3, lw=0.8, mfc="white",
                      color=CURVE_COLORS[1 + j % 2], label=f"{c['label']} (not judged)", gid=f"context:{c['key']}")
        ux = np.unique(x)
        ax.xaxis.set_major_locator(FixedLocator(ux))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(ux, [f"{t:g}" for t in ux], rotation=40, fontsize=7)
        ax.tick_params(axis="y", which="both", labelsize=7)  # minor labels too (a narrow log range labels them)
        ax.set_xlabel(check.xlabel, fontsize=8)
        unit = QUANTITIES.get(key, ("", ""))[1].split(",")[0]
        ax.set_ylabel("\n".join(textwrap.wrap(f"{panel['label']}" + (f" [{unit}]" if unit else ""), 38)),
                      fontsize=7.5)
        fitted = _num((v or {}).get("order"))
        se = _num((v or {}).get("order_se"))
        control = status == "fail" and res.status == "pass"  # a negative control passes by being rejected
        title = ("rejected, as this negative control must be" if control
                 else f"{status.upper() if status == 'fail' else status}" if status else "not judged")
        if panel["bound"] is not None and status:
            title += ": every judged rung below its bound" if status == "pass" else ": a rung above its bound"
        if np.isfinite(fitted):
            title += f": slope {fitted:.2f}" + (f" ± {se:.2f}" if np.isfinite(se) else "")
            if v.get("p") is not None:
                title += f" (theory {_num(v['p']):g})"
        ax.set_title(title, fontsize=8, color=FAIL_COLOR if status == "fail" and not control else "black")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
    verdict = {"fail": "FAIL", "pass": "pass"}.get(res.status, res.status)
    fig.suptitle(f"{res.model} · {res.name}: {verdict}", fontsize=9, color=FAIL_COLOR if failed else "black",
                 fontweight="bold" if failed else "normal")
    fig.tight_layout()
    # each legend below its panel's x label (computed after layout, so that it never covers labels or data)
    fig.canvas.draw()
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            below = ax.xaxis.label.get_window_extent().y0
            top = ax.transAxes.inverted().transform((0, below))[1] - 0.03
            labels = ["\n".join(textwrap.wrap(t, 44)) for t in labels]
            ax.legend(handles, labels, fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, top), ncol=1,
                      frameon=False, handlelength=2.5, borderaxespad=0.0)
    return fig


#: the checks judged by a deviation extrapolated to ηλ → 0, not by an order: the details keys of (measured,
#: predicted, standard error per rung, the deviation at ηλ → 0, its s.e.), the y label and the quantity's name
EXTRAPOLATED = (
    ("c_observed", "c_predicted", "c_standard_error", "c_deviation_at_zero", "c_deviation_at_zero_se",
     "c measured − c predicted\n(η⟨λ₁⟩ = 2 + c·ηλ)", "c's deviation"),
    ("rate_measured", "rate_predicted", "rate_standard_error", "deviation_at_zero", "deviation_at_zero_se",
     "breathing rate measured − predicted\n(d log ε/dτ)", "the rate's deviation"),
)


def _draw_extrapolation(res: CheckResult, spec):
    """eos-equilibrium (c) and eos-stability (the breathing rate): the deviation measured − predicted on each rung
    with ±EOS_SEM_FACTOR standard errors (filled: the rungs that enter the extrapolation), and its extrapolation to
    ηλ → 0 (at ηλ = 0, with the same band): the check passes when that band contains 0 (dashed). ``spec``: a row
    of EXTRAPOLATED."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import tolerances as tol
    from .checks import CHECKS

    measured, predicted, se_key, zero, zero_se, ylabel, noun = spec
    d = res.details
    x = _array(d["ladder"])
    dev = _array(d[measured]) - _array(d[predicted])
    se = _array(d.get(se_key, [np.nan] * len(x)))
    judged = np.array([bool(j) for j in d.get("judged", [True] * len(x))])
    c0, se0, k = _num(d[zero]), _num(d[zero_se]), tol.EOS_SEM_FACTOR
    fig, ax = plt.subplots(figsize=(4.6, 3.4), dpi=150)
    ax.axhline(0.0, ls="--", color="black", lw=0.9, label="0: the prediction exact as ηλ → 0", gid="zero")
    for mask, face, label in ((judged, CURVE_COLORS[0], "rungs in the extrapolation"),
                              (~judged, "white", "rungs too short to resolve c (not used)")):
        if mask.any():
            ax.errorbar(x[mask], dev[mask], yerr=k * se[mask], fmt="o", ms=5, mfc=face, mec=CURVE_COLORS[0],
                        color=CURVE_COLORS[0], capsize=2, lw=0.9, label=label + f" (± {k:g} s.e.)", gid=f"data:{label}")
    ok = abs(c0) <= k * se0
    color = PASS_COLOR if ok else FAIL_COLOR
    ax.errorbar([0.0], [c0], yerr=[k * se0], fmt="D", ms=6, color=color, capsize=3, lw=1.2,
                label=f"extrapolated to ηλ → 0: {c0:+.3f} ± {k:g}·{se0:.3f}", gid="extrapolated")
    ax.set_xlim(left=-0.05 * x.max())
    ax.set_xlabel(CHECKS[res.name].xlabel if res.name in CHECKS else "ηλ", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=7.5)
    ax.tick_params(which="both", labelsize=7)
    ax.grid(True, lw=0.3, alpha=0.5)
    verdict = {"fail": "FAIL", "pass": "pass"}.get(str(res.status), str(res.status))
    title = f"{noun} at ηλ → 0 is " + ("within " if ok else "NOT within ") + f"{k:g} s.e. of 0"
    if ok and str(res.status) == "fail":  # rejected on another ground (the norm, the amplitude, the fit's χ²)
        title += "\nthe check fails on another ground: see its message"
    ax.set_title(title, fontsize=8, color="black" if ok else FAIL_COLOR)
    fig.suptitle(f"{res.model} · {res.name}: {verdict}", fontsize=9,
                 color=FAIL_COLOR if verdict == "FAIL" else "black")
    fig.tight_layout()
    fig.canvas.draw()
    top = ax.transAxes.inverted().transform((0, ax.xaxis.label.get_window_extent().y0))[1] - 0.03
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, top), ncol=1, frameon=False, borderaxespad=0.0)
    return fig


def plot_check(res: CheckResult, folder: Path) -> str | None:
    """Write the figure of ``res`` (``draw_check``) as ``folder/<model>-<check>.png``; returns its path relative
    to the report folder, or None when the check has no ladder figure."""
    import matplotlib.pyplot as plt

    fig = draw_check(res)
    if fig is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{res.model}-{res.name}.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata=PNG_METADATA, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
    return f"{folder.name}/{path.name}"
