"""Matrix-free theory for large D: only ``grad``, ``hvp`` and ``third``, never a D×D matrix.

``theory.sharpness.is_dense(model)`` (D ≤ DENSE_MAX_DIM) is the one place that decides; above it
``project_to_manifold`` calls ``project_matrix_free`` and ``top_eigenpairs`` uses Lanczos.

* A⁺b, the pseudo-inverse of the Hessian on the sphere's tangent space, A = P∇²L(x)P, P = I - x̂x̂ᵀ,
  truncated at RANK_RTOL·λ₁ like the dense one, by conjugate gradients (``pinv_hvp``).
* Φ(w̄) (``project_matrix_free``): gradient flow ẋ = -∇L(x) by DOP853 (explicit, gradient calls only)
  until ‖∇L‖ ≤ grad_rtol·λ₁, then Newton steps x ← (x - H⁺∇L)/‖·‖; the same limit as the dense BDF
  path (``theory.manifold.project_to_manifold``), which is its reference in the tests.
* Why not a Newton retraction straight from w̄ (no flow)? Off Γ, at distance δ, the Hessian on the sphere
  has eigenvalues of size O(δ) along T_θΓ, which a Newton step inverts: from w̄ = θ + δv₁ with δ = 3e-3 it
  landed 0.64 away from Φ(w̄) on ``sphere_circle`` (measured while building this module). Truncating them
  needs the rank, i.e. a dense eigendecomposition; and even then the retraction misses Φ's second-order
  drift along Γ, -(δ²/4)∇_Γ log λ₁ for a displacement along v₁, which at the edge of stability (δ² ≈ ηλ/2)
  is the size of the flow-tracking errors being measured. So Φ keeps the flow; Newton only finishes it,
  from ‖∇L‖ ≤ 1e-9·λ₁ where those eigenvalues are round-off.
* T_θΓ projection and ∇_Γ log λ₁ = P_T ∇³L(θ)[v₁, v₁]/λ₁ with P_T v = v - H⁺H v - (θ·v)θ.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg

from srflow.toy_models._validate import as_vector

from .manifold import RANK_RTOL, AssumptionViolated, Projection, flow_to_small_gradient
from .sharpness import top_eigenpairs

#: relative residual of the CG solves for H⁺b
CG_RTOL = 1e-12


def pinv_hvp(model, x: np.ndarray, b: np.ndarray, lam: float, rtol: float = CG_RTOL) -> np.ndarray:
    """A⁺b for A = P∇²L(x)P, P = I - x̂x̂ᵀ, eigenvalues |μ| ≤ RANK_RTOL·λ₁ counted as zero (``lam`` = λ₁).

    Off Γ the radial eigenvalue of ∇²L is small but not zero, hence P; and near Γ the eigenvalues along T_θΓ
    are O(distance), which a Newton step must not invert. CG on (A² + ε²) y = A b, ε = RANK_RTOL·λ₁, from
    y = 0 gives y_i = μ_i b_i/(μ_i² + ε²) per eigencomponent: b_i/μ_i up to (ε/μ_i)² for the kept ones, ≤
    b_i/(2ε)·(μ_i/ε) → 0 for the dropped ones -- the dense truncation of ``theory.manifold.newton_polish``.
    """
    u = x / np.linalg.norm(x)
    eps2 = (RANK_RTOL * lam) ** 2

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


def newton_steps(model, x: np.ndarray, lam: float, iters: int = 3) -> np.ndarray:
    """x ← (x - A⁺∇L(x))/‖·‖, ``iters`` times: the matrix-free ``theory.manifold.newton_polish``."""
    for _ in range(iters):
        x = x - pinv_hvp(model, x, model.grad(x), lam)
        x = x / np.linalg.norm(x)
    return x


def project_matrix_free(model, w, grad_rtol: float = 1e-9, max_time: float = 1e6) -> Projection:
    """Φ(w/‖w‖): DOP853 gradient flow until ‖∇L‖ ≤ grad_rtol·λ₁, then ``newton_steps``; see the module
    docstring. λ₁ by Lanczos."""
    x0 = as_vector(w, "w", model.dim)
    x0 = x0 / np.linalg.norm(x0)
    lam = float(top_eigenpairs(model, x0, k=1, method="lanczos" if model.dim > 2 else "dense").values[0])
    if lam <= 0:
        raise AssumptionViolated(f"w: ∇²L has no positive eigenvalue at w̄ (λ₁ = {lam:.3g}); not near a minimizer")
    x, t_used = flow_to_small_gradient(model, x0, grad_rtol * lam, max_time, "DOP853")
    theta = newton_steps(model, x / np.linalg.norm(x), lam)
    return Projection(theta, float(np.linalg.norm(model.grad(theta))), t_used, float(np.linalg.norm(theta - x0)))


def tangent_project(model, theta, v, lam: float) -> np.ndarray:
    """P_T v = v - A⁺A v - (θ·v)θ at θ ∈ Γ (unit, ``lam`` = λ₁): the part of v in ker ∇²L(θ) ∩ θ^⊥."""
    theta = as_vector(theta, "theta", model.dim)
    v = as_vector(v, "v", model.dim)
    out = v - pinv_hvp(model, theta, model.hvp(theta, v), lam)
    return out - (theta @ out) * theta


def grad_log_sharpness_matrix_free(model, theta, v0: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """(∇_Γ log λ₁(θ), λ₁, v₁) = (P_T ∇³L(θ)[v₁, v₁]/λ₁, ...), v₁ by Lanczos warm-started from ``v0``."""
    eig = top_eigenpairs(model, theta, k=1, method="lanczos", v0=v0)
    lam, v1 = float(eig.values[0]), eig.vectors[:, 0]
    return tangent_project(model, theta, model.third(theta, v1, v1), lam) / lam, lam, v1
