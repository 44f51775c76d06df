"""Matrix completion with batch normalization: the paper's "matrix completion with BN", in miniature.

The network: a one-hidden-layer linear net that maps the row index i (one-hot) to the hidden vector u_i (the
rows of U ∈ R^{m×r}) and reads column j with the output weights v_j (the rows of V ∈ R^{n×r}), so that the
raw output for entry (i, j) is p_ij = (U Vᵀ)_ij. A batch-normalization layer **without affine parameters** (and
without centering) sits on the output unit: over the training batch, the observed entries Ω, it divides by
the root mean square, and a fixed gain s = rms_Ω(Y) (a fixed last layer, not trained) restores the targets'
scale::

    ŷ_ij = s · p_ij / rms_Ω(p),          L(U, V) = ½ mean_Ω (ŷ_ij - Y_ij)²  =  s² (1 - cos∠(p_Ω, Y_Ω)).

The second form follows from ‖ŷ_Ω‖ = ‖Y_Ω‖. At inference the same normalization constant (the batch
statistic of Ω) is used for every entry, held-out ones included.

**Scale invariance.** p is bilinear, so (U, V) -> (aU, bV) multiplies p by ab > 0, which the normalization
divides out: L(aU, bV) = L(U, V) for all a, b > 0 — in particular L(cw) = L(w) for w = (vec U, vec V) — and
every parameter is scale-invariant, as the theorem requires (docs/theory.md §8). Γ is the set of unit-norm
(U, V) whose product agrees on Ω with a positive multiple of a completion of Y.

**Why sharpness selects the completion.** At a point of Γ write U Vᵀ = α M (M a completion, α > 0) with
‖U‖² + ‖V‖² = 1. The gain multiplies the curvature of p by (s/rms_Ω(p))² = 1/α², and the largest α over
factorizations of M with ‖U‖² + ‖V‖² = 1 is 1/(2‖M‖_*) (the variational form of the nuclear norm). So flatter
points of Γ are those with a smaller nuclear norm of the completion, balanced factors, and a smaller top
singular value: the flow dθ/dτ ∝ -∇_Γ log λ₁ moves toward low-rank completions, which is what recovers a
low-rank target from few entries (docs/theory.md §8). Without the normalization (a plain factorization) the
norm of w would carry this information; the normalization is what turns it into a property of the direction.

Derivatives, with h(p) = s²(1 - yᵀ p/‖p‖) (y = Y_Ω/‖Y_Ω‖, so h = -s² yᵀ n(p) + s², n = p/‖p‖) and the
bilinear map P(w) = (U Vᵀ)_Ω (P' = J, P'' constant, P''' = 0)::

    ∇L         = Jᵀ ∇h,          ∇h = -s² n'ᵀ y
    ∇²L[a]     = Jᵀ ∇²h J a + P''[a, ·]ᵀ ∇h,          ∇²h[a] = -s² n''[a, ·]ᵀ y
    ∇³L[a, b]  = Jᵀ ∇³h[Ja, Jb] + P''[a, ·]ᵀ ∇²h J b + P''[b, ·]ᵀ ∇²h J a + Jᵀ ∇²h P''[a, b],
                 ∇³h[a, b] = -s² n'''[a, b, ·]ᵀ y

with n', n'', n''' the normalization derivatives of ``toy_models.normalized`` and
J[(A, B)] = (A Vᵀ + U Bᵀ)_Ω, Jᵀ G = (G V, Gᵀ U), P''[(A, B), (C, D)] = (A Dᵀ + C Bᵀ)_Ω,
P''[(A, B), ·]ᵀ G = (G B, Gᵀ A) for G supported on Ω.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .validate import as_rng, as_vector, frozen_copy, positive_int
from .normalized import Blocks


@dataclass(frozen=True, eq=False)
class BatchNormCompletion:
    """L(U, V) = ½ mean_Ω (s (UVᵀ)_ij / rms_Ω(UVᵀ) - Y_ij)² on w = (vec U, vec V), row-major; see the module
    docstring. ``target`` is Y (m×n), ``mask`` the 0/1 indicator of Ω, ``rank`` the number of columns r of
    U and V. Follows ``toy_models.protocol``."""

    target: np.ndarray
    mask: np.ndarray
    rank: int
    name: str = "bn_completion"
    _rows: np.ndarray = field(init=False, repr=False)
    _cols: np.ndarray = field(init=False, repr=False)
    _y: np.ndarray = field(init=False, repr=False)
    _gain_sq: float = field(init=False, repr=False)

    def __post_init__(self):
        y, mask = frozen_copy(self.target), frozen_copy(self.mask)
        if y.ndim != 2 or mask.shape != y.shape:
            raise ValueError(f"mask: expected the shape of target {y.shape}, got {mask.shape}")
        if not np.all((mask == 0) | (mask == 1)) or mask.sum() == 0:
            raise ValueError("mask: expected a 0/1 array with at least one observed entry")
        rows, cols = np.nonzero(mask)
        y_obs = y[rows, cols]
        if not np.any(y_obs):
            raise ValueError("target: the observed entries are all zero; the normalized output cannot fit them")
        for name, value in (("target", y), ("mask", mask), ("_rows", rows), ("_cols", cols),
                            ("_y", frozen_copy(y_obs / np.linalg.norm(y_obs)))):
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "rank", positive_int(self.rank, "rank"))
        object.__setattr__(self, "_gain_sq", float(np.mean(y_obs**2)))

    @property
    def dim(self) -> int:
        m, n = self.target.shape
        return (m + n) * self.rank

    # -- the bilinear map P and the normalized-output function h ------------------------------------
    def _split(self, w):
        m, n = self.target.shape
        return w[: m * self.rank].reshape(m, self.rank), w[m * self.rank:].reshape(n, self.rank)

    def _p(self, a, b) -> np.ndarray:
        """(A Bᵀ)_Ω as a vector over Ω."""
        return np.einsum("ik,ik->i", a[self._rows], b[self._cols])

    def _jac(self, u, v, a):
        """J[a] = (A Vᵀ + U Bᵀ)_Ω."""
        da, db = self._split(a)
        return self._p(da, v) + self._p(u, db)

    def _jac_t(self, u, v, g):
        """Jᵀ G = (G V, Gᵀ U) flattened, G the m×n matrix with entries g on Ω."""
        mat = np.zeros(self.target.shape)
        mat[self._rows, self._cols] = g
        return np.concatenate([(mat @ v).ravel(), (mat.T @ u).ravel()])

    def _second_t(self, a, g):
        """P''[a, ·]ᵀ G = (G B, Gᵀ A) for a = (A, B)."""
        da, db = self._split(a)
        return self._jac_t(da, db, g)

    def _point(self, w):
        w = as_vector(w, "w", self.dim)
        u, v = self._split(w)
        p = self._p(u, v)
        if not np.any(p):
            raise ValueError("w: the product U Vᵀ vanishes on the observed entries; the normalized output is "
                             "undefined there (expected U Vᵀ ≠ 0 on Ω)")
        return w, u, v, Blocks(p, np.zeros(1, np.intp), np.zeros(len(p), np.intp))

    # -- the protocol ------------------------------------------------------------------------------
    def loss(self, w) -> float:
        """L = s² (1 - yᵀ p/‖p‖)."""
        _, _, _, blk = self._point(w)
        return float(self._gain_sq * (1.0 - self._y @ blk.n))

    def grad(self, w) -> np.ndarray:
        """∇L = Jᵀ ∇h."""
        _, u, v, blk = self._point(w)
        return self._jac_t(u, v, -self._gain_sq * blk.d1(self._y))

    def hvp(self, w, a) -> np.ndarray:
        """∇²L a = Jᵀ ∇²h J a + P''[a, ·]ᵀ ∇h."""
        _, u, v, blk = self._point(w)
        a = as_vector(a, "v", self.dim)
        gh = -self._gain_sq * blk.d1(self._y)
        return (self._jac_t(u, v, -self._gain_sq * blk.d2_adjoint(self._jac(u, v, a), self._y))
                + self._second_t(a, gh))

    def hess(self, w) -> np.ndarray:
        """∇²L = Jᵀ ∇²h J + M, dense: J the |Ω|×D Jacobian of P (row (i, j): v_j at u_i's entries, u_i at v_j's)
        and M the matrix of (a, b) -> ∇hᵀ P''[a, b], whose U-V block is G ⊗ I_r (G: ∇h on Ω as an m×n matrix)."""
        _, u, v, blk = self._point(w)
        (m, n), r = self.target.shape, self.rank
        k = -self._gain_sq
        jac = np.zeros((len(self._rows), self.dim))
        cols = np.arange(r)
        jac[np.arange(len(self._rows))[:, None], self._rows[:, None] * r + cols] = v[self._cols]
        jac[np.arange(len(self._rows))[:, None], m * r + self._cols[:, None] * r + cols] = u[self._rows]
        hz = jac.T @ blk.d2_adjoint_matrix(k * self._y) @ jac
        g = np.zeros((m, n))
        g[self._rows, self._cols] = k * blk.d1(self._y)
        cross = np.kron(g, np.eye(r))
        hz[: m * r, m * r:] += cross
        hz[m * r:, : m * r] += cross.T
        return 0.5 * (hz + hz.T)

    def third(self, w, a, b) -> np.ndarray:
        """∇³L[a, b, ·] by the chain rule of the module docstring."""
        _, u, v, blk = self._point(w)
        a, b = as_vector(a, "u", self.dim), as_vector(b, "v", self.dim)
        k, y = -self._gain_sq, self._y
        ja, jb = self._jac(u, v, a), self._jac(u, v, b)
        da, db = self._split(a)
        dc, dd = self._split(b)
        pab = self._p(da, dd) + self._p(dc, db)  # P''[a, b]
        return (self._jac_t(u, v, k * blk.d3_adjoint(ja, jb, y))
                + self._second_t(a, k * blk.d2_adjoint(jb, y))
                + self._second_t(b, k * blk.d2_adjoint(ja, y))
                + self._jac_t(u, v, k * blk.d2_adjoint(pab, y)))

    # -- predictions -------------------------------------------------------------------------------
    def predict(self, w) -> np.ndarray:
        """The network's output for every entry: s · U Vᵀ / rms_Ω(U Vᵀ) (the batch statistic of Ω)."""
        u, v = self._split(as_vector(w, "w", self.dim))
        full = u @ v.T
        return np.sqrt(self._gain_sq) * full / np.sqrt(np.mean(full[self._rows, self._cols] ** 2))

    def heldout_error(self, w) -> float:
        """Relative error on the unobserved entries: ‖(ŷ - Y)_Ωᶜ‖_F / ‖Y_Ωᶜ‖_F (0 = recovered, 1 = as bad as
        predicting zero)."""
        off = 1.0 - self.mask
        return float(np.linalg.norm((self.predict(w) - self.target) * off) / np.linalg.norm(self.target * off))


def bn_completion(rng=0, size: int = 20, rank: int = 5, target_rank: int = 2, observed: float = 0.3) -> BatchNormCompletion:
    """A size×size target Y = G Hᵀ of rank ``target_rank`` (G, H Gaussian, scaled to unit RMS), a random
    ``observed`` fraction Ω of its entries seen, fitted by ``BatchNormCompletion`` with factors of rank
    ``rank`` ≥ target_rank (over-parameterized: Γ holds many completions, and which one training picks decides
    the held-out error). No ``minimizer``: Γ is reached by training."""
    rng = as_rng(rng)
    size, rank = positive_int(size, "size", 2), positive_int(rank, "rank")
    target_rank = positive_int(target_rank, "target_rank")
    if target_rank > rank:
        raise ValueError(f"target_rank: expected ≤ rank = {rank}, got {target_rank}")
    if not 0 < observed < 1:
        raise ValueError(f"observed: expected a fraction in (0, 1), got {observed!r}")
    y = rng.standard_normal((size, target_rank)) @ rng.standard_normal((target_rank, size))
    y /= np.sqrt(np.mean(y**2))
    mask = (rng.random((size, size)) < observed).astype(float)
    return BatchNormCompletion(y, mask, rank)
