"""The truncated pseudo-inverse solve of ``theory.matrix_free.pinv_hvp`` compiled in JAX, for JAX models.

``pinv_hvp`` solves (A² + ε²) y = A b with A = P∇²L(x)P, P = I - x̂x̂ᵀ, by conjugate gradients on HVPs. Through
``scipy.sparse.linalg.cg`` every iteration crosses the numpy/JAX boundary twice (two HVPs); on a model whose HVP is
cheap that crossing is the cost (mf at D = 4000, factored loss: an HVP call 0.63 ms from numpy, most of it dispatch
and copies). ``projected_pinv(grad)`` gives one compiled function instead: ∇L is linearized once at x
(``jax.linearize``) and the iteration runs in a ``lax.while_loop``.

The iteration is scipy's ``cg`` (scipy/sparse/linalg/_isolve/iterative.py) without preconditioner from y = 0: the
same recurrences and the same stopping test ‖r‖ < max(atol, rtol·‖A b‖) checked before each iteration, at most
``maxiter`` iterations, so the two agree to round-off (tests/test_matrix_free.py compares them).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def cg(matvec: Callable, b, rtol, maxiter):
    """(y, iterations, converged): scipy's ``cg`` from 0 with atol = 0 (traceable)."""
    atol = rtol * jnp.linalg.norm(b)

    def cond(s):
        return (s["it"] < maxiter) & ~s["done"]

    def body(s):
        r = s["r"]
        rho = r @ r
        p = jnp.where(s["it"] > 0, s["p"] * (rho / s["rho"]) + r, r)
        q = matvec(p)
        alpha = rho / (p @ q)
        y = s["y"] + alpha * p
        r = r - alpha * q
        return dict(it=s["it"] + 1, y=y, r=r, p=p, rho=rho, done=jnp.linalg.norm(r) < atol)

    zero = jnp.zeros_like(b)
    state = dict(it=jnp.int32(0), y=zero, r=b, p=zero, rho=jnp.ones((), b.dtype), done=jnp.linalg.norm(b) < atol)
    out = jax.lax.while_loop(cond, body, state)
    return out["y"], out["it"], out["done"]


def projected_hessian(grad: Callable, x):
    """(∇L(x), x̂, v ↦ P∇²L(x)Pv) with P = I - x̂x̂ᵀ, x̂ = x/‖x‖: ∇²L by linearizing ``grad`` once at x (inside jit)."""
    u = x / jnp.linalg.norm(x)
    g, hvp = jax.linearize(grad, x)

    def apply(v):
        v = v - (u @ v) * u
        hv = hvp(v)
        return hv - (u @ hv) * u
    return g, u, apply


def projected_pinv(grad: Callable) -> Callable:
    """A compiled ``solve(x, b, eps2, rtol, maxiter) -> (y, A b, iterations, converged)``: CG on (A² + eps2) y = A b,
    A = P∇²L(x)P (P = I - x̂x̂ᵀ), ∇²L by linearizing ``grad`` (∇L as a JAX function of the flat vector) once at x."""
    @jax.jit
    def solve(x, b, eps2, rtol, maxiter):
        _, _, apply = projected_hessian(grad, x)
        ab = apply(b)
        y, it, ok = cg(lambda v: apply(apply(v)) + eps2 * v, ab, rtol, maxiter)
        return y, ab, it, ok
    return solve
