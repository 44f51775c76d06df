"""The verdict criteria carry no constant fitted to particular models (docs/theory.md §7): what they assume is
stated by the theory's order, estimated from the run, or set from the model at hand."""

import numpy as np
import pytest

from srflow.verification import tolerances as tol
import srflow.theory as th
from srflow.verification.extrapolation import (breathing_fit_mean, extrapolate_series_to_zero, extrapolate_to_zero, richardson_spread,
                                                  whole_period_mean)

X = np.array([1e-4, 3e-5, 1e-5])


def test_extrapolation_recovers_the_deviation_at_zero_through_a_resolved_truncation():
    """d = α + β√x exactly, β resolved: α comes back, with the standard error of the two-parameter fit."""
    se = np.full(3, 1e-3)
    alpha, err, *_ = extrapolate_to_zero(X, 0.2 + 30.0 * np.sqrt(X), se)
    assert alpha == pytest.approx(0.2, abs=1e-9) and 1e-3 < err < 1e-2


def test_an_unresolved_truncation_is_not_extrapolated():
    """β within 2 s.e. of 0: α is the weighted mean, whose error is below the extrapolation's."""
    se = np.array([0.1, 0.03, 0.03])
    alpha, err, *_ = extrapolate_to_zero(X, np.array([0.05, -0.01, 0.0]), se)
    full = 1 / np.sqrt(np.sum(1 / se**2))
    assert err == pytest.approx(full, rel=1e-12) and abs(alpha) < 0.03


@pytest.mark.parametrize("offset", [0.01, 0.003, -0.01, -0.003])
def test_a_shifted_coefficient_is_rejected_by_the_extrapolation(offset):
    """A c wrong by Δ leaves α = -Δ at ηλ → 0 whatever the truncation: with s.e. 1e-3 on each rung, Δ = ±0.01
    and ±0.003 are beyond 3 s.e. of α."""
    rng = np.random.default_rng(0)
    se = np.full(3, 2e-4)
    d = -offset + 5.0 * np.sqrt(X) + se * rng.standard_normal(3)
    alpha, err, *_ = extrapolate_to_zero(X, d, se)
    assert abs(alpha) > tol.EOS_SEM_FACTOR * err, (alpha, err)


def test_a_truncation_resolved_on_one_rung_is_extrapolated():
    """d = 0.9·ηλ (no offset), with the largest rung measured best (as on sphere_circle's c, whose batch means are
    1e-5 at ηλ = 1e-4): β is not resolved in the fit, but the truncation 0.9·1e-4 is 9 s.e. on that rung, so it is
    extrapolated instead of averaged -- the weighted mean would carry it into α (+8e-5 ± 1e-5, a false rejection).
    Must-fail companion: the same data shifted by 1e-3 (0.1% of sphere_circle's c = -1.09) is rejected."""
    se = np.array([1e-5, 3e-5, 2e-4])
    d = 0.9 * X
    ex = extrapolate_series_to_zero(X, d, se)
    assert not ex.rejects(tol.EOS_SEM_FACTOR), ex
    shifted = extrapolate_series_to_zero(X, d + 1e-3, se)
    assert shifted.rejects(tol.EOS_SEM_FACTOR) and abs(shifted.alpha) > tol.EOS_SEM_FACTOR * shifted.se, shifted


@pytest.mark.parametrize("truncation", ["sqrt", "linear"])
def test_two_rungs_do_not_know_the_leading_order(truncation):
    """Two rungs (`--quick`), a truncation 15·ηλ (no √ηλ term, as from the test session's start on sphere_circle:
    +1.5e-3, +5e-4 at ηλ = 1e-4, 3e-5, s.e. 8e-5, 5e-5) or 0.15·√ηλ: the √ηλ extrapolation of the linear one is
    -7e-4, 5 s.e. from 0 -- a false rejection, unless se(α) holds the difference from the ηλ extrapolation. Either
    way, a shift of 0.3% of c = -4.3 (0.013) is rejected."""
    x, se = np.array([1e-4, 3e-5]), np.array([8e-5, 5e-5])
    d = 15 * x if truncation == "linear" else 0.15 * np.sqrt(x)
    assert not extrapolate_series_to_zero(x, d, se).rejects(tol.EOS_SEM_FACTOR)
    if truncation == "linear":
        assert extrapolate_to_zero(x, d, se).rejects(tol.EOS_SEM_FACTOR)  # the √ηλ fit alone
    for shift in (0.013, -0.013):
        assert extrapolate_series_to_zero(x, d + shift, se).rejects(tol.EOS_SEM_FACTOR)


def test_richardson_spread_is_zero_on_the_fitted_form_and_measures_the_next_term():
    """Two-point extrapolations of α + β√x all give α (spread 0); a γx term makes them differ."""
    assert richardson_spread(X, 0.2 + 3 * np.sqrt(X), 0.5) == pytest.approx(0.0, abs=1e-12)
    assert richardson_spread(X, 0.2 + 3 * np.sqrt(X) + 50 * X, 0.5) > 1e-4


