"""The claims a caption makes, computed from the arrays the figure plots: one place for each kind of claim.

Each helper returns a :class:`Claim`: whether the data bear the claim out (``holds``), the sentence the caption
prints (``text``, stating what was measured, and the opposite of the claim when the data contradict it) and the
measured numbers. A caption never asserts a slope, a "tracks", a "settles" or a "runs ahead" of its own: it asks
a helper here, so that data that go the other way make it say the other thing (tests/test_figures.py hands each
figure's caption such data).

The rules are the verdicts' (``verification.tolerances``), so a figure and ``srflow verify`` use one yardstick:

* an **order** e ∝ x^q holds for the theory's order p when the least-squares q ≥ p − ORDER_MARGIN (an order
  faster than p holds too: e = O(x^p)); the error "does not fall" when q < ORDER_MARGIN (the order 0 of a fixed
  relative error, within the same margin); in between it falls slower than the theory says;
* **closer**: a is closer to its reference than b when max|a| < max|b|, stated with the factor;
* **follows**: a run follows a prediction rather than an alternative when its largest relative distance from
  the prediction is below its largest relative distance from the alternative;
* **tracks** (a moving prediction): the slope of log(observed) against log(predicted) is 1 within ORDER_MARGIN and
  the mean log-offset is at most ORDER_MARGIN times the prediction's log-movement; where that slope's standard error exceeds ORDER_MARGIN (the prediction
  moves too little against the scatter), nothing can be said either way (``holds`` is None);
* **level**: a ratio to a reference is 1 within a band the caller states (else above or below it);
* **paired difference** (over seeds): a is lower than b when the 95% confidence interval of the mean paired
  difference lies below 0, higher when above, and nothing can be said when it contains 0; the paired t and
  Wilcoxon signed-rank p-values are stated beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Claim:
    """A caption's claim: ``holds`` True (the data bear it out), False (they contradict it) or None (they cannot
    tell); ``text`` the caption's sentence; ``values`` the measured numbers."""

    holds: bool | None
    text: str
    values: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


def _margin() -> float:
    from srflow.verification.tolerances import ORDER_MARGIN

    return ORDER_MARGIN


def _fmt(v: float) -> str:
    """``v`` to two decimals, without the sign of a negative zero."""
    text = f"{v:.2f}"
    return "0.00" if text == "-0.00" else text


def _fit_text(param: str, q: float, se: float) -> str:
    return f"∝ ({param})^{_fmt(q)}" + (f"±{_fmt(se)}" if np.isfinite(se) else "")


def fit_order(x, e) -> tuple[float, float]:
    """Least-squares slope q of log e against log x and its standard error (``verdicts.fit_exponent``; inf with
    fewer than 3 points)."""
    from srflow.verification.verdicts import fit_exponent

    return fit_exponent(x, e)


def order(x, e, p: float, what: str, param: str = "ηλ") -> Claim:
    """Does ``e`` fall as ``param``^p? Fitted q ≥ p − margin: "falls at the theory's order"; q < margin: "does not
    fall"; otherwise "falls slower than the theory's order". ``what`` names the error."""
    q, se = fit_order(x, e)
    margin = _margin()
    fit = _fit_text(param, q, se)
    if q >= p - margin:
        holds, text = True, f"{what} falls at the theory's order {p:g}: {fit}"
    elif q < margin:
        holds, text = False, f"{what} does not fall with {param}: {fit}"
    else:
        holds, text = False, f"{what} falls slower than the theory's order {p:g}: {fit}"
    return Claim(holds, text, {"q": q, "se": se, "p": p})


def flat(x, e, what: str, param: str = "ηλ") -> Claim:
    """Does ``e`` stay flat (a negative control's error: order 0)? |q| < margin: "does not fall"; else it falls
    (or grows) at the fitted order."""
    q, se = fit_order(x, e)
    fit = _fit_text(param, q, se)
    if abs(q) < _margin():
        return Claim(True, f"{what} does not fall: {fit}", {"q": q, "se": se})
    return Claim(False, f"{what} {'falls' if q > 0 else 'grows'} as {param} → 0: {fit}", {"q": q, "se": se})


def closer(a, b, a_name: str, b_name: str, to: str = "", unit: str = "max distance") -> Claim:
    """Is ``a`` smaller than ``b`` (largest absolute values), i.e. ``a_name`` closer ``to`` the reference than
    ``b_name``? The caption states both and the factor."""
    ma, mb = float(np.max(np.abs(a))), float(np.max(np.abs(b)))
    to = f" to {to}" if to else ""
    if ma < mb:
        return Claim(True, f"{a_name} stays closer{to} ({unit} {ma:.1e}) than {b_name} ({mb:.1e}, {mb / ma:.0f}× "
                     "more)", {"a": ma, "b": mb})
    return Claim(False, f"{a_name} does not stay closer{to} ({unit} {ma:.1e}) than {b_name} ({mb:.1e})",
                 {"a": ma, "b": mb})


