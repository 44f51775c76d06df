"""The minimizer manifold Γ on the unit sphere: the limit map Φ, tangent spaces, Riemannian gradients.

* Φ(x) = lim_{t→∞} x(t), ẋ = -∇L(x), from x(0) = w/‖w‖. For a scale-invariant L the flow keeps ‖x‖
  (⟨∇L, x⟩ = 0), so Φ lands on the unit sphere. ``project_to_manifold`` integrates the flow with a
  stiff solver (BDF, Jacobian -∇²L) until ‖∇L‖ is small, then finishes with Newton steps
  x ← x - (∇²L)⁺ ∇L (pseudo-inverse on the eigenvalues above the rank tolerance), whose difference from
  the exact limit is of the order of the squared residual.
* T_θΓ = ker ∇²L(θ) ∩ θ^⊥, with eigenvalues |λ| ≤ rank_rtol·λ₁ counted as zero.
* ∇_Γ log λ₁(θ) = P_T ∇³L(θ)[v₁, v₁] / λ₁ (∇λ₁ = ∇³L[v₁, v₁] for a simple λ₁; the radial part,
  -2λ₁θ because λ₁ has degree -2, is removed by P_T).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from srflow.toy_models._validate import as_vector, positive_real, unit

from .sharpness import is_dense

#: eigenvalues with |λ| ≤ RANK_RTOL·λ₁ count as zero when deciding the kernel (rank condition)
RANK_RTOL = 1e-6
#: a top eigenvalue is simple when λ₁ - λ₂ > GAP_RTOL·λ₁
GAP_RTOL = 1e-3
#: what ``on_gap`` may say when λ₁ has no gap
ON_GAP = ("raise", "warn")


def check_on_gap(on_gap) -> None:
    if on_gap not in ON_GAP:
        raise ValueError(f"on_gap: expected one of {', '.join(map(repr, ON_GAP))}, got {on_gap!r}")


class AssumptionViolated(ValueError):
    """A theory assumption fails at a point (no spectral gap, rank condition, off Γ); the message says
    which, where and by how much."""


@dataclass(frozen=True, eq=False)
class Projection:
    """Φ(w̄) with diagnostics: ``theta`` (unit), ``grad_norm`` = ‖∇L(θ)‖, ``flow_time`` used, ``distance``
    ‖θ - w̄‖ travelled."""

    theta: np.ndarray
    grad_norm: float
    flow_time: float
    distance: float


def _unit(w: np.ndarray, name: str = "w") -> np.ndarray:
    return unit(w, name)


def newton_polish(model, x: np.ndarray, iters: int = 3, rank_rtol: float = RANK_RTOL) -> np.ndarray:
    """Newton steps towards the critical set: x ← x - (∇²L)⁺∇L, renormalized to the unit sphere (matrix-free
    above DENSE_MAX_DIM: ``theory.matrix_free.newton_steps``)."""
    if not is_dense(model):
        from .matrix_free import newton_steps
        from .sharpness import sharpness

        return newton_steps(model, _unit(as_vector(x, "x", model.dim)), sharpness(model, x), iters)
    for _ in range(iters):
        vals, vecs = np.linalg.eigh(model.hess(x))
        keep = vals > rank_rtol * vals[-1]
        g = model.grad(x)
        x = _unit(x - vecs[:, keep] @ ((vecs[:, keep].T @ g) / vals[keep]))
    return x


def project_to_manifold(model, w, grad_rtol: float = 1e-9, max_time: float = 1e6) -> Projection:
    """Φ(w/‖w‖): the limit of gradient flow, returned at unit norm.

    The flow ẋ = -∇L(x) runs (BDF) until ‖∇L(x)‖ ≤ grad_rtol·λ₁(∇²L(x)) or ``max_time``, then
    ``newton_polish`` removes the remaining offset. The point is then within ~grad_rtol·λ₁/μ of Γ
    (μ = the smallest positive eigenvalue), and Newton's nearest-point answer differs from the flow's
    limit by the square of that; with λ₁/μ ≈ 160 (deep_linear_wn) grad_rtol = 1e-7 left 3e-6, 1e-9
    reaches the 2e-10 agreement floor of the DOP853 reference (tests/test_theory_manifold.py).
    Above ``theory.sharpness.DENSE_MAX_DIM`` the same limit is computed matrix-free
    (``theory.matrix_free.project_matrix_free``: DOP853 flow, Newton steps by CG on HVPs).
    """
    positive_real(grad_rtol, "grad_rtol")
    positive_real(max_time, "max_time", "a flow time > 0 (the limit is of the forward flow)")
    if not is_dense(model):  # large D: the same limit without D×D matrices
        from .matrix_free import project_matrix_free
        return project_matrix_free(model, w, grad_rtol, max_time)
    x0 = _unit(as_vector(w, "w", model.dim))
    lam = float(np.linalg.eigvalsh(model.hess(x0))[-1])
    if lam <= 0:
        raise AssumptionViolated(f"w: ∇²L has no positive eigenvalue at w̄ (λ₁ = {lam:.3g}); not near a minimizer")
    x, t_used = flow_to_small_gradient(model, x0, grad_rtol * lam, max_time, "BDF", jac=lambda t, x: -model.hess(x))
    theta = newton_polish(model, _unit(x))
    return Projection(theta, float(np.linalg.norm(model.grad(theta))), t_used, float(np.linalg.norm(theta - x0)))


def flow_to_small_gradient(model, x0: np.ndarray, target: float, max_time: float, method: str, jac=None):
    """Gradient flow ẋ = -∇L(x) from ``x0`` (``method``: "BDF" with the Hessian as ``jac``, or "DOP853" without
    a matrix) until ‖∇L(x)‖ ≤ ``target`` or ``max_time``; returns (x, the flow time used)."""
    def small_gradient(t, x):
        return np.linalg.norm(model.grad(x)) - target

    small_gradient.terminal = True
    if np.linalg.norm(model.grad(x0)) <= target:
        return x0, 0.0
    sol = solve_ivp(lambda t, x: -model.grad(x), (0.0, max_time), x0, method=method, events=small_gradient,
                    rtol=1e-10, atol=1e-13, **({"jac": jac} if jac is not None else {}))
    if sol.status == -1:
        raise AssumptionViolated(f"w: gradient flow failed: {sol.message}")
    return sol.y[:, -1], float(sol.t[-1])


def gradient_flow_limit(model, w, time: float, rtol: float = 1e-11) -> np.ndarray:
    """The reference: gradient flow from w/‖w‖ for ``time`` with an explicit high-order method (DOP853),
    no shortcut. Slow; for tests."""
    x0 = _unit(as_vector(w, "w", model.dim))
    sol = solve_ivp(lambda t, x: -model.grad(x), (0.0, time), x0, method="DOP853", rtol=rtol, atol=rtol * 1e-2)
    return sol.y[:, -1]


def tangent_space(model, theta, rank_rtol: float = RANK_RTOL, expected_dim: int | None = None) -> np.ndarray:
    """Orthonormal basis (D, dim Γ) of T_θΓ = ker ∇²L(θ) ∩ θ^⊥.

    Raises ``AssumptionViolated`` when the kernel is not (radial + expected_dim)-dimensional (rank
    condition) -- ``expected_dim`` defaults to ``model.manifold_dim`` when the model states it.
    """
    theta = as_vector(theta, "theta", model.dim)
    vals, vecs = np.linalg.eigh(model.hess(theta))
    zero = np.abs(vals) <= rank_rtol * max(vals[-1], 0.0)
    kernel = vecs[:, zero]
    u = _unit(theta)
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


@dataclass(frozen=True, eq=False)
class ManifoldPoint:
    """Everything the flows need at θ ∈ Γ: λ₁, v₁, the gap λ₁ - λ₂, the tangent basis and
    ∇_Γ log λ₁ (``grad_log``), with G = ‖∇_Γ log λ₁‖²."""

    theta: np.ndarray
    lam1: float
    v1: np.ndarray
    gap: float
    tangent: np.ndarray
    grad_log: np.ndarray

    @property
    def G(self) -> float:
        return float(self.grad_log @ self.grad_log)


def manifold_point(model, theta, rank_rtol: float = RANK_RTOL, gap_rtol: float = GAP_RTOL,
                   on_gap: str = "raise") -> ManifoldPoint:
    """λ₁, v₁, T_θΓ and ∇_Γ log λ₁ = P_T ∇³L(θ)[v₁, v₁]/λ₁ at θ ∈ Γ (unit norm).

    A top eigenvalue without a gap (λ₁ - λ₂ ≤ gap_rtol·λ₁) makes ∇λ₁ undefined: ``on_gap`` = "raise"
    raises ``AssumptionViolated`` naming the gap, "warn" warns and goes on.
    """
    check_on_gap(on_gap)
    theta = as_vector(theta, "theta", model.dim)
    if not is_dense(model):  # above DENSE_MAX_DIM: Lanczos and CG/LSQR, no tangent basis (theory.matrix_free)
        from .matrix_free import manifold_point_matrix_free
        return manifold_point_matrix_free(model, theta, gap_rtol, on_gap)
    vals, vecs = np.linalg.eigh(model.hess(theta))
    lam1, v1 = float(vals[-1]), vecs[:, -1]
    gap = float(vals[-1] - vals[-2]) if model.dim > 1 else float("inf")
    if gap <= gap_rtol * lam1:
        msg = f"assumption violated: spectral gap λ₁ - λ₂ = {gap:.3g} (λ₁ = {lam1:.3g}) at θ; ∇λ₁ is undefined"
        if on_gap == "raise":
            raise AssumptionViolated(msg)
        warnings.warn(msg, stacklevel=2)
    basis = tangent_space(model, theta, rank_rtol)
    grad_lam = model.third(theta, v1, v1)
    grad_log = basis @ (basis.T @ grad_lam) / lam1
    return ManifoldPoint(theta, lam1, v1, gap, basis, grad_log)


def normal_conditioning(model, theta, rank_rtol: float = RANK_RTOL) -> tuple[float, float]:
    """(κ, g) at θ ∈ Γ (unit norm): κ = λ₁/μ with μ the smallest eigenvalue of ∇²L(θ) above ``rank_rtol``·λ₁ (GD
    approaches Γ at the slowest rate μ, so a point with ‖∇L‖ = ρλ₁ is ≈ ρκ from Γ), and g = ‖∇³L(θ)[v₁, v₁]‖/λ₁ =
    ‖∇ log λ₁(θ)‖ in the whole space (the normal directions included). Dense models only (one eigendecomposition);
    (nan, nan) above DENSE_MAX_DIM."""
    theta = as_vector(theta, "theta", model.dim)
    if not is_dense(model):
        return float("nan"), float("nan")
    vals, vecs = np.linalg.eigh(model.hess(theta))
    lam1 = float(vals[-1])
    positive = vals[vals > rank_rtol * lam1]
    g = float(np.linalg.norm(model.third(theta, vecs[:, -1], vecs[:, -1]))) / lam1
    return lam1 / float(positive.min()), g


def riemannian_grad_log_sharpness(model, theta) -> np.ndarray:
    """∇_Γ log λ₁(θ) = P_T ∇³L(θ)[v₁, v₁] / λ₁."""
    return manifold_point(model, theta).grad_log
