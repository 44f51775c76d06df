"""The minimizer manifold Γ on the unit sphere: the limit map Φ, tangent spaces, Riemannian gradients.

* Φ(x) = lim_{t→∞} x(t), ẋ = -∇L(x), from x(0) = w/‖w‖. For a scale-invariant L the flow keeps ‖x‖
  (⟨∇L, x⟩ = 0), so Φ lands on the unit sphere. ``project_to_manifold`` integrates the flow with a
  stiff solver (LSODA, or BDF as the reference; Jacobian -∇²L) until ‖∇L‖ is small, then finishes with Newton steps
  x ← x - (∇²L)⁺ ∇L (pseudo-inverse on the eigenvalues above the rank tolerance), whose difference from
  the exact limit is of the order of the squared residual.
* T_θΓ = ker ∇²L(θ) ∩ θ^⊥, with eigenvalues |λ| ≤ rank_rtol·λ₁ counted as zero.
* ∇_Γ log λ₁(θ) = P_T ∇³L(θ)[v₁, v₁] / λ₁ (∇λ₁ = ∇³L[v₁, v₁] for a simple λ₁; the radial part,
  -2λ₁θ because λ₁ has degree -2, is removed by P_T).

These are the public functions; each validates its arguments and computes through ``theory.backend``
(``theory.dense`` up to DENSE_MAX_DIM, ``theory.matrix_free`` above). The records, tolerances and
``AssumptionViolated`` live in ``theory.gamma`` and are re-exported here.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from srflow.toy_models.validate import as_vector, positive_int, positive_real, unit

from . import backend
from .dense import PHI_METHODS, tangent_space
from .gamma import (GAP_RTOL, ON_GAP, RANK_RTOL, AssumptionViolated, ManifoldPoint, Projection, check_on_gap,
                    flow_to_small_gradient)

__all__ = ["newton_polish", "project_to_manifold", "gradient_flow_limit", "tangent_space", "manifold_point",
           "riemannian_grad_log_sharpness", "AssumptionViolated", "ManifoldPoint", "Projection", "RANK_RTOL",
           "GAP_RTOL", "ON_GAP", "check_on_gap", "flow_to_small_gradient", "normal_conditioning"]


def newton_polish(model, x: np.ndarray, iters: int = 3, rank_rtol: float = RANK_RTOL,
                  lam1: float | None = None) -> np.ndarray:
    """Newton steps towards the critical set: x ← x - (∇²L)⁺∇L, renormalized to the unit sphere (eigenvalues
    ≤ rank_rtol·λ₁ dropped; matrix-free above DENSE_MAX_DIM: ``theory.matrix_free.newton_steps``). ``lam1``: λ₁ near
    x when the caller knows it (it sets only the truncation threshold rank_rtol·λ₁): the matrix-free path then runs
    no Lanczos for it; the dense path ignores it (its eigendecomposition gives λ₁)."""
    x = as_vector(x, "x", model.dim)
    iters = positive_int(iters, "iters", 0)
    positive_real(rank_rtol, "rank_rtol")
    if lam1 is not None:
        positive_real(lam1, "lam1", "λ₁ > 0 near x (finite)")
    return backend.for_model(model).newton_polish(model, x, iters, rank_rtol, lam1)


def project_to_manifold(model, w, grad_rtol: float = 1e-9, max_time: float | None = None,
                        method: str = "lsoda") -> Projection:
    """Φ(w/‖w‖): the limit of gradient flow, returned at unit norm.

    The flow ẋ = -∇L(x) runs (a stiff solver with the Jacobian -∇²L, rtol 1e-10, atol 1e-13) until ‖∇L(x)‖ ≤
    grad_rtol·λ₁(∇²L(x)) or ``max_time`` (default: ``theory.gamma.flow_budget``, MAX_FLOW_LAM1_TIME/λ₁(w̄)), then
    ``newton_polish`` removes the remaining offset. The point is then
    within ~grad_rtol·λ₁/μ of Γ (μ = the smallest positive eigenvalue), and Newton's nearest-point answer differs
    from the flow's limit by the square of that; with λ₁/μ ≈ 160 (deep_linear_wn) grad_rtol = 1e-7 left 3e-6, 1e-9
    reaches the 2e-10 agreement floor of the DOP853 reference (tests/test_theory_manifold.py).

    ``method`` (dense models; ``theory.dense.PHI_METHODS``): "lsoda" (the default: LSODA, Adams steps while the
    flow is not stiff, BDF with the exact Jacobian once it is), "bdf" (the reference: scipy's BDF throughout, the
    method before issue 20; on the 14 projections of benchmarks/bench_phi.py, D = 3-80, it took 1.0-11x the CPU
    time of "lsoda", 2.0x in all, and its error against a tight flow was 0.6-65x that of "lsoda") or "expand" (``theory.dense.project_expand``: LSODA stopped near Γ, then Φ's
    second-order expansion ∂Φ = P_T, (λ_i + λ_j)∂²Φ[u_i, u_j] = -P_T∇³L[u_i, u_j] of docs/theory.md §2).
    Above ``theory.sharpness.DENSE_MAX_DIM`` the same limit is computed matrix-free whatever ``method``
    (``theory.matrix_free.project_matrix_free``: DOP853 then RKC flow, Newton steps by CG on HVPs).
    """
    positive_real(grad_rtol, "grad_rtol")
    if max_time is not None:
        positive_real(max_time, "max_time", "a flow time > 0 (the limit is of the forward flow)")
    if method not in PHI_METHODS:
        raise ValueError(f"method: expected one of {', '.join(map(repr, PHI_METHODS))}, got {method!r}")
    return backend.for_model(model).project_to_manifold(model, as_vector(w, "w", model.dim), grad_rtol, max_time,
                                                        method)


def gradient_flow_limit(model, w, time: float, rtol: float = 1e-11) -> np.ndarray:
    """The reference: gradient flow from w/‖w‖ for ``time`` with an explicit high-order method (DOP853),
    no shortcut. Slow; for tests."""
    x0 = unit(as_vector(w, "w", model.dim), "w")
    positive_real(time, "time", "a flow time > 0")
    positive_real(rtol, "rtol")
    sol = solve_ivp(lambda t, x: -model.grad(x), (0.0, time), x0, method="DOP853", rtol=rtol, atol=rtol * 1e-2)
    return sol.y[:, -1]


def manifold_point(model, theta, rank_rtol: float = RANK_RTOL, gap_rtol: float = GAP_RTOL,
                   on_gap: str = "raise") -> ManifoldPoint:
    """λ₁, v₁, T_θΓ and ∇_Γ log λ₁ = P_T ∇³L(θ)[v₁, v₁]/λ₁ at θ ∈ Γ (unit norm).

    A top eigenvalue without a gap (λ₁ - λ₂ ≤ gap_rtol·λ₁) makes ∇λ₁ undefined: ``on_gap`` = "raise"
    raises ``AssumptionViolated`` naming the gap, "warn" warns and goes on. Above DENSE_MAX_DIM (Lanczos and
    CG/LSQR, ``theory.matrix_free``) ``tangent`` is None.
    """
    check_on_gap(on_gap)
    theta = as_vector(theta, "theta", model.dim)
    positive_real(rank_rtol, "rank_rtol")
    positive_real(gap_rtol, "gap_rtol")
    return backend.for_model(model).manifold_point(model, theta, rank_rtol, gap_rtol, on_gap)


def normal_conditioning(model, theta, rank_rtol: float = RANK_RTOL) -> tuple[float, float]:
    """(κ, g) at θ ∈ Γ (unit norm): κ = λ₁/μ with μ the smallest eigenvalue of ∇²L(θ) above ``rank_rtol``·λ₁ (GD
    approaches Γ at the slowest rate μ, so a point with ‖∇L‖ = ρλ₁ is ≈ ρκ from Γ), and g = ‖∇³L(θ)[v₁, v₁]‖/λ₁ =
    ‖∇ log λ₁(θ)‖ in the whole space (the normal directions included). Dense models only (one eigendecomposition);
    (nan, nan) above DENSE_MAX_DIM."""
    theta = as_vector(theta, "theta", model.dim)
    positive_real(rank_rtol, "rank_rtol")
    return backend.for_model(model).normal_conditioning(model, theta, rank_rtol)


def riemannian_grad_log_sharpness(model, theta) -> np.ndarray:
    """∇_Γ log λ₁(θ) = P_T ∇³L(θ)[v₁, v₁] / λ₁."""
    return manifold_point(model, theta).grad_log
