"""Sharpness, the limit map Φ, tangent spaces and ∇_Γ log λ₁ (docs/theory.md §1)."""

import warnings

import numpy as np
import pytest

from srflow.theory import (AssumptionViolated, effective_lr, gradient_flow_limit, manifold_point, project_to_manifold,
                    riemannian_grad_log_sharpness, sharpness, spectral_gap, spherical_sharpness, tangent_space,
                    top_eigenpairs)
from srflow.toy_models import make_model, wrap

rng = np.random.default_rng


@pytest.mark.parametrize("name", ["mf_completion", "bn_linear", "deep_linear_wn"])
def test_lanczos_agrees_with_eigh(name):
    """The largest algebraic eigenpairs from eigsh(which='LA') on hvp equal those of eigh."""
    model = make_model(name)
    w = rng(0).standard_normal(model.dim)
    dense = top_eigenpairs(model, w, k=3, method="dense")
    lanczos = top_eigenpairs(model, w, k=3, method="lanczos", v0=dense.vectors[:, 0] + 0.1)
    assert lanczos.converged and np.allclose(lanczos.values, dense.values, rtol=1e-10, atol=0)
    assert np.all(np.abs(np.sum(lanczos.vectors * dense.vectors, axis=0)) > 1 - 1e-8)
    assert np.all(lanczos.residuals < 1e-8 * abs(dense.values[0]))


def test_largest_algebraic_not_largest_magnitude():
    """Where the most negative eigenvalue is the largest in magnitude, λ₁ is still the largest algebraic one
    (dense and Lanczos)."""
    model = make_model("mf_completion")
    g = rng(1)
    for _ in range(50):
        w = g.standard_normal(model.dim)
        vals = np.linalg.eigvalsh(model.hess(w))
        if abs(vals[0]) > 1.5 * abs(vals[-1]):
            break
    else:
        pytest.fail("no point with a dominant negative eigenvalue found")
    assert sharpness(model, w) == pytest.approx(vals[-1], rel=1e-12)
    assert top_eigenpairs(model, w, k=1, method="lanczos").values[0] == pytest.approx(vals[-1], rel=1e-10)


def test_spherical_sharpness_and_effective_lr():
    """λ₁(∇²L(w̄)) = ‖w‖²λ₁(∇²L(w)); η_eff = η/((1 - ηλ)‖w‖²)."""
    model = make_model("mf")
    w = 3.0 * rng(2).standard_normal(model.dim)
    assert spherical_sharpness(model, w) == pytest.approx(sharpness(model, w / np.linalg.norm(w)), rel=1e-12)
    assert effective_lr(0.1, w, wd=0.5) == pytest.approx(0.1 / (0.95 * (w @ w)), rel=1e-15)
    assert spectral_gap(model, w) > 0
    for lr, wd, match in [(0.0, 0.1, "lr: expected a learning rate η > 0"), (0.1, -1, "wd: expected a weight decay"),
                          (2.0, 0.5, "ηλ < 1")]:
        with pytest.raises(ValueError, match=match):
            effective_lr(lr, w, wd)


@pytest.mark.parametrize("name", ["mf", "bn_linear", "deep_linear_wn", "sympy_rayleigh"])
def test_projection_agrees_with_long_gradient_flow(name):
    """Φ from the fast method (BDF flow + Newton) equals a long explicit (DOP853) gradient flow."""
    model = make_model(name)
    g = rng(3)
    x = model.minimizer(g) + 0.01 * g.standard_normal(model.dim)
    fast = project_to_manifold(model, x)
    slow = gradient_flow_limit(model, x, time=5000.0)
    print(f"{name}: ‖Φ_fast - Φ_flow‖ = {np.linalg.norm(fast.theta - slow):.2e}")
    assert np.linalg.norm(fast.theta - slow) < 1e-8
    assert fast.grad_norm < 1e-12 and abs(np.linalg.norm(fast.theta) - 1) < 1e-14


def test_projection_is_not_the_nearest_point():
    """Must fail for the wrong method: Newton's nearest critical point from x differs from Φ(x) at second
    order, which the fast method does not (the check above is sharp enough to tell)."""
    from srflow.theory.manifold import newton_polish

    model = make_model("sphere_circle")
    x = np.array([np.cos(0.5), np.sin(0.5), 0.0]) + np.array([0.0, 0.0, 0.05])
    flow = gradient_flow_limit(model, x, time=500.0)
    assert np.linalg.norm(newton_polish(model, x / np.linalg.norm(x), iters=8) - flow) > 1e-5
    assert np.linalg.norm(project_to_manifold(model, x).theta - flow) < 1e-8


def test_tangent_space_where_gamma_is_known():
    """Circle: T = span(-sin φ, cos φ, 0). Rayleigh level set: T ⊥ θ and T ⊥ ∇(xᵀAx)."""
    circle = make_model("sphere_circle")
    phi = 0.8
    basis = tangent_space(circle, np.array([np.cos(phi), np.sin(phi), 0.0]))
    assert basis.shape == (3, 1) and abs(abs(basis[:, 0] @ [-np.sin(phi), np.cos(phi), 0.0]) - 1) < 1e-12
    ray = make_model("sympy_rayleigh")
    theta = ray.minimizer(rng(0))
    basis = tangent_space(ray, theta)
    assert basis.shape == (3, 1)
    assert abs(basis[:, 0] @ theta) < 1e-12 and abs(basis[:, 0] @ (np.array([1, 2, 4]) * theta)) < 1e-10


