"""naive-flow-rejected: the negative control -- the naive clock s = 2ηλt is rejected on the same runs."""

from __future__ import annotations

import srflow.theory as th

from .. import tolerances as tol
from ..ladder import GDWD_ORDER
from ..session import CheckResult, Session, guard, result
from ..tracking import neighbourhood_caveat, separation_caveat, clock_error, cluster_caveat, gdwd_horizon, with_caveat
from ..verdicts import Status, judge
from . import _costs
from ._record import Check, Series


def check_naive_flow_rejected(session: Session) -> CheckResult:
    """Negative control: the naive clock s = 2ηλt (the G → 0 form) must be rejected by the same verdict rules
    that pass the 4/(4+G) clock, on the same runs (its clock error then does not vanish with ηλ). Without power
    (``inconclusive``) where G < NAIVE_MIN_G on the whole path: the clocks then differ by < 2.5% in speed."""
    name = "naive-flow-rejected"

    def run():
        flow = session.flow(gdwd_horizon(session))
        if flow.G.max() < tol.NAIVE_MIN_G:
            return result(session, name, Status.INCONCLUSIVE, None, None, None, float("nan"),
                          f"no power: G ≤ {flow.G.max():.2g} on the whole path; the naive and the true clocks differ "
                          "by < 2.5% in speed, so this control cannot discriminate on this model",
                          {"G_max": float(flow.G.max())})
        ladder = sorted(session.config.ladder, reverse=True)
        runs = [session.gdwd_run(eta_lambda) for eta_lambda in ladder]
        naive = [clock_error(tr, flow, th.naive_gdwd_steps(flow, tr.lr, tr.wd)) for tr in runs]
        right = [clock_error(tr, flow, th.gdwd_steps(flow, tr.lr, tr.wd)) for tr in runs]
        v = judge(ladder, naive, GDWD_ORDER)
        ratio = naive[-1] / max(right[-1], 1e-300)
        ok = v.status == Status.FAIL and ratio >= tol.NAIVE_RATIO
        # the naive clock's own ladder undecided (not yet asymptotic): the control waits, like any verdict
        undecided = v.status == Status.INCONCLUSIVE
        if ok:
            msg = (f"the naive clock is rejected: {v.reason}; its error is {ratio:.0f}x the 4/(4+G) clock's at ηλ = "
                   f"{ladder[-1]:g}")
        elif undecided:
            msg = (f"the naive clock's ladder is undecided ({v.reason}; {ratio:.1f}x the right clock's error at ηλ = "
                   f"{ladder[-1]:g}): smaller ηλ decide whether it is rejected")
        else:
            msg = (f"the naive clock is NOT rejected (its verdict: {v.status}: {v.reason}; {ratio:.1f}x the right "
                   "clock's error): the suite cannot tell the two clocks apart here")
        status = Status.PASS if ok else Status.INCONCLUSIVE if undecided else Status.FAIL
        res = result(session, name, status, f">= {tol.NAIVE_RATIO:g}", ratio,
                     tol.NAIVE_RATIO, tol.NAIVE_RATIO / ratio, msg,
                     {"ladder": ladder, "naive_errors": naive, "flow_errors": right, "naive_verdict": v.to_details(),
                      "G_max": float(flow.G.max())}, runs)
        # outside the runs' neighbourhood of Γ, or at a join, halt or near tie, the control tests nothing (docs §6, §4c)
        return with_caveat(res, neighbourhood_caveat(runs) or separation_caveat(session, ladder)
                           or cluster_caveat(session, flow))

    return guard(session, name, run)


CHECK = Check(
    name="naive-flow-rejected", position=20, group="gdwd", run=check_naive_flow_rejected, ladder=True,
    order=GDWD_ORDER,
    summary="Negative control: the naive clock s = 2ηλt is rejected by the same rules on the same runs.",
    cost=_costs.gdwd_ladder,
    series=(Series("flow_errors", "clock error, 4/(4+G) clock"),
            Series("naive_errors", "clock error, naive clock", "naive_verdict")))
