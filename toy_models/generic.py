"""The generic wrapper L(w) = f(w/‖w‖) for any smooth f given with its exact derivatives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .validate import as_rng, positive_int
from .normalized import NormalizedModel


@dataclass(frozen=True, eq=False)
class SmoothFunction:
    """An inner function built from user callables: f(x), ∇f(x), ∇²f(x), ∇³f(x)[a, b, ·].

    ``hvp`` defaults to ``hess(x) @ a``.
    """

    dim: int
    f: Callable[[np.ndarray], float]
    gradient: Callable[[np.ndarray], np.ndarray]
    hessian: Callable[[np.ndarray], np.ndarray]
    third_contraction: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    hessian_vector: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    def value(self, x):
        return float(self.f(x))

    def grad(self, x):
        return np.asarray(self.gradient(x), dtype=np.float64)

    def hess(self, x):
        return np.asarray(self.hessian(x), dtype=np.float64)

    def hvp(self, x, a):
        if self.hessian_vector is not None:
            return np.asarray(self.hessian_vector(x, a), dtype=np.float64)
        return self.hess(x) @ a

    def third(self, x, a, b):
        return np.asarray(self.third_contraction(x, a, b), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class WrappedModel(NormalizedModel):
    """``wrap``'s model when Γ is known: protocol items 8-9 (``minimizer(rng)``, a unit-norm point of Γ from
    ``minimizer_fn(rng)`` renormalized, and ``manifold_dim``, dim Γ on the unit sphere, or None if not stated)."""

    minimizer_fn: Callable | None = None
    manifold_dim: int | None = None

    @property
    def minimizer(self):
        """The bound method ``rng -> θ``; absent (``hasattr`` False, as the protocol reads it) without ``minimizer_fn``."""
        if self.minimizer_fn is None:
            raise AttributeError("minimizer: this wrapped model was given no minimizer")
        return self._minimizer

    def _minimizer(self, rng) -> np.ndarray:
        w = np.asarray(self.minimizer_fn(as_rng(rng)), dtype=np.float64)
        if w.shape != (self.dim,) or not np.all(np.isfinite(w)) or not np.linalg.norm(w) > 0:
            raise ValueError(f"minimizer: expected a finite nonzero vector of shape ({self.dim},), got shape {w.shape}")
        return w / np.linalg.norm(w)


def wrap(dim: int, f, grad, hess, third, hvp=None, name: str | None = None, minimizer=None,
         manifold_dim: int | None = None) -> NormalizedModel:
    """L(w) = f(w/‖w‖) for a smooth f: R^dim -> R with exact ``grad``, ``hess``, ``third`` (f and its derivatives
    in ambient coordinates of R^dim: ``grad(x)`` is ∇f(x), ``hess(x)`` ∇²f(x), ``third(x, a, b)`` ∇³f(x)[a, b, ·]).

    The chain rule through w -> w/‖w‖ (see ``toy_models.normalized``) makes every derivative of L
    exact given exact derivatives of f. The result is scale-invariant by construction. ``minimizer(rng)``
    (optional) returns a point of Γ (renormalized to the unit sphere) and ``manifold_dim`` (optional) states dim Γ;
    with neither, the model has no ``minimizer`` and srflow finds Γ by the flow.

    >>> import numpy as np
    >>> m = wrap(2, lambda x: x[0], lambda x: np.array([1.0, 0.0]), lambda x: np.zeros((2, 2)),
    ...          lambda x, a, b: np.zeros(2))
    >>> round(m.loss(np.array([3.0, 4.0])), 12)
    0.6
    """
    dim = positive_int(dim, "dim")
    inner = SmoothFunction(dim, f, grad, hess, third, hvp)
    if minimizer is None and manifold_dim is None:
        return NormalizedModel(inner, (dim,), block_names=("w",), name=name)
    if minimizer is not None and not callable(minimizer):
        raise TypeError(f"minimizer: expected a callable rng -> (dim,) point of Γ, got {type(minimizer).__name__}")
    if manifold_dim is not None:
        manifold_dim = positive_int(manifold_dim, "manifold_dim", 0)
        if manifold_dim > dim - 2:
            raise ValueError(f"manifold_dim: expected dim Γ ≤ dim - 2 = {dim - 2} (Γ lies in the unit sphere of a "
                             f"non-constant loss), got {manifold_dim}")
    return WrappedModel(inner, (dim,), block_names=("w",), name=name, minimizer_fn=minimizer,
                        manifold_dim=manifold_dim)
