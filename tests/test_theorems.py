"""Hypothesis-driven theorem tests: random model instances and (η, ηλ) from ranges where the assumptions
hold (a spectral gap along the path; EoS started at its norm), asserting the 2/η equilibrium and the flow
tracking. A few examples in the default run, more under ``slow``; the CI profile is derandomized."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srflow.theory import gdwd_steps, s_at_steps, sharpness_reduction_flow
from srflow.toy_models import make_model
from srflow.verification import tolerances as tol
from srflow.verification.simulate import eos_start, simulate


@st.composite
def instances(draw):
    """(model, θ₀, η, ηλ): sphere_circle with ratio ρ ∈ [3, 10], dim 3-5, φ₀ ∈ [0.2, 1.2] (G ≥ 0.5 there, gap
    ≥ (κ₂ - κ₃)λ₁), or mf with a seeded target and start; η ∈ [0.05, 0.2], ηλ ∈ [1e-4, 5e-4]."""
    if draw(st.booleans()):
        dim = draw(st.integers(3, 5))
        model = make_model("sphere_circle", ratio=draw(st.floats(3.0, 10.0)), dim=dim)
        phi = draw(st.floats(0.2, 1.2))
        theta0 = np.zeros(dim)
        theta0[:2] = np.cos(phi), np.sin(phi)
    else:
        model = make_model("mf", rng=draw(st.integers(0, 3)))
        theta0 = model.minimizer(np.random.default_rng(draw(st.integers(0, 3))))
    return model, theta0, draw(st.floats(0.05, 0.2)), draw(st.floats(1e-4, 5e-4))


def _eos_run(model, theta0, lr, eta_lambda, tau_end, records=10):
    steps = int(round(tau_end / eta_lambda))
    return simulate(model, eos_start(model, theta0, lr, eta_lambda / lr), lr, steps, wd=eta_lambda / lr,
                    every=max(1, steps // records), track_phi=True)


def _assert_equilibrium(inst):
    model, theta0, lr, eta_lambda = inst
    tr = _eos_run(model, theta0, lr, eta_lambda, tau_end=0.05)
    assert not tr.diverged and not tr.monitor
    pair = np.mean(lr * 0.5 * (tr.lam1 + tr.lam1_next))
    norm_dev = np.max(np.abs(tr.norm_sq * 2 * (1 - eta_lambda) / (lr * tr.phi_lam1) - 1))
    assert abs(pair - 2 * (1 - eta_lambda)) <= tol.EOS_COEF_MAX * eta_lambda, pair
    assert norm_dev <= tol.EOS_COEF_MAX * eta_lambda, norm_dev


def _assert_tracking(inst):
    """The error at ηλ/4 is at most 4^-(1 - ORDER_MARGIN) of the error at ηλ: it falls at the theory's order
    (O(ηλ)) within the verdicts' margin, whatever its constant."""
    model, theta0, lr, eta_lambda = inst
    tau_end = 0.1
    flow = sharpness_reduction_flow(model, theta0, s_end=2 * tau_end + 0.05, n_out=201)
    errors = []
    for rung in (eta_lambda, eta_lambda / 4):
        tr = _eos_run(model, theta0, lr, rung, tau_end)
        assert not tr.diverged and not tr.monitor
        s = s_at_steps(flow, gdwd_steps(flow, lr, rung / lr), tr.steps)
        errors.append(np.max(np.linalg.norm(tr.phi - flow.at(s), axis=1)))
    assert errors[1] <= errors[0] * 4.0 ** -(1 - tol.ORDER_MARGIN), errors


@settings(max_examples=3)
@given(instances())
def test_gdwd_sits_at_the_2_over_eta_equilibrium(inst):
    _assert_equilibrium(inst)


@settings(max_examples=2)
@given(instances())
def test_gdwd_tracks_the_flow_with_error_falling_in_eta_lambda(inst):
    _assert_tracking(inst)


@pytest.mark.slow
@settings(max_examples=20)
@given(instances())
def test_equilibrium_many_instances(inst):
    _assert_equilibrium(inst)


@pytest.mark.slow
@settings(max_examples=12)
@given(instances())
def test_tracking_many_instances(inst):
    _assert_tracking(inst)
