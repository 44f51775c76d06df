"""LSQR (Paige & Saunders) compiled in JAX: the minimum-norm solution of J x = b for J the Jacobian of a residual.

``theory.matrix_free`` solves J x = b with J = ∂r/∂w of the networks' residual (``toy_models.bn_nets``) by LSQR
hundreds of times per flow: the tangent projection J⁺J v at 1e-14 (~800 iterations on the digits MLP) and the
Gauss-Newton step J⁺r. Through ``scipy.sparse.linalg.lsqr`` every iteration crosses the numpy/JAX boundary twice
and recomputes the network's forward pass in each JVP and VJP. ``residual_lsqr(residual)`` gives one compiled
function instead: J is linearized once per solve (``jax.linearize``; its transpose by ``jax.linear_transpose``) and
the iteration runs in a ``lax.while_loop``.

The iteration is scipy's ``lsqr`` (scipy/sparse/linalg/_isolve/lsqr.py) without damping, start vector or variance:
the same recurrences and the same stopping tests (istop 1-7 with atol, btol, conlim = 1e8, iter_lim), so the two
agree to round-off (tests/test_jax_lsqr.py compares them on the small MLP).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

#: scipy's default condition limit (its ctol = 1/conlim stopping test)
CONLIM = 1e8


def _sym_ortho(a, b):
    """scipy's ``_sym_ortho`` (a stable Givens rotation: c, s, r with r = √(a² + b²)), its branches as ``where``."""
    one = jnp.ones((), a.dtype)
    bigb = jnp.abs(b) > jnp.abs(a)
    tau1 = a / jnp.where(b == 0, one, b)
    s1 = jnp.sign(b) / jnp.sqrt(1 + tau1 * tau1)
    c1, r1 = s1 * tau1, b / jnp.where(s1 == 0, one, s1)
    tau2 = b / jnp.where(a == 0, one, a)
    c2 = jnp.sign(a) / jnp.sqrt(1 + tau2 * tau2)
    s2, r2 = c2 * tau2, a / jnp.where(c2 == 0, one, c2)
    c = jnp.where(b == 0, jnp.sign(a), jnp.where(a == 0, 0.0, jnp.where(bigb, c1, c2)))
    s = jnp.where(b == 0, 0.0, jnp.where(a == 0, jnp.sign(b), jnp.where(bigb, s1, s2)))
    r = jnp.where(b == 0, jnp.abs(a), jnp.where(a == 0, jnp.abs(b), jnp.where(bigb, r1, r2)))
    return c, s, r


