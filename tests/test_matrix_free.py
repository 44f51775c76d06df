"""Matrix-free theory (large D) against the dense reference: Φ, H⁺, ∇_Γ log λ₁, and the one size switch."""

import functools
import importlib

import numpy as np
import pytest

from srflow.theory import manifold_point, project_to_manifold, sharpness
from srflow.theory.manifold import RANK_RTOL
from srflow.theory.matrix_free import grad_log_sharpness_matrix_free, pinv_hvp, project_matrix_free
from srflow.toy_models import make_model

switch = importlib.import_module("srflow.theory.sharpness")  # the module (theory.sharpness is also a function name)

#: Φ by BDF (the reference) is accurate to ~2e-10 (theory.manifold.project_to_manifold); 1e-8 leaves room for
#: both solvers' tolerances without admitting a different limit (a first-order retraction is off by δ ≥ 3e-3).
PHI_ATOL = 1e-8


@functools.cache
def model(name):
    return make_model(name, rng=11)


@functools.cache
def point(name):
    m = model(name)
    return manifold_point(m, m.minimizer(np.random.default_rng(5)))


@pytest.mark.parametrize("name", ["mf", "bn_linear", "sphere_circle", "deep_linear_wn"])
@pytest.mark.parametrize("delta", [0.1, 1e-2])
def test_matrix_free_phi_is_the_flow_limit(name, delta):
    """From w̄ = θ + δ(v₁ + random)/‖·‖, DOP853 flow + Newton by CG lands where the BDF flow does."""
    m, mp = model(name), point(name)
    rng = np.random.default_rng(int(1 / delta))
    d = mp.v1 + 0.3 * rng.standard_normal(m.dim)
    w = mp.theta + delta * d / np.linalg.norm(d)
    ref, mf = project_to_manifold(m, w).theta, project_matrix_free(m, w).theta
    assert np.linalg.norm(mf - ref) <= PHI_ATOL
    assert np.linalg.norm(m.grad(mf)) <= 1e-9 * mp.lam1


@pytest.mark.parametrize("name", ["mf", "bn_linear"])
def test_pinv_on_the_sphere_matches_the_dense_pseudo_inverse(name):
    """At θ ∈ Γ, CG on A² y = A b equals the dense pseudo-inverse of A = P∇²L P (eigenvalues above
    RANK_RTOL·λ₁), for a random b: relative error ≤ 1e-6, the bound (ε/μ)² + κ²·CG_RTOL ≈ 1e-8 + 1e-8 for
    κ = λ₁/μ ≈ 100 (μ the smallest kept eigenvalue), with a factor 50 for larger κ."""
    m, mp = model(name), point(name)
    b = np.random.default_rng(2).standard_normal(m.dim)
    p = np.eye(m.dim) - np.outer(mp.theta, mp.theta)
    vals, vecs = np.linalg.eigh(p @ m.hess(mp.theta) @ p)
    keep = np.abs(vals) > RANK_RTOL * vals[-1]
    dense = vecs[:, keep] @ ((vecs[:, keep].T @ b) / vals[keep])
    assert np.linalg.norm(pinv_hvp(m, mp.theta, b, mp.lam1) - dense) <= 1e-6 * np.linalg.norm(dense)


@pytest.mark.parametrize("name", ["mf", "bn_linear", "sphere_circle"])
def test_matrix_free_grad_log_sharpness(name):
    """∇_Γ log λ₁ = P_T ∇³L[v₁, v₁]/λ₁ with P_T from HVPs and v₁ from Lanczos equals the dense one."""
    m, mp = model(name), point(name)
    g, lam1, _ = grad_log_sharpness_matrix_free(m, mp.theta)
    assert lam1 == pytest.approx(mp.lam1, rel=1e-10)
    assert np.linalg.norm(g - mp.grad_log) <= 1e-8 * max(np.linalg.norm(mp.grad_log), 1.0)


class NoDense:
    """A model whose ``hess`` must not be called (the matrix-free path)."""

    def __init__(self, inner):
        self.inner, self.dim = inner, inner.dim

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def hess(self, w):
        raise AssertionError("hess called above DENSE_MAX_DIM")


