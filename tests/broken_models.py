"""Deliberately broken models: each one must fail specific checks (the negative controls)."""

from __future__ import annotations

import numpy as np


class Perturbed:
    """Delegates to ``base``, then adds the perturbation methods defined by a subclass."""

    def __init__(self, base, eps: float = 1e-5):
        self.base, self.eps, self.dim = base, eps, base.dim
        self.name = f"{type(self).__name__}({base.name})"

    def loss(self, w):
        return self.base.loss(w)

    def grad(self, w):
        return self.base.grad(w)

    def hess(self, w):
        return self.base.hess(w)

    def hvp(self, w, v):
        return self.hess(w) @ v

    def third(self, w, u, v):
        return self.base.third(w, u, v)

    def _size(self, w):
        return np.linalg.norm(self.base.hess(w), 2)


class WrongGrad(Perturbed):
    """∇L off by a relative eps in one coordinate."""

    def grad(self, w):
        g = self.base.grad(w).copy()
        g[0] += self.eps * self._size(w) * np.linalg.norm(w)
        return g


class WrongHessian(Perturbed):
    """∇²L off by a symmetric relative eps (hvp consistent with it)."""

    def hess(self, w):
        h = self.base.hess(w).copy()
        h[0, 0] += self.eps * self._size(w)
        return h


class NonsymmetricHessian(Perturbed):
    def hess(self, w):
        h = self.base.hess(w).copy()
        h[0, -1] += self.eps * self._size(w)
        return h


class InconsistentHvp(Perturbed):
    def hvp(self, w, v):
        return self.base.hvp(w, v) * (1 + self.eps)


class WrongThird(Perturbed):
    """∇³L[u, v] + eps (u·v) e_0: symmetric in (u, v) only, and not the derivative of ∇²L."""

    def third(self, w, u, v):
        t = self.base.third(w, u, v).copy()
        t[0] += self.eps * np.linalg.norm(self.base.third(w, u, v)) * (u @ v)
        return t


class NotScaleInvariant(Perturbed):
    """L(w) + (eps/4)‖w‖⁴ with exact derivatives: every derivative check passes, no scale identity does."""

    def loss(self, w):
        return self.base.loss(w) + 0.25 * self.eps * (w @ w) ** 2

    def grad(self, w):
        return self.base.grad(w) + self.eps * (w @ w) * w

    def hess(self, w):
        return self.base.hess(w) + self.eps * ((w @ w) * np.eye(self.dim) + 2 * np.outer(w, w))

    def third(self, w, u, v):
        return self.base.third(w, u, v) + 2 * self.eps * ((u @ v) * w + (w @ v) * u + (w @ u) * v)

    def _size(self, w):  # pragma: no cover - not used
        return 1.0


SCALE_IDENTITIES = ("invariance", "euler-grad", "grad-degree", "hess-degree", "third-degree", "hess-radial",
                    "third-radial")

#: identity -> the broken model class that must fail it
MUST_FAIL = {name: NotScaleInvariant for name in SCALE_IDENTITIES} | {
    "hess-symmetric": NonsymmetricHessian,
    "hvp-hess": InconsistentHvp,
    "third-symmetric": WrongThird,
    "fd-grad": WrongGrad,
    "fd-hess": WrongHessian,
    "fd-third": WrongThird,
}


class NaNInside:
    """Delegates to ``base`` but its gradient is NaN inside the ball ‖w‖² < ``norm_sq``: the theory (which works
    at unit norm) is fine, a GD+WD run at the EoS norm diverges at once."""

    def __init__(self, base, norm_sq: float = 0.5):
        self.base, self.norm_sq, self.dim, self.name = base, norm_sq, base.dim, f"NaNInside({base.name})"
        self.loss, self.hess, self.hvp, self.third = base.loss, base.hess, base.hvp, base.third
        self.minimizer = base.minimizer

    def grad(self, w):
        return self.base.grad(w) * (np.nan if w @ w < self.norm_sq else 1.0)


def degenerate_top(dim: int = 4):
    """L(w) = f(w/‖w‖), f(x) = ½(x₂² + x₃²): Γ is the circle in the (x₀, x₁) plane, and the top eigenvalue
    of ∇²L on Γ is double (λ₁ = λ₂ = 1): no spectral gap anywhere, ∇λ₁ undefined."""
    import dataclasses

    from srflow.toy_models import wrap
    from srflow.toy_models.families import ManifoldModel

    mask = np.zeros(dim)
    mask[2:] = 1.0
    model = wrap(dim, lambda x: 0.5 * np.sum(mask * x * x), lambda x: mask * x, lambda x: np.diag(mask),
                 lambda x, a, b: np.zeros(dim), name="degenerate_top")
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.init}
    return ManifoldModel(**fields, manifold_dim=1, minimizer_fn=lambda rng: np.eye(dim)[0])