def test_rank_condition_failure_is_reported():
    import dataclasses

    model = make_model("mf")
    wrong = dataclasses.replace(model, manifold_dim=5)
    with pytest.raises(AssumptionViolated, match="rank condition fails at θ: .* dimension 3, expected dim Γ = 5"):
        tangent_space(wrong, model.minimizer(rng(0)))


@pytest.mark.parametrize("name", ["sphere_circle", "mf", "bn_linear", "sympy_rayleigh"])
def test_riemannian_gradient_matches_differences_along_gamma(name):
    """⟨∇_Γ log λ₁(θ), t⟩ = d/dε log λ₁(Φ(θ + εt)) for a tangent t (central differences, ε = 1e-4)."""
    model = make_model(name)
    theta = model.minimizer(rng(4))
    mp = manifold_point(model, theta)
    t = mp.tangent @ rng(5).standard_normal(mp.tangent.shape[1])
    t /= np.linalg.norm(t)
    eps = 1e-4
    top = lambda e: np.linalg.eigvalsh(model.hess(project_to_manifold(model, theta + e * t).theta))[-1]  # noqa: E731
    fd = (np.log(top(eps)) - np.log(top(-eps))) / (2 * eps)
    assert abs(fd - mp.grad_log @ t) < 1e-6 * max(1.0, abs(fd))
    # must fail: without projecting away the radial part, ∇³L[v₁, v₁]/λ₁ has a component -2θ
    raw = model.third(theta, mp.v1, mp.v1) / mp.lam1
    assert abs(raw @ theta + 2) < 1e-8 and np.linalg.norm(raw - mp.grad_log) > 1.9


def test_gap_violation_raises_or_warns():
    eye = np.diag([0.0, 0.0, 1.0, 1.0])
    m = wrap(4, lambda x: 0.5 * x @ eye @ x, lambda x: eye @ x, lambda x: eye, lambda x, a, b: np.zeros(4))
    theta = np.array([1.0, 0.0, 0.0, 0.0])
    with pytest.raises(AssumptionViolated, match="spectral gap"):
        riemannian_grad_log_sharpness(m, theta)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifold_point(m, theta, on_gap="warn")
    assert any("spectral gap λ₁ - λ₂ = 0" in str(c.message) for c in caught)


def test_projection_refuses_a_maximum():
    """f(x) = ½x₂² has its maximum on the sphere at e₂, where ∇²L = -P ⪯ 0: no limit to flow to. (Near
    the maximum Φ is defined -- the flow leaves for a minimum -- so only the critical point itself is refused.)"""
    e2 = np.diag([0.0, 0.0, 1.0])
    m = wrap(3, lambda x: 0.5 * x @ e2 @ x, lambda x: e2 @ x, lambda x: e2, lambda x, a, b: np.zeros(3))
    with pytest.raises(AssumptionViolated, match="no positive eigenvalue"):
        project_to_manifold(m, np.array([0.0, 0.0, 1.0]))


class _Scaled:
    """``model`` with its loss (and every derivative) times ``c``: the same Γ, the same flow paths in time t/c,
    so the same Φ."""

    def __init__(self, model, c):
        self._m, self._c = model, c

    def __getattr__(self, name):
        attr = getattr(self._m, name)
        if name in ("loss", "grad", "hess", "hvp", "third"):
            return lambda *a: self._c * attr(*a)
        return attr


@pytest.mark.parametrize("matrix_free", [False, True])
def test_the_flow_budget_is_scale_free(matrix_free):
    """Φ of mf (D = 16) with its loss scaled by 1e-7 (λ₁(w̄) ≈ 2e-6, as mf's at D = 4000 with weights 1/(mn)) equals
    Φ of the unscaled model within 1e-9: the projection's flow budget is MAX_FLOW_LAM1_TIME/λ₁. The old absolute
    budget, max_time = 1e6 passed explicitly, stops the scaled flow at λ₁t ≈ 2 and lands far from Φ (companion)."""
    from srflow.theory.matrix_free import project_matrix_free

    model = make_model("mf", rng=0, m=4, n=4, rank=2)
    theta = model.minimizer(np.random.default_rng(0))
    w = theta + 0.02 * np.random.default_rng(1).standard_normal(model.dim)
    project = project_matrix_free if matrix_free else project_to_manifold
    small = _Scaled(model, 1e-7)
    assert np.linalg.eigvalsh(small.hess(w / np.linalg.norm(w)))[-1] < 1e-5
    ref = project(model, w).theta
    assert np.linalg.norm(project(small, w).theta - ref) <= 1e-9
    assert np.linalg.norm(project(small, w, max_time=1e6).theta - ref) > 1e-6
