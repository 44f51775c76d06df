"""Sharpness: top eigenpairs of ∇²L, spherical sharpness, effective learning rate, spectral gap.

docs/theory.md §1: spherical sharpness λ₁(∇²L(w̄)) = ‖w‖² λ₁(∇²L(w)), since ∇²L has degree -2; the effective
learning rate of GD+WD's direction is η_eff = η/((1 - ηλ)‖w‖²) (η/‖w‖² without weight decay).
Always the largest *algebraic* eigenvalues (``eigh`` ordering, or ``eigsh(which="LA")``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from srflow.toy_models.validate import as_vector, positive_int, positive_real, real_array

from .gamma import finite

#: The one switch between dense and matrix-free theory: up to this D, ``eigh`` of ``model.hess`` and the stiff
#: flow with its Jacobian; above it only ``grad``/``hvp``/``third`` (Lanczos, ``theory.matrix_free``), so no
#: D×D matrix is built (a 400² Hessian is 1.3 MB and one ``eigh`` ~10 ms; the stiff solver's Jacobian is re-factorized).
DENSE_MAX_DIM = 400


def is_dense(model) -> bool:
    """Whether theory uses dense D×D matrices for ``model`` (D ≤ DENSE_MAX_DIM)."""
    return model.dim <= DENSE_MAX_DIM


def _hessian(model, w: np.ndarray) -> np.ndarray:
    """``model.hess(w)``, or ``theory.gamma.Diverged`` when it overflowed (eigh would only say "infs or NaNs")."""
    return finite(model.hess(w), "∇²L(w)", f"at ‖w‖ = {np.linalg.norm(w):.4g}")


@dataclass(frozen=True, eq=False)
class Eigenpairs:
    """The k largest algebraic eigenpairs, descending: ``values`` (k,), ``vectors`` (D, k).

    ``residuals[i] = ‖∇²L v_i - λ_i v_i‖``; ``converged`` is False when Lanczos stopped early.
    """

    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray
    converged: bool
    method: str

    @property
    def gap(self) -> float:
        """λ₁ - λ₂ (inf when only one eigenvalue was asked for)."""
        return float(self.values[0] - self.values[1]) if len(self.values) > 1 else float("inf")


def top_eigenpairs(model, w, k: int = 2, method: str = "auto", v0: np.ndarray | None = None,
                   tol: float = 1e-12) -> Eigenpairs:
    """The ``k`` largest algebraic eigenpairs of ∇²L(w).

    ``method``: "dense" (``numpy.linalg.eigh`` of ``model.hess``), "lanczos" (``eigsh`` on a
    ``LinearOperator`` of ``model.hvp``, which="LA", warm-started from ``v0``), or "auto" (dense for
    D ≤ DENSE_MAX_DIM).
    """
    w = as_vector(w, "w", model.dim)
    k = positive_int(k, "k")
    if not 1 <= k <= model.dim:
        raise ValueError(f"k: expected 1 <= k <= D = {model.dim}, got {k}")
    if v0 is not None:
        v0 = as_vector(v0, "v0", model.dim)
    positive_real(tol, "tol")
    if method == "auto":
        method = "dense" if is_dense(model) else "lanczos"
    converged = True
    if method == "dense":
        vals, vecs = np.linalg.eigh(_hessian(model, w))
        vals, vecs = vals[::-1][:k], vecs[:, ::-1][:, :k]
    elif method == "lanczos":
        if k >= model.dim - 1:
            raise ValueError(f"k: Lanczos needs k < D - 1 = {model.dim - 1}; use method='dense'")
        op = LinearOperator((model.dim, model.dim), matvec=lambda v: model.hvp(w, np.ravel(v)), dtype=np.float64)
        try:
            vals, vecs = eigsh(op, k=k, which="LA", v0=v0, tol=tol)
        except ArpackNoConvergence as exc:
            vals, vecs, converged = exc.eigenvalues, exc.eigenvectors, False
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
    else:
        raise ValueError(f"method: expected 'auto', 'dense' or 'lanczos', got {method!r}")
    res = np.array([np.linalg.norm(model.hvp(w, vecs[:, i]) - vals[i] * vecs[:, i]) for i in range(len(vals))])
    return Eigenpairs(np.asarray(vals), np.asarray(vecs), res, converged, method)


def sharpness(model, w, v0: np.ndarray | None = None) -> float:
    """λ₁(∇²L(w)), the largest algebraic eigenvalue: ``eigvalsh`` of the Hessian when ``is_dense(model)``,
    else Lanczos on HVPs warm-started from ``v0``."""
    if is_dense(model):
        return float(np.linalg.eigvalsh(_hessian(model, as_vector(w, "w", model.dim)))[-1])
    return float(top_eigenpairs(model, w, k=1, method="lanczos", v0=v0).values[0])


def spherical_sharpness(model, w) -> float:
    """λ₁(∇²L(w̄)) = ‖w‖² λ₁(∇²L(w)), w̄ = w/‖w‖."""
    w = as_vector(w, "w", model.dim)
    return float(w @ w) * sharpness(model, w)


def spectral_gap(model, w) -> float:
    """λ₁ - λ₂ of ∇²L(w)."""
    return top_eigenpairs(model, w, k=2).gap


def check_hyperparameters(lr: float, wd: float = 0.0) -> None:
    """η > 0, λ ≥ 0, ηλ < 1 -- or a ValueError naming the argument (TypeError for a non-number such as '0.1')."""
    for name, x in (("lr", lr), ("wd", wd)):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected a real number, got {type(x).__name__} {x!r}")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: expected a learning rate η > 0, got {lr!r}")
    if not np.isfinite(wd) or wd < 0:
        raise ValueError(f"wd: expected a weight decay λ >= 0, got {wd!r}")
    if lr * wd >= 1:
        raise ValueError(f"lr, wd: expected ηλ < 1 (else the iterates do not contract), got ηλ = {lr * wd!r}")


def effective_lr(lr: float, w, wd: float = 0.0) -> float:
    """η_eff = η/((1 - ηλ)‖w‖²): the step of the direction map w̄ -> w̄' of GD+WD (η/‖w‖² when λ = 0)."""
    check_hyperparameters(lr, wd)
    w = real_array(w, "w", ndim=1)
    with np.errstate(over="ignore", under="ignore"):
        norm_sq = float(w @ w)
    if not 0 < norm_sq < np.inf:
        raise ValueError(f"w: expected a nonzero vector whose ‖w‖² is finite in float64, got ‖w‖² = {norm_sq:g}")
    return lr / ((1.0 - lr * wd) * norm_sq)
