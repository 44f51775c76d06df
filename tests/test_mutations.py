"""The mutation suite: every check, handed a prediction wrong by ±1% and ±0.3% (and the other mutations issue 9
lists) through the public ``theory`` functions, must fail -- on the same quick runs on which the unmutated
prediction passes. Predictions the checks cannot resolve are stated as such, with their resolving power.

The GD runs do not depend on the predictions, so each mutated check reuses the runs of one quick session on
``sphere_circle`` (flows are recomputed: they are theory): the session's cache, and for the ALP and no-WD checks,
which keep their runs to themselves, ``run_memo.memoize_simulate``."""

import numpy as np
import pytest

from srflow import theory
import srflow.theory.flows
import srflow.theory.predictions
from srflow.toy_models import make_model
from run_memo import memoize_simulate
from starts import stable_circle_start
from srflow.verification import checks
from srflow.verification.checks import _alp, no_wd_clock
from srflow.verification.session import QUICK, Session
from srflow.verification.verdicts import Order, judge


@pytest.fixture(scope="module")
def shared_runs():
    """The ALP and no-WD runs, which those checks keep to themselves, shared too (tests/run_memo.py); and theory's
    κ, slaving and c memoized by their arguments (``zoo_study.memoized_theory``, as the zoo study's mutated re-checks
    do): a mutation of one of them wraps the memoized function, so it is the memoized value rescaled -- what the
    unmemoized function would have rescaled (the flow-coefficient mutations change the flow's points, so the memo's
    keys, and reach none of the three)."""
    from srflow.verification.zoo_study import memoized_theory

    with pytest.MonkeyPatch.context() as mp, memoized_theory():
        yield memoize_simulate(mp, [_alp, no_wd_clock])


@pytest.fixture(scope="module")
def base(shared_runs):
    """A quick session on sphere_circle whose runs every mutated check shares (run once per module), from the stable
    start of tests/starts.py: eos-stability resolves κ there to 0.2% (from seed 0's start, unstable, to 10%)."""
    session = Session(make_model("sphere_circle"), QUICK, 0, theta0=stable_circle_start())
    for name in ("flow-tracking", "no-wd-clock", "normalized-gd", "sqrt-loss-gd", "eos-stability"):
        res = checks.CHECKS[name](session)
        assert res.status == "pass", f"{name} must pass unmutated: {res.message}"
    return session


@pytest.fixture
def session(base):
    """The base session's runs and flows (the mutations below do not change the flow)."""
    s = Session(base.model, base.config, base.seed)
    s._cache = dict(base._cache)
    return s


@pytest.fixture
def session_without_flows(base):
    """The base session's runs, without its flows (a mutated flow coefficient recomputes them)."""
    s = Session(base.model, base.config, base.seed)
    s._cache = {k: v for k, v in base._cache.items() if k != "flows"}
    return s


def scaled(fn, factor):
    return lambda *a, **k: factor * fn(*a, **k)


def scaled_rate(fn, factor):
    """``theory.eos_stability`` with its rate κ multiplied by ``factor``."""
    import dataclasses

    def mutated(*a, **k):
        out = fn(*a, **k)
        return dataclasses.replace(out, rate=factor * out.rate)

    return mutated


#: ±0.3% both signs and +1% in the default run, -1% under ``slow`` (the suite's time budget)
FACTORS = [1.01, 0.997, 1.003, pytest.param(0.99, marks=pytest.mark.slow)]


def _factor(f):
    return f.values[0] if hasattr(f, "values") else f


def _cases(label, attr, make, check):
    """One case per factor of FACTORS: (label, attr, builder, check), slow marks carried over."""
    out = []
    for f in FACTORS:
        marks = f.marks if hasattr(f, "marks") else ()
        out.append(pytest.param(f"{label} x{_factor(f)}", attr, (lambda v=_factor(f): make(v)), check, marks=marks))
    return out


