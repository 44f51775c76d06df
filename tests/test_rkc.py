"""theory.rkc: the Runge-Kutta-Chebyshev integrator behind the matrix-free Φ (its order, its stability interval,
and a stiff flow against the exact solution)."""

import numpy as np
import pytest

from srflow.theory.rkc import rkc_integrate, rkc_step, stages_for


def test_rkc_is_second_order_for_every_stage_count():
    """On the autonomous y' = -y (exact e^{-t}), halving h divides the error at t = 1 by ≈ 4 (order 2), for
    s = 2, 5 and 20 stages: the coefficients of every stage are right (one wrong coefficient drops the order)."""
    for s in (2, 5, 20):
        errs = []
        for h in (0.1, 0.05, 0.025):
            y = np.array([1.0])
            for _ in range(round(1.0 / h)):
                y = rkc_step(lambda v: -v, y, -y, h, s)
            errs.append(abs(y[0] - np.exp(-1.0)))
        orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
        assert np.all(np.abs(orders - 2.0) < 0.15), (s, orders)


def test_a_first_order_scheme_would_be_caught_by_the_order_test():
    """Companion: explicit Euler (one RKC stage is Euler) shows order 1 by the same measurement."""
    errs = []
    for h in (0.1, 0.05, 0.025):
        y = 1.0
        for _ in range(round(1.0 / h)):
            y = y - h * y
        errs.append(abs(y - np.exp(-1.0)))
    assert abs(np.log2(errs[0] / errs[1]) - 1.0) < 0.1


@pytest.mark.parametrize("h_rho", [10.0, 1e3, 3e4])
def test_stages_for_a_step_keep_the_stiffest_mode_damped(h_rho):
    """y' = -ρy with hρ up to 3e4: with s = stages_for(h, ρ) stages one step multiplies y by a factor of modulus
    < 1 (the stability interval covers hρ); with half as many stages (β ∝ s², a quarter of the interval) the
    factor exceeds 1 -- the rule is not loose by a factor of 2."""
    rho, h = 1.0, h_rho
    s = stages_for(h, rho)
    grow = abs(rkc_step(lambda v: -rho * v, np.array([1.0]), np.array([-rho]), h, s)[0])
    assert grow < 1.0
    fewer = max(2, s // 2)
    worst = max(abs(rkc_step(lambda v: -r * v, np.array([1.0]), np.array([-r]), h, fewer)[0])
                for r in np.linspace(0.3, 1.0, 200) * rho)
    assert worst > 1.0


def test_stiff_linear_flow_matches_the_exact_solution_with_few_evaluations():
    """ẋ = -Ax, A = diag(μ) with μ from 4.5e-3 to 120 (the digits MLP's normal spectrum), to t = 2000: the error
    at the end is ≤ 1e-8 (rtol 1e-8, atol 1e-10) with 5× fewer evaluations than DOP853's stability alone
    requires (its interval on the negative axis is ≈ 6.1/h: ≥ ρT/6.1 steps of 12 evaluations, 4.7e5; measured
    4.8e4)."""
    rng = np.random.default_rng(0)
    mu = np.geomspace(4.5e-3, 120.0, 300)
    x0 = rng.standard_normal(mu.size)
    x, t, evals = rkc_integrate(lambda x: -mu * x, x0, 2000.0, lambda x: 120.0, 1e-8, 1e-10)
    assert t == pytest.approx(2000.0)
    assert np.max(np.abs(x - x0 * np.exp(-mu * 2000.0))) <= 1e-8
    assert evals < 120.0 * 2000.0 / 6.1 * 12 / 5


def test_early_stop_and_evaluation_budget():
    """``stop`` ends the flow at the first accepted step where it holds; a budget too small raises."""
    mu = np.array([1.0, 10.0])
    x, t, _ = rkc_integrate(lambda x: -mu * x, np.ones(2), 100.0, lambda x: 10.0, 1e-8, 1e-10,
                            stop=lambda x, fx: np.linalg.norm(fx) <= 1e-3)
    assert np.linalg.norm(mu * x) <= 1e-3 and t < 100.0
    with pytest.raises(RuntimeError, match="evaluations"):
        rkc_integrate(lambda x: -mu * x, np.ones(2), 100.0, lambda x: 10.0, 1e-8, 1e-10, max_evals=50)


def test_a_flow_that_keeps_blowing_up_ends_at_the_evaluation_budget():
    """A right-hand side that returns NaN everywhere but at the start: every step is rejected as non-finite and
    cut, and the run ends with the budget error instead of looping forever."""
    x0 = np.ones(3)
    f = lambda x: -x if np.array_equal(x, x0) else np.full(3, np.nan)  # noqa: E731
    with pytest.raises(RuntimeError, match="evaluations"):
        rkc_integrate(f, x0, 1.0, lambda x: 1.0, 1e-8, 1e-10, max_evals=200)
