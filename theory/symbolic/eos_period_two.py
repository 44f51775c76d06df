"""(c) GD+WD at the edge of stability, period-2 expansion: equilibrium norm, amplitude, drift, clock, 4/(4+G).

Exact local model: L(w) = ½ λ₁ w₂²/‖w‖² = ½ λ₁ sin²φ on R² (scale-invariant, Γ = {φ = 0}, top eigenvalue
λ₁ on the unit circle), w = r(cos φ, sin φ), one step w' = (1 - ηλ) w - η∇L(w), with u = ηλ.

1. The symmetric flip φ' = -φ holds exactly iff r² = ηλ₁ cos 2φ / (2(1 - u))  (→ the quoted ηλ₁/(2(1 - ηλ))).
2. At that radius the norm recursion is exactly r'²/r² = (1 - u)²/cos²2φ, so log r'²/r² = -2u + 4φ² + ….
3. A fixed norm (λ₁ constant) needs tan²2φ = u(2 - u)/(1 - u)²: a² = φ² = u/2 + O(u²).
4. Along the sharpness-reduction flow the norm must follow λ₁: d log r²/dt = d log λ₁/dt = -(G/4) ds/dt, with
   s per step = (2φ)². Solving -2u + 4φ² = -Gφ² at leading order: a² = (u/2)·4/(4 + G).
5. Hence ds/dτ = 8/(4 + G) (τ = ut), which equals 2/(1 - d log λ₁/ds): the clock 2τ = s + log(λ₁(0)/λ₁(s)),
   and dθ/dτ = -¼∇_Γ log λ₁ · ds/dτ = -2∇_Γ log λ₁/(4 + G) -- the naive -½∇_Γ log λ₁ is off by (1 + G/4).
6. Refinement: at the iterate itself λ₁(∇²L(w)) = λ₁ cos²φ/r², so at the flip radius
   η λ₁(∇²L(w_t)) = 2(1 - u)/(1 - tan²φ) = 2 - u + O(u²) on this model (tan²φ = a², G = 0): equal to the quoted
   2(1 - ηλ) only up to relative O(ηλ). The model-dependent O(ηλ) term in general: docs/theory.md §4b.
"""

from __future__ import annotations

import sympy as sp

from ._common import Derived, is_zero, report


def derive() -> list[Derived]:
    eta, lam1, r, G, eps, mu, p = sp.symbols("eta lambda_1 r G epsilon mu p", positive=True)
    u = sp.Symbol("u", positive=True)  # u = ηλ
    phi = sp.Symbol("phi", positive=True)
    w1, w2 = sp.symbols("w1 w2", real=True)
    loss = lam1 * w2**2 / (2 * (w1**2 + w2**2))
    grad_l = [sp.diff(loss, w1), sp.diff(loss, w2)]
    at = {w1: r * sp.cos(phi), w2: r * sp.sin(phi)}
    new = [sp.simplify(((1 - u) * wi - eta * gi).subs(at, simultaneous=True)) for wi, gi in zip((w1, w2), grad_l)]
    out = []

    flip = sp.simplify(new[1] * sp.cos(phi) + new[0] * sp.sin(phi))  # tan φ' = -tan φ
    r2 = sp.solve(sp.simplify(flip / sp.sin(phi)).subs(r, sp.sqrt(sp.Symbol("R2", positive=True))),
                  sp.Symbol("R2", positive=True))[0]
    out.append(Derived("flip-radius", "φ' = -φ  ⇔  r² = ηλ₁ cos 2φ/(2(1 - ηλ))", str(sp.simplify(r2)),
                       is_zero(sp.simplify(r2 - eta * lam1 * sp.cos(2 * phi) / (2 * (1 - u))))))

    ratio = sp.simplify(((new[0] ** 2 + new[1] ** 2) / r**2).subs(r, sp.sqrt(r2)))
    out.append(Derived("norm-ratio", "r'²/r² = (1 - ηλ)²/cos²2φ at the flip radius", str(ratio),
                       is_zero(sp.simplify(sp.trigsimp(ratio - (1 - u) ** 2 / sp.cos(2 * phi) ** 2)))))

    stationary = sp.solve(sp.Eq((1 - u) ** 2 * (1 + sp.Symbol("T2")), 1), sp.Symbol("T2"))[0]  # 1/cos² = 1 + tan²
    out.append(Derived("stationary-amplitude", "fixed norm: tan²2φ = ηλ(2 - ηλ)/(1 - ηλ)², so φ² = ηλ/2 + O((ηλ)²)",
                       str(sp.factor(stationary)),
                       is_zero(stationary - u * (2 - u) / (1 - u) ** 2)
                       and is_zero(sp.series(sp.atan(sp.sqrt(stationary)) ** 2 / 4, u, 0, 2).removeO() - u / 2)))

    # drift balance at leading order: u = ε μ, φ² = ε p
    log_ratio = sp.log((1 - u) ** 2 / sp.cos(2 * phi) ** 2)
    ds = (2 * phi) ** 2
    balance = (log_ratio + G / 4 * ds).subs({u: eps * mu, phi: sp.sqrt(eps * p)}, simultaneous=True)
    lead = sp.series(balance, eps, 0, 2).removeO().coeff(eps, 1)
    amp = sp.solve(lead, p)[0]
    out.append(Derived("amplitude", "-2ηλ + 4a² = -(G/4)·4a²  ⇒  a² = (ηλ/2)·4/(4 + G)", str(sp.factor(amp)),
                       is_zero(amp - mu / 2 * 4 / (4 + G))))

    ds_dtau = sp.simplify(4 * amp / mu)
    dlog_ds = -G / 4
    out.append(Derived("clock", "ds/dτ = 8/(4 + G) = 2/(1 - d log λ₁/ds): 2τ = s + log(λ₁(0)/λ₁(s))", str(ds_dtau),
                       is_zero(ds_dtau - 2 / (1 - dlog_ds)) and is_zero(ds_dtau - 8 / (4 + G))))
    out.append(Derived("tau-flow", "dθ/dτ = -¼·(ds/dτ)∇_Γ log λ₁ = -2∇_Γ log λ₁/(4 + G); naive/true speed = 1 + G/4",
                       str(sp.simplify(-ds_dtau / 4)),
                       is_zero(-ds_dtau / 4 + 2 / (4 + G)) and is_zero(sp.Rational(1, 2) / (2 / (4 + G)) - (1 + G / 4))))

    hess = sp.hessian(loss, (w1, w2)).subs(at, simultaneous=True)
    top = lam1 * sp.cos(phi) ** 2 / r**2
    char = sp.simplify((hess - top * sp.eye(2)).det())
    sharp = sp.simplify(eta * top.subs(r, sp.sqrt(r2)))
    refined = sp.series(sharp.subs({u: eps * mu, phi: sp.sqrt(eps * amp)}, simultaneous=True), eps, 0, 2).removeO()
    out.append(Derived("sharpness-at-iterate", "η λ₁(∇²L(w_t)) = 2(1 - ηλ)/(1 - tan²φ) = 2 - 2ηλ(2 + G)/(4 + G) + …",
                       str(sp.simplify(refined.subs(eps, 1))),
                       is_zero(char) and is_zero(refined.subs(eps, 1) - (2 - 2 * mu * (2 + G) / (4 + G)))))
    return out


def main() -> int:
    return 0 if report(__doc__.splitlines()[0], derive()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
