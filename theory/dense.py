"""Theory on Γ with D×D matrices, for D ≤ DENSE_MAX_DIM (``theory.backend`` chooses): ``eigh`` of ∇²L, the
stiff flow (LSODA; BDF as the reference) with the Hessian as its Jacobian, an explicit tangent basis.

The four functions of a backend (``theory.backend.BACKEND_FUNCTIONS``, the same signatures in
``theory.matrix_free``): ``newton_polish``, ``project_to_manifold``, ``manifold_point``, ``normal_conditioning``,
``second_order_sum``;
and ``tangent_space``, which only a dense backend can give. The formulas are in ``theory.manifold``.
"""

from __future__ import annotations

import numpy as np

from srflow.toy_models.validate import as_vector, unit

from .gamma import (RANK_RTOL, GAP_RTOL, AssumptionViolated, ManifoldPoint, Projection, flow_budget, flow_steps,
                    flow_to_small_gradient, gap_violated)


def newton_polish(model, x: np.ndarray, iters: int = 3, rank_rtol: float = RANK_RTOL,
                  lam1: float | None = None) -> np.ndarray:
    """Newton steps x ← x - (∇²L)⁺∇L (eigenvalues ≤ rank_rtol·λ₁ dropped), renormalized to the unit sphere
    (``lam1`` is not used: the eigendecomposition gives λ₁)."""
    for _ in range(iters):
        vals, vecs = np.linalg.eigh(model.hess(x))
        keep = vals > rank_rtol * vals[-1]
        g = model.grad(x)
        x = unit(x - vecs[:, keep] @ ((vecs[:, keep].T @ g) / vals[keep]), "w")
    return x


#: Φ's methods (``project_to_manifold``'s ``method``): the flow until ‖∇L‖ ≤ grad_rtol·λ₁, then ``newton_polish``,
#: integrated by LSODA ("lsoda", the default) or BDF ("bdf", the reference: the method before issue 20), both with
#: rtol 1e-10, atol 1e-13 and the Jacobian -∇²L; or "expand" (``project_expand``: LSODA stopped near Γ, then Φ's
#: second-order expansion)
PHI_METHODS = ("lsoda", "bdf", "expand")
#: "expand" first stops the flow at ‖∇L‖ ≤ EXPAND_START·λ₁, then at every tenth of that until its error estimate
#: ``|½∂²Φ[Δ, Δ]|²/|Δ|`` (the next term of the series, from the ratio of the two before it) is ≤ EXPAND_TOL
EXPAND_START = 1e-5
EXPAND_TOL = 1e-13


def project_to_manifold(model, w, grad_rtol: float = 1e-9, max_time: float | None = None,
                        method: str = "lsoda") -> Projection:
    """Φ(w/‖w‖): the flow (Jacobian -∇²L; ``method`` "lsoda" or "bdf", see PHI_METHODS) until ‖∇L‖ ≤
    grad_rtol·λ₁, then ``newton_polish``; "expand": ``project_expand``."""
    if method == "expand":
        return project_expand(model, w, grad_rtol, max_time)
    x0 = unit(as_vector(w, "w", model.dim), "w")
    lam1 = _start_lam1(model, x0)
    max_time = flow_budget(lam1, max_time)
    if method == "lsoda":
        x, t_used = lsoda_to_small_gradient(model, x0, grad_rtol * lam1, max_time, lam1)
    else:
        x, t_used = flow_to_small_gradient(model, x0, grad_rtol * lam1, max_time, "BDF",
                                           jac=lambda t, x: -model.hess(x))
    theta = newton_polish(model, unit(x, "w"))
    return Projection(theta, float(np.linalg.norm(model.grad(theta))), t_used, float(np.linalg.norm(theta - x0)))


