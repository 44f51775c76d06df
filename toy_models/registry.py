"""``REGISTRY``: model name -> factory(rng=..., **sizes)."""

from __future__ import annotations

from typing import Callable

from .families import (batchnorm_linear, deep_linear, matrix_completion, matrix_factorization, sphere_circle,
                       symmetric_factorization)
from .breathing import breathing
from .sympy_model import rayleigh_model



def bn_mlp(rng=0, **sizes):
    """A scale-invariant BN MLP on digits (``toy_models.bn_nets.bn_mlp``; JAX, imported on first use)."""
    from .bn_nets import bn_mlp as factory
    return factory(rng=rng, **sizes)


def bn_cnn(rng=0, **sizes):
    """A small scale-invariant BN CNN on digits (``toy_models.bn_nets.bn_cnn``; JAX, imported on first use)."""
    from .bn_nets import bn_cnn as factory
    return factory(rng=rng, **sizes)


#: the real networks (JAX, D ~ 1e4): matrix-free theory only; the toy models' dense tests skip them
NETWORKS = ("bn_mlp", "bn_cnn")

REGISTRY: dict[str, Callable] = {
    "mf": matrix_factorization,
    "mf_completion": matrix_completion,
    "sym_mf": symmetric_factorization,
    "bn_linear": batchnorm_linear,
    "deep_linear_wn": deep_linear,
    "sphere_circle": sphere_circle,
    "sympy_rayleigh": rayleigh_model,
    "breathing": breathing,
    "bn_mlp": bn_mlp,
    "bn_cnn": bn_cnn,
}
#: the toy models: every registered model but the networks
TOY_MODELS = tuple(n for n in REGISTRY if n not in NETWORKS)


def make_model(name: str, rng=0, **sizes):
    """Build the registered model ``name``; unknown names raise ``KeyError`` listing the valid ones."""
    if name not in REGISTRY:
        raise KeyError(f"model: unknown name {name!r}; valid names are {', '.join(REGISTRY)}")
    return REGISTRY[name](rng=rng, **sizes)
