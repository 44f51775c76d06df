"""A convergence check's ladder: errors measured on rungs of a small parameter, extended while not asymptotic,
judged by ``verdicts.judge`` against the theory's order, and turned into a ``CheckResult`` with its resolving power
(docs/theory.md §7)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .session import CheckResult, Session, result
from .simulate import Trajectory
from .verdicts import LadderVerdict, Order, Status, judge

#: the orders the theory states (docs/theory.md §7)
GDWD_ORDER = Order(p=1.0, param="ηλ")
NGD_ORDER = Order(p=2.0, param="η")
SQRT_ORDER = Order(p=1.0, param="η")
NOWD_ORDER = Order(p=1.0, param="ε")
NOWD_REST_ORDER = Order(p=1.0, param="ε")


def first_monitor(runs: list[Trajectory]) -> str:
    """The first assumption the run monitor flagged on ``runs`` ("" when none)."""
    for tr in runs:
        if tr.monitor:
            return f"{tr.algorithm} η={tr.lr:g} λ={tr.wd:g}: {tr.monitor[0]}"
    return ""


def run_ladder(session: Session, ladder, measure: Callable[[float], dict], orders: dict[str, Order],
               cost: Callable[[float], float], budget: int | None = None,
               pre_asymptotic: Callable[[list], str] | None = None) -> tuple[list, list, dict[str, LadderVerdict]]:
    """Errors ``measure(x)`` (named) on every rung, judged per name; while a verdict is not yet asymptotic, or
    ``pre_asymptotic(xs)`` says why the rungs are not (a check's own premise, e.g. the √L split's transient, which
    makes a FAIL of the magnitude rules inconclusive), rungs x_min/extend_factor are added as long as their ``cost``
    (steps) fits in ``budget`` (default ``config.extend_steps``)."""
    budget = session.config.extend_steps if budget is None else budget
    xs = sorted((float(x) for x in ladder), reverse=True)
    rows = [measure(x) for x in xs]
    spent = 0.0
    while True:
        verdicts = {k: judge(xs, [r[k] for r in rows], o) for k, o in orders.items()}
        why = pre_asymptotic(xs) if pre_asymptotic is not None else ""
        if not why and not any(v.extendable for v in verdicts.values()):
            break
        x_new = xs[-1] / session.config.extend_factor
        if spent + cost(x_new) > budget:
            for v in verdicts.values():
                if v.extendable or why:
                    v.reason += (f"; the next rung ({v.ladder[-1] / session.config.extend_factor:g}) would exceed the "
                                 f"budget of {budget:,} extra steps")
            break
        spent += cost(x_new)
        xs.append(x_new)
        rows.append(measure(x_new))
    return xs, rows, verdicts


def combine(verdicts: dict[str, LadderVerdict]) -> tuple[Status, str]:
    """fail if any verdict fails, else inconclusive if any is, else pass; the reasons joined."""
    statuses = [v.status for v in verdicts.values()]
    status = (Status.FAIL if Status.FAIL in statuses else Status.INCONCLUSIVE if Status.INCONCLUSIVE in statuses
              else Status.PASS)
    return status, "; ".join(f"{k}: {v.reason}" for k, v in verdicts.items())


def rejected_by(xs, errors_of: Callable[[float], list], orders: dict[str, Order]) -> Callable[[float], bool]:
    """δ ↦ whether the prediction perturbed by δ is rejected on the recorded rungs: some ladder verdict on its errors
    is not ``pass`` (a fail, or an inconclusive that the check would resolve by adding rungs)."""
    def rejected(delta: float) -> bool:
        rows = errors_of(delta)
        return any(judge(xs, [r[k] for r in rows], o).status != Status.PASS for k, o in orders.items())
    return rejected


def ladder_result(session, name, xs, rows, verdicts, runs, powers, extra=None) -> CheckResult:
    """The ``CheckResult`` of a ladder check: assumption-violated when the run monitor flagged a run, else the
    combined verdict, the errors per rung, each verdict's details and δ* (NaN unless the check passes)."""
    monitored = first_monitor(runs)
    if monitored:
        return result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"), monitored, runs=runs)
    status, message = combine(verdicts)
    if status != Status.PASS:  # δ* measures how finely a passing check resolves; elsewhere it has no meaning
        powers = {k: float("nan") for k in powers}
    details = {"ladder": xs, **{f"{k}_errors": [r[k] for r in rows] for k in rows[0]},
               **{k: v.to_details() for k, v in verdicts.items()}, **(extra or {})}
    scaled = max((v.shortfall for v in verdicts.values() if np.isfinite(v.shortfall)), default=float("nan"))
    return result(session, name, status, 0.0, {k: v.errors[-1] for k, v in verdicts.items()}, "order", scaled,
                  message, details, runs, powers)