CASES = [
    *_cases("GD+WD clock", "gdwd_steps", lambda f: scaled(theory.gdwd_steps, f), "flow-tracking"),
    *_cases("normalized-GD clock", "normalized_gd_steps", lambda f: scaled(theory.normalized_gd_steps, f), "normalized-gd"),
    *_cases("sqrt-GD clock", "sqrt_gd_steps", lambda f: scaled(theory.sqrt_gd_steps, f), "sqrt-loss-gd"),
    *_cases("no-WD clock", "nowd_flow_time", lambda f: scaled(theory.nowd_flow_time, f), "no-wd-clock"),
    *_cases("EoS sharpness", "eos_sharpness", lambda f: scaled(theory.eos_sharpness, f), "eos-equilibrium"),
    *_cases("EoS threshold (entry)", "eos_threshold", lambda f: scaled(theory.eos_threshold, f), "eos-entry"),
    *_cases("equilibrium norm", "equilibrium_norm_sq", lambda f: scaled(theory.equilibrium_norm_sq, f), "eos-equilibrium"),
    *_cases("oscillation amplitude a²", "oscillation_amplitude_sq", lambda f: scaled(theory.oscillation_amplitude_sq, f),
            "eos-equilibrium"),
    *_cases("phase-2 duration", "phase2_duration", lambda f: scaled(theory.phase2_duration, f), "eos-entry"),
    *_cases("EoS entry step", "eos_entry_step", lambda f: scaled(theory.eos_entry_step, f), "eos-entry"),
    *_cases("no-WD rest point", "nowd_final", lambda f: scaled(theory.nowd_final, f), "no-wd-clock"),
    *_cases("scale-collapse factor √c", "collapse_factor", lambda f: scaled(theory.collapse_factor, f), "scale-collapse"),
    *_cases("EoS breathing rate κ", "eos_stability", lambda f: scaled_rate(theory.eos_stability, f), "eos-stability"),
]

OTHER_MUTATIONS = {
    # (theory attribute, mutated value builder, the check it targets)
    # the builders capture the unmutated function: after monkeypatching, ``theory.<name>`` is the mutation itself
    "GD+WD clock 4+G -> 4.05+G": ("gdwd_steps", lambda g=theory.gdwd_steps: (
        lambda flow, lr, wd: g(flow, lr, wd) + 0.05 / 8 * 2 * flow.s / (lr * wd)), "flow-tracking"),
    "sqrt-GD with normalized GD's clock": ("sqrt_gd_steps", lambda: theory.normalized_gd_steps, "sqrt-loss-gd"),
    "no-WD rest point at the threshold (nowd_stop)": ("nowd_final", lambda: theory.nowd_stop, "no-wd-clock"),
    "no-WD rest point x1.05": ("nowd_final", lambda: scaled(theory.nowd_final, 1.05), "no-wd-clock"),
    # the O(ηλ) coefficient c alone: averaged over whole breathing periods its δ* on this quick ladder is ≈ 0.02%
    # (docs/theory.md §4b), so ±3% (the bar), ±1% and ±0.3% must all be rejected
    **{f"EoS O(ηλ) coefficient x{f}": ("eos_sharpness_coefficient",
                                        lambda f=f: scaled(theory.eos_sharpness_coefficient, f), "eos-equilibrium")
       for f in (1.03, 0.97, 1.01, 0.99, 1.003, 0.997)},
    "amplitude x1.15": ("oscillation_amplitude_sq", lambda: scaled(theory.oscillation_amplitude_sq, 1.15),
                        "eos-equilibrium"),
    "phase-2 duration +0.9 step": ("phase2_duration", lambda g=theory.phase2_duration: (lambda *a: g(*a) + 0.9),
                                   "eos-entry"),
    # one step in the ≈ 3600 of the entry run on sphere_circle: the check must take the entry step from theory
    # (issue 21: it added the step up by hand, and this mutation passed on every default model)
    "EoS entry step x1.0003": ("eos_entry_step", lambda: scaled(theory.eos_entry_step, 1.0003), "eos-entry"),
    "EoS entry step x0.9997": ("eos_entry_step", lambda: scaled(theory.eos_entry_step, 0.9997), "eos-entry"),
}