def follows(observed, predicted, alternative, pred_name: str, alt_name: str) -> Claim:
    """Does ``observed`` follow ``predicted`` rather than ``alternative`` (all on the same grid)? Compares the
    largest relative distances max|observed/predicted − 1| and max|observed/alternative − 1|."""
    observed = np.asarray(observed, float)
    d_pred = float(np.max(np.abs(observed / np.asarray(predicted, float) - 1)))
    d_alt = float(np.max(np.abs(observed / np.asarray(alternative, float) - 1)))
    values = {"pred": d_pred, "alt": d_alt}
    if d_pred < d_alt:
        return Claim(True, f"follows {pred_name} (within {d_pred:.1e} relative), not {alt_name} (up to "
                     f"{d_alt:.1e})", values)
    return Claim(False, f"does not follow {pred_name} better than {alt_name} (within {d_pred:.1e} relative of the "
                 f"first, {d_alt:.1e} of the second)", values)


def change(y, what: str) -> Claim:
    """Whether ``y`` rises (``holds`` True) or falls from its first to its last value, and from what to what."""
    y0, y1 = float(y[0]), float(y[-1])
    rel = y1 / y0 - 1
    word = "rises" if rel > 0 else "falls" if rel < 0 else "stays"
    return Claim(rel > 0, f"{what} {word}" + (f" from {y0:.3g} to {y1:.3g} ({rel:+.1%})" if rel else f" at {y0:.3g}"),
                 {"rel": rel})


def rate(measured: float, predicted: float, what: str, bound: float) -> Claim:
    """Does a measured rate equal the predicted one within ``bound`` (relative; the caller derives it)?"""
    rel = measured / predicted - 1
    values = {"rel": rel, "bound": bound}
    if abs(rel) <= bound:
        return Claim(True, f"{what} as predicted (measured/predicted − 1 = {rel:.1e})", values)
    return Claim(False, f"{what} not as predicted (measured/predicted − 1 = {rel:+.1e}, beyond {bound:.0e})", values)


def tracks(observed, predicted, what: str, pred_name: str) -> Claim:
    """Does ``observed`` track a moving ``predicted`` (same grid)? The least-squares slope b of log observed on
    log predicted must be 1 within ORDER_MARGIN, and the mean offset |⟨log(observed/predicted)⟩| at most
    ORDER_MARGIN times the distance the prediction moves (max − min of log predicted): a run that follows the
    prediction's change, not a fixed value, and sits on it rather than beside it.
    Where b's standard error exceeds ORDER_MARGIN (the prediction moves too little against the scatter about it),
    the data cannot tell a tracking run from a frozen one: ``holds`` None."""
    ratio = np.asarray(observed, float) / np.asarray(predicted, float)
    lo_r, hi_r = float(ratio.min()), float(ratio.max())
    b, se = fit_order(predicted, observed)
    values = {"ratio_min": lo_r, "ratio_max": hi_r, "slope": b, "slope_se": se}
    where = f"{what}/{pred_name} in [{lo_r:.3f}, {hi_r:.3f}], slope of log against log {_fmt(b)}±{_fmt(se)}"
    margin = _margin()
    if not se <= margin:
        return Claim(None, f"{where}: the prediction moves too little against the scatter to tell tracking from a "
                     "fixed value", values)
    offset, moved = float(np.mean(np.log(ratio))), float(np.ptp(np.log(np.asarray(predicted, float))))
    values.update(offset=offset, moved=moved)
    where += f", mean log-offset {offset:+.1e} against a log-movement {moved:.2g}"
    if abs(b - 1) <= margin and abs(offset) <= margin * moved:
        return Claim(True, f"{what} tracks {pred_name} ({where})", values)
    return Claim(False, f"{what} does not track {pred_name} ({where}; tracking has slope 1 within {margin:g} and an "
                 f"offset below {margin:g}× the movement)", values)


def within(observed: float, predicted: float, tolerance: float, what: str, unit: str = "") -> Claim:
    """Is |observed − predicted| ≤ ``tolerance`` (absolute; the caller states where it comes from)?"""
    diff = observed - predicted
    values = {"diff": diff, "tolerance": tolerance}
    nums = f"{observed:.2f} vs predicted {predicted:.2f}{unit}, difference {diff:+.2g}"
    if abs(diff) <= tolerance:
        return Claim(True, f"{what} as predicted ({nums}, within {tolerance:.2g})", values)
    return Claim(False, f"{what} not as predicted ({nums}, beyond {tolerance:.2g})", values)


