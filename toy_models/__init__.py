"""Scale-invariant toy models with exact loss, gradient, Hessian, HVP and third-derivative contraction.

``from_jax``, ``JaxModel`` and ``make_jax_model`` (``toy_models.jax_models``) need the optional JAX extra
(``pip install ".[jax]"``); they are imported on first use, so the rest works without JAX.
"""

from .breathing import breathing
from .families import (ManifoldModel, batchnorm_linear, deep_linear, matrix_completion, matrix_factorization,
                       sphere_circle, symmetric_factorization)
from .generic import SmoothFunction, wrap
from .multilinear import MultilinearLeastSquares
from .normalized import NormalizedModel
from .protocol import Model, check_model, model_name
from .registry import NETWORKS, REGISTRY, TOY_MODELS, make_model
from .sympy_model import SympyModel, rayleigh_model
from .zoo import ZooSpec, draw_spec, zoo_model, zoo_specs

__all__ = [
    "REGISTRY", "NETWORKS", "TOY_MODELS", "make_model", "Model", "check_model", "model_name",
    "NormalizedModel", "ManifoldModel", "MultilinearLeastSquares", "SmoothFunction", "SympyModel", "wrap",
    "matrix_factorization", "matrix_completion", "symmetric_factorization", "batchnorm_linear", "deep_linear",
    "sphere_circle", "rayleigh_model", "breathing", "zoo_model", "zoo_specs", "draw_spec", "ZooSpec", "from_jax", "JaxModel", "make_jax_model",
]

_JAX_NAMES = ("from_jax", "JaxModel", "make_jax_model")


def __getattr__(name):
    if name in _JAX_NAMES:  # lazy: importing JAX costs a second and is optional
        from . import jax_models
        return getattr(jax_models, name)
    raise AttributeError(f"module 'toy_models' has no attribute {name!r}")