@pytest.mark.parametrize("phase", [0.0, 0.7, 2.0])
def test_the_mean_over_whole_breathing_periods_cancels_the_breathing(phase):
    """y = m + A cos(ωt + φ) with ω = √(8ηλ) (theory.breathing_period), recorded every 7 steps over 13.5 periods:
    the mean over whole periods is m to 1e-6·A, while the plain mean of the records is off by up to
    A/(2π·13.5)·2 (the half period left over); the batch means' standard error is small, and inf below 3 periods."""
    x, m, amp = 1e-4, 0.3, 2.0
    period = th.breathing_period(x)
    t = np.arange(0, 3000, 7.0)
    y = m + amp * np.cos(2 * np.pi * t / period + phase)
    got = whole_period_mean(y, t, x)
    assert got.periods == 13
    assert got.mean == pytest.approx(m, abs=1e-6 * amp)
    assert got.se < 1e-5
    assert abs(np.mean(y) - m) > 100 * abs(got.mean - m)  # the plain mean keeps part of the breathing
    short = whole_period_mean(y[t < 2.5 * period], t[t < 2.5 * period], x)
    assert short.periods == 2 and short.se == float("inf")


def test_the_batch_means_see_a_wrong_period():
    """A breathing whose period is 5% off the theory's leaks into the one-period blocks: their standard error
    grows by orders of magnitude and covers the leak of the whole-period mean."""
    x = 1e-4
    period = 1.05 * th.breathing_period(x)
    t = np.arange(0, 3000, 7.0)
    got = whole_period_mean(2.0 * np.cos(2 * np.pi * t / period), t, x)
    assert got.se > 1e-3 and abs(got.mean) < 3 * got.se


def test_the_on_gamma_marker_scales_with_the_model():
    """ρ·κ·g is the marker's share of the entry tolerance in log λ₁, whatever κ = λ₁/μ and g = ‖∇log λ₁‖; the
    old fixed 1e-6 is the cap (reached where κg ≤ 25)."""
    for kappa, g in ((73.0, 4.0), (1e3, 0.5), (10.0, 5.0)):
        rho = tol.on_gamma_rtol(kappa, g)
        assert rho * kappa * g == pytest.approx(tol.ENTRY_MARKER_SHARE * tol.ENTRY_LOG_RTOL)
    assert tol.on_gamma_rtol(2.0, 1.0) == tol.ON_GAMMA_RTOL_MAX
    assert tol.on_gamma_rtol(float("nan"), float("nan")) == tol.ON_GAMMA_RTOL_MAX


def test_normal_conditioning_of_a_model_with_a_known_spectrum():
    """sphere_circle at θ = e₁: the Hessian's positive eigenvalues are known in closed form (toy_models), so κ is
    their ratio, and g = ‖∇³L[v₁, v₁]‖/λ₁ agrees with the central difference of λ₁ along its gradient."""
    from srflow.theory import normal_conditioning
    from srflow.toy_models import make_model

    m = make_model("sphere_circle")
    theta = m.minimizer(np.random.default_rng(0))
    vals = np.linalg.eigvalsh(m.hess(theta))
    kappa, g = normal_conditioning(m, theta)
    positive = vals[vals > 1e-6 * vals[-1]]
    assert kappa == pytest.approx(positive[-1] / positive[0], rel=1e-12)
    v = np.linalg.eigh(m.hess(theta))[1][:, -1]
    grad = m.third(theta, v, v)
    u, h = grad / np.linalg.norm(grad), 1e-6
    fd = (np.linalg.eigvalsh(m.hess(theta + h * u))[-1] - np.linalg.eigvalsh(m.hess(theta - h * u))[-1]) / (2 * h)
    assert g == pytest.approx(fd / vals[-1], rel=1e-6)


def test_a_wrong_leading_term_is_rejected_by_the_misfit():
    """A leading term off by 1% makes the deviation of c ∝ 1/ηλ: no α + β√ηλ fits it; the residual scatter
    inflates se(α) to the size of α itself, and the fit's χ² rejects it."""
    se = np.full(3, 0.03)
    test = extrapolate_to_zero(X, 0.02 / X, se)
    assert abs(test.alpha) < 4 * test.se and test.chi2 > 1e6 and test.rejects(3.0)
    assert not extrapolate_to_zero(X, 0.01 * np.array([1.0, -1.0, 0.5]), se).rejects(3.0)


