"""One verdict for every convergence check, and its resolving power (docs/theory.md §7).

A convergence check measures an error e_i at rungs x_0 > x_1 > … of a small parameter (ηλ, η or ε) and the
theory states its order: e ≈ K·x^p as x → 0. The verdict is read from the *local exponents*

.. math:: q_i = \\log(e_{i-1}/e_i) / \\log(x_{i-1}/x_i),

which tend to p in the asymptotic regime and to 0 when a prediction is wrong by a fixed relative amount δ
(the error then tends to a floor ≈ δ·(distance travelled), which no smaller x removes):

* **pass**: the last two local exponents agree within ``SETTLE_TOL`` (the asymptotic regime is reached), the
  order fitted on the last three rungs is ≥ p − ``ORDER_MARGIN``, and the constant K_i = e_i/x_i^p has settled:
  the shortfall of the last local exponent below p, max(0, p − q_n) = log(K_n/K_{n-1})/log(x_{n-1}/x_n), is no
  larger than the one before it or than ``CONSTANT_TOL`` (for e = K x^p (1 + βx^r) the shortfall shrinks like
  x^r from rung to rung; a floor makes it grow). An error falling *faster* than x^p is consistent with
  e = O(x^p) and passes;
* **fail**: the last *three* local exponents agree within SETTLE_TOL at an order below p − ORDER_MARGIN and
  are not rising (a floor: the error does not vanish); or two consecutive local exponents had settled at
  ≥ p − ORDER_MARGIN on larger rungs and the last one is below it (an asymptotic regime, once entered, is not
  left: the error has turned into a floor);
* **inconclusive**: anything else (not yet asymptotic, rising towards p, a constant still growing, fewer than
  three resolvable rungs, all errors at the numerical floor) -- with the reason and the rungs; the check may then
  add rungs. This includes an error that fell at the order and then flattened over two rung intervals, or whose
  local exponents fall rung after rung: a floor looks like that, but so does a pre-asymptotic plateau *after*
  a first fall -- GD on √L on ``bn_linear`` has local exponents 1.07, −0.04, −0.04, 0.99, 0.99 over
  η = 0.02 … 0.000625 (docs/theory.md §7), so a ladder that stops in the plateau must not fail; more rungs decide
  (a floor then settles over three intervals and fails).

No constant C of e ≤ C·x^p is assumed: its size depends on the model (λ₁/μ, G, the cubic terms), and a bound
tuned on a few models fails on others where the order is right (docs/theory.md §7). The constant measured at the
smallest rung, K = e_n/x_n^p, is reported.

The resolving power δ* of a check is the smallest relative perturbation of the prediction under test that
these same rules no longer pass on the same recorded runs (a fail, or an inconclusive that more rungs would
decide: without a bound on the constant, a floor that partly cancels the O(x^p) error on the recorded rungs can
look like a pre-asymptotic plateau there), found by bisection in log δ for each sign (the larger of the two is
reported, so that every |δ| ≥ δ* is rejected whichever its sign).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable

import numpy as np

from . import tolerances as tol


class Status(StrEnum):
    """A check's verdict. A ``str``: it compares equal to, and serializes as, its value."""

    PASS = "pass"
    FAIL = "fail"
    #: the runs cannot decide: not asymptotic within the budget, or a check without power on this model
    INCONCLUSIVE = "inconclusive"
    #: an assumption of the theory does not hold on this model or run (said where and why)
    ASSUMPTION_VIOLATED = "assumption-violated"
    #: an internal error (an exception in a check, a crashed worker): not a verdict
    ERROR = "error"


#: verdicts that are not failures (``srflow verify`` exits 0 when every result is one of these)
NOT_FAILING = (Status.PASS, Status.INCONCLUSIVE, Status.ASSUMPTION_VIOLATED)


@dataclass(frozen=True)
class Order:
    """The theory's error order for one check: e = O(x^``p``) as x = ``param`` → 0.

    ``floor``: errors at or below it are numerical noise (solver and projection tolerances), not data."""

    p: float
    param: str
    margin: float = tol.ORDER_MARGIN
    floor: float = tol.ERROR_FLOOR


