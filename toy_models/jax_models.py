"""JAX models: a protocol model from a scalar loss written in ``jax.numpy``, every derivative by autodiff.

``from_jax(loss, w0_or_dim)`` takes L as a JAX function of a flat vector (give the dimension D) or of a
pytree (give an example pytree; it is flattened with ``jax.flatten_util.ravel_pytree``) and returns a
``JaxModel``: the protocol of ``toy_models.protocol`` with numpy arrays at the boundary, and

* ``grad(w)``     = ∇L(w)                     reverse mode (``jax.grad``)
* ``hvp(w, v)``   = ∇²L(w) v                  forward over reverse (``jax.jvp`` of ``jax.grad``)
* ``third(w, u, v)`` = ∇³L(w)[u, v, ·]         the JVP of w -> ∇²L(w) u along v (nested JVP of the HVP)
* ``hess(w)``     = ∇²L(w)                    ``jax.hessian``, only for D ≤ ``HESS_MAX_DIM``

all ``jit``-compiled on first use. ``jax_loss`` is the loss as a JAX function of the flat vector: the
compiled simulator (``verification.compiled``) builds its update from it. float64 is enabled on import
(``jax_enable_x64``): srflow compares derivatives to round-off.

A ``JaxModel`` pickles when its loss does (a module-level function, or a ``functools.partial`` of one):
the compiled functions are dropped and re-made on first use in the receiving process. A model built with
``_spec=(function, args)`` is rebuilt as ``function(*args)``: the JAX twins of the registered models
(``toy_models.jax_losses.make_jax_model``, from their registry name, seed and sizes) and the networks of
``toy_models.bn_nets``.

>>> import jax.numpy as jnp
>>> m = from_jax(lambda w: 0.5 * (w[0] / jnp.linalg.norm(w)) ** 2, 2, name="demo")
>>> round(m.loss([3.0, 4.0]), 12), m.grad([1.0, 0.0]).tolist()
(0.18, [0.0, 0.0])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .cache import cache_dir
from .validate import as_rng, as_vector, positive_int

jax.config.update("jax_enable_x64", True)


def use_compilation_cache() -> Path | None:
    """JAX's persistent compilation cache in ``cache_dir()/jax`` (``toy_models.cache``: $SRFLOW_CACHE_DIR, else
    ~/.cache/srflow), so that an executable compiled once is loaded, not compiled again, by every later process
    -- srflow verify's workers, a rerun, another rung's chunk of the same shape, another model closure with the same
    program -- keyed by JAX on the program, the compile options, the backend and its own version. Compiling is most
    of a short JAX check: ``flow-tracking --quick`` on the JAX twin of mf took 64 s in a new process and 11 s with
    the cache warm (2026-12-05, under load). Not used where the cache is disabled (SRFLOW_CACHE_DIR empty) or
    SRFLOW_JAX_CACHE=0, nor where the user has set ``jax_compilation_cache_dir`` already. Every compilation is
    kept (no minimum compile time: srflow's are mostly 0.1-1 s, and many). Returns the directory used, or None."""
    if os.environ.get("SRFLOW_JAX_CACHE", "1") == "0" or jax.config.jax_compilation_cache_dir:
        return None
    root = cache_dir()
    if root is None:
        return None
    path = root / "jax"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable cache is a slower run, not an error
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


use_compilation_cache()

#: ``hess`` builds the dense D×D Hessian only up to this D (2048² float64 = 32 MB, D HVPs); above it,
#: it raises and callers use ``hvp`` (theory goes matrix-free well below this, see theory.sharpness)
HESS_MAX_DIM = 2048


def _derivatives(flat_loss: Callable) -> dict[str, Callable]:
    """The jit-compiled loss, gradient, HVP, third contraction and Hessian of a flat-vector loss."""
    grad = jax.grad(flat_loss)

    def hvp(w, v):
        return jax.jvp(grad, (w,), (v,))[1]

    def third(w, u, v):
        return jax.jvp(lambda x: hvp(x, u), (w,), (v,))[1]

    return {"loss": jax.jit(flat_loss), "grad": jax.jit(grad), "hvp": jax.jit(hvp), "third": jax.jit(third),
            "hess": jax.jit(jax.hessian(flat_loss))}


class JaxModel:
    """A protocol model from a JAX loss (see the module docstring). Build it with ``from_jax``.

    Parameters
    ----------
    loss : callable
        L, a JAX scalar function of ``template``'s structure (a flat vector when ``template`` is a vector).
    template : array or pytree
        An example argument of ``loss``; D = its number of entries.
    name, manifold_dim, minimizer_fn, description
        As for the numpy models (protocol items 8-10); ``minimizer_fn(rng)`` returns a point of Γ.
    """

    def __init__(self, loss: Callable, template, name: str | None = None, manifold_dim: int | None = None,
                 minimizer_fn: Callable | None = None, description: str = "", _spec: tuple | None = None):
        if not callable(loss):
            raise TypeError(f"loss: expected a callable JAX function, got {type(loss).__name__}")
        flat, unravel = ravel_pytree(jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=jnp.float64), template))
        if flat.ndim != 1 or flat.size < 1:
            raise ValueError(f"w0_or_dim: expected at least one parameter, got {flat.size}")
        self.loss_fn, self.template, self.name = loss, template, name
        self.manifold_dim, self.minimizer_fn, self.description = manifold_dim, minimizer_fn, description
        self.dim = int(flat.size)
        self._unravel = unravel
        self._spec = _spec
        self._compiled: dict | None = None
        if minimizer_fn is not None:  # optional protocol member: absent (hasattr False) without a construction
            self.minimizer = self._minimizer

    # -- the JAX side ----------------------------------------------------------------------------------
    def jax_loss(self, w):
        """L as a JAX function of the flat vector w (traceable, not compiled)."""
        return self.loss_fn(self._unravel(w))

    @property
    def _fns(self) -> dict:
        if self._compiled is None:
            self._compiled = _derivatives(self.jax_loss)
        return self._compiled

    # -- the protocol, numpy at the boundary ------------------------------------------------------------
    def _point(self, w) -> np.ndarray:
        w = as_vector(w, "w", self.dim)
        if not np.any(w):
            raise ValueError("w: expected a nonzero vector; a scale-invariant loss is undefined at w = 0")
        return w

    def _out(self, what: str, value, w: np.ndarray) -> np.ndarray:
        out = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(out)):
            raise ValueError(f"w: the {what} is not finite at this w (‖w‖ = {np.linalg.norm(w):.3g}); "
                             "the loss is undefined there (a block of zero norm?)")
        return out

    def loss(self, w) -> float:
        """L(w)."""
        w = self._point(w)
        return float(self._out("loss", self._fns["loss"](w), w))

    def grad(self, w) -> np.ndarray:
        """∇L(w), reverse mode."""
        w = self._point(w)
        return self._out("gradient", self._fns["grad"](w), w)

    def hvp(self, w, v) -> np.ndarray:
        """∇²L(w) v, forward over reverse."""
        w = self._point(w)
        return self._out("HVP", self._fns["hvp"](w, as_vector(v, "v", self.dim)), w)

    def third(self, w, u, v) -> np.ndarray:
        """∇³L(w)[u, v, ·], the JVP along v of w -> ∇²L(w) u."""
        w = self._point(w)
        return self._out("third derivative", self._fns["third"](w, as_vector(u, "u", self.dim),
                                                                as_vector(v, "v", self.dim)), w)

    def hess(self, w) -> np.ndarray:
        """∇²L(w), dense, symmetrized; only for D ≤ HESS_MAX_DIM."""
        if self.dim > HESS_MAX_DIM:
            raise ValueError(f"w: a dense Hessian needs D ≤ HESS_MAX_DIM = {HESS_MAX_DIM}, this model has "
                             f"D = {self.dim}; use hvp (theory is matrix-free at this size)")
        w = self._point(w)
        h = self._out("Hessian", self._fns["hess"](w), w)
        return 0.5 * (h + h.T)

    def _minimizer(self, rng) -> np.ndarray:
        """A unit-norm point of Γ (protocol item 8), from ``minimizer_fn``."""
        w = np.asarray(self.minimizer_fn(as_rng(rng)), dtype=np.float64)
        return w / np.linalg.norm(w)

    # -- pickling: keep the loss, drop the compiled functions --------------------------------------------
    def __reduce__(self):
        if self._spec is not None:  # (rebuild function, its arguments)
            return self._spec
        return (_rebuild, (self.loss_fn, self.template, self.name, self.manifold_dim, self.minimizer_fn,
                           self.description))

    def __repr__(self) -> str:
        return f"JaxModel(name={self.name!r}, dim={self.dim})"