CASES += [pytest.param(label, *spec) for label, spec in OTHER_MUTATIONS.items()]


def assert_fails_by_measurement(res):
    """A fail *because the measured error says so*: the check computed its verdict (details, a finite scaled
    error), not a run that crashed, diverged or ran past the flow's horizon (``session.guard`` turns those into a
    fail with no details and an infinite scaled error)."""
    assert res.status == "fail", res.message
    assert res.details and np.isfinite(res.scaled_error), f"failed without a measurement: {res.message}"


def mutate(monkeypatch, attr, value):
    """``theory.<attr>`` replaced by ``value``; a closed form of ``theory.predictions`` also where it is defined, as a
    wrong formula there would be: the closed forms that call it (``eos_entry_step`` calls ``phase2_duration``) then
    use the mutation too."""
    original = getattr(theory, attr)
    monkeypatch.setattr(theory, attr, value)
    if getattr(theory.predictions, attr, None) is original:
        monkeypatch.setattr(theory.predictions, attr, value)


@pytest.mark.parametrize("label, attr, build, check", CASES)
def test_a_mutated_prediction_fails_its_check(session, monkeypatch, label, attr, build, check):
    mutate(monkeypatch, attr, build())
    res = checks.CHECKS[check](session)
    print(label, res.status, res.message)
    assert_fails_by_measurement(res)
    if attr == "eos_sharpness_coefficient":  # the reason: c's deviation extrapolated to ηλ → 0 is beyond 3 s.e.
        assert abs(res.details["c_deviation_at_zero"]) > 3 * res.details["c_deviation_at_zero_se"], res.message
    if attr == "oscillation_amplitude_sq":  # the reason: the amplitude's deviation extrapolated to ηλ → 0 (judged)
        assert res.details["amplitude_judged"].sum() >= 2, res.message
        assert abs(res.details["amplitude_deviation_at_zero"]) > 3 * res.details["amplitude_deviation_at_zero_se"], \
            res.message
        assert "beyond 3 s.e.)" in res.message.split("Φ(w̄)‖²⟩")[1], res.message
    if attr in ("normalized_gd_steps", "sqrt_gd_steps"):  # the reason: the clock's verdict, by its measured errors
        _assert_alp_clock_fails(res)


def _assert_alp_clock_fails(res):
    """An ALP clock × (1 + α) fails by the clock's own verdict: its magnitude ladder, or its signed rate deviation
    extrapolated to η → 0 beyond 3 s.e. of 0 (docs/theory.md §5b)."""
    assert res.details["clock"]["status"] == "fail", res.message
    alpha, se = res.details["rate_at_zero"], res.details["rate_at_zero_se"]
    assert abs(alpha) > 3 * se or "settles at order" in res.message or "floor" in res.message, res.message


@pytest.mark.parametrize("check, attr", [("normalized-gd", "normalized_gd_steps"), ("sqrt-loss-gd", "sqrt_gd_steps")])
def test_an_alp_clock_one_percent_slow_fails_by_its_rate(session, monkeypatch, check, attr):
    """× 0.99 (the other three factors are in CASES): on the memoized runs a re-judgement, seconds."""
    mutate(monkeypatch, attr, scaled(getattr(theory, attr), 0.99))
    res = checks.CHECKS[check](session)
    assert_fails_by_measurement(res)
    _assert_alp_clock_fails(res)


SLOW = pytest.mark.slow