@dataclass
class LadderVerdict:
    """The verdict on a ladder: ``status`` (pass, fail, inconclusive), the ``reason``, the local exponents,
    the order fitted on the last three rungs with its standard error, the constant K = e/x^p at the smallest
    rung, and ``shortfall`` = (p - fitted order)/margin (≤ 1: the order is the theory's)."""

    status: Status
    reason: str
    ladder: np.ndarray
    errors: np.ndarray
    local: np.ndarray = field(default_factory=lambda: np.array([]))
    order: float = float("nan")
    order_se: float = float("nan")
    constant: float = float("nan")
    shortfall: float = float("nan")
    #: True when more rungs below the ladder could decide (not yet asymptotic)
    extendable: bool = False
    #: the theory's order it was judged against (e = O(``param``^``p``)) and the accepted shortfall ``margin``
    p: float = float("nan")
    margin: float = float("nan")
    param: str = ""
    #: indices into ``ladder`` of the rungs whose errors decided the status (the figures mark them)
    decided: tuple = ()

    def to_details(self) -> dict:
        return {"ladder": self.ladder, "errors": self.errors, "local_exponents": self.local,
                "order": self.order, "order_se": self.order_se, "constant": self.constant,
                "shortfall": self.shortfall, "status": str(self.status), "p": self.p, "margin": self.margin,
                "param": self.param, "decided": [int(i) for i in self.decided]}


def local_exponents(x, e) -> np.ndarray:
    """q_i = log(e_{i-1}/e_i)/log(x_{i-1}/x_i) between successive rungs (x decreasing)."""
    x, e = np.asarray(x, float), np.asarray(e, float)
    return np.log(e[:-1] / e[1:]) / np.log(x[:-1] / x[1:])


