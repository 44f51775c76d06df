"""JAX models: autodiff of a loss written in jax.numpy equals the closed forms, and a JAX model is a model."""

import functools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from srflow.toy_models import TOY_MODELS, from_jax, make_model  # noqa: E402
from srflow.toy_models import jax_models  # noqa: E402
from srflow.toy_models.jax_losses import make_jax_model  # noqa: E402
from srflow.verification import check_identities  # noqa: E402
from srflow.verification.tolerances import EXACT_VS_EXACT_RTOL  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def twins(name):
    return make_model(name, rng=7), make_jax_model(name, rng=7)


def scaled(a, b) -> float:
    """‖a - b‖ in units of EXACT_VS_EXACT_RTOL·‖b‖ (b: the closed form)."""
    a, b = np.asarray(a), np.asarray(b)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    return float(np.linalg.norm(a - b) / (EXACT_VS_EXACT_RTOL * max(np.linalg.norm(b), 1e-300)))


@pytest.mark.parametrize("name", TOY_MODELS)
def test_autodiff_equals_the_closed_forms(name):
    """At drawn points w and directions u, v: L, ∇L, ∇²L, ∇²L v and ∇³L[u, v, ·] of the jax.numpy loss
    (autodiff) equal the numpy closed forms to round-off (EXACT_VS_EXACT_RTOL, relative)."""
    ref, jm = twins(name)
    assert jm.dim == ref.dim
    rng = np.random.default_rng([3, ref.dim])
    for _ in range(3):
        w, u, v = rng.standard_normal((3, ref.dim))
        w *= rng.uniform(0.5, 2.0) / np.linalg.norm(w)
        errors = {"loss": scaled(jm.loss(w), ref.loss(w)), "grad": scaled(jm.grad(w), ref.grad(w)),
                  "hess": scaled(jm.hess(w), ref.hess(w)), "hvp": scaled(jm.hvp(w, v), ref.hvp(w, v)),
                  "third": scaled(jm.third(w, u, v), ref.third(w, u, v))}
        assert max(errors.values()) <= 1.0, f"{name}: scaled errors {errors}"


def test_the_comparison_sees_a_wrong_loss():
    """Companion: a JAX loss off by a factor 1 + 1e-9 is rejected by the same comparison."""
    ref, jm = twins("mf")
    wrong = from_jax(lambda w: (1 + 1e-9) * jm.jax_loss(w), ref.dim)
    w = np.random.default_rng(0).standard_normal(ref.dim)
    assert scaled(wrong.grad(w), ref.grad(w)) > 1.0


@pytest.mark.parametrize("name", ["mf", "bn_linear", "sympy_rayleigh"])
def test_jax_twin_passes_every_identity(name):
    """Scale invariance, Euler relations, symmetries and finite differences hold for the JAX twins."""
    rows = check_identities(twins(name)[1], np.random.default_rng(1), points=2)
    assert [r.identity for r in rows if r.status != "pass"] == []


def test_the_twin_has_the_same_manifold():
    """make_jax_model carries minimizer and dim Γ over; the minimizer is a critical point of the JAX loss."""
    ref, jm = twins("mf")
    assert jm.manifold_dim == ref.manifold_dim and jm.name == "mf"
    theta = jm.minimizer(np.random.default_rng(2))
    assert np.linalg.norm(jm.grad(theta)) <= 1e-12 * np.linalg.eigvalsh(jm.hess(theta))[-1]


def _pytree_loss(params):
    """A normalized factorization over a dict of factors: ½‖c ŪV̄ᵀ - Y‖², Y = diag(1, 0)·1.2."""
    u, v = params["U"], params["V"]
    pred = 1.5 * u @ v.T / (jnp.linalg.norm(u) * jnp.linalg.norm(v))
    return 0.5 * jnp.sum((pred - jnp.diag(jnp.array([1.2, 0.0]))) ** 2)


def test_pytree_loss_is_flattened_in_ravel_pytree_order():
    """A loss of a dict of matrices equals the same loss of the flat vector (ravel_pytree order: keys sorted,
    row-major), and its gradient is the flattened pytree gradient."""
    template = {"U": np.zeros((2, 2)), "V": np.zeros((2, 2))}
    m = from_jax(_pytree_loss, template)
    rng = np.random.default_rng(4)
    u, v = rng.standard_normal((2, 2, 2))
    w = np.concatenate([u.ravel(), v.ravel()])
    assert m.dim == 8
    assert m.loss(w) == pytest.approx(float(_pytree_loss({"U": u, "V": v})), rel=1e-15)
    g = jax.grad(_pytree_loss)({"U": jnp.asarray(u), "V": jnp.asarray(v)})
    assert np.allclose(m.grad(w), np.concatenate([np.ravel(g["U"]), np.ravel(g["V"])]), rtol=1e-14, atol=0)


