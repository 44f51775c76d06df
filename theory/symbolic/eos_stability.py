"""(e) Stability of the EoS equilibrium: the breathing rate κ = (8 + 9G + 2k - 6α²)/(3(4+G)) - ⟨∇G, ∇log λ₁⟩/(4+G)².

GD+WD in v = w/√η is GD on the unit sphere with step κ_t followed by κ' = κ/((1 - u)²(1 + κ²‖∇L(v̂)‖²)), u = ηλ
(docs/theory.md §4d). Along the flip, in the angle φ from θ ∈ Γ towards v₁, the sphere step is exactly
φ' = φ - arctan(κ f'(φ)) with f = L on the great circle; write f'(φ) = S g(φ), g = φ + αφ²/2 + kφ³/6 (α = T/S, k the
quartic coefficient with the normal modes slaved), h = κS, and let the tangent drift lower S by
d log S = -(h/2)Gφ² per step. The effective map (φ, h) ↦ (φ - arctan(h g), h e^{-hGφ²/2}/((1 - u)²(1 + h²g²))):

1. has a 2-cycle φ = c ± ε, c = -αε²/2 + O(ε⁴), h = 2 + O(ε²), at u = (2 + G/2)ε² + O(ε⁴): the squared amplitude
   ε² = 2ηλ/(4 + G) of docs/theory.md §4;
2. the product of its two Floquet multipliers (breathing pair) is the product of the one-step Jacobian determinants
   on the cycle; ¼ log of it per step, over u, is κ_frozen = (8 + 9G + 2k - 6α²)/(3(4 + G)) per unit τ;
3. on L = ½S sin²φ exactly (no expansion): the Jacobian of w ↦ (1 - u)w - η∇L(w) has determinant -1 on the
   period-2 orbit at its equilibrium norm: the breathing is neutral (κ = 0; α = 0, k = -4, G = 0);
4. the slow motion of the equilibrium: the Lotka–Volterra system dA/dt = 4qA, dq/dt = 2u - (4 + G(s))A, ds/dt = 4A
   in x = A/A*(s) - 1 (A* = 2u/(4 + G)) has linear part trace 8u G'(s)/(4 + G)², i.e. a rate 4G'/(4 + G)² per τ, with
   G' = dG/ds = -¼⟨∇_Γ G, ∇_Γ log λ₁⟩ along the flow;
5. hence stable (κ < 0) iff 6α² - 2k > 8 + 9G - 3⟨∇_Γ G, ∇_Γ log λ₁⟩/(4 + G).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ._common import Derived, is_zero, report

#: order of the expansion in the flip amplitude ε (the rate needs the cycle to O(ε²) and its Jacobians to O(ε²))
ORDER = 3


def _series_tools(e, order):
    def tr(x):
        x = sp.expand(x)
        return sum((x.coeff(e, i) * e**i for i in range(order + 1)), sp.Integer(0))

    def pw(x, m):
        out = sp.Integer(1)
        for _ in range(m):
            out = tr(out * x)
        return out

    def series(coeffs, x):  # Σ coeffs[j] x^j, x small
        return tr(sum(c * pw(x, j) for j, c in enumerate(coeffs)))

    return tr, pw, series


@lru_cache(maxsize=2)
def frozen_rate(order: int = ORDER):
    """(κ_frozen, u(ε), cycle solution): the 2-cycle of the effective map and ¼ log of its Floquet product over u."""
    e = sp.Symbol("epsilon", positive=True)
    a, k, G = sp.symbols("alpha k G", real=True)
    tr, pw, series = _series_tools(e, order)
    n = order
    cs = sp.symbols(f"c2:{n + 1}")
    h1s, h2s, us = sp.symbols(f"p1:{n + 1}"), sp.symbols(f"q1:{n + 1}"), sp.symbols(f"u2:{n + 1}")
    c = sum(cs[i] * e ** (i + 2) for i in range(n - 1))
    u = sum(us[i] * e ** (i + 2) for i in range(n - 1))
    h1 = 2 + sum(h1s[i] * e ** (i + 1) for i in range(n))
    h2 = 2 + sum(h2s[i] * e ** (i + 1) for i in range(n))
    m = n // 2 + 1
    atan = [0 if j % 2 == 0 else sp.Integer(-1) ** (j // 2) / sp.Integer(j) for j in range(2 * m)]
    inv1p = [sp.Integer(-1) ** j for j in range(m + 1)]
    exp_ = [1 / sp.factorial(j) for j in range(m + 1)]

    def g(p):
        return p + a * p**2 / 2 + k * p**3 / 6

    def step(p, h, u=u):
        x = tr(h * g(p))
        decay = tr(series(inv1p, tr(-2 * u + u**2)) * series(inv1p, tr(x * x)) * series(exp_, tr(-h * G * p**2 / 2)))
        return tr(p - series(atan, x)), tr(h * decay), decay, x

    phi1, phi2 = c + e, c - e
    p2, hh2, _, _ = step(phi1, h1)
    p1, hh1, _, _ = step(phi2, h2)
    eqs = [tr(p2 - phi2), tr(hh2 - h2), tr(p1 - phi1), tr(hh1 - h1)]
    sol: dict = {}
    for o in range(1, n + 1):
        cur = [x for x in (sp.expand(eq.coeff(e, o).subs(sol)) for eq in eqs) if x != 0]
        if not cur:
            continue
        syms = sorted(set().union(*[x.free_symbols for x in cur]) - {a, k, G}, key=str)
        found = sp.solve(cur, syms, dict=True)
        if found:
            sol.update(found[0])
            sol = {kk: sp.simplify(v.subs(sol)) for kk, v in sol.items()}

    def det(p, h, u):
        _, hn, _, x = step(p, h, u)
        gg, gp = tr(g(p)), tr(1 + a * p + k * p**2 / 2)
        iv = series(inv1p, tr(x * x))
        invh = series([sp.Rational(1, 2) * sp.Rational(-1, 2) ** j for j in range(n + 1)], tr(h - 2))
        dpp, dph = tr(1 - h * gp * iv), tr(-gg * iv)
        dhh = tr(hn * (invh - 2 * h * gg * gg * iv - G * p**2 / 2))
        dhp = tr(hn * (-2 * h * h * gg * gp * iv - h * G * p))
        return tr(dpp * dhh - dph * dhp)

    # the cycle's solution goes in before the Jacobians are expanded (the same series, in α, k, G alone: 4x faster)
    on_cycle = [sp.expand(x.subs(sol)) for x in (phi1, h1, phi2, h2, u)]
    phi1_c, h1_c, phi2_c, h2_c, u_c = on_cycle
    product = sp.expand(tr(det(phi1_c, h1_c, u_c) * det(phi2_c, h2_c, u_c)))
    log_product = product.coeff(e, 2)  # log(1 + x) = x + O(ε⁴): the O(ε²) term of the product
    u2 = sp.expand(u.subs(sol)).coeff(e, 2)
    return sp.factor(log_product / 4 / u2), u2, sol, (a, k, G), product


def derive() -> list[Derived]:
    out = []
    rate, u2, sol, (a, k, G), product = frozen_rate()
    out.append(Derived("cycle-amplitude", "2-cycle φ = c ± ε at ηλ = (2 + G/2)ε² + O(ε⁴): ε² = 2ηλ/(4 + G)", str(u2),
                       is_zero(u2 - (2 + G / 2))))
    out.append(Derived("cycle-centre", "centre c = -αε²/2 + O(ε⁴) (the cubic term shifts the cycle)",
                       str(sol[sp.Symbol("c2")]), is_zero(sol[sp.Symbol("c2")] + a / 2)))
    expected = (8 + 9 * G + 2 * k - 6 * a**2) / (3 * (4 + G))
    out.append(Derived("frozen-rate", "¼ log(det J₁ det J₂)/ηλ = (8 + 9G + 2k - 6α²)/(3(4 + G)) per unit τ",
                       str(rate), is_zero(rate - expected) and is_zero(product.coeff(sp.Symbol("epsilon", positive=True), 0) - 1)))

    # 3. exact neutrality on L = ½S sin²φ (G = 0): det((1-u)I - ∇²L) = -1 at the flip with the norm at equilibrium
    S, r, phi, u = sp.symbols("S r phi u", positive=True)
    w1, w2 = sp.symbols("w1 w2", real=True)
    loss = S * w2**2 / (2 * (w1**2 + w2**2))
    hess = sp.hessian(loss, (w1, w2)).subs({w1: r * sp.cos(phi), w2: r * sp.sin(phi)}, simultaneous=True)
    jac_det = sp.simplify(((1 - u) * sp.eye(2) - hess).det())  # η = 1 (v = w/√η units)
    # the 2-cycle with a fixed norm: r² = S cos2φ/(2(1 - u)) (flip) and cos 2φ = 1 - u (norm), docs/theory.md §4
    at_cycle = sp.simplify(jac_det.subs(r, sp.sqrt(S * sp.cos(2 * phi) / (2 * (1 - u)))).subs(phi, sp.acos(1 - u) / 2))
    out.append(Derived("neutral-sin2", "L = ½S sin²φ: det of the GD+WD step Jacobian = -1 on its 2-cycle (κ = 0 exactly)",
                       str(at_cycle), is_zero(at_cycle + 1) and is_zero(expected.subs({a: 0, k: -4, G: 0}))))
    out.append(Derived("one-minus-cos", "L = 1 - cos φ (α = 0, k = -1, G = 0): κ = ½, the breathing grows like e^{τ/2}",
                       str(expected.subs({a: 0, k: -1, G: 0})), is_zero(expected.subs({a: 0, k: -1, G: 0}) - sp.Rational(1, 2))))

    # 4. the equilibrium's slow motion: LV in x = A/A*(s) - 1, q, with A* = 2u/(4 + G(s)), ds/dt = 4A
    x, q, s, uu, g1 = sp.symbols("x q s u Gprime", real=True)
    Gs = sp.Function("G")(s)
    astar = 2 * uu / (4 + Gs)
    A = astar * (1 + x)
    dA = 4 * q * A
    dq = 2 * uu - (4 + Gs) * A
    ds = 4 * A
    dx = sp.simplify(dA / astar - A * sp.diff(astar, s) * ds / astar**2)
    dq_x = sp.simplify(dq)
    q_star = sp.solve(dx.subs(x, 0), q)[0]  # the equilibrium's own q (it moves with A*)
    jac = sp.Matrix([[sp.diff(dx, x), sp.diff(dx, q)], [sp.diff(dq_x, x), sp.diff(dq_x, q)]]).subs({x: 0, q: q_star})
    trace = sp.simplify(jac.trace().subs(sp.Derivative(Gs, s), g1))
    out.append(Derived("drift-rate", "moving equilibrium: trace = 8ηλ G'/(4 + G)², rate 4G'/(4 + G)² per τ "
                       "(G' = dG/ds = -¼⟨∇_Γ G, ∇_Γ log λ₁⟩)", str(trace),
                       is_zero(trace - 8 * uu * g1 / (4 + Gs) ** 2) and is_zero(jac[1, 0] + 2 * uu)))

    dG = sp.Symbol("dG", real=True)  # ⟨∇_Γ G, ∇_Γ log λ₁⟩
    kappa = expected - dG / (4 + G) ** 2
    condition = 8 + 9 * G - 3 * dG / (4 + G) - (6 * a**2 - 2 * k)
    out.append(Derived("stability-condition", "κ < 0 ⇔ 6α² - 2k > 8 + 9G - 3⟨∇_Γ G, ∇_Γ log λ₁⟩/(4 + G)",
                       str(sp.factor(kappa)), is_zero(kappa * 3 * (4 + G) - condition)))
    return out


def main() -> int:
    return 0 if report(__doc__.splitlines()[0], derive()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
