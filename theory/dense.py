"""Theory on Γ with D×D matrices, for D ≤ DENSE_MAX_DIM (``theory.backend`` chooses): ``eigh`` of ∇²L, the
stiff BDF flow with the Hessian as its Jacobian, an explicit tangent basis.

The four functions of a backend (``theory.backend.BACKEND_FUNCTIONS``, the same signatures in
``theory.matrix_free``): ``newton_polish``, ``project_to_manifold``, ``manifold_point``, ``normal_conditioning``,
``second_order_sum``;
and ``tangent_space``, which only a dense backend can give. The formulas are in ``theory.manifold``.
"""

from __future__ import annotations

import numpy as np

from srflow.toy_models.validate import as_vector, unit

from .gamma import (RANK_RTOL, GAP_RTOL, AssumptionViolated, ManifoldPoint, Projection, flow_to_small_gradient,
                    gap_violated)


def newton_polish(model, x: np.ndarray, iters: int = 3, rank_rtol: float = RANK_RTOL) -> np.ndarray:
    """Newton steps x ← x - (∇²L)⁺∇L (eigenvalues ≤ rank_rtol·λ₁ dropped), renormalized to the unit sphere."""
    for _ in range(iters):
        vals, vecs = np.linalg.eigh(model.hess(x))
        keep = vals > rank_rtol * vals[-1]
        g = model.grad(x)
        x = unit(x - vecs[:, keep] @ ((vecs[:, keep].T @ g) / vals[keep]), "w")
    return x


def project_to_manifold(model, w, grad_rtol: float = 1e-9, max_time: float = 1e6) -> Projection:
    """Φ(w/‖w‖) by the BDF flow (Jacobian -∇²L) until ‖∇L‖ ≤ grad_rtol·λ₁, then ``newton_polish``."""
    x0 = unit(as_vector(w, "w", model.dim), "w")
    lam1 = float(np.linalg.eigvalsh(model.hess(x0))[-1])
    if lam1 <= 0:
        raise AssumptionViolated(f"w: ∇²L has no positive eigenvalue at w̄ (λ₁ = {lam1:.3g}); not near a minimizer")
    x, t_used = flow_to_small_gradient(model, x0, grad_rtol * lam1, max_time, "BDF", jac=lambda t, x: -model.hess(x))
    theta = newton_polish(model, unit(x, "w"))
    return Projection(theta, float(np.linalg.norm(model.grad(theta))), t_used, float(np.linalg.norm(theta - x0)))


def tangent_space(model, theta, rank_rtol: float = RANK_RTOL, expected_dim: int | None = None) -> np.ndarray:
    """Orthonormal basis (D, dim Γ) of T_θΓ = ker ∇²L(θ) ∩ θ^⊥.

    Raises ``AssumptionViolated`` when the kernel is not (radial + expected_dim)-dimensional (rank
    condition) -- ``expected_dim`` defaults to ``model.manifold_dim`` when the model states it.
    """
    theta = as_vector(theta, "theta", model.dim)
    vals, vecs = np.linalg.eigh(model.hess(theta))
    zero = np.abs(vals) <= rank_rtol * max(vals[-1], 0.0)
    kernel = vecs[:, zero]
    u = unit(theta, "w")
    kernel = kernel - np.outer(u, u @ kernel)
    q, sv, _ = np.linalg.svd(kernel, full_matrices=False)
    basis = q[:, sv > 0.5]
    expected = getattr(model, "manifold_dim", None) if expected_dim is None else expected_dim
    if expected is not None and basis.shape[1] != expected:
        nonzero = np.sort(np.abs(vals[~zero]))
        raise AssumptionViolated(
            f"rank condition fails at θ: ker ∇²L ∩ θ^⊥ has dimension {basis.shape[1]}, expected dim Γ = {expected} "
            f"(rank tolerance {rank_rtol:g}·λ₁; smallest nonzero |λ| = {nonzero[0] if len(nonzero) else 0:.3g})")
    return basis


def manifold_point(model, theta: np.ndarray, rank_rtol: float = RANK_RTOL, gap_rtol: float = GAP_RTOL,
                   on_gap: str = "raise") -> ManifoldPoint:
    """λ₁, v₁ by ``eigh``, the tangent basis, ∇_Γ log λ₁ = P_T ∇³L(θ)[v₁, v₁]/λ₁."""
    vals, vecs = np.linalg.eigh(model.hess(theta))
    lam1, v1 = float(vals[-1]), vecs[:, -1]
    gap = float(vals[-1] - vals[-2]) if model.dim > 1 else float("inf")
    gap_violated(gap, lam1, gap_rtol, on_gap)
    basis = tangent_space(model, theta, rank_rtol)
    grad_lam = model.third(theta, v1, v1)
    grad_log = basis @ (basis.T @ grad_lam) / lam1
    return ManifoldPoint(theta, lam1, v1, gap, basis, grad_log)


def normal_conditioning(model, theta: np.ndarray, rank_rtol: float = RANK_RTOL) -> tuple[float, float]:
    """(κ, g) = (λ₁/μ, ‖∇³L(θ)[v₁, v₁]‖/λ₁) from one ``eigh`` (μ: the smallest eigenvalue above rank_rtol·λ₁)."""
    vals, vecs = np.linalg.eigh(model.hess(theta))
    lam1 = float(vals[-1])
    positive = vals[vals > rank_rtol * lam1]
    g = float(np.linalg.norm(model.third(theta, vecs[:, -1], vecs[:, -1]))) / lam1
    return lam1 / float(positive.min()), g


def second_order_sum(model, theta, lam1: float, v1: np.ndarray, t: np.ndarray) -> float:
    """Σ_{i≥2} ⟨v_i, t⟩²/(λ₁ - λ_i) over the eigenpairs of ∇²L(θ) other than (λ₁, v₁), from one ``eigh``."""
    vals, vecs = np.linalg.eigh(model.hess(theta))
    t11 = vecs[:, :-1].T @ t
    return float(np.sum(t11**2 / (lam1 - vals[:-1])))
