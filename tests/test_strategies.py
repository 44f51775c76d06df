"""The strategies produce what they promise."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from strategies import SIZES, model_instances, probes, unit_vectors
from srflow.toy_models.protocol import check_model


@given(st.integers(1, 8).flatmap(unit_vectors))
def test_unit_vectors_have_unit_norm(x):
    assert abs(np.linalg.norm(x) - 1.0) < 1e-12


@given(st.integers(1, 8).flatmap(lambda d: probes(d, min_norm=0.5, max_norm=2.0, max_scale=5.0)))
def test_probes_respect_their_bounds(p):
    assert np.all(np.isfinite(p.w)) and 0.5 - 1e-12 <= np.linalg.norm(p.w) <= 2.0 + 1e-12
    assert 0.2 - 1e-12 <= p.c <= 5.0 + 1e-12
    assert abs(np.linalg.norm(p.u) - 1) < 1e-12 and abs(np.linalg.norm(p.v) - 1) < 1e-12


@given(model_instances())
def test_model_instances_follow_the_protocol(model):
    check_model(model)
    assert model.dim <= 40 and model.name in SIZES


def test_zero_draw_is_normalized_not_rejected():
    """An all-zero array becomes e_0 (checked directly on the construction rule)."""
    from hypothesis import find

    x = find(unit_vectors(3), lambda v: v[0] == 1.0)
    assert np.allclose(x, [1.0, 0.0, 0.0])