def lsoda_to_small_gradient(model, x0: np.ndarray, target: float, max_time: float, lam1: float):
    """``flow_steps`` (LSODA) from ``x0`` until the first of its flow times 2^k/λ₁ with ‖∇L(x)‖ ≤ ``target``, or
    ``max_time``; returns (x, that flow time)."""
    x, t = x0, 0.0
    if np.linalg.norm(model.grad(x0)) <= target:
        return x, t
    for t, x, g in flow_steps(model, x0, max_time, 1.0 / lam1):
        if np.linalg.norm(g) <= target:
            break
    return x, float(t)


def _start_lam1(model, x0):
    lam1 = float(np.linalg.eigvalsh(model.hess(x0))[-1])
    if lam1 <= 0:
        raise AssumptionViolated(f"w: ∇²L has no positive eigenvalue at w̄ (λ₁ = {lam1:.3g}); not near a minimizer")
    return lam1


def rank_newton(model, x: np.ndarray, rank: int, max_iters: int = 8) -> np.ndarray:
    """Newton steps x ← (x - Σ_{i ≤ rank} u_i⟨u_i, ∇L⟩/λ_i)/‖·‖ on the top ``rank`` eigenpairs of ∇²L(x) (the normal
    space of Γ near it), until a step is below 1e-15 or ``max_iters``. Unlike ``newton_polish`` it never inverts
    the eigenvalues that vanish on Γ (off Γ they are O(λ₁|x - θ|), not zero), so x - θ stays normal to Γ up to
    O(|x - θ|²): the foot point the expansion of ``phi_second_order`` needs."""
    for _ in range(max_iters):
        vals, vecs = np.linalg.eigh(model.hess(x))
        top, top_vals = vecs[:, -rank:], vals[-rank:]
        step = top @ ((top.T @ model.grad(x)) / top_vals)
        x = unit(x - step, "w")
        if np.linalg.norm(step) <= 1e-15:
            break
    return x


