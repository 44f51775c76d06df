"""Bad input raises errors that name the argument and say what was expected."""

import numpy as np
import pytest

from srflow.toy_models import (MultilinearLeastSquares, SympyModel, check_model, make_model, matrix_factorization,
                        batchnorm_linear, wrap)

MODELS = ["mf", "bn_linear", "sphere_circle", "sympy_rayleigh"]


@pytest.fixture(params=MODELS, scope="module")
def model(request):
    return make_model(request.param)


def test_wrong_shape(model):
    with pytest.raises(ValueError, match=rf"w: expected shape \({model.dim},\), got shape \({model.dim + 1},\)"):
        model.loss(np.ones(model.dim + 1))


@pytest.mark.parametrize("bad", [lambda d: np.ones(d, dtype=complex), lambda d: np.array(["a"] * d),
                                 lambda d: np.ones(d, dtype=object)])
def test_wrong_dtype(model, bad):
    with pytest.raises(TypeError, match="w: expected a real float64 array"):
        model.grad(bad(model.dim))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite(model, value):
    w = np.ones(model.dim)
    w[1] = value
    with pytest.raises(ValueError, match="w: expected finite entries, entry 1"):
        model.hess(w)


def test_zero_vector(model):
    with pytest.raises(ValueError, match="w: .*(zero norm|nonzero)"):
        model.loss(np.zeros(model.dim))


def test_zero_block_is_named():
    m = make_model("mf")
    w = np.ones(m.dim)
    w[:8] = 0.0  # U is the first m·rank = 8 entries
    with pytest.raises(ValueError, match="block 'U' has zero norm"):
        m.grad(w)


def test_directions_are_checked(model):
    w = np.ones(model.dim)
    with pytest.raises(ValueError, match="v: expected shape"):
        model.hvp(w, np.ones(model.dim + 2))
    with pytest.raises(ValueError, match="u: expected finite"):
        model.third(w, np.full(model.dim, np.nan), np.ones(model.dim))


def test_mismatched_data_shapes():
    with pytest.raises(ValueError, match=r"target: expected shape \(3, 2\)"):
        MultilinearLeastSquares(((4, 2), (3, 4)), target=np.ones((2, 3)), weights=np.ones((3, 2)))
    with pytest.raises(ValueError, match="shapes: consecutive factors do not chain"):
        MultilinearLeastSquares(((4, 2), (3, 5)), target=np.ones((3, 2)), weights=np.ones((3, 2)))
    with pytest.raises(ValueError, match="samples: expected more samples than inputs"):
        batchnorm_linear(samples=3, inputs=3)


def test_unknown_model_name_lists_valid_ones():
    with pytest.raises(KeyError, match="unknown name 'nope'; valid names are mf, "):
        make_model("nope")


def test_bad_factory_arguments():
    with pytest.raises(ValueError, match="m: expected an integer >= 1"):
        matrix_factorization(m=0)
    with pytest.raises(ValueError, match="scale: expected c > "):
        matrix_factorization(scale=0.5)
    with pytest.raises(TypeError, match="rng: expected a numpy.random.Generator or an integer seed"):
        make_model("mf", rng="seed")
    with pytest.raises(ValueError, match="dim: expected an integer >= 1"):
        wrap(0, None, None, None, None)


def test_sympy_expression_with_unlisted_symbol():
    import sympy as sp

    x, y = sp.symbols("x y")
    with pytest.raises(ValueError, match="expr: has symbols not listed in 'symbols': \\['y'\\]"):
        SympyModel(x * y, (x,))


def test_protocol_check_names_missing_member():
    class NoThird:
        dim = 3

        def loss(self, w): ...
        def grad(self, w): ...
        def hess(self, w): ...
        def hvp(self, w, v): ...

    with pytest.raises(TypeError, match="missing protocol member 'third'"):
        check_model(NoThird())


def test_models_are_immutable():
    m = make_model("mf")
    with pytest.raises(ValueError, match="read-only"):
        m.inner.target[0, 0] = 1.0
    with pytest.raises(AttributeError):
        m.name = "other"


_A = np.diag([2.0, 1.0, 0.0, 0.0])


def _f(x):
    return 0.5 * x @ _A @ x


def _g(x):
    return _A @ x


def _h(x):
    return _A


def _t(x, u, v):
    return np.zeros(4)


def _circle_parts():
    """f(x) = ½xᵀAx, A = diag(2, 1, 0, 0): L(w) = f(w/‖w‖) is a Rayleigh quotient, Γ = {w₁ = w₂ = 0} on the unit
    sphere (a great circle, dim 1), where ∇²L has the eigenvalues 2, 1 and two zeros. Module-level functions, so that
    the model pickles (as Dask needs)."""
    return _f, _g, _h, _t


def _on_circle(rng):
    phi = rng.uniform(0, 2 * np.pi)
    return 3.0 * np.array([0.0, 0.0, np.cos(phi), np.sin(phi)])  # any norm: wrap renormalizes


def test_wrap_takes_a_minimizer_and_manifold_dim():
    """``wrap(..., minimizer=, manifold_dim=)`` gives protocol items 8-9: a unit point of Γ (∇L = 0 there, and the
    Hessian's rank is D - 1 - dim Γ = 2), pickled with the model; without them the model has no ``minimizer``."""
    import pickle

    from srflow.toy_models import wrap

    model = wrap(4, *_circle_parts(), name="circle", minimizer=_on_circle, manifold_dim=1)
    check_model(model)
    theta = model.minimizer(np.random.default_rng(0))
    assert np.linalg.norm(theta) == pytest.approx(1.0, abs=1e-15) and model.manifold_dim == 1
    assert np.linalg.norm(model.grad(theta)) < 1e-14
    assert np.sum(np.linalg.eigvalsh(model.hess(theta)) > 1e-8) == 2
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.minimizer(np.random.default_rng(0)), theta)
    assert not hasattr(wrap(4, *_circle_parts()), "minimizer")
    assert not hasattr(wrap(4, *_circle_parts(), manifold_dim=1), "minimizer")


@pytest.mark.parametrize("kwargs, match", [
    ({"minimizer": 3}, r"minimizer: expected a callable"),
    ({"manifold_dim": 3}, r"manifold_dim: expected dim Γ ≤ dim - 2 = 2"),
    ({"manifold_dim": -1}, r"manifold_dim: expected an integer >= 0"),
])
def test_wrap_names_a_bad_minimizer_or_manifold_dim(kwargs, match):
    from srflow.toy_models import wrap

    with pytest.raises((TypeError, ValueError), match=match):
        wrap(4, *_circle_parts(), **kwargs)


def test_wrap_names_a_minimizer_that_returns_no_point():
    from srflow.toy_models import wrap

    model = wrap(4, *_circle_parts(), minimizer=lambda rng: np.zeros(3))
    with pytest.raises(ValueError, match=r"minimizer: expected a finite nonzero vector of shape \(4,\)"):
        model.minimizer(np.random.default_rng(0))
