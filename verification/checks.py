"""Theorem checks: run the algorithms, compare with ``theory``, and return data with a verdict.

Each check takes a ``Session`` (one model, its start point on Γ and the shared runs) and returns a
``CheckResult`` (verification/session.py). Predictions under test are parameters, so that the tests can
hand in a wrong one and see the check fail (tests/test_checks.py).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from theory import (gdwd_steps, manifold_point, naive_gdwd_steps, normalized_gd_steps, nowd_final, nowd_stop,
                    oscillation_amplitude_sq, phase2_duration, project_to_manifold, s_at_steps, sqrt_gd_steps)

from . import tolerances as tol
from .identities import check_identities, check_minimizer
from .session import CheckResult, Session, falls, fit_exponent, guard, result
from .simulate import Trajectory, eos_start, simulate, two_cycle_start


def _first_monitor(runs: list[Trajectory]) -> str:
    for tr in runs:
        if tr.monitor:
            return f"{tr.algorithm} η={tr.lr:g} λ={tr.wd:g}: {tr.monitor[0]}"
    return ""


def _ladder_verdict(session, name, ladder, errors, runs, param, details=None) -> CheckResult:
    """Tracking errors over a ladder of the small parameter: pass when the error at the smallest value is
    ≤ TRACK_ATOL and the fitted exponent p (error ∝ param^p) is > 0 by two standard errors."""
    monitored = _first_monitor(runs)
    if monitored:
        return result(session, name, "assumption-violated", 0.0, None, None, float("nan"), monitored, details, runs)
    ladder, errors = np.asarray(ladder, float), np.asarray(errors, float)
    p, se = fit_exponent(ladder, errors)
    scaled = errors[-1] / tol.TRACK_ATOL
    ok = falls(p, se) and scaled <= 1
    msg = f"error ∝ {param}^{p:.2f} ± {se:.2f}; {errors[-1]:.2e} at {param} = {ladder[-1]:g}"
    if not falls(p, se):
        msg += f" -- the error does not fall with {param}"
    return result(session, name, "pass" if ok else "fail", 0.0, errors[-1], tol.TRACK_ATOL, scaled, msg,
                  {"ladder": ladder, "errors": errors, "exponent": p, "exponent_se": se, **(details or {})}, runs)


def phi_error(tr: Trajectory, flow, s) -> float:
    """max_t ‖Φ(w̄_t) - ζ(s_t)‖ over the records of ``tr``, s_t the flow time matched to each record."""
    return float(np.nanmax(np.linalg.norm(tr.phi - flow.at(s), axis=1)))


def tracking_errors(session: Session, clock: Callable) -> tuple[np.ndarray, list[Trajectory], object]:
    """max_t ‖Φ(w̄_t) - ζ(s(t))‖ per GD+WD run of the ladder, with s(t) from inverting ``clock(flow, lr, wd)``."""
    cfg = session.config
    flow = session.flow()
    runs = session.ladder_runs()
    errors = [phi_error(tr, flow, s_at_steps(flow, clock(flow, tr.lr, tr.wd), tr.steps)) for tr in runs]
    return np.array(errors), runs, flow


# -- GD + WD ---------------------------------------------------------------------------------------------
def check_identities_on(session: Session) -> CheckResult:
    """The scale-invariance identities and exact derivatives (verification/identities.py) at random points,
    and the minimizer conditions at θ₀."""
    rows = check_identities(session.model, session.rng, points=2)
    if hasattr(session.model, "minimizer"):
        rows += check_minimizer(session.model, session.theta0)
    worst = max(rows, key=lambda r: r.scaled_error)
    failed = [r for r in rows if r.status != "pass"]
    msg = "; ".join(f"{r.identity}: {r.message}" for r in failed[:3])
    if any(r.identity in ("invariance", "euler-grad") for r in failed):
        msg = "the loss is not scale-invariant; every other check assumes it. " + msg
    return result(session, "identities", "pass" if not failed else "fail", 0.0, worst.scaled_error, 1.0,
                  worst.scaled_error, msg or f"{len(rows)} identities; worst: {worst.identity}",
                  {r.identity: r.scaled_error for r in rows})


def check_flow_tracking(session: Session, clock: Callable = gdwd_steps, name: str = "flow-tracking") -> CheckResult:
    """‖Φ(w̄_t) - ζ(s(t))‖ over τ ∈ [0, τ_end] for each ηλ of the ladder, s(t) from ``clock`` (the prediction
    under test: 2ηλt = s + log(λ₁(ζ(0))/λ₁(ζ(s)))). Pass: ≤ TRACK_ATOL at the smallest ηλ and falling with ηλ."""

    def run():
        errors, runs, flow = tracking_errors(session, clock)
        return _ladder_verdict(session, name, session.config.ladder, errors, runs, "(ηλ)",
                               {"G_max": float(flow.G.max()),
                                "sharpness_drop": float(1 - flow.sharpness[-1] / flow.sharpness[0])})

    return guard(session, name, run)


def check_naive_flow_rejected(session: Session) -> CheckResult:
    """Negative control: on the same runs, the naive clock (s = 2ηλt, the G → 0 form) has an error ≥ NAIVE_RATIO×
    the flow's at the smallest ηλ and not falling like it (exponent < 0.5). Undecidable (assumption-violated)
    where G < NAIVE_MIN_G on the whole path: the two clocks then differ by < 2.5% in speed."""
    name = "naive-flow-rejected"

    def run():
        flow_err, runs, flow = tracking_errors(session, gdwd_steps)
        if flow.G.max() < tol.NAIVE_MIN_G:
            return result(session, name, "assumption-violated", tol.NAIVE_RATIO, None, None, float("nan"),
                          f"assumption violated: G ≤ {flow.G.max():.2g} on the whole path; the naive and true clocks "
                          "differ by < 2.5% in speed, so this control cannot discriminate on this model", runs=runs)
        naive_err, _, _ = tracking_errors(session, naive_gdwd_steps)
        p, se = fit_exponent(session.config.ladder, naive_err)
        ratio = naive_err[-1] / max(flow_err[-1], 1e-300)
        ok = ratio >= tol.NAIVE_RATIO and p < 0.5
        return result(session, name, "pass" if ok else "fail", f">= {tol.NAIVE_RATIO:g}", ratio, tol.NAIVE_RATIO,
                      tol.NAIVE_RATIO / ratio,
                      f"naive error {naive_err[-1]:.2e} vs flow {flow_err[-1]:.2e} ({ratio:.0f}x); "
                      f"naive ∝ (ηλ)^{p:.2f}: the wrong prediction is rejected" if ok else
                      f"naive error {naive_err[-1]:.2e} vs flow {flow_err[-1]:.2e} ({ratio:.1f}x): not rejected",
                      {"ladder": session.config.ladder, "naive_errors": naive_err, "flow_errors": flow_err,
                       "naive_exponent": p, "naive_exponent_se": se, "G_max": float(flow.G.max())}, runs)

    return guard(session, name, run)


def check_eos_equilibrium(session: Session, sharpness_prediction: Callable = lambda lw: 2 * (1 - lw)) -> CheckResult:
    """On every run of the ladder, at EoS:

    * η⟨λ₁(∇²L(w_t))⟩ (pairs t, t+1 averaged: λ₁ has a ±a∇³L[v₁,v₁,v₁] term that cancels only over a pair)
      vs ``sharpness_prediction(ηλ)`` = 2(1 - ηλ);
    * ‖w_t‖² vs η λ₁(Φ(w̄_t))/(2(1 - ηλ)), relative;
    * ⟨‖w̄_t - Φ(w̄_t)‖²⟩ vs ⟨(ηλ/2)·4/(4 + G)⟩ within AMPLITUDE_RTOL (smallest ηλ).

    The first two are leading-order statements with O(ηλ) corrections whose constant depends on the model
    (second-order terms a²∂²λ₁ with a² ~ ηλ; measured 0.1-6 ηλ): they pass when the deviation falls with
    ηλ (fitted exponent ≥ EOS_MIN_EXPONENT by two standard errors) or is within EOS_COEF_SMALL·ηλ on every
    rung, and is ≤ EOS_ATOL at the smallest ηλ."""
    name = "eos-equilibrium"

    def run():
        runs = session.ladder_runs()
        monitored = _first_monitor(runs)
        if monitored:
            return result(session, name, "assumption-violated", None, None, None, float("nan"), monitored, runs=runs)
        lws = np.array([tr.lr * tr.wd for tr in runs])
        obs = np.array([np.mean(tr.lr * 0.5 * (tr.sharpness + tr.sharpness_next)) for tr in runs])
        pred = np.array([sharpness_prediction(lw) for lw in lws])
        s_dev = np.abs(obs - pred)
        n_dev = np.array([np.max(np.abs(tr.norm_sq * 2 * (1 - lw) / (tr.lr * tr.phi_sharpness) - 1))
                          for tr, lw in zip(runs, lws)])
        tr = runs[-1]
        gs = np.array([manifold_point(session.model, th).G for th in tr.phi])
        a_ratio = float(np.mean(tr.offset_sq) / np.mean([oscillation_amplitude_sq(tr.lr, tr.wd, g) for g in gs]))
        ps, ses = fit_exponent(lws, np.maximum(s_dev, 1e-300))
        pn, sen = fit_exponent(lws, np.maximum(n_dev, 1e-300))
        scaled = max(s_dev[-1] / tol.EOS_ATOL, n_dev[-1] / tol.EOS_ATOL, abs(a_ratio - 1) / tol.AMPLITUDE_RTOL)
        # a deviation is O(ηλ) when it vanishes at the fitted rate, or when it is already within
        # EOS_COEF_SMALL·ηλ on every rung (then it is below the correction term itself, and a fitted exponent
        # only measures sampling noise)
        rates_ok = all(p - 2 * se >= tol.EOS_MIN_EXPONENT or np.all(dev <= tol.EOS_COEF_SMALL * lws)
                       for p, se, dev in ((ps, ses, s_dev), (pn, sen, n_dev)))
        ok = rates_ok and scaled <= 1
        msg = (f"η⟨λ₁⟩ = {obs[-1]:.6f} vs {pred[-1]:.6f} at ηλ = {lws[-1]:g}, deviation ∝ (ηλ)^{ps:.2f} ± {ses:.2f} "
               f"(= {np.median(s_dev / lws):.2f}·ηλ); norm within {n_dev[-1]:.1e} ∝ (ηλ)^{pn:.2f} ± {sen:.2f}; "
               f"⟨a²⟩/pred = {a_ratio:.3f}")
        if not rates_ok:
            msg += f" -- a deviation does not vanish like (ηλ)^{tol.EOS_MIN_EXPONENT:g}"
        return result(session, name, "pass" if ok else "fail", pred[-1], obs[-1], tol.EOS_ATOL, scaled, msg,
                      {"ladder": lws, "observed": obs, "predicted": pred, "sharpness_deviation": s_dev,
                       "sharpness_exponent": ps, "sharpness_exponent_se": ses, "norm_deviation": n_dev,
                       "norm_exponent": pn, "norm_exponent_se": sen, "amplitude_ratio": a_ratio,
                       "deviation_over_wd_lr": s_dev / lws}, runs)

    return guard(session, name, run)


def check_eos_entry(session: Session, duration: Callable = phase2_duration) -> CheckResult:
    """From a random start with ‖w₀‖² = ``entry_norm_ratio`` × the EoS norm: GD+WD converges to Γ (phase 1),
    weight decay shrinks the norm (phase 2), and EoS starts (phase 3) where η λ₁(∇²L(w_t)) first reaches
    2(1 - ηλ). Predicted: step on Γ + ``duration``(η, λ, ‖w‖², λ₁(Φ)) from the state at that step. Tolerance
    ENTRY_ATOL_STEPS on the crossing interpolated between steps (``Trajectory.crossing``)."""
    name = "eos-entry"

    def run():
        cfg, m = session.config, session.model
        wd = cfg.entry_wd_lr / cfg.lr
        u = session.rng.standard_normal(m.dim)
        lam = float(np.linalg.eigvalsh(m.hess(project_to_manifold(m, u).theta))[-1])
        w0 = u / np.linalg.norm(u) * np.sqrt(cfg.entry_norm_ratio * cfg.lr * lam / 2)
        steps = int(1.5 * np.log(cfg.entry_norm_ratio) / (2 * cfg.entry_wd_lr)) + 500
        tr = simulate(m, w0, cfg.lr, steps, wd=wd, every=1, pairs=False, quiet=session.quiet,
                      label=f"{session.name} entry")
        if tr.diverged:
            raise RuntimeError(f"entry run: {tr.diverged}")
        ph = tr.phases(tol.ON_GAMMA_RTOL)
        if ph["on-gamma"] is None or ph["eos"] is None or ph["on-gamma"] == ph["eos"]:
            return result(session, name, "assumption-violated", None, ph["eos"], None, float("nan"),
                          f"assumption violated: phases not separated in {steps} steps (on Γ at {ph['on-gamma']}, "
                          f"EoS at {ph['eos']}): GD did not reach Γ before the norm decayed", {"phases": ph}, [tr])
        i = int(np.searchsorted(tr.steps, ph["on-gamma"]))
        lam_phi = tr.sharpness[i] * tr.norm_sq[i]  # λ₁ is degree -2: λ₁(w̄) = ‖w‖² λ₁(w) on Γ
        predicted = ph["on-gamma"] + duration(cfg.lr, wd, tr.norm_sq[i], lam_phi)
        observed = tr.crossing(ph["eos"])
        scaled = abs(observed - predicted) / tol.ENTRY_ATOL_STEPS
        return result(session, name, "pass" if scaled <= 1 else "fail", predicted, observed, tol.ENTRY_ATOL_STEPS,
                      scaled, f"EoS begins at step {observed:.3f} vs predicted {predicted:.3f} (on Γ at step "
                      f"{ph['on-gamma']}; first EoS step {ph['eos']})",
                      {"phases": ph, "wd_lr": cfg.entry_wd_lr}, [tr])

    return guard(session, name, run)


def check_scale_collapse(session: Session, rescale: Callable = np.sqrt) -> CheckResult:
    """GD+WD with (η, λ) from w₀ and with (cη, λ/c) from ``rescale``(c)·w₀ = √c w₀: by scale invariance
    (∇L(√c w) = ∇L(w)/√c) the second run is √c times the first, step for step (same ηλ, so the same τ).
    Observed: max relative difference of ‖w‖²/c and of w̄ over the run; tolerance COLLAPSE_RTOL (round-off)."""
    name = "scale-collapse"

    def run():
        cfg, m, c = session.config, session.model, session.config.collapse_factor
        lw = cfg.ladder[0]
        w0 = eos_start(m, session.theta0, cfg.lr, lw / cfg.lr)
        every = max(1, cfg.collapse_steps // 100)
        a = simulate(m, w0, cfg.lr, cfg.collapse_steps, wd=lw / cfg.lr, every=every, pairs=False, quiet=True)
        b = simulate(m, rescale(c) * w0, c * cfg.lr, cfg.collapse_steps, wd=lw / (c * cfg.lr), every=every,
                     pairs=False, quiet=True)
        for tr in (a, b):
            if tr.diverged:
                raise RuntimeError(f"scale-collapse run η={tr.lr:g}: {tr.diverged}")
        dev = float(max(np.max(np.abs(b.norm_sq / (c * a.norm_sq) - 1)),
                        np.max(np.abs(b.loss - a.loss) / np.maximum(np.abs(a.loss), 1e-300))))
        scaled = dev / tol.COLLAPSE_RTOL
        return result(session, name, "pass" if scaled <= 1 else "fail", 0.0, dev, tol.COLLAPSE_RTOL, scaled,
                      f"(η, λ) = ({cfg.lr:g}, {lw / cfg.lr:g}) vs ({c * cfg.lr:g}, {lw / (c * cfg.lr):g}) over "
                      f"{cfg.collapse_steps} steps: max relative difference {dev:.1e}", {"factor": c}, [a, b])

    return guard(session, name, run)


# -- the related flows -----------------------------------------------------------------------------------
def check_nowd_clock(session: Session, stop: Callable = nowd_final) -> CheckResult:
    """GD without WD from η_eff λ₁ = 2(1 + ε) with a tiny kick, for each ε of ``nowd_ladder``:
    (1) Φ(w̄_t) vs ζ(s_t) with s_t = log(‖w_t‖²/‖w_0‖²): ≤ TRACK_ATOL at the smallest ε and falling with ε;
    (2) where it comes to rest, s_∞, vs ``stop``(flow, η, ‖w_0‖²) within NOWD_STOP_RTOL relative at the smallest ε
    and falling with ε. ``theory.nowd_final`` (overshoot to η_eff λ₁ = 2/(1 + ε)) is the prediction;
    ``theory.nowd_stop`` (THEORY.md §3: stops at η_eff λ₁ = 2) is reported alongside."""
    name = "no-wd-clock"

    def run():
        cfg, m = session.config, session.model
        mp = manifold_point(m, session.theta0)
        flow = session.flow()
        errors, stop_err, runs, s_obs, s_pred, s_half = [], [], [], [], [], []
        for eps in cfg.nowd_ladder:
            n0 = cfg.lr * mp.lam1 / (2 * (1 + eps))
            steps = int(300 / eps)  # growth e^{4εt} from the kick, then as long again to settle
            tr = simulate(m, np.sqrt(n0) * (mp.theta + cfg.nowd_kick * mp.v1), cfg.lr, steps, every=max(1, steps // 40),
                          track_phi=True, quiet=session.quiet, label=f"{session.name} GD ε={eps:g}")
            if tr.diverged:
                raise RuntimeError(f"GD without WD, ε = {eps:g}: {tr.diverged}")
            s = np.log(tr.norm_sq / tr.norm_sq[0])
            if s[-1] > flow.s[-1]:
                raise RuntimeError(f"GD without WD, ε = {eps:g}: moved beyond the flow's horizon (s = {s[-1]:.3g})")
            errors.append(phi_error(tr, flow, s))
            pred = stop(flow, cfg.lr, n0)
            s_obs.append(float(s[-1]))
            s_pred.append(pred)
            s_half.append(nowd_stop(flow, cfg.lr, n0))
            stop_err.append(abs(s[-1] / pred - 1))
            runs.append(tr)
        res = _ladder_verdict(session, name, cfg.nowd_ladder, errors, runs, "ε")
        if res.status != "pass":
            return res
        p, se = fit_exponent(cfg.nowd_ladder, np.maximum(stop_err, 1e-300))
        ok = falls(p, se) and stop_err[-1] <= tol.NOWD_STOP_RTOL
        res.status = "pass" if ok else "fail"
        res.scaled_error = max(res.scaled_error, stop_err[-1] / tol.NOWD_STOP_RTOL)
        res.message += (f"; comes to rest at s = {s_obs[-1]:.4g} vs {s_pred[-1]:.4g} predicted (relative error "
                        f"∝ ε^{p:.2f} ± {se:.2f}); THEORY.md's stop at η_eff λ₁ = 2 would give {s_half[-1]:.4g}")
        if not ok:
            res.message += " -- the stopping point is not predicted"
        res.details.update({"s_final": s_obs, "s_final_predicted": s_pred, "s_stop_theory_md": s_half,
                            "stop_rel_error": stop_err, "stop_exponent": p, "stop_exponent_se": se})
        return res

    return guard(session, name, run)


def _alp_check(session: Session, name: str, algorithm: str, clock: Callable) -> CheckResult:
    """ALP: the algorithm on the unit sphere from its 2-cycle at θ₀ for τ = η²t ∈ [0, alp_tau_end], for each η
    of ``alp_ladder``: Φ(w̄_t) vs ζ(s(t)) with t = ``clock``(flow, η)(s); error falling with η."""

    def run():
        cfg, m = session.config, session.model
        if algorithm.startswith("sqrt"):
            floor = m.loss(session.theta0)
            if floor > 1e-12 * max(1.0, float(np.linalg.eigvalsh(m.hess(session.theta0))[-1])):
                return result(session, name, "assumption-violated", None, None, None, float("nan"),
                              f"assumption violated: GD on √L needs min L = 0; L(θ₀) = {floor:.3g}")
        flow = session.flow()
        errors, runs = [], []
        for lr in cfg.alp_ladder:
            steps = int(round(cfg.alp_tau_end / lr**2))
            tr = simulate(m, two_cycle_start(m, session.theta0, lr, algorithm), lr, steps, algorithm=algorithm,
                          every=max(1, steps // cfg.records), track_phi=True, quiet=session.quiet, pairs=False,
                          label=f"{session.name} {algorithm} η={lr:g}")
            if tr.diverged:
                raise RuntimeError(f"{algorithm}, η = {lr:g}: {tr.diverged}")
            s = s_at_steps(flow, clock(flow, lr), tr.steps)
            errors.append(phi_error(tr, flow, s))
            runs.append(tr)
        res = _ladder_verdict(session, name, cfg.alp_ladder, errors, runs, "η")
        # Diagnostics of the flip along v₁ on the smallest-η run: the drift formula assumes the symmetric 2-cycle
        # x = ±δ/2 (two_cycle_start); ⟨‖w̄ - Φ‖²⟩/(δ/2)² = 1 there. A cubic term T = ∇³L[v₁,v₁,v₁] ≠ 0 makes the
        # steps of GD on √L depend on x, so the split of the cycle drifts (normalized GD's steps do not).
        mp = manifold_point(m, session.theta0)
        half_step = (cfg.alp_ladder[-1] / 2) * (np.sqrt(mp.lam1 / 2) if algorithm.startswith("sqrt") else 1.0)
        flip = float(np.nanmean(runs[-1].offset_sq) / half_step**2)
        t111 = float(m.third(mp.theta, mp.v1, mp.v1) @ mp.v1) / mp.lam1
        res.details.update({"flip_ratio": flip, "T111_over_lam1": t111})
        res.message += f"; flip ⟨‖w̄-Φ‖²⟩/(δ/2)² = {flip:.2f}, ∇³L[v₁,v₁,v₁]/λ₁ = {t111:.2g} at θ₀"
        return res

    return guard(session, name, run)


def check_normalized_gd(session: Session, clock: Callable = normalized_gd_steps) -> CheckResult:
    """Normalized GD on the sphere vs dX/dτ = -¼∇_Γ log λ₁, τ = η²t (``theory.normalized_gd_steps``)."""
    return _alp_check(session, "normalized-gd", "ngd-sphere", clock)


def check_sqrt_loss_gd(session: Session, clock: Callable = sqrt_gd_steps) -> CheckResult:
    """GD on √L on the sphere vs dX/dτ = -⅛∇_Γ λ₁, τ = η²t (``theory.sqrt_gd_steps``)."""
    return _alp_check(session, "sqrt-loss-gd", "sqrt-sphere", clock)


CHECKS: dict[str, Callable[[Session], CheckResult]] = {
    "identities": check_identities_on,
    "eos-equilibrium": check_eos_equilibrium,
    "eos-entry": check_eos_entry,
    "flow-tracking": check_flow_tracking,
    "naive-flow-rejected": check_naive_flow_rejected,
    "scale-collapse": check_scale_collapse,
    "no-wd-clock": check_nowd_clock,
    "normalized-gd": check_normalized_gd,
    "sqrt-loss-gd": check_sqrt_loss_gd,
}
