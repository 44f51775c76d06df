"""The no-WD rest point (docs/theory.md §5, issue 18): judged by its signed relative error extrapolated to ε → 0, so
that a rest point wrong by ±1% or ±0.3% fails *because a is beyond 3 s.e.*; its premise (the flip's
amplitude-dependence β and the slaving of the normal modes) gives assumption-violated with the numbers; and the
theory behind it (``nowd_rest_fraction``, ``nowd_stabilization``) against independent computations."""

import numpy as np
import pytest
from scipy.integrate import quad

from srflow import theory
from srflow.toy_models import make_model
from run_memo import memoize_simulate
from starts import stable_circle_start
from srflow.verification.checks import CHECKS, no_wd_clock
from srflow.verification.session import QUICK, Session


@pytest.fixture(scope="module")
def base():
    """sphere_circle from the mutation suite's stable start, quick ladder: its no-WD runs shared (run_memo)."""
    with pytest.MonkeyPatch.context() as mp:
        memoize_simulate(mp, [no_wd_clock])
        session = Session(make_model("sphere_circle"), QUICK, 0, theta0=stable_circle_start())
        res = CHECKS["no-wd-clock"](session)
        assert res.status == "pass", res.message
        yield session, res


@pytest.mark.parametrize("factor", [1.01, 0.99, 1.003, 0.997])
def test_a_wrong_rest_point_fails_by_its_extrapolated_signed_error(base, monkeypatch, factor):
    session, unmutated = base
    # the check has power here: δ* of the rest point well below 0.3%
    assert 0 < unmutated.resolving_power["rest point"] < 0.003 / 2
    original = theory.nowd_final
    monkeypatch.setattr(theory, "nowd_final", lambda *a, **k: factor * original(*a, **k))
    s = Session(session.model, session.config, session.seed)
    s._cache = dict(session._cache)
    res = CHECKS["no-wd-clock"](s)
    assert res.status == "fail", res.message
    assert res.details and np.isfinite(res.scaled_error), res.message
    d = res.details
    # the reason: the rest point's a is beyond 3 s.e. (the tracking verdict is untouched by this mutation)
    assert d["rest point"]["status"] == "fail" and d["tracking"]["status"] == "pass"
    assert abs(d["rest_deviation_at_zero"]) > 3 * d["rest_deviation_at_zero_se"]
    assert "rest point: a prediction is off" in res.message
    # a ≈ (1 + a₀)/factor - 1: the mutation is what moved it
    a0 = unmutated.details["rest_deviation_at_zero"]
    assert d["rest_deviation_at_zero"] == pytest.approx((1 + a0) / factor - 1, abs=2e-4)


def test_a_self_stabilized_catapult_is_assumption_violated():
    """`breathing` with a strongly coupled, fast normal mode (t = 3, μ = 0.5: slaved, β = 38): at ε = 0.1 and 0.05 the
    expansion parameter g = βu₀/(1 + G/4) is 2.9 and 1.5 and the run rests far before the reflection (-35%, -25%).
    Without a step budget to continue the ladder (extend_steps = 0) only ε = 0.025, 0.0125 are in the regime of the
    O(ε) claim: assumption violated, with the numbers (with the budget the check goes down to ε = 0.003125)."""
    import dataclasses

    m = make_model("breathing", coupling=3.0, normal=0.5)
    session = Session(m, dataclasses.replace(QUICK, extend_steps=0), 0, quiet=True)
    beta = theory.nowd_stabilization(m, session.theta0)
    # k = -4 + 24b - 12t²/μ, α = 6c (c = 0.05): β = (3α² - k + 8)/6, independent of the check's code path
    assert beta == pytest.approx((3 * 0.3**2 + 4 + 12 * 9 / 0.5 + 8) / 6, rel=1e-6)
    res = CHECKS["no-wd-clock"](session)
    assert res.status == "assumption-violated", res.message
    assert "2 of the rungs ε = 0.1, 0.05, 0.025, 0.0125 are in the regime of the O(ε) rest point" in res.message
    assert "g = 2.9 at ε = 0.1, 1.48 at ε = 0.05" in res.message
    assert res.details["expansion_parameter"][0] > 1 > res.details["expansion_parameter"][-1]


def test_the_rest_fraction_solves_its_integral_condition():
    """x_f(g): ∫_{x_f}^1 x e^{-gx} dx = 0 (quadrature), -1 at g = 0, the series near 0, -1/g for g → ∞."""
    for g in (-0.9, -0.3, -1e-4, 0.0, 5e-4, 0.002, 0.3, 1.0, 3.0, 30.0):
        x = theory.nowd_rest_fraction(g)
        assert abs(quad(lambda t: t * np.exp(-g * t), x, 1)[0]) < 1e-9 * max(1.0, np.exp(abs(g)))
    assert theory.nowd_rest_fraction(0.0) == -1.0
    assert theory.nowd_rest_fraction(0.01) == pytest.approx(-1 + 2 * 0.01 / 3 - 4 * 0.01**2 / 9, abs=1e-6)
    assert theory.nowd_rest_fraction(1e4) == pytest.approx(-1e-4, rel=1e-3)
    with pytest.raises(ValueError, match="g"):
        theory.nowd_rest_fraction(-1.5)


def test_the_stabilized_rest_point_reduces_to_nowd_final_at_beta_zero():
    m = make_model("sphere_circle")
    flow = theory.sharpness_reduction_flow(m, m.minimizer(np.random.default_rng(0)), 0.05)
    n0 = theory.nowd_start_norm_sq(0.1, flow.lam1[0], 0.01)
    s0 = theory.nowd_final(flow, 0.1, n0)
    assert theory.nowd_final(flow, 0.1, n0, stabilization=0.0) == s0
    # β > 0 rests earlier, by the relative -g/3 at small g
    g = 3.0 * np.log1p(0.01) / (1 + flow.G[0] / 4)
    assert theory.nowd_final(flow, 0.1, n0, stabilization=3.0) == pytest.approx(s0 * (1 - g / 3), rel=0.05 * g)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mf", "bn_linear"])
def test_the_other_defaults_pass_no_wd_clock(name):
    """mf (one normal mode with χ = 1.1 at ε = 0.1: the ladder is continued to ε = 0.00625) and bn_linear, quick, seed 0
    (about a minute each; sphere_circle is the mutation fixture above)."""
    res = CHECKS["no-wd-clock"](Session(make_model(name), QUICK, 0, quiet=True))
    assert res.status == "pass", res.message
