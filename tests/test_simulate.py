"""The simulators: update rules, determinism, records, phase markers, monitors, divergence, bad input."""

import numpy as np
import pytest

from broken_models import NaNInside, degenerate_top
from srflow.theory import manifold_point, phase2_duration, project_to_manifold
from srflow.toy_models import make_model
from srflow.verification.simulate import ALGORITHMS, eos_start, simulate, two_cycle_start


@pytest.fixture(scope="module")
def circle():
    return make_model("sphere_circle")


def test_gdwd_step_is_the_update_rule(circle):
    """One GD+WD step, and the norm recursion it implies on a scale-invariant loss:
    ‖w'‖² = (1-ηλ)²‖w‖² + η²‖∇L‖² (⟨∇L, w⟩ = 0)."""
    rng = np.random.default_rng(0)
    w0, lr, wd = rng.standard_normal(3), 0.1, 0.01
    tr = simulate(circle, w0, lr, 1, wd=wd, every=1)
    g = circle.grad(w0)
    w1 = (1 - lr * wd) * w0 - lr * g
    assert tr.norm_sq[1] == pytest.approx(w1 @ w1, rel=1e-14)
    assert tr.norm_sq[1] == pytest.approx((1 - lr * wd) ** 2 * (w0 @ w0) + lr**2 * (g @ g), rel=1e-12)
    assert tr.loss[1] == pytest.approx(circle.loss(w1), rel=1e-14)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_runs_are_deterministic_and_finite(circle, algorithm):
    w0 = two_cycle_start(circle, np.array([np.cos(0.5), np.sin(0.5), 0.0]), 0.05, "ngd-sphere")
    kw = {"wd": 0.01} if algorithm == "gdwd" else {}
    a = simulate(circle, w0, 0.05, 50, algorithm=algorithm, every=10, **kw)
    b = simulate(circle, w0, 0.05, 50, algorithm=algorithm, every=10, **kw)
    assert not a.diverged and np.array_equal(a.norm_sq, b.norm_sq) and np.array_equal(a.clock, b.clock)
    assert list(a.steps) == [0, 10, 20, 30, 40, 50]
    if algorithm.endswith("sphere"):
        assert np.allclose(a.norm_sq[1:], 1.0, rtol=1e-14)


def test_phase_markers_fire_where_the_norm_recursion_says(circle):
    """From ‖w₀‖² = 5× the EoS norm: on Γ quickly, then EoS at step ≈ on-Γ + phase2_duration."""
    lr, wd = 0.1, 0.01
    u = np.array([0.9, 0.3, 0.2])
    lam1 = float(np.linalg.eigvalsh(circle.hess(project_to_manifold(circle, u).theta))[-1])
    w0 = u / np.linalg.norm(u) * np.sqrt(5 * lr * lam1 / 2)
    tr = simulate(circle, w0, lr, 1200, wd=wd, every=1, pairs=False)
    ph = tr.phases(1e-6)
    i = ph["on-gamma"]
    expected = i + phase2_duration(lr, wd, tr.norm_sq[i], tr.lam1[i] * tr.norm_sq[i])
    assert 0 < i < ph["eos"] and abs(tr.crossing(ph["eos"]) - expected) < 0.1
    assert ph["eos"] - 1 < expected <= ph["eos"]


def test_phase_markers_are_none_when_a_criterion_never_fires(circle):
    tr = simulate(circle, np.array([1.0, 1.0, 1.0]), 0.1, 5, wd=0.01, every=1)
    assert tr.phases(1e-6) == {"on-gamma": None, "eos": None}


def test_divergence_is_reported_with_step_and_quantity(circle):
    model = NaNInside(circle, norm_sq=0.9)
    tr = simulate(model, np.array([1.0, 0.2, 0.1]), 0.1, 100, wd=0.01, every=1)  # the norm decays below 0.9
    assert "diverged at step" in tr.diverged and "∇L(w_t) is non-finite (nan" in tr.diverged
    assert len(tr.steps) >= 1 and np.all(np.isfinite(tr.norm_sq))


def test_the_monitor_is_quiet_at_a_tie_and_names_the_rank_condition_where_it_fails():
    """The cluster theory (docs/theory.md §4c) takes a tied top eigenvalue at Φ(w̄) in its stride; what it needs
    at Φ(w̄) is the rank condition, which the monitor names with the step."""
    import dataclasses

    from srflow.toy_models.families import ManifoldModel

    model = degenerate_top()
    w0 = np.array([1.0, 0.0, 0.01, 0.0])
    tr = simulate(model, w0, 0.1, 20, wd=0.01, every=10, track_phi=True)
    assert tr.monitor == []
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.init}
    fields["manifold_dim"] = 2  # wrong: ker ∇²L ∩ θ^⊥ is 1-dimensional
    tr = simulate(ManifoldModel(**fields), w0, 0.1, 20, wd=0.01, every=10, track_phi=True)
    assert tr.monitor and "rank condition" in tr.monitor[0] and "step 0" in tr.monitor[0]


def test_the_gap_monitor_is_quiet_where_there_is_a_gap(circle):
    theta = np.array([np.cos(0.5), np.sin(0.5), 0.0])
    tr = simulate(circle, eos_start(circle, theta, 0.1, 0.01), 0.1, 100, wd=0.01, every=50, track_phi=True)
    assert tr.monitor == []
    assert np.all(tr.offset_sq < 0.01)


def test_eos_start_is_at_the_eos_norm_with_the_predicted_kick(circle):
    theta = np.array([np.cos(0.5), np.sin(0.5), 0.0])
    mp = manifold_point(circle, theta)
    w0 = eos_start(circle, theta, 0.1, 0.001, kick=0.0)
    assert w0 @ w0 == pytest.approx(0.1 * mp.lam1 / (2 * (1 - 1e-4)), rel=1e-14)


@pytest.mark.parametrize("kwargs, match", [
    ({"algorithm": "adam"}, "algorithm: unknown 'adam'"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"),
    ({"wd": -0.1}, "wd"),
    ({"lr": 1.0, "wd": 1.0}, "ηλ|wd"),
    ({"steps": 0}, "steps: expected a positive integer"),
    ({"algorithm": "ngd", "wd": 0.1}, "wd: only 'gdwd'"),
    ({"w0": np.zeros(3)}, "w0"),
    ({"w0": np.ones(4)}, "w0"),
])
def test_bad_input_names_the_argument(circle, kwargs, match):
    args = {"w0": np.ones(3), "lr": 0.1, "steps": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate(circle, **args)


def test_two_cycle_start_rejects_gd(circle):
    with pytest.raises(ValueError, match="algorithm"):
        two_cycle_start(circle, np.array([1.0, 0.0, 0.0]), 0.1, "gdwd")
