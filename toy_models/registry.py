"""``REGISTRY``: model name -> factory(rng=..., **sizes)."""

from __future__ import annotations

from typing import Callable

from .families import (batchnorm_linear, deep_linear, matrix_completion, matrix_factorization, sphere_circle,
                       symmetric_factorization)
from .sympy_model import rayleigh_model

REGISTRY: dict[str, Callable] = {
    "mf": matrix_factorization,
    "mf_completion": matrix_completion,
    "sym_mf": symmetric_factorization,
    "bn_linear": batchnorm_linear,
    "deep_linear_wn": deep_linear,
    "sphere_circle": sphere_circle,
    "sympy_rayleigh": rayleigh_model,
}


def make_model(name: str, rng=0, **sizes):
    """Build the registered model ``name``; unknown names raise ``KeyError`` listing the valid ones."""
    if name not in REGISTRY:
        raise KeyError(f"model: unknown name {name!r}; valid names are {', '.join(REGISTRY)}")
    return REGISTRY[name](rng=rng, **sizes)
