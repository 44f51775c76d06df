"""eos-equilibrium: the sharpness, norm and amplitude of GD+WD at the edge of stability."""

from __future__ import annotations

from typing import Callable

import numpy as np

import srflow.theory as th

from .. import tolerances as tol
from ..ladder import first_monitor
from ..session import CheckResult, Session, guard, result
from ..tracking import gdwd_horizon
from ..extrapolation import Extrapolation, blocked_standard_error, extrapolate_to_zero
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
      run's intrinsic clock. On the rungs whose run spans ≥ EOS_MIN_PERIODS breathing periods, the deviation of the
      measured c = (η⟨λ₁⟩ - 2)/ηλ from the predicted one is c_obs - c_pred = α + β√ηλ + noise (the O((ηλ)^{3/2})
      truncation of η⟨λ₁⟩ is O(√ηλ) in c); α, extrapolated by weighted least squares (``extrapolate_to_zero``), must
      be 0 within EOS_SEM_FACTOR standard errors. No constant of the truncation is assumed;
    * ``norm``: ‖w_t‖² vs ``theory.equilibrium_norm_sq`` at λ₁ of the flow at the run's clock, the mean relative
      deviation over each densely recorded run (standard error from blocks of one breathing period): a leading-order
      claim whose O(ηλ) term is not derived, so the deviation is extrapolated to ηλ → 0 (fit α + βηλ) and α must be
      0 within EOS_SEM_FACTOR standard errors;
    * ⟨‖w̄_t - Φ(w̄_t)‖²⟩ vs ⟨``theory.oscillation_amplitude_sq``⟩ within AMPLITUDE_RTOL at the smallest ηλ.

    δ* is reported for the threshold's leading term (the prediction × (1 + δ)), its O(ηλ) coefficient (c + Δ,
    absolute, and Δ/|c| relative), the norm and the amplitude.

    First, where ``theory.eos_stability`` predicts the equilibrium unstable on the runs' horizon (κ > 0: the breathing
    grows like e^{κτ}, docs/theory.md §4d), the verdict is assumption-violated, "unstable equilibrium", with the
    predicted rate and the rate measured on its densest run (``unstable_equilibrium``): such an equilibrium holds only
    transiently, so the check does not pass; its predictions are not wrong, so it does not fail either."""
    name = "eos-equilibrium"

    def run():
        predict = sharpness_prediction or th.eos_sharpness
        flow = session.flow(gdwd_horizon(session))  # first: a flow whose gap closes ends the check before the runs
        unstable = unstable_equilibrium(session, flow)  # an unstable equilibrium is not judged as an equilibrium
        if unstable is not None:  # not a wrong prediction: the equilibrium the predictions describe does not persist
            return result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"), *unstable)
        runs = session.ladder_runs()
        monitored = first_monitor(runs)
        if monitored:
            return result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"), monitored, runs=runs)
        dense = [session.eos_run(tr.eta_lambda) for tr in runs]
        ladder = np.array([tr.eta_lambda for tr in runs])
        samples = np.unique(np.linspace(0, len(flow.s) - 1, EOS_FLOW_SAMPLES).astype(int))
        obs, pred, sem = [], [], []
        coef = [th.eos_sharpness_coefficient(session.model, flow.theta[i]) for i in samples]
        for tr in dense:
            at_flow = [tr.lr * predict(session.model, flow.theta[i], tr.lr, tr.wd, coefficient=c)
                       for i, c in zip(samples, coef)]
            pred.append(float(np.mean(np.interp(tr.clock, flow.s[samples], at_flow))))
            pair_means = tr.lr * 0.5 * (tr.lam1 + tr.lam1_next)
            obs.append(float(np.mean(pair_means)))
            sem.append(blocked_standard_error(pair_means, tr.steps, tr.eta_lambda))
        obs, pred = np.array(obs), np.array(pred)
        # ‖w_t‖² over its prediction at λ₁ of the flow at the run's own clock, on the densely recorded runs
        norm_ratio = [tr.norm_sq / th.equilibrium_norm_sq(tr.lr, tr.wd, flow.sharpness_at(tr.clock))
                      for tr in dense]
        tr = runs[-1]
        gs = np.array([th.manifold_point(session.model, p).G for p in tr.phi])
        a_pred = float(np.mean([th.oscillation_amplitude_sq(tr.lr, tr.wd, g) for g in gs]))
        a_dev = float(np.mean(tr.offset_sq)) / a_pred - 1
        # rungs whose run spans fewer than EOS_MIN_PERIODS periods of the amplitude's breathing (docs/theory.md §4b)
        # do not enter the O(ηλ) term: their pair average is dominated by the breathing
        periods = np.array([tr.steps[-1] for tr in dense]) / th.breathing_period(ladder)
        judged = periods >= tol.EOS_MIN_PERIODS
        c_obs, c_pred, c_se = (obs - 2) / ladder, (pred - 2) / ladder, np.array(sem) / ladder
        norm_se = np.array([blocked_standard_error(r, tr.steps, tr.eta_lambda) for r, tr in zip(norm_ratio, dense)])
        if judged.sum() < 2:
            return result(session, name, Status.INCONCLUSIVE, None, None, None, float("nan"),
                          f"{int(judged.sum())} run(s) span ≥ {tol.EOS_MIN_PERIODS:g} breathing periods "
                          f"({', '.join(f'{p:.1f}' for p in periods)}): the O(ηλ) coefficient c is extrapolated to ηλ → 0 "
                          "from at least two; lengthen tau_end or lower ηλ",
                          {"ladder": ladder, "breathing_periods": periods}, runs=runs)
        judged_ladder = ladder[judged]

        def sharpness_test(d_lead=0.0, d_coef=0.0):
            """(c₀, se(c₀)): the deviation c_obs - c_pred of the prediction perturbed by d_lead (× (1 + δ)) or d_coef
            (c + Δ, absolute), extrapolated to ηλ → 0 (docs/theory.md §7)."""
            p = 2 * (1 + d_lead) + (c_pred + d_coef) * ladder * (1 + d_lead)
            return extrapolate_to_zero(judged_ladder, ((obs - p) / ladder)[judged], c_se[judged])

        def sharpness_rejected(test: Extrapolation) -> bool:
            return test.rejects(tol.EOS_SEM_FACTOR)

        def norm_test(d=0.0):
            """(n₀, se(n₀)): the mean relative deviation of ‖w‖² from the prediction × (1 + d), extrapolated to
            ηλ → 0 (fit α + βηλ: the norm's O(ηλ) term is not derived, docs/theory.md §4b)."""
            dev = np.array([np.mean(r / (1 + d)) - 1 for r in norm_ratio])
            return extrapolate_to_zero(judged_ladder, dev[judged], (norm_se / (1 + d))[judged], power=1.0)

        n_test, c_test = norm_test(), sharpness_test()
        (n0, nse0, *_), (c0, se0, *_) = n_test, c_test
        norm_ok = not sharpness_rejected(n_test)
        a_ok = abs(a_dev) <= tol.AMPLITUDE_RTOL
        sharp_ok = not sharpness_rejected(c_test)
        status = Status.PASS if sharp_ok and norm_ok and a_ok else Status.FAIL
        worst = float(max(abs(c0) / (tol.EOS_SEM_FACTOR * se0), abs(n0) / (tol.EOS_SEM_FACTOR * nse0),
                          abs(a_dev) / tol.AMPLITUDE_RTOL))

        # c + Δ is rejected once |c₀ - Δ| > 3 se(c₀): Δ* = |c₀| + 3 se(c₀) (absolute: c may be 0)
        dc_abs = abs(c0) + tol.EOS_SEM_FACTOR * se0
        c_scale = float(np.max(np.abs(c_pred[judged])))
        powers = {"threshold, leading term": resolving_power(lambda d: sharpness_rejected(sharpness_test(d_lead=d))),
                  "threshold, O(ηλ) coefficient c (absolute)": dc_abs,
                  "threshold, O(ηλ) coefficient c (relative)": dc_abs / c_scale if c_scale > 0 else float("inf"),
                  "equilibrium norm": resolving_power(lambda d: sharpness_rejected(norm_test(d))),
                  # a² × (1 + δ) is rejected once |(1 + a_dev)/(1 + δ) - 1| > AMPLITUDE_RTOL
                  "amplitude": float(max(abs((1 + a_dev) / (1 + tol.AMPLITUDE_RTOL) - 1),
                                         abs((1 + a_dev) / (1 - tol.AMPLITUDE_RTOL) - 1)))}
        if status != Status.PASS:
            powers = {k: float("nan") for k in powers}
        rungs = ", ".join(f"{c:+.3f} ± {e:.3f} vs {p:+.3f}" for c, e, p in zip(c_obs[judged], c_se[judged], c_pred[judged]))
        message = (f"η⟨λ₁⟩ = 2 + c·ηλ: c measured ± s.e. vs predicted {rungs} at ηλ = "
                   f"{', '.join(f'{v:g}' for v in judged_ladder)} (the runs spanning ≥ {tol.EOS_MIN_PERIODS:g} breathing periods); "
                   f"the deviation extrapolated to ηλ → 0 is {c0:+.3f} ± {se0:.3f} "
                   f"({'within' if sharp_ok else 'beyond'} {tol.EOS_SEM_FACTOR:g} s.e.); norm: mean deviation extrapolated to ηλ → 0 {n0:+.2e} ± {nse0:.1e} ("
                   f"{'within' if norm_ok else 'beyond'} {tol.EOS_SEM_FACTOR:g} s.e.); "
                   f"⟨a²⟩/pred = {1 + a_dev:.3f} (tolerance {tol.AMPLITUDE_RTOL:g})")
        if status == Status.FAIL:
            message = "a prediction is off: " + message
        details = {"ladder": ladder, "observed": obs, "predicted": pred, "c_observed": c_obs, "c_predicted": c_pred,
                   "c_standard_error": c_se, "c_deviation_at_zero": c0, "c_deviation_at_zero_se": se0,
                   "breathing_periods": periods, "judged": judged,
                   "sharpness_deviation": np.abs(obs - pred), "sharpness_standard_error": sem,
                   "norm_deviation": np.array([abs(np.mean(r) - 1) for r in norm_ratio]), "norm_standard_error": norm_se,
                   "norm_deviation_at_zero": n0, "norm_deviation_at_zero_se": nse0, "amplitude_ratio": 1 + a_dev}
        return result(session, name, status, pred[-1], obs[-1], "order", worst, message, details, runs, powers)

    return guard(session, name, run)


#: flow samples within the runs' horizon at which the stability of the equilibrium is evaluated
STABILITY_SAMPLES = 5


def unstable_equilibrium(session: Session, flow) -> tuple[str, dict, list] | None:
    """(message, details, runs) when ``theory.eos_stability`` predicts the equilibrium unstable (κ > 0: the breathing
    grows like e^{κτ}, docs/theory.md §4d) somewhere on the flow within the runs' horizon τ ≤ tau_end; else None. The
    message gives the predicted rate and the rate measured on the densely recorded run at the largest ηλ (short:
    eos-stability measures it over several e-folds)."""
    from .eos_stability import breathing_envelope, measured_slope

    tau = th.gdwd_tau(flow)
    inside = np.nonzero(tau <= session.config.tau_end)[0]
    idx = np.unique(np.linspace(0, inside[-1] if len(inside) else 0, STABILITY_SAMPLES).astype(int))
    kappa = np.array([th.eos_stability(session.model, flow.theta[i]).rate for i in idx])
    if not np.any(kappa > 0):
        return None
    dense = session.eos_run(max(session.config.ladder))
    eta_lambda = dense.eta_lambda
    measured = "not measurable on it"
    if dense.clock_steps is not None:
        t, eps = breathing_envelope(dense.clock_steps, eta_lambda)
        if len(t) >= 3:
            b, se = measured_slope(t * eta_lambda, np.log(eps))
            measured = f"{b:+.3f} ± {se:.3f}"
    worst = int(np.argmax(kappa))
    message = (f"assumption violated: unstable equilibrium: the breathing about it is predicted to grow, κ = {kappa[worst]:+.4f} per unit τ "
               f"at s = {flow.s[idx[worst]]:.3g} (docs/theory.md §4d), so η⟨λ₁⟩ = 2 + cηλ holds only transiently; "
               f"measured rate over the run at ηλ = {eta_lambda:g} (τ ≤ {session.config.tau_end:g}): {measured}; "
               "eos-stability measures it over several e-folds")
    return message, {"stability_rate_predicted": kappa, "stability_s": flow.s[idx]}, [dense]


CHECK = Check(
    name="eos-equilibrium", position=5, group="gdwd", run=check_eos_equilibrium, ladder=True,
    summary="At the edge of stability η⟨λ₁⟩ = 2 + c(θ)ηλ with c derived, the norm and the oscillation's "
            "amplitude are at their predicted equilibrium.",
    cost=lambda config: {**_costs.gdwd_ladder(config), **_costs.eos_pairs(config)},
    series=(Series("sharpness_deviation", "|η⟨λ₁⟩ − (2 + cηλ)|"),
            Series("norm_deviation", "|⟨‖w‖²/pred⟩ − 1|")))