def test_the_size_switch_decides_in_one_place(monkeypatch):
    """With DENSE_MAX_DIM below D, sharpness and Φ never build a Hessian and give the dense answers."""
    m, mp = model("mf"), point("mf")
    w = mp.theta + 0.05 * mp.v1
    dense_phi, dense_lam = project_to_manifold(m, w).theta, sharpness(m, w)
    monkeypatch.setattr(switch, "DENSE_MAX_DIM", 4)
    guarded = NoDense(m)
    assert np.linalg.norm(project_to_manifold(guarded, w).theta - dense_phi) <= PHI_ATOL
    assert sharpness(guarded, w) == pytest.approx(dense_lam, rel=1e-10)
    with pytest.raises(AssertionError, match="hess called"):
        monkeypatch.setattr(switch, "DENSE_MAX_DIM", 400)
        sharpness(guarded, w)


@pytest.mark.parametrize("name", ["mf", "bn_linear"])
def test_compiled_cg_is_scipys_cg(name, monkeypatch):
    """On a JAX twin, ``pinv_hvp``'s compiled CG (toy_models.jax_cg) is scipy's CG iteration on model.hvp: at θ ∈ Γ
    and 1e-3 off it the two agree to 1e-10 relative (the same recurrences; round-off in the HVPs' summation order,
    amplified by at most κ² of A² + ε²), and both equal the dense pseudo-inverse at θ (the test above); a wrong
    operator (∇²L scaled by 1 + 1e-6) is told apart."""
    pytest.importorskip("jax")
    from srflow.theory import matrix_free
    from srflow.toy_models.jax_losses import make_jax_model

    jm, mp = make_jax_model(name, rng=11), point(name)
    rng = np.random.default_rng(3)
    b = rng.standard_normal(jm.dim)
    for x in (mp.theta, mp.theta + 1e-3 * rng.standard_normal(jm.dim) / np.sqrt(jm.dim)):
        assert matrix_free.compiled_pinv(jm) is not None
        fast = pinv_hvp(jm, x, b, mp.lam1)
        monkeypatch.setattr(matrix_free, "COMPILED_CG", False)
        ref = pinv_hvp(jm, x, b, mp.lam1)
        wrong = matrix_free.pinv_hvp(type("W", (), {"dim": jm.dim, "hvp": lambda self, w, v: (1 + 1e-6) * jm.hvp(w, v)})(),
                                     x, b, mp.lam1)
        monkeypatch.setattr(matrix_free, "COMPILED_CG", True)
        assert np.all(np.isfinite(fast))
        assert np.linalg.norm(fast - ref) <= 1e-10 * np.linalg.norm(ref)
        assert np.linalg.norm(wrong - ref) > 1e-10 * np.linalg.norm(ref)


def test_the_matrix_free_flow_is_the_dense_flow(monkeypatch):
    """Above DENSE_MAX_DIM the flow's Newton retractions take λ₁ from the last field evaluation, the sample before and
    (``FlowResult.at``) the samples, for their truncation threshold only: the matrix-free flow of the JAX twin of mf
    (D = 16, DENSE_MAX_DIM set to 4) equals the dense flow of the numpy model to 1e-7 along the way and at points
    between samples, with no Hessian built; a flow with a coefficient 1% off is told apart."""
    pytest.importorskip("jax")
    from srflow.theory import sharpness_reduction_flow
    from srflow.toy_models.jax_losses import make_jax_model

    m, mp = model("mf"), point("mf")
    dense = sharpness_reduction_flow(m, mp.theta, 0.2, n_out=5)
    wrong = sharpness_reduction_flow(m, mp.theta, 0.2, n_out=5, coef=-0.25 * 1.01)
    monkeypatch.setattr(switch, "DENSE_MAX_DIM", 4)
    free = sharpness_reduction_flow(NoDense(make_jax_model("mf", rng=11)), mp.theta, 0.2, n_out=5)
    assert np.max(np.linalg.norm(free.theta - dense.theta, axis=1)) <= 1e-7
    assert np.max(np.abs(free.lam1 / dense.lam1 - 1)) <= 1e-7
    s = np.array([0.03, 0.11, 0.17])
    assert np.max(np.linalg.norm(free.at(s) - dense.at(s), axis=1)) <= 1e-7
    assert np.max(np.linalg.norm(wrong.theta - dense.theta, axis=1)) > 1e-5
