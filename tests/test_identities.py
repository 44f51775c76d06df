"""The scale-invariance identities (docs/theory.md §1) and exact derivatives hold on every registered model and on random instances."""

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import model_instances, probes
from srflow.toy_models import TOY_MODELS, make_model
from srflow.verification.identities import IDENTITIES, evaluate

by_name = {i.name: i for i in IDENTITIES}


@functools.cache
def registered(name):
    return make_model(name, rng=20221)


@pytest.mark.parametrize("identity", [i.name for i in IDENTITIES])
@pytest.mark.parametrize("name", TOY_MODELS)
def test_identity_on_registered_model(name, identity):
    """Each identity holds at random points of each registered model, in units of its tolerance."""
    model = registered(name)

    @given(probes(model.dim))
    def check(p):
        err, scale, scaled = evaluate(by_name[identity], model, p)
        assert np.isfinite(err) and np.isfinite(scale)
        assert scaled <= 1.0, f"{identity} on {name}: scaled error {scaled:.3g} (error {err:.3g}, scale {scale:.3g})"

    check()


@given(st.data())
def test_all_identities_on_random_instances(data):
    """Random family, sizes and seed: every identity holds at a random point."""
    model = data.draw(model_instances())
    p = data.draw(probes(model.dim))
    for ident in IDENTITIES:
        _, _, scaled = evaluate(ident, model, p)
        assert scaled <= 1.0, f"{ident.name} on {model.name} (D={model.dim}): scaled error {scaled:.3g}"
