"""Weighted least squares of a multilinear predictor, with exact derivatives to third order.

    f(Z_1, ..., Z_L) = ½ Σ_ij Ω_ij (E_ij)²,   E = c · Lft Z_L ⋯ Z_1 Rgt - Y

with fixed ``left`` (Lft) and ``right`` (Rgt) matrices (identity when ``None``). Writing p(Z) for the
product and D_a = c p'[a] (sum over factors of the product with factor l replaced by a_l)::

    ∇_j f          = c ∂_j ⟨Ω⊙E, p⟩
    ∇²f[a, ·]_j    = ∂_j ⟨Ω⊙D_a, c p⟩ + c Σ_{l≠j} ∂_j ⟨Ω⊙E, p with a at l⟩
    ∇³f[a, b, ·]_j = ∂_j of  ⟨Ω⊙D_b, c p''[a,·]⟩ + ⟨Ω⊙D_a, c p''[b,·]⟩ + ⟨Ω⊙D_ab, c p'[·]⟩
                     + ⟨Ω⊙E, c p'''[a, b, ·]⟩

where ∂_j ⟨G, M_K ⋯ M_0⟩ = (M_K ⋯ M_{j+1})ᵀ G (M_{j-1} ⋯ M_0)ᵀ. The matrix-factorization, deep linear and
batch-normalized models all use this with different factors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from itertools import permutations

import numpy as np

from .validate import frozen_copy


def _chain(mats: list[np.ndarray]) -> np.ndarray | None:
    """mats[-1] @ ... @ mats[0], or None for an empty list (the identity)."""
    return reduce(lambda acc, m: m @ acc, mats[1:], mats[0]) if mats else None


def _factor_grad(mats: list[np.ndarray], j: int, g: np.ndarray) -> np.ndarray:
    """Gradient of ⟨G, mats[-1] ⋯ mats[0]⟩ with respect to mats[j]."""
    pre, post = _chain(mats[:j]), _chain(mats[j + 1 :])
    out = g if post is None else post.T @ g
    return out if pre is None else out @ pre.T


def _replace(mats: list[np.ndarray], subs: dict[int, np.ndarray]) -> list[np.ndarray]:
    return [subs.get(i, m) for i, m in enumerate(mats)]


@dataclass(frozen=True, eq=False)
class MultilinearLeastSquares:
    """f(Z) = ½ Σ Ω ⊙ (c · Lft Z_L ⋯ Z_1 Rgt - Y)² over the flattened factors (Z_1 first, row-major)."""

    shapes: tuple[tuple[int, int], ...]
    target: np.ndarray
    weights: np.ndarray
    scale: float = 1.0
    left: np.ndarray | None = None
    right: np.ndarray | None = None
    _sizes: tuple[int, ...] = field(init=False, repr=False)
    _bounds: tuple[tuple[int, int], ...] = field(init=False, repr=False)

    def __post_init__(self):
        shapes = tuple((int(a), int(b)) for a, b in self.shapes)
        object.__setattr__(self, "shapes", shapes)
        for name in ("target", "weights", "left", "right"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, frozen_copy(getattr(self, name)))
        for (r1, _), (_, c2) in zip(shapes[:-1], shapes[1:]):
            if r1 != c2:
                raise ValueError(f"shapes: consecutive factors do not chain: {shapes}")
        rows = shapes[-1][0] if self.left is None else self.left.shape[0]
        cols = shapes[0][1] if self.right is None else self.right.shape[1]
        if self.left is not None and self.left.shape[1] != shapes[-1][0]:
            raise ValueError(f"left: expected {shapes[-1][0]} columns, got shape {self.left.shape}")
        if self.right is not None and self.right.shape[0] != shapes[0][1]:
            raise ValueError(f"right: expected {shapes[0][1]} rows, got shape {self.right.shape}")
        for name in ("target", "weights"):
            if getattr(self, name).shape != (rows, cols):
                raise ValueError(f"{name}: expected shape {(rows, cols)}, got {getattr(self, name).shape}")
        object.__setattr__(self, "_sizes", tuple(a * b for a, b in shapes))
        ends = np.cumsum(self._sizes)
        object.__setattr__(self, "_bounds", tuple(zip((0, *ends[:-1].tolist()), ends.tolist())))

    @property
    def dim(self) -> int:
        return sum(self._sizes)

    # -- helpers -----------------------------------------------------------------------------------
    @property
    def _first(self) -> int:
        """Position of Z_1 in the list of all matrices of the product."""
        return 0 if self.right is None else 1

    def _mats(self, factors: list[np.ndarray]) -> list[np.ndarray]:
        head = [] if self.right is None else [self.right]
        tail = [] if self.left is None else [self.left]
        return head + factors + tail

    def _unflatten(self, x: np.ndarray) -> list[np.ndarray]:
        return [x[a:b].reshape(s) for (a, b), s in zip(self._bounds, self.shapes)]

    def _flat_grads(self, terms) -> np.ndarray:
        """c · Σ over terms (mats, G, used) of ∂_j ⟨G, product of mats⟩ for each factor j not in used."""
        out = []
        for j in range(len(self.shapes)):
            pos = self._first + j
            acc = np.zeros(self.shapes[j])
            for mats, g, used in terms:
                if pos not in used:
                    acc += _factor_grad(mats, pos, g)
            out.append(acc.ravel())
        return self.scale * np.concatenate(out)

    def _dprod(self, mats: list[np.ndarray], subs_list: list[dict[int, np.ndarray]]) -> np.ndarray:
        return self.scale * sum(_chain(_replace(mats, s)) for s in subs_list)

    def _positions(self) -> range:
        return range(self._first, self._first + len(self.shapes))

    # -- inner-function interface ---------------------------------------------------------------------
    def residual(self, x: np.ndarray) -> np.ndarray:
        """E = c · Lft Z_L ⋯ Z_1 Rgt - Y."""
        return self.scale * _chain(self._mats(self._unflatten(x))) - self.target

    def value(self, x: np.ndarray) -> float:
        return 0.5 * float(np.sum(self.weights * self.residual(x) ** 2))

    def grad(self, x: np.ndarray) -> np.ndarray:
        mats = self._mats(self._unflatten(x))
        return self._flat_grads([(mats, self.weights * (self.scale * _chain(mats) - self.target), ())])

    def hvp(self, x: np.ndarray, a: np.ndarray) -> np.ndarray:
        mats = self._mats(self._unflatten(x))
        av = dict(zip(self._positions(), self._unflatten(a)))
        d_a = self._dprod(mats, [{p: m} for p, m in av.items()])
        ge = self.weights * self.residual(x)
        terms = [(mats, self.weights * d_a, ())]
        terms += [(_replace(mats, {p: m}), ge, (p,)) for p, m in av.items()]
        return self._flat_grads(terms)

    def hess(self, x: np.ndarray) -> np.ndarray:
        """Exact Hessian in closed form: ∇²f = c² Jᵀ diag(Ω) J + c Σ_{i≠j} ⟨Ω⊙E, p''⟩ blocks.

        J is the Jacobian of the product, block j: ∂p[r,c]/∂Z_j[α,β] = Post_j[r,α] Pre_j[β,c] (Post_j, Pre_j the
        products after and before Z_j). p is linear in each factor, so the second term has only the blocks i < j,
        ∂²⟨G, p⟩/∂Z_j[α,β]∂Z_i[γ,δ] = (Aᵀ G Cᵀ)[α,δ] B[β,γ] with p = A Z_j B Z_i C and G = c Ω⊙E, and their
        transposes. ``hess_by_columns`` (the same Hessian from ``hvp``, column by column) is its test reference."""
        mats = self._mats(self._unflatten(x))
        rows, cols = self.target.shape
        pos = list(self._positions())
        jac = []
        for j, pj in enumerate(pos):
            post = _chain(mats[pj + 1:])
            pre = _chain(mats[:pj])
            post = np.eye(rows) if post is None else post
            pre = np.eye(cols) if pre is None else pre
            jac.append(np.einsum("ra,bc->rcab", post, pre).reshape(rows * cols, -1))
        jac = self.scale * np.concatenate(jac, axis=1)
        h = jac.T @ (self.weights.reshape(-1, 1) * jac)
        g = self.scale * self.weights * self.residual(x)
        starts = np.concatenate([[0], np.cumsum(self._sizes)])
        for i, pi in enumerate(pos):
            for j in range(i + 1, len(pos)):
                pj = pos[j]
                a, c = _chain(mats[pj + 1:]), _chain(mats[:pi])
                agc = g if a is None else a.T @ g
                agc = agc if c is None else agc @ c.T
                b = _chain(mats[pi + 1:pj])
                b = np.eye(self.shapes[i][0]) if b is None else b
                block = np.einsum("ad,bg->abgd", agc, b).reshape(self._sizes[j], self._sizes[i])
                h[starts[j]:starts[j + 1], starts[i]:starts[i + 1]] += block
                h[starts[i]:starts[i + 1], starts[j]:starts[j + 1]] += block.T
        return 0.5 * (h + h.T)

    def hess_by_columns(self, x: np.ndarray) -> np.ndarray:
        """The Hessian assembled column by column from ``hvp`` (no differencing): the reference for ``hess``."""
        eye = np.eye(self.dim)
        h = np.column_stack([self.hvp(x, e) for e in eye])
        return 0.5 * (h + h.T)

    def third(self, x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        mats = self._mats(self._unflatten(x))
        av = dict(zip(self._positions(), self._unflatten(a)))
        bv = dict(zip(self._positions(), self._unflatten(b)))
        wts, ge = self.weights, self.weights * self.residual(x)
        d_a = self._dprod(mats, [{p: m} for p, m in av.items()])
        d_b = self._dprod(mats, [{p: m} for p, m in bv.items()])
        pairs = list(permutations(self._positions(), 2))
        terms = [(mats, wts * self._dprod(mats, [{l: av[l], k: bv[k]} for l, k in pairs]), ())] if pairs else []
        terms += [(_replace(mats, {p: m}), wts * d_b, (p,)) for p, m in av.items()]
        terms += [(_replace(mats, {p: m}), wts * d_a, (p,)) for p, m in bv.items()]
        terms += [(_replace(mats, {l: av[l], k: bv[k]}), ge, (l, k)) for l, k in pairs]
        return self._flat_grads(terms)
