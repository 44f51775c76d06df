"""Extrapolating a deviation measured at several values of ηλ to ηλ → 0, with its standard error: how
``eos-equilibrium`` and ``eos-stability`` judge quantities whose next-order term is not derived
(docs/theory.md §7); and the mean of a run's records over whole breathing periods with its batch-means standard
error (``whole_period_mean``, docs/theory.md §4b)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import srflow.theory as th


class Extrapolation(NamedTuple):
    """A deviation extrapolated to ηλ → 0: ``alpha`` ± ``se``, and the χ² of the fit with its degrees of freedom."""

    alpha: float
    se: float
    chi2: float
    dof: int

    def rejects(self, sigmas: float) -> bool:
        """The prediction is off: α ≠ 0 beyond ``sigmas`` standard errors, or the deviations do not have the
        form α + βx^p at all (χ² beyond the same two-sided probability, e.g. a wrong leading term: d ∝ 1/ηλ)."""
        if abs(self.alpha) > sigmas * self.se:
            return True
        from scipy.stats import chi2, norm  # lazily: scipy.stats costs ~0.4 s of every srflow process's start

        return self.dof > 0 and self.chi2 > chi2.ppf(2 * norm.cdf(sigmas) - 1, self.dof)


def extrapolate_to_zero(x, d, se, power: float = 0.5) -> Extrapolation:
    """The deviation ``d`` ± ``se`` measured at ηλ = ``x``, extrapolated to ηλ → 0: weighted least squares (weights
    1/se²) of d = α + βx^``power``, where the truncation vanishes; where the truncation is below the noise -- the
    fitted β is not resolved (|β| ≤ 2 se(β)) and the truncation it implies, |β|x^p, is below the standard error on
    every rung -- α is the weighted mean of d (the extrapolation would only amplify the noise). The second condition
    matters when the rungs' errors differ: a truncation resolved on one well-measured rung but not in β (a weighted
    mean dominated by that rung would carry its truncation into α; measured: +8e-5 ± 1e-5 on `sphere_circle`'s c,
    a false rejection). se(α) is inflated by the scatter of the residuals when there are more points than
    parameters; χ² is kept, so that a misfit rejects (``Extrapolation.rejects``)."""
    x, d, se = (np.asarray(v, float) for v in (x, d, se))
    if not np.all(np.isfinite(se) & (se > 0)):
        return Extrapolation(float(np.mean(d)), float("inf"), 0.0, 0)

    def wls(columns):
        a = np.vstack(columns).T / se[:, None]
        cov = np.linalg.inv(a.T @ a)
        coef = cov @ a.T @ (d / se)
        dof = len(x) - len(columns)
        chi2 = float(np.sum((a @ coef - d / se) ** 2))
        spread = max(1.0, np.sqrt(chi2 / dof)) if dof > 0 else 1.0
        return coef, np.sqrt(np.diag(cov)) * spread, chi2, dof

    coef, err, chi2, dof = wls([np.ones_like(x), x ** power])
    if abs(coef[1]) <= 2 * err[1] and np.all(abs(coef[1]) * x ** power <= se):
        coef, err, chi2, dof = wls([np.ones_like(x)])
    return Extrapolation(float(coef[0]), float(err[0]), chi2, dof)


def extrapolate_series_to_zero(x, d, se, powers=(0.5, 1.0)) -> Extrapolation:
    """``d`` = α + β₁x^p₁ + β₂x^p₂ + … (``powers`` ascending: a truncation that is a series in x^p₁ whose leading
    coefficient may vanish) extrapolated to x → 0: α from ``extrapolate_to_zero`` with the first power, its standard
    error enlarged by the model's uncertainty -- the difference from the extrapolation with the second power (which
    term dominates the recorded rungs is not known) and the spread of the two-point extrapolations of consecutive
    rungs (``richardson_spread``: the terms beyond the fitted one) -- added in quadrature. χ² is that of the whole
    series α + Σβ_k x^p_k fitted at once where the rungs outnumber its coefficients (else the first fit's): the misfit
    test asks whether the deviations have the form the theory allows, and where β₁ = 0 (a symmetric cycle) the first
    fit alone misfits a clean γx (measured on sphere_circle's --deep ladder: χ² = 243 on 5 degrees of freedom for
    α + β√x, 0.04 on 4 for α + β√x + γx)."""
    x, d, se = (np.asarray(v, float) for v in (x, d, se))
    first = extrapolate_to_zero(x, d, se, power=powers[0])
    model = richardson_spread(x, d, powers[0])
    for p in powers[1:]:
        model = np.hypot(model, first.alpha - extrapolate_to_zero(x, d, se, power=p).alpha)
    chi2, dof = first.chi2, first.dof
    if len(x) > 1 + len(powers) and np.all(np.isfinite(se) & (se > 0)):
        a = np.vstack([np.ones_like(x)] + [x ** p for p in powers]).T / se[:, None]
        coef = np.linalg.lstsq(a, d / se, rcond=None)[0]
        chi2, dof = float(np.sum((a @ coef - d / se) ** 2)), len(x) - 1 - len(powers)
    return first._replace(se=float(np.hypot(first.se, model)), chi2=chi2, dof=dof)


def richardson_spread(x, d, power: float = 1.0) -> float:
    """The uncertainty of an extrapolation of ``d`` = α + βx^``power`` to x → 0 from the terms it neglects: the
    largest difference between the two-point extrapolations (x_i^p d_j - x_j^p d_i)/(x_i^p - x_j^p) of consecutive
    rungs (0 with fewer than 3)."""
    x, d = np.asarray(x, float), np.asarray(d, float)
    if len(x) < 3:
        return 0.0
    xp = x ** power
    two_point = (xp[:-1] * d[1:] - xp[1:] * d[:-1]) / (xp[:-1] - xp[1:])
    return float(np.max(two_point) - np.min(two_point))


def lagrange_spread(x, d, degree: int = 1) -> float:
    """The uncertainty of an extrapolation of ``d`` = α + β₁x + … + β_k x^k (k = ``degree``) to x → 0 from the terms it
    neglects: the largest difference between the (k+1)-point polynomial extrapolations to x = 0 of consecutive rungs
    (degree 1 is ``richardson_spread`` with power 1; 0 with fewer than k + 2 rungs)."""
    x, d = np.asarray(x, float), np.asarray(d, float)
    n = degree + 1
    if len(x) < n + 1:
        return 0.0
    values = []
    for i in range(len(x) - n + 1):
        xs, ds = x[i:i + n], d[i:i + n]
        weights = [np.prod([xs[j] / (xs[j] - xs[m]) for j in range(n) if j != m]) for m in range(n)]
        values.append(float(np.dot(weights, ds)))
    return float(np.max(values) - np.min(values))


def extrapolate_polynomial(x, d, se, degree: int = 2) -> Extrapolation:
    """``d`` ± ``se`` measured at x, a smooth function α + β₁x + … + β_k x^k + O(x^{k+1}) (k = ``degree``; where the
    x-series of the truncation is generic, no coefficient vanishing), extrapolated to x → 0: weighted least squares,
    se(α) inflated by the residual scatter when there are more rungs than coefficients, and the spread of the
    (k+1)-point extrapolations of consecutive rungs (``lagrange_spread``: the terms beyond x^k) added in quadrature.
    χ² is the fit's. Needs at least k + 1 rungs."""
    x, d, se = (np.asarray(v, float) for v in (x, d, se))
    if len(x) < degree + 1 or not np.all(np.isfinite(se) & (se > 0)):
        return Extrapolation(float(np.mean(d)), float("inf"), 0.0, 0)
    a = np.vstack([x ** j for j in range(degree + 1)]).T / se[:, None]
    cov = np.linalg.inv(a.T @ a)
    coef = cov @ a.T @ (d / se)
    dof = len(x) - degree - 1
    chi2 = float(np.sum((a @ coef - d / se) ** 2))
    spread = max(1.0, np.sqrt(chi2 / dof)) if dof > 0 else 1.0
    err = float(np.sqrt(cov[0, 0]) * spread)
    return Extrapolation(float(coef[0]), float(np.hypot(err, lagrange_spread(x, d, degree))), chi2, dof)


class PeriodMean(NamedTuple):
    """The mean of a recorded series over whole breathing periods, its standard error and the number of periods."""

    mean: float
    se: float
    periods: int


def whole_period_mean(samples, steps, eta_lambda: float) -> PeriodMean:
    """The time average of ``samples`` (recorded at ``steps``) over the longest stretch of whole breathing periods
    P = 2π/√(8ηλ) (``theory.breathing_period``) from the first record: ∫ y dt / (nP) with y linear between records.

    Why whole periods: the breathing of GD+WD about its EoS equilibrium is a Lotka–Volterra centre (docs/theory.md
    §4b): its first-order part enters y as a sinusoid of period P whose amplitude, in units of ηλ, does not shrink
    with ηλ (~2 in c on the default models); a mean over a run that ends at an arbitrary phase keeps up to
    amplitude/(2π·periods) of it, which over whole periods cancels (and any harmonics with it).

    Standard error by batch means: the n means over one period each, std(ddof=1)/√n. Each block holds one whole
    oscillation, so the block means are nearly independent; their scatter also contains the slow drift of y along
    the run (its O(ηλ) truncation changes with θ), which keeps the error conservative. ``se`` is inf with fewer than
    three periods."""
    y, t = np.asarray(samples, float), np.asarray(steps, float)
    period = th.breathing_period(eta_lambda)
    n = int(np.floor((t[-1] - t[0]) / period))
    if n < 1:
        return PeriodMean(float(np.mean(y)), float("inf"), 0)
    # integrate y - y₀, not y: a cumulative sum of ~10⁶ values ≈ 2 loses ~√N ulps of 2N, and a block's mean is a
    # difference of two such sums. Measured: at ηλ = 1e-7 (3·10⁶ steps) the mean of η⟨λ₁⟩ was off by 2e-6 in c,
    # twenty standard errors of that rung (the --deep eos-equilibrium FAIL on sphere_circle, docs/results.md)
    ref = float(y[0])
    y = y - ref
    edges = t[0] + period * np.arange(n + 1)
    # ∫ of the linear interpolant: cumulative trapezoid at the records, plus the partial interval to each edge
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(t))])
    k = np.clip(np.searchsorted(t, edges, side="right") - 1, 0, len(t) - 2)
    y_edge = np.interp(edges, t, y)
    at_edge = cum[k] + 0.5 * (y[k] + y_edge) * (edges - t[k])
    blocks = np.diff(at_edge) / period
    se = float(np.std(blocks, ddof=1) / np.sqrt(n)) if n >= 3 else float("inf")
    return PeriodMean(ref + float((at_edge[-1] - at_edge[0]) / (n * period)), se, n)


