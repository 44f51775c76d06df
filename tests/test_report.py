"""What a reader of ``report.md`` / ``report.json`` is told: the source revision when git is absent (an installed
build, run from another folder), numbers with their meaning and unit (no Python reprs), the verdict rule as
``verdicts.judge`` implements it, one sentence per result, and the start point θ₀ saved and reusable through
``srflow verify --theta0``."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srflow.cli import main
from srflow.toy_models import make_model
from srflow.verification import tolerances as tol
from srflow.verification.report import Report, claim, verdict_rule
from srflow.verification.session import QUICK, CheckResult
from srflow.verification.verdicts import Order, judge

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--quick", "--workers", "1", "--quiet", "--checks", "identities"]


def _head() -> str | None:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def _ladder_result(status="pass", errors=(1.2e-4, 3.7e-5, 1.2e-5, 3.7e-6)) -> CheckResult:
    """A flow-tracking result as the check writes it (numpy numbers in ``observed`` and ``details``)."""
    x = [1e-3, 3e-4, 1e-4, 3e-5]
    order = Order(p=1.0, param="ηλ")
    v = judge(x, np.array(errors), order)
    details = {"ladder": x, "path_errors": list(np.array(errors)), "clock_errors": list(np.array(errors) * 8),
               "path": v.to_details(), "clock": judge(x, np.array(errors) * 8, order).to_details()}
    return CheckResult("flow-tracking", "mf", status, 0.0, {"path": np.float64(errors[-1]), "clock": np.float64(1.0)},
                       "order", float(v.shortfall), v.reason, details, seconds=1.5,
                       model_info={"spec": "mf", "seed": 0, "dim": 12, "theta0_sha256": "abc",
                                   "loss_theta0": np.float64(1e-33), "lam1_theta0": 2.5, "G_theta0": 0.7})


def test_numbers_have_meaning_and_units_never_python_reprs(tmp_path):
    """report.md shows the ladder verdict as a table (error with its unit, fitted order with its standard error,
    local exponents, error over bound) and the per-rung errors with their units; no ``np.float64(``, no dict
    repr, no 'tolerance order' / 'tolerance bounds'."""
    rep = Report(tmp_path, QUICK, 0, ["mf"], ["flow-tracking"], "quick", planned=[("mf", "flow-tracking")])
    rep.add(_ladder_result())
    md = (tmp_path / "report.md").read_text()
    for bad in ("np.float64", "{'", "tolerance order", "tolerance bounds", "predicted 0 ·", "array("):
        assert bad not in md, bad
    assert "path error max_t ‖Φ(w̄_t) − ζ(s_t)‖ (distance in parameter space" in md
    assert "clock error max_t \\|s_t − s(t)\\| [flow time s]" in md  # the ladder table's header, '|' escaped
    # every table row has as many cells as its header (a '|' inside a cell is escaped)
    for table in re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M):
        rows = [re.split(r"(?<!\\)\|", row)[1:-1] for row in table.strip().splitlines()]
        assert all(len(row) == len(rows[0]) for row in rows), table
    assert re.search(r"\| 3\.7e-06 at ηλ = 3e-05 \| 1\.00 ± 0\.0\d \| O\(x\^1\): order ≥ 0\.8 \| "
                     r"0\.98, 1\.02, 0\.98 \| 0\.123 \| pass \|", md), md
    assert "| 0.001 | 1.200e-04 | 9.600e-04 |" in md
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["checks"][0]["observed"] == {"path": 3.7e-6, "clock": 1.0}


def test_each_result_starts_with_one_sentence(tmp_path):
    """Each result's section opens with the check's claim (``Check.summary``) and its verdict on the model, one
    sentence; a failing result says it does not hold."""
    rep = Report(tmp_path, QUICK, 0, ["mf"], ["flow-tracking"], "quick")
    rep.add(_ladder_result("fail"))
    md = (tmp_path / "report.md").read_text()
    section = md.split("### mf · flow-tracking: **FAIL**")[1].strip().splitlines()[0]
    assert section.startswith("**Claim:** " + claim("flow-tracking").rstrip("."))
    assert section.endswith("**On mf:** it does NOT hold (FAIL).")
    assert claim("flow-tracking") and "\n" not in claim("flow-tracking")


def test_verdict_rule_is_the_one_implemented(tmp_path):
    """The rule report.md states holds for ``verdicts.judge``: the tolerances are the module's; no constant is
    bounded (a large K passes); an error falling faster than p passes; three settled local exponents below
    p − margin fail; two settled at the order followed by a flat interval fail, one at the order followed by two
    flat intervals is inconclusive; local exponents falling rung after rung fail when all three are below the
    order and are inconclusive when the first is at it; a constant still growing (the shortfall below p grows
    past CONSTANT_TOL) is inconclusive; two rungs are inconclusive."""
    text = verdict_rule({"extend_factor": 2.0, "extend_steps": 400_000})
    assert f"agree within {tol.SETTLE_TOL:g}" in text and f"at least p − {tol.ORDER_MARGIN:g}" in text
    assert "falls faster than x^p passes" in text and "No constant of e ≤ C·x^p is assumed" in text
    assert f"than {tol.CONSTANT_TOL:g}" in text and f"by more than {tol.RISING_TOL:g}" in text
    assert f"{tol.ERROR_FLOOR:g}" in text and "400,000" in text
    order = Order(p=1.0, param="x")
    x = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    assert judge(x, 1e6 * x, order).status == "pass"  # K = 1e6: no bound on the constant
    assert judge(x, 0.5 * x**2, order).status == "pass"  # order 2 > 1
    assert judge(x, 1e-3 * np.ones(4) + 1e-9 * x, order).status == "fail"  # a floor: local exponents 0
    assert judge(np.append(x, 1e-5), np.array([1e-1, 1e-2, 1e-3, 1e-3 * 10**-0.1, 1e-3 * 10**-0.15]),
                 order).status == "fail"  # fell at order 1, then flat
    assert "fell at the theory's order and then flattened" in text and "fall rung after rung" in text

    def with_local(q):  # errors on the rungs x whose local exponents are q
        return x[0] * np.cumprod([1.0] + [10.0 ** -qi for qi in q])

    assert judge(x, with_local([1.0, 0.1, 0.05]), order).status == "inconclusive"  # fell once, then flat
    assert judge(x, with_local([1.2, 0.9, 0.5]), order).status == "inconclusive"  # falls away from the order
    assert judge(x, with_local([0.7, 0.5, 0.3]), order).status == "fail"  # falls away below it
    growing = x[0] * np.cumprod([1.0, 10**-1.0, 10**-0.85, 10**-0.83])
    assert judge(x, growing, order).status == "inconclusive"  # shortfalls 0, 0.15, 0.17: K still growing
    assert judge(x[:2], 0.5 * x[:2], order).status == "inconclusive"
    rep = Report(tmp_path, QUICK, 0, ["mf"], ["flow-tracking"], "quick")
    assert verdict_rule(rep.meta["config"]) in (tmp_path / "report.md").read_text()


def test_theta0_saved_and_reused(tmp_path):
    """``srflow verify`` saves θ₀ as theta0-<model>.npy (its sha256 the one report.md shows); ``--theta0 FILE``
    starts from it again (same hash), and from another point of Γ when given one (its hash)."""
    assert main(["verify", "--models", "sphere_circle", "--out", str(tmp_path / "a"), *FAST]) == 0
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    file = tmp_path / "a" / rep["theta0_files"]["sphere_circle"]
    theta = np.load(file)
    sha = hashlib.sha256(theta.astype(np.float64).tobytes()).hexdigest()[:16]
    assert rep["checks"][0]["model_info"]["theta0_sha256"] == sha and file.name in (tmp_path / "a" / "report.md").read_text()
    assert main(["verify", "--models", "sphere_circle", "--out", str(tmp_path / "b"), "--theta0", str(file), *FAST]) == 0
    rep_b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert rep_b["checks"][0]["model_info"]["theta0_sha256"] == sha
    assert rep_b["theta0_given"] == {"sphere_circle": str(file)}
    other = make_model("sphere_circle", rng=0).minimizer(np.random.default_rng(7))
    np.save(tmp_path / "other.npy", other)
    assert main(["verify", "--models", "sphere_circle", "mf", "--out", str(tmp_path / "c"),
                 "--theta0", f"sphere_circle={tmp_path / 'other.npy'}", *FAST]) == 0
    infos = {c["model"]: c["model_info"] for c in json.loads((tmp_path / "c" / "report.json").read_text())["checks"]}
    assert infos["sphere_circle"]["theta0_sha256"] == hashlib.sha256(other.tobytes()).hexdigest()[:16]
    assert infos["mf"]["theta0_sha256"] != infos["sphere_circle"]["theta0_sha256"]
    # an interrupted run given a θ₀ resumes from it (read back from the file it saved), not from the seed's
    path = tmp_path / "c" / "report.json"
    rep_c = json.loads(path.read_text())
    path.write_text(json.dumps({**rep_c, "state": "interrupted", "complete": False, "checks": []}))
    with pytest.raises(SystemExit, match="--resume: takes every setting .* drop --theta0"):
        main(["verify", "--resume", "--out", str(tmp_path / "c"), "--theta0", str(file), "--quiet"])
    assert main(["verify", "--resume", "--out", str(tmp_path / "c"), "--workers", "1", "--quiet"]) == 0
    infos = {c["model"]: c["model_info"] for c in json.loads(path.read_text())["checks"]}
    assert infos["sphere_circle"]["theta0_sha256"] == hashlib.sha256(other.tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("content, extra, match", [
    (np.ones(4) / 2, [], r"--theta0: .*shape \(4,\) .* expected a real vector of shape \(3,\)"),
    (np.array([np.nan, 0.0, 1.0]), [], r"--theta0: .* 1 non-finite entries"),
    (np.ones(3) / np.sqrt(3), [], r"--theta0: .* is not a point of Γ of model sphere_circle"),
    (np.array([2.0, 0.0, 0.0]), [], r"--theta0: .* is not a point of Γ"),
    ("not an array", [], r"--theta0: cannot read"),
    (None, ["--models", "sphere_circle", "mf"], r"--theta0: .* names no model, and this run has 2"),
    ("nope=", [], r"--theta0: 'nope' is not a model of this run"),
])
def test_bad_theta0_is_an_input_error(tmp_path, content, extra, match):
    """A θ₀ file of the wrong shape, with NaN, off Γ (not critical, or not of unit norm), unreadable, without a
    model name in a run of several, or naming no model of the run: exit status 2, the message names --theta0."""
    path = tmp_path / "t.npy"
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, str) and content == "not an array":
        path.write_text("hello")
    else:
        good = make_model("sphere_circle", rng=0).minimizer(np.random.default_rng(0))
        np.save(path, good)
    arg = f"{content}{path}" if isinstance(content, str) and content == "nope=" else str(path)
    with pytest.raises(SystemExit, match=match) as err:
        main(["verify", *(extra or ["--models", "sphere_circle"]), "--out", str(tmp_path / "o"), "--theta0", arg,
              *FAST])
    assert err.value.code == 2 and not (tmp_path / "o" / "report.json").exists()


def _build(tmp_path: Path) -> Path:
    """``setup.py build_py`` into tmp_path/build (what ``pip install .`` installs), without a new egg-info."""
    build = tmp_path / "build"
    egg_info = ROOT / "srflow.egg-info"
    had = egg_info.exists()
    try:
        out = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)], cwd=ROOT,
                             capture_output=True, text=True)
    finally:
        if not had:
            shutil.rmtree(egg_info, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    return build


def test_report_of_a_build_run_elsewhere_names_its_revision(tmp_path):
    """The package as built by ``pip install .`` (setup.py's build_py), imported from another folder with no
    git around it: report.md and report.json give the revision of the tree it was built from, source "build"
    (the function the sweep uses: provenance.source_revision)."""
    head = _head()
    if head is None:
        pytest.skip("not a git checkout")
    build = _build(tmp_path)
    run = tmp_path / "elsewhere"
    run.mkdir()
    env = {**os.environ, "PYTHONPATH": str(build), "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "srflow", "verify", "--models", "sphere_circle", "--out", "r", *FAST],
                         cwd=run, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rep = json.loads((run / "r" / "report.json").read_text())
    assert (rep["git_revision"], rep["git_revision_source"]) == (head, "build")
    assert f"at git {head[:12]} (recorded when this installation was built" in (run / "r" / "report.md").read_text()


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_reports_the_revision(tmp_path):
    """A real ``pip install .`` into a new virtual environment (the dependencies: this interpreter's site-packages,
    appended by a .pth file), then ``srflow verify`` from another folder: report.md names the revision the
    package was built from."""
    import sysconfig

    head = _head()
    if head is None:
        pytest.skip("not a git checkout")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_srflow_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    run = tmp_path / "elsewhere"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(py), "-c", "import srflow; print(srflow.__file__)"], cwd=run, env=env,
                           capture_output=True, text=True).stdout
    assert where.startswith(str(venv)), where  # the installed copy, not the checkout
    out = subprocess.run([str(venv / "bin" / "srflow"), "verify", "--models", "sphere_circle", "--out", "r", *FAST],
                         cwd=run, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rep = json.loads((run / "r" / "report.json").read_text())
    assert (rep["git_revision"], rep["git_revision_source"]) == (head, "build")
    assert f"at git {head[:12]} (recorded when this installation was built" in (run / "r" / "report.md").read_text()
