"""no-wd-clock: GD without WD follows the flow on its own clock and comes to rest where predicted."""

from __future__ import annotations

from typing import Callable

import numpy as np

import srflow.theory as th

from .. import tolerances as tol
from ..extrapolation import extrapolate_polynomial
from ..ladder import NOWD_ORDER, NOWD_REST_ORDER, ladder_result, rejected_by, run_ladder
from ..session import CheckResult, Session, guard
from ..simulate import simulate
from ..tracking import phi_error, with_caveat
from ..verdicts import Status, judge, resolving_power
from ._record import Check, Series


#: the rest point's signed error is fitted by a + bε + cε² (docs/theory.md §5): on the quick ladder (ε = 0.1 … 0.0125)
#: the O(ε²) term is ≈ 3ε² (e.g. -0.088, -0.049, -0.026, -0.014 on a zoo bnc model: two-point extrapolations -0.010,
#: -0.0034, -0.0009, falling ∝ ε²), so a linear fit's uncertainty was 1e-2 and a rest point off by 1% passed
REST_DEGREE = 2


def rest_degree(n: int) -> int:
    """The degree of the polynomial in ε fitted to the rest point's signed error on n rungs: REST_DEGREE, whose
    truncation needs one more rung than coefficients; -1 with fewer. (a + bε on three rungs was tried: on mf its two
    two-point extrapolations, +4.8e-5 and +5.4e-5, agree by chance and made se 6e-6, a false fail; the quadratic fit on
    four rungs gives +4.9e-5 ± 2.4e-5.)"""
    return REST_DEGREE if n >= REST_DEGREE + 2 else -1


def rest_extrapolation(xs, s_obs, s_pred, d: float = 0.0) -> tuple[float, float]:
    """(a, se(a)): the signed relative rest-point error e(ε) = s_∞/(s_pred(1 + d)) - 1 on the rungs ``xs``, fitted by
    a + bε + cε² (a + bε on three rungs: ``rest_degree``; weights from the precision ERROR_FLOOR/s_pred;
    ``extrapolation.extrapolate_polynomial``) and extrapolated to ε → 0; se(a) is the fit's standard error inflated by
    its residual scatter, with the spread of the (degree + 1)-point extrapolations of consecutive rungs (the next
    terms) added in quadrature. se = inf with fewer than 3 rungs (no estimate of the truncation)."""
    xs, s_obs, s_pred = (np.asarray(v, float) for v in (xs, s_obs, s_pred))
    pred = s_pred * (1 + d)
    e = s_obs / pred - 1
    degree = rest_degree(len(xs))
    if degree < 1:
        return (float(e[-1]) if len(e) else float("nan")), float("inf")
    fit = extrapolate_polynomial(xs, e, tol.ERROR_FLOOR / pred, degree=degree)
    return fit.alpha, fit.se


def rest_rejected(test: tuple[float, float]) -> bool:
    """The rest point is off: a beyond NOWD_REST_SEM_FACTOR standard errors of 0 (never with se = inf)."""
    a, se = test
    return bool(np.isfinite(se)) and not abs(a) <= tol.NOWD_REST_SEM_FACTOR * se


def rung_regime(model, theta, eps: float, beta: float | None = None) -> tuple[float, float, float, float]:
    """(g, U, β, χ_max) at θ₀ for the run from η_eff λ₁ = 2(1 + ε) (docs/theory.md §5), u₀ = log(1 + ε), c = 1 + G/4:

    * g = (β - Σ_{χ_j ≥ 1} Δβ_j)·u₀/c, the rest point's expansion parameter with the normal modes that follow the
      catapult (``theory.nowd_stabilization``, ``theory.nowd_slaving``): the rest fraction is x_f(g) = -1 + 2g/3 - …;
    * U = Σ_{χ_j ≥ 1} Δβ_j u₀/(3c): the effect on the relative rest time of the modes that do not follow (χ_j ≥ 1)
      were they slaved (-g_j/3), a bound on what they do following partly -- which is not a power series in ε (for
      χ_j ≫ 1 it tends to an ε-independent offset) until ε ≲ r_j/4, where the mode follows;
    * χ_max, the largest χ_j among the modes carrying β.

    ``beta``: β when already computed (``theory.nowd_stabilization(model, theta)``)."""
    beta = th.nowd_stabilization(model, theta) if beta is None else beta
    sl = th.nowd_slaving(model, theta, eps)
    c = 1 + th.manifold_point(model, theta).G / 4
    u0 = float(np.log1p(eps))
    unslaved = float(np.sum(sl.share[sl.chi >= 1]))
    carrying = sl.share > 0
    chi = float(np.max(sl.chi[carrying])) if carrying.any() else 0.0
    return (beta - unslaved) * u0 / c, unslaved * u0 / (3 * c), beta, chi


