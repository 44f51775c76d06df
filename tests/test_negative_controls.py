"""Every identity check fails on a model broken in the way it is meant to detect."""

import numpy as np
import pytest

from broken_models import MUST_FAIL, NotScaleInvariant, SCALE_IDENTITIES, WrongHessian
from srflow.toy_models import TOY_MODELS, make_model
from srflow.verification.identities import IDENTITIES, IDENTITY_NAMES, check_identities, check_minimizer


def test_every_identity_has_a_must_fail_case():
    assert set(MUST_FAIL) == set(IDENTITY_NAMES)


@pytest.mark.parametrize("name", ["mf", "bn_linear", "sphere_circle"])
@pytest.mark.parametrize("identity", IDENTITY_NAMES)
def test_broken_model_fails(identity, name):
    """The broken model fails the identity, and the intact model passes it at the same points."""
    base = make_model(name, rng=3)
    broken = MUST_FAIL[identity](base)
    bad = check_identities(broken, np.random.default_rng(7), points=2, names=[identity])[0]
    good = check_identities(base, np.random.default_rng(7), points=2, names=[identity])[0]
    print(f"{identity} on {broken.name}: scaled error {bad.scaled_error:.3g}; intact {good.scaled_error:.3g}")
    assert bad.status == "fail" and good.status == "pass"


def test_not_scale_invariant_passes_derivative_checks_and_fails_scale_checks():
    """A smooth non-invariant loss with exact derivatives: the report separates the two kinds of check,
    naming the point and size of each violation instead of raising."""
    rows = check_identities(NotScaleInvariant(make_model("deep_linear_wn")), np.random.default_rng(0), points=2)
    status = {r.identity: r for r in rows}
    for name in SCALE_IDENTITIES:
        assert status[name].status == "fail"
        assert "violated by" in status[name].message and "‖w‖ =" in status[name].message
        assert len(status[name].point) == 12
    for name in set(IDENTITY_NAMES) - set(SCALE_IDENTITIES):
        assert status[name].status == "pass", name


def test_model_that_raises_is_reported_not_propagated():
    class Raising(WrongHessian):
        def third(self, w, u, v):
            raise FloatingPointError("overflow in third")

    rows = check_identities(Raising(make_model("sphere_circle")), np.random.default_rng(0), names=["fd-third"])
    assert rows[0].status == "error" and "overflow in third" in rows[0].message


def test_unknown_identity_name_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown identities.*valid are"):
        check_identities(make_model("sphere_circle"), np.random.default_rng(0), names=["nope"])


@pytest.mark.parametrize("name", TOY_MODELS)
def test_registered_minimizers_are_minimizers(name):
    """Unit norm, zero gradient, PSD Hessian and rank ∇²L(θ) = D - 1 - dim Γ, for several draws."""
    model = make_model(name, rng=1)
    for seed in range(3):
        for row in check_minimizer(model, model.minimizer(np.random.default_rng(seed))):
            assert row.status == "pass", f"{row.identity}: {row.message}"


def test_minimizer_checks_fail_where_they_must():
    import dataclasses

    model = make_model("mf", rng=1)
    theta = model.minimizer(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    off = theta + 1e-3 * rng.standard_normal(model.dim)
    rows = {r.identity: r.status for r in check_minimizer(model, off / np.linalg.norm(off))}
    assert rows["minimizer-critical"] == "fail"
    rows = {r.identity: r.status for r in check_minimizer(model, 2 * theta)}
    assert rows["minimizer-unit"] == "fail"
    wrong_dim = dataclasses.replace(model, manifold_dim=model.manifold_dim + 1)
    rows = {r.identity: r.status for r in check_minimizer(wrong_dim, theta)}
    assert rows["minimizer-rank"] == "fail"
    # a saddle: the maximizer direction of sphere_circle (x₂ = 1) is critical but not PSD... it is a maximum
    circle = make_model("sphere_circle")
    rows = {r.identity: r.status for r in check_minimizer(circle, np.array([0.0, 0.0, 1.0]))}
    assert rows["minimizer-critical"] == "pass" and rows["minimizer-psd"] == "fail"