@pytest.mark.parametrize("check, coef", [
    ("flow-tracking", -0.24), ("flow-tracking", -0.25 * 1.01), ("flow-tracking", -0.25 * 0.997),
    ("normalized-gd", -0.24), ("sqrt-loss-gd", -0.24),
    *[pytest.param(c, k, marks=SLOW) for c in ("normalized-gd", "sqrt-loss-gd") for k in (-0.25 * 1.01, -0.25 * 0.997)],
    *[pytest.param(c, k, marks=SLOW) for c in ("flow-tracking", "normalized-gd", "sqrt-loss-gd")
      for k in (-0.25 * 0.99, -0.25 * 1.003)]])
def test_a_mutated_flow_coefficient_fails_every_flow_check(session_without_flows, monkeypatch, coef, check):
    """The canonical coefficient -¼ of dζ/ds = -¼∇_Γ log λ₁, perturbed where theory keeps it."""
    monkeypatch.setattr(theory.flows, "CANONICAL_COEF", coef)
    res = checks.CHECKS[check](session_without_flows)
    assert_fails_by_measurement(res)


def test_the_naive_control_fails_when_the_naive_clock_is_handed_the_right_answer(session, monkeypatch):
    """If the 'naive' prediction were the right clock, the control could not reject it: it must fail then."""
    monkeypatch.setattr(theory, "naive_gdwd_steps", theory.gdwd_steps)
    res = checks.check_naive_flow_rejected(session)
    assert res.status == "fail" and "NOT rejected" in res.message


def test_the_naive_control_waits_when_the_naive_ladder_is_undecided(session, monkeypatch):
    """A naive clock whose ladder is not yet asymptotic (here: the verdict rules handed errors whose local exponents
    0.5, 1.4, 0.3 have not settled) is neither rejected nor accepted: the control is inconclusive, not a fail."""
    from srflow.verification.checks import naive_flow_rejected

    undecided = judge([1e-3, 3e-4, 1e-4, 3e-5], np.array([0.3, 0.16, 0.03, 0.02]), ORDER)
    assert undecided.status == "inconclusive"
    monkeypatch.setattr(naive_flow_rejected, "judge", lambda *a, **k: undecided)
    res = checks.check_naive_flow_rejected(session)
    assert res.status == "inconclusive" and "undecided" in res.message, res.message


def test_the_naive_control_without_power_is_inconclusive():
    """G ≈ 0 on the path (sphere_circle with ρ = 0.1): the two clocks differ by < 2.5%; no verdict either way."""
    res = checks.check_naive_flow_rejected(Session(make_model("sphere_circle", ratio=0.1), QUICK, 0))
    assert res.status == "inconclusive" and "no power" in res.message


@pytest.mark.parametrize("c, label", [(0.0, "the threshold 2"), (2.0, "2(1 + ηλ)"), (-2.0, "the quoted 2(1 - ηλ)")])
def test_the_o_eta_lambda_term_of_the_threshold_is_resolved(session, monkeypatch, c, label):
    """η⟨λ₁⟩ = 2 + c·ηλ with c derived (docs/theory.md §4b): the constant c of 2, 2(1 + ηλ) and 2(1 - ηλ) are all
    rejected (sphere_circle's c at θ₀ is about -4.4)."""
    monkeypatch.setattr(theory, "eos_sharpness_coefficient", lambda model, theta: c)
    res = checks.check_eos_equilibrium(session)
    assert res.status == "fail", (label, res.message)


def test_resolving_power_is_reported(base):
    """δ* of the clock ≤ 1e-3 already in quick mode on sphere_circle (4 rungs down to ηλ = 3e-5); the flow
    coefficient's ≤ 1e-2 there (its path error is 80x below the bound C·ηλ, which then decides; the default
    run's fifth rung brings it below 1e-3, see docs/results.md). Each δ* is a perturbation the check really rejects."""
    res = checks.check_flow_tracking(base)
    assert res.status == "pass"
    assert 0 < res.resolving_power["clock rate"] <= 1e-3
    assert 0 < res.resolving_power["flow coefficient"] <= 1e-2


# -- the verdict rules themselves -------------------------------------------------------------------------
X = np.array([1e-3, 3e-4, 1e-4, 3e-5, 1e-5])
ORDER = Order(p=1.0, param="x")


