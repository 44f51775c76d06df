"""no-wd-clock: GD without weight decay follows the flow on its own clock and comes to rest where predicted."""

from __future__ import annotations

from typing import Callable

import numpy as np

import srflow.theory as th

from .. import tolerances as tol
from ..ladder import NOWD_ORDER, NOWD_REST_ORDER, ladder_result, rejected_by, run_ladder
from ..session import CheckResult, Session, guard
from ..simulate import simulate
from ..tracking import phi_error
from ..verdicts import Status, resolving_power
from ._record import Check, Series


def check_nowd_clock(session: Session, stop: Callable | None = None) -> CheckResult:
    """GD without WD from η_eff λ₁ = 2(1 + ε) (``theory.nowd_start_norm_sq``) with a tiny kick, for each ε:

    * ``tracking``: max_t ‖Φ(w̄_t) - ζ(s_t)‖ with s_t = log(‖w_t‖²/‖w_0‖²) (``theory.nowd_flow_time``), relative
      to the distance ‖ζ(s_∞) - ζ(0)‖ the run moves (itself O(ε)): O(ε);
    * ``rest point``: where the run comes to rest, s_∞, vs ``stop``(flow, η, ‖w_0‖²) (default
      ``theory.nowd_final``: it overshoots to η_eff λ₁ = 2/(1 + ε)), relative, O(ε).

    ``theory.nowd_stop`` (stopping at η_eff λ₁ = 2) is reported alongside. δ*: the rest point × (1 + δ)."""
    name = "no-wd-clock"

    def run():
        cfg, m = session.config, session.model
        stop_fn = stop or th.nowd_final
        mp = th.manifold_point(m, session.theta0)
        flow = session.flow(2.2 * np.log1p(max(cfg.nowd_ladder)) + 0.05)
        cache: dict = {}

        def simulate_eps(eps):
            if eps not in cache:
                n0 = th.nowd_start_norm_sq(cfg.lr, mp.lam1, eps)
                steps = int(300 / eps)  # growth e^{4εt} from the kick, then as long again to settle
                tr = simulate(m, np.sqrt(n0) * (mp.theta + cfg.nowd_kick * mp.v1), cfg.lr, steps,
                              every=max(1, steps // 40), track_phi=True, quiet=session.quiet,
                              label=f"{session.name} GD ε={eps:g}")
                if tr.diverged:
                    raise RuntimeError(f"GD without WD, ε = {eps:g}: {tr.diverged}")
                s = th.nowd_flow_time(tr.norm_sq, tr.norm_sq[0])
                if s[-1] > flow.s[-1]:
                    raise RuntimeError(f"GD without WD, ε = {eps:g}: moved beyond the flow's horizon (s = {s[-1]:.3g})")
                cache[eps] = (tr, s, n0, stop_fn(flow, cfg.lr, n0), th.nowd_stop(flow, cfg.lr, n0))
            return cache[eps]

        def errors(eps, d=0.0):
            # the run covers a flow time s ≈ 2 log(1 + ε): the tracking error is relative to the distance moved
            tr, s, n0, pred, _ = simulate_eps(eps)
            moved = float(np.linalg.norm(flow.at(s[-1])[0] - flow.theta[0]))
            return {"tracking": phi_error(tr, flow, s) / moved, "rest point": abs(s[-1] / (pred * (1 + d)) - 1)}

        orders = {"tracking": NOWD_ORDER, "rest point": NOWD_REST_ORDER}
        xs, rows, verdicts = run_ladder(session, cfg.nowd_ladder, errors, orders, cost=lambda e: 300 / e)
        runs = [simulate_eps(e)[0] for e in xs]
        powers = {"rest point": resolving_power(rejected_by(xs, lambda d: [errors(e, d) for e in xs],
                                                          {"rest point": NOWD_REST_ORDER}))}
        s_obs, s_pred, s_half = zip(*[(simulate_eps(e)[1][-1], simulate_eps(e)[3], simulate_eps(e)[4]) for e in xs])
        # no power where the flow hardly moves: the tracking error, O(ε) relative to the distance moved, must be
        # resolvable above the precision of Φ at the smallest ε (λ₁ constant along Γ: the distance is ≈ 0)
        moved = [float(np.linalg.norm(flow.at(simulate_eps(e)[1][-1])[0] - flow.theta[0])) for e in xs]
        if min(d * e for d, e in zip(moved, xs)) <= tol.NO_POWER_FACTOR * tol.ERROR_FLOOR:
            v = verdicts["tracking"]
            v.status, v.extendable = Status.INCONCLUSIVE, False
            v.reason = (f"no power: the flow moves {min(moved):.2g} over the run at ε = {xs[int(np.argmin(moved))]:g} "
                        f"(G ≤ {float(flow.G.max()):.2g}), so an error O(ε) relative to that distance is below the "
                        f"precision of Φ ({tol.ERROR_FLOOR:g}) -- tracking cannot be tested on this model")
        res = ladder_result(session, name, xs, rows, verdicts, runs, powers,
                             {"s_final": s_obs, "s_final_predicted": s_pred, "s_stop_at_threshold": s_half,
                              "distance_moved": moved})
        res.message += (f"; comes to rest at s = {s_obs[-1]:.4g} vs {s_pred[-1]:.4g} predicted; stopping at "
                        f"η_eff λ₁ = 2 would give {s_half[-1]:.4g}")
        return res

    return guard(session, name, run)


CHECK = Check(
    name="no-wd-clock", position=50, group="related", run=check_nowd_clock, order=NOWD_ORDER,
    summary="GD without weight decay from η_eff λ₁ = 2(1+ε) follows the flow at the clock log(‖w_t‖²/‖w₀‖²) and "
            "comes to rest at η_eff λ₁ = 2/(1+ε), errors O(ε).",
    cost=lambda config: {"no-wd": (sum(int(300 / e) for e in config.nowd_ladder), 41 * len(config.nowd_ladder))},
    series=(Series("tracking_errors", "tracking, relative to the distance moved", "tracking"),
            Series("rest point_errors", "rest point, relative", "rest point")),
    xlabel="ε (start at η_eff λ₁ = 2(1+ε))")
