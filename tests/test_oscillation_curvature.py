"""``theory.oscillation_curvature``: the curvature along the oscillation from two consecutive GD+WD steps equals the
Rayleigh quotient of the Hessian averaged on the step's segment, computed directly (Gauss–Legendre quadrature of
exact HVPs along the segment), to round-off; the end-point curvature does not (the test has power)."""

import numpy as np
import pytest

from srflow.theory import eos_threshold, oscillation_curvature, sharpness
from srflow.toy_models import make_model
from srflow.verification.simulate import oscillation_curvatures

#: Gauss–Legendre nodes on [0, 1]: the losses are analytic along a segment, so the quadrature error falls
#: geometrically with the node count; 40 nodes put it far below round-off on these segments
NODES = 40


def averaged_rq(model, w, d) -> float:
    """dᵀH̄d/|d|² with H̄ = ∫₀¹ ∇²L(w + σd) dσ by Gauss–Legendre quadrature of exact HVPs (independent of the
    update rule and of the formula under test)."""
    x, wts = np.polynomial.legendre.leggauss(NODES)
    sig, wts = 0.5 * (x + 1), 0.5 * wts
    return float(sum(c * (d @ model.hvp(w + s * d, d)) for s, c in zip(sig, wts)) / (d @ d))


def gdwd(model, w, lr, wd, steps):
    """w_0 … w_steps of w' = (1 - ηλ)w - η∇L(w), written out here (not the simulator's step)."""
    ws = [np.asarray(w, float)]
    for _ in range(steps):
        ws.append((1 - lr * wd) * ws[-1] - lr * model.grad(ws[-1]))
    return ws


def roundoff(lr, w, d):
    """The round-off of the formula: d_t·d_{t+1}/|d_t|² carries ~ε·‖w‖/|d| from forming d as differences of
    iterates of size ‖w‖, divided by η."""
    return 64 * np.finfo(float).eps * (1 + np.linalg.norm(w) / np.linalg.norm(d)) / lr


@pytest.mark.parametrize("name, sizes, ratio", [("sphere_circle", {}, 1.3), ("mf", {}, 1.1), ("bn_linear", {}, 0.9),
                                                ("bn_mlp", {"widths": (6, 6), "n_train": 32}, 1.2)])
def test_identity_matches_the_segment_average_to_roundoff(name, sizes, ratio):
    """From a random start at a step size near the edge (η·λ₁ = 2·``ratio``, ηλ = 0.01), over 6 steps (numpy models
    and a small JAX BN MLP, the figure's kind of model): the formula
    equals the direct segment average within its round-off; the Hessian's RQ at the end point w_t along d_t differs
    by far more (the segment is long: the iterates are far from Γ and at the edge)."""
    model = make_model(name, rng=0, **sizes)
    rng = np.random.default_rng([3, model.dim])
    w = rng.standard_normal(model.dim)
    lam1 = sharpness(model, w)
    lr = 2 * ratio / lam1
    wd = 0.01 / lr
    ws = gdwd(model, w, lr, wd, 7)
    end_gap = []
    for t in range(6):
        d, d_next = ws[t + 1] - ws[t], ws[t + 2] - ws[t + 1]
        formula = oscillation_curvature(d, d_next, lr, wd)
        direct = averaged_rq(model, ws[t], d)
        assert abs(formula - direct) <= roundoff(lr, ws[t], d), (t, formula, direct)
        end_gap.append(abs(d @ model.hvp(ws[t], d) / (d @ d) - direct) / roundoff(lr, ws[t], d))
    assert max(end_gap) > 1e3  # the end-point curvature is not the segment average: the comparison has power


def test_the_simulator_helper_uses_the_same_steps():
    """``verification.simulate.oscillation_curvatures`` (the simulator's own step) equals the formula on steps
    written out here."""
    model = make_model("mf", rng=0)
    w = np.random.default_rng(5).standard_normal(model.dim)
    lr, wd = 0.05, 0.02
    ws = gdwd(model, w, lr, wd, 3)
    expected = [oscillation_curvature(ws[t + 1] - ws[t], ws[t + 2] - ws[t + 1], lr, wd) for t in range(2)]
    np.testing.assert_allclose(oscillation_curvatures(model, w, lr, wd, count=2), expected, rtol=1e-12)


def test_a_period_two_flip_reads_two_minus_eta_lambda():
    """w_{t+2} = w_t (d_{t+1} = -d_t): η·RQ = 2 - ηλ, i.e. RQ/threshold = 1 + ηλ/(2(1 - ηλ)); a multiplier -0.9
    per step (a decaying flip) reads (1 - ηλ + 0.9)/η."""
    d = np.array([0.3, -0.1, 0.2])
    lr, wd = 0.1, 0.02  # ηλ = 0.002
    assert oscillation_curvature(d, -d, lr, wd) * lr == pytest.approx(2 - 0.002, rel=1e-15)
    assert oscillation_curvature(d, -d, lr, wd) / eos_threshold(lr, wd) == pytest.approx(1 + 0.002 / (2 * 0.998), rel=1e-14)
    assert oscillation_curvature(d, -0.9 * d, lr, wd) == pytest.approx((0.998 + 0.9) / lr, rel=1e-14)


@pytest.mark.parametrize("args, match", [
    ((np.zeros(3), np.ones(3), 0.1, 0.0), "d_t: expected a nonzero step"),
    ((np.ones(3), np.ones(2), 0.1, 0.0), "d_next: expected the shape"),
    ((np.ones(3), np.ones(3), -0.1, 0.0), "lr"),
    ((np.ones(3), np.ones(3), 0.1, 20.0), "ηλ < 1"),
    ((np.ones(3), np.array([1.0, np.nan, 0.0]), 0.1, 0.0), "d_next: expected finite"),
    ((np.ones((3, 1)), np.ones(3), 0.1, 0.0), "d_t: expected a 1-dimensional"),
])
def test_bad_input_names_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        oscillation_curvature(*args)
