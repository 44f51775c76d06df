"""The model contract every function in ``theory`` and ``verification`` relies on.

A model is any object with the members below; nothing has to inherit from anything. This is also how
users bring their own model (``srflow verify --model file.py:factory``).

Contract, over flat float64 vectors ``w`` of shape ``(D,)``:

1. ``dim: int`` -- the number of parameters D.
2. ``loss(w) -> float`` -- L(w). For the theory to apply L must be scale-invariant: L(cw) = L(w) for
   all c > 0 (``srflow check-identities`` tests this).
3. ``grad(w) -> (D,)`` -- the exact gradient of L.
4. ``hess(w) -> (D, D)`` -- the exact, symmetric Hessian of L.
5. ``hvp(w, v) -> (D,)`` -- the Hessian-vector product, equal to ``hess(w) @ v``.
6. ``third(w, u, v) -> (D,)`` -- the third-derivative contraction, entry k = sum_ij L_ijk u_i v_j,
   written ∇³L(w)[u, v, ·]; symmetric in u and v.
7. Bad input (wrong shape or dtype, non-finite entries, a point where L is undefined such as w = 0)
   raises ``TypeError``/``ValueError`` whose message names the argument.

Optional members:

8. ``minimizer(rng) -> (D,)`` -- a unit-norm point of the minimizer manifold Γ (local minimizers of L
   on the unit sphere), for a ``np.random.Generator`` ``rng``. A ``minimizer`` that raises ``NotImplementedError``
   (no construction known, e.g. a ``SympyModel`` without ``minimizer_fn``) counts as absent (``minimizer_point``).
9. ``manifold_dim: int`` -- dim Γ (as a submanifold of the unit sphere). At a point θ of Γ the rank
   condition reads rank ∇²L(θ) = D - 1 - dim Γ.
10. ``name: str`` -- a label for reports.
11. ``residual_vector(w) -> (m,)``, ``residual_jvp(w, v) -> (m,)``, ``residual_vjp(w, u) -> (D,)`` -- for a loss
    L = ½‖r(w)‖² that is 0 on Γ: r, J v and Jᵀu (J = ∂r/∂w). Then ∇²L = JᵀJ on Γ, and the matrix-free theory
    (``theory.matrix_free``) gets the normal space of Γ and the Newton step onto Γ from J (the networks of
    ``toy_models.bn_nets`` have them).
12. ``residual_lsqr(w, b, atol, btol, iter_lim) -> (D,)`` -- with item 11, optionally: the minimum-norm solution of
    J x = b by LSQR with scipy's stopping tests, compiled (``toy_models.jax_lsqr``); ``theory.matrix_free`` uses it
    instead of ``scipy.sparse.linalg.lsqr`` on ``residual_jvp``/``residual_vjp`` when present.

All derivatives are exact (closed form or symbolic); finite differences are only used to check them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

REQUIRED_MEMBERS = ("dim", "loss", "grad", "hess", "hvp", "third")


@runtime_checkable
class Model(Protocol):
    """A scale-invariant loss with exact derivatives up to third order (see the module docstring)."""

    dim: int

    def loss(self, w: np.ndarray) -> float: ...

    def grad(self, w: np.ndarray) -> np.ndarray: ...

    def hess(self, w: np.ndarray) -> np.ndarray: ...

    def hvp(self, w: np.ndarray, v: np.ndarray) -> np.ndarray: ...

    def third(self, w: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray: ...


def check_model(model) -> None:
    """Raise ``TypeError`` naming the first protocol member that ``model`` lacks."""
    for member in REQUIRED_MEMBERS:
        if not hasattr(model, member):
            raise TypeError(f"model: missing protocol member {member!r} (needs {', '.join(REQUIRED_MEMBERS)})")
        if member != "dim" and not callable(getattr(model, member)):
            raise TypeError(f"model: protocol member {member!r} must be callable")
    dim = model.dim
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise TypeError(f"model: 'dim' must be a positive integer, got {dim!r}")


def minimizer_point(model, rng) -> np.ndarray | None:
    """``model.minimizer(rng)`` as a float64 array, or None when the model has no minimizer: no such member, or one
    that raises ``NotImplementedError`` (no construction known; item 8)."""
    minimizer = getattr(model, "minimizer", None)
    if minimizer is None:
        return None
    try:
        return np.asarray(minimizer(rng), dtype=np.float64)
    except NotImplementedError:
        return None


def model_name(model) -> str:
    """``model.name`` when present and not empty, else the class name."""
    return str(getattr(model, "name", None) or type(model).__name__)
