"""The ALP checks' clock judged by its signed rate deviation extrapolated to η → 0, and their premises
(docs/theory.md §5b, §6): synthetic ladders for the rules, the public check on sphere_circle for the mechanism."""

from types import SimpleNamespace

import numpy as np
import pytest

from srflow.verification import tolerances as tol
from srflow.verification.checks import _alp
from srflow.verification.ladder import NGD_ORDER, SQRT_ORDER
from srflow.verification.verdicts import LadderVerdict, Status

X = [0.02, 0.01, 0.005, 0.0025]


def _runs(xs, tau_end=0.05):
    return [SimpleNamespace(steps=np.array([0, int(round(tau_end / x**2))])) for x in xs]


@pytest.mark.parametrize("order, k", [(SQRT_ORDER, -0.9), (SQRT_ORDER, 2.5), (NGD_ORDER, -0.75)])
def test_a_right_clock_whose_deviation_vanishes_at_the_order_is_not_rejected(order, k):
    d = [k * x**order.p + 3 * k * x ** (2 * order.p) for x in X]
    assert not _alp.rate_extrapolation(X, _runs(X), d, order).rejects


@pytest.mark.parametrize("alpha", [0.01, -0.01, 0.003, -0.003])
@pytest.mark.parametrize("k", [-0.9, 0.3])
def test_a_clock_wrong_by_a_fixed_amount_is_rejected_even_where_its_error_crosses_zero(alpha, k):
    """A clock × (1 + α) shifts d by α(1 + d): with K = -0.9 and α = +1% the magnitude |d| crosses zero at
    η ≈ 0.011, inside the ladder (the cancellation that let sqrt-GD's clock × 1.01 pass on 3 of 9 zoo models)."""
    d = [(1 + alpha) * (1 + k * x) - 1 for x in X]
    test = _alp.rate_extrapolation(X, _runs(X), d, SQRT_ORDER)
    assert test.rejects and abs(test.fit.alpha - alpha) < 3 * test.fit.se, (test.fit, test.reason())
    v = _alp.judge_rate(LadderVerdict(Status.PASS, "asymptotic", np.array(X), np.abs(d)), test)
    assert v.status == Status.FAIL and "beyond 3 s.e." in v.reason


def test_the_split_transient_turns_only_a_ladder_inside_it_into_not_yet_asymptotic():
    """τ_C = 6|⟨C⟩ − ½|η√(2λ₁)/|T|: the zoo's mfc-np-nomin-c1.5… (λ₁ = 0.650, T/λ₁ = 0.073, ⟨C⟩ ≈ 0.78 on the
    smallest rung) drifts over τ_C = 0.064 at η = 0.00125 -- longer than the run (τ ≤ 0.05)."""
    lam1, cubic = 0.650, 0.073 * 0.650
    msg = _alp.split_transient([0.005, 0.0025, 0.00125], lam1, cubic, 0.78, 0.05)
    assert "not yet asymptotic" in msg and "0.00125" in msg
    assert _alp.split_transient([1e-4, 5e-5, 2.5e-5], lam1, cubic, 0.78, 0.05) == ""
    assert _alp.split_transient(X, lam1, 0.0, 0.78, 0.05) == ""  # no cubic term: the split does not drift
    # T at round-off (the zoo's bnc-np-nomin-n6-obs0.74…: T/λ₁ = -4.4e-16) is no cubic term either
    assert _alp.split_transient(X, 3.54, -4.4e-16 * 3.54, 0.501, 0.05) == ""


def test_a_tie_within_the_runs_reach_is_an_assumption_violation(monkeypatch):
    flow = SimpleNamespace(events=({"s": 0.0808, "kind": "join", "k": 2},))
    runs = [SimpleNamespace(clock=np.array([0.0, 0.0886]))]
    msg = _alp.premise_caveat(None, flow, [0.01], runs, "sqrt-sphere", None)
    assert msg.startswith("assumption violated") and "s = 0.0808" in msg
    far = SimpleNamespace(events=({"s": 0.2, "kind": "join", "k": 2},))
    monkeypatch.setattr(_alp.th, "normal_conditioning", lambda *a: (2.0, 1.0))
    monkeypatch.setattr(_alp.th, "manifold_point", lambda *a: SimpleNamespace(lam1=1.0))
    assert _alp.premise_caveat(SimpleNamespace(theta0=None), far, [0.01], runs, "ngd-sphere", None) == ""


def test_unseparated_time_scales_are_an_assumption_violation(monkeypatch):
    """δ²λ₁/(4μ) ≥ 1 on a judged rung: the zoo's lnnet-jax-min-d3-h3-n4-s914065686 (λ₁/μ = 6.3e4), normalized GD
    at η = 0.01: 1.6."""
    monkeypatch.setattr(_alp.th, "normal_conditioning", lambda *a: (6.3e4, 1.0))
    monkeypatch.setattr(_alp.th, "manifold_point", lambda *a: SimpleNamespace(lam1=1.0))
    runs = [SimpleNamespace(clock=np.array([0.0, 0.05]))]
    msg = _alp.premise_caveat(SimpleNamespace(theta0=None), SimpleNamespace(events=()), [0.02, 0.01, 0.005, 0.0025],
                              runs, "ngd-sphere", None)
    assert "time scales not separated" in msg and "η = 0.01" in msg and "1.6" in msg


