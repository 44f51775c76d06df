"""The compiled LSQR (toy_models/jax_lsqr.py) against scipy's and against the pseudo-inverse, and its use by the
matrix-free theory on the networks (theory.matrix_free.residual_lstsq)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.sparse.linalg import lsqr as scipy_lsqr

from srflow.theory import matrix_free
from srflow.toy_models import bn_nets
from srflow.toy_models.jax_lsqr import lsqr

SMALL_MLP = dict(widths=(8,), n_train=12, n_test=40)  # D = 512 > DENSE_MAX_DIM: matrix-free; interpolates


@jax.jit
def _compiled(a, b, atol, btol, lim):  # one compilation per shape
    return lsqr(lambda v: a @ v, lambda u: a.T @ u, b, a.shape[1], atol, btol, lim)


def _solve(a, b, tol, iter_lim=None):
    x, itn = _compiled(jnp.asarray(a), jnp.asarray(b), tol, tol, iter_lim or 20 * a.shape[0])
    return np.asarray(x), int(itn)


@pytest.mark.parametrize("shape, rank", [((30, 80), 30), ((60, 40), 40), ((50, 70), 20)])
def test_minimum_norm_solution_as_the_pseudo_inverse_and_scipy(shape, rank):
    """Under-determined, over-determined (inconsistent: least squares) and rank-deficient systems with condition
    number 1e3: x = A⁺b to 1e-9 relative at tol 1e-14, and the iterate and (up to round-off) the iteration count
    of scipy's lsqr."""
    rng = np.random.default_rng(sum(shape) + rank)
    u, _ = np.linalg.qr(rng.standard_normal((shape[0], rank)))
    v, _ = np.linalg.qr(rng.standard_normal((shape[1], rank)))
    a = u @ np.diag(np.logspace(0, -3, rank)) @ v.T
    b = rng.standard_normal(shape[0])
    x, itn = _solve(a, b, 1e-14)
    ref = np.linalg.pinv(a, rcond=1e-10) @ b
    assert np.linalg.norm(x - ref) <= 1e-9 * np.linalg.norm(ref)
    sx, _, sitn = scipy_lsqr(a, b, atol=1e-14, btol=1e-14, iter_lim=20 * shape[0])[:3]
    # the same iteration up to round-off: where the stopping test sits at round-off (the inconsistent system's
    # ‖Aᵀr‖ test at 1e-14) the last iterations differ by a few, after convergence
    assert abs(itn - sitn) <= max(1, 0.05 * sitn) and np.linalg.norm(x - sx) <= 1e-10 * np.linalg.norm(sx)


def test_stopping_rules():
    """b = 0 gives x = 0 without iterating; the iteration limit stops it (and a loose tolerance stops it early, at
    scipy's iteration)."""
    a = np.random.default_rng(0).standard_normal((20, 50))
    x, itn = _solve(a, np.zeros(20), 1e-14)
    assert itn == 0 and not x.any()
    b = np.random.default_rng(1).standard_normal(20)
    assert _solve(a, b, 1e-14, iter_lim=3)[1] == 3
    x, itn = _solve(a, b, 1e-3)
    assert itn == scipy_lsqr(a, b, atol=1e-3, btol=1e-3)[2]


@pytest.fixture(scope="module")
def mlp():
    """(a fresh small MLP, a point of its Γ); the tests delete ``residual_lsqr`` from their own copy."""
    m = bn_nets.bn_mlp(0, **SMALL_MLP)
    return m, m.minimizer(np.random.default_rng(0))


def _fresh(mlp):
    """A shallow copy of the fixture's model (its compiled functions shared), which a test may change."""
    m = object.__new__(type(mlp[0]))
    m.__dict__ = dict(mlp[0].__dict__)
    return m, mlp[1]


def test_network_solves_match_scipy(mlp):
    """On the small BN MLP at a point of Γ: the compiled solve of J x = Jv (J = ∂r/∂w, linearized once) is scipy's
    LSQR on residual_jvp/residual_vjp to ≤ 1e-11 relative at tol 1e-14 (the error bound tol·κ(J) of both), and the
    tangent projection computed with it is tangent to Γ: J P_T v ≈ 0."""
    m, theta = _fresh(mlp)
    v = np.random.default_rng(3).standard_normal(m.dim)
    jv = m.residual_jvp(theta, v)
    x = m.residual_lsqr(theta, jv, 1e-14, 1e-14, 20 * jv.size)
    ref = scipy_lsqr(matrix_free._jacobian(m, theta, jv.size), jv, atol=1e-14, btol=1e-14, iter_lim=20 * jv.size)[0]
    assert np.linalg.norm(x - ref) <= 1e-11 * np.linalg.norm(ref)
    t = matrix_free.tangent_project(m, theta, v, lam1=float("nan"))
    assert np.linalg.norm(m.residual_jvp(theta, t)) <= 1e-10 * np.linalg.norm(jv)
    # the scipy path (a model without residual_lsqr) gives the same projection
    del m.residual_lsqr
    t_scipy = matrix_free.tangent_project(m, theta, v, lam1=float("nan"))
    assert np.linalg.norm(t - t_scipy) <= 1e-11 * np.linalg.norm(t)


def test_flow_inputs_unchanged_by_the_compiled_solves(mlp):
    """What the flow checks' verdicts on the networks rest on -- the flow's field -(1/4)∇_Γ log λ₁ at the Newton
    retraction of a point near Γ, λ₁, the gap and G -- is the same with the compiled LSQR as with scipy's within the
    flow's rtol 1e-9 (measured 4e-10 on the field: the size of the field's own call-to-call scatter, from the Lanczos
    eigenvector at tol 1e-12 with ARPACK's start vector changing between calls; the solves differ by ≤ tol·κ(J))."""
    from srflow.theory import flows, manifold

    m, theta = _fresh(mlp)
    x = theta + 1e-7 * np.random.default_rng(5).standard_normal(m.dim)  # off Γ, as the flow's states are
    fast = flows._field(m, 0.0, x, -0.25, "ignore")
    mp_fast = manifold.manifold_point(m, theta, on_gap="ignore")
    del m.residual_lsqr
    slow = flows._field(m, 0.0, x, -0.25, "ignore")
    mp_slow = manifold.manifold_point(m, theta, on_gap="ignore")
    assert np.linalg.norm(fast - slow) <= 1e-9 * np.linalg.norm(slow)
    assert abs(mp_fast.lam1 - mp_slow.lam1) <= 1e-10 * mp_slow.lam1
    assert abs(mp_fast.gap - mp_slow.gap) <= 1e-9 * mp_slow.lam1 and abs(mp_fast.G - mp_slow.G) <= 1e-9 * mp_slow.G