def phi_second_order(model, theta: np.ndarray, delta: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """The first- and second-order terms of Φ(θ + Δ) = θ + ∂Φ(θ)Δ + ½∂²Φ(θ)[Δ, Δ] + O(|Δ|³) at θ ∈ Γ, as
    (∂Φ(θ)Δ, ½∂²Φ(θ)[Δ, Δ]) (docs/theory.md §2). With ∇²L(θ) = Σ λ_i u_i u_iᵀ, its top ``rank`` eigenpairs the
    normal space N, P_K the projection on its kernel (T_θΓ and the radial direction: Φ is 1-homogeneous) and
    Δ = Σ a_i u_i + Δ_K:

    * ∂Φ(θ) = P_K;
    * (λ_i + λ_j) ∂²Φ[u_i, u_j] = -P_K ∇³L[u_i, u_j] (normal-normal, as for a cluster, docs/theory.md §4c.1), and
      λ_j ∂²Φ[t, u_j] = -P_K ∇³L[t, u_j] for t ∈ ker ∇²L (the same two differentiations of ∂Φ∇L = 0, with
      ∇²L t = 0); ∂²Φ[Δ_K, Δ_K] (the curvature of Γ) is left out: it is O(|Δ|⁴) when Δ_K = O(|Δ|²)
      (``rank_newton``'s foot point).

    So ½∂²Φ[Δ, Δ] = -P_K ∇³L : M with M = ½ Σ_ij a_i a_j/(λ_i + λ_j) u_i u_jᵀ + sym(Δ_K ⊗ ∇²L⁺Δ), contracted as
    Σ_k σ_k ∇³L[z_k, z_k] over the eigenpairs (σ_k, z_k) of M with |σ_k| > 1e-12·max|σ| (M is Cauchy-like: a few)."""
    vals, vecs = np.linalg.eigh(model.hess(theta))
    if not (vals[-rank] > RANK_RTOL * vals[-1] and np.all(np.abs(vals[:-rank]) <= RANK_RTOL * vals[-1])):
        raise AssumptionViolated(f"theta: ∇²L(θ) does not have rank {rank} (eigenvalues {vals[-rank - 1]:.3g}, "
                                 f"{vals[-rank]:.3g} around it; λ₁ = {vals[-1]:.3g}): θ is not on Γ")
    normal, kernel, lam_n = vecs[:, -rank:], vecs[:, :-rank], vals[-rank:]
    a = normal.T @ delta
    first = kernel @ (kernel.T @ delta)
    b = normal @ (a / lam_n)
    M = 0.5 * (normal @ (np.outer(a, a) / (lam_n[:, None] + lam_n[None, :])) @ normal.T)
    M += 0.5 * (np.outer(first, b) + np.outer(b, first))
    sigma, Z = np.linalg.eigh(M)
    keep = np.abs(sigma) > 1e-12 * np.abs(sigma).max() if sigma.size and np.abs(sigma).max() > 0 else sigma != sigma
    contracted = np.zeros_like(theta)
    for s, z in zip(sigma[keep], Z.T[keep]):
        contracted += s * np.asarray(model.third(theta, z, z), dtype=np.float64)
    return first, -kernel @ (kernel.T @ contracted)


def _rank(model, x, lam1, rank_rtol=RANK_RTOL) -> int:
    """rank ∇²L on Γ: D - 1 - ``model.manifold_dim`` when the model states it, else counted (eigenvalues above
    rank_rtol·λ₁) at ``newton_polish``'s point near x."""
    dim = getattr(model, "manifold_dim", None)
    if dim is not None:
        return int(model.dim - 1 - dim)
    vals = np.linalg.eigvalsh(model.hess(newton_polish(model, x)))
    return int(np.sum(vals > rank_rtol * vals[-1]))


def project_expand(model, w, grad_rtol: float = 1e-9, max_time: float | None = None) -> Projection:
    """Φ(w/‖w‖) by the LSODA flow of "lsoda" stopped near Γ, then Φ's second-order expansion:
    Φ(x) = θ + P_K Δ + ½∂²Φ(θ)[Δ, Δ] + O(|Δ|³) about θ = ``rank_newton``(x), Δ = x - θ (``phi_second_order``), and
    a last ``rank_newton`` step onto Γ. The flow stops at ‖∇L‖ ≤ EXPAND_START·λ₁, then at each tenth of that
    until the next term's estimate |½∂²Φ[Δ, Δ]|²/|Δ| ≤ EXPAND_TOL; if it reaches grad_rtol·λ₁ (or ``max_time``) first
    it ends as "lsoda" does (``newton_polish``). The flow's steps are those of "lsoda", so the two differ by the
    expansion's O(|Δ|³) and the flow's own error in the part "expand" leaves out."""
    x0 = unit(as_vector(w, "w", model.dim), "w")
    lam1 = _start_lam1(model, x0)
    max_time = flow_budget(lam1, max_time)
    x, t, g, rank = x0, 0.0, model.grad(x0), None
    level = max(EXPAND_START, grad_rtol)
    steps = flow_steps(model, x0, max_time, 1.0 / lam1)
    while np.linalg.norm(g) > grad_rtol * lam1:
        if np.linalg.norm(g) <= level * lam1:
            rank = _rank(model, unit(x, "w"), lam1) if rank is None else rank
            if 0 < rank < model.dim - 1:
                xu = unit(x, "w")
                theta = rank_newton(model, xu, rank)
                try:
                    first, second = phi_second_order(model, theta, xu - theta, rank)
                except AssumptionViolated:  # the foot point is not on Γ yet: flow on
                    first, second = None, np.inf
                if np.linalg.norm(second) ** 2 <= EXPAND_TOL * np.linalg.norm(xu - theta):
                    phi = rank_newton(model, unit(theta + first + second, "w"), rank, max_iters=1)
                    return Projection(phi, float(np.linalg.norm(model.grad(phi))), t, float(np.linalg.norm(phi - x0)))
            level = min(level, float(np.linalg.norm(g)) / lam1) / 10
            continue
        try:
            t, x, g = next(steps)
        except StopIteration:  # max_time
            break
    theta = newton_polish(model, unit(x, "w"))
    return Projection(theta, float(np.linalg.norm(model.grad(theta))), t, float(np.linalg.norm(theta - x0)))


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
