"""Scale-invariant models with exact loss, gradient, Hessian, HVP and third-derivative contraction.

* ``protocol.py``: the model contract (any object with ``dim, loss, grad, hess, hvp, third``); ``validate.py``:
  the input checks every package uses at its public boundary.
* ``normalized.py``, ``multilinear.py``, ``completion.py``, ``generic.py``, ``sympy_model.py``: the building blocks;
  ``families.py``: the toy models built from them; ``registry.py``: name -> factory (``make_model``).
* ``jax_models.py``: a model from a loss written in ``jax.numpy`` (``from_jax``, autodiff); ``jax_losses.py``: the JAX
  twins of the registered models (``make_jax_model``); ``bn_nets.py``, ``digits.py``: the BN networks on digits.

A new model is a factory ``f(rng=0, **sizes)`` (in ``families.py``, or a module of its own) registered in
``registry.REGISTRY``, with its JAX loss in ``jax_losses.JAX_LOSSES`` when it should have a twin; the registry's
tests (identities, exact derivatives against finite differences) then run on it. A user's own model needs
none of this: ``srflow verify --model file.py:factory``.

``from_jax``, ``JaxModel`` and ``make_jax_model`` need the optional JAX extra (``pip install ".[jax]"``); they
are imported on first use, so the rest works without JAX.
"""

from .breathing import breathing
from .families import (ManifoldModel, batchnorm_linear, deep_linear, matrix_completion, matrix_factorization,
                       sphere_circle, symmetric_factorization)
from .generic import SmoothFunction, wrap
from .multilinear import MultilinearLeastSquares
from .normalized import NormalizedModel
from .protocol import Model, check_model, minimizer_point, model_name
from .registry import NETWORKS, REGISTRY, TOY_MODELS, make_model
from .sympy_model import SympyModel, rayleigh_model
from .zoo import ZooSpec, draw_spec, zoo_model, zoo_specs

__all__ = [
    "REGISTRY", "NETWORKS", "TOY_MODELS", "make_model", "Model", "check_model", "minimizer_point", "model_name",
    "NormalizedModel", "ManifoldModel", "MultilinearLeastSquares", "SmoothFunction", "SympyModel", "wrap",
    "matrix_factorization", "matrix_completion", "symmetric_factorization", "batchnorm_linear", "deep_linear",
    "sphere_circle", "rayleigh_model", "breathing", "zoo_model", "zoo_specs", "draw_spec", "ZooSpec", "from_jax", "JaxModel", "make_jax_model",
]

_JAX_NAMES = ("from_jax", "JaxModel", "make_jax_model")


def __getattr__(name):
    if name in _JAX_NAMES:  # lazy: importing JAX costs a second and is optional
        if name == "make_jax_model":
            from .jax_losses import make_jax_model
            return make_jax_model
        from . import jax_models
        return getattr(jax_models, name)
    raise AttributeError(f"module 'toy_models' has no attribute {name!r}")