def _rebuild(loss, template, name, manifold_dim, minimizer_fn, description) -> JaxModel:
    return JaxModel(loss, template, name, manifold_dim, minimizer_fn, description)


def from_jax(loss: Callable, w0_or_dim, name: str | None = None, manifold_dim: int | None = None,
             minimizer: Callable | None = None, description: str = "") -> JaxModel:
    """A protocol model from a JAX scalar loss: L(w) = ``loss(w)``, derivatives by autodiff.

    ``w0_or_dim``: D (``loss`` takes a flat vector of length D), or an example argument of ``loss`` -- a
    vector or a pytree of arrays (dicts, tuples, ...), flattened in ``ravel_pytree`` order. ``minimizer(rng)``
    (optional) returns a point of Γ as a flat vector. For srflow's theory L must be scale-invariant,
    L(cw) = L(w) for c > 0 (``srflow check-identities`` and ``srflow verify`` check it).
    """
    if isinstance(w0_or_dim, (int, np.integer)) and not isinstance(w0_or_dim, bool):
        template = np.zeros(positive_int(w0_or_dim, "w0_or_dim"))
    else:
        template = w0_or_dim
    return JaxModel(loss, template, name=name, manifold_dim=manifold_dim, minimizer_fn=minimizer,
                    description=description)
