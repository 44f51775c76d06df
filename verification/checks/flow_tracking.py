"""flow-tracking: GD+WD at EoS follows the sharpness-reduction flow, path and clock, with error O(ηλ)."""

from __future__ import annotations

from typing import Callable

import srflow.theory as th

from ..ladder import GDWD_ORDER, ladder_result, rejected_by, run_ladder
from ..session import CheckResult, Session, guard
from ..tracking import neighbourhood_caveat, separation_caveat, cluster_caveat, gdwd_horizon, path_and_clock, phi_error, with_caveat
from ..verdicts import resolving_power
from . import _costs
from ._record import Check, Series


def check_flow_tracking(session: Session, clock: Callable | None = None, name: str = "flow-tracking") -> CheckResult:
    """GD+WD at EoS, for each ηλ of the ladder, over τ = ηλt ∈ [0, τ_end], against the canonical flow ζ:

    * ``path``: max_t ‖Φ(w̄_t) - ζ(s_t)‖ at the run's intrinsic clock s_t -- the flow's path and its
      coefficient -¼ (``theory.flows.CANONICAL_COEF``);
    * ``clock``: max over every step of |s_t - s(t)|, s(t) from ``clock`` (default ``theory.gdwd_steps``:
      2ηλ(t - t₀) = s + log(λ₁(ζ(0))/λ₁(ζ(s)))).

    Both are O(ηλ) (``GDWD_ORDER``); δ* is reported for the clock's rate (steps × (1 + δ)) and for the flow
    coefficient (-¼(1 + δ)). The combined error ‖Φ(w̄_t) - ζ(s(t))‖ is reported alongside. Through a cluster of
    tied top eigenvalues the flow is the cluster flow (docs/theory.md §4c); where it has a join, a halt or a near
    tie within the runs' reach the verdict is assumption-violated, naming it, with the measured verdict kept
    (``tracking.cluster_caveat``)."""

    def run():
        clk = clock or th.gdwd_steps
        flow = session.flow(gdwd_horizon(session))

        paths: dict = {}

        def errors(eta_lambda, factor=1.0, scale=1.0):
            tr = session.gdwd_run(eta_lambda)
            return path_and_clock(tr, flow, clk, (tr.lr, tr.wd), paths, factor, scale)

        orders = {"path": GDWD_ORDER, "clock": GDWD_ORDER}
        ladder, rows, verdicts = run_ladder(session, session.config.ladder, errors, orders,
                                            cost=lambda eta_lambda: session.config.tau_end / eta_lambda)
        runs = [session.gdwd_run(eta_lambda) for eta_lambda in ladder]
        powers = {
            "clock rate": resolving_power(rejected_by(ladder, lambda d: [errors(v, scale=1 + d) for v in ladder], orders)),
            "flow coefficient": resolving_power(rejected_by(ladder, lambda d: [errors(v, factor=1 + d) for v in ladder],
                                                            orders)),
        }
        combined = [phi_error(tr, flow, th.s_at_steps(flow, clk(flow, tr.lr, tr.wd), tr.steps)) for tr in runs]
        res = ladder_result(session, name, ladder, rows, verdicts, runs, powers,
                            {"combined_errors": combined, "G_max": float(flow.G.max()),
                             "sharpness_drop": float(1 - flow.lam1[-1] / flow.lam1[0]),
                             "cluster_size_max": _cluster_size_max(flow)})
        # the runs must stay O(√ηλ) from Γ (docs/theory.md §6), and a join, a halt or a near tie is outside the claim
        return with_caveat(res, neighbourhood_caveat(runs) or separation_caveat(session, ladder)
                           or cluster_caveat(session, flow))

    return guard(session, name, run)


def _cluster_size_max(flow) -> int:
    sizes = getattr(flow, "cluster_size", None)
    return 1 if sizes is None else int(max(sizes))


CHECK = Check(
    name="flow-tracking", position=10, group="gdwd", run=check_flow_tracking, ladder=True, order=GDWD_ORDER,
    summary="GD+WD at the edge of stability follows the sharpness-reduction flow: Φ(w̄_t) on its path at the run's "
            "own clock, and that clock at the 4/(4+G) rate, both with error O(ηλ).",
    cost=_costs.gdwd_ladder,
    series=(Series("path_errors", "path: ‖Φ(w̄_t) − ζ(s_t)‖", "path"),
            Series("clock_errors", "clock: |s_t − s(t)|", "clock"),
            Series("combined_errors", "‖Φ(w̄_t) − ζ(s(t))‖")))
