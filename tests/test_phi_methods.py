"""Φ's methods (theory.dense.PHI_METHODS): the default "lsoda" against the reference "bdf" and against a tight
flow, on the default models and on zoo models, one of them with λ₁/μ ≥ 1e3; Φ's second-order expansion
(``theory.dense.phi_second_order``, docs/theory.md §2) to its order. Costs: benchmarks/bench_phi.py."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from srflow.theory import dense, project_to_manifold
from srflow.toy_models import make_model
from srflow.toy_models.validate import unit
from srflow.toy_models.zoo import conditioning, zoo_model

#: λ₁/μ = 3.4e3 at its θ: ill-conditioning, where shortcuts break
CURVED = "curved-np-min-h0.54-k3-lc3.5-lg2.11-lr0.33-m2-s1564997911"
#: λ₁/μ ≈ 260 at its θ (bn-np-min-d3-h3-n9: a zoo model of the docs' tables)
BN = "bn-np-min-d3-h3-n9-s1734431760"


def tight(model, w) -> np.ndarray:
    """Φ(w/‖w‖) by BDF at rtol 1e-13, atol 1e-16 until ‖∇L‖ ≤ 1e-11·λ₁, then Newton: the yardstick (the reference
    "bdf" runs the same flow at rtol 1e-10 to 1e-9·λ₁; benchmarks/bench_phi.py measures both against it)."""
    x0 = unit(w, "w")
    target = 1e-11 * float(np.linalg.eigvalsh(model.hess(x0))[-1])
    small = lambda t, x: np.linalg.norm(model.grad(x)) - target  # noqa: E731
    small.terminal = True
    sol = solve_ivp(lambda t, x: -model.grad(x), (0.0, 1e8), x0, method="BDF", events=small, rtol=1e-13,
                    atol=1e-16, jac=lambda t, x: -model.hess(x))
    return dense.newton_polish(model, unit(sol.y[:, -1], "w"))


def _model(name):
    return make_model(name) if name in ("sphere_circle", "mf", "bn_linear") else zoo_model(name)


def _near(model, seed=0):
    """θ + 0.01·ξ/√D at θ = ``model.minimizer``: a GD iterate near Γ, what flow-tracking projects."""
    g = np.random.default_rng(seed)
    theta = model.minimizer(np.random.default_rng(seed + 1))
    return unit(theta + 0.01 * g.standard_normal(model.dim) / np.sqrt(model.dim), "w")


@pytest.mark.parametrize("name", ["sphere_circle", "mf", "bn_linear", BN, CURVED])
def test_the_default_phi_agrees_with_the_reference_and_a_tight_flow(name):
    """From near Γ, "lsoda" (the default) equals the reference "bdf" and the tight flow to 1e-10 (unit vectors:
    relative); measured ≤ 4.6e-11 against "bdf", ≤ 8.5e-12 against the tight flow."""
    model = _model(name)
    w = _near(model)
    new = project_to_manifold(model, w)
    ref = project_to_manifold(model, w, method="bdf").theta
    yardstick = tight(model, w)
    print(f"{name}: |lsoda - bdf| = {np.linalg.norm(new.theta - ref):.1e}, "
          f"|lsoda - tight| = {np.linalg.norm(new.theta - yardstick):.1e}, "
          f"|bdf - tight| = {np.linalg.norm(ref - yardstick):.1e}")
    assert np.linalg.norm(new.theta - ref) <= 1e-10
    assert np.linalg.norm(new.theta - yardstick) <= 1e-10
    assert new.grad_norm < 1e-12 and abs(np.linalg.norm(new.theta) - 1) < 1e-14


def test_the_default_phi_is_accurate_from_far_on_an_ill_conditioned_model():
    """From a standard normal draw (how a session finds θ₀) on the λ₁/μ ≥ 1e3 zoo model: "lsoda" equals the tight
    flow and "bdf" to 1e-10 (measured 7.8e-12 and 3.3e-11)."""
    model = zoo_model(CURVED)
    w = np.random.default_rng(0).standard_normal(model.dim)
    new = project_to_manifold(model, w).theta
    assert conditioning(model, new)["lam1_over_mu"] >= 1e3
    assert np.linalg.norm(new - tight(model, w)) <= 1e-10
    assert np.linalg.norm(new - project_to_manifold(model, w, method="bdf").theta) <= 1e-10


def test_phi_method_is_checked():
    with pytest.raises(ValueError, match=r"^method: expected one of 'lsoda', 'bdf', 'expand'"):
        project_to_manifold(make_model("mf"), np.ones(16), method="rk4")


def _normal_step(model, theta, seed):
    """A unit vector in the normal space (the top rank eigenvectors of ∇²L(θ)) mixing all of them, and the rank."""
    rank = model.dim - 1 - model.manifold_dim
    vecs = np.linalg.eigh(model.hess(theta))[1][:, -rank:]
    return unit(vecs @ np.random.default_rng(seed).standard_normal(rank), "u"), rank


@pytest.mark.parametrize("name", ["mf", BN])
def test_phi_second_order_expansion_has_a_third_order_remainder(name):
    """Φ(θ + εu) - (θ + P_K εu + ½∂²Φ[εu, εu]) = O(ε³) along a normal direction u mixing eigenvectors of different
    λ_i, while the first-order part alone leaves O(ε²): halving ε divides the remainders by ≈ 8 and ≈ 4. A
    ∂²Φ with 2λ_i for λ_i + λ_j (the diagonal formula applied off the diagonal) must fail the same test."""
    model = _model(name)
    theta = model.minimizer(np.random.default_rng(1))
    u, rank = _normal_step(model, theta, 2)
    second_err, first_err = [], []
    for eps in (4e-3, 2e-3):
        phi = tight(model, theta + eps * u)
        first, second = dense.phi_second_order(model, theta, eps * u, rank)
        second_err.append(np.linalg.norm(unit(theta + first + second, "w") - phi))
        first_err.append(np.linalg.norm(unit(theta + first, "w") - phi))
    print(f"{name}: remainders {second_err}, first order only {first_err}")
    assert 6 <= second_err[0] / second_err[1] <= 10
    assert 3 <= first_err[0] / first_err[1] <= 5
    assert second_err[0] < 0.05 * first_err[0]


def test_a_wrong_second_order_term_fails_the_order_test():
    """Must fail: ``phi_second_order``'s normal-normal term with 2λ_i for λ_i + λ_j (i the row) leaves an O(ε²)
    remainder (halving ε divides it by < 5, not ≈ 8)."""
    model = make_model("mf")
    theta = model.minimizer(np.random.default_rng(1))
    u, rank = _normal_step(model, theta, 2)
    errs = []
    for eps in (4e-3, 2e-3):
        phi = tight(model, theta + eps * u)
        vals, vecs = np.linalg.eigh(model.hess(theta))
        lam, normal, kernel = vals[-rank:], vecs[:, -rank:], vecs[:, :-rank]
        a = normal.T @ (eps * u)
        M = 0.5 * (normal @ (np.outer(a, a) / (2 * lam[:, None])) @ normal.T)
        sigma, Z = np.linalg.eigh(M)
        contracted = sum(s * model.third(theta, z, z) for s, z in zip(sigma, Z.T))
        wrong_phi = unit(theta + kernel @ (kernel.T @ (eps * u)) - kernel @ (kernel.T @ contracted), "w")
        errs.append(np.linalg.norm(wrong_phi - phi))
    assert errs[0] / errs[1] < 5, errs


def test_expand_method_agrees_with_a_tight_flow():
    """"expand" (the flow stopped near Γ, then the expansion) equals the tight flow to 1e-10 on the ill-conditioned
    zoo model from near Γ."""
    model = zoo_model(CURVED)
    w = _near(model)
    assert np.linalg.norm(project_to_manifold(model, w, method="expand").theta - tight(model, w)) <= 1e-10