def breathing_fit_mean(samples, steps, eta_lambda: float) -> PeriodMean:
    """The level m of ``samples`` recorded at ``steps`` (a few per run, at any phase of the breathing) by least squares
    of y = m + p·cos ωt + q·sin ωt + r·(-1)^t, ω = √(8ηλ) the breathing's frequency (``theory.breathing_frequency``),
    and its standard error from the residuals: the breathing moves each record by a sinusoid of the known frequency
    (docs/theory.md §4b), and the flip's asymmetry (its centre -αa²/2 off Γ) alternates it between the two phases,
    both of which std/√n would count as noise (the (-1)^t column where each phase has ≥ 2 of ≥ 6 records). ``periods`` is the number of whole breathing
    periods spanned. With fewer than 5 records, the plain mean and std/√n. Where cos ωt and
    sin ωt are nearly collinear with the constant (records whose stride is close to a multiple of the period, so that
    they see the breathing at nearly one phase: the fit's covariance says so, cov₀₀·n > 10), the records cannot tell
    the level from the breathing -- their plain mean is off by the breathing at that phase and std/√n does not see it
    (measured: `srflow verify --deep`'s ηλ = 3e-5 rung, strides of 376-401 steps against a period of 405,
    ⟨‖w̄ - Φ‖²⟩/a² = 1.0068 ± 0.0007 on sphere_circle and 1.0088 ± 0.0007 on mf, where every other rung gives 1.0000
    to its s.e.): the level is returned with an infinite standard error, i.e. not measured on that run."""
    y, t = np.asarray(samples, float), np.asarray(steps, float)
    n = len(y)
    periods = int(np.floor((t[-1] - t[0]) / th.breathing_period(eta_lambda))) if n else 0
    plain = PeriodMean(float(np.mean(y)), float(np.std(y, ddof=1) / np.sqrt(n)) if n >= 2 else float("inf"), periods)
    if n < 5:
        return plain
    omega = th.breathing_frequency(eta_lambda)
    cols = [np.ones(n), np.cos(omega * t), np.sin(omega * t)]
    parity = (-1.0) ** np.round(t)
    if min(np.sum(parity > 0), np.sum(parity < 0)) >= 2 and n >= 6:
        cols.append(parity)  # the flip's two phases (records at an odd stride alternate them)
    a = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    cov = np.linalg.pinv(a.T @ a)
    se = float(np.sqrt(cov[0, 0] * (resid @ resid) / (n - len(cols))))
    if not np.isfinite(se) or cov[0, 0] * n > 10:  # the constant poorly separated from the sinusoid: not measured
        return PeriodMean(plain.mean, float("inf"), periods)
    return PeriodMean(float(coef[0]), se, periods)
