"""Blockwise-normalized models: L(w) = f(N(A w)), exact to third order by the chain rule.

Every built-in model is of this form:

* ``A`` (optional, shape (D', D)) is a fixed linear map -- the data matrix of a batch-normalized layer,
  or the tying map U -> (U, Uᵀ) of the symmetric factorization;
* ``N`` normalizes each contiguous block of z = A w to the unit sphere, n_b(z) = z_b / ‖z_b‖;
* ``f`` is a smooth "inner" function on R^{D'} with exact ``value, grad, hvp, hess, third``.

Because N is invariant under positive scaling of each block, L(c w) = L(w) for every c > 0.

Derivatives of one block's normalization n = z/r, r = ‖z‖, P = I - n nᵀ (all symmetric in their
arguments; derived in docs/theory.md §1 and checked against sympy in the tests)::

    n'[a]        = P a / r
    n''[a, b]    = -[(n·b) P a + (n·a) P b + (aᵀ P b) n] / r²
    n'''[a,b,c]  = [ (2(n·b)(n·c) - bᵀPc) P a + (2(n·a)(n·c) - aᵀPc) P b + (2(n·a)(n·b) - aᵀPb) P c
                     + 2 ((n·c) aᵀPb + (n·b) aᵀPc + (n·a) bᵀPc) n ] / r³

and with J = n', g = ∇f(x), H_f = ∇²f(x), x = N(z)::

    ∇_z L          = J g
    ∇²_z L [a, ·]  = J H_f J a + n''[a, ·]ᵀ g
    ∇³_z L [a,b,·] = J ∇³f[Ja, Jb, ·] + n''[a,·]ᵀ H_f J b + n''[b,·]ᵀ H_f J a + J H_f n''[a, b]
                     + n'''[a, b, ·]ᵀ g

and derivatives in w follow by Aᵀ(·) A, exactly, since A is linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .validate import as_vector, frozen_copy


class InnerFunction(Protocol):
    """A smooth function on R^{dim} with exact derivatives (the f of L = f(N(A w)))."""

    dim: int

    def value(self, x: np.ndarray) -> float: ...

    def grad(self, x: np.ndarray) -> np.ndarray: ...

    def hvp(self, x: np.ndarray, a: np.ndarray) -> np.ndarray: ...

    def hess(self, x: np.ndarray) -> np.ndarray: ...

    def third(self, x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


class Blocks:
    """Per-block algebra at one point z: the normalized point n, radii r, and n', n'', n''' contractions."""

    def __init__(self, z: np.ndarray, offsets: np.ndarray, block_of: np.ndarray, radius: np.ndarray | None = None):
        self.offsets, self.block_of = offsets, block_of
        #: one block (most models): the blockwise sums are plain sums, and r a scalar -- the same numbers, without
        #: the reduceat/gather per contraction that dominated a gradient's cost at small D
        self.single = len(offsets) == 1
        if radius is None:
            radius = np.sqrt(np.add.reduceat(z * z, offsets))
        self.r = radius[0] if self.single else radius[block_of]
        self.n = z / self.r

    def dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Blockwise inner products, broadcast back to full length (a scalar for one block)."""
        if self.single:  # reduceat, not reduce: reduce sums pairwise, and the bits would change
            return np.add.reduceat(a * b, self.offsets)[0]
        return np.add.reduceat(a * b, self.offsets)[self.block_of]

    def proj(self, a: np.ndarray) -> np.ndarray:
        return a - self.n * self.dot(self.n, a)

    def d1(self, a: np.ndarray) -> np.ndarray:
        """n'[a] = P a / r (also n'ᵀ a, as n' is symmetric)."""
        return self.proj(a) / self.r

    def d2(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """n''[a, b]."""
        n, na, nb = self.n, self.dot(self.n, a), self.dot(self.n, b)
        pa, pb = self.proj(a), self.proj(b)
        return -(nb * pa + na * pb + self.dot(a, pb) * n) / self.r**2

    def d2_adjoint(self, a: np.ndarray, h: np.ndarray) -> np.ndarray:
        """n''[a, ·]ᵀ h, the vector x -> hᵀ n''[a, x]."""
        n, na, nh = self.n, self.dot(self.n, a), self.dot(self.n, h)
        pa, ph = self.proj(a), self.proj(h)
        return -(self.dot(h, pa) * n + na * ph + nh * pa) / self.r**2

    def d3_adjoint(self, a: np.ndarray, b: np.ndarray, g: np.ndarray) -> np.ndarray:
        """n'''[a, b, ·]ᵀ g."""
        n = self.n
        na, nb, ng = self.dot(n, a), self.dot(n, b), self.dot(n, g)
        pa, pb, pg = self.proj(a), self.proj(b), self.proj(g)
        apb = self.dot(a, pb)
        out = (
            self.dot(g, pa) * (2 * nb * n - pb)
            + self.dot(g, pb) * (2 * na * n - pa)
            + (2 * na * nb - apb) * pg
            + 2 * ng * (apb * n + nb * pa + na * pb)
        )
        return out / self.r**3

    def jacobian(self) -> np.ndarray:
        """n' as a dense block-diagonal matrix."""
        p = np.eye(len(self.n)) - np.outer(self.n, self.n)
        if self.single:
            return p / self.r
        same = self.block_of[:, None] == self.block_of[None, :]
        return np.where(same, p, 0.0) / self.r[:, None]

    def d2_adjoint_matrix(self, g: np.ndarray) -> np.ndarray:
        """The matrix of (a, b) -> gᵀ n''[a, b]: -[P g nᵀ + n (P g)ᵀ + (n·g) P] / r² per block."""
        n, pg, ng = self.n, self.proj(g), self.dot(self.n, g)
        p = np.eye(len(n)) - np.outer(n, n)
        if self.single:
            return -(np.outer(pg, n) + np.outer(n, pg) + ng * p) / self.r**2
        same = self.block_of[:, None] == self.block_of[None, :]
        m = np.outer(pg, n) + np.outer(n, pg) + ng[:, None] * p
        return -np.where(same, m, 0.0) / self.r[:, None] ** 2


@dataclass(frozen=True, eq=False)
class NormalizedModel:
    """L(w) = f(N(A w)): blockwise normalization of a linear image of w, then a smooth f.

    Parameters
    ----------
    inner : InnerFunction
        f, on R^{D'}.
    block_sizes : tuple of int
        Sizes of the contiguous blocks of z = A w that are normalized separately (sum = D').
    linear : array (D', D) or None
        A; ``None`` means the identity (D = D').
    block_names : tuple of str
        Names used in error messages ("block 'U' has zero norm").
    name : str
        Label for reports.
    """

    inner: InnerFunction
    block_sizes: tuple[int, ...]
    linear: np.ndarray | None = None
    block_names: tuple[str, ...] = ()
    name: str | None = None
    _offsets: np.ndarray = field(init=False, repr=False)
    _block_of: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.block_sizes)
        if not sizes or min(sizes) < 1 or sum(sizes) != self.inner.dim:
            raise ValueError(f"block_sizes: expected positive sizes summing to inner.dim={self.inner.dim}, got {sizes}")
        object.__setattr__(self, "block_sizes", sizes)
        if self.linear is not None:
            lin = frozen_copy(self.linear)
            if lin.ndim != 2 or lin.shape[0] != self.inner.dim:
                raise ValueError(f"linear: expected shape ({self.inner.dim}, D), got {lin.shape}")
            object.__setattr__(self, "linear", lin)
        names = tuple(self.block_names) or tuple(f"block{i}" for i in range(len(sizes)))
        if len(names) != len(sizes):
            raise ValueError(f"block_names: expected {len(sizes)} names, got {len(names)}")
        object.__setattr__(self, "block_names", names)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        block_of = np.repeat(np.arange(len(sizes)), sizes)
        for arr in (offsets, block_of):
            arr.setflags(write=False)
        object.__setattr__(self, "_offsets", offsets)
        object.__setattr__(self, "_block_of", block_of)

    @property
    def dim(self) -> int:
        return self.inner.dim if self.linear is None else self.linear.shape[1]

    # -- internals -------------------------------------------------------------------------------
    def _lift(self, v: np.ndarray) -> np.ndarray:
        return v if self.linear is None else self.linear @ v

    def _pull(self, v: np.ndarray) -> np.ndarray:
        return v if self.linear is None else self.linear.T @ v

    def _at(self, w) -> Blocks:
        w = as_vector(w, "w", self.dim)
        z = self._lift(w)
        with np.errstate(over="ignore", under="ignore"):
            radius = np.sqrt(np.add.reduceat(z * z, self._offsets))
        if np.isfinite(radius).all() and radius.all():
            return Blocks(z, self._offsets, self._block_of, radius)
        if not np.all(np.isfinite(radius)):
            b = int(np.flatnonzero(~np.isfinite(radius))[0])
            raise ValueError(
                f"w: the squared norm of block {self.block_names[b]!r} overflows float64 (largest |entry| "
                f"{np.max(np.abs(z)):.3g}); expected entries below ~1e150 (the loss is scale-invariant: rescale w)"
            )
        if np.any(radius == 0.0):
            b = int(np.flatnonzero(radius == 0.0)[0])
            raise ValueError(
                f"w: block {self.block_names[b]!r} has zero norm; the loss is scale-invariant in that "
                "block and undefined there (expected a nonzero block)"
            )
        return Blocks(z, self._offsets, self._block_of)

    # -- the protocol ----------------------------------------------------------------------------
    def loss(self, w) -> float:
        """L(w) = f(N(A w))."""
        return float(self.inner.value(self._at(w).n))

    def grad(self, w) -> np.ndarray:
        """∇L = Aᵀ n'ᵀ ∇f."""
        blk = self._at(w)
        return self._pull(blk.d1(self.inner.grad(blk.n)))

    def hvp(self, w, v) -> np.ndarray:
        """∇²L v = Aᵀ (J H_f J a + n''[a, ·]ᵀ g), a = A v."""
        blk = self._at(w)
        a = self._lift(as_vector(v, "v", self.dim))
        x = blk.n
        hz = blk.d1(self.inner.hvp(x, blk.d1(a))) + blk.d2_adjoint(a, self.inner.grad(x))
        return self._pull(hz)

    def hess(self, w) -> np.ndarray:
        """∇²L = Aᵀ (J H_f J + M_g) A with M_g the matrix of gᵀ n''."""
        blk = self._at(w)
        jac = blk.jacobian()
        hz = jac @ self.inner.hess(blk.n) @ jac + blk.d2_adjoint_matrix(self.inner.grad(blk.n))
        hz = 0.5 * (hz + hz.T)
        return hz if self.linear is None else self.linear.T @ hz @ self.linear

    def third(self, w, u, v) -> np.ndarray:
        """∇³L[u, v, ·] by the chain rule in the module docstring."""
        blk = self._at(w)
        a = self._lift(as_vector(u, "u", self.dim))
        b = self._lift(as_vector(v, "v", self.dim))
        x, f = blk.n, self.inner
        ja, jb = blk.d1(a), blk.d1(b)
        tz = (
            blk.d1(f.third(x, ja, jb))
            + blk.d2_adjoint(a, f.hvp(x, jb))
            + blk.d2_adjoint(b, f.hvp(x, ja))
            + blk.d1(f.hvp(x, blk.d2(a, b)))
            + blk.d3_adjoint(a, b, f.grad(x))
        )
        return self._pull(tz)

    def split(self, w) -> dict[str, np.ndarray]:
        """The blocks of z = A w by name (for inspection; copies)."""
        z = self._lift(as_vector(w, "w", self.dim))
        return {name: z[o : o + s].copy() for name, o, s in zip(self.block_names, self._offsets, self.block_sizes)}
