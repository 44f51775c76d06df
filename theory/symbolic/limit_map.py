"""(b) Second derivative of the limit map: ∂²Φ(θ)[v, v] = -(1/(2λ)) P_T ∇³L(θ)[v, v], on a curved Γ.

Model: L(x, y) = ½ a(x) (y - g(x))² with arbitrary smooth a > 0 and g (sympy functions), so Γ = {y = g(x)}
is a curve of any shape and λ = a(1 + g'²) varies along it. Φ = (φ, g(φ)) where φ is constant along
gradient-flow lines: ∇φ·∇L = 0 with φ = x on Γ. Writing h = y - g(x) and φ = x + c₁(x)h + c₂(x)h² + O(h³),
the PDE is solved order by order in h; then ∂²Φ[v, v] is compared exactly with the formula, at the unit
normal v (the eigenvector of ∇²L with eigenvalue λ). Also verified: ∂Φ = P_T on Γ, and the
Hellmann-Feynman fact P_T ∇³L[v, v] = ∇_Γ λ behind ∂²Φ[v₁, v₁] = -½ ∇_Γ log λ₁.
"""

from __future__ import annotations

import sympy as sp

from ._common import Derived, is_zero, report


def derive() -> list[Derived]:
    x, y = sp.symbols("x y", real=True)
    a, g = sp.Function("a"), sp.Function("g")
    c1, c2 = sp.Function("c1"), sp.Function("c2")
    h = y - g(x)
    loss = a(x) * h**2 / 2
    grad_l = sp.Matrix([sp.diff(loss, x), sp.diff(loss, y)])
    phi = x + c1(x) * h + c2(x) * h**2
    pde = sp.expand((sp.Matrix([sp.diff(phi, x), sp.diff(phi, y)]).T * grad_l)[0])
    # order by order in h: substitute y = g(x) + k and read off coefficients of k
    k = sp.Symbol("k")
    series = sp.expand(pde.subs(y, g(x) + k))
    c1_sol = sp.solve(series.coeff(k, 1), c1(x))[0]
    series2 = sp.expand(series.coeff(k, 2).subs(sp.Derivative(c1(x), x), sp.diff(c1_sol, x)).subs(c1(x), c1_sol))
    c2_sol = sp.solve(series2, c2(x))[0]
    phi = phi.subs(c2(x), c2_sol).subs(c1(x), c1_sol).doit()

    on_gamma = {y: g(x)}
    gp = sp.diff(g(x), x)
    norm = sp.sqrt(1 + gp**2)
    t = sp.Matrix([1, gp]) / norm  # unit tangent
    v = sp.Matrix([-gp, 1]) / norm  # unit normal
    lam1 = a(x) * (1 + gp**2)
    hess = sp.hessian(loss, (x, y))
    out = [Derived("eigenpair", "∇²L(θ) v = λ v with λ = a(1 + g'²)", str(sp.simplify(lam1)),
                   all(is_zero(e) for e in (hess * v - lam1 * v).subs(on_gamma)))]
    dphi = sp.Matrix([sp.diff(phi, x), sp.diff(phi, y)]).subs(on_gamma)
    out.append(Derived("first-order", "∂φ = tᵀ/|(1, g')| on Γ, i.e. ∂Φ = P_T", str(sp.simplify(c1_sol)),
                       all(is_zero(e) for e in dphi - t / norm)))
    d2phi = sp.hessian(phi, (x, y)).subs(on_gamma)
    phi_vv = sp.simplify((v.T * d2phi * v)[0])
    d2Phi_vv = phi_vv * sp.Matrix([1, gp])  # ∂Φ = (φ, g(φ)); (∂φ·v) = 0 on Γ kills the g'' term
    third_vv = sp.Matrix([sum(sp.diff(loss, p, q, r) * v[i] * v[j] for i, p in enumerate((x, y))
                              for j, q in enumerate((x, y))) for r in (x, y)]).subs(on_gamma)
    predicted = -(t * (t.T * third_vv)) / (2 * lam1)
    out.append(Derived("d2Phi", "∂²Φ(θ)[v, v] = -(1/(2λ)) P_T ∇³L(θ)[v, v]", str(sp.simplify(d2Phi_vv[0])),
                       all(is_zero(e) for e in d2Phi_vv - predicted)))
    grad_gamma_lam = t * sp.diff(lam1, x) / norm  # derivative of λ along the unit-speed curve
    out.append(Derived("hellmann-feynman", "P_T ∇³L[v, v] = ∇_Γ λ, so ∂²Φ[v, v] = -½ ∇_Γ log λ",
                       str(sp.simplify((t.T * third_vv)[0])),
                       all(is_zero(e) for e in t * (t.T * third_vv) - grad_gamma_lam)))
    return out


def main() -> int:
    return 0 if report(__doc__.splitlines()[0], derive()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