def test_a_sqrt_run_off_the_v1_cycle_is_an_assumption_violation(monkeypatch):
    """The largest relative deviation of a step's flow time from δ² does not fall with η (the zoo's
    bn-np-min-d2-h4-n4-s1292556552: 0.24, 0.47, 0.63, 0.70 at η = 0.01 … 0.000625)."""
    monkeypatch.setattr(_alp.th, "normal_conditioning", lambda *a: (3.3, 1.0))
    monkeypatch.setattr(_alp.th, "manifold_point", lambda *a: SimpleNamespace(lam1=3.79))
    xs = [0.01, 0.0025, 0.00125, 0.000625]
    devs = dict(zip(xs, [0.24, 0.47, 0.63, 0.70]))
    monkeypatch.setattr(_alp, "step_deviation", lambda tr, model: devs[tr.lr])
    runs = [SimpleNamespace(lr=x, clock=np.array([0.0, 0.067])) for x in xs]
    msg = _alp.premise_caveat(SimpleNamespace(theta0=None), SimpleNamespace(events=()), xs, runs, "sqrt-sphere", None)
    assert "not on the 2-cycle along v₁" in msg
    devs.update(zip(xs, [0.08, 0.02, 0.01, 0.005]))  # ∝ η: on the cycle
    assert _alp.premise_caveat(SimpleNamespace(theta0=None), SimpleNamespace(events=()), xs, runs, "sqrt-sphere",
                               None) == ""


def test_two_rungs_with_a_step_clock_still_judge_the_v1_cycle(monkeypatch):
    """The smallest judged rung kept no per-step clock (NaN): the two others decide. The zoo's
    rq_sum-jax-min-D7-k2-la1.33-lc1.58-s134910830: 0.21 → 0.34 at η = 0.0025, 0.00125 (not falling: off the cycle);
    halving with η (∝ η) is on it."""
    monkeypatch.setattr(_alp.th, "normal_conditioning", lambda *a: (10.1, 1.0))
    monkeypatch.setattr(_alp.th, "manifold_point", lambda *a: SimpleNamespace(lam1=1.0))
    xs = [0.005, 0.0025, 0.00125, 0.000625]
    devs = dict(zip(xs, [0.16, 0.21, 0.34, float("nan")]))
    monkeypatch.setattr(_alp, "step_deviation", lambda tr, model: devs[tr.lr])
    runs = [SimpleNamespace(lr=x, clock=np.array([0.0, 0.05])) for x in xs]
    args = (SimpleNamespace(theta0=None), SimpleNamespace(events=()), xs, runs, "sqrt-sphere", None)
    assert "not on the 2-cycle along v₁" in _alp.premise_caveat(*args)
    devs.update(zip(xs, [0.04, 0.02, 0.01, float("nan")]))
    assert _alp.premise_caveat(*args) == ""
    devs.update(zip(xs, [0.04, 0.02, float("nan"), float("nan")]))  # one rung: not judged
    assert _alp.premise_caveat(*args) == ""


def test_a_bending_rate_deviation_is_not_rejected():
    """The zoo's lnnet-jax-nomin-d3-h3-n4-s881856848: d = -0.486 … -0.034 still bends (differences 0.133, 0.129, 0.069);
    a straight line on the three smallest rungs gave α = +0.030 ± 0.009 (a false fail). The quadratic in η on the four
    smallest carries the bend in its residual and in the spread of its three-point extrapolations: α ≈ +0.05 ± 0.03."""
    xs = [0.02, 0.01, 0.005, 0.0025, 0.00125, 0.000625]
    d = [-4.859e-01, -4.422e-01, -3.645e-01, -2.312e-01, -1.026e-01, -3.393e-02]
    test = _alp.rate_extrapolation(xs, _runs(xs), d, SQRT_ORDER)
    assert test.settled and not test.rejects and "within 3 s.e." in test.reason()
    assert test.fit.se > 0.02, test.reason()


# the zoo's rq_sum-jax-min-D6-k2-la0.74-lc0.41-s883556672 (sqrt-loss-gd, quick ladder): d falls ∝ η on the smallest
# rungs (-3.86e-3, -2.10e-3, -1.06e-3) after a bump at η = 0.01, 0.005; its d's differences (local exponents 0.52,
# 0.77) never met the straight line's gate, so × 1.01 of the clock went undecided there
RQ_XS = [0.02, 0.01, 0.005, 0.0025, 0.00125, 0.000625]
RQ_D = [-1.588e-02, -3.707e-03, -6.393e-03, -3.863e-03, -2.097e-03, -1.060e-03]


@pytest.mark.parametrize("alpha", [0.01, -0.01, 0.003, -0.003])
def test_a_wrong_clock_is_rejected_on_a_measured_zoo_ladder(alpha):
    right = _alp.rate_extrapolation(RQ_XS, _runs(RQ_XS), RQ_D, SQRT_ORDER)
    assert right.settled and not right.rejects, right.reason()
    wrong = _alp.rate_extrapolation(RQ_XS, _runs(RQ_XS), [(1 + alpha) * (1 + d) - 1 for d in RQ_D], SQRT_ORDER)
    assert wrong.rejects and abs(wrong.fit.alpha - alpha) < 3 * wrong.fit.se, wrong.reason()