def in_regime(row) -> bool:
    """A rung is in the regime of the O(ε) rest point: |g| < NOWD_EXPANSION_MAX and U ≤ NOWD_REST_RESOLUTION."""
    g, U, *_ = row
    return abs(g) < tol.NOWD_EXPANSION_MAX and U <= tol.NOWD_REST_RESOLUTION


def regime_caveat(xs, rows, judged) -> str:
    """Why fewer than 3 rungs are in the regime of the O(ε) rest point (docs/theory.md §5)."""
    out = [i for i in range(len(xs)) if not in_regime(rows[i])]
    big = [i for i in out if not abs(rows[i][0]) < tol.NOWD_EXPANSION_MAX]
    loose = [i for i in out if rows[i][1] > tol.NOWD_REST_RESOLUTION]
    at = lambda idx, k: ", ".join(f"{rows[i][k]:.3g} at ε = {xs[i]:g}" for i in idx)  # noqa: E731
    why = []
    if big:
        why.append(f"its flip is neutral at η_eff λ₁ = 2 + 4βA (β = {rows[0][2]:.4g}), so the run rests at "
                   f"u_f = x_f(g)·u₀ with g = {at(big, 0)}, and the expansion in ε needs |g| < {tol.NOWD_EXPANSION_MAX:g}")
    if loose:
        why.append(f"normal modes that do not follow the catapult (χ = 4u₀/r_j up to {max(rows[i][3] for i in loose):.3g}) "
                   f"carry a part of β worth {at(loose, 1)} of the rest time (slaved), above the "
                   f"{tol.NOWD_REST_RESOLUTION:g} the check resolves; following partly they move it by a non-power-series "
                   f"amount until they are slaved")
    return (f"assumption violated: {len(judged)} of the rungs ε = {', '.join(f'{x:g}' for x in xs)} are in the regime of "
            f"the O(ε) rest point (docs/theory.md §5; {REST_DEGREE + 2} needed, within the step budget): "
            + "; ".join(why))


