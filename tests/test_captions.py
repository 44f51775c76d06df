"""Captions state what their data show: each claim a caption makes (a slope, "follows", "tracks", "runs ahead", a
rate) is computed by ``figures._claims`` from the arrays the figure plots, and the same caption handed synthetic
arrays where the claim is false says so. Small synthetic data only: no simulation, seconds in all."""

import numpy as np
import pytest

from srflow.figures import _claims

X = np.array([1e-3, 3e-4, 1e-4, 3e-5])


# -- the helpers ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q, holds, words", [(1.0, True, "falls at the theory's order 1"),
                                             (2.0, True, "falls at the theory's order 1"),
                                             (0.5, False, "falls slower than the theory's order 1"),
                                             (0.0, False, "does not fall with ηλ")])
def test_order_claim_follows_the_fitted_slope(q, holds, words):
    """e = 3·x^q: the order p = 1 holds for q ≥ 0.8 (faster is fine), fails below; q = 0 'does not fall'."""
    c = _claims.order(X, 3 * X**q, 1.0, "the error")
    assert c.holds is holds and words in c.text and f"^{q:.2f}" in c.text


@pytest.mark.parametrize("q, holds", [(0.0, True), (0.1, True), (1.0, False), (-0.5, False)])
def test_flat_claim(q, holds):
    c = _claims.flat(X, 2 * X**q, "the naive error")
    assert c.holds is holds and ("does not fall" in c.text) is holds


def test_closer_and_follows_state_either_way():
    assert _claims.closer([1e-4], [1e-2], "a", "b").holds and "100× more" in _claims.closer([1e-4], [1e-2], "a", "b").text
    assert not _claims.closer([1e-2], [1e-4], "a", "b").holds
    obs, pred, alt = np.array([1.0, 0.9]), np.array([1.0, 0.901]), np.array([1.0, 0.8])
    assert _claims.follows(obs, pred, alt, "P", "A").holds
    c = _claims.follows(obs, alt, pred, "P", "A")
    assert c.holds is False and "does not follow P" in c.text


def test_tracks_needs_slope_one_and_no_offset():
    """A norm equal to the prediction times noise tracks it; 10% above it or frozen at its start does not; a
    prediction that moves less than the noise cannot be judged (None)."""
    pred = np.linspace(2.0, 1.0, 50)
    wiggle = 1 + 0.02 * np.sin(np.arange(50))
    assert _claims.tracks(pred * wiggle, pred, "n", "p").holds is True
    assert _claims.tracks(1.1 * pred * wiggle, pred, "n", "p").holds is False
    frozen = _claims.tracks(np.full(50, 1.5) * wiggle, pred, "n", "p")
    assert frozen.holds is False and "does not track" in frozen.text
    assert _claims.tracks(wiggle, np.linspace(1.0, 1.01, 50), "n", "p").holds is None


def test_change_and_rate():
    assert _claims.change([1.0, 2.0], "λ₁").text == "λ₁ rises by 100%"
    assert _claims.change([2.0, 1.0], "λ₁").holds is False
    assert _claims.rate(1.0 + 1e-9, 1.0, "decays", 1e-6).holds
    assert not _claims.rate(1.01, 1.0, "decays", 1e-6).holds


# -- fig4: the flow clock's error at order 1, the naive clock's flat ---------------------------------------------
def _fig4_data(flow_q, naive_q):
    from srflow.figures.fig4_convergence import MODELS

    d = {"ladder": X}
    for k in range(len(MODELS)):
        d[f"flow_{k}"], d[f"naive_{k}"] = 0.1 * X**flow_q, 0.05 * X**naive_q
    return d


def test_fig4_caption_states_the_slopes_it_fits():
    from srflow.figures import fig4_convergence

    right = fig4_convergence.caption(_fig4_data(1.0, 0.0))
    assert "sphere_circle: the flow clock's error falls at the theory's order 1: ∝ (ηλ)^1.00±0.00" in right
    assert "the naive clock's error does not fall: ∝ (ηλ)^0.00" in right
    wrong = fig4_convergence.caption(_fig4_data(0.0, 1.0))
    assert "falls at the theory's order" not in wrong and "the flow clock's error does not fall with ηλ" in wrong
    assert "the naive clock's error falls as ηλ → 0: ∝ (ηλ)^1.00" in wrong
    slow = fig4_convergence.caption(_fig4_data(0.5, 0.0))
    assert "falls slower than the theory's order 1: ∝ (ηλ)^0.50" in slow