def fit_exponent(x, y) -> tuple[float, float]:
    """Least-squares slope p of log y = p log x + c and its standard error (inf with fewer than 3 points)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    a = np.vstack([lx, np.ones_like(lx)]).T
    coef, *_ = np.linalg.lstsq(a, ly, rcond=None)
    if len(lx) < 3:
        return float(coef[0]), float("inf")
    sigma2 = float(np.sum((ly - a @ coef) ** 2)) / (len(lx) - 2)
    return float(coef[0]), float(np.sqrt(sigma2 / np.sum((lx - lx.mean()) ** 2)))


def judge(x, e, order: Order) -> LadderVerdict:
    """The verdict on errors ``e`` at rungs ``x`` (any order; sorted here by decreasing x); see the module
    docstring for the rules."""
    x, e = np.asarray(x, float), np.asarray(e, float)
    idx = np.argsort(-x)
    x, e = x[idx], e[idx]
    v = LadderVerdict(Status.INCONCLUSIVE, "", x, e, p=order.p, margin=order.margin, param=order.param)
    if not np.all(np.isfinite(e)):
        v.status, v.reason = Status.FAIL, f"non-finite error at {order.param} = {x[~np.isfinite(e)][0]:g}"
        v.decided = tuple(np.nonzero(~np.isfinite(e))[0])
        return v
    if len(np.unique(x)) != len(x):
        v.reason = f"the ladder repeats a value of {order.param}: {x.tolist()}"
        return v
    resolved = e > order.floor
    if not resolved.any():
        v.status = Status.INCONCLUSIVE
        v.reason = (f"every error is at the numerical floor ({order.floor:g}): nothing moves, or the prediction is "
                    "exact -- no order can be measured")
        return v
    if not resolved[-1]:
        # the error reached the floor at the small rungs: judge the resolved ones
        last = int(np.nonzero(resolved)[0][-1])
        x, e = x[:last + 1], e[:last + 1]
        v.ladder, v.errors = x, e
    v.constant = float(e[-1] / x[-1] ** order.p)
    n = len(x)
    if n < 3:
        v.reason = f"only {len(x)} resolvable rung(s) of {order.param}; at least 3 are needed for two local exponents"
        v.decided = tuple(range(n))
        return v
    q = local_exponents(x, e)
    v.local = q
    p_fit, se = fit_exponent(x[-3:], e[-3:])
    v.order, v.order_se = p_fit, se
    v.shortfall = float((order.p - p_fit) / order.margin)
    low = order.p - order.margin
    rungs = ", ".join(f"{xi:g}: {ei:.2e}" for xi, ei in zip(x, e))
    qs = ", ".join(f"{qi:.2f}" for qi in q)
    settled = abs(q[-1] - q[-2]) <= tol.SETTLE_TOL
    # failing on the order asks more than passing: three local exponents within SETTLE_TOL, not rising --
    # a pre-asymptotic plateau (seen for GD on √L) must come out inconclusive, never fail
    settled_low = len(q) >= 3 and np.ptp(q[-3:]) <= tol.SETTLE_TOL and p_fit < low
    rising = q[-1] > q[-2] + tol.RISING_TOL
    # an asymptotic regime, once entered, is not left: two consecutive local exponents settled at ≥ p - margin
    # on larger rungs, then a last one below it, is an error turning into a floor
    entered = [i for i in range(1, len(q) - 1) if abs(q[i] - q[i - 1]) <= tol.SETTLE_TOL and min(q[i], q[i - 1]) >= low]
    was_asymptotic = bool(entered)
    # the rungs each rule reads (q_i spans rungs i-1, i): the pass rules and the fit read the last three
    v.decided = (n - 3, n - 2, n - 1)
    # the error bends away from x^p: the last three local exponents each fall by more than RISING_TOL
    falling_away = len(q) >= 3 and bool(np.all(np.diff(q[-3:]) < -tol.RISING_TOL))
    # fell at the theory's order, then flat over the last two rung intervals
    fell_then_flat = (len(q) >= 3 and q[-3] >= low and max(q[-2], q[-1]) < low
                      and abs(q[-1] - q[-2]) <= tol.SETTLE_TOL)
    # the constant K = e/x^p has settled: the shortfall of q below p does not grow from rung to rung
    short = np.maximum(order.p - q, 0.0)
    constant_settled = short[-1] <= max(short[-2], tol.CONSTANT_TOL)
    if settled and p_fit >= low and constant_settled:
        v.status = Status.PASS
        v.reason = (f"asymptotic (local exponents {qs}): error ∝ {order.param}^{p_fit:.2f} ± {se:.2f} on the last "
                    f"3 rungs, expected ≥ {order.p:g} - {order.margin:g}; constant e/{order.param}^{order.p:g} = "
                    f"{v.constant:.3g} at {order.param} = {x[-1]:g}")
    elif settled_low and not rising:
        v.status = Status.FAIL
        v.decided = (n - 4, n - 3, n - 2, n - 1)
        v.reason = (f"the error settles at order {p_fit:.2f} ± {se:.2f} < {low:g} (expected {order.p:g} - margin "
                    f"{order.margin:g}; local exponents {qs}): it does not vanish at the theory's rate [{rungs}]")
    elif was_asymptotic and q[-1] < low:
        v.status = Status.FAIL
        v.decided = tuple(sorted({entered[0] - 1, entered[0], entered[0] + 1, n - 2, n - 1}))
        v.reason = (f"the error was asymptotic at order ≈ {order.p:g} on the larger rungs and then stopped falling "
                    f"(local exponents {qs}): a floor the theory does not have [{rungs}]")
    elif fell_then_flat or (falling_away and q[-1] < low):
        # a floor, or a pre-asymptotic plateau after a first fall (seen: GD on √L on bn_linear): more rungs decide
        v.extendable = True
        shape = (f"fell at order {q[-3]:.2f} and then flattened" if fell_then_flat
                 else f"bends away from {order.param}^{order.p:g}")
        v.reason = (f"not yet decided: the error {shape} (local exponents {qs}) -- a floor, or a plateau before a "
                    f"second fall; smaller {order.param} decide [{rungs}]")
    else:
        v.extendable = True
        why = ("the constant e/x^p is still growing (the shortfall of the local exponents below "
               f"{order.p:g} grows: {', '.join(f'{d:.2f}' for d in short[-2:])})" if settled and p_fit >= low
               else f"local exponents {qs} have not settled (tolerance {tol.SETTLE_TOL:g}) towards {order.p:g}")
        v.reason = f"not yet asymptotic: {why} [{rungs}]"
    return v


def bisect_threshold(rejected: Callable[[float], bool], lo: float = tol.DELTA_MIN, hi: float = tol.DELTA_MAX,
                     rel: float = 0.05) -> float:
    """The smallest δ in [lo, hi] with ``rejected(δ)``, to a relative precision ``rel``, by bisection in log δ
    (assumes rejection is monotone in δ). ``inf`` when even ``hi`` is not rejected, ``lo`` when ``lo`` is."""
    if not rejected(hi):
        return float("inf")
    if rejected(lo):
        return lo
    while hi / lo > 1 + rel:
        mid = np.sqrt(lo * hi)
        if rejected(mid):
            hi = mid
        else:
            lo = mid
    return float(hi)


def resolving_power(rejected: Callable[[float], bool]) -> float:
    """δ* = max over the two signs of the smallest |δ| that ``rejected(±δ)``: every perturbation of relative
    size ≥ δ* is rejected by the check on its recorded runs."""
    return max(bisect_threshold(lambda d: rejected(d)), bisect_threshold(lambda d: rejected(-d)))
