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

SMALL_MLP = dict(widths=(32,), n_train=20, n_test=300)  # D = 2048 > DENSE_MAX_DIM


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


def test_network_solves_match_scipy():
    """On the small BN MLP at a point of Γ: the compiled solve of J x = Jv (J = ∂r/∂w, linearized once) is scipy's
    LSQR on residual_jvp/residual_vjp to ≤ 1e-11 relative at tol 1e-14 (the error bound tol·κ(J) of both), and the
    tangent projection computed with it is tangent to Γ: J P_T v ≈ 0."""
    m = bn_nets.bn_mlp(0, **SMALL_MLP)
    theta = m.minimizer(np.random.default_rng(0))
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
