"""Scale-invariant toy models with exact loss, gradient, Hessian, HVP and third-derivative contraction."""

from .families import (ManifoldModel, batchnorm_linear, deep_linear, matrix_completion, matrix_factorization,
                       sphere_circle, symmetric_factorization)
from .generic import SmoothFunction, wrap
from .multilinear import MultilinearLeastSquares
from .normalized import NormalizedModel
from .protocol import Model, check_model, model_name
from .registry import REGISTRY, make_model
from .sympy_model import SympyModel, rayleigh_model

__all__ = [
    "REGISTRY", "make_model", "Model", "check_model", "model_name",
    "NormalizedModel", "ManifoldModel", "MultilinearLeastSquares", "SmoothFunction", "SympyModel", "wrap",
    "matrix_factorization", "matrix_completion", "symmetric_factorization", "batchnorm_linear", "deep_linear",
    "sphere_circle", "rayleigh_model",
]