def test_models_pickle_and_rebuild():
    """A registered twin pickles by its spec, a model of a module-level loss by its loss; the copy computes
    the same numbers (its compiled functions are rebuilt on first use)."""
    w = np.random.default_rng(5).standard_normal(8)
    for model in (make_jax_model("sym_mf", rng=np.random.default_rng(9)),
                  from_jax(_pytree_loss, {"U": np.zeros((2, 2)), "V": np.zeros((2, 2))}, name="tree")):
        model.grad(w)
        copy = pickle.loads(pickle.dumps(model))
        assert copy.name == model.name and copy.dim == model.dim
        assert np.array_equal(copy.grad(w), model.grad(w))
        assert np.array_equal(copy.third(w, w, w), model.third(w, w, w))


@pytest.mark.parametrize("call, match", [
    (lambda m: m.loss(np.ones(3)), "w: expected shape"),
    (lambda m: m.grad(np.zeros(8)), "w: expected a nonzero"),
    (lambda m: m.hvp(np.ones(8), np.ones(2)), "v: expected shape"),
    (lambda m: m.third(np.ones(8), [np.nan] * 8, np.ones(8)), "u: expected finite"),
    (lambda m: m.grad(np.r_[np.zeros(4), np.ones(4)]), "w: the gradient is not finite"),
])
def test_bad_input_names_the_argument(call, match):
    m = from_jax(_pytree_loss, {"U": np.zeros((2, 2)), "V": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=match):
        call(m)


def test_bad_construction_and_large_hessians_are_refused(monkeypatch):
    with pytest.raises(TypeError, match="loss: expected a callable"):
        from_jax("not a function", 3)
    with pytest.raises(ValueError, match="w0_or_dim"):
        from_jax(lambda w: w[0], 0)
    m = from_jax(lambda w: jnp.sum(w) ** 2 / jnp.sum(w * w), 3)
    assert not hasattr(m, "minimizer")
    monkeypatch.setattr(jax_models, "HESS_MAX_DIM", 2)
    with pytest.raises(ValueError, match="HESS_MAX_DIM = 2"):
        m.hess(np.ones(3))


def test_core_imports_without_jax():
    """toy_models, theory and verification import with JAX unavailable (the extra is optional)."""
    code = ("import sys; sys.modules['jax'] = None; import srflow.toy_models, srflow.theory, "
            "srflow.verification.simulate, srflow.verification.verify; "
            "m = srflow.toy_models.make_model('mf'); print(m.dim)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "16"


USER_MODEL = '''
import jax.numpy as jnp
import numpy as np
from srflow.toy_models import from_jax

Y = np.array([[0.6, 0.2, 0.0], [0.0, 0.3, -0.1], [0.1, 0.0, 0.4]])
Y = Y / np.linalg.svd(Y, compute_uv=False).sum()   # nuclear norm 1, so c = 1.5 > 1 leaves Γ non-empty


def loss(w):
    u, v = w[:6].reshape(3, 2), w[6:].reshape(3, 2)
    pred = 1.5 * u @ v.T / (jnp.linalg.norm(u) * jnp.linalg.norm(v))
    return 0.5 * jnp.mean((pred - Y) ** 2)


def make():
    return from_jax(loss, 12, name="user_jax_mf")
'''


def test_verify_runs_on_a_file_that_defines_only_a_jax_loss(tmp_path):
    """`srflow verify --model file.py:make` on a normalized factorization given only as a jax.numpy loss:
    the identity check (scale invariance, exact derivatives against finite differences, θ₀ ∈ Γ) passes."""
    path = tmp_path / "user_model.py"
    path.write_text(USER_MODEL)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "srflow", "verify", "--model", f"{path}:make", "--quick",
                          "--checks", "identities", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((out / "report.json").read_text())["checks"]
    assert [(r["model"], r["name"], r["status"]) for r in results] == [("user_jax_mf", "identities", "pass")]


@pytest.mark.slow
def test_verify_runs_a_jax_model_in_worker_processes(tmp_path):
    """Two check groups on two workers: the JAX model is rebuilt in spawned workers (fork is unsafe once JAX is
    loaded) and the compiled runs give verdicts."""
    path = tmp_path / "user_model.py"
    path.write_text(USER_MODEL)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "srflow", "verify", "--model", f"{path}:make", "--quick",
                          "--checks", "identities", "normalized-gd", "--workers", "2", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    results = json.loads((out / "report.json").read_text())["checks"]
    assert sorted(r["name"] for r in results) == ["identities", "normalized-gd"], run.stdout + run.stderr
    assert {r["name"]: r["status"] for r in results} == {"identities": "pass", "normalized-gd": "pass"}


@pytest.mark.slow
def test_every_check_on_a_file_that_defines_only_a_jax_loss(tmp_path):
    """The JAX-loss file through every check (quick): all pass, except GD on √L, whose assumption min L = 0 does
    not hold for this target (L(θ₀) ≈ 2e-3) -- reported as such, not as a fail."""
    path = tmp_path / "user_model.py"
    path.write_text(USER_MODEL)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "srflow", "verify", "--model", f"{path}:make", "--quick",
                          "--workers", "1", "--out", str(out), "--quiet"], capture_output=True, text=True, cwd=ROOT,
                         timeout=1800)
    results = {r["name"]: r for r in json.loads((out / "report.json").read_text())["checks"]}
    assert run.returncode == 0, run.stdout + run.stderr
    assert results.pop("sqrt-loss-gd")["status"] == "assumption-violated"
    assert {name: r["status"] for name, r in results.items()} == {name: "pass" for name in results}, results
    assert len(results) == 8


