"""The batch-normalized matrix completion model (toy_models.completion): its scale-invariance identities and
exact derivatives, its loss against the definition ½ mean_Ω (ŷ - Y)², and its bad-input messages."""

import numpy as np
import pytest

from srflow.toy_models.completion import BatchNormCompletion, bn_completion
from srflow.verification.identities import check_identities


def test_identities_and_exact_derivatives_hold():
    """L(cw) = L(w), ⟨∇L, w⟩ = 0, ∇²L w = -∇L, the degrees, and grad/Hessian/third against finite differences."""
    model = bn_completion(0, size=6, rank=3, target_rank=2, observed=0.6)
    results = check_identities(model, np.random.default_rng(1))
    assert [r.identity for r in results if r.status != "pass"] == []


def test_loss_is_the_mean_squared_error_of_the_batch_normalized_output():
    """L(w) = ½ mean_Ω (ŷ_ij - Y_ij)² with ŷ = s·UVᵀ/rms_Ω(UVᵀ), s = rms_Ω(Y) (the cosine form is derived)."""
    model = bn_completion(3, size=7, rank=3, observed=0.5)
    w = np.random.default_rng(4).standard_normal(model.dim)
    obs = model.mask == 1
    assert model.loss(w) == pytest.approx(0.5 * np.mean((model.predict(w)[obs] - model.target[obs]) ** 2), rel=1e-12)
    assert np.sqrt(np.mean(model.predict(w)[obs] ** 2)) == pytest.approx(np.sqrt(np.mean(model.target[obs] ** 2)))


def test_a_factorization_of_the_target_recovers_it():
    """At U Vᵀ = aY (any a > 0, padded with zero columns) the training loss and the held-out error vanish; a
    random point has held-out error of order one."""
    model = bn_completion(5, size=8, rank=3, target_rank=2, observed=0.5)
    u, s, vt = np.linalg.svd(model.target)
    fac_u = np.zeros((8, 3)), np.zeros((8, 3))
    fac_u[0][:, :2], fac_u[1][:, :2] = 2.0 * u[:, :2] * s[:2], vt[:2].T
    w = np.concatenate([f.ravel() for f in fac_u])
    assert model.loss(w) < 1e-14 and model.heldout_error(w) < 1e-12
    assert model.heldout_error(np.random.default_rng(0).standard_normal(model.dim)) > 0.5


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="target_rank"):
        bn_completion(0, rank=2, target_rank=3)
    with pytest.raises(ValueError, match="observed"):
        bn_completion(0, observed=1.0)
    with pytest.raises(ValueError, match="mask"):
        BatchNormCompletion(np.ones((3, 3)), np.ones((3, 2)), 2)
    model = bn_completion(0, size=4, rank=2)
    with pytest.raises(ValueError, match="w: the product"):
        model.loss(np.zeros(model.dim))
