"""Matrix-free theory for large D: only ``grad``, ``hvp`` and ``third``, never a D×D matrix.

``theory.backend.for_model`` chooses this module above DENSE_MAX_DIM (``theory.sharpness.is_dense``); it gives
the backend functions of ``theory.backend.BACKEND_FUNCTIONS`` (``newton_polish``, ``project_to_manifold``,
``manifold_point``, ``normal_conditioning``, ``second_order_sum``) with the signatures of ``theory.dense``.

* A⁺b, the pseudo-inverse of the Hessian on the sphere's tangent space, A = P∇²L(x)P, P = I - x̂x̂ᵀ,
  truncated at RANK_RTOL·λ₁ like the dense one, by conjugate gradients (``pinv_hvp``).
* Φ(w̄) (``project_matrix_free``): gradient flow ẋ = -∇L(x) with gradient calls only, until
  ‖∇L‖ ≤ grad_rtol·λ₁, then Newton steps x ← (x - H⁺∇L)/‖·‖; the same limit as the dense path
  (``theory.manifold.project_to_manifold``), which is its reference in the tests. The flow is stiff: its rates
  run from λ₁ down to μ, the smallest positive eigenvalue, and it must last ~ log(1/grad_rtol)/μ. So it runs in
  two legs: DOP853 (eighth order, accurate) for t ≤ FAST_TIME/λ₁, while the displacement along the sharp
  directions -- which carries the second-order drift along Γ -- decays; then the Runge-Kutta-Chebyshev method
  (``theory.rkc``, explicit, stability interval ∝ stages²) through the slow tail. On the digits MLP (λ₁/μ ≈
  2.7e4, from w̄ = θ + 0.02v₁ + 1e-3ξ) DOP853 alone did not finish in 25 min; the two legs took ~2,500
  gradients (~5 s) and agreed with an RKC-only flow at rtol 1e-10 (~10,000 gradients) to 3e-9 (docs/theory.md
  §9; benchmarks/bench_networks.py times a whole Φ).
* Why not a Newton retraction straight from w̄ (no flow)? Off Γ, at distance δ, the Hessian on the sphere
  has eigenvalues of size O(δ) along T_θΓ, which a Newton step inverts: from w̄ = θ + δv₁ with δ = 3e-3 it
  landed 0.64 away from Φ(w̄) on ``sphere_circle`` (measured while building this module). Truncating them
  needs the rank, i.e. a dense eigendecomposition; and even then the retraction misses Φ's second-order
  drift along Γ, -(δ²/4)∇_Γ log λ₁ for a displacement along v₁, which at the edge of stability (δ² ≈ ηλ/2)
  is the size of the flow-tracking errors being measured. So Φ keeps the flow; Newton only finishes it,
  from ‖∇L‖ ≤ 1e-9·λ₁ where those eigenvalues are round-off.
* T_θΓ projection and ∇_Γ log λ₁ = P_T ∇³L(θ)[v₁, v₁]/λ₁ with P_T v = v - H⁺H v - (θ·v)θ.
* Losses of the least-squares form L = ½‖r(w)‖² with L = 0 on Γ (the networks of ``toy_models.bn_nets``) may
  state it with the optional members ``residual_vector(w)``, ``residual_jvp(w, v)`` = J v and
  ``residual_vjp(w, u)`` = Jᵀu (``has_residual``). At θ ∈ Γ, ∇²L(θ) = JᵀJ, so the normal space of Γ in the sphere
  is the row space of J and H⁺H v = J⁺J v: one LSQR solve on JVP/VJP (condition number √(λ₁/μ) of J, where CG on
  the squared operator A² + ε² above sees λ₁²/μ²); and the Newton step onto Γ is the Gauss-Newton step
  x ← x - J⁺r(x) (the minimum-norm correction, in the row space of J: it never inverts the O(distance)
  eigenvalues along T_θΓ). ``tangent_project`` and ``newton_steps`` use them when present.
* ``manifold_point_matrix_free`` (λ₁, v₁, the gap by Lanczos, ∇_Γ log λ₁; no tangent basis: it would be a
  D × dim Γ matrix) and ``second_order_sum`` (Σ_{i≥2} ⟨v_i, T⟩²/(λ₁ - λ_i) by CG on λ₁I - ∇²L restricted to
  v₁^⊥) are what ``theory.manifold.manifold_point`` and ``theory.eos`` call above DENSE_MAX_DIM.
"""

from __future__ import annotations

import weakref

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg, lsqr

from srflow.toy_models.validate import as_vector, unit

from .gamma import (GAP_RTOL, RANK_RTOL, AssumptionViolated, ManifoldPoint, Projection, check_on_gap, flow_budget,
                    flow_to_small_gradient, gap_violated)
from .rkc import rkc_integrate
from .sharpness import sharpness, top_eigenpairs

