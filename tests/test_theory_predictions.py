"""Closed-form predictions: internal consistency, limits, and the threshold bracket of the EoS condition."""

import numpy as np
import pytest

from srflow.theory import eos_entry_step, eos_threshold, equilibrium_norm_sq, oscillation_amplitude_sq, phase2_duration
from srflow.toy_models import make_model


def test_threshold_and_equilibrium_norm_agree():
    """At the equilibrium norm, λ₁(∇²L(w)) = λ₁(θ)/‖w‖² equals the EoS threshold 2(1 - ηλ)/η."""
    for lr, wd, lam1 in [(0.1, 1e-3, 5.0), (0.5, 0.2, 0.3), (1e-3, 10.0, 100.0)]:
        assert lam1 / equilibrium_norm_sq(lr, wd, lam1) == pytest.approx(eos_threshold(lr, wd), rel=1e-14)


def test_amplitude_limits():
    """G → 0: a² = ηλ/2; G = 4: half of that; decreasing in G."""
    assert oscillation_amplitude_sq(0.1, 1e-3) == pytest.approx(0.5e-4, rel=1e-14)
    assert oscillation_amplitude_sq(0.1, 1e-3, G=4.0) == pytest.approx(0.25e-4, rel=1e-14)
    with pytest.raises(ValueError, match="G: expected"):
        oscillation_amplitude_sq(0.1, 1e-3, G=-1)


def test_phase2_duration_is_exact_for_pure_decay_and_matches_theory_limit():
    """(1-ηλ)^{2t}‖w‖² reaches the EoS norm after phase2_duration steps; for small ηλ it tends to
    the quoted (1/(2ηλ)) ln(2‖w‖²/(ηλ₁))."""
    lr, wd, lam1, n2 = 0.1, 1e-3, 4.0, 3.0
    t = phase2_duration(lr, wd, n2, lam1)
    assert (1 - lr * wd) ** (2 * t) * n2 == pytest.approx(equilibrium_norm_sq(lr, wd, lam1), rel=1e-12)
    for eta_lambda in [1e-3, 1e-5]:
        approx = np.log(2 * n2 / (0.1 * lam1)) / (2 * eta_lambda)
        assert phase2_duration(0.1, eta_lambda / 0.1, n2, lam1) == pytest.approx(approx, rel=2 * eta_lambda)
    assert eos_entry_step(lr, wd, n2, lam1, step_on_gamma=17) == pytest.approx(17 + t)
    assert phase2_duration(lr, wd, 1e-6, lam1) == 0.0
    with pytest.raises(ValueError, match="wd: without weight decay"):
        phase2_duration(lr, 0.0, n2, lam1)


@pytest.mark.parametrize("factor, stable", [(0.5, True), (2.5, False)])
def test_threshold_bracket_for_gd_near_gamma(factor, stable):
    """GD (no WD) at θ ∈ Γ kicked along v₁, at unit norm: η = factor·2/λ₁. Half the threshold must contract
    back to Γ; 2.5x must not -- the kick grows by |1 - ηλ₁| = 4 per step until the growing norm restores
    stability, so the peak of the kick is what tells."""
    model = make_model("sphere_circle")
    theta = np.array([np.cos(0.5), np.sin(0.5), 0.0])
    lam1 = np.linalg.eigvalsh(model.hess(theta))[-1]
    v1 = np.array([0.0, 0.0, 1.0])
    lr = factor * eos_threshold(1.0) / lam1 * 1.0  # eos_threshold(1) = 2
    w = theta + 1e-6 * v1
    peak = 0.0
    for _ in range(20):
        w = w - lr * model.grad(w)
        peak = max(peak, abs(w @ v1) / np.linalg.norm(w) / 1e-6)
    assert (peak <= 1.0) if stable else (peak > 1e3)


def test_eos_sharpness_coefficient_is_minus_one_on_the_one_dimensional_model():
    """On L = ½ sin²ψ (sphere_circle with ρ = 0: G = 0, ∇⁴L[v₁⁴] = -12λ₁, Σ = 4λ₁) the O(ηλ) coefficient of
    η⟨λ₁⟩ is c = -1, the exact period-2 result 2(1 - u)(1 + tan²φ) = 2 - u + O(u²) of the sympy derivation."""
    from srflow.theory import eos_sharpness, eos_sharpness_coefficient
    from srflow.theory.eos import fourth_along
    from srflow.toy_models import make_model

    m = make_model("sphere_circle", ratio=0.0)
    theta = np.array([np.cos(0.4), np.sin(0.4), 0.0])
    assert fourth_along(m, theta, np.array([0.0, 0.0, 1.0])) == pytest.approx(-12.0, rel=1e-7)
    assert eos_sharpness_coefficient(m, theta) == pytest.approx(-1.0, abs=1e-7)
    assert eos_sharpness(m, theta, 0.1, 1e-3) == pytest.approx((2 - 1e-4) / 0.1, rel=1e-12)


def test_eos_sharpness_coefficient_differs_from_the_quoted_threshold_on_a_curved_manifold():
    """Where λ₁ varies along Γ (G > 0) c is not the -2 of 2(1 - ηλ): the companion of the test above."""
    from srflow.theory import eos_sharpness_coefficient
    from srflow.toy_models import make_model

    c = eos_sharpness_coefficient(make_model("sphere_circle"), np.array([np.cos(0.4), np.sin(0.4), 0.0]))
    assert abs(c + 2) > 1 and abs(c + 1) > 1


def test_sqrt_cycle_split_limits():
    """C(0) = ½; C = ½ forever when T = 0; the plateau C* solves C(1 - C) = r(1 - r)/2 for the mode of largest
    r(1 - r); before it the drift is linear, |T|τ/(12δ)."""
    from srflow.theory import alp_flip_step, sqrt_cycle_split

    lam1, lr = 2.0, 0.01
    assert sqrt_cycle_split(lam1, -3.0, [0.2, 0.7], lr, 0.0) == 0.5
    assert sqrt_cycle_split(lam1, 0.0, [0.2, 0.7], lr, 10.0) == 0.5
    c = sqrt_cycle_split(lam1, -3.0, [0.2, 0.45], lr, 10.0)
    assert c * (1 - c) == pytest.approx(0.45 * 0.55 / 2, rel=1e-12) and c > 0.5
    tau = 1e-4
    assert sqrt_cycle_split(lam1, 3.0, [0.45], lr, tau) == pytest.approx(0.5 + 3 * tau / (12 * alp_flip_step(lr, lam1, "sqrt")))
