"""``srflow sweep``: a tiny sweep on a LocalCluster, its dataset against a direct computation, provenance, resume
from a partly filled cache, a corrupt cache entry, check cells, spec validation, ``to_xarray``, the examples in
docs/examples, and (slow) a real ``dask scheduler`` with two ``dask worker`` processes, one killed mid-sweep."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import srflow.theory as th
from waiting import wait_for
from srflow.toy_models import make_model
from srflow.verification.tracking import clock_error, path_error
from srflow.cli import main
from srflow.verification.session import QUICK, Session
from srflow.verification.sweep import SpecError, load_spec, make_cells, parse_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = """\
models = ["sphere_circle"]
seeds = [0, 1]
eta_lambda = [{ladder}]
[config]
base = "quick"
tau_end = 0.04
records = 9
"""
LADDER = "4e-3, 2e-3, 1e-3"


def _spec(folder: Path, ladder: str = LADDER, name: str = "tiny.toml") -> Path:
    path = folder / name
    path.write_text(TINY.format(ladder=ladder))
    return path


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _cache_files(cache: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in cache.rglob("*.json")}


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A sweep of 2 of the 3 rungs (4 cells), then the full spec on the same cache through ``srflow sweep``
    (LocalCluster): the second run must compute only the 2 cells of the new rung."""
    folder = tmp_path_factory.mktemp("sweep")
    cache = folder / "cache"
    assert main(["sweep", str(_spec(folder, "4e-3, 1e-3", "part.toml")), "--out", str(folder / "part"),
                 "--cache", str(cache), "--quiet", "--allow-short-ladder"]) == 0
    before = _cache_files(cache)
    assert main(["sweep", str(_spec(folder)), "--out", str(folder / "full"), "--cache", str(cache), "--quiet",
                 "--allow-short-ladder"]) == 0
    return folder, cache, before


def test_sweep_dataset_matches_direct_computation(resumed):
    """The dataset opens with xarray, has the coordinates (model, seed, eta_lambda, record; step and τ), every cell
    finished, and its errors equal the flow-tracking check's functions applied to the same run computed here."""
    folder, _, _ = resumed
    ds = xr.open_dataset(folder / "full" / "sweep.nc")
    assert dict(ds.sizes)["model"] == 1 and list(ds.seed.values) == [0, 1]
    assert list(ds.eta_lambda.values) == [4e-3, 2e-3, 1e-3]
    assert ds.finished.values.all() and set(ds.status.values.ravel()) == {"ok"}
    assert ds.attrs["complete"] == 1
    # the cell (sphere_circle, seed 1, ηλ = 2e-3), computed directly as srflow verify --seed 1 does
    cfg = load_spec(folder / "tiny.toml").config
    session = Session(make_model("sphere_circle", rng=1), cfg, 1, spec="sphere_circle")
    tr = session.gdwd_run(2e-3)
    flow = th.sharpness_reduction_flow(session.model, session.theta0, 2 * cfg.tau_end / (1 - 0.3) + 0.05, n_out=401)
    cell = ds.sel(model="sphere_circle", seed=1, eta_lambda=2e-3)
    assert np.isclose(cell.path_error, path_error(tr, flow), rtol=1e-9, atol=0)
    assert np.isclose(cell.clock_error, clock_error(tr, flow, th.gdwd_steps(flow, tr.lr, tr.wd)), rtol=1e-9, atol=0)
    n = len(tr.steps)
    np.testing.assert_array_equal(cell.step.values[:n], tr.steps)
    np.testing.assert_allclose(cell.tau.values[:n], 2e-3 * tr.steps, rtol=1e-12)
    np.testing.assert_array_equal(cell.norm_sq.values[:n], tr.norm_sq)
    assert np.isnan(cell.norm_sq.values[n:]).all()
    # EoS: η_eff·λ₁ ≈ 2 on every run (within 2% at these ηλ)
    assert np.all(np.abs(ds.eta_eff_lam1_mean.values - 2) < 0.04)
    # 3 rungs over 0.6 decades: a short ladder (as srflow verify says), its verdicts inconclusive, with the note
    assert set(ds.path_verdict.values.ravel()) == set(ds.clock_verdict.values.ravel()) == {"inconclusive"}
    assert all("fewer than 4 over 1.5" in str(r) for r in ds.path_verdict_reason.values.ravel())
    assert "3 distinct values over 0.60 decades" in json.loads(ds.attrs["notes"])[0]