def test_an_error_at_the_theory_order_passes():
    assert judge(X, 0.5 * X * (1 + 3 * X), ORDER).status == "pass"


@pytest.mark.parametrize("constant", [1e-3, 1.0, 1e3, 1e6])
def test_the_verdict_does_not_depend_on_the_size_of_the_constant(constant):
    """e = K·x(1 + 3x) passes whatever K (no bound C on it is assumed: it is model-dependent), and reports K."""
    v = judge(X, constant * X * (1 + 3 * X), ORDER)
    assert v.status == "pass" and v.constant == pytest.approx(constant * (1 + 3 * X[-1]))


def test_an_error_falling_faster_than_the_order_passes():
    """e = O(x^p) holds when e ∝ x^2 and p = 1 (the leading coefficient vanishes on that model); the errors are
    above the numerical floor on every rung."""
    assert judge(X, 300.0 * X**2, ORDER).status == "pass"


def test_a_constant_still_growing_is_not_a_pass():
    """Local exponents 1.00, 0.97, 0.93, 0.85: each step within SETTLE_TOL, all ≥ p - margin and the fit ≥ 0.8, but
    the shortfall below p grows from rung to rung (0.07 → 0.15) -- a floor may be emerging -- so the verdict waits
    (inconclusive, extendable)."""
    q = np.array([1.0, 0.97, 0.93, 0.85])
    e = [1.0]
    for qi, (x0, x1) in zip(q, zip(X[:-1], X[1:])):
        e.append(e[-1] * (x1 / x0) ** qi)
    v = judge(X, np.array(e), ORDER)
    assert v.status == "inconclusive" and v.extendable and "constant" in v.reason


@pytest.mark.parametrize("delta", [1e-2, 3e-3])
def test_an_error_with_a_floor_fails(delta):
    """A prediction off by a fixed relative δ leaves a floor ≈ δ·(distance travelled, 0.3): the local
    exponents fall to 0 and settle there -- fail, not 'falls slowly'."""
    assert judge(X, 0.5 * X + delta * 0.3, ORDER).status == "fail"


def test_an_error_falling_at_half_the_order_fails():
    assert judge(X, 1e-3 * X**0.5, ORDER).status == "fail"


def test_a_pre_asymptotic_plateau_that_turns_down_is_inconclusive_not_fail():
    """GD on √L on bn_linear: flat, then ∝ η (issue 9's numbers): the rising local exponents say 'wait'."""
    eta = np.array([0.02, 0.01, 0.005, 0.0025, 0.00125])
    e = np.array([4.1e-5, 5.0e-5, 5.4e-5, 5.4e-5, 3.3e-5])
    assert judge(eta, e, ORDER).status == "inconclusive"


@pytest.mark.parametrize("errors, status", [
    ([2.38e-4, 9.07e-5, 4.81e-5, 9.64e-5], "inconclusive"),             # the quick ladder stops in the plateau
    ([2.38e-4, 9.07e-5, 9.32e-5, 9.58e-5], "inconclusive"),             # fell, then flat over two intervals
    ([1e-3, 1.34e-4, 2.92e-5, 1.85e-5], "inconclusive"),                 # rq2 (outside model): 2.9, 2.2, 0.66
])
def test_a_plateau_after_a_first_fall_is_inconclusive_not_fail(errors, status):
    """GD on √L on bn_linear (this session's `srflow verify --quick`): the path error falls at order 1.39, 0.92,
    then rises; on the default ladder the local exponents were 1.07, -0.04, -0.04, 0.99, 0.99 -- a plateau after a
    first fall, then order 1 again (pass). A ladder that stops in the plateau must wait for more rungs."""
    v = judge([0.02, 0.01, 0.005, 0.0025], np.array(errors), ORDER)
    assert v.status == status and v.extendable, v.reason


