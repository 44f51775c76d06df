"""(d) One step moves Φ by -(δ²/4) ∇_Γ log λ₁: the constants ¼ (normalized GD) and ⅛ (GD on √L).

Local model near Γ: L(x, y) = ½ λ(y) x², Γ = {x = 0}, top eigenvalue λ(y) with eigenvector e_x. A step
(x, y) -> (x, y) - κ∇L(x, y) with any step factor κ (GD: κ = η; normalized GD: κ = η/‖∇L‖; GD on √L:
κ = η/(2√L)). Φ solves ∇Φ·∇L = 0, Φ(0, y) = y: Φ = y - (λ'/(4λ)) x² + O(x⁴). To second order in x the step
moves Φ by -¼ κ²λλ' x² = -(δ²/4)(log λ)' with δ = κλ|x| the step along v₁. Hence
normalized GD (δ = η): dX/dτ = -¼ ∇_Γ log λ₁, τ = η²t; GD on √L (δ² = η²λ/2): dX/dτ = -⅛ ∇_Γ λ₁.
"""

from __future__ import annotations

import sympy as sp

from ._common import Derived, is_zero, report


def derive() -> list[Derived]:
    x = sp.Symbol("x", positive=True)
    y, eta = sp.symbols("y eta", positive=True)
    lam1, c2 = sp.Function("lam1"), sp.Function("c2")
    loss = lam1(y) * x**2 / 2
    grad_l = [sp.diff(loss, x), sp.diff(loss, y)]
    phi = y + c2(y) * x**2
    pde = sp.expand(sp.diff(phi, x) * grad_l[0] + sp.diff(phi, y) * grad_l[1])
    c2_sol = sp.solve(pde.coeff(x, 2), c2(y))[0]
    phi = phi.subs(c2(y), c2_sol)
    out = [Derived("Phi", "Φ(x, y) = y + c₂ x², c₂ from ∇Φ·∇L = 0 at order x²", str(c2_sol),
                   is_zero(c2_sol + sp.diff(lam1(y), y) / (4 * lam1(y))))]

    # The x² coefficient of the drift involves only λ, λ', λ'' at y, so a quadratic λ with symbolic
    # coefficients is fully general here -- and lets sympy expand λ(y') exactly.
    l0, l1, l2 = sp.symbols("L0 L1 L2", positive=True)
    jet = sp.Lambda(y, l0 + l1 * y + l2 * y**2 / 2)
    loss_j = jet(y) * x**2 / 2
    phi_j = y - sp.diff(jet(y), y) / (4 * jet(y)) * x**2  # the c₂ just derived, for this λ
    grad_j = [sp.diff(loss_j, x), sp.diff(loss_j, y)]

    delta, eps = sp.symbols("delta epsilon", positive=True)

    def drift(d):
        """Φ(x', y') - Φ(x, y) for the step -κ∇L with κ = d/(λx) (it moves x by d), to second order in
        the joint scale ε of (x, d)."""
        k = d / (jet(y) * x)
        x1, y1 = x - k * grad_j[0], y - k * grad_j[1]
        moved = (phi_j.subs({x: x1, y: y1}, simultaneous=True) - phi_j).subs({x: eps * x}, simultaneous=True)
        moved = moved.subs(delta, eps * delta) if d.has(delta) else moved
        return sp.simplify(sp.series(sp.simplify(moved), eps, 0, 3).removeO().subs(eps, 1))

    general = drift(delta)
    formula = -(delta**2 / 4) * sp.diff(sp.log(jet(y)), y)
    out.append(Derived("drift", "Φ(x', y') - Φ(x, y) = -(δ²/4)(log λ)' to 2nd order, δ = κλx the step along v₁",
                       str(sp.factor(general)), is_zero(general - formula)))
    grad_norm = sp.sqrt(grad_j[0] ** 2 + grad_j[1] ** 2)
    d_ngd = sp.simplify(eta * jet(y) * x / grad_norm)  # κ = η/‖∇L‖, exact
    out.append(Derived("normalized-gd-step", "normalized GD: δ = ηλx/‖∇L‖ = η + O(x²)", str(d_ngd),
                       is_zero(sp.series(d_ngd.subs(x, eps * x), eps, 0, 2).removeO() - eta)))
    out.append(Derived("normalized-gd", "per step -(η²/4)(log λ)': dX/dτ = -¼ ∇_Γ log λ₁, τ = η²t",
                       str(sp.factor(formula.subs(delta, eta))),
                       is_zero(general.subs(delta, eta) + eta**2 / 4 * sp.diff(sp.log(jet(y)), y))))
    d_sqrt = sp.simplify(eta * jet(y) * x / (2 * sp.sqrt(loss_j)))  # κ = η/(2√L), exact
    out.append(Derived("sqrt-gd-step", "GD on √L: δ = ηλx/(2√L) = η√(λ/2) exactly", str(d_sqrt),
                       is_zero(d_sqrt**2 - eta**2 * jet(y) / 2)))
    out.append(Derived("sqrt-gd", "per step -(η²/8) λ': dX/dτ = -⅛ ∇_Γ λ₁, τ = η²t",
                       str(sp.factor(general.subs(delta, d_sqrt))),
                       is_zero(general.subs(delta, d_sqrt) + eta**2 / 8 * sp.diff(jet(y), y))))
    return out


def main() -> int:
    return 0 if report(__doc__.splitlines()[0], derive()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
