"""The BN networks on digits: the data split, scale invariance and its identities, and negative controls that
must fail them (a trainable readout, an affine BN bias, the un-normalized reference)."""

import functools
import pickle
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("sklearn")
import jax.numpy as jnp  # noqa: E402

from srflow.theory.sharpness import is_dense  # noqa: E402
from srflow.toy_models import REGISTRY, from_jax, make_model  # noqa: E402
from srflow.toy_models import bn_nets  # noqa: E402
from srflow.toy_models.digits import load_digits_split  # noqa: E402
from srflow.verification import check_identities, check_minimizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY_MLP = dict(widths=(3,), n_train=12, n_test=40)      # D = 192: the dense identity path
TINY_CNN = dict(channels=(2, 3), n_train=12, n_test=40)  # D = 72
SMALL_MLP = dict(widths=(32,), n_train=20, n_test=300)   # D = 2048 > DENSE_MAX_DIM: matrix-free; interpolates


@functools.cache
def model(kind, **sizes):
    return make_model(kind, rng=3, **sizes)


def failing(rows):
    return {r.identity: (r.status, r.message) for r in rows if r.status != "pass"}


# -- the data --------------------------------------------------------------------------------------------------
def test_split_is_the_documented_permutation():
    """x_train = standardized rows order[:n_train] of load_digits, order = default_rng(seed).permutation(1797),
    with the training mean and std (σ = 1 for constant pixels); test rows order[n_train:n_train + n_test]."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(5).permutation(1797)
    tr, te = order[:300], order[300:400]
    mu, sd = data.data[tr].mean(axis=0), data.data[tr].std(axis=0)
    sd[sd == 0] = 1.0
    x_train, y_train, x_test, y_test = load_digits_split(300, 100, seed=5)
    assert x_train.dtype == np.float64 and y_train.dtype == np.int64
    np.testing.assert_allclose(x_train, (data.data[tr] - mu) / sd, rtol=0, atol=1e-14)
    np.testing.assert_allclose(x_test, (data.data[te] - mu) / sd, rtol=0, atol=1e-14)
    assert np.array_equal(y_train, data.target[tr]) and np.array_equal(y_test, data.target[te])
    again = load_digits_split(300, 100, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(again, (x_train, y_train, x_test, y_test)))
    assert not np.array_equal(load_digits_split(300, 100, seed=6)[1], y_train)


@pytest.mark.parametrize("args, name", [((1, 5), "n_train"), ((0, 5), "n_train"), ((10, 0), "n_test"),
                                        ((1000, 900), "n_train, n_test"), ((10.5, 5), "n_train")])
def test_bad_split_sizes_raise_naming_the_argument(args, name):
    with pytest.raises((ValueError, TypeError), match=name):
        load_digits_split(*args)


@pytest.mark.parametrize("factory, sizes, name", [
    (bn_nets.bn_mlp, dict(widths=(0,)), "widths"), (bn_nets.bn_mlp, dict(widths=()), "widths"),
    (bn_nets.bn_mlp, dict(widths=7), "widths"), (bn_nets.bn_cnn, dict(channels=(3,)), "channels"),
    (bn_nets.bn_mlp, dict(n_train=0), "n_train"), (bn_nets.bn_cnn, dict(n_test=-1), "n_test"),
    (bn_nets.bn_mlp, dict(target_scale=0.0), "target_scale"), (bn_nets.bn_mlp, dict(normalized=1), "normalized")])
def test_bad_network_sizes_raise_naming_the_argument(factory, sizes, name):
    with pytest.raises((ValueError, TypeError), match=name):
        factory(**sizes)


# -- scale invariance and the identities -------------------------------------------------------------------------
def test_registered_and_default_sizes():
    """Both networks are registered; the default MLP has D ≥ 1e4 and the default CNN D ≤ 1e5."""
    assert {"bn_mlp", "bn_cnn"} <= set(REGISTRY)
    mlp, cnn = model("bn_mlp"), model("bn_cnn")
    assert mlp.dim == 64 * 96 + 96 * 96 >= 10_000 and not is_dense(mlp)
    assert cnn.dim == 9 * 32 + 9 * 32 * 64 <= 100_000
    assert mlp.manifold_dim == mlp.dim - 1 - 10 * 256 and cnn.manifold_dim == cnn.dim - 1 - 10 * 128


def test_registry_imports_without_jax():
    """The registry lists the networks without importing JAX (the factories import it on first use)."""
    code = ("import sys; sys.modules['jax'] = None\n"
            "from srflow.toy_models import REGISTRY; print('bn_mlp' in REGISTRY and 'bn_cnn' in REGISTRY)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr


@pytest.mark.parametrize("kind, sizes", [("bn_cnn", TINY_CNN), ("bn_mlp", SMALL_MLP)])
def test_every_identity_holds(kind, sizes):
    """⟨∇L, w⟩ = 0, L(cw) = L(w), degrees -1/-2/-3, ∇²L w = -∇L, ∇³L[w, v] = -2∇²L v, symmetry, and grad/HVP/
    third against finite differences: dense at D ≤ 400, matrix-free (HVPs, directional differences) above."""
    m = model(kind, **sizes)
    assert is_dense(m) == (m.dim <= 400)
    assert failing(check_identities(m, np.random.default_rng(0), points=2)) == {}


def test_identities_hold_at_the_default_size():
    """The same identities on the default BN MLP (D = 15,360), matrix-free, at one probe."""
    names = ("invariance", "euler-grad", "hess-degree", "hess-radial", "fd-grad", "fd-hess")
    assert failing(check_identities(model("bn_mlp"), np.random.default_rng(1), points=1, names=names)) == {}


def _readout_trainable(params, x, targets):
    """A trainable last layer: L(c w) ≠ L(w) (the readout scales the output)."""
    a, _ = bn_nets.mlp_outputs(params["hidden"], x, x[:1])
    return 0.5 * jnp.mean(jnp.sum((a @ params["readout"].T - targets) ** 2, axis=1))


def _affine_bias(params, x, targets, readout):
    """BN with an affine bias β after the normalization: tanh(BN(W x) + β); β's scale changes L."""
    a = x
    for w, beta in zip(params["hidden"], params["beta"]):
        z, _ = bn_nets.batchnorm(a @ w.T, a[:1] @ w.T, axes=(0,))
        a = jnp.tanh(z + beta)
    return 0.5 * jnp.mean(jnp.sum((a @ readout.T - targets) ** 2, axis=1))