def test_an_error_decelerating_below_the_order_fails():
    """The cluster flow's clock × 0.99 on cross_slide (4 rungs): clock errors 2.27e-3, 1.46e-3, 1.24e-3, 1.13e-3,
    local exponents 0.37, 0.15, 0.08 -- all below p - margin and falling: the floor of a wrong clock."""
    v = judge([1e-3, 3e-4, 1e-4, 3e-5], np.array([2.27e-3, 1.46e-3, 1.24e-3, 1.13e-3]), ORDER)
    assert v.status == "fail" and "decelerates" in v.reason, v.reason


def test_errors_at_the_numerical_floor_are_inconclusive():
    """dim Γ = 0 or an exact prediction: nothing to measure an order on."""
    v = judge(X, np.zeros_like(X), ORDER)
    assert v.status == "inconclusive" and "floor" in v.reason


def test_a_ladder_with_repeated_values_is_inconclusive():
    assert judge([1e-3, 1e-3, 1e-3], [1e-4, 1e-4, 1e-4], ORDER).status == "inconclusive"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sphere_circle", "mf", "bn_linear"])
def test_c_wrong_by_three_percent_fails_on_each_default_model(monkeypatch, name):
    """The issue's bar on the start points `srflow verify --quick` draws (spec = the model's name): the right c
    passes and c × 1.03, c × 0.97 fail because c's deviation extrapolated to ηλ → 0 is beyond 3 s.e. (δ* of c is
    0.02–1% there, docs/theory.md §4b). The fast equivalent is the ±3%, ±1%, ±0.3% cases above on sphere_circle."""
    session = Session(make_model(name, rng=0), QUICK, 0, spec=name)
    right = checks.CHECKS["eos-equilibrium"](session)
    assert right.status == "pass", right.message
    original = theory.eos_sharpness_coefficient
    for factor in (1.03, 0.97):
        monkeypatch.setattr(theory, "eos_sharpness_coefficient", scaled(original, factor))
        mutated = Session(session.model, QUICK, 0, spec=name)
        mutated._cache = dict(session._cache)
        res = checks.CHECKS["eos-equilibrium"](mutated)
        assert_fails_by_measurement(res)
        assert abs(res.details["c_deviation_at_zero"]) > 3 * res.details["c_deviation_at_zero_se"], res.message


@pytest.mark.parametrize("check", ["normalized-gd", "sqrt-loss-gd"])
def test_an_alp_check_on_unseparated_time_scales_is_assumption_violated(session, monkeypatch, check):
    """The public check on runs whose model had λ₁/μ = 1e5 (κ handed in through ``theory.normal_conditioning``, as
    the zoo's lnnet-jax-min-d3-h3-n4-s914065686 has 6.3e4): δ²λ₁/(4μ) ≥ 1 on a judged rung, assumption-violated
    with the measured verdict kept (docs/theory.md §5b, §6)."""
    from srflow.verification.checks import _alp

    monkeypatch.setattr(_alp.th, "normal_conditioning", lambda *a, **k: (1e5, 1.0))
    res = checks.CHECKS[check](session)
    assert res.status == "assumption-violated" and "time scales not separated" in res.message, res.message
    assert res.details["measured_status"] == "pass", res.message


@pytest.mark.slow
def test_sqrt_gd_through_a_tie_is_assumption_violated():
    """The zoo's bnc-np-nomin-n6-obs0.74-r2-t1-s484099781: λ₂ joins λ₁ at s = 0.0808 and the √L runs reach s = 0.082
    (a FAIL, path error 7.84e-4 flat, before the premise was checked); 16 s."""
    from srflow.toy_models.zoo import zoo_model

    name = "bnc-np-nomin-n6-obs0.74-r2-t1-s484099781"
    res = checks.CHECKS["sqrt-loss-gd"](Session(zoo_model(name), QUICK, 0, spec=f"zoo:{name}"))
    assert res.status == "assumption-violated" and "meets a branch at s = 0.0808" in res.message, res.message
