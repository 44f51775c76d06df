"""One θ₀ for one (model, seed) on every path (issue 22, item 7): ``srflow verify`` on the numpy model, ``--deep`` on
its JAX twin, a ``srflow sweep`` cell and a ``Session`` built from the API all start from ``session.start_point``.

The values compared are obtained independently, each through its own path: the θ₀ files ``srflow verify`` writes
beside its report (numpy models, and ``--deep``'s JAX twins), the sha256 and λ₁(θ₀) a sweep cell stores, and the
sessions built from the numpy model and from ``make_jax_model`` without a spec."""

import hashlib
import json

import numpy as np
import pytest

from srflow.cli import main
from srflow.toy_models import make_model
from srflow.verification.session import QUICK, Session, draw_key, start_point
from srflow.verification.sweep_cells import run_check_cell
from srflow.verification.verify import run_job

jax_losses = pytest.importorskip("srflow.toy_models.jax_losses")

MODELS = ("sphere_circle", "mf", "bn_linear")
SEEDS = (0, 5)


def _sha(theta) -> str:
    return hashlib.sha256(np.ascontiguousarray(theta, dtype=np.float64).tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """θ₀ of every (mode, model, seed) as ``srflow verify [--deep] --checks identities`` saves it (theta0-<model>.npy),
    with the report's model_info; ``--deep`` at the second seed: the job it runs (``verify.run_job`` on jax:NAME)."""
    starts = {}
    for seed in SEEDS:
        for mode, extra in (("numpy", []), ("deep", ["--deep"])):
            if mode == "deep" and seed != SEEDS[0]:  # the CLI's JAX set-up costs ~5 s: the job it runs, directly
                for model in MODELS:
                    out = []
                    run_job(f"jax:{model}", 0, ("identities",), QUICK, seed, True, out.append)
                    starts[mode, model, seed] = (out[0].theta0, out[0].model_info)
                continue
            out = tmp_path_factory.mktemp(f"{mode}{seed}") / "out"
            code = main(["verify", "--workers", "1", "--quiet", "--yes", *extra, "--models", *MODELS,
                         "--checks", "identities", "--seed", str(seed), "--out", str(out)])
            assert code == 0
            rep = json.loads((out / "report.json").read_text())
            info = {c["model"]: c["model_info"] for c in rep["checks"]}
            for model in MODELS:
                assert info[model]["spec"] == (f"jax:{model}" if mode == "deep" else model)
                starts[mode, model, seed] = (np.load(out / rep["theta0_files"][model]), info[model])
    return starts


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("seed", SEEDS)
def test_one_theta0_on_every_path(saved, model, seed):
    """numpy verify == --deep (its JAX twin) == a sweep cell == the API's sessions (numpy model and JAX twin,
    no spec): exactly, since the twin's Γ point is the numpy minimizer's, normalized once more (≤ 1 ulp)."""
    theta, info = saved["numpy", model, seed]
    deep, deep_info = saved["deep", model, seed]
    np.testing.assert_allclose(deep, theta, rtol=1e-12, atol=1e-15)
    assert deep_info["lam1_theta0"] == pytest.approx(info["lam1_theta0"], rel=1e-10)
    cell = run_check_cell({"model": model, "seed": seed, "check": "identities"}, QUICK)
    assert cell["status"] == "pass"
    assert cell["result"]["model_info"]["theta0_sha256"] == info["theta0_sha256"] == _sha(theta)
    api = Session(make_model(model, rng=seed), QUICK, seed).theta0
    twin = Session(jax_losses.make_jax_model(model, rng=seed), QUICK, seed).theta0
    np.testing.assert_array_equal(api, theta)
    np.testing.assert_allclose(twin, theta, rtol=1e-12, atol=1e-15)


def test_the_paths_can_disagree(saved):
    """Must fail: the comparison above separates starts -- another seed gives another θ₀ on each model, and
    so does another model spec (a user's file spec is its own key)."""
    for model in MODELS:
        a, b = saved["numpy", model, SEEDS[0]][0], saved["numpy", model, SEEDS[1]][0]
        assert np.max(np.abs(a - b)) > 1e-3
        other = start_point(make_model(model, rng=SEEDS[0]), SEEDS[0], spec=f"my_{model}.py:make")
        assert np.max(np.abs(other - a)) > 1e-3


def test_draw_key():
    """jax:NAME draws as NAME; an API session of a registered model as its name; others keep their spec."""
    sc = make_model("sphere_circle")
    assert draw_key(sc, "jax:sphere_circle") == draw_key(sc, "sphere_circle") == draw_key(sc) == "sphere_circle"
    assert draw_key(sc, "zoo:x-s1") == "zoo:x-s1" and draw_key(sc, "jax:nope") == "jax:nope"

    class Anonymous:
        dim = 3
    assert draw_key(Anonymous()).endswith("(dim=3)")


def test_start_point_rejects_a_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        start_point(make_model("mf"), -1)
    with pytest.raises(ValueError, match="seed"):
        start_point(make_model("mf"), 0.5)


def test_every_draw_of_the_twin_is_the_numpy_models():
    """Not only θ₀: the other draws of a session (eos-entry's start, the identities' points) are the twin's too."""
    a = Session(make_model("mf", rng=2), QUICK, 2, spec="mf")
    b = Session(jax_losses.make_jax_model("mf", rng=2), QUICK, 2, spec="jax:mf")
    for purpose in ("eos-entry", "identities", "collapse twin"):
        np.testing.assert_array_equal(a.rng(purpose).standard_normal(4), b.rng(purpose).standard_normal(4))


def _rayleigh_sympy(minimizer_fn=None):
    import sympy as sp

    from srflow.toy_models import SympyModel

    w = sp.symbols("w0:3", real=True)
    expr = sp.Rational(1, 2) * ((w[0]**2 + 2 * w[1]**2 + 4 * w[2]**2) / (w[0]**2 + w[1]**2 + w[2]**2)
                                - sp.Rational(5, 2))**2
    return SympyModel(expr, w, name="rq3", minimizer_fn=minimizer_fn)


def test_a_minimizer_that_raises_not_implemented_counts_as_absent():
    """A SympyModel without ``minimizer_fn`` has a ``minimizer`` that raises NotImplementedError (no construction
    known): θ₀ is then found by the flow to Γ, as for a model without the method (README: "without a minimizer(rng)
    method a point of Γ is found by gradient flow"); it was a NotImplementedError reported as eight FAILs."""
    from srflow.toy_models import minimizer_point

    model = _rayleigh_sympy()
    assert minimizer_point(model, np.random.default_rng(0)) is None
    theta = start_point(model, 0)
    assert abs(np.linalg.norm(theta) - 1) < 1e-12 and model.loss(theta) < 1e-20
    # with a construction, it is used
    point = np.array([np.sqrt(0.5), 0.0, np.sqrt(0.5)])  # ½·1 + ½·4 = 5/2 on Γ
    assert np.allclose(start_point(_rayleigh_sympy(lambda rng: point), 0), point)


def test_a_bug_in_a_check_is_an_error_not_a_fail():
    """``session.guard`` turns a diverging run (a RuntimeError) into FAIL; a NotImplementedError or RecursionError
    (RuntimeError subclasses) is a bug, not a verdict: it propagates, and the runner reports an error."""
    from srflow.verification.session import guard
    from srflow.verification.verdicts import Status

    session = Session(make_model("sphere_circle", rng=0), QUICK, 0)

    def raising(exc):
        def run():
            raise exc
        return run

    assert guard(session, "flow-tracking", raising(RuntimeError("diverged at step 7"))).status == Status.FAIL
    for exc in (NotImplementedError("no construction"), RecursionError("deep")):
        with pytest.raises(type(exc)):
            guard(session, "flow-tracking", raising(exc))