#: relative residual of the CG solves for H⁺b
CG_RTOL = 1e-12


#: the compiled solvers of ``compiled_pinv``, one per JAX model (dropped with the model)
_PINV_SOLVERS = weakref.WeakKeyDictionary()
#: whether ``pinv_hvp`` runs its CG compiled on JAX models (False: scipy's ``cg`` on ``model.hvp``, the reference)
COMPILED_CG = True


def compiled_pinv(model):
    """``toy_models.jax_cg.projected_pinv`` of the model's ∇L when it is a JAX model (``jax_loss``) and COMPILED_CG,
    else None; made once per model."""
    if not COMPILED_CG or not callable(getattr(model, "jax_loss", None)):
        return None
    solve = _PINV_SOLVERS.get(model)
    if solve is None:
        import jax

        from srflow.toy_models.jax_cg import projected_pinv

        solve = _PINV_SOLVERS[model] = projected_pinv(jax.grad(model.jax_loss))
    return solve


def pinv_hvp(model, x: np.ndarray, b: np.ndarray, lam1: float, rtol: float = CG_RTOL) -> np.ndarray:
    """A⁺b for A = P∇²L(x)P, P = I - x̂x̂ᵀ, eigenvalues |μ| ≤ RANK_RTOL·λ₁ counted as zero (``lam1`` = λ₁).

    Off Γ the radial eigenvalue of ∇²L is small but not zero, hence P; and near Γ the eigenvalues along T_θΓ
    are O(distance), which a Newton step must not invert. CG on (A² + ε²) y = A b, ε = RANK_RTOL·λ₁, from
    y = 0 gives y_i = μ_i b_i/(μ_i² + ε²) per eigencomponent: b_i/μ_i up to (ε/μ_i)² for the kept ones, ≤
    b_i/(2ε)·(μ_i/ε) → 0 for the dropped ones -- the dense truncation of ``theory.manifold.newton_polish``.
    On a JAX model (``jax_loss``) the same CG iteration runs compiled (``compiled_pinv``, ``toy_models.jax_cg``).
    """
    u = x / np.linalg.norm(x)
    eps2 = (RANK_RTOL * lam1) ** 2
    solve = compiled_pinv(model)
    if solve is not None:
        y, ab, _, _ = solve(np.asarray(x, dtype=np.float64), np.asarray(b, dtype=np.float64), eps2, rtol,
                            20 * model.dim)
        y, ab = np.asarray(y), np.asarray(ab)
        if not np.any(ab):
            return np.zeros_like(b)
        if not np.all(np.isfinite(y)):
            raise AssumptionViolated("CG for H⁺∇L failed (a non-finite iterate)")
        return y

    def apply(v):
        v = v - (u @ v) * u
        hv = model.hvp(x, v)
        return hv - (u @ hv) * u

    ab = apply(b)
    if not np.any(ab):
        return np.zeros_like(b)
    op = LinearOperator((model.dim, model.dim), matvec=lambda v: apply(apply(np.ravel(v))) + eps2 * np.ravel(v),
                        dtype=np.float64)
    y, info = cg(op, ab, rtol=rtol, atol=0.0, maxiter=20 * model.dim)
    if info < 0:
        raise AssumptionViolated(f"CG for H⁺∇L failed (info {info})")
    return y


#: relative tolerance of the LSQR solves with the residual's Jacobian
LSQR_TOL = 1e-14


def has_residual(model) -> bool:
    """Whether ``model`` states L = ½‖r(w)‖² with the optional members residual_vector/_jvp/_vjp."""
    return all(callable(getattr(model, n, None)) for n in ("residual_vector", "residual_jvp", "residual_vjp"))


def _jacobian(model, x: np.ndarray, m: int) -> LinearOperator:
    return LinearOperator((m, model.dim), dtype=np.float64, matvec=lambda v: model.residual_jvp(x, np.ravel(v)),
                          rmatvec=lambda u: model.residual_vjp(x, np.ravel(u)))


