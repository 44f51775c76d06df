"""Each closed-form family agrees with sympy's own differentiation of its loss, written from the definition
(small sizes; sympy differentiates, lambdify evaluates)."""

import functools

import numpy as np
import pytest
import sympy as sp

from srflow.toy_models import SympyModel, make_model
from srflow.verification import tolerances as tol
from srflow.verification.identities import draw_probe


def _mat(prefix, rows, cols):
    return sp.Matrix(rows, cols, sp.symbols(f"{prefix}0:{rows * cols}", real=True))


def _fro(m):
    return sp.sqrt(sum(x**2 for x in m))


def _sq_loss(pred, target, weights):
    return sp.Rational(1, 2) * sum(float(wt) * (p - float(y)) ** 2
                                   for p, y, wt in zip(pred, np.ravel(target), np.ravel(weights)))


def mf_reference(model):
    inner = model.inner
    (r, n), (m, _) = inner.shapes
    u, v = _mat("u", m, r), _mat("v", n, r)
    pred = float(inner.scale) * (u * v.T) / (_fro(u) * _fro(v))
    return _sq_loss(pred, inner.target, inner.weights), list(u) + list(v)


def sym_mf_reference(model):
    inner = model.inner
    n, r = inner.shapes[1]
    u = _mat("u", n, r)
    pred = float(inner.scale) * (u * u.T) / _fro(u) ** 2
    return _sq_loss(pred, inner.target, inner.weights), list(u)


def bn_reference(model):
    """Batch norm from its definition: subtract the batch mean, divide by the population std."""
    inner = model.inner
    h, n = inner.shapes[0]
    cx = model.linear[:n, : model.dim // h]
    w = _mat("w", h, cx.shape[1])
    out = sp.zeros(1, n)
    for k in range(h):
        z = sp.Matrix(cx) * w[k, :].T
        mean = sum(z) / n
        std = sp.sqrt(sum((zi - mean) ** 2 for zi in z) / n)
        out += float(inner.left[0, k]) * ((z - mean * sp.ones(n, 1)) / std).T
    return _sq_loss(out, inner.target, inner.weights), list(w)


def deep_reference(model):
    inner = model.inner
    layers = [_mat(f"l{i}_", a, b) for i, (a, b) in enumerate(inner.shapes)]
    prod = sp.Matrix(inner.right)
    for layer in layers:
        prod = (layer / _fro(layer)) * prod
    pred = float(inner.scale) * prod
    return _sq_loss(pred, inner.target, inner.weights), [s for layer in layers for s in layer]


def circle_reference(model, ratio):
    w = sp.symbols(f"w0:{model.dim}", real=True)
    x = [wi / sp.sqrt(sum(t**2 for t in w)) for wi in w]
    kappa = [0, 0] + list(np.linspace(1.0, 0.5, model.dim - 2))
    expr = sp.Rational(1, 2) * (1 + ratio * x[0] ** 2) * sum(float(k) * xi**2 for k, xi in zip(kappa[2:], x[2:]))
    return expr, list(w)


CASES = {
    "mf": (dict(m=2, n=2, rank=1), mf_reference),
    "mf_completion": (dict(m=3, n=2, rank=1, observed=0.7), mf_reference),
    "sym_mf": (dict(n=3, rank=1), sym_mf_reference),
    "bn_linear": (dict(samples=4, inputs=2, hidden=2), bn_reference),
    "sphere_circle": (dict(dim=4, ratio=3.0), lambda m: circle_reference(m, 3.0)),
}


#: D = 8 cases: sympy's D³ third-derivative tensor takes 30-90 s each.
SLOW_CASES = {
    "mf-rank2": ("mf", dict(m=2, n=2, rank=2), mf_reference),
    "deep_linear_wn": ("deep_linear_wn", dict(width=2, depth=2, samples=3), deep_reference),
}


@functools.cache
def pair(case):
    name, sizes, ref = SLOW_CASES[case] if case in SLOW_CASES else (case, *CASES[case])
    model = make_model(name, rng=5, **sizes)
    expr, syms = ref(model)
    return model, SympyModel(expr, tuple(syms), name=f"sympy({name})")


@pytest.mark.parametrize("name", list(CASES) + [pytest.param(c, marks=pytest.mark.slow) for c in SLOW_CASES])
def test_closed_form_matches_sympy(name):
    """loss, ∇L, ∇²L, hvp and ∇³L[u, v] equal sympy's at random points, to EXACT_VS_EXACT_RTOL."""
    model, ref = pair(name)
    rng = np.random.default_rng(11)
    for _ in range(3):
        p = draw_probe(rng, model.dim)
        hs = np.linalg.norm(ref.hess(p.w), 2)
        checks = {
            "loss": (model.loss(p.w), ref.loss(p.w), abs(ref.loss(p.w)) + hs * (p.w @ p.w)),
            "grad": (model.grad(p.w), ref.grad(p.w), hs * np.linalg.norm(p.w)),
            "hess": (model.hess(p.w), ref.hess(p.w), hs),
            "hvp": (model.hvp(p.w, p.v), ref.hvp(p.w, p.v), hs),
            "third": (model.third(p.w, p.u, p.v), ref.third(p.w, p.u, p.v), np.linalg.norm(ref.third(p.w, p.u, p.v))),
        }
        for what, (ours, theirs, scale) in checks.items():
            scaled = np.linalg.norm(np.asarray(ours) - np.asarray(theirs)) / (tol.EXACT_VS_EXACT_RTOL * scale)
            assert np.all(np.isfinite(ours)) and scaled <= 1.0, f"{name} {what}: scaled error {scaled:.3g}"


def test_sympy_comparison_detects_a_different_loss():
    """Must fail: the MF model against the sympy loss of a different target."""
    model, _ = pair("mf")
    expr, syms = mf_reference(make_model("mf", rng=6, **CASES["mf"][0]))
    other = SympyModel(expr, tuple(syms))
    w = draw_probe(np.random.default_rng(0), model.dim).w
    assert np.linalg.norm(model.grad(w) - other.grad(w)) > 1e-3 * np.linalg.norm(other.grad(w))


@pytest.mark.parametrize("shapes", [((3, 4), (2, 3)), ((2, 2), (3, 2), (2, 3)), ((2, 5), (3, 2), (2, 3), (4, 2))])
@pytest.mark.parametrize("outer", [False, True])
def test_multilinear_hessian_in_closed_form_equals_its_hvp_columns(shapes, outer):
    """``MultilinearLeastSquares.hess`` (Gauss–Newton plus the cross-factor blocks, in closed form) equals the
    Hessian assembled from ``hvp`` column by column, with and without fixed outer matrices, for 2–4 factors."""
    from srflow.toy_models import MultilinearLeastSquares

    rng = np.random.default_rng(len(shapes) + 10 * outer)
    rows, cols = shapes[-1][0], shapes[0][1]
    left = rng.standard_normal((5, rows)) if outer else None
    right = rng.standard_normal((cols, 4)) if outer else None
    shape = (5 if outer else rows, 4 if outer else cols)
    f = MultilinearLeastSquares(shapes, rng.standard_normal(shape), rng.uniform(0.1, 1.0, shape), 1.7, left, right)
    x = rng.standard_normal(f.dim)
    ours, columns = f.hess(x), f.hess_by_columns(x)
    assert np.max(np.abs(ours - columns)) <= tol.EXACT_VS_EXACT_RTOL * np.max(np.abs(columns))