def test_provenance_in_attrs_and_sidecar(resumed):
    """Command line, spec, seeds, versions, code version and the git revision of this checkout (asked of git
    here) are in the dataset's attrs and in sweep.json."""
    folder, _, _ = resumed
    ds = xr.open_dataset(folder / "full" / "sweep.nc")
    side = json.loads((folder / "full" / "sweep.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert ds.attrs["git_revision"] == side["git_revision"] == head.stdout.strip()
        assert ds.attrs["git_revision_source"] == "checkout"
    assert "sweep" in ds.attrs["command"] and "tiny.toml" in ds.attrs["command"]
    assert ds.attrs["spec"] == side["spec"] == TINY.format(ladder=LADDER)
    assert list(ds.attrs["seeds"]) == [0, 1]
    versions = json.loads(ds.attrs["versions"])
    assert versions == side["versions"] and "dask" in versions and "xarray" in versions
    assert len(ds.attrs["code_version"]) == 16 and ds.attrs["code_version"] == side["code_version"]


def test_resume_recomputes_nothing_that_finished(resumed):
    """After a sweep of 2 rungs, the 3-rung sweep reads those 4 cells from the cache (files untouched) and
    computes only the 2 cells of the new rung."""
    folder, cache, before = resumed
    side = json.loads((folder / "full" / "sweep.json").read_text())
    assert side["counts"] == {"cells": 6, "finished": 6, "from_cache": 4, "computed": 2, "errors": 0}
    computed = [e["cell"] for e in side["cells"] if e["source"] == "computed"]
    assert sorted(computed) == ["sphere_circle seed=0 ηλ=0.002", "sphere_circle seed=1 ηλ=0.002"]
    after = _cache_files(cache)
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())


def test_rerun_from_cache_and_corrupt_entry(resumed, tmp_path):
    """A rerun reads every cell from the cache and gives the same dataset; a corrupt entry warns, is recomputed
    (only it) and gives the same numbers again."""
    folder, cache, _ = resumed
    cache2 = tmp_path / "cache"
    shutil.copytree(cache, cache2)
    spec = load_spec(folder / "tiny.toml")
    ds1, side1 = run_sweep(spec, tmp_path / "again", cache2, quiet=True)
    assert side1["counts"]["from_cache"] == 6 and side1["counts"]["computed"] == 0
    full = xr.load_dataset(folder / "full" / "sweep.nc")
    xr.testing.assert_equal(ds1, full)
    victim = next(cache2.rglob("*.json"))
    victim.write_text('{"key": "trunc')
    with pytest.warns(RuntimeWarning, match="unreadable"):
        ds2, side2 = run_sweep(spec, tmp_path / "repaired", cache2, quiet=True, processes=False)
    assert side2["counts"]["from_cache"] == 5 and side2["counts"]["computed"] == 1
    xr.testing.assert_equal(ds2.drop_vars("seconds"), full.drop_vars("seconds"))
    assert json.loads(victim.read_text())["key"] == victim.stem


def test_cache_key_changes_with_spec_and_only_the_relevant_config():
    """Keys: the ladder of a tracking sweep does not enter a cell's key (adding a rung keeps the others), while
    the horizon, the seed and a check's configuration do."""
    base = {"models": ["sphere_circle"], "seeds": [0], "eta_lambda": [1e-3, 1e-4]}
    keys = {c["eta_lambda"]: c["key"] for c in make_cells(parse_spec(base))}
    more = {c["eta_lambda"]: c["key"] for c in make_cells(parse_spec({**base, "eta_lambda": [1e-3, 1e-4, 3e-5]}))}
    assert keys[1e-3] == more[1e-3] and keys[1e-4] == more[1e-4]
    other = {c["eta_lambda"]: c["key"] for c in make_cells(parse_spec({**base, "config": {"tau_end": 0.05}}))}
    assert other[1e-3] != keys[1e-3]
    seeded = {c["eta_lambda"]: c["key"] for c in make_cells(parse_spec({**base, "seeds": [1]}))}
    assert seeded[1e-3] != keys[1e-3]
    chk = [c["key"] for c in make_cells(parse_spec({**base, "checks": ["identities"]}))]
    chk2 = [c["key"] for c in make_cells(parse_spec({**base, "eta_lambda": [1e-3, 3e-4], "checks": ["identities"]}))]
    assert chk != chk2


def test_check_cells(tmp_path):
    """Check cells: verdict, scaled error and the resolving power of each prediction a check tests, on the
    (model, seed, check, prediction) grid; the same verdict as the check run directly."""
    from srflow.verification.checks import check_scale_collapse

    spec = parse_spec({"models": ["sphere_circle"], "seeds": [3], "checks": ["identities", "scale-collapse"],
                       "config": {"collapse_steps": 200}})
    ds, side = run_sweep(spec, tmp_path / "out", tmp_path / "cache", quiet=True, processes=False)
    assert list(ds.check.values) == ["identities", "scale-collapse"]
    assert list(ds.prediction.values) == ["scale factor √c"]
    direct = check_scale_collapse(Session(make_model("sphere_circle", rng=3), spec.config, 3, spec="sphere_circle"))
    cell = ds.sel(model="sphere_circle", seed=3, check="scale-collapse")
    assert str(cell.status.values) == direct.status == "pass"
    assert float(cell.scaled_error) == pytest.approx(direct.scaled_error, rel=1e-12)
    assert float(cell.resolving_power.sel(prediction="scale factor √c")) == pytest.approx(
        direct.resolving_power["scale factor √c"], rel=1e-12)
    assert np.isnan(ds.resolving_power.sel(check="identities")).all()
    assert str(ds.status.sel(model="sphere_circle", seed=3, check="identities").values) == "pass"


def test_user_model_file(tmp_path):
    """A ``file.py:factory`` model (path relative to the spec) runs on the workers and is labelled by its file
    stem; editing the file changes its cells' keys."""
    (tmp_path / "my_model.py").write_text("from srflow.toy_models import make_model\n\n"
                                          "def make(rng=0):\n    return make_model('sphere_circle', rng=rng)\n")
    (tmp_path / "s.toml").write_text('models = ["my_model.py:make"]\nchecks = ["identities"]\n')
    spec = load_spec(tmp_path / "s.toml")
    ds, _ = run_sweep(spec, tmp_path / "out", tmp_path / "cache", quiet=True, processes=False)
    assert list(ds.model.values) == ["my_model"] and str(ds.status.values.item()) == "pass"
    key = make_cells(spec)[0]["key"]
    (tmp_path / "my_model.py").write_text((tmp_path / "my_model.py").read_text() + "# edited\n")
    assert make_cells(load_spec(tmp_path / "s.toml"))[0]["key"] != key


def test_failing_cells_are_reported_not_cached(tmp_path):
    """A model whose θ₀ is off Γ: its flow raises, every cell of it is an error in sweep.json, none is cached
    or marked finished, and ``srflow sweep`` exits with status 3 (an internal error, as srflow verify)."""
    (tmp_path / "off.py").write_text(
        "import numpy as np\nfrom srflow.toy_models import make_model\n\n"
        "class Off:\n    name = 'off'\n\n    def __init__(self):\n        self._m = make_model('sphere_circle')\n"
        "        self.dim = self._m.dim\n\n    def __getattr__(self, key):\n        return getattr(self._m, key)\n\n"
        "    def minimizer(self, rng):\n        return np.ones(3) / np.sqrt(3)\n\n"
        "def make():\n    return Off()\n")
    (tmp_path / "s.toml").write_text('models = ["off.py:make"]\neta_lambda = [1e-2, 5e-3]\n'
                                     '[config]\ntau_end = 0.02\nrecords = 3\n')
    ds, side = run_sweep(load_spec(tmp_path / "s.toml"), tmp_path / "out", tmp_path / "cache", quiet=True,
                         processes=False)
    assert side["counts"]["errors"] == 2 and side["counts"]["finished"] == 0
    assert all(e["status"] == "error" and "not on Γ" in e["message"] for e in side["cells"])
    assert not _cache_files(tmp_path / "cache") and int(ds.finished.sum()) == 0 and ds.attrs["complete"] == 0
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o2"), "--cache",
                 str(tmp_path / "cache"), "--quiet", "--workers", "1", "--allow-short-ladder"]) == 3