def test_deep_runs_the_jax_twins_down_to_1e_7():
    """`srflow verify --deep`: registered models become their JAX twins (spec jax:NAME) and the ladder reaches
    ηλ = 1e-7."""
    from srflow.cli import _config, build_parser
    from srflow.verification.verify import build_model

    args = build_parser().parse_args(["verify", "--deep"])
    assert min(_config(args)[0].ladder) == 1e-7 and args.deep
    assert min(_config(build_parser().parse_args(["verify"]))[0].ladder) > 1e-7
    model = build_model("jax:mf", 0)
    assert isinstance(model, jax_models.JaxModel) and model.name == "mf"
    assert np.allclose(model.grad(np.ones(16)), make_model("mf", rng=0).grad(np.ones(16)), rtol=1e-12, atol=1e-15)


def test_low_rank_mf_loss_equals_the_closed_forms(monkeypatch):
    """The factored mf loss (``factorization_low_rank``, used for fully observed targets of ≥ LOW_RANK_MIN_ENTRIES
    entries) equals the numpy closed forms to round-off (L, ∇L, ∇²L v, ∇³L[u, v, ·]), is ≥ 0 and at round-off on Γ
    (no cancellation), and a partly observed target keeps the direct form."""
    from srflow.toy_models import jax_losses

    monkeypatch.setattr(jax_losses, "LOW_RANK_MIN_ENTRIES", 0)
    ref = make_model("mf", rng=5, m=6, n=9, rank=3)
    jm = make_jax_model("mf", rng=5, sizes={"m": 6, "n": 9, "rank": 3})
    assert jm.loss_fn.func is jax_losses.factorization_low_rank
    rng = np.random.default_rng(4)
    for _ in range(2):
        w, u, v = rng.standard_normal((3, ref.dim))
        errors = {"loss": scaled(jm.loss(w), ref.loss(w)), "grad": scaled(jm.grad(w), ref.grad(w)),
                  "hvp": scaled(jm.hvp(w, v), ref.hvp(w, v)), "third": scaled(jm.third(w, u, v), ref.third(w, u, v))}
        assert max(errors.values()) <= 1.0, errors
    theta = jm.minimizer(np.random.default_rng(0))
    assert 0.0 <= jm.loss(theta) <= 1e-28
    assert np.linalg.norm(jm.grad(theta)) <= 1e-14
    partial_obs = make_jax_model("mf_completion", rng=5, sizes={"m": 6, "n": 9, "rank": 2})
    assert partial_obs.loss_fn.func is jax_losses.factorization


_COMPILE_ONE = ("import os, time, jax.numpy as jnp; from srflow.toy_models import from_jax; "
                "m = from_jax(lambda w: (w[0] / jnp.linalg.norm(w)) ** 4, 3); m.hvp([1.0, 2.0, 3.0], [1.0, 0.0, 0.0]); "
                "import jax; print(jax.config.jax_compilation_cache_dir or '')")


@pytest.mark.parametrize("env, used", [({}, True), ({"SRFLOW_JAX_CACHE": "0"}, False)])
def test_compiled_programs_are_kept_in_the_srflow_cache_unless_disabled(tmp_path, env, used):
    """A JAX model's compiled programs go to cache_dir()/jax (JAX's persistent compilation cache), so a second
    process loads them; with SRFLOW_JAX_CACHE=0 nothing is kept (must fail if the switch is ignored)."""
    import os

    run_env = {**os.environ, "SRFLOW_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), **env}
    run = subprocess.run([sys.executable, "-c", _COMPILE_ONE], capture_output=True, text=True, cwd=ROOT,
                         env=run_env, timeout=120)
    assert run.returncode == 0, run.stderr
    entries = list((tmp_path / "jax").glob("*")) if (tmp_path / "jax").exists() else []
    if used:
        assert run.stdout.strip() == str(tmp_path / "jax") and len(entries) >= 1, (run.stdout, entries)
    else:
        assert run.stdout.strip() == "" and entries == [], (run.stdout, entries)
