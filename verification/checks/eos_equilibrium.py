"""eos-equilibrium: the sharpness, norm and amplitude of GD+WD at the edge of stability."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.interpolate import CubicSpline

import srflow.theory as th

from .. import tolerances as tol
from ..ladder import first_monitor
from ..session import CheckResult, Session, guard, result
from ..tracking import gdwd_horizon, neighbourhood_caveat, separation_caveat, with_caveat
from ..extrapolation import (Extrapolation, breathing_fit_mean, extrapolate_series_to_zero, extrapolate_to_zero,
                             whole_period_mean)
from ..verdicts import Status, resolving_power
from . import _costs
from ._record import Check, Series

#: flow samples at which the EoS prediction is evaluated along a run (interpolated in s between them)
EOS_FLOW_SAMPLES = 41


def check_eos_equilibrium(session: Session, sharpness_prediction: Callable | None = None) -> CheckResult:
    """On every run of the ladder, at EoS:

    * ``sharpness``: η⟨λ₁(∇²L(w_t))⟩ (pairs t, t+1: λ₁ has a ±a∇³L[v₁,v₁,v₁] term that cancels only over a pair;
      ``Session.eos_run``) vs η·``sharpness_prediction``(model, θ, η, λ, coefficient=c(θ)) (default
      ``theory.eos_sharpness`` = (2 + c(θ)ηλ)/η with c = ``theory.eos_sharpness_coefficient``, docs/theory.md §4b) at
      θ = ζ(s_t), the flow at the run's intrinsic clock (a cubic spline in s through EOS_FLOW_SAMPLES flow samples),
      both averaged over the run's whole breathing periods (``whole_period_mean``: the breathing's first-order part
      cancels; standard error from the one-period batch means). On the rungs whose run spans ≥ EOS_MIN_PERIODS
      breathing periods, the deviation of the measured c = (η⟨λ₁⟩ - 2)/ηλ from the predicted one is
      c_obs - c_pred = α + β√ηλ + γηλ + … (the O((ηλ)^{3/2}) truncation of η⟨λ₁⟩ is O(√ηλ) in c; β = 0 on a
      symmetric cycle); α, extrapolated by weighted least squares of α + β√ηλ (``extrapolate_to_zero``) with an
      uncertainty that adds the difference from the extrapolation of α + γηλ and the spread of the two-point
      extrapolations of consecutive rungs (``richardson_spread``: the terms beyond the fitted one), must be 0 within
      EOS_SEM_FACTOR standard errors. No constant of the truncation is assumed;
    * ``norm``: ‖w_t‖² vs ``theory.equilibrium_norm_sq`` at λ₁ of the flow at the run's clock, the relative
      deviation averaged over whole breathing periods: a leading-order claim whose O(ηλ) term is not derived, so the
      deviation is extrapolated to ηλ → 0 (fit α + βηλ) and α must be 0 within EOS_SEM_FACTOR standard errors;
    * ``amplitude``: ⟨‖w̄_t - Φ(w̄_t)‖²⟩/a² on each judged rung (a² = ``theory.oscillation_amplitude_sq`` at the G of
      Φ(w̄_t) and the slaved normal modes' a²S, ``amplitude_rungs``), minus 1, extrapolated to ηλ → 0 (α + βηλ, with
      the model's uncertainty), must be 0 within EOS_SEM_FACTOR standard errors -- on the rungs where the slaved normal modes'
      displacement, a relative a²S that slow modes carry only in part (docs/theory.md §4 item 3), is below
      AMPLITUDE_RESOLUTION; with fewer than two such rungs the amplitude is not judged and the message says so.

    δ* is reported for the threshold's leading term (the prediction × (1 + δ)), its O(ηλ) coefficient (c + Δ,
    absolute, and Δ/|c| relative), the norm and the amplitude.

    The predictions describe the centre of a linear breathing (``breathing_on_horizon``, docs/theory.md §4d): where
    the breathing measured on a judged run leaves its linear regime the verdict is assumption-violated, with the
    predicted rate κ and the measured one; where κ > 0 on the horizon but the breathing stays linear, the verdict
    is judged and the message reports the unstable stretch (the equilibrium does not persist: eos-stability)."""
    name = "eos-equilibrium"

    def run():
        predict = sharpness_prediction or th.eos_sharpness
        flow = session.flow(gdwd_horizon(session))  # first: a flow whose gap closes ends the check before the runs
        runs = session.ladder_runs()
        monitored = first_monitor(runs)
        if monitored:
            return result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"), monitored, runs=runs)
        dense = [session.eos_run(tr.eta_lambda) for tr in runs]
        ladder = np.array([tr.eta_lambda for tr in runs])
        samples = np.unique(np.linspace(0, len(flow.s) - 1, EOS_FLOW_SAMPLES).astype(int))
        s_samples = flow.s[samples]
        obs, pred, sem, norm_mean, norm_se = [], [], [], [], []
        coef = [th.eos_sharpness_coefficient(session.model, flow.theta[i]) for i in samples]
        for tr in dense:
            x = tr.eta_lambda
            at_flow = [tr.lr * predict(session.model, flow.theta[i], tr.lr, tr.wd, coefficient=c)
                       for i, c in zip(samples, coef)]
            # a cubic spline in s: linear interpolation between the samples was off by up to 1e-3 in c on mf
            predicted = CubicSpline(s_samples, at_flow)(np.clip(tr.clock, s_samples[0], s_samples[-1]))
            pair_means = tr.lr * 0.5 * (tr.lam1 + tr.lam1_next)
            obs.append(whole_period_mean(pair_means, tr.steps, x).mean)
            pred.append(whole_period_mean(predicted, tr.steps, x).mean)
            sem.append(whole_period_mean(pair_means - predicted, tr.steps, x).se)
            # ‖w_t‖² over its prediction at λ₁ of the flow at the run's own clock
            norm = whole_period_mean(tr.norm_sq / th.equilibrium_norm_sq(tr.lr, tr.wd, flow.sharpness_at(tr.clock)),
                                     tr.steps, x)
            norm_mean.append(norm.mean)
            norm_se.append(norm.se)
        obs, pred, norm_mean, norm_se = np.array(obs), np.array(pred), np.array(norm_mean), np.array(norm_se)
        # rungs whose run spans fewer than EOS_MIN_PERIODS periods of the amplitude's breathing (docs/theory.md §4b)
        # do not enter the O(ηλ) term: their batch means are too few for a standard error
        periods = np.array([tr.steps[-1] for tr in dense]) / th.breathing_period(ladder)
        judged = periods >= tol.EOS_MIN_PERIODS
        c_obs, c_pred, c_se = (obs - 2) / ladder, (pred - 2) / ladder, np.array(sem) / ladder
        if judged.sum() < 2:
            return result(session, name, Status.INCONCLUSIVE, None, None, None, float("nan"),
                          f"{int(judged.sum())} run(s) span ≥ {tol.EOS_MIN_PERIODS:g} breathing periods "
                          f"({', '.join(f'{p:.1f}' for p in periods)}): the O(ηλ) coefficient c is extrapolated to ηλ → 0 "
                          "from at least two; lengthen tau_end or lower ηλ",
                          {"ladder": ladder, "breathing_periods": periods}, runs=runs)
        # the equilibrium's stability on the horizon (docs/theory.md §4d): judged while its breathing is linear
        breathing = breathing_on_horizon(session, flow, [d for d, j in zip(dense, judged) if j])
        if breathing["violated"]:
            return result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"),
                          breathing["message"], breathing["details"], runs=runs)
        judged_ladder = ladder[judged]
        amp = amplitude_rungs(session, flow, [r for r, j in zip(runs, judged) if j])
        amp_x = judged_ladder[amp["usable"]]

        def sharpness_test(d_lead=0.0, d_coef=0.0):
            """(c₀, se(c₀)): the deviation c_obs - c_pred of the prediction perturbed by d_lead (× (1 + δ)) or d_coef
            (c + Δ, absolute), extrapolated to ηλ → 0 (docs/theory.md §7)."""
            p = 2 * (1 + d_lead) + (c_pred + d_coef) * ladder * (1 + d_lead)
            dev = ((obs - p) / ladder)[judged]
            # the truncation's leading term is β√ηλ, or γηλ where β = 0 (a symmetric cycle, ∇³L[v₁,v₁,v₁] = 0: on
            # sphere_circle the deviation is 0.9·ηλ, and 15·ηλ from another start, on every rung)
            return extrapolate_series_to_zero(judged_ladder, dev, c_se[judged], powers=(0.5, 1.0))

        def sharpness_rejected(test: Extrapolation) -> bool:
            return test.rejects(tol.EOS_SEM_FACTOR)

        def norm_test(d=0.0):
            """(n₀, se(n₀)): the mean relative deviation of ‖w‖² from the prediction × (1 + d), extrapolated to
            ηλ → 0 (fit α + βηλ: the norm's O(ηλ) term is not derived, docs/theory.md §4b)."""
            dev = norm_mean / (1 + d) - 1
            return extrapolate_to_zero(judged_ladder, dev[judged], (norm_se / (1 + d))[judged], power=1.0)

        def amplitude_test(d=0.0):
            """(r₀, se(r₀)): the mean ratio ⟨‖w̄ - Φ(w̄)‖²/a²⟩ - 1 of the prediction a² × (1 + d) on the rungs where
            the slaved normal modes' share is below the resolution, extrapolated to ηλ → 0: its truncation is a
            series in ηλ (the flip's centre -αa²/2 adds α²a²/4, the breathing O(ε²) = O(ηλ); the terms odd in the flip
            alternate with its phase and are fitted out), so α + βηλ, with the difference from α + γ(ηλ)² and the
            spread of the two-point extrapolations as the model's uncertainty (``extrapolate_series_to_zero``)."""
            dev = amp["ratio"][amp["usable"]] / (1 + d) - 1
            return extrapolate_series_to_zero(amp_x, dev, amp["se"][amp["usable"]] / (1 + d), powers=(1.0, 2.0))

        n_test, c_test = norm_test(), sharpness_test()
        (n0, nse0, *_), (c0, se0, *_) = n_test, c_test
        norm_ok = not sharpness_rejected(n_test)
        a_judged = len(amp_x) >= 2
        a_test = amplitude_test() if a_judged else None
        a0, ase0 = (a_test.alpha, a_test.se) if a_judged else (float("nan"), float("nan"))
        a_ok = not (a_judged and sharpness_rejected(a_test))
        sharp_ok = not sharpness_rejected(c_test)
        status = Status.PASS if sharp_ok and norm_ok and a_ok else Status.FAIL
        worst = float(max(abs(c0) / (tol.EOS_SEM_FACTOR * se0), abs(n0) / (tol.EOS_SEM_FACTOR * nse0),
                          abs(a0) / (tol.EOS_SEM_FACTOR * ase0) if a_judged else 0.0))

        # c + Δ is rejected once |c₀ - Δ| > 3 se(c₀): Δ* = |c₀| + 3 se(c₀) (absolute: c may be 0)
        dc_abs = abs(c0) + tol.EOS_SEM_FACTOR * se0
        c_scale = float(np.max(np.abs(c_pred[judged])))
        powers = {"threshold, leading term": resolving_power(lambda d: sharpness_rejected(sharpness_test(d_lead=d))),
                  "threshold, O(ηλ) coefficient c (absolute)": dc_abs,
                  "threshold, O(ηλ) coefficient c (relative)": dc_abs / c_scale if c_scale > 0 else float("inf"),
                  "equilibrium norm": resolving_power(lambda d: sharpness_rejected(norm_test(d))),
                  "amplitude": (resolving_power(lambda d: sharpness_rejected(amplitude_test(d))) if a_judged
                                else float("nan"))}
        if status != Status.PASS:
            powers = {k: float("nan") for k in powers}
        rungs = ", ".join(f"{c:+.4f} ± {e:.2g} vs {p:+.4f}" for c, e, p in zip(c_obs[judged], c_se[judged], c_pred[judged]))
        message = (f"η⟨λ₁⟩ = 2 + c·ηλ: c measured ± s.e. vs predicted {rungs} at ηλ = "
                   f"{', '.join(f'{x:g}' for x in judged_ladder)} (the runs spanning ≥ {tol.EOS_MIN_PERIODS:g} breathing periods); "
                   f"the deviation extrapolated to ηλ → 0 is {c0:+.2g} ± {se0:.2g} "
                   f"({'within' if sharp_ok else 'beyond'} {tol.EOS_SEM_FACTOR:g} s.e.); norm: mean deviation extrapolated to ηλ → 0 {n0:+.2e} ± {nse0:.1e} ("
                   f"{'within' if norm_ok else 'beyond'} {tol.EOS_SEM_FACTOR:g} s.e.); "
                   + amp["message"] + (f"; extrapolated to ηλ → 0 {a0:+.2g} ± {ase0:.2g} ("
                                       f"{'within' if a_ok else 'beyond'} {tol.EOS_SEM_FACTOR:g} s.e.)" if a_judged else ""))
        if status == Status.FAIL:
            message = "a prediction is off: " + message
        if breathing["message"]:
            message += "; " + breathing["message"]
        rq = np.array([oscillation_curvature_mean(session.model, d) for d in dense])
        details = {**breathing["details"], "oscillation_curvature_over_threshold": rq / th.eos_lr_sharpness(ladder),
                   "oscillation_curvature_c": (rq - 2) / ladder, "ladder": ladder, "observed": obs, "predicted": pred, "c_observed": c_obs, "c_predicted": c_pred,
                   "c_standard_error": c_se, "c_deviation_at_zero": c0, "c_deviation_at_zero_se": se0,
                   "breathing_periods": periods, "judged": judged,
                   "sharpness_deviation": np.abs(obs - pred), "sharpness_standard_error": sem,
                   "norm_deviation": np.abs(norm_mean - 1), "norm_standard_error": norm_se,
                   "norm_deviation_at_zero": n0, "norm_deviation_at_zero_se": nse0,
                   "amplitude_ratio": amp["ratio"], "amplitude_ratio_se": amp["se"], "amplitude_slaved_excess": amp["excess"],
                   "amplitude_judged": amp["usable"], "amplitude_deviation_at_zero": a0,
                   "amplitude_deviation_at_zero_se": ase0}
        res = result(session, name, status, pred[-1], obs[-1], "order", worst, message, details, runs, powers)
        # the premises of the O(ηλ) expansion, as for the GD+WD tracking checks (docs/theory.md §6): the runs stay in
        # Γ's O(√ηλ) neighbourhood, and on the judged rungs the slowest normal mode relaxes faster than the
        # equilibrium moves (ηλ·λ₁/(2μ) < 1) -- else the measured verdict is kept in the message, and the verdict
        # is assumption-violated
        return with_caveat(res, neighbourhood_caveat(runs) or separation_caveat(session, judged_ladder))

    return guard(session, name, run)


def oscillation_curvature_mean(model, tr) -> float:
    """η⟨RQ(H̄_t, d_t)⟩, the curvature along the oscillation (``theory.oscillation_curvature``, docs/theory.md §4b
    step 1) averaged over the steps of one whole breathing period (an even count) from the run's last iterate
    (``simulate.oscillation_curvatures``); nan when the run kept no last iterate. Information in the check's
    details (``oscillation_curvature_c`` = (η⟨RQ⟩ - 2)/ηλ, ``oscillation_curvature_over_threshold`` =
    η⟨RQ⟩/(2(1 - ηλ))), not a criterion of the verdict."""
    from ..simulate import oscillation_curvatures

    if tr.w_last is None:
        return float("nan")
    count = 2 * int(np.ceil(th.breathing_period(tr.eta_lambda) / 2))
    return float(tr.lr * np.mean(oscillation_curvatures(model, tr.w_last, tr.lr, tr.wd, count=count)))


#: flow samples within the runs' horizon at which the slaved normal modes' share of the amplitude is evaluated
#: (interpolated linearly in s between them, at each record's clock)
AMPLITUDE_SAMPLES = 9


def amplitude_rungs(session: Session, flow, runs: list) -> dict:
    """The squared distance from Γ against its prediction (docs/theory.md §4 item 3) on each of ``runs`` (the judged
    rungs): ``ratio`` ± ``se``, the level over the records after the start (whose kick sets the amplitude) of
    ‖w̄_t - Φ(w̄_t)‖²/(a²(1 + a²S_f)) and its standard error, with the breathing's sinusoid fitted out
    (``extrapolation.breathing_fit_mean``), a² = ``theory.oscillation_amplitude_sq`` at the G
    of Φ(w̄_t) and S_f the slaved displacement of the normal modes that follow the flip (``theory.slaved_offset``, at
    AMPLITUDE_SAMPLES flow points within the horizon, interpolated at the record's clock); ``excess``, the largest share
    a²S_l of the modes that do not (χ_j ≥ 1); ``usable``, the rungs where it is at most AMPLITUDE_RESOLUTION.

    A slow mode reaches and follows its slaved value only over ~λ₁/(2λ_j) steps: on a finite run it carries anything
    between 0 and a²S_l (measured on the zoo's bnnet-jax-min-d3-h5-n5-s303045618: ⟨‖w̄ - Φ‖²⟩/a² = 1.30 ± 0.04 and
    1.32 ± 0.06 at ηλ = 1e-4, 3e-5, where the slowest mode, λ₁/λ_j = 3500, would add a²S = 6.7 and 2 when slaved, and
    its transient response from the start accounts for the first half of the run). That is no power series in ηλ that
    an extrapolation could remove, so such a rung does not judge the amplitude; where fewer than two are left the
    amplitude is not judged, and the message says why. Without the spectrum (D > ``theory.STABILITY_MAX_DIM``) S is not
    computed and the amplitude is not judged."""
    x_all = np.array([tr.eta_lambda for tr in runs])
    ratio, se, excess = (np.full(len(runs), np.nan) for _ in range(3))
    computable = th.stability_computable(session.model)
    if computable and len(runs):
        tau = th.gdwd_tau(flow)
        inside = np.nonzero(tau <= session.config.tau_end)[0]
        idx = np.unique(np.linspace(0, inside[-1] if len(inside) else 0, AMPLITUDE_SAMPLES).astype(int))
        offsets = [th.slaved_offset(session.model, flow.theta[i], x_all) for i in idx]
        s_idx = flow.s[idx]
        for k, tr in enumerate(runs):
            if tr.offset_sq is None or tr.phi is None or tr.clock is None:
                continue
            later = np.asarray(tr.steps) > 0
            a2 = np.array([th.oscillation_amplitude_sq(tr.lr, tr.wd, th.manifold_point(session.model, p).G)
                           for p in np.asarray(tr.phi)[later]])
            follow = np.interp(np.asarray(tr.clock)[later], s_idx, [o.following[k] for o in offsets])
            r = np.asarray(tr.offset_sq)[later] / (a2 * (1 + a2 * follow))
            ok = np.isfinite(r)
            if ok.sum() >= 3:
                fit = breathing_fit_mean(r[ok], np.asarray(tr.steps)[later][ok], tr.eta_lambda)
                ratio[k], se[k] = fit.mean, fit.se
            excess[k] = float(np.max(a2) * max(o.lagging[k] for o in offsets))
    usable = np.isfinite(ratio) & np.isfinite(se) & (se > 0) & (excess <= tol.AMPLITUDE_RESOLUTION)
    rungs = ", ".join(f"{r:.4f} ± {e:.2g}" for r, e in zip(ratio, se))
    message = f"⟨‖w̄ - Φ(w̄)‖²⟩/(a²(1 + a²S)) = {rungs} at ηλ = {', '.join(f'{x:g}' for x in x_all)}"
    if usable.sum() < 2:
        why = (f"the normal modes too slow to follow the flip (χ_j ≥ 1) may add up to a²S = "
               f"{', '.join(f'{e:.2g}' for e in excess)} (docs/theory.md §4 item 3), more than the resolution "
               f"{tol.AMPLITUDE_RESOLUTION:g}, on {int(np.sum(excess > tol.AMPLITUDE_RESOLUTION))} of these rungs"
               if computable else
               f"the slaved normal modes' share a²S needs the Hessian's spectrum (D = {session.model.dim:,} > "
               f"{th.STABILITY_MAX_DIM})")
        message += f": the amplitude is not judged: {why} (it needs two rungs judged)"
    elif not usable.all():
        message += (f" (judged on ηλ = {', '.join(f'{x:g}' for x in x_all[usable])}, where the level is measured and "
                    f"the slow normal modes' share a²S ≤ {tol.AMPLITUDE_RESOLUTION:g})")
    aliased = np.isfinite(ratio) & np.isinf(se)
    if aliased.any():
        message += (f"; at ηλ = {', '.join(f'{x:g}' for x in x_all[aliased])} the records' stride is close to a multiple "
                    f"of the breathing period, so they do not measure the level (not judged there)")
    return {"ratio": ratio, "se": se, "excess": excess, "usable": usable, "message": message}


#: flow samples within the runs' horizon at which the stability of the equilibrium is evaluated
STABILITY_SAMPLES = 5


def breathing_on_horizon(session: Session, flow, dense: list) -> dict:
    """Whether the equilibrium's predictions can be judged on the runs' horizon τ ≤ tau_end (docs/theory.md §4d, §7):
    ``{"violated": bool, "message": str, "details": dict}``.

    The breathing about the equilibrium has the envelope ε(τ) = ε₀·e^{∫κdτ} (κ = ``theory.eos_stability``), with
    ε₀ = O(√ηλ) from the EoS start. Its first-order part cancels over whole breathing periods and its second-order part
    is O(ε²) in c, so on a fixed horizon the predictions hold to the claimed order whether the equilibrium is stable or
    not (e^{∫κdτ} does not depend on ηλ); what they need is a breathing in its linear regime. So the verdict is
    *assumption violated* when the measured envelope (``eos_stability.breathing_envelope``, after the first
    SKIP_PERIODS periods) reaches E_MAX on a judged run -- where eos-stability's own fit ends the linear regime --
    with the predicted rate κ and the rate measured on the run; else the predictions are judged, and where κ > 0 on
    the horizon the message reports the unstable stretch (s where κ > 0, the predicted growth e^{max ∫κdτ}, the
    measured one) as information: the equilibrium does not persist, which eos-stability measures over several
    e-folds."""
    from .eos_stability import E_MAX, SKIP_PERIODS, breathing_envelope, measured_slope

    tau = th.gdwd_tau(flow)
    inside = np.nonzero(tau <= session.config.tau_end)[0]
    idx = np.unique(np.linspace(0, inside[-1] if len(inside) else 0, STABILITY_SAMPLES).astype(int))
    computable = th.stability_computable(session.model)  # κ needs the Hessian's spectrum (D ≤ STABILITY_MAX_DIM)
    stab = [th.eos_stability(session.model, flow.theta[i]) for i in idx] if computable else []
    kappa = np.array([st.rate for st in stab]) if computable else np.full(len(idx), np.nan)
    # where the breathing grows: κ above its resolution (a neutral equilibrium computes κ = ±1e-15)
    growing = np.array([st.unstable for st in stab], dtype=bool) if computable else np.zeros(len(idx), bool)
    growth = np.concatenate([[0.0], np.cumsum(0.5 * (kappa[1:] + kappa[:-1]) * np.diff(tau[idx]))])  # ∫₀^τ κ dτ
    details = {"stability_rate_predicted": kappa, "stability_s": flow.s[idx],
               "breathing_growth_predicted": float(np.exp(growth.max()))}
    envelopes = []
    for tr in dense:
        if tr.clock_steps is None:
            continue
        x = tr.eta_lambda
        t, eps = breathing_envelope(tr.clock_steps, x)
        keep = t >= SKIP_PERIODS * th.breathing_period(x)
        if keep.sum() >= 1:
            envelopes.append((x, t[keep] * x, eps[keep]))
    measured = "not measured (no per-step clock)"
    if envelopes:
        x, tau_e, eps = envelopes[-1]  # the smallest judged ηλ: the most periods
        rate = "not measurable (< 3 periods)"
        if len(eps) >= 3:
            b, se = measured_slope(tau_e, np.log(eps))
            details["breathing_rate_measured"], details["breathing_rate_measured_se"] = b, se
            rate = f"{b:+.3f} ± {se:.3f} per unit τ"
        measured = (f"ε from {eps[0]:.2g} to {eps[-1]:.2g} (×{eps[-1] / eps[0]:.3g}) over τ = {tau_e[0]:.3g} … "
                    f"{tau_e[-1]:.3g} at ηλ = {x:g}, rate {rate}")
        details["breathing_envelope_max"] = float(max(e.max() for _, _, e in envelopes))
    if computable:
        worst = int(np.argmax(kappa))
        predicted = (f"κ = {kappa[worst]:+.4f} per unit τ at s = {flow.s[idx[worst]]:.3g} (docs/theory.md §4d), growth "
                     f"e^(max ∫κdτ) = ×{details['breathing_growth_predicted']:.3g} over τ ≤ {session.config.tau_end:g}")
    else:
        predicted = f"κ not computed (D = {session.model.dim:,} > {th.STABILITY_MAX_DIM}: it needs the Hessian's spectrum)"
    over = [(x, t, e) for x, t, e in envelopes if e.max() >= E_MAX]
    if over:
        x, t, e = over[0]
        kind = "unstable equilibrium" if np.any(growing) else "nonlinear breathing"
        message = (f"assumption violated: {kind}: the breathing about the EoS equilibrium leaves its linear regime on the "
                   f"run at ηλ = {x:g} (envelope ε = {e.max():.3g} ≥ {E_MAX:g} at τ = {t[np.argmax(e)]:.3g}), and "
                   f"η⟨λ₁⟩ = 2 + cηλ describes the centre of a linear breathing only; predicted {predicted}; measured "
                   f"{measured}; eos-stability measures the rate over several e-folds")
        return {"violated": True, "message": message, "details": details}
    if not np.any(growing):
        return {"violated": False, "message": "", "details": details}
    pos = flow.s[idx][growing]
    message = (f"the equilibrium is unstable on s ∈ [{pos.min():.3g}, {pos.max():.3g}] of the horizon: {predicted}; "
               f"measured {measured}; the breathing stays linear (ε < {E_MAX:g}) on the judged runs, so the predictions "
               "are judged there, but the equilibrium does not persist (eos-stability measures the rate)")
    return {"violated": False, "message": message, "details": details}


CHECK = Check(
    name="eos-equilibrium", position=5, group="gdwd", run=check_eos_equilibrium, ladder=True,
    summary="At the edge of stability η⟨λ₁⟩ = 2 + c(θ)ηλ with c derived, the norm and the oscillation's "
            "amplitude are at their predicted equilibrium.",
    cost=lambda config: {**_costs.gdwd_ladder(config), **_costs.eos_pairs(config)},
    series=(Series("sharpness_deviation", "|η⟨λ₁⟩ − (2 + cηλ)|"),
            Series("norm_deviation", "|⟨‖w‖²/pred⟩ − 1|")))
