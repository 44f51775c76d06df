"""Dense or matrix-free: the one place ``theory`` chooses how to compute on Γ for a model.

``for_model(model)`` is ``theory.dense`` when D ≤ DENSE_MAX_DIM (``theory.sharpness.is_dense``; D×D Hessians,
``eigh``) and ``theory.matrix_free`` above it (only ``grad``, ``hvp``, ``third``: Lanczos, CG, LSQR). Both
modules give the functions of BACKEND_FUNCTIONS with the same signatures; ``theory.manifold`` and ``theory.eos``
call them through here, so neither backend imports the other or the public layer above it.
"""

from __future__ import annotations

from . import dense, matrix_free
from .sharpness import DENSE_MAX_DIM, is_dense

#: what a backend module provides (the same signatures in both)
BACKEND_FUNCTIONS = ("newton_polish", "project_to_manifold", "manifold_point", "normal_conditioning",
                     "second_order_sum")

__all__ = ["for_model", "BACKEND_FUNCTIONS", "DENSE_MAX_DIM", "is_dense"]


def for_model(model):
    """The backend module for ``model``: ``theory.dense`` (D ≤ DENSE_MAX_DIM) or ``theory.matrix_free``."""
    return dense if is_dense(model) else matrix_free
