"""The generic wrapper L(w) = f(w/‖w‖) for any smooth f given with its exact derivatives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .validate import positive_int
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


def wrap(dim: int, f, grad, hess, third, hvp=None, name: str | None = None) -> NormalizedModel:
    """L(w) = f(w/‖w‖) for a smooth f: R^dim -> R with exact ``grad``, ``hess``, ``third``.

    The chain rule through w -> w/‖w‖ (see ``toy_models.normalized``) makes every derivative of L
    exact given exact derivatives of f. The result is scale-invariant by construction.

    >>> import numpy as np
    >>> m = wrap(2, lambda x: x[0], lambda x: np.array([1.0, 0.0]), lambda x: np.zeros((2, 2)),
    ...          lambda x, a, b: np.zeros(2))
    >>> round(m.loss(np.array([3.0, 4.0])), 12)
    0.6
    """
    dim = positive_int(dim, "dim")
    inner = SmoothFunction(dim, f, grad, hess, third, hvp)
    return NormalizedModel(inner, (dim,), block_names=("w",), name=name)
