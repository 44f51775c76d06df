"""The built-in scale-invariant models. Each factory takes ``rng=`` (Generator or seed) and sizes.

Every model here is a ``NormalizedModel`` L(w) = f(N(A w)); those whose minimizers can be constructed
are ``ManifoldModel``s that also provide ``minimizer(rng)`` and ``manifold_dim`` (dim Γ on the sphere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.linalg import expm
from scipy.optimize import brentq

from .validate import as_rng, positive_int, positive_real
from .generic import SmoothFunction
from .multilinear import MultilinearLeastSquares
from .normalized import NormalizedModel


@dataclass(frozen=True, eq=False)
class ManifoldModel(NormalizedModel):
    """A ``NormalizedModel`` whose minimizer manifold Γ is known: ``minimizer(rng)`` and ``manifold_dim``."""

    manifold_dim: int | None = None
    minimizer_fn: Callable[[np.random.Generator], np.ndarray] | None = None
    description: str = ""

    def minimizer(self, rng) -> np.ndarray:
        """A unit-norm point of Γ, drawn with ``rng``."""
        if self.minimizer_fn is None:
            raise NotImplementedError(f"{self.name}: no construction of a minimizer is known")
        w = np.asarray(self.minimizer_fn(as_rng(rng)), dtype=np.float64)
        return w / np.linalg.norm(w)


def _orthogonal(rng: np.random.Generator, k: int) -> np.ndarray:
    from scipy.stats import ortho_group  # lazily: scipy.stats costs ~0.4 s of every srflow process's start

    return np.eye(1) if k == 1 else ortho_group.rvs(k, random_state=rng)


def _permutation_matrix(order: np.ndarray) -> np.ndarray:
    """The matrix A with (A w)[i] = w[order[i]]."""
    a = np.zeros((len(order), len(order)))
    a[np.arange(len(order)), order] = 1.0
    return a


def _low_rank(rng: np.random.Generator, m: int, n: int, rank: int) -> np.ndarray:
    """A random m×n matrix of the given rank with nuclear norm 1."""
    y = rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))
    return y / np.linalg.norm(y, "nuc")


def _balanced_factors(rng: np.random.Generator, y: np.ndarray, rank: int, scale: float):
    """(U, V) with U Vᵀ = Y and ‖U‖_F ‖V‖_F = scale, hence scale · Ū V̄ᵀ = Y.

    U = A S^½ G, V = B S^½ G^{-T} with G = O exp(t K): at t = 0 the product of norms is ‖Y‖_* = 1 and it
    grows without bound in t, so a root exists whenever scale > ‖Y‖_*.
    """
    a, s, bt = np.linalg.svd(y)
    a, root, b = a[:, :rank], np.sqrt(s[:rank]), bt[:rank].T
    o = _orthogonal(rng, rank)
    k = rng.standard_normal((rank, rank))
    k = k + k.T
    k -= np.trace(k) / rank * np.eye(rank)

    def factors(t):
        g = o @ expm(t * k)
        return (a * root) @ g, (b * root) @ np.linalg.inv(g).T

    def excess(t):
        u, v = factors(t)
        return np.linalg.norm(u) * np.linalg.norm(v) - scale

    hi = 1.0
    while excess(hi) < 0:
        hi *= 2
    return factors(brentq(excess, 0.0, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps))


def matrix_factorization(rng=0, m: int = 4, n: int = 4, rank: int = 2, scale: float = 1.5,
                         observed: float = 1.0) -> ManifoldModel:
    """Normalized matrix factorization: L(U, V) = ½ Σ_Ω ω (c U Vᵀ/(‖U‖_F ‖V‖_F) - Y)²,  ω = 1/|Ω|.

    ``w = (vec U, vec V)`` (row-major), U ∈ R^{m×rank}, V ∈ R^{n×rank}; c = ``scale``. Y is a random
    rank-``rank`` target with ‖Y‖_* = 1 and Ω a random mask keeping a fraction ``observed`` of the entries
    (1.0: full observation; < 1: matrix completion). The loss is invariant under scaling U and V
    separately.

    Γ: unit-norm (U, V) with c Ū V̄ᵀ agreeing with Y on Ω. It is non-empty iff c ≥ ‖Y‖_* = 1 (since
    ‖Ū V̄ᵀ‖_* ≤ 1) and, for c > 1 and rank ≥ 2, a manifold of dimension
    rank² - 1 + max(rank·(m + n - rank) - |Ω|, 0) for a generic mask (the fibre of factorizations of
    one matrix, rank² - 2, two block scalings, one sphere constraint, plus the completions of Y).
    """
    rng = as_rng(rng)
    m, n, rank = positive_int(m, "m"), positive_int(n, "n"), positive_int(rank, "rank")
    if not 0 < observed <= 1:
        raise ValueError(f"observed: expected a fraction in (0, 1], got {observed!r}")
    if scale <= 1.0:
        raise ValueError(f"scale: expected c > ‖Y‖_* = 1 so that Γ is non-empty, got {scale!r}")
    y = _low_rank(rng, m, n, rank)
    mask = np.ones((m, n)) if observed == 1.0 else (rng.random((m, n)) < observed).astype(float)
    if mask.sum() == 0:
        raise ValueError("observed: the random mask observed no entry; raise 'observed'")
    n_obs = int(mask.sum())
    gamma = rank**2 - 1 + max(rank * (m + n - rank) - n_obs, 0) if rank >= 2 else None

    def minimizer(g: np.random.Generator) -> np.ndarray:
        if rank < 2:
            raise NotImplementedError("rank 1: Γ is empty for c > ‖Y‖_* (no balanced rescaling exists)")
        u, v = _balanced_factors(g, y, rank, scale)
        alpha, beta = g.uniform(0.5, 2.0, size=2)
        return np.concatenate([alpha * u.ravel() / np.linalg.norm(u), beta * v.ravel() / np.linalg.norm(v)])

    kind = "full" if observed == 1.0 else f"completion, {n_obs}/{m * n} observed"
    return _factorization_model(y, mask, rank, scale, name="mf" if observed == 1.0 else "mf_completion",
                                manifold_dim=gamma, minimizer_fn=minimizer,
                                description=f"normalized matrix factorization {m}x{n}, rank {rank} ({kind})")


def _factorization_model(y: np.ndarray, mask: np.ndarray, rank: int, scale: float, **kw) -> ManifoldModel:
    """L(U, V) = ½ Σ_Ω ω (c U Vᵀ/(‖U‖_F ‖V‖_F) - Y)² on w = (vec U, vec V), U: m×rank, V: n×rank."""
    m, n = y.shape
    inner = MultilinearLeastSquares(((rank, n), (m, rank)), target=y * mask, weights=mask / mask.sum(), scale=scale)
    # z = (vec Vᵀ, vec U) is a permutation of w = (vec U, vec V).
    v_t = m * rank + np.arange(n * rank).reshape(n, rank).T.ravel()
    order = np.concatenate([v_t, np.arange(m * rank)])
    return ManifoldModel(inner, (n * rank, m * rank), linear=_permutation_matrix(order), block_names=("V", "U"), **kw)


def matrix_completion(rng=0, m: int = 5, n: int = 5, rank: int = 2, scale: float = 1.5,
                      observed: float = 0.8) -> ManifoldModel:
    """``matrix_factorization`` with a random observation mask (default 80% of the entries)."""
    return matrix_factorization(rng, m=m, n=n, rank=rank, scale=scale, observed=observed)


def symmetric_factorization(rng=0, n: int = 4, rank: int = 2, scale: float = 1.0) -> ManifoldModel:
    """Symmetric normalized factorization: L(U) = ½ mean_ij (c U Uᵀ/‖U‖_F² - Y)²,  U ∈ R^{n×rank}.

    The target is Y = c U* U*ᵀ with ‖U*‖_F = 1, so zero loss is attainable. Implemented as the
    factorization model composed with the linear tying map U -> (Uᵀ, U).

    Γ = {U* O : O ∈ O(rank)} on the unit sphere (c U Uᵀ = Y forces ‖U‖_F = 1 and U = U* O), of
    dimension rank (rank - 1)/2; λ₁ is constant on it (the loss is O(rank)-invariant).
    """
    rng = as_rng(rng)
    n, rank = positive_int(n, "n"), positive_int(rank, "rank")
    if scale <= 0:
        raise ValueError(f"scale: expected c > 0, got {scale!r}")
    u_star = rng.standard_normal((n, rank))
    u_star /= np.linalg.norm(u_star)
    y = scale * u_star @ u_star.T
    inner = MultilinearLeastSquares(((rank, n), (n, rank)), target=y, weights=np.full((n, n), 1.0 / n**2),
                                    scale=scale)
    u_t = np.arange(n * rank).reshape(n, rank).T.ravel()
    tie = np.vstack([_permutation_matrix(u_t), np.eye(n * rank)])
    return ManifoldModel(inner, (n * rank, n * rank), linear=tie, block_names=("U^T", "U"), name="sym_mf",
                         manifold_dim=rank * (rank - 1) // 2,
                         minimizer_fn=lambda g: (u_star @ _orthogonal(g, rank)).ravel(),
                         description=f"symmetric normalized factorization {n}x{n}, rank {rank}")


def batchnorm_linear(rng=0, samples: int = 16, inputs: int = 3, hidden: int = 3) -> ManifoldModel:
    """Two-layer linear network with batch normalization (no affine) and a fixed output layer.

    Hidden unit k computes z_k = X w_k over the batch X ∈ R^{N×d}; BN gives
    ẑ_k = (z_k - mean z_k)/std z_k = √N C X w_k/‖C X w_k‖ (C = I - 11ᵀ/N, population std); the output is
    ŷ = Σ_k a_k ẑ_k with fixed a, and L(W) = ½ mean_i (ŷ_i - y_i)². ``w = vec W`` (rows w_k ∈ R^d).
    Labels come from a teacher W* of the same architecture, so zero loss is attainable.

    Γ: unit-norm W with Σ_k a_k ẑ_k = y. The output lies in col(CX) ≅ R^d, giving d constraints on the
    (hd - 1)-sphere: dim Γ = hd - 1 - d (needs N > d ≥ 2, hidden ≥ 2).
    """
    rng = as_rng(rng)
    n, d, h = positive_int(samples, "samples", 2), positive_int(inputs, "inputs", 2), positive_int(hidden, "hidden", 2)
    if n <= d:
        raise ValueError(f"samples: expected more samples than inputs ({d}), got {n}")
    x = rng.standard_normal((n, d))
    cx = x - x.mean(axis=0)
    a = np.linspace(1.0, 0.5, h) / np.sqrt(h)
    w_star = rng.standard_normal((h, d))
    z_star = w_star @ cx.T
    y = np.sqrt(n) * a @ (z_star / np.linalg.norm(z_star, axis=1, keepdims=True))
    inner = MultilinearLeastSquares(((h, n),), target=y[None, :], weights=np.full((1, n), 1.0 / n),
                                    scale=np.sqrt(n), left=a[None, :])

    def minimizer(g: np.random.Generator) -> np.ndarray:
        return (w_star * g.uniform(0.5, 2.0, size=(h, 1))).ravel()

    return ManifoldModel(inner, (n,) * h, linear=np.kron(np.eye(h), cx), block_names=tuple(f"w{k}" for k in range(h)),
                         name="bn_linear", manifold_dim=h * d - 1 - d, minimizer_fn=minimizer,
                         description=f"2-layer linear net with BN, {d} inputs, {h} hidden, {n} samples")


def deep_linear(rng=0, width: int = 2, depth: int = 3, samples: int = 8, scale: float = 1.0) -> ManifoldModel:
    """Deep linear network with per-layer weight normalization.

    L(W_1..W_K) = ½ mean (c W̄_K ⋯ W̄_1 X - Y)²,  W̄_l = W_l/‖W_l‖_F, all layers width × width, K = depth,
    X ∈ R^{width×N} random, Y = c W̄*_K ⋯ W̄*_1 X from a teacher. ``w`` = layers in order, row-major.

    Γ: unit-norm layer tuples with c Π W̄_l = c Π W̄*_l. Counting: K·width² parameters, width² equations
    (the product of normalized layers is scale-free, so the K layer scalings stay free), one sphere
    constraint: dim Γ = (K - 1)·width² - 1 for an invertible teacher product.
    """
    rng = as_rng(rng)
    d, k = positive_int(width, "width"), positive_int(depth, "depth", 2)
    n = positive_int(samples, "samples")
    scale = positive_real(scale, "scale", "c > 0 finite (the target Y = c W̄*_K ⋯ W̄*_1 X)")
    x = rng.standard_normal((d, n))
    layers = [rng.standard_normal((d, d)) for _ in range(k)]
    prod = np.eye(d)
    for layer in layers:
        prod = layer @ prod / np.linalg.norm(layer)
    y = scale * prod @ x
    inner = MultilinearLeastSquares(((d, d),) * k, target=y, weights=np.full((d, n), 1.0 / (d * n)),
                                    scale=scale, right=x)

    def minimizer(g: np.random.Generator) -> np.ndarray:
        rot = [np.eye(d)] + [_orthogonal(g, d) for _ in range(k - 1)] + [np.eye(d)]
        scales = g.uniform(0.5, 2.0, size=k)
        return np.concatenate([(s * rot[i + 1] @ w @ rot[i].T).ravel() for i, (s, w) in enumerate(zip(scales, layers))])

    return ManifoldModel(inner, (d * d,) * k, block_names=tuple(f"W{i + 1}" for i in range(k)), name="deep_linear_wn",
                         manifold_dim=(k - 1) * d * d - 1, minimizer_fn=minimizer,
                         description=f"deep linear net, {k} layers of width {d}, per-layer weight norm")


def sphere_circle(rng=0, dim: int = 3, ratio: float = 8.0) -> ManifoldModel:
    """The generic wrapper on an f whose minimizers on the sphere form a great circle.

    f(x) = ½ (1 + ρ x₀²) Σ_{i≥2} κ_i x_i²,  κ = linspace(1, ½, dim - 2),  ρ = ``ratio``;  L(w) = f(w/‖w‖).

    Γ = {(cos φ, sin φ, 0, …)}, dim Γ = 1. At θ(φ) the Hessian is (1 + ρ cos²φ) diag(0, 0, κ), so
    λ₁(θ) = 1 + ρ cos²φ, with spectral gap λ₁ (dim = 3) or (κ₂ - κ₃)(1 + ρ cos²φ) (dim > 3), and
    G = ‖∇_Γ log λ₁‖² = (ρ sin 2φ/(1 + ρ cos²φ))², which exceeds 1 for ρ ≳ 2: a model on which the
    4/(4+G) factor of the flow clock is visible. Known in closed form, it is the reference for the
    theory tests.
    """
    as_rng(rng)
    dim = positive_int(dim, "dim", 3)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
        raise TypeError(f"ratio: expected a real number ρ > -1, got {type(ratio).__name__} {ratio!r}")
    if not (np.isfinite(ratio) and ratio > -1):
        raise ValueError(f"ratio: expected a finite ρ > -1 (λ₁ = 1 + ρ cos²φ must stay positive along Γ), got {ratio!r}")
    ratio = float(ratio)
    kappa = np.zeros(dim)
    kappa[2:] = np.linspace(1.0, 0.5, dim - 2)
    e0 = np.zeros(dim)
    e0[0] = 1.0

    def parts(x):
        q, s = 1.0 + ratio * x[0] ** 2, 0.5 * np.sum(kappa * x * x)
        return q, s, 2 * ratio * x[0] * e0, kappa * x

    def f(x):
        q, s, _, _ = parts(x)
        return q * s

    def grad(x):
        q, s, dq, ds = parts(x)
        return dq * s + q * ds

    def hess(x):
        q, s, dq, ds = parts(x)
        return 2 * ratio * s * np.outer(e0, e0) + np.outer(dq, ds) + np.outer(ds, dq) + q * np.diag(kappa)

    def third(x, a, b):
        q, s, dq, ds = parts(x)
        hq = lambda v: 2 * ratio * v[0] * e0  # noqa: E731  (∇²q) v
        hs = lambda v: kappa * v  # noqa: E731  (∇²s) v
        return (a @ hq(b)) * ds + hq(a) * (ds @ b) + hq(b) * (ds @ a) + (dq @ a) * hs(b) + (dq @ b) * hs(a) + (a @ hs(b)) * dq

    def minimizer(g: np.random.Generator) -> np.ndarray:
        phi = g.uniform(0, 2 * np.pi)
        w = np.zeros(dim)
        w[:2] = np.cos(phi), np.sin(phi)
        return w

    inner = SmoothFunction(dim, f, grad, hess, third)
    return ManifoldModel(inner, (dim,), block_names=("w",), name="sphere_circle", manifold_dim=1,
                         minimizer_fn=minimizer,
                         description=f"f(w/|w|) on S^{dim - 1}, minimizers a great circle, sharpness ratio {1 + ratio:g}")
