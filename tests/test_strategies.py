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


# -- the zoo strategies --------------------------------------------------------------------------------------
from strategies import ZOO_KNOBS, zoo_specs  # noqa: E402
from srflow.toy_models.zoo import FAMILIES, NO_MINIMIZER, ZooSpec, draw_spec, parse_spec  # noqa: E402


def _zoo_bounds_hold(spec: ZooSpec) -> bool:
    """The knob ranges of toy_models.zoo.draw_spec's docstring, stated independently of both generators."""
    p = spec.p
    f = spec.family
    if f == "rq_sum":
        return 4 <= p["D"] <= 9 and 1 <= p["k"] <= min(3, p["D"] - 2) and 0 <= p["la"] <= 2 and 0 <= p["lc"] <= 3
    if f == "curved":
        return (1 <= p["m"] <= 4 and 1 <= p["k"] <= 3 and 0.1 <= p["h"] <= 0.9 and -1 <= p["lr"] <= 1.5
                and 0 <= p["lc"] <= 3 and 0.3 <= p["lg"] <= 2.5)
    if f in ("mf", "mfc"):
        lo = 3 if f == "mfc" else 2
        ok = lo <= p["m"] <= 5 and lo <= p["n"] <= 5 and 2 <= p["r"] <= min(p["m"], p["n"], 3) and 1.2 <= p["c"] <= 3
        return ok and (0.75 <= p["obs"] <= 0.95 and p["r"] == 2 if f == "mfc" else "obs" not in p)
    if f == "bnc":
        return p["r"] + 2 <= p["n"] <= 6 and 2 <= p["r"] <= 3 and 1 <= p["t"] < p["r"] and 0.7 <= p["obs"] <= 0.9
    if f == "bn":
        return 2 <= p["d"] <= 4 and 2 <= p["h"] <= 4 and p["d"] + 1 <= p["n"] <= 12
    if f == "wn":
        return 2 <= p["w"] <= 3 and 2 <= p["l"] <= 3 and p["w"] <= p["n"] <= 6 and 0.5 <= p["c"] <= 2
    d, h, n = p["d"], p["h"], p["n"]
    free = h * (d - 1) - 1 if f == "bnnet" else h * d - d - 1  # directions the normalization leaves free, minus 1
    return 3 <= h <= 5 and (3 if f == "bnnet" else 2) <= n <= min(12, free) and (d >= 3 if f == "bnnet" else d >= 2)


@given(zoo_specs())
def test_zoo_specs_respect_the_documented_ranges(spec):
    assert _zoo_bounds_hold(spec), spec
    assert parse_spec(spec.name) == spec
    assert spec.backend in FAMILIES[spec.family] and not (spec.minimizer and spec.family in NO_MINIMIZER)


@given(st.sampled_from([True, False]).flatmap(lambda m: st.tuples(st.just(m), zoo_specs(backends=("np",),
                                                                                           minimizer=m))))
def test_zoo_specs_follow_their_keywords(pair):
    minimizer, spec = pair
    assert spec.backend == "np" and "np" in FAMILIES[spec.family]
    assert spec.minimizer == minimizer or (spec.family in NO_MINIMIZER and not spec.minimizer)


@given(st.integers(0, 10**9), st.integers(0, 1000))
def test_draw_spec_stays_in_the_strategy_ranges(seed, index):
    """``draw_spec`` (srflow zoo) and ``ZOO_KNOBS`` (the tests) draw from the same documented ranges."""
    assert _zoo_bounds_hold(draw_spec((seed, index)))


def test_zoo_knobs_cover_every_family():
    assert set(ZOO_KNOBS) == set(FAMILIES)


def test_zoo_specs_reject_an_impossible_request():
    import pytest
    from hypothesis import find
    with pytest.raises(ValueError, match="families"):
        find(zoo_specs(families=("bnnet",), backends=("np",)), lambda s: True)
