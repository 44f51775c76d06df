"""Toys with designed ties of the top eigenvalue along Γ (docs/theory.md §4c), with exact derivatives.

Every model here is L(w) = f(w/‖w‖) with, for x = (y, z), y ∈ R^m, z ∈ R^n,

    f(x) = ½ Σ_i a_i(y) z_i²,   a_i(y) = exp(ℓ_i(y)),   ℓ_i(y) = b_i + c_iᵀy + ½ yᵀQ_i y.

f ≥ 0 with f = 0 iff z = 0, so Γ = {(y, 0) : ‖y‖ = 1} = S^{m-1}, dim Γ = m - 1. At θ = (y, 0) ∈ Γ the Hessian
of L is diag(0_m, a(y)): the branches λ_i(θ) = a_i(y) have the constant eigenvectors e_{z_i} and no coupling
(∇³L[e_{z_i}, e_{z_j}, ·] = 0 on Γ for i ≠ j), so two branches cross along the hypersurface ℓ_i = ℓ_j of Γ
instead of avoiding each other, and ∇_Γ log λ_i = P_T ∇ℓ_i = (I - yyᵀ)(c_i + Q_i y) on the y block.

Derivatives (h_i = ½a_i, q_i = z_i², d_i = c_i + Q_i y): ∇h = ½a d, ∇²h = ½a(ddᵀ + Q),
∇³h[u, v] = ½a[(d·u)(d·v)d + (uᵀQv)d + (d·u)Qv + (d·v)Qu], and for a product h(y)q(z) with q quadratic

    ∇³(hq)[u, v, ·] = ( ∇³h[u_y,v_y] q + ∇²h u_y q'[v_z] + ∇²h v_y q'[u_z] + ∇h q''[u_z,v_z] ,
                        ∇²h[u_y,v_y] ∇q + (∇h·u_y) ∇²q v_z + (∇h·v_y) ∇²q u_z ),

then the chain rule through w ↦ w/‖w‖ (``toy_models.normalized``). Checked against finite differences in
tests/test_cluster_flow.py.

The factories (``TIE_MODELS``) build the designed cases of docs/theory.md §4c on Γ = S² (m = 3), each with a designed start
``minimizer`` (deterministic: the cases are about one path), in a basis rotated by a Haar-random R drawn with
``rng`` (``rotate=False``: the axis-aligned model); ``start`` overrides the y of the designed start:

* ``double_top``: two identical top branches a₁ = a₂ = e^{ρy₀} on all of Γ, plus a lower mode;
* ``cross_slide``: ℓ₁ = ρy₀, ℓ₂ = ρy₁ + b: the flow meets the tie with ⟨g₁, g₂⟩ < 0 and slides along it;
* ``cross_halt``: ℓ₁ = ρy₀, ℓ₂ = -ρy₀ + b: at the tie g₂ = -g₁, 0 lies between them and the flow halts;
* ``cross_continue``: ℓ₁ = ρy₀, ℓ₂ = ½ρy₀ + b: at the tie g₂ = ½g₁, the flow continues on branch 2;
* ``triple``: ℓ_i = ρ⟨c_i, y⟩ with c_i three unit vectors at 120° in the (y₀, y₁) plane: a tie of two, then of
  three at y = e₂, where 0 = Σ g_i/3 and the flow halts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validate import as_rng, positive_real
from .families import ManifoldModel
from .generic import SmoothFunction


@dataclass(frozen=True, eq=False)
class BranchFunction:
    """f(y, z) = ½ Σ_i exp(b_i + c_iᵀy + ½yᵀQ_i y) z_i² + κ z₁z₂ (module docstring): ``b`` (n,), ``c`` (n, m),
    ``q`` (n, m, m), κ = ``coupling`` (a constant coupling of the first two branches: their crossing becomes an
    avoided crossing with gap 2κ; it adds nothing to ∇³f)."""

    b: np.ndarray
    c: np.ndarray
    q: np.ndarray
    coupling: float = 0.0

    @property
    def m(self) -> int:
        return self.c.shape[1]

    @property
    def n(self) -> int:
        return self.c.shape[0]

    def _parts(self, x):
        y, z = x[:self.m], x[self.m:]
        ell = self.b + self.c @ y + 0.5 * np.einsum("imk,m,k->i", self.q, y, y)
        return y, z, np.exp(ell), self.c + self.q @ y  # d: (n, m)

    def f(self, x):
        _, z, a, _ = self._parts(x)
        return 0.5 * float(np.sum(a * z * z)) + self.coupling * z[0] * z[1]

    def grad(self, x):
        _, z, a, d = self._parts(x)
        gz = a * z
        gz[:2] += self.coupling * z[1::-1][:2] if self.n > 1 else 0.0
        return np.concatenate([d.T @ (0.5 * a * z * z), gz])

    def hess(self, x):
        m = self.m
        _, z, a, d = self._parts(x)
        h = np.zeros((m + self.n, m + self.n))
        w = 0.5 * a * z * z
        h[:m, :m] = np.einsum("i,im,ik->mk", w, d, d) + np.einsum("i,imk->mk", w, self.q)
        h[:m, m:] = (d * (a * z)[:, None]).T
        h[m:, :m] = h[:m, m:].T
        h[m:, m:] = np.diag(a)
        if self.n > 1:
            h[m, m + 1] = h[m + 1, m] = self.coupling
        return h

    def third(self, x, u, v):
        m = self.m
        _, z, a, d = self._parts(x)
        uy, uz, vy, vz = u[:m], u[m:], v[:m], v[m:]
        du, dv = d @ uy, d @ vy                                   # (n,)
        qu, qv = self.q @ uy, self.q @ vy                         # (n, m)
        uqv = np.einsum("m,imk,k->i", uy, self.q, vy)            # (n,)
        h1 = 0.5 * a[:, None] * d                                 # ∇h_i
        h2u = 0.5 * a[:, None] * (du[:, None] * d + qu)           # ∇²h_i u_y
        h2v = 0.5 * a[:, None] * (dv[:, None] * d + qv)
        h2uv = 0.5 * a * (du * dv + uqv)                          # ∇²h_i[u_y, v_y]
        h3 = 0.5 * a[:, None] * ((du * dv + uqv)[:, None] * d + du[:, None] * qv + dv[:, None] * qu)
        qz = z * z
        y_part = (h3 * qz[:, None] + h2u * (2 * z * vz)[:, None] + h2v * (2 * z * uz)[:, None]
                  + h1 * (2 * uz * vz)[:, None]).sum(axis=0)
        z_part = h2uv * 2 * z + (h1 @ uy) * 2 * vz + (h1 @ vy) * 2 * uz
        return np.concatenate([y_part, z_part])


def branch_model(b, c, q=None, start=None, name: str = "branches", description: str = "",
                 rotation: np.ndarray | None = None, coupling: float = 0.0) -> ManifoldModel:
    """L(w) = f(w/‖w‖) for the ``BranchFunction`` with ``b`` (n,), ``c`` (n, m), ``q`` (n, m, m) or None (zero):
    Γ = S^{m-1} × {z = 0}, branches λ_i = exp(ℓ_i(y)) with eigenvectors e_{z_i}. ``start``: the y of the designed
    start on Γ (normalized), returned by ``minimizer`` whatever the rng. ``rotation``: an orthogonal R (D × D);
    then L(w) = f(Rw/‖w‖) (the branch eigenvectors are the rows of R for z, so that round-off mixes the branches
    as in a generic basis; with R = I a branch whose z_i is exactly 0 stays exactly 0 under GD+WD)."""
    b = np.asarray(b, dtype=np.float64)
    c = np.atleast_2d(np.asarray(c, dtype=np.float64))
    n, m = c.shape
    if b.shape != (n,):
        raise ValueError(f"b: expected shape ({n},) (one offset per branch), got {b.shape}")
    q = np.zeros((n, m, m)) if q is None else np.asarray(q, dtype=np.float64)
    if q.shape != (n, m, m):
        raise ValueError(f"q: expected shape ({n}, {m}, {m}), got {q.shape}")
    q = 0.5 * (q + q.transpose(0, 2, 1))
    inner_f = BranchFunction(b, c, q, float(coupling))
    y0 = np.eye(m)[0] if start is None else np.asarray(start, dtype=np.float64)
    if y0.shape != (m,) or not np.linalg.norm(y0) > 0:
        raise ValueError(f"start: expected a nonzero vector of shape ({m},), got {y0!r}")
    theta0 = np.concatenate([y0 / np.linalg.norm(y0), np.zeros(n)])
    inner = SmoothFunction(m + n, inner_f.f, inner_f.grad, inner_f.hess, inner_f.third)
    if rotation is not None:
        rotation = np.asarray(rotation, dtype=np.float64)
        if rotation.shape != (m + n, m + n) or not np.allclose(rotation @ rotation.T, np.eye(m + n), atol=1e-12):
            raise ValueError(f"rotation: expected an orthogonal ({m + n}, {m + n}) matrix")
        theta0 = rotation.T @ theta0
    return ManifoldModel(inner, (m + n,), linear=rotation, block_names=("w",), name=name, manifold_dim=m - 1,
                         minimizer_fn=lambda g: theta0.copy(), description=description)


def _rotation(rng, dim: int, rotate: bool):
    """A Haar-random rotation drawn with ``rng`` (the model's only random draw), or None."""
    if not rotate:
        return None
    from scipy.stats import ortho_group
    return ortho_group.rvs(dim, random_state=as_rng(rng))


def _start(y):
    y = np.asarray(y, dtype=np.float64)
    return y / np.linalg.norm(y)


def double_top(rng=0, rho: float = 3.0, low: float = 0.2, rotate: bool = True, start=None) -> ManifoldModel:
    """a₁ = a₂ = e^{ρy₀} (a double top eigenvalue on all of Γ = S²), a₃ = ``low``; start y = (0.3, 0.2, ·)."""
    rho = positive_real(rho, "rho")
    low = positive_real(low, "low")
    c = np.array([[rho, 0, 0], [rho, 0, 0], [0, 0, 0]], dtype=float)
    return branch_model([0.0, 0.0, np.log(low)], c, start=_start([0.3, 0.2, np.sqrt(1 - 0.13)] if start is None else start),
                        name="double_top", rotation=_rotation(rng, 6, rotate),
                        description=f"double top eigenvalue e^(ρ y0) on all of Γ = S², ρ = {rho:g}")


def cross_slide(rng=0, rho: float = 3.0, offset: float = -0.6, rotate: bool = True, start=None) -> ManifoldModel:
    """ℓ₁ = ρy₀, ℓ₂ = ρy₁ + ``offset``: branch 1 on top at the start y ∝ (0.6, 0.3, 0.74); the flow meets the
    tie where ⟨g₁, g₂⟩ = -ρ²y₀y₁ < 0 and slides along it."""
    rho = positive_real(rho, "rho")
    c = np.array([[rho, 0, 0], [0, rho, 0]], dtype=float)
    return branch_model([0.0, offset], c, start=_start([0.6, 0.3, 0.74] if start is None else start),
                        name="cross_slide", rotation=_rotation(rng, 5, rotate),
                        description=f"two branches crossing on Γ = S², sliding tie, ρ = {rho:g}")


def cross_halt(rng=0, rho: float = 3.0, offset: float = 0.6, rotate: bool = True, start=None) -> ManifoldModel:
    """ℓ₁ = ρy₀, ℓ₂ = -ρy₀ + ``offset``: the tie is the circle y₀* = offset/(2ρ), where g₂ = -g₁, so 0 lies
    between them and the flow halts there; start y ∝ (0.5, 0.3, 0.81) on branch 1."""
    rho = positive_real(rho, "rho")
    c = np.array([[rho, 0, 0], [-rho, 0, 0]], dtype=float)
    return branch_model([0.0, offset], c, start=_start([0.5, 0.3, 0.81] if start is None else start),
                        name="cross_halt", rotation=_rotation(rng, 5, rotate),
                        description=f"two branches crossing on Γ = S² with opposite gradients, ρ = {rho:g}")


def cross_avoided(rng=0, rho: float = 3.0, offset: float = 0.6, coupling: float = 2e-4, rotate: bool = True,
                  start=None) -> ManifoldModel:
    """``cross_halt`` with the two branches coupled by κ = ``coupling`` (f += κz₁z₂): the crossing at y₀ = 0.1
    becomes an avoided crossing with gap 2κ (relative 2κ/1.35 there), λ_max is smooth, and the flow tends to the
    crossing without a join or a halt: a near tie that is not a tie."""
    rho = positive_real(rho, "rho")
    c = np.array([[rho, 0, 0], [-rho, 0, 0]], dtype=float)
    return branch_model([0.0, offset], c, start=_start([0.5, 0.3, 0.81] if start is None else start),
                        name="cross_avoided", rotation=_rotation(rng, 5, rotate), coupling=coupling,
                        description=f"cross_halt with an avoided crossing, gap 2κ = {2 * coupling:g}")


def cross_continue(rng=0, rho: float = 3.0, offset: float = -0.3, rotate: bool = True, start=None) -> ManifoldModel:
    """ℓ₁ = ρy₀, ℓ₂ = ½ρy₀ + ``offset``: the tie at y₀* = 2·offset/ρ has g₂ = ½g₁; the flow continues on branch
    2, which stays on top, and branch 1 falls below; start y ∝ (0.5, 0.3, 0.81) on branch 1."""
    rho = positive_real(rho, "rho")
    c = np.array([[rho, 0, 0], [0.5 * rho, 0, 0]], dtype=float)
    return branch_model([0.0, offset], c, start=_start([0.5, 0.3, 0.81] if start is None else start),
                        name="cross_continue", rotation=_rotation(rng, 5, rotate),
                        description=f"two branches crossing on Γ = S², the slower one stays on top, ρ = {rho:g}")


def triple(rng=0, rho: float = 3.0, rotate: bool = True, start=None) -> ManifoldModel:
    """ℓ_i = ρ⟨c_i, y⟩, c_i = (cos 2πi/3, sin 2πi/3, 0): all three tie at y = e₂, where Σ g_i = 0 (a minimum of
    the maximum); start y ∝ (0.5, 0.2, 0.8) on branch 0."""
    rho = positive_real(rho, "rho")
    ang = 2 * np.pi * np.arange(3) / 3
    c = rho * np.stack([np.cos(ang), np.sin(ang), np.zeros(3)], axis=1)
    return branch_model(np.zeros(3), c, start=_start([0.5, 0.2, 0.8] if start is None else start),
                        name="triple", rotation=_rotation(rng, 6, rotate),
                        description=f"three branches meeting at a triple point of Γ = S², ρ = {rho:g}")


#: the designed tie toys (not in ``REGISTRY``: they are about ties, the default models about the simple flow)
TIE_MODELS = {"double_top": double_top, "cross_slide": cross_slide, "cross_halt": cross_halt,
              "cross_continue": cross_continue, "triple": triple, "cross_avoided": cross_avoided}
