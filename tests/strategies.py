"""Hypothesis strategies for models and evaluation points. Constraints are built in, not filtered."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from srflow.toy_models import REGISTRY, make_model
from srflow.verification.identities import Probe


@st.composite
def unit_vectors(draw, dim: int) -> np.ndarray:
    """A unit vector of R^dim; a near-zero draw is replaced by e_0 (normalized, never rejected)."""
    x = draw(arrays(np.float64, dim, elements=st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)))
    norm = np.linalg.norm(x)
    if norm < 1e-6:
        x, norm = np.eye(dim)[0], 1.0
    return x / norm


@st.composite
def generic_directions(draw, dim: int) -> np.ndarray:
    """A unit vector with a dense Gaussian part, so that no block of it vanishes (block-normalized
    models are undefined where a whole block is zero; that case is a bad-input test, not a probe)."""
    dense = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(dim)
    x = draw(unit_vectors(dim)) + 0.5 * dense / np.linalg.norm(dense)
    return x / np.linalg.norm(x)


@st.composite
def probes(draw, dim: int, min_norm: float = 0.5, max_norm: float = 2.0, max_scale: float = 5.0) -> Probe:
    """Generic w with ‖w‖ in [min_norm, max_norm], unit u and v, c in [1/max_scale, max_scale]."""
    w = draw(generic_directions(dim)) * draw(st.floats(min_norm, max_norm))
    c = draw(st.floats(1.0 / max_scale, max_scale))
    return Probe(w, draw(unit_vectors(dim)), draw(unit_vectors(dim)), c)


#: name -> strategy of size keywords, all small (D ≤ ~30).
SIZES = {
    "mf": st.integers(2, 4).flatmap(lambda m: st.fixed_dictionaries(
        {"m": st.just(m), "n": st.integers(2, 4), "rank": st.integers(1, m), "scale": st.floats(1.1, 3.0)})),
    "mf_completion": st.fixed_dictionaries({"m": st.integers(3, 5), "n": st.integers(3, 5), "rank": st.integers(1, 2),
                                            "observed": st.floats(0.5, 0.95)}),
    "sym_mf": st.integers(2, 4).flatmap(lambda n: st.fixed_dictionaries({"n": st.just(n), "rank": st.integers(1, n)})),
    "bn_linear": st.integers(2, 4).flatmap(lambda d: st.fixed_dictionaries(
        {"inputs": st.just(d), "samples": st.integers(d + 1, 12), "hidden": st.integers(2, 3)})),
    "deep_linear_wn": st.fixed_dictionaries({"width": st.integers(2, 3), "depth": st.integers(2, 4),
                                             "samples": st.integers(2, 6)}),
    "sphere_circle": st.fixed_dictionaries({"dim": st.integers(3, 6), "ratio": st.floats(0.0, 20.0)}),
}


@st.composite
def model_instances(draw, families=tuple(SIZES)):
    """A registered model family with drawn sizes and seed (the sympy family is excluded: slow to build)."""
    name = draw(st.sampled_from(families))
    return make_model(name, rng=draw(st.integers(0, 2**32 - 1)), **draw(SIZES[name]))


assert set(SIZES) <= set(REGISTRY)
