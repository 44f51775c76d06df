"""Extrapolating a deviation measured at several values of ηλ to ηλ → 0, with its standard error: how
``eos-equilibrium`` and ``eos-stability`` judge quantities whose next-order term is not derived
(docs/theory.md §7)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import chi2 as chi2_dist
from scipy.stats import norm as normal

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
        return self.dof > 0 and self.chi2 > chi2_dist.ppf(2 * normal.cdf(sigmas) - 1, self.dof)


def extrapolate_to_zero(x, d, se, power: float = 0.5) -> Extrapolation:
    """The deviation ``d`` ± ``se`` measured at ηλ = ``x``, extrapolated to ηλ → 0: weighted least squares (weights
    1/se²) of d = α + βx^``power``, where the truncation vanishes; where the fitted β is not resolved
    (|β| ≤ 2 se(β)) the truncation is below the noise and α is the weighted mean of d (the extrapolation would only
    amplify the noise). se(α) is inflated by the scatter of the residuals when there are more points than
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
    if abs(coef[1]) <= 2 * err[1]:
        coef, err, chi2, dof = wls([np.ones_like(x)])
    return Extrapolation(float(coef[0]), float(err[0]), chi2, dof)


def blocked_standard_error(samples: np.ndarray, steps: np.ndarray, eta_lambda: float) -> float:
    """Standard error of the mean of ``samples`` (recorded at ``steps``) from means over blocks one breathing period
    2π/√(8ηλ) long: consecutive records within a period are correlated, block means are nearly independent."""
    period = th.breathing_period(eta_lambda)
    block = np.floor((steps - steps[0]) / period).astype(int)
    means = np.array([samples[block == b].mean() for b in np.unique(block)])
    return float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 2 else float("inf")