def norm_decay(steps, norm_sq, start: float, end: float, lr: float, eta_lambda: float, rho: float) -> Claim:
    """Does ‖w_t‖² decay as (1 − ηλ)^{2t} between steps ``start`` (on Γ: ‖∇L‖ ≤ ``rho``·λ₁‖w‖) and ``end`` (before
    the edge of stability)? The measured log-rate per step against ``theory.norm_decay_rate``, which it may exceed
    by at most 4ρ² there (its docstring), plus the round-off of two logarithms over the window."""
    from srflow.theory import norm_decay_rate

    steps, norm_sq = np.asarray(steps), np.asarray(norm_sq, float)
    i, j = int(np.searchsorted(steps, start)), int(np.searchsorted(steps, end, side="right")) - 1
    if j <= i:
        return Claim(None, "‖w_t‖² has no recorded steps between Γ and the edge of stability", {})
    measured = float(np.log(norm_sq[j] / norm_sq[i]) / (steps[j] - steps[i]))
    predicted = norm_decay_rate(lr, eta_lambda / lr)
    bound = (4 * rho**2 + 4 * np.finfo(float).eps / (steps[j] - steps[i])) / abs(predicted)
    claim = rate(measured, predicted, f"‖w_t‖² decays as (1−ηλ)^(2t) from step {int(steps[i])} to {int(steps[j])}",
                 bound)
    return Claim(claim.holds, claim.text, {**claim.values, "measured": measured, "predicted": predicted})


def ahead(s_a, s_b, a_name: str, b_name: str) -> Claim:
    """Is clock ``a`` ahead of clock ``b`` (s_a ≥ s_b at every record, and somewhere strictly)?"""
    s_a, s_b = np.asarray(s_a, float), np.asarray(s_b, float)
    values = {"a_end": float(s_a[-1]), "b_end": float(s_b[-1])}
    ends = f"s = {s_a[-1]:.3g} vs {s_b[-1]:.3g} at the last record"
    if np.all(s_a >= s_b) and np.any(s_a > s_b):
        return Claim(True, f"{a_name} runs ahead of {b_name} along the path ({ends})", values)
    return Claim(False, f"{a_name} does not run ahead of {b_name} along the path ({ends})", values)


def trend(t, y, what: str, per: str = "step") -> Claim:
    """Does ``y`` (> 0) rise on the whole over ``t``: the sign of the least-squares slope of log y against t (a
    series that falls and then jumps to a higher last value does not rise on the whole; ``change`` compares the
    ends only)."""
    t, ly = np.asarray(t, float), np.log(np.asarray(y, float))
    slope = float(np.polyfit(t, ly, 1)[0]) if len(t) > 1 else 0.0
    word = "rises" if slope > 0 else "falls" if slope < 0 else "stays"
    return Claim(slope > 0, f"{what} {word} (least-squares slope of its log {slope:+.2g} per {per})", {"slope": slope})


def level(ratio: float, rtol: float, what: str, ref: str = "the threshold") -> Claim:
    """Does ``what`` sit at ``ref``: is the measured ratio to it 1 within ``rtol`` (the caller states where that
    band comes from)? Otherwise it sits above or below, by how much."""
    dev = float(ratio) - 1.0
    values = {"ratio": float(ratio), "rtol": rtol}
    if abs(dev) <= rtol:
        return Claim(True, f"{what} sits at {ref} ({float(ratio):.3f} of it, within {rtol:.0%})", values)
    return Claim(False, f"{what} sits {'above' if dev > 0 else 'below'} {ref} ({float(ratio):.3f} of it, "
                 f"{abs(dev):.0%} {'above' if dev > 0 else 'below'}, beyond {rtol:.0%})", values)


def paired_difference(a, b, a_name: str, b_name: str, unit: str = "", scale: float = 1.0, digits: int = 1) -> Claim:
    """Is ``a`` lower than ``b`` on the same seeds (paired)? The mean of a - b with its 95% Student-t confidence
    interval, the number of seeds where a < b, and two tests of a zero median/mean difference (paired t and
    Wilcoxon signed-rank, ``_common.paired_stats``). ``holds`` True when the interval lies below 0, False when it
    lies above 0, None when it contains 0 (the data cannot tell). ``scale`` multiplies the differences for the text
    (e.g. 100 for percentage points)."""
    from ._common import paired_stats

    st = paired_stats(a, b)
    m, h = scale * st["mean"], scale * st["half"]
    if st["n"] < 2:
        return Claim(None, f"{a_name} minus {b_name}: {m:+.{digits}f}{unit} on the one seed (no interval, no test)", st)
    nums = (f"{a_name} minus {b_name}, paired by seed: {m:+.{digits}f} ± {h:.{digits}f}{unit} (mean ± 95% CI, "
            f"{st['n']} seeds), lower on {st['lower']} and higher on {st['higher']} of them; paired t p = "
            f"{st['t_p']:.2g}, Wilcoxon signed-rank p = {st['wilcoxon_p']:.2g}")
    if st["mean"] + st["half"] < 0:
        return Claim(True, f"{nums}: {a_name} is lower (the interval excludes 0)", st)
    if st["mean"] - st["half"] > 0:
        return Claim(False, f"{nums}: {a_name} is higher (the interval excludes 0)", st)
    return Claim(None, f"{nums}: no significant difference (the interval contains 0)", st)