def broken_variants():
    x, y, _, _ = load_digits_split(12, 1)
    targets = np.eye(10)[y]
    rng = np.random.default_rng(0)
    hidden = [rng.standard_normal((3, 64))]
    readout = rng.standard_normal((10, 3))
    return {
        "trainable-readout": from_jax(partial(_readout_trainable, x=x, targets=targets),
                                      {"hidden": hidden, "readout": readout}, name="trainable-readout"),
        "affine-bias": from_jax(partial(_affine_bias, x=x, targets=targets, readout=readout),
                                {"hidden": hidden, "beta": [np.ones(3)]}, name="affine-bias"),
        "unnormalized": model("bn_mlp", normalized=False, **TINY_MLP),
    }


@pytest.mark.parametrize("variant", ["trainable-readout", "affine-bias", "unnormalized"])
def test_broken_variants_fail_the_identities(variant):
    """Companion: a trainable readout, an affine BN bias, or no BN at all break scale invariance, and the same
    identity machinery reports it (invariance and the Euler relations fail)."""
    m = broken_variants()[variant]
    bad = failing(check_identities(m, np.random.default_rng(0), points=2))
    assert {"invariance", "euler-grad", "hess-radial"} <= set(bad), bad


def test_unnormalized_reference_is_flagged():
    """normalized=False: the generalization reference has no Γ (no minimizer) and says it is not scale-invariant."""
    m = model("bn_mlp", normalized=False, **TINY_MLP)
    assert m.scale_invariant is False and not hasattr(m, "minimizer") and m.name == "bn_mlp_plain"
    assert model("bn_mlp", **TINY_MLP).scale_invariant is True


# -- Γ, errors, pickling -----------------------------------------------------------------------------------------
def test_minimizer_is_a_zero_loss_point_of_gamma(tmp_path, monkeypatch):
    """minimizer(rng): unit norm, L = 0 to round-off, critical and PSD (check_minimizer, matrix-free at D = 2048),
    every training image classified correctly; the same rng gives the same point (and the disk cache is used)."""
    monkeypatch.setenv("SRFLOW_CACHE_DIR", str(tmp_path))
    m = model("bn_mlp", **SMALL_MLP)
    bn_nets._minimizer_cached.cache_clear()
    theta = m.minimizer(np.random.default_rng(4))
    assert abs(np.linalg.norm(theta) - 1) < 1e-14 and m.loss(theta) < 1e-26
    assert failing(check_minimizer(m, theta)) == {}
    assert m.train_error(theta) == 0.0 and m.test_error(theta) < 0.5
    assert len(list(tmp_path.glob("minimizer_bn_mlp_*.npy"))) == 1
    bn_nets._minimizer_cached.cache_clear()
    assert np.array_equal(m.minimizer(np.random.default_rng(4)), theta)


def test_errors_and_pickling():
    """0-1 errors are fractions of the split sizes; a pickled model rebuilds with the same loss and errors."""
    m = model("bn_cnn", **TINY_CNN)
    w = np.random.default_rng(2).standard_normal(m.dim)
    err = m.test_error(w)
    assert 0 <= err <= 1 and err * 40 == round(err * 40)
    twin = pickle.loads(pickle.dumps(m))
    assert twin.dim == m.dim and twin.loss(w) == m.loss(w) and twin.test_error(w) == err
    assert twin.train_error(w) == m.train_error(w)


