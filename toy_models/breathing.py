"""A model family whose edge-of-stability equilibrium crosses from stable to unstable (docs/theory.md §4d).

f(x) = q(ψ) P(x₂, x₃),  q = exp(γψ),  ψ = atan2(x₁, x₀),
P = ½x₂² + c x₂³ + b x₂⁴ + ½μ x₃² + t x₂² x₃,        L(w) = f(w/‖w‖)  (w ∈ R⁴).

Γ = the unit circle in the (x₀, x₁) plane (x₂ = x₃ = 0), dim Γ = 1, away from ψ = ±π. At θ(ψ) the Hessian is
q(ψ)·diag(0, 0, 1, μ): λ₁ = e^{γψ} with v₁ = e₂, one normal mode u = e₃ with λ = μλ₁, and the tangent e_ψ. Hence,
constant along Γ: G = ‖∇_Γ log λ₁‖² = γ², ∇_Γ G = 0; along the great circle through θ and v₁,
f = q(½ sin²φ + c sin³φ + b sin⁴φ), so α = ∇³L[v₁³]/λ₁ = 6c and ∇⁴L[v₁⁴] + 8λ₁ = (24b - 4)λ₁; the normal mode,
slaved to the flip, has ∇³L[v₁, v₁, e₃] = 2tλ₁. The breathing rate of theory.eos_stability is then

    κ = (9γ² + 48b - 24t²/μ - 216c²) / (3(4 + γ²)),

which changes sign at b* = (216c² + 24t²/μ - 9γ²)/48 (0.07375 at the defaults γ = 1, c = 0.05, μ = 0.5,
t = 0.5): stable for b < b*, unstable above. Derivatives are exact: ψ = Im log z (z = x₀ + i x₁) has
∂ⁿψ[a₁, …, aₙ] = Im((log)⁽ⁿ⁾(z) Π(a_k,0 + i a_k,1)), and the product rule.
"""

from __future__ import annotations

import numpy as np

from .validate import as_rng
from .families import ManifoldModel
from .generic import SmoothFunction

_C = np.array([1.0, 1j, 0.0, 0.0])  # ∂/∂x₀ ↦ 1, ∂/∂x₁ ↦ i on analytic functions of z = x₀ + i x₁


def _real(name: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{name}: expected a finite{' positive' if positive else ''} number, got {value!r}")
    return value


def breathing_rate_of_family(quartic: float, growth: float = 1.0, cubic: float = 0.05, normal: float = 0.5,
                             coupling: float = 0.5) -> float:
    """κ of the family in closed form (module docstring), for tests independent of the numerical coefficients."""
    g2 = growth**2
    return (9 * g2 + 48 * quartic - 24 * coupling**2 / normal - 216 * cubic**2) / (3 * (4 + g2))


def breathing(rng=0, quartic: float = 0.0, growth: float = 1.0, cubic: float = 0.05, normal: float = 0.5,
              coupling: float = 0.5) -> ManifoldModel:
    """The family of the module docstring: b = ``quartic`` (the tunable parameter), γ = ``growth``, c = ``cubic``,
    μ = ``normal`` (0 < μ < 1: the normal mode below λ₁), t = ``coupling``. ``minimizer(rng)`` draws ψ ∈ [0.5, 1.5]."""
    as_rng(rng)
    b, gam, c, t = (_real(n, v) for n, v in (("quartic", quartic), ("growth", growth), ("cubic", cubic),
                                             ("coupling", coupling)))
    mu = _real("normal", normal, positive=True)
    if mu >= 1:
        raise ValueError(f"normal: expected 0 < μ < 1 (the normal mode's eigenvalue μλ₁ below λ₁), got {normal!r}")

    def psi_parts(x):
        z = complex(x[0], x[1])
        if abs(z) == 0:
            raise ValueError("x: ψ = atan2(x₁, x₀) is undefined where x₀ = x₁ = 0")
        psi = np.angle(z)
        d1, d2, d3 = 1 / z, -1 / z**2, 2 / z**3
        return psi, np.imag(d1 * _C), np.imag(d2 * np.outer(_C, _C)), d3

    def q_parts(x):
        """q, ∇q, ∇²q and the function (a, b) ↦ ∇³q[a, b]."""
        psi, g, h, d3 = psi_parts(x)
        q = np.exp(gam * psi)
        dq = gam * q * g
        hq = gam * q * (gam * np.outer(g, g) + h)

        def tq(a, bb):
            ga, gb, ha, hb = g @ a, g @ bb, h @ a, h @ bb
            t3 = np.imag(d3 * (_C @ a) * (_C @ bb) * _C)
            return gam * q * (gam**2 * ga * gb * g + gam * (ga * hb + gb * ha + (a @ h @ bb) * g) + t3)

        return q, dq, hq, tq

    def p_parts(x):
        """P, ∇P, ∇²P and (a, b) ↦ ∇³P[a, b]."""
        x2, x3 = x[2], x[3]
        p = 0.5 * x2**2 + c * x2**3 + b * x2**4 + 0.5 * mu * x3**2 + t * x2**2 * x3
        dp = np.array([0.0, 0.0, x2 + 3 * c * x2**2 + 4 * b * x2**3 + 2 * t * x2 * x3, mu * x3 + t * x2**2])
        hp = np.zeros((4, 4))
        hp[2, 2] = 1 + 6 * c * x2 + 12 * b * x2**2 + 2 * t * x3
        hp[2, 3] = hp[3, 2] = 2 * t * x2
        hp[3, 3] = mu

        def tp(a, bb):
            p222 = 6 * c + 24 * b * x2  # ∂³P/∂x₂³
            out = np.zeros(4)
            out[2] = p222 * a[2] * bb[2] + 2 * t * (a[2] * bb[3] + a[3] * bb[2])
            out[3] = 2 * t * a[2] * bb[2]
            return out

        return p, dp, hp, tp

    def f(x):
        return q_parts(x)[0] * p_parts(x)[0]

    def grad(x):
        q, dq, _, _ = q_parts(x)
        p, dp, _, _ = p_parts(x)
        return dq * p + q * dp

    def hess(x):
        q, dq, hq, _ = q_parts(x)
        p, dp, hp, _ = p_parts(x)
        return hq * p + np.outer(dq, dp) + np.outer(dp, dq) + q * hp

    def third(x, a, bb):
        q, dq, hq, tq = q_parts(x)
        p, dp, hp, tp = p_parts(x)
        return (tq(a, bb) * p + (a @ hq @ bb) * dp + (hq @ a) * (dp @ bb) + (hq @ bb) * (dp @ a)
                + (dq @ a) * (hp @ bb) + (dq @ bb) * (hp @ a) + (a @ hp @ bb) * dq + q * tp(a, bb))

    def minimizer(g: np.random.Generator) -> np.ndarray:
        psi = g.uniform(0.5, 1.5)
        return np.array([np.cos(psi), np.sin(psi), 0.0, 0.0])

    inner = SmoothFunction(4, f, grad, hess, third)
    kappa = breathing_rate_of_family(b, gam, c, mu, t)
    return ManifoldModel(inner, (4,), block_names=("w",), name="breathing", manifold_dim=1, minimizer_fn=minimizer,
                         description=f"EoS breathing family on S³: quartic b = {b:g}, G = {gam**2:g}, α = {6 * c:g}, "
                                     f"normal mode μ = {mu:g}, coupling t = {t:g}; predicted κ = {kappa:+.4f}")