def lsqr(matvec: Callable, rmatvec: Callable, b, n: int, atol, btol, iter_lim):
    """x minimizing ‖x‖ among the least-squares solutions of A x = b (A: ``matvec``, Aᵀ: ``rmatvec``, x ∈ Rⁿ), and the
    number of iterations; traceable (call inside ``jax.jit``)."""
    dtype = b.dtype
    eps = jnp.finfo(dtype).eps
    ctol = 1.0 / CONLIM
    bnorm = jnp.linalg.norm(b)
    beta = bnorm
    u = jnp.where(beta > 0, b / jnp.where(beta > 0, beta, 1.0), b)
    v = jnp.where(beta > 0, rmatvec(u), jnp.zeros(n, dtype))
    alfa = jnp.linalg.norm(v)
    v = jnp.where(alfa > 0, v / jnp.where(alfa > 0, alfa, 1.0), v)
    zero = jnp.zeros((), dtype)
    state = dict(itn=jnp.int32(0), istop=jnp.int32(0), x=jnp.zeros(n, dtype), u=u, v=v, w=v, alfa=alfa,
                 rhobar=alfa, phibar=beta, anorm=zero, ddnorm=zero, xxnorm=zero, z=zero,
                 cs2=-jnp.ones((), dtype), sn2=zero)
    done0 = alfa * beta == 0  # arnorm = 0: x = 0 is the solution

    def cond(s):
        return (s["istop"] == 0) & jnp.logical_not(done0)

    def body(s):
        itn = s["itn"] + 1
        u = matvec(s["v"]) - s["alfa"] * s["u"]
        beta = jnp.linalg.norm(u)
        pos = beta > 0
        u = jnp.where(pos, u / jnp.where(pos, beta, 1.0), u)
        anorm = jnp.where(pos, jnp.sqrt(s["anorm"] ** 2 + s["alfa"] ** 2 + beta ** 2), s["anorm"])
        v_new = rmatvec(u) - beta * s["v"]
        alfa_new = jnp.linalg.norm(v_new)
        v_new = jnp.where(alfa_new > 0, v_new / jnp.where(alfa_new > 0, alfa_new, 1.0), v_new)
        v = jnp.where(pos, v_new, s["v"])
        alfa = jnp.where(pos, alfa_new, s["alfa"])
        cs, sn, rho = _sym_ortho(s["rhobar"], beta)
        theta = sn * alfa
        rhobar = -cs * alfa
        phi = cs * s["phibar"]
        phibar = sn * s["phibar"]
        tau = sn * phi
        t1 = phi / rho
        t2 = -theta / rho
        dk = s["w"] / rho
        x = s["x"] + t1 * s["w"]
        w = v + t2 * s["w"]
        ddnorm = s["ddnorm"] + jnp.dot(dk, dk)
        delta = s["sn2"] * rho
        gambar = -s["cs2"] * rho
        rhs = phi - delta * s["z"]
        zbar = rhs / gambar
        xnorm = jnp.sqrt(s["xxnorm"] + zbar ** 2)
        gamma = jnp.sqrt(gambar ** 2 + theta ** 2)
        cs2 = gambar / gamma
        sn2 = theta / gamma
        z = rhs / gamma
        xxnorm = s["xxnorm"] + z ** 2
        acond = anorm * jnp.sqrt(ddnorm)
        rnorm = jnp.abs(phibar)
        arnorm = alfa * jnp.abs(tau)
        test1 = rnorm / bnorm
        test2 = arnorm / (anorm * rnorm + eps)
        test3 = 1.0 / (acond + eps)
        t1b = test1 / (1 + anorm * xnorm / bnorm)
        rtol = btol + atol * anorm * xnorm / bnorm
        istop = jnp.int32(0)  # the last test that holds wins, as in scipy's sequence of ifs
        istop = jnp.where(itn >= iter_lim, 7, istop)
        istop = jnp.where(1 + test3 <= 1, 6, istop)
        istop = jnp.where(1 + test2 <= 1, 5, istop)
        istop = jnp.where(1 + t1b <= 1, 4, istop)
        istop = jnp.where(test3 <= ctol, 3, istop)
        istop = jnp.where(test2 <= atol, 2, istop)
        istop = jnp.where(test1 <= rtol, 1, istop)
        return dict(itn=itn, istop=istop.astype(jnp.int32), x=x, u=u, v=v, w=w, alfa=alfa, rhobar=rhobar,
                    phibar=phibar, anorm=anorm, ddnorm=ddnorm, xxnorm=xxnorm, z=z, cs2=cs2, sn2=sn2)

    out = jax.lax.while_loop(cond, body, state)
    return out["x"], out["itn"]


def residual_lsqr(residual: Callable) -> Callable:
    """A compiled ``solve(w, b, atol, btol, iter_lim) -> (x, iterations)``: LSQR on J(w) x = b, J = ∂``residual``/∂w
    linearized once at w."""
    @jax.jit
    def solve(w, b, atol, btol, iter_lim):
        _, jvp = jax.linearize(residual, w)
        vjp = jax.linear_transpose(jvp, w)
        return lsqr(jvp, lambda u: vjp(u)[0], b, w.shape[0], atol, btol, iter_lim)
    return solve
