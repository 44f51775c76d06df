"""(a) Scale-invariance identities to third order, for L(w) = f(w/‖w‖) with f an arbitrary smooth function.

Derived symbolically in D = 2 (sympy differentiates through w/‖w‖) and verified exactly:
⟨∇L, w⟩ = 0,  ∇²L w = -∇L,  ∇³L[w] = -2∇²L,  and the degrees -1, -2, -3 of ∇L, ∇²L, ∇³L.

f is the generic cubic Σ_{i+j≤3} a_ij u^i v^j with 10 symbolic coefficients. Every identity above is linear in
the 3-jet of f at w/‖w‖ (its value and derivatives up to order 3), and the 3-jets of generic cubics at a
point are all 3-jets, so verifying the cubic for all coefficients verifies every smooth f.
"""

from __future__ import annotations

import sympy as sp

from ._common import Derived, is_zero, report, shown


def derive() -> list[Derived]:
    w = sp.symbols("w0 w1", positive=True)
    c = sp.symbols("c", positive=True)
    r = sp.sqrt(w[0] ** 2 + w[1] ** 2)
    u, v = w[0] / r, w[1] / r
    loss = sum(sp.Symbol(f"a{i}{j}") * u**i * v**j for i in range(4) for j in range(4 - i))
    grad = [sp.diff(loss, x) for x in w]
    hess = [[sp.diff(g, x) for x in w] for g in grad]
    third = [[[sp.diff(h, x) for x in w] for h in row] for row in hess]
    scale = {w[0]: c * w[0], w[1]: c * w[1]}
    out = []
    euler = sum(g * x for g, x in zip(grad, w))
    out.append(Derived("euler", "⟨∇L(w), w⟩ = 0", shown(euler), is_zero(euler)))
    radial = [sum(hess[i][j] * w[j] for j in range(2)) + grad[i] for i in range(2)]
    out.append(Derived("hess-radial", "∇²L(w) w + ∇L(w) = 0", str([shown(e) for e in radial]),
                       all(is_zero(e) for e in radial)))
    third_r = [sum(third[i][j][k] * w[k] for k in range(2)) + 2 * hess[i][j] for i in range(2) for j in range(2)]
    out.append(Derived("third-radial", "Σ_k ∇³L_ijk w_k + 2∇²L_ij = 0", "0 (all 4 entries)" if all(
        is_zero(e) for e in third_r) else str(third_r), all(is_zero(e) for e in third_r)))
    out.append(Derived("invariance", "L(cw) - L(w) = 0", shown(loss.subs(scale, simultaneous=True) - loss),
                       is_zero(loss.subs(scale, simultaneous=True) - loss)))
    for k, (name, tensor) in enumerate([("grad", grad), ("hess", sum(hess, [])),
                                        ("third", [t for row in third for col in row for t in col])], start=1):
        diffs = [c**k * e.subs(scale, simultaneous=True) - e for e in tensor]
        out.append(Derived(f"{name}-degree", f"c^{k} ∇^{k}L(cw) - ∇^{k}L(w) = 0 (degree -{k})",
                           f"0 ({len(diffs)} entries)", all(is_zero(e) for e in diffs)))
    return out


def main() -> int:
    return 0 if report(__doc__.splitlines()[0], derive()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