def test_a_symmetric_cycle_deviation_gamma_x_is_not_a_misfit_but_an_offset_is():
    """β = 0 (a symmetric cycle): d = γ·ηλ exactly, with standard errors falling to 1e-7 on the deepest rung (the
    --deep ladder of sphere_circle's former start). The series fit α + β√ηλ + γηλ does not reject it (the misfit test
    of α + β√ηλ alone did: χ² = 243 on 5); an offset α of 5 standard errors, or a wrong leading term d ∝ 1/ηλ, does."""
    x = np.array([1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7])
    se = np.array([7e-5, 6e-5, 5e-5, 2.5e-5, 2e-6, 2.6e-6, 1e-7])
    d = 13.0 * x
    assert extrapolate_to_zero(x, d, se, power=0.5).chi2 > 100  # the √ fit alone misfits
    ex = extrapolate_series_to_zero(x, d, se)
    assert not ex.rejects(tol.EOS_SEM_FACTOR) and ex.dof == 4
    assert extrapolate_series_to_zero(x, d + 5 * ex.se, se).rejects(tol.EOS_SEM_FACTOR)
    # the threshold's leading term off by 1e-6 (its δ* on that run was 1e-7): c off by 1e-6/ηλ
    assert extrapolate_series_to_zero(x, d + 1e-6 / x, se).rejects(tol.EOS_SEM_FACTOR)


def test_whole_period_means_keep_their_digits_over_millions_of_steps():
    """The mean of η⟨λ₁⟩ ≈ 2 over 3·10⁶ steps at ηλ = 1e-7, to 1e-9 in c = (mean - 2)/ηλ (against math.fsum of the
    same whole periods' trapezoid): a plain cumulative sum lost 2e-6 in c."""
    import math

    from srflow.verification.extrapolation import whole_period_mean
    import srflow.theory as th

    x, n = 1e-7, 3_000_000
    t = np.arange(n, dtype=float)
    period = th.breathing_period(x)
    y = 2 - 4.1367 * x + 3e-6 * np.sin(2 * np.pi * t / period) + 1e-9 * np.random.default_rng(0).standard_normal(n)
    m = whole_period_mean(y, t, x)
    whole = int(np.floor((t[-1] - t[0]) / period))
    end = whole * period
    k = int(np.floor(end))
    y_end = np.interp(end, t, y)
    exact = (math.fsum(0.5 * (y[1:k + 1] + y[:k])) + 0.5 * (y[k] + y_end) * (end - k)) / end
    assert abs((m.mean - exact) / x) < 1e-8 and abs((m.mean - 2) / x + 4.1367) < 1e-5


@pytest.mark.parametrize("phase", [0.0, 1.3])
def test_the_breathing_fit_finds_the_level_under_the_breathing_and_the_flip(phase):
    """Records of a level 1 + 2e-4 moved by the breathing (1% at ω = √(8ηλ), any phase) and the flip's two phases
    (±0.3%), 17 records at an odd stride that aliases the period: the fitted level is the level to its standard error,
    which is far below std/√n (the breathing and the flip are not noise); a level off by 0.1% is 3 s.e. away."""
    x = 1e-4
    steps = np.arange(0, 17 * 501, 501)
    omega = th.breathing_frequency(x)
    rng = np.random.default_rng(0)
    y = 1 + 2e-4 + 0.01 * np.cos(omega * steps + phase) + 0.003 * (-1.0) ** steps + 1e-5 * rng.standard_normal(len(steps))
    fit = breathing_fit_mean(y, steps, x)
    assert abs(fit.mean - (1 + 2e-4)) <= 3 * fit.se
    assert fit.se < 1e-4 < np.std(y, ddof=1) / np.sqrt(len(y)) / 10
    assert abs(fit.mean - (1 + 2e-4) * 1.001) > 3 * fit.se
    assert breathing_fit_mean(y[:4], steps[:4], x).se == pytest.approx(np.std(y[:4], ddof=1) / 2)  # too few: plain


def test_records_that_alias_the_breathing_do_not_measure_its_level():
    """`srflow verify --deep`'s ηλ = 3e-5 rung: 25 records at strides of 0.99 of the breathing period (there ≈ 395 steps against 405)
    see the breathing at nearly one phase, so their plain mean is off by the breathing there (here 1 + 0.01·cos φ at
    φ ≈ 0.3 … 1.8 rad: a level off by ≈ 0.5%) while std/√n is a tenth of that: the fit says the level is not measured
    (infinite s.e.) instead of returning that mean with a wrong standard error."""
    x = 3e-5
    period = 2 * np.pi / th.breathing_frequency(x)
    steps = np.round(np.arange(25) * 0.99 * period)
    y = 1 + 0.01 * np.cos(th.breathing_frequency(x) * steps + 0.3)
    plain = np.mean(y)
    assert abs(plain - 1) > 3 * np.std(y, ddof=1) / np.sqrt(len(y))  # the plain mean would reject the right level
    fit = breathing_fit_mean(y, steps, x)
    assert fit.se == np.inf
    spread = np.round(np.arange(25) * 0.3 * period)  # the same level sampled across the breathing is measured
    good = breathing_fit_mean(1 + 0.01 * np.cos(th.breathing_frequency(x) * spread + 0.3), spread, x)
    assert np.isfinite(good.se) and abs(good.mean - 1) <= 3 * good.se + 1e-12