def check_nowd_clock(session: Session, stop: Callable | None = None) -> CheckResult:
    """GD without WD from η_eff λ₁ = 2(1 + ε) (``theory.nowd_start_norm_sq``) with a tiny kick, for each ε:

    * ``tracking``: max_t ‖Φ(w̄_t) - ζ(s_t)‖ with s_t = log(‖w_t‖²/‖w_0‖²) (``theory.nowd_flow_time``), relative
      to the distance ‖ζ(s_∞) - ζ(0)‖ the run moves (itself O(ε)): O(ε), judged by its order;
    * ``rest point``: where the run comes to rest, s_∞, vs ``stop``(flow, η, ‖w_0‖²) (default
      ``theory.nowd_final``: it overshoots to η_eff λ₁ = 2/(1 + ε)): the signed relative error is a + bε + cε² + …;
      a, extrapolated to ε → 0 (``rest_extrapolation``), must be 0 within NOWD_REST_SEM_FACTOR standard errors.
      The runs rest a relative O(ε) before the prediction on most models, so an order rule on |e| let a prediction
      × 0.99 pass where its error crossed zero inside the ladder.

    Premise (assumption-violated, the measured verdict kept in the message): the rest point's expansion parameter
    g = β u₀/(1 + G/4) (``expansion_parameter``, the modes that follow the catapult) is below NOWD_EXPANSION_MAX on
    the rungs, and the modes that do not could move the rest point by no more than the check resolves.
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

        # the ladder is extended for the tracking error's order; the rest point is judged on the same rungs
        xs, rows, verdicts = run_ladder(session, cfg.nowd_ladder, errors, {"tracking": NOWD_ORDER},
                                        cost=lambda e: 300 / e)
        runs = [simulate_eps(e)[0] for e in xs]
        # the rest point is judged on the rungs in the regime of its O(ε) expansion (``in_regime``), the ladder
        # continued downwards (within the step budget) until REST_DEGREE + 2 of them are
        computable = th.stability_computable(m)
        rest_xs = list(xs)
        beta = th.nowd_stabilization(m, session.theta0) if computable else float("nan")
        regime = [rung_regime(m, session.theta0, x, beta) for x in rest_xs] if computable else []
        spent = sum(300 / x for x in xs if x < min(cfg.nowd_ladder))
        while computable and sum(map(in_regime, regime)) < REST_DEGREE + 2:
            x_new = rest_xs[-1] / cfg.extend_factor
            if spent + 300 / x_new > cfg.extend_steps:
                break
            spent += 300 / x_new
            rest_xs.append(x_new)
            regime.append(rung_regime(m, session.theta0, x_new, beta))
        judged = [x for x, r in zip(rest_xs, regime) if in_regime(r)] if computable else list(rest_xs)
        s_obs, s_pred, s_half = (np.array(v) for v in zip(*[(simulate_eps(e)[1][-1], simulate_eps(e)[3],
                                                              simulate_eps(e)[4]) for e in rest_xs]))
        sel = np.isin(rest_xs, judged)
        rest = rest_extrapolation(np.array(rest_xs)[sel], s_obs[sel], s_pred[sel])
        rest_ok = not rest_rejected(rest)
        signed = s_obs / s_pred - 1
        # the order of |e| is reported (not judged)
        info = judge(rest_xs, np.abs(signed), NOWD_REST_ORDER)
        rest_reason = (f"signed relative error {', '.join(f'{e:+.3g}' for e in signed)} at ε = "
                       f"{', '.join(f'{x:g}' for x in rest_xs)}; extrapolated to ε → 0 (fit a + bε{' + cε²' if rest_degree(len(judged)) == 2 else ''} on ε = "
                       f"{', '.join(f'{x:g}' for x in judged)}): a = {rest[0]:+.2g} ± {rest[1]:.2g} "
                       f"({'within' if rest_ok else 'beyond'} {tol.NOWD_REST_SEM_FACTOR:g} s.e.)")
        powers = {"rest point": resolving_power(lambda d: rest_rejected(
            rest_extrapolation(np.array(rest_xs)[sel], s_obs[sel], s_pred[sel], d)))}
        # no power where the flow hardly moves: the tracking error, O(ε) relative to the distance moved, must be
        # resolvable above the precision of Φ at the smallest ε (λ₁ constant along Γ: the distance is ≈ 0)
        moved = [float(np.linalg.norm(flow.at(simulate_eps(e)[1][-1])[0] - flow.theta[0])) for e in xs]
        if min(d * e for d, e in zip(moved, xs)) <= tol.NO_POWER_FACTOR * tol.ERROR_FLOOR:
            v = verdicts["tracking"]
            v.status, v.extendable = Status.INCONCLUSIVE, False
            v.reason = (f"no power: the flow moves {min(moved):.2g} over the run at ε = {xs[int(np.argmin(moved))]:g} "
                        f"(G ≤ {float(flow.G.max()):.2g}), so an error O(ε) relative to that distance is below the "
                        f"precision of Φ ({tol.ERROR_FLOOR:g}) -- tracking cannot be tested on this model")
        caveat = regime_caveat(rest_xs, regime, judged) if len(judged) < REST_DEGREE + 2 and computable else ""
        premise = ({"rest_ladder": rest_xs, "rest_judged": judged, "expansion_parameter": [r[0] for r in regime],
                    "unslaved_effect": [r[1] for r in regime], "slaving_chi_max": [r[3] for r in regime],
                    "stabilization_beta": regime[0][2]} if computable else {"rest_ladder": rest_xs, "rest_judged": judged})
        res = ladder_result(session, name, xs, rows, verdicts, runs, powers,
                            {"s_final": s_obs, "s_final_predicted": s_pred, "s_stop_at_threshold": s_half,
                             "distance_moved": moved, "rest_signed_errors": signed, "rest_deviation_at_zero": rest[0],
                             "rest_deviation_at_zero_se": rest[1], **premise})
        res.details["rest point"] = {**info.to_details(), "status": "pass" if rest_ok else "fail",
                                     "deviation_at_zero": rest[0], "deviation_at_zero_se": rest[1]}
        if res.status in (Status.PASS, Status.INCONCLUSIVE, Status.FAIL) and res.details:
            if not np.isfinite(rest[1]):
                if res.status == Status.PASS:
                    res.status = Status.INCONCLUSIVE
                    res.resolving_power = {k: float("nan") for k in res.resolving_power}
                rest_reason = (f"{len(judged)} rungs: the signed error's extrapolation a + bε + cε² needs "
                               f"{3} to estimate its truncation")
            elif not rest_ok:
                res.status = Status.FAIL
                res.resolving_power = {k: float("nan") for k in res.resolving_power}
                res.scaled_error = float(abs(rest[0]) / (tol.NOWD_REST_SEM_FACTOR * rest[1]))
            res.message += f"; rest point: {'a prediction is off: ' if not rest_ok else ''}{rest_reason}"
        res.message += (f"; comes to rest at s = {s_obs[-1]:.4g} vs {s_pred[-1]:.4g} predicted; stopping at "
                        f"η_eff λ₁ = 2 would give {s_half[-1]:.4g}")
        return with_caveat(res, caveat)

    return guard(session, name, run)


CHECK = Check(
    name="no-wd-clock", position=50, group="related", run=check_nowd_clock, order=NOWD_ORDER,
    summary="GD without weight decay from η_eff λ₁ = 2(1+ε) follows the flow at the clock log(‖w_t‖²/‖w₀‖²) and "
            "comes to rest at η_eff λ₁ = 2/(1+ε), errors O(ε).",
    cost=lambda config: {"no-wd": (sum(int(300 / e) for e in config.nowd_ladder), 41 * len(config.nowd_ladder))},
    series=(Series("tracking_errors", "tracking, relative to the distance moved", "tracking"),
            Series("rest point_errors", "rest point, relative", "rest point")),
    xlabel="ε (start at η_eff λ₁ = 2(1+ε))")
