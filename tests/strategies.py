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


# -- the model zoo (toy_models.zoo) ---------------------------------------------------------------------------
def _r(lo: float, hi: float):
    """A knob in [lo, hi] with ≤ 2 decimals (as ``zoo.draw_spec`` rounds them, so the name round-trips)."""
    return st.integers(int(round(lo * 100)), int(round(hi * 100))).map(lambda k: k / 100)


def _net_knobs(family: str):
    def knobs(dh):
        d, h = dh
        low, top = (3, h * (d - 1) - 2) if family == "bnnet" else (2, h * d - d - 2)
        return st.fixed_dictionaries({"d": st.just(d), "h": st.just(h), "n": st.integers(low, max(low, min(12, top)))})
    return st.tuples(st.integers(3, 4) if family == "bnnet" else st.integers(2, 4), st.integers(3, 5)).flatmap(knobs)


def _mf_knobs(completion: bool):
    def knobs(mn):
        m, n = mn
        extra = {"obs": _r(0.75, 0.95)} if completion else {}
        return st.fixed_dictionaries({"m": st.just(m), "n": st.just(n),
                                      "r": st.just(2) if completion else st.integers(2, min(m, n, 3)),
                                      "c": _r(1.2, 3.0), **extra})
    lo = 3 if completion else 2
    return st.tuples(st.integers(lo, 5), st.integers(lo, 5)).flatmap(knobs)


#: zoo family -> strategy of its knobs, the ranges of ``toy_models.zoo.draw_spec`` (dependent bounds built in)
ZOO_KNOBS = {
    "rq_sum": st.integers(4, 9).flatmap(lambda d: st.fixed_dictionaries(
        {"D": st.just(d), "k": st.integers(1, min(3, d - 2)), "la": _r(0, 2), "lc": _r(0, 3)})),
    "curved": st.fixed_dictionaries({"m": st.integers(1, 4), "k": st.integers(1, 3), "h": _r(0.1, 0.9),
                                     "lr": _r(-1, 1.5), "lc": _r(0, 3), "lg": _r(0.3, 2.5)}),
    "mf": _mf_knobs(False),
    "mfc": _mf_knobs(True),
    "bnc": st.integers(2, 3).flatmap(lambda r: st.fixed_dictionaries(
        {"n": st.integers(r + 2, 6), "r": st.just(r), "t": st.integers(1, r - 1), "obs": _r(0.7, 0.9)})),
    "bn": st.integers(2, 4).flatmap(lambda d: st.fixed_dictionaries(
        {"d": st.just(d), "h": st.integers(2, 4), "n": st.integers(d + 1, 12)})),
    "wn": st.integers(2, 3).flatmap(lambda w: st.fixed_dictionaries(
        {"w": st.just(w), "l": st.integers(2, 3), "n": st.integers(w, 6), "c": _r(0.5, 2.0)})),
    "bnnet": _net_knobs("bnnet"),
    "lnnet": _net_knobs("lnnet"),
}


@st.composite
def zoo_specs(draw, families=None, backends=("np", "jax"), minimizer=None):
    """A ``toy_models.zoo.ZooSpec``: a family from ``families`` (default: every family with a backend in
    ``backends``), a backend it supports, with a ``minimizer`` when ``minimizer`` is True (never for families that
    have none), without when False, either when None; knobs from ``ZOO_KNOBS``; data seed in [0, 2³¹)."""
    from srflow.toy_models.zoo import FAMILIES, NO_MINIMIZER, ZooSpec

    pool = [f for f in (families or FAMILIES) if set(FAMILIES[f]) & set(backends)
            and not (minimizer is True and f in NO_MINIMIZER)]
    if not pool:
        raise ValueError(f"families: none of {families} is built with {backends} (minimizer={minimizer})")
    family = draw(st.sampled_from(pool))
    backend = draw(st.sampled_from([b for b in FAMILIES[family] if b in backends]))
    has_min = False if family in NO_MINIMIZER else (draw(st.booleans()) if minimizer is None else minimizer)
    knobs = draw(ZOO_KNOBS[family])
    return ZooSpec(family, backend, has_min, tuple(knobs.items()), draw(st.integers(0, 2**31 - 2)))


def zoo_models(**kw):
    """Zoo models built from ``zoo_specs(**kw)``."""
    from srflow.toy_models.zoo import zoo_model

    return zoo_specs(**kw).map(zoo_model)