def residual_lstsq(model, x: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    """The minimum-norm solution of J δ = b, J = ∂r/∂w at x, by LSQR at atol = btol = ``tol`` (at most 20·len(b)
    iterations): the model's compiled ``residual_lsqr(x, b, atol, btol, iter_lim)`` when it has one (the networks,
    ``toy_models.jax_lsqr``: the same iteration and stopping tests as scipy's, ~10× faster on the digits MLP), else
    ``scipy.sparse.linalg.lsqr`` on ``residual_jvp``/``residual_vjp``."""
    solve = getattr(model, "residual_lsqr", None)
    if callable(solve):
        return np.asarray(solve(x, b, tol, tol, 20 * b.size), dtype=np.float64)
    return lsqr(_jacobian(model, x, b.size), b, atol=tol, btol=tol, iter_lim=20 * b.size)[0]


def row_space_project(model, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """J⁺J v, the projection of v on the row space of J = ∂r/∂w at x, by LSQR on J δ = J v (minimum norm)."""
    jv = np.asarray(model.residual_jvp(x, v))
    if not np.any(jv):
        return np.zeros_like(v)
    return residual_lstsq(model, x, jv, LSQR_TOL)


#: a Newton step shorter than this (on a unit vector) ends ``newton_steps``: the next one would be ~ its square
#: times the curvature, below round-off
NEWTON_DONE = 1e-9
#: relative tolerance of a Gauss-Newton step's LSQR solve: an inexact Newton step of relative error ε leaves
#: ε·‖step‖ for the next step, so from the flow's ‖step‖ ≲ 1e-5 two steps at 1e-10 end at round-off (the solve
#: at LSQR_TOL cost twice the iterations on the digits MLP for the same result)
NEWTON_LSQR_TOL = 1e-10


def newton_steps(model, x: np.ndarray, lam1: float, iters: int = 3) -> np.ndarray:
    """x ← (x - A⁺∇L(x))/‖·‖, up to ``iters`` times (until a step ≤ NEWTON_DONE): the matrix-free
    ``theory.manifold.newton_polish``; for a model with a residual (``has_residual``) the Gauss-Newton step
    x ← (x - J⁺r(x))/‖·‖ instead."""
    for _ in range(iters):
        if has_residual(model):
            r = np.asarray(model.residual_vector(x))
            if not np.any(r):
                break
            step = residual_lstsq(model, x, r, NEWTON_LSQR_TOL)
        else:
            step = pinv_hvp(model, x, model.grad(x), lam1)
        x = x - step
        x = x / np.linalg.norm(x)
        if np.linalg.norm(step) <= NEWTON_DONE:  # quadratic convergence: the next step would be ~ this squared
            break
    return x


#: the accurate (DOP853) leg of Φ's flow lasts FAST_TIME/λ₁: the sharpest direction decays by e^-FAST_TIME, those
#: with μ ≥ λ₁/10 by e^-(FAST_TIME/10)
FAST_TIME = 100.0
#: the tolerance of the RKC leg (relative, absolute RKC_RTOL·1e-2 on a unit vector): measured on the digits MLP,
#: 1e-7 and 1e-8 both land within 3e-9 of the rtol-1e-10 reference (module docstring)
RKC_RTOL = 1e-8


def project_matrix_free(model, w, grad_rtol: float = 1e-9, max_time: float | None = None) -> Projection:
    """Φ(w/‖w‖): gradient flow until ‖∇L‖ ≤ grad_rtol·λ₁ -- DOP853 to t = FAST_TIME/λ₁, then RKC
    (``theory.rkc``) -- then ``newton_steps``; see the module docstring. λ₁ by Lanczos."""
    x0 = as_vector(w, "w", model.dim)
    x0 = x0 / np.linalg.norm(x0)
    lam1 = float(top_eigenpairs(model, x0, k=1, method="lanczos" if model.dim > 2 else "dense").values[0])
    if lam1 <= 0:
        raise AssumptionViolated(f"w: ∇²L has no positive eigenvalue at w̄ (λ₁ = {lam1:.3g}); not near a minimizer")
    target = grad_rtol * lam1
    max_time = flow_budget(lam1, max_time)
    x, t_used = flow_to_small_gradient(model, x0, target, min(max_time, FAST_TIME / lam1), "DOP853")
    if np.linalg.norm(model.grad(x)) > target and t_used < max_time:
        def rho(y):  # the spectral radius of ∂(-∇L) = -∇²L: λ₁ by Lanczos (its negative eigenvalues are O(distance))
            return float(top_eigenpairs(model, y, k=1, method="lanczos" if model.dim > 2 else "dense").values[0])

        try:
            x, t_tail, _ = rkc_integrate(lambda y: -np.asarray(model.grad(y)), x, max_time - t_used, rho, RKC_RTOL,
                                         RKC_RTOL * 1e-2, stop=lambda y, fy: np.linalg.norm(fy) <= target)
        except RuntimeError as exc:
            raise AssumptionViolated(f"w: gradient flow failed: {exc}") from exc
        t_used += t_tail
    theta = newton_steps(model, x / np.linalg.norm(x), lam1)
    return Projection(theta, float(np.linalg.norm(model.grad(theta))), t_used, float(np.linalg.norm(theta - x0)))


def tangent_project(model, theta, v, lam1: float) -> np.ndarray:
    """P_T v = v - A⁺A v - (θ·v)θ at θ ∈ Γ (unit, ``lam1`` = λ₁): the part of v in ker ∇²L(θ) ∩ θ^⊥."""
    theta = as_vector(theta, "theta", model.dim)
    v = as_vector(v, "v", model.dim)
    if has_residual(model):  # at θ ∈ Γ (r = 0) ∇²L = JᵀJ: H⁺H = J⁺J
        out = v - row_space_project(model, theta, v)
    else:
        out = v - pinv_hvp(model, theta, model.hvp(theta, v), lam1)
    return out - (theta @ out) * theta


def grad_log_sharpness_matrix_free(model, theta, v0: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """(∇_Γ log λ₁(θ), λ₁, v₁) = (P_T ∇³L(θ)[v₁, v₁]/λ₁, ...), v₁ by Lanczos warm-started from ``v0``."""
    eig = top_eigenpairs(model, theta, k=1, method="lanczos", v0=v0)
    lam1, v1 = float(eig.values[0]), eig.vectors[:, 0]
    return tangent_project(model, theta, model.third(theta, v1, v1), lam1) / lam1, lam1, v1


def manifold_point_matrix_free(model, theta, gap_rtol: float = GAP_RTOL, on_gap: str = "raise") -> ManifoldPoint:
    """``theory.manifold.manifold_point`` without D×D matrices: λ₁, λ₂, v₁ by Lanczos (k = 2), ∇_Γ log λ₁ =
    P_T ∇³L(θ)[v₁, v₁]/λ₁ by ``tangent_project``; ``tangent`` is None (a D × dim Γ basis is not formed)."""
    check_on_gap(on_gap)
    theta = as_vector(theta, "theta", model.dim)
    eig = top_eigenpairs(model, theta, k=2, method="lanczos")
    lam1, v1, gap = float(eig.values[0]), eig.vectors[:, 0], eig.gap
    gap_violated(gap, lam1, gap_rtol, on_gap)
    grad_log = tangent_project(model, theta, model.third(theta, v1, v1), lam1) / lam1
    return ManifoldPoint(theta, lam1, v1, gap, None, grad_log)


def second_order_sum(model, theta, lam1: float, v1: np.ndarray, t: np.ndarray) -> float:
    """Σ_{i≥2} ⟨v_i, t⟩²/(λ₁ - λ_i) over the eigenpairs of ∇²L(θ) other than (λ₁, v₁) = t_⊥ᵀ(λ₁I - ∇²L)⁻¹t_⊥ on
    v₁^⊥ (t_⊥ = t - ⟨v₁, t⟩v₁), by CG: λ₁I - ∇²L is positive definite there when λ₁ has a gap."""
    t_perp = t - (v1 @ t) * v1

    def apply(v):
        v = v - (v1 @ v) * v1
        out = lam1 * v - model.hvp(theta, v)
        return out - (v1 @ out) * v1

    op = LinearOperator((model.dim, model.dim), matvec=lambda v: apply(np.ravel(v)), dtype=np.float64)
    y, info = cg(op, t_perp, rtol=CG_RTOL, atol=0.0, maxiter=20 * model.dim)
    if info < 0:
        raise AssumptionViolated(f"CG for (λ₁ - ∇²L)⁻¹T failed (info {info})")
    return float(t_perp @ y)


# -- the backend functions (``theory.backend``), with the signatures of ``theory.dense`` --------------------------
def newton_polish(model, x: np.ndarray, iters: int = 3, rank_rtol: float = RANK_RTOL,
                  lam1: float | None = None) -> np.ndarray:
    """``newton_steps`` from x/‖x‖ with λ₁ by Lanczos, or ``lam1`` when given (λ₁ sets only the CG truncation at
    RANK_RTOL·λ₁, whatever ``rank_rtol``); a model with a residual (``has_residual``: the Gauss-Newton step, which
    needs no λ₁) skips the Lanczos."""
    x = as_vector(x, "x", model.dim)
    if has_residual(model):
        lam1 = float("nan")
    elif lam1 is None:
        lam1 = sharpness(model, x)
    return newton_steps(model, unit(x, "w"), lam1, iters)


def project_to_manifold(model, w, grad_rtol: float = 1e-9, max_time: float | None = None,
                        method: str = "lsoda") -> Projection:
    """``project_matrix_free`` (one method: ``method``, which chooses the dense integrator, is not used)."""
    return project_matrix_free(model, w, grad_rtol, max_time)


def normal_conditioning(model, theta, rank_rtol: float = RANK_RTOL) -> tuple[float, float]:
    """(nan, nan): κ needs the smallest positive eigenvalue of ∇²L, i.e. the whole spectrum."""
    return float("nan"), float("nan")


def manifold_point(model, theta, rank_rtol: float = RANK_RTOL, gap_rtol: float = GAP_RTOL,
                   on_gap: str = "raise") -> ManifoldPoint:
    """``manifold_point_matrix_free`` (no rank tolerance: no tangent basis is formed)."""
    return manifold_point_matrix_free(model, theta, gap_rtol, on_gap)
