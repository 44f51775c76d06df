"""A model generated from a sympy expression of a scale-invariant loss.

It serves users who have a formula, and is the independent reference for the closed-form models at
small sizes: sympy differentiates, ``lambdify(..., cse=True)`` evaluates. Symbolic work happens once,
at construction; evaluation is numeric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from itertools import combinations_with_replacement, permutations
from typing import Callable

import numpy as np
from scipy.optimize import brentq

from .validate import as_rng, as_vector


@dataclass(frozen=True, eq=False)
class SympyModel:
    """Loss ``expr`` in the symbols ``symbols`` (w = the symbols in order), all derivatives by sympy.

    ``third`` uses the full tensor ∇³L, so keep D small (D³ entries; D ≤ ~10).
    """

    expr: sp.Expr
    symbols: tuple[sp.Symbol, ...]
    name: str = "sympy"
    manifold_dim: int | None = None
    minimizer_fn: Callable[[np.random.Generator], np.ndarray] | None = None
    description: str = ""
    _f: Callable = field(init=False, repr=False)
    _g: Callable = field(init=False, repr=False)
    _h: Callable = field(init=False, repr=False)
    _t: Callable = field(init=False, repr=False)
    _h_index: np.ndarray = field(init=False, repr=False)
    _t_index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        import sympy as sp  # lazily: sympy costs ~0.45 s of every srflow process's start otherwise

        syms = tuple(self.symbols)
        if not syms:
            raise ValueError("symbols: expected at least one symbol")
        free = self.expr.free_symbols - set(syms)
        if free:
            raise ValueError(f"expr: has symbols not listed in 'symbols': {sorted(map(str, free))}")
        object.__setattr__(self, "symbols", syms)
        d = len(syms)
        grad = [sp.diff(self.expr, s) for s in syms]
        # Only the distinct entries of the symmetric ∇²L and ∇³L are differentiated and compiled (i ≤ j ≤ k):
        # lambdify's common-subexpression pass over the full D³ list (each entry repeated up to 6 times) costs
        # 3-4x as much as the derivatives themselves. ``_h_index``/``_t_index`` map every (i, j[, k]) to its entry.
        pairs = list(combinations_with_replacement(range(d), 2))
        hess = {(i, j): sp.diff(grad[i], syms[j]) for i, j in pairs}
        triples = list(combinations_with_replacement(range(d), 3))
        third = [sp.diff(hess[(i, j)], syms[k]) for i, j, k in triples]
        numeric = lambda e: sp.lambdify([syms], e, modules="numpy", cse=True)  # noqa: E731
        object.__setattr__(self, "_f", numeric(self.expr))
        object.__setattr__(self, "_g", numeric(grad))
        object.__setattr__(self, "_h", numeric([hess[p] for p in pairs]))
        object.__setattr__(self, "_t", numeric(third))
        object.__setattr__(self, "_h_index", _symmetric_index(pairs, d))
        object.__setattr__(self, "_t_index", _symmetric_index(triples, d))

    @property
    def dim(self) -> int:
        return len(self.symbols)

    def _point(self, w) -> np.ndarray:
        w = as_vector(w, "w", self.dim)
        if not np.any(w):
            raise ValueError("w: expected a nonzero vector; a scale-invariant loss is undefined at w = 0")
        return w

    def loss(self, w) -> float:
        return float(self._f(self._point(w)))

    def grad(self, w) -> np.ndarray:
        return np.asarray(self._g(self._point(w)), dtype=np.float64).reshape(self.dim)

    def hess(self, w) -> np.ndarray:
        return _entries(self._h(self._point(w)))[self._h_index]

    def hvp(self, w, v) -> np.ndarray:
        return self.hess(w) @ as_vector(v, "v", self.dim)

    def third(self, w, u, v) -> np.ndarray:
        t = _entries(self._t(self._point(w)))[self._t_index]
        return np.einsum("ijk,i,j->k", t, as_vector(u, "u", self.dim), as_vector(v, "v", self.dim))

    def minimizer(self, rng) -> np.ndarray:
        if self.minimizer_fn is None:
            raise NotImplementedError(f"{self.name}: no construction of a minimizer is known")
        w = np.asarray(self.minimizer_fn(as_rng(rng)), dtype=np.float64)
        return w / np.linalg.norm(w)


def _symmetric_index(entries, d: int) -> np.ndarray:
    """The array of shape (d,) * order whose element at every permutation of a sorted index tuple
    ``entries[n]`` is n: a symmetric tensor's full array from its distinct entries by one fancy index."""
    order = len(entries[0])
    index = np.empty((d,) * order, dtype=np.intp)
    for n, entry in enumerate(entries):
        for perm in set(permutations(entry)):
            index[perm] = n
    return index


def _entries(values) -> np.ndarray:
    """lambdify's list of scalars (some may be Python ints where an entry is a constant) as a float64 vector."""
    return np.asarray(values, dtype=np.float64).reshape(-1)


def rayleigh_model(rng=0, spectrum=(1, 2, 4), level=Fraction(5, 2)) -> SympyModel:
    """L(w) = ½ (wᵀ A w / wᵀ w - μ)²,  A = diag(``spectrum``), μ = ``level`` -- built with sympy.

    Γ = {x on the sphere : xᵀ A x = μ}, a curved submanifold of dimension D - 2 (for
    min A < μ < max A); at θ ∈ Γ, ∇²L = ∇R ∇Rᵀ has rank 1 = D - 1 - dim Γ.
    """
    import sympy as sp

    as_rng(rng)
    if isinstance(level, Fraction):  # exact, as sympy's Rational (the default is a Fraction so that sympy loads lazily)
        level = sp.Rational(level.numerator, level.denominator)
    spectrum = [sp.nsimplify(s) for s in spectrum]
    if len(spectrum) < 3:
        raise ValueError(f"spectrum: expected at least 3 eigenvalues, got {len(spectrum)}")
    if not min(spectrum) < level < max(spectrum):
        raise ValueError(f"level: expected min(spectrum) < level < max(spectrum), got {level}")
    w = sp.symbols(f"w0:{len(spectrum)}", real=True)
    num = sum(a * x**2 for a, x in zip(spectrum, w))
    den = sum(x**2 for x in w)
    expr = sp.Rational(1, 2) * (num / den - level) ** 2
    a = np.array([float(s) for s in spectrum])
    mu = float(level)

    def minimizer(g: np.random.Generator) -> np.ndarray:
        # Random unit x with xᵀAx = μ: a random unit x, moved along the great circle towards the
        # eigenvector on the other side of μ until the Rayleigh quotient equals μ.
        x = g.standard_normal(len(a))
        x /= np.linalg.norm(x)
        target = np.eye(len(a))[np.argmax(a) if x @ (a * x) < mu else np.argmin(a)]
        y = target - (target @ x) * x
        y /= np.linalg.norm(y)
        rq = lambda t: (np.cos(t) * x + np.sin(t) * y) @ (a * (np.cos(t) * x + np.sin(t) * y)) - mu  # noqa: E731
        t = brentq(rq, 0.0, np.arccos(np.clip(target @ x, -1, 1)), xtol=1e-15)
        return np.cos(t) * x + np.sin(t) * y

    return SympyModel(expr, w, name="sympy_rayleigh", manifold_dim=len(spectrum) - 2, minimizer_fn=minimizer,
                      description=f"sympy: (Rayleigh quotient of diag({', '.join(f'{x:g}' for x in a)}) - {mu:g})², Γ a curved (D-2)-manifold")