@pytest.mark.parametrize("data, match", [
    ({"models": ["nope"]}, "models: unknown model 'nope'"),
    ({"models": []}, "models: expected at least one"),
    ({"models": ["mf"], "seeds": [-1]}, "seeds: expected"),
    ({"models": ["mf"], "seeds": [0, 0]}, "seeds: expected"),
    ({"models": ["mf"], "eta_lambda": [1.5]}, "eta_lambda"),
    ({"models": ["mf"], "eta_lambda": "1e-3"}, "eta_lambda: expected a list"),
    ({"models": ["mf"], "checks": ["nope"]}, "checks: unknown check"),
    ({"models": ["mf"], "config": {"base": "slow"}}, "config.base"),
    ({"models": ["mf"], "config": {"tau": 1}}, "config: unknown field"),
    ({"models": ["mf"], "config": {"records": 2.5}}, "config.records"),
    ({"models": ["mf"], "modles": ["mf"]}, "unknown key"),
    ({"models": ["no/such/file.py:make"]}, "no such file"),
])
def test_bad_spec_names_the_key(data, match):
    with pytest.raises(SpecError, match=match):
        parse_spec(data)


def test_spec_file_errors_and_cli(tmp_path, capsys):
    """A missing or malformed SPEC, a bad --workers, a short ladder without --allow-short-ladder: exit status 2
    (as srflow verify) with a message naming the argument; comma-separated models are accepted; ``--help`` shows
    an example spec and defines every variable."""
    with pytest.raises(SystemExit, match="cannot read") as err:
        main(["sweep", str(tmp_path / "missing.toml")])
    assert err.value.code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [")
    with pytest.raises(SystemExit, match="not valid TOML") as err:
        main(["sweep", str(bad)])
    assert err.value.code == 2
    (tmp_path / "unknown.toml").write_text('models = ["nope"]\n')
    with pytest.raises(SystemExit, match="models: unknown model 'nope'") as err:
        main(["sweep", str(tmp_path / "unknown.toml")])
    assert err.value.code == 2
    with pytest.raises(SystemExit, match="--workers: expected a positive integer") as err:
        main(["sweep", str(_spec(tmp_path)), "--workers", "0", "--out", str(tmp_path / "w")])
    assert err.value.code == 2
    with pytest.raises(SystemExit, match=r"eta_lambda: the ladder has 3 distinct values over 0.60 decades.*"
                       "--allow-short-ladder") as err:
        main(["sweep", str(_spec(tmp_path)), "--out", str(tmp_path / "short")])
    assert err.value.code == 2 and not (tmp_path / "short" / "sweep.nc").exists()
    assert parse_spec({"models": "sphere_circle, mf"}).labels == ("sphere_circle", "mf")
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "example spec (TOML)" in capsys.readouterr().out


def test_trajectory_and_flow_to_xarray(tmp_path):
    """``Trajectory.to_xarray`` and ``FlowResult.to_xarray`` hold the same numbers as the objects and survive a
    netCDF round trip."""
    from srflow.verification.simulate import eos_start, simulate

    m = make_model("sphere_circle")
    theta0 = m.minimizer(np.random.default_rng(0))
    tr = simulate(m, eos_start(m, theta0, 0.1, 0.01), 0.1, 40, wd=0.01, every=7, track_phi=True)
    ds = tr.to_xarray()
    np.testing.assert_array_equal(ds.step.values, tr.steps)
    np.testing.assert_array_equal(ds.tau.values, tr.tau)
    np.testing.assert_array_equal(ds.phi.values, tr.phi)
    np.testing.assert_array_equal(ds.clock_steps.values, tr.clock_steps)
    assert ds.attrs["lr"] == 0.1 and ds.attrs["algorithm"] == "gdwd"
    flow = th.sharpness_reduction_flow(m, theta0, 0.2, n_out=11)
    fs = flow.to_xarray()
    np.testing.assert_array_equal(fs.theta.values, flow.theta)
    np.testing.assert_array_equal(fs.tau.values, th.gdwd_tau(flow))
    for obj in (ds, fs):
        obj.to_netcdf(tmp_path / "x.nc", engine="h5netcdf")
        xr.testing.assert_identical(xr.load_dataset(tmp_path / "x.nc", engine="h5netcdf"), obj)
        (tmp_path / "x.nc").unlink()


def test_build_records_the_revision(tmp_path):
    """``pip install .`` runs setup.py's build_py, which writes the source tree's revision into the built
    package; imported from there (no git checkout around it) provenance reports it with source "build", and
    "unknown" without it."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    build = tmp_path / "build"
    egg_info = ROOT / "srflow.egg-info"  # setuptools writes it next to setup.py: remove it if it is new
    had_egg_info = egg_info.exists()
    try:
        out = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)], cwd=ROOT,
                             capture_output=True, text=True)
    finally:
        if not had_egg_info:
            shutil.rmtree(egg_info, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    assert f"REVISION = {head.stdout.strip()!r}" in (build / "srflow" / "verification" / "_build_revision.py").read_text()
    probe = "from srflow.verification.provenance import source_revision as s; print(s()['source'], s()['revision'])"
    env = {**os.environ, "PYTHONPATH": str(build)}
    got = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert got.stdout.split() == ["build", head.stdout.strip()], got.stderr
    (build / "srflow" / "verification" / "_build_revision.py").unlink()
    got = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert got.stdout.split() == ["unknown", "unknown"], got.stderr


def test_an_sdist_carries_the_revision(tmp_path):
    """``setup.py sdist`` puts the checkout's revision into the sdist's verification/_build_revision.py; a build
    from the unpacked sdist (no git there) keeps it, and one from a copy without that file says "unknown"."""
    import tarfile

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    egg_info = ROOT / "srflow.egg-info"
    had_egg_info = egg_info.exists()
    try:
        out = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=ROOT,
                             capture_output=True, text=True)
    finally:
        if not had_egg_info:
            shutil.rmtree(egg_info, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    (archive,) = (tmp_path / "dist").glob("srflow-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (src,) = (tmp_path / "unpacked").iterdir()
    assert f"REVISION = {head.stdout.strip()!r}" in (src / "verification" / "_build_revision.py").read_text()

    def built_revision():
        build = tmp_path / "build"
        shutil.rmtree(build, ignore_errors=True)
        done = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)], cwd=src,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return (build / "srflow" / "verification" / "_build_revision.py").read_text()

    assert f"REVISION = {head.stdout.strip()!r}" in built_revision()
    (src / "verification" / "_build_revision.py").unlink()
    assert "REVISION = 'unknown'" in built_revision()


# central_comparison.py (the comparison by hand) runs under `slow`: the default run's equivalent is test_worked_example,
# the same chain (θ₀ on Γ -> GD+WD -> Φ -> the flow at the matched clock -> the error at the theory's order, the naive
# clock far off) through the public API, with its numbers checked against docs/examples/README.md
@pytest.mark.parametrize("script", [pytest.param("central_comparison.py", marks=pytest.mark.slow), "sweep_to_pandas.py"])
def test_examples_run(script, tmp_path):
    """The scripts in docs/examples run from a checkout; the central comparison shows the error falling ∝ ηλ and
    the naive clock far off, the sweep example prints its pivot."""
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / script)], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    if script == "central_comparison.py":
        last = out.stdout.strip().splitlines()[-1]
        ratio, naive = float(last.split(": ")[1].split(" ")[0]), float(last.rsplit(": ", 1)[1].rstrip("x"))
        assert 2.5 < ratio < 4.5 and naive > 10
    else:
        assert "tracking_error_t" in out.stdout and "path_verdict" in out.stdout
        slopes = [line for line in out.stdout.splitlines() if "∝ ηλ^" in line]
        assert len(slopes) == 6  # 2 seeds × path, clock, tracking: each falls at the theory's order 1
        for line in slopes:
            assert 0.9 < float(line.split("∝ ηλ^")[1].split(" ")[0]) < 1.1, line


def test_worked_example(tmp_path):
    """docs/examples/worked_example.py on sphere_circle from the θ₀ ``srflow verify`` saved: the error at the
    matched clock falls on every rung of the --quick ladder, ∝ ηλ (fitted order within 0.1 of the theory's 1),
    verdicts.judge and the flow-tracking check both pass and agree on the errors, the naive clock is ≥ 10× off at
    the smallest ηλ and fails by the same rule, and the θ₀ file and both figures are written; docs/examples/README.md
    quotes every line of steps 2-4 to its printed precision; asked again for θ₀, the script reuses the saved file
    (the same point, no second ``srflow verify``)."""
    import importlib.util

    from srflow.verification.verify import build_model

    out = tmp_path / "out"
    script = ROOT / "docs" / "examples" / "worked_example.py"
    run = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    order, verdict, check, ratio = lines[-1].split(" · ")
    assert 0.9 < float(order.split("ηλ^")[1]) < 1.1, lines[-1]
    assert verdict == "verdict pass" and check == "flow-tracking pass", lines[-1]
    assert float(ratio.rsplit(": ", 1)[1].rstrip("x")) >= 10, lines[-1]
    assert "the check's combined error is the error of step 3: True" in run.stdout
    assert "the naive clock's error, judged by the same rule: fail" in run.stdout
    rows = [line.split() for line in lines if line.startswith("   ") and line.split()[0][0].isdigit()]
    assert [float(r[0]) for r in rows] == [1e-3, 3e-4, 1e-4, 3e-5]
    errors = [float(r[2]) for r in rows]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    for png in (out / "worked_example.png", out / "check" / "sphere_circle-flow-tracking.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    # docs/examples/README.md quotes this output: every line of steps 2-4, numbers to their printed precision
    number = re.compile(r"[-−]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
    quoted = [q.strip() for q in (ROOT / "docs" / "examples" / "README.md").read_text().splitlines()]

    def unit(text):  # one unit in the last printed digit: 0.001 for 0.371, 1e-8 for 3.715e-05, 1 for 333
        mantissa, _, exponent = text.partition("e")
        decimals = len(mantissa.partition(".")[2])
        return 10.0 ** (int(exponent or 0) - decimals)

    def agrees(line, doc):  # the same words, and each number within 2 units of its last printed digit
        if number.sub("#", line) != number.sub("#", doc):
            return False
        return all(abs(float(a.replace("−", "-")) - float(b.replace("−", "-"))) <= 2 * unit(b)
                   for a, b in zip(number.findall(line), number.findall(doc)))

    steps = [line.strip() for line in lines[lines.index(next(x for x in lines if x.startswith("2. "))):]
             if not line.startswith("5. ") and "figures:" not in line and " · " not in line]
    assert len(steps) == 14, steps
    for line in steps:
        assert any(agrees(line, doc) for doc in quoted), f"docs/examples/README.md does not quote: {line}"
    saved = out / "verify" / "theta0-sphere_circle.npy"
    assert "(saved by srflow verify)" in run.stdout and str(saved) in run.stdout
    spec = importlib.util.spec_from_file_location("worked_example", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    report = (out / "verify" / "report.json").stat().st_mtime_ns
    theta0, path, how = example.start_point(out, build_model("sphere_circle", 0))
    assert how == "reused" and path == saved and np.array_equal(theta0, np.load(saved))
    assert (out / "verify" / "report.json").stat().st_mtime_ns == report


def test_every_variable_is_defined_in_help(resumed, tmp_path, capsys):
    """Every variable and coordinate of a tracking sweep and of a check sweep has a description in its attrs,
    and ``srflow sweep --help`` prints each name with that description."""
    from srflow.verification.sweep_cells import DESCRIPTIONS

    folder, _, _ = resumed
    tracking = xr.open_dataset(folder / "full" / "sweep.nc")
    checks, _ = run_sweep(parse_spec({"models": ["sphere_circle"], "checks": ["identities"]}), tmp_path / "c",
                          tmp_path / "cache", quiet=True, processes=False)
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for ds in (tracking, checks):
        for name in list(ds.data_vars) + list(ds.coords):
            assert name in DESCRIPTIONS, name
            assert ds[name].attrs["description"] == DESCRIPTIONS[name]
            assert f"{name} {' '.join(DESCRIPTIONS[name].split())}" in text, name


def test_rerun_after_an_interrupt_resumes_in_place(resumed, tmp_path, monkeypatch, capsys):
    """Ctrl-C after two cells (raised where the client caches the second): exit 130, OUT holds those two
    (complete = 0) and so does the cache; the same command again resumes in OUT -- 2 cells from the cache, 4
    computed -- and gives the dataset of an uninterrupted run (the fixture's), wall times aside. Rerun once
    more it finds the sweep complete and leaves OUT untouched; another spec in OUT, or OUT locked by another
    run, is refused with exit status 2."""
    from srflow.verification.outdir import OutputLock
    from srflow.verification.sweep_cells import CellCache

    folder, _, _ = resumed
    spec, out, cache = _spec(tmp_path), tmp_path / "out", tmp_path / "cache"
    argv = ["sweep", str(spec), "--out", str(out), "--cache", str(cache), "--quiet", "--workers", "1",
            "--allow-short-ladder"]
    put, calls = CellCache.put, []

    def put_then_interrupt(self, cell, result):
        put(self, cell, result)
        calls.append(cell["key"])
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(CellCache, "put", put_then_interrupt)
    assert main(argv) == 130
    monkeypatch.setattr(CellCache, "put", put)
    part = xr.load_dataset(out / "sweep.nc")
    side = json.loads((out / "sweep.json").read_text())
    assert part.attrs["complete"] == 0 and int(part.finished.sum()) == 2 == len(_cache_files(cache))
    assert side["interrupted"] and side["cache"] == str(cache.resolve())
    assert main(argv) == 0
    side = json.loads((out / "sweep.json").read_text())
    assert side["complete"] and side["counts"] == {"cells": 6, "finished": 6, "from_cache": 2, "computed": 4,
                                                   "errors": 0}
    resumed_ds = xr.load_dataset(out / "sweep.nc")
    whole = xr.load_dataset(folder / "full" / "sweep.nc")
    xr.testing.assert_identical(resumed_ds.drop_vars("seconds").drop_attrs(), whole.drop_vars("seconds").drop_attrs())
    stamp = (out / "sweep.nc").stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 0
    assert "already holds this sweep, complete" in capsys.readouterr().out
    assert (out / "sweep.nc").stat().st_mtime_ns == stamp
    other = _spec(tmp_path, "4e-3, 2e-3", "other.toml")
    with pytest.raises(SystemExit, match="holds a sweep of another spec .*eta_lambda") as err:
        main(["sweep", str(other), "--out", str(out), "--cache", str(cache), "--allow-short-ladder"])
    assert err.value.code == 2
    with OutputLock(tmp_path / "busy"):
        with pytest.raises(SystemExit, match="in use by another srflow run") as err:
            main(["sweep", str(spec), "--out", str(tmp_path / "busy"), "--allow-short-ladder"])
    assert err.value.code == 2


# -- slow: interrupts and a real scheduler ------------------------------------------------------------------
@pytest.mark.slow
def test_ctrl_c_keeps_finished_cells_and_resume_skips_them(tmp_path):
    """SIGINT mid-sweep: exit 130, the dataset holds the finished cells (complete = 0); the rerun reads exactly
    those from the cache and computes the rest."""
    spec = _spec(tmp_path, "2e-3, 1e-3, 5e-4, 2.5e-4")
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "srflow", "sweep", str(spec), "--out", str(tmp_path / "a"),
                             "--cache", str(cache), "--workers", "1", "--allow-short-ladder"], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(_cache_files(cache)) >= 2, 240, "two finished cells")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    done = _cache_files(cache)
    assert 2 <= len(done) < 8
    ds = xr.open_dataset(tmp_path / "a" / "sweep.nc")
    assert ds.attrs["complete"] == 0 and int(ds.finished.sum()) == len(done)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "b"), "--cache", str(cache), "--quiet",
                 "--allow-short-ladder"]) == 0
    side = json.loads((tmp_path / "b" / "sweep.json").read_text())
    assert side["counts"]["from_cache"] == len(done) and side["counts"]["computed"] == 8 - len(done)
    assert all(_cache_files(cache)[k] == v for k, v in done.items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_scheduler_and_workers_with_a_worker_killed(tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (their command-line entry points); a
    sweep through ``--scheduler``; one worker is killed (SIGKILL) once cells have started finishing. Every cell
    finishes exactly once, and the dataset equals a LocalCluster run's (timings aside)."""
    dask = shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    spec = _spec(tmp_path, "2e-3, 1e-3, 5e-4, 2.5e-4")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = _env()
    procs = []
    logs = []

    def start(*args):
        log = open(tmp_path / f"proc{len(procs)}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen([dask, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        return procs[-1]

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0")
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 60, "the scheduler")
        workers = [start("worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                         "--no-nanny", "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}") for i in range(2)]
        cache = tmp_path / "cache"
        sweep = subprocess.Popen([sys.executable, "-m", "srflow", "sweep", str(spec), "--out",
                                  str(tmp_path / "remote"), "--cache", str(cache), "--scheduler", address,
                                  "--allow-short-ladder"],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(_cache_files(cache)) >= 1 or sweep.poll() is not None, 300, "a finished cell")
        workers[0].kill()
        at_kill = len(_cache_files(cache))
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, err
        assert workers[0].wait(timeout=10) is not None
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
    assert at_kill < 8, "the worker was killed after the sweep had finished"
    assert "name: w0" in (tmp_path / "proc0.log").read_text()  # the scheduler saw w0 go
    side = json.loads((tmp_path / "remote" / "sweep.json").read_text())
    keys = [e["key"] for e in side["cells"]]
    assert len(keys) == len(set(keys)) == 8 and side["counts"]["computed"] == 8
    assert len(_cache_files(cache)) == 8
    pids = {int(e["worker"].rsplit(":", 1)[1]) for e in side["cells"]}
    assert pids <= {workers[0].pid, workers[1].pid} and workers[1].pid in pids
    remote = xr.load_dataset(tmp_path / "remote" / "sweep.nc")
    local, _ = run_sweep(load_spec(spec), tmp_path / "local", tmp_path / "cache-local", quiet=True)
    xr.testing.assert_equal(remote.drop_vars("seconds"), local.drop_vars("seconds"))


def test_ladder_verdicts_are_plain_strings_that_netcdf_stores(tmp_path):
    """path_verdict and clock_verdict mix a judged (model, seed) with one "not judged" (a rung unfinished, as after
    an interrupt): every entry is a plain str, so the dataset writes (a Status enum among str made xarray refuse
    it, "mixed native types": an interrupted sweep of two seeds with a full ladder crashed, exit 3, on writing its
    partial dataset, and so did the rerun)."""
    from srflow.verification.sweep_cells import _verdicts

    import tomllib

    spec = parse_spec(tomllib.loads(TINY.format(ladder="4e-3, 1e-3, 4e-4, 1e-4")))  # 1.6 decades: judged
    x = np.array(spec.eta_lambda)
    status = np.full((1, 2, len(x)), "ok", dtype=object)
    status[0, 1, -1] = "pending"
    errors = np.stack([[5e-2 * x, 5e-2 * x]])  # falls at order 1: judged on seed 0
    data = _verdicts(spec, {"path_error": errors, "clock_error": errors + 1e-3}, status)
    for name in ("path_verdict", "clock_verdict"):
        values = data[name][1]
        assert all(type(v) is str for v in values.ravel()), [type(v) for v in values.ravel()]
        assert values[0, 1] == "not judged"
    ds = xr.Dataset(data, coords={"model": ["m"], "seed": [0, 1]})
    ds.to_netcdf(tmp_path / "v.nc", engine="h5netcdf")  # as sweep._write: raises on a mixed object array
    assert str(xr.load_dataset(tmp_path / "v.nc", engine="h5netcdf").path_verdict.values[0, 1]) == "not judged"
