"""Scale-invariant toy models with exact loss, gradient, Hessian, HVP and third-derivative contraction.

``from_jax``, ``JaxModel`` (``toy_models.jax_models``) and ``make_jax_model`` (``toy_models.jax_losses``) need the optional JAX extra
(``pip install ".[jax]"``); they are imported on first use, so the rest works without JAX.
"""

from .families import (ManifoldModel, batchnorm_linear, deep_linear, matrix_completion, matrix_factorization,
                       sphere_circle, symmetric_factorization)
from .generic import SmoothFunction, wrap
from .multilinear import MultilinearLeastSquares
from .normalized import NormalizedModel
from .protocol import Model, check_model, model_name
from .registry import NETWORKS, REGISTRY, TOY_MODELS, make_model
from .sympy_model import SympyModel, rayleigh_model

__all__ = [
    "REGISTRY", "NETWORKS", "TOY_MODELS", "make_model", "Model", "check_model", "model_name",
    "NormalizedModel", "ManifoldModel", "MultilinearLeastSquares", "SmoothFunction", "SympyModel", "wrap",
    "matrix_factorization", "matrix_completion", "symmetric_factorization", "batchnorm_linear", "deep_linear",
    "sphere_circle", "rayleigh_model", "from_jax", "JaxModel", "make_jax_model",
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
