"""``srflow verify`` end to end: through ``main(argv)``, through the installed ``srflow`` in a subprocess, with a
user's model from a file, and its handling of bad input, unwritable folders and Ctrl-C."""

from dataclasses import replace
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from srflow.verification.checks import CHECKS
from srflow.cli import main

FAST = ["--quick", "--workers", "1", "--quiet"]

USER_MODEL = textwrap.dedent('''
    """A scale-invariant model defined only in this file: L(w) = f(w/‖w‖) with
    f(x) = ½ (1 + 5 x₀²)(x₂² + ½ x₃²), minimizers {x₂ = x₃ = 0} on the sphere (a great circle)."""
    import numpy as np
    from srflow.toy_models import wrap

    K = np.array([0.0, 0.0, 1.0, 0.5])

    def f(x):
        return 0.5 * (1 + 5 * x[0] ** 2) * np.sum(K * x * x)

    def grad(x):
        q, s = 1 + 5 * x[0] ** 2, 0.5 * np.sum(K * x * x)
        return 10 * x[0] * s * np.eye(4)[0] + q * K * x

    def hess(x):
        q, s = 1 + 5 * x[0] ** 2, 0.5 * np.sum(K * x * x)
        e0 = np.eye(4)[0]
        return 10 * s * np.outer(e0, e0) + 10 * x[0] * (np.outer(e0, K * x) + np.outer(K * x, e0)) + q * np.diag(K)

    def third(x, a, b):
        e0 = np.eye(4)[0]
        kx = K * x
        return (10 * a[0] * b[0] * kx + 10 * (e0 * ((kx @ a) * b[0] + (kx @ b) * a[0]))
                + 10 * x[0] * (e0 * (a @ (K * b)) + a[0] * K * b + b[0] * K * a))

    def make():
        return wrap(4, f, grad, hess, third, name="user_circle")


    def _start(rng):
        phi = rng.uniform(0.3, 1.0)
        return np.array([np.cos(phi), np.sin(phi), 0.0, 0.0])

    def with_start():
        """The same model with a minimizer(rng): θ = (cos φ, sin φ, 0, 0), φ in [0.3, 1], where G ≥ 1."""
        return wrap(4, f, grad, hess, third, name="user_circle", minimizer=_start, manifold_dim=1)
''')


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """One ``main(["verify", ...])`` on two default models and four checks, shared by the two tests below (the
    report's files, and the verdicts with their resolving power): (exit code, output folder, printed summary)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("verify") / "two"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["verify", *FAST, "--models", "sphere_circle", "mf", "--checks", "identities", "flow-tracking",
                     "naive-flow-rejected", "eos-entry", "--out", str(out)])
    return code, out, printed.getvalue()


def test_verify_through_main_writes_report_json_md_and_figures(two_models):
    code, out, printed = two_models
    assert code == 0
    rep = _report(out)
    assert {"checks", "config", "versions", "git_revision", "seed"} <= set(rep)
    names = ["identities", "flow-tracking", "naive-flow-rejected", "eos-entry"]
    assert [c["name"] for c in rep["checks"]] == names * 2
    assert [c["model"] for c in rep["checks"]] == ["sphere_circle"] * 4 + ["mf"] * 4
    for c in rep["checks"]:
        assert {"name", "model", "status", "predicted", "observed", "scaled_error"} <= set(c)
        assert c["status"] == "pass"
    assert rep["complete"] and rep["seed"] == 0 and rep["config"]["ladder"][0] == 1e-3
    md = (out / "report.md").read_text()
    assert "## Summary" in md and "flow-tracking" in md and "figures/sphere_circle-flow-tracking.png" in md
    assert (out / "figures" / "sphere_circle-flow-tracking.png").stat().st_size > 1000
    assert "8 pass, 0 fail" in printed


def _installed_srflow() -> list[str]:
    exe = Path(sys.executable).parent / "srflow"
    found = str(exe) if exe.exists() else shutil.which("srflow")
    if found is None:
        pytest.skip("srflow is not installed in this environment (pip install . puts it next to python)")
    return [found]


def test_installed_srflow_verify_in_a_subprocess(tmp_path):
    out = tmp_path / "sub"
    run = subprocess.run([*_installed_srflow(), "verify", *FAST, "--models", "sphere_circle", "--checks",
                          "eos-entry", "scale-collapse", "--out", str(out)], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [c["status"] for c in _report(out)["checks"]] == ["pass", "pass"]


def test_installed_srflow_list_names_every_check():
    run = subprocess.run([*_installed_srflow(), "list"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and all(name in run.stdout for name in CHECKS)


def test_user_model_from_a_file_passes_the_checks(tmp_path):
    """The user route: a model defined only in a temporary file, no ``minimizer`` (Γ is found by descending from
    a random start). The quick subset here; every check under ``slow``."""
    path = tmp_path / "my_model.py"
    path.write_text(USER_MODEL)
    out = tmp_path / "user"
    code = main(["verify", *FAST, "--model", f"{path}:make", "--checks", "identities", "flow-tracking",
                 "naive-flow-rejected", "eos-entry", "--out", str(out)])
    rep = _report(out)
    assert code == 0, [c["message"] for c in rep["checks"]]
    assert {c["model"] for c in rep["checks"]} == {"user_circle"}


@pytest.mark.slow
def test_user_model_from_a_file_passes_every_check(tmp_path):
    """Every check, on the file's model with a ``minimizer`` placing θ₀ where G ≥ 1 (from a random start the
    descent may land where G ≈ 0, e.g. φ ≈ π/2, and the naive control then says it cannot discriminate)."""
    path = tmp_path / "my_model.py"
    path.write_text(USER_MODEL)
    out = tmp_path / "user_all"
    code = main(["verify", "--quick", "--quiet", "--model", f"{path}:with_start", "--out", str(out)])
    rep = _report(out)
    assert code == 0, [(c["name"], c["message"]) for c in rep["checks"] if c["status"] != "pass"]
    assert len(rep["checks"]) == len(CHECKS) and all(c["status"] == "pass" for c in rep["checks"])


@pytest.mark.parametrize("argv, match", [
    (["--models", "nope"], r"--models: unknown model\(s\) nope; valid: mf"),
    (["--checks", "nope"], r"--checks: unknown check\(s\) nope; valid: identities"),
    (["--lr", "0"], r"--lr: expected 1e-06 ≤ η ≤ 1e\+06"),
    (["--lr", "-0.1"], r"--lr: expected 1e-06 ≤ η ≤ 1e\+06"),
    (["--ladder", "1e-3", "-0.0001", "1e-5"], r"--ladder: expected values of ηλ in \(0, 0.5\)"),
    (["--ladder", "1e-3", "-1e-4", "1e-5"], r"--ladder: expected values of ηλ in \(0, 0.5\) .*, got -0.0001"),
    (["--ladder", "1e-3", "2", "1e-5"], r"--ladder: expected values of ηλ in \(0, 0.5\)"),
    (["--ladder", "1e-3", "1e-4"], r"at least 3 distinct values"),
    (["--model", "no_colon"], r"--model: expected 'path/to/file.py:factory'"),
    (["--model", "missing_file.py:make"], r"no such file 'missing_file.py'"),
    (["--model", "json:make"], r"'json' has no attribute 'make'"),
    (["--workers", "0"], r"--workers"),
])
def test_bad_input_is_a_clear_error(tmp_path, argv, match):
    with pytest.raises(SystemExit, match=match):
        main(["verify", *FAST, "--out", str(tmp_path / "x"), *argv])


def test_model_file_that_fails_to_import_or_lacks_a_member(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def make(:\n")
    with pytest.raises(SystemExit, match=r"importing '.*broken.py' failed: SyntaxError"):
        main(["verify", *FAST, "--model", f"{broken}:make", "--out", str(tmp_path / "a")])
    partial = tmp_path / "partial.py"
    partial.write_text("class M:\n    dim = 3\n    def loss(self, w): return 0.0\n\ndef make():\n    return M()\n")
    with pytest.raises(SystemExit, match=r"missing protocol member 'grad'"):
        main(["verify", *FAST, "--model", f"{partial}:make", "--out", str(tmp_path / "b")])


def test_out_is_never_overwritten_and_unwritable_is_a_clear_error(tmp_path):
    out = tmp_path / "once"
    assert main(["verify", *FAST, "--models", "sphere_circle", "--checks", "identities", "--out", str(out)]) == 0
    with pytest.raises(SystemExit, match="already holds a report"):
        main(["verify", *FAST, "--models", "sphere_circle", "--checks", "identities", "--out", str(out)])
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match="--out: cannot write to"):
        main(["verify", *FAST, "--checks", "identities", "--out", str(blocker / "sub")])


def test_default_out_is_a_fresh_timestamped_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert main(["verify", *FAST, "--models", "sphere_circle", "--checks", "identities"]) == 0
    runs = sorted((tmp_path / "srflow-out").iterdir())
    assert len(runs) == 2 and all((r / "report.json").exists() for r in runs)


def test_ctrl_c_keeps_what_finished(tmp_path, monkeypatch):
    import srflow.verification.verify as verify

    real = verify.run_job

    def interrupted(*args, **kw):
        real(*args, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(verify, "run_job", interrupted)
    out = tmp_path / "int"
    code = main(["verify", *FAST, "--models", "sphere_circle", "mf", "--checks", "identities", "--out", str(out)])
    rep = _report(out)
    assert code == 130 and rep["interrupted"] and not rep["complete"]
    assert [c["model"] for c in rep["checks"]] == ["sphere_circle"]


@pytest.mark.slow
def test_parallel_workers_give_the_same_results_as_one(tmp_path):
    """--workers 2 gives the observed values of --workers 1 on three more checks. The default run's equivalent:
    tests/test_runner.py::test_verify_on_a_scheduler_gives_the_in_process_verdicts (--workers 1, --workers 2 and
    a scheduler address, the same verdicts and observed values bit for bit, identities, flow-tracking, eos-entry
    and scale-collapse)."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core")
    args = ["verify", "--quick", "--quiet", "--models", "sphere_circle", "--checks", "identities", "scale-collapse",
            "no-wd-clock"]
    assert main([*args, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    key = lambda rep: sorted((c["name"], c["observed"]) for c in rep["checks"])  # noqa: E731
    assert key(_report(tmp_path / "one")) == key(_report(tmp_path / "two"))


def test_verify_quick_on_two_models_end_to_end(two_models):
    """Two default models through the CLI: every verdict pass, the resolving power and the start points in the
    report (the default test run covers more than one model end to end)."""
    code, out, _ = two_models
    rep = _report(out)
    assert code == 0 and {c["status"] for c in rep["checks"]} == {"pass"} and len(rep["checks"]) == 8
    ft = [c for c in rep["checks"] if c["name"] == "flow-tracking"]
    assert len(ft) == 2 and all(0 < c["resolving_power"]["clock rate"] < 0.01 for c in ft)
    md = (out / "report.md").read_text()
    assert "## Resolving power δ*" in md and "## Models and start points" in md


def test_a_mutation_through_theory_fails_srflow_verify_with_exit_1_and_says_why(tmp_path, monkeypatch):
    """The GD+WD clock wrong by 1%, applied to the public theory function before the run: flow-tracking fails,
    the exit status is 1, and report.md marks it FAIL with the measured reason (its clock error's exponents).
    (One run serves both statements; the naive clock's rejection is the naive-flow-rejected check's.)"""
    from srflow import theory
    right = theory.gdwd_steps
    monkeypatch.setattr(theory, "gdwd_steps", lambda *a: 1.01 * right(*a))
    out = tmp_path / "mut"
    code = main(["verify", *FAST, "--models", "sphere_circle", "--checks", "flow-tracking", "--out", str(out)])
    check = _report(out)["checks"][0]
    assert code == 1 and check["status"] == "fail"
    assert "clock" in check["message"], check["message"]
    assert "**FAIL**" in (out / "report.md").read_text()


def test_start_points_depend_on_seed_and_model_only(tmp_path):
    """θ₀ (its hash in the report) is the same whichever checks run and in whatever order the models come."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["verify", *FAST, "--models", "sphere_circle", "mf", "--checks", "identities", "--out", str(a)]) == 0
    assert main(["verify", *FAST, "--models", "mf", "sphere_circle", "--checks", "identities", "scale-collapse",
                 "--out", str(b)]) == 0
    key = lambda rep: {c["model"]: c["model_info"]["theta0_sha256"] for c in rep["checks"]}  # noqa: E731
    assert key(_report(a)) == key(_report(b))