def test_a_ladder_inside_the_split_transient_is_not_judged_by_its_rate():
    """The zoo's mfc-np-nomin-c1.5-m3-n4-obs0.9-r2-s1733432326: inside the transient d ≈ −T²τ_end/(36λ₁) = −4.8e-6
    does not depend on η (measured -9.6e-6, -6.1e-6, -6.8e-6 at η = 0.0025 … 0.000625); extrapolated it reads as
    α = -7e-6 ± 4e-6 -- an offset the transient makes, not a wrong clock. Reported, never a verdict."""
    xs = [0.02, 0.01, 0.005, 0.0025, 0.00125, 0.000625]
    d = [-3.035e-04, -8.034e-05, -2.377e-05, -9.608e-06, -6.068e-06, -6.773e-06]
    why = "the judged rungs are inside the cycle split's transient"
    for alpha in (0.0, 0.01, -0.01):
        test = _alp.rate_extrapolation(xs, _runs(xs), [(1 + alpha) * (1 + v) - 1 for v in d], SQRT_ORDER, why)
        assert not test.settled and not test.rejects and "not judged: " + why in test.reason()
    v = _alp.judge_rate(LadderVerdict(Status.INCONCLUSIVE, "not yet asymptotic", np.array(xs), np.abs(d)), test)
    assert v.status == Status.INCONCLUSIVE


@pytest.mark.parametrize("budget, smallest", [(None, 0.000625), (700_000, 0.0003125), (2_750_000, 0.00015625),
                                              (11_000_000, 7.8125e-05)])
def test_the_ladder_adds_the_rungs_its_budget_pays_for(budget, smallest):
    """``run_ladder``'s ``budget`` (the ALP checks pass ``alp_extend_steps`` on a JAX model): rungs η/2 at τ_end/η²
    steps each, 32k + 128k + 512k + 2048k + 8192k below the quick ladder, while the errors stay undecided."""
    from srflow.verification.ladder import run_ladder

    session = SimpleNamespace(config=SimpleNamespace(extend_steps=400_000, extend_factor=2.0))
    undecided = lambda x: {"e": 1.0 + 0.5 * (round(np.log2(0.02 / x)) % 2)}  # noqa: E731 -- never settles
    xs, rows, verdicts = run_ladder(session, X, undecided, {"e": SQRT_ORDER}, cost=lambda x: 0.05 / x**2,
                                    budget=budget)
    assert min(xs) == pytest.approx(smallest) and verdicts["e"].status == Status.INCONCLUSIVE
    assert f"budget of {budget or 400_000:,} extra steps" in verdicts["e"].reason


def test_the_cycle_split_is_reported_without_its_special_case_formula_above_the_dense_size(monkeypatch):
    """Above DENSE_MAX_DIM the split's special-case C* (it needs the whole spectrum of ∇²L) is NaN with a note saying
    why, the measured split is still reported, and no dense Hessian is asked for (a D = 4000 mf raised here)."""
    import sys

    from srflow.toy_models import make_model

    sharpness = sys.modules["srflow.theory.sharpness"]  # the module (srflow.theory.sharpness is also a function)

    base = make_model("sphere_circle")

    def no_hessian(w):
        raise AssertionError("a dense Hessian was asked for")

    model = SimpleNamespace(dim=base.dim, hess=no_hessian)
    monkeypatch.setattr(sharpness, "DENSE_MAX_DIM", 2)
    x = np.array([0.3, 0.1, 0.3, 0.1, 0.3, 0.1])  # |x₊| = 0.3, |x₋| = 0.1: C = 0.75
    tr = SimpleNamespace(offset_sq=x**2, steps=np.arange(6) * 3, phi=None, tau=None)
    out = _alp._split_check(model, tr)
    assert out["split_measured"] == pytest.approx(0.75, rel=1e-12)
    assert np.isnan(out["split_predicted"]) and "whole spectrum" in out["split_predicted_note"]


def test_the_alp_budget_is_work_spread_over_the_dimension():
    """``VerifyConfig.alp_budget``: alp_extend_steps steps up to D = alp_extend_dim (every zoo model, D ≤ 36, and the
    defaults' twins), alp_extend_steps·alp_extend_dim/D above (a compiled step costs ∝ D there): at D = 4000 the
    η = 0.00125 and 0.000625 rungs (32k + 128k steps) still fit, the 512k one does not."""
    from srflow.verification.session import QUICK

    assert QUICK.alp_budget(16) == QUICK.alp_budget(QUICK.alp_extend_dim) == QUICK.alp_extend_steps
    assert QUICK.alp_budget(4000) == int(QUICK.alp_extend_steps * QUICK.alp_extend_dim / 4000) == 176_000
    assert 32_000 + 128_000 <= QUICK.alp_budget(4000) < 32_000 + 128_000 + 512_000