# -- the matrix-free theory on a network, against the dense one ---------------------------------------------------
@pytest.mark.slow
def test_matrix_free_theory_equals_the_dense_one_on_a_network(monkeypatch):
    """At θ ∈ Γ of the D = 2048 MLP: λ₁, ∇_Γ log λ₁ (tangent projection by LSQR on the residual's JVP/VJP) and
    Σ_{i≥2}⟨v_i, T⟩²/(λ₁ - λ_i) (CG) equal the dense eigendecomposition's to the solvers' accuracy
    (MATRIX_FREE_RTOL relative); Gauss-Newton lands on Γ; rank ∇²L(θ) = 10·n_train (the stated dim Γ)."""
    from srflow.theory import manifold, matrix_free
    import importlib

    sharpness_module = importlib.import_module("srflow.theory.sharpness")  # the module (theory.sharpness is a function)
    from srflow.verification.tolerances import MATRIX_FREE_RTOL

    m = model("bn_mlp", **SMALL_MLP)
    theta = m.minimizer(np.random.default_rng(0))
    free = matrix_free.manifold_point_matrix_free(m, theta)
    w = theta + 0.01 * free.v1
    mf_newton = matrix_free.newton_steps(m, w / np.linalg.norm(w), free.lam1)
    monkeypatch.setattr(sharpness_module, "DENSE_MAX_DIM", 5000)
    dense = manifold.manifold_point(m, theta)  # eigh of the 2048² Hessian, dense tangent basis
    vals, vecs = np.linalg.eigh(m.hess(theta))
    t = m.third(theta, dense.v1, dense.v1)
    second = float(np.sum((vecs[:, :-1].T @ t) ** 2 / (dense.lam1 - vals[:-1])))
    rel = {"lam1": abs(free.lam1 - dense.lam1) / dense.lam1,
           "grad_log": np.linalg.norm(free.grad_log - dense.grad_log) / np.linalg.norm(dense.grad_log),
           "second": abs(matrix_free.second_order_sum(m, theta, free.lam1, free.v1, t) - second) / second}
    assert max(rel.values()) <= MATRIX_FREE_RTOL, rel
    assert m.loss(mf_newton) < 1e-26  # Gauss-Newton lands on Γ (L = 0 to round-off)
    assert np.sum(np.abs(vals) > 1e-6 * vals[-1]) == m.dim - 1 - m.manifold_dim == 10 * SMALL_MLP["n_train"]


def test_phi_on_a_network_is_matrix_free_and_lands_on_gamma(monkeypatch):
    """Φ(θ + a v₁) at the EoS offset a = √(ηλ/2), ηλ = 1e-3, on the D = 2048 MLP with ``hess`` disabled (it
    raises): unit norm, ‖∇L(Φ)‖ ≤ CRITICAL_RTOL·λ₁ (a critical point), L(Φ) = 0 to round-off, and Φ is a fixed
    point of its own flow (Φ(Φ(w̄)) = Φ(w̄))."""
    from srflow.theory import manifold_point, project_to_manifold
    from srflow.verification.tolerances import CRITICAL_RTOL

    m = make_model("bn_mlp", rng=3, **SMALL_MLP)  # a fresh model: its hess is patched
    monkeypatch.setattr(m, "hess", lambda w: (_ for _ in ()).throw(AssertionError("dense Hessian requested")))
    theta = m.minimizer(np.random.default_rng(0))
    mp = manifold_point(m, theta)
    phi = project_to_manifold(m, theta + np.sqrt(1e-3 / 2) * mp.v1).theta
    assert abs(np.linalg.norm(phi) - 1) < 1e-14 and m.loss(phi) < 1e-26
    assert np.linalg.norm(m.grad(phi)) <= CRITICAL_RTOL * mp.lam1
    assert 0 < np.linalg.norm(phi - theta) < 0.1
    assert np.linalg.norm(project_to_manifold(m, phi).theta - phi) <= 1e-12


@pytest.mark.slow
def test_the_checks_run_on_the_bn_mlp_matrix_free(monkeypatch):
    """The checks of ``srflow verify --quick`` (``verification.checks.CHECKS`` in a ``Session``, as a verify job
    runs them) on bn_mlp (D = 15,360) with its ``hess`` raising: eos-equilibrium, flow-tracking,
    naive-flow-rejected and no-wd-clock each produce a verdict (pass, fail, inconclusive or assumption-violated --
    whichever is measured), none an internal error or a dense Hessian."""
    from srflow.verification.checks import CHECKS
    from srflow.verification.session import QUICK, Session

    m = make_model("bn_mlp")
    monkeypatch.setattr(m, "hess", lambda w: (_ for _ in ()).throw(AssertionError("dense Hessian requested")))
    session = Session(m, QUICK, seed=0)
    for name in ["eos-equilibrium", "flow-tracking", "naive-flow-rejected", "no-wd-clock"]:
        r = CHECKS[name](session)
        assert r.status in ("pass", "fail", "inconclusive", "assumption-violated"), (name, r.status, r.message)


def test_matrix_free_minimizer_check_rejects_a_random_point():
    """Companion: at a random unit point of the D = 2048 MLP, check_minimizer (matrix-free) fails the critical
    and PSD rows (∇²L has negative eigenvalues there)."""
    m = model("bn_mlp", **SMALL_MLP)
    w = np.random.default_rng(8).standard_normal(m.dim)
    bad = failing(check_minimizer(m, w / np.linalg.norm(w)))
    assert {"minimizer-critical", "minimizer-psd"} <= set(bad), bad
