"""eos-equilibrium: the sharpness, norm and amplitude of GD+WD at the edge of stability."""

from __future__ import annotations

from typing import Callable

import numpy as np

import srflow.theory as th

from .. import tolerances as tol
from ..ladder import first_monitor
from ..session import CheckResult, Session, guard, result
from ..tracking import gdwd_horizon
from ..verdicts import Status, resolving_power
from . import _costs
from ._record import Check, Series

#: flow samples at which the EoS prediction is evaluated along a run (interpolated in s between them)
EOS_FLOW_SAMPLES = 41


def check_eos_equilibrium(session: Session, sharpness_prediction: Callable | None = None) -> CheckResult:
    """On every run of the ladder, at EoS:

    * ``sharpness``: η⟨λ₁(∇²L(w_t))⟩ (pairs t, t+1: λ₁ has a ±a∇³L[v₁,v₁,v₁] term that cancels only over a pair;
      ~1500 records, ``Session.eos_run``) vs the mean over the run of η·``sharpness_prediction``(model, θ, η, λ,
      coefficient=c(θ)) (default ``theory.eos_sharpness`` = (2 + c(θ)ηλ)/η with c = ``theory.eos_sharpness_coefficient``,
      docs/theory.md §4b) at θ = ζ(s_t), the flow at the
      run's intrinsic clock: |deviation| ≤ EOS2_C·(ηλ)^{3/2} on every rung, i.e. the O(ηλ) term is predicted;
    * ``norm``: ‖w_t‖² vs ``theory.equilibrium_norm_sq`` at λ₁(Φ(w̄_t)), relative, max over the run: a leading-order
      claim, ≤ EOS_C·ηλ on every rung (its O(ηλ) term is not derived);
    * ⟨‖w̄_t - Φ(w̄_t)‖²⟩ vs ⟨``theory.oscillation_amplitude_sq``⟩ within AMPLITUDE_RTOL at the smallest ηλ.

    δ* is reported for the threshold's leading term (the prediction × (1 + δ)), its O(ηλ) term (c × (1 + δ)),
    the norm and the amplitude."""
    name = "eos-equilibrium"

    def run():
        predict = sharpness_prediction or th.eos_sharpness
        flow = session.flow(gdwd_horizon(session))  # first: a flow whose gap closes ends the check before the runs
        runs = session.ladder_runs()
        monitored = first_monitor(runs)
        if monitored:
            return result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"), monitored, runs=runs)
        dense = [session.eos_run(tr.lr * tr.wd) for tr in runs]
        xs = np.array([tr.lr * tr.wd for tr in runs])
        samples = np.unique(np.linspace(0, len(flow.s) - 1, EOS_FLOW_SAMPLES).astype(int))
        obs, pred, sem = [], [], []
        coef = [th.eos_sharpness_coefficient(session.model, flow.theta[i]) for i in samples]
        for tr in dense:
            at_flow = [tr.lr * predict(session.model, flow.theta[i], tr.lr, tr.wd, coefficient=c)
                       for i, c in zip(samples, coef)]
            pred.append(float(np.mean(np.interp(tr.clock, flow.s[samples], at_flow))))
            pair_means = tr.lr * 0.5 * (tr.sharpness + tr.sharpness_next)
            obs.append(float(np.mean(pair_means)))
            sem.append(_blocked_standard_error(pair_means, tr.steps, tr.lr * tr.wd))
        obs, pred = np.array(obs), np.array(pred)
        norm_ratio = [tr.norm_sq / np.array([th.equilibrium_norm_sq(tr.lr, tr.wd, lam) for lam in tr.phi_sharpness])
                      for tr in runs]
        tr = runs[-1]
        gs = np.array([th.manifold_point(session.model, p).G for p in tr.phi])
        a_pred = float(np.mean([th.oscillation_amplitude_sq(tr.lr, tr.wd, g) for g in gs]))
        a_dev = float(np.mean(tr.offset_sq)) / a_pred - 1
        # rungs whose run spans fewer than EOS_MIN_PERIODS periods of the amplitude's breathing (2π/√(8ηλ) steps,
        # docs/theory.md §4b) are not judged on the O(ηλ) term: their pair average is dominated by the breathing
        periods = np.array([tr.steps[-1] for tr in dense]) * np.sqrt(8 * xs) / (2 * np.pi)
        judged = periods >= tol.EOS_MIN_PERIODS
        if not judged.any():
            return result(session, name, Status.INCONCLUSIVE, None, None, None, float("nan"),
                          f"every run spans fewer than {tol.EOS_MIN_PERIODS:g} breathing periods ({periods.max():.1f} "
                          "at most): the pair averages cannot resolve the O(ηλ) term; lengthen tau_end or lower ηλ",
                          runs=runs)
        # the O((ηλ)^{3/2}) truncation, plus the sampling error of the mean over the breathing (3 standard errors of
        # means over blocks of one breathing period each)
        sharp_bound = np.where(judged, tol.EOS2_C * xs**1.5 + tol.EOS_SEM_FACTOR * np.array(sem), np.inf)
        norm_bound = tol.EOS_C * xs

        def deviations(d_lead=0.0, d_coef=0.0, d_norm=0.0):
            p = (pred - 2) * (1 + d_coef) + 2
            return (np.abs(obs - p * (1 + d_lead)),
                    np.array([np.max(np.abs(r / (1 + d_norm) - 1)) for r in norm_ratio]))

        def rejected(devs):
            return bool(np.any(devs[0] > sharp_bound) or np.any(devs[1] > norm_bound))

        devs = deviations()
        a_ok = abs(a_dev) <= tol.AMPLITUDE_RTOL
        ok = not rejected(devs) and a_ok
        worst = float(max(np.max(devs[0] / sharp_bound), np.max(devs[1] / norm_bound), abs(a_dev) / tol.AMPLITUDE_RTOL))
        c_obs, c_pred = (obs - 2) / xs, (pred - 2) / xs
        powers = {"threshold, leading term": resolving_power(lambda d: rejected(deviations(d_lead=d))),
                  "threshold, O(ηλ) term": resolving_power(lambda d: rejected(deviations(d_coef=d))),
                  "equilibrium norm": resolving_power(lambda d: rejected(deviations(d_norm=d))),
                  # a² × (1 + δ) is rejected once |(1 + a_dev)/(1 + δ) - 1| > AMPLITUDE_RTOL
                  "amplitude": float(max(abs((1 + a_dev) / (1 + tol.AMPLITUDE_RTOL) - 1),
                                         abs((1 + a_dev) / (1 - tol.AMPLITUDE_RTOL) - 1)))}
        if not ok:
            powers = {k: float("nan") for k in powers}
        rungs = ", ".join(f"{c:+.3f} vs {p:+.3f}" for c, p in zip(c_obs, c_pred))
        message = (f"η⟨λ₁⟩ = 2 + c·ηλ with c measured vs predicted: {rungs} (ηλ = {', '.join(f'{x:g}' for x in xs)}; "
                   f"judged where the run spans ≥ {tol.EOS_MIN_PERIODS:g} breathing periods: {int(judged.sum())} rungs); "
                   f"|deviation| ≤ {np.max(devs[0] / sharp_bound):.2g} of its bound {tol.EOS2_C:g}·(ηλ)^1.5 + "
                   f"{tol.EOS_SEM_FACTOR:g} s.e. of the breathing; norm within "
                   f"{np.max(devs[1] / xs):.2f}·ηλ (bound {tol.EOS_C:g}·ηλ); ⟨a²⟩/pred = {1 + a_dev:.3f} "
                   f"(tolerance {tol.AMPLITUDE_RTOL:g})")
        if not ok:
            message = "a prediction is off: " + message
        details = {"ladder": xs, "observed": obs, "predicted": pred, "c_observed": c_obs, "c_predicted": c_pred,
                   "breathing_periods": periods,
                   "sharpness_deviation": devs[0], "sharpness_standard_error": sem, "norm_deviation": devs[1],
                   # the bounds each rung is judged by (inf: a rung not judged on the O(ηλ) term); the figure draws them
                   "sharpness_deviation_bound": sharp_bound, "norm_deviation_bound": norm_bound,
                   "amplitude_ratio": 1 + a_dev}
        return result(session, name, Status.PASS if ok else Status.FAIL, pred[-1], obs[-1], "bounds", worst, message, details,
                      runs, powers)

    return guard(session, name, run)


def _blocked_standard_error(samples: np.ndarray, steps: np.ndarray, eta_lambda: float) -> float:
    """Standard error of the mean of ``samples`` (recorded at ``steps``) from means over blocks one breathing period
    2π/√(8ηλ) long: consecutive records within a period are correlated, block means are nearly independent."""
    period = 2 * np.pi / np.sqrt(8 * eta_lambda)
    block = np.floor((steps - steps[0]) / period).astype(int)
    means = np.array([samples[block == b].mean() for b in np.unique(block)])
    return float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 2 else float("inf")


CHECK = Check(
    name="eos-equilibrium", position=5, group="gdwd", run=check_eos_equilibrium, ladder=True,
    summary="At the edge of stability η⟨λ₁⟩ = 2 + c(θ)ηλ with c derived, the norm and the oscillation's "
            "amplitude are at their predicted equilibrium.",
    cost=lambda config: {**_costs.gdwd_ladder(config), **_costs.eos_pairs(config)},
    series=(Series("sharpness_deviation", "|η⟨λ₁⟩ − (2 + cηλ)|"),
            Series("norm_deviation", "max |‖w‖²/pred − 1|")))
