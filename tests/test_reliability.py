"""Faults a hostile or clumsy user meets (issue 10): interrupts, kills, concurrent runs, crashed workers,
half-written folders, degenerate inputs and duplicates — each gives a clear message or a correct verdict, and
the exit status says which: 0 all pass, 1 a check failed, 2 usage/input error, 3 internal error, 130 interrupted.
"""

from dataclasses import replace
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import srflow.verification.checks as checks
from waiting import wait_for
from srflow.theory import manifold_point, project_to_manifold, sharpness_reduction_flow
from srflow.toy_models import make_model
from srflow.cli import main
from srflow.verification.outdir import FolderBusy, OutputLock, atomic_write
from srflow.verification.report import Report
from srflow.verification.session import QUICK, CheckResult
from srflow.verification.simulate import simulate
from srflow.verification.verify import (LADDER_CHECKS, Cost, budget_verdict, dedupe, ladder_problems, mark_inconclusive)

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--quick", "--workers", "1", "--quiet"]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


#: Python's own SIGINT handler, installed by the child itself: a shell's background job inherits SIGINT ignored,
#: and Python then leaves it so. (Not a ``preexec_fn``: that forks the test process through Python, and once
#: another test has loaded JAX, JAX warns that the fork may deadlock.)
DEFAULT_SIGINT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"


def _srflow(args, **kw) -> subprocess.Popen:
    """``python3 -m srflow ...`` from the worktree in a new process group (as a terminal job), with
    SIGINT at its default (see DEFAULT_SIGINT)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run_as_m = f"{DEFAULT_SIGINT}; import runpy; runpy.run_module('srflow', run_name='__main__', alter_sys=True)"
    return subprocess.Popen([sys.executable, "-c", run_as_m, *args], cwd=ROOT, env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _main_in_a_fresh_process(setup: str, argv: list[str]) -> subprocess.CompletedProcess:
    """``setup`` (e.g. a monkeypatch) then ``srflow.cli.main(argv)`` in a new Python process: JAX is not loaded
    there, so its LocalCluster forks the workers and they inherit the patch (this process may have loaded JAX
    through other tests, and then spawns them: verification.runner.fork_is_safe)."""
    code = "\n".join(["import sys", textwrap.dedent(setup), "from srflow.cli import main",
                      f"code = main({argv!r})", "assert 'jax' not in sys.modules",
                      "sys.exit(code)"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def _live_in_group(pgid: int) -> list[str]:
    """The processes of group ``pgid`` that are not zombies (a killed child is a zombie until init reaps it)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(f"{stat.parent.name} ({fields[0]})")
    return live


def _described(live: list[str]) -> str:
    """``live`` ("pid (state)" entries) with each process's command line, for a failure message."""
    out = []
    for entry in live:
        pid = entry.split()[0]
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200].decode(errors="replace")
        except OSError:
            cmd = "?"
        out.append(f"{entry}: {cmd}")
    return "; ".join(out) or "none"


def _has_results(out: Path, n: int = 1) -> bool:
    try:
        return len(_report(out)["checks"]) >= n
    except (OSError, ValueError, KeyError):
        return False


# -- interrupts and kills ----------------------------------------------------------------------------------------
@linux_only
def test_ctrl_c_to_the_process_group_with_two_workers_exits_130_and_leaves_nothing_behind(tmp_path):
    """One SIGINT to the whole process group (what a terminal sends) while 2 workers compute: exit 130 within
    seconds, report.json valid with interrupted: true and the checks that did not run, and no process left."""
    out = tmp_path / "int"
    proc = _srflow(["verify", "--quick", "--workers", "2", "--out", str(out)])
    try:
        wait_for(lambda: _has_results(out), 120, "a first result")
        assert len(_live_in_group(proc.pid)) >= 2, "the workers should be running"
        os.killpg(proc.pid, signal.SIGINT)
        start = time.monotonic()
        stdout, stderr = proc.communicate(timeout=30)
        print(f"stopped {time.monotonic() - start:.2f} s after SIGINT")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    rep = _report(out)
    assert rep["interrupted"] is True and rep["complete"] is False and rep["state"] == "interrupted"
    from srflow.verification.checks import CHECKS
    from srflow.verification.verify import DEFAULT_MODELS

    assert rep["not_run"] and len(rep["checks"]) + len(rep["not_run"]) == len(DEFAULT_MODELS) * len(CHECKS)
    assert "Not run" in (out / "report.md").read_text()
    wait_for(lambda: not _live_in_group(proc.pid), 10, "no live process in the group")


@linux_only
def test_killing_the_main_process_takes_its_workers_down(tmp_path):
    """kill -9 of the main pid: the workers die with it (they are not left re-parented to init, computing)."""
    out = tmp_path / "kill"
    proc = _srflow(["verify", "--quick", "--workers", "2", "--out", str(out)])
    try:
        wait_for(lambda: len(_live_in_group(proc.pid)) >= 3, 60, "two workers")
        os.kill(proc.pid, signal.SIGKILL)
        # wait() for the killed process itself, not communicate(): that waits for every holder of its stdout
        # pipe to close it, which is not the claim here (which processes of the group live is)
        proc.wait(timeout=10)
        wait_for(lambda: not _live_in_group(proc.pid), 10,
                 lambda: f"the workers to die; alive: {_described(_live_in_group(proc.pid))}")
    finally:
        if _live_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_two_concurrent_runs_on_one_out_the_second_is_refused(tmp_path):
    """A second ``srflow verify`` on a folder another run is writing is refused (exit 2) naming the holder;
    the first run finishes normally with all its results."""
    out = tmp_path / "shared"
    # flow-tracking: a check that runs long enough for the second run to meet the first one writing
    first = _srflow(["verify", *FAST, "--models", "sphere_circle", "--checks", "identities", "flow-tracking",
                     "--out", str(out)])
    try:
        wait_for(lambda: (out / "report.json").exists(), 60, "the first run to start")
        second = _srflow(["verify", *FAST, "--models", "sphere_circle", "--checks", "identities", "--out", str(out)])
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert f"is in use by another srflow run (process {first.pid}" in err
        assert first.wait(timeout=300) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert [c["name"] for c in _report(out)["checks"]] == ["identities", "flow-tracking"]


def test_the_lock_is_exclusive_and_released_with_its_holder(tmp_path):
    with OutputLock(tmp_path / "o"):
        with pytest.raises(FolderBusy, match=rf"in use by another srflow run \(process {os.getpid()}, since"):
            OutputLock(tmp_path / "o").acquire()
    OutputLock(tmp_path / "o").acquire().release()  # free again


def test_a_check_that_raises_is_an_error_with_its_traceback_and_exit_3(tmp_path, monkeypatch):
    def broken(session):
        raise ZeroDivisionError("a bug in a check")

    monkeypatch.setitem(checks.CHECKS, "scale-collapse", replace(checks.CHECKS["scale-collapse"], run=broken))
    out = tmp_path / "err"
    code = main(["verify", *FAST, "--models", "sphere_circle", "--checks", "identities", "scale-collapse",
                 "--out", str(out)])
    rep = _report(out)
    assert code == 3
    err = rep["checks"][1]
    assert err["status"] == "error" and "ZeroDivisionError: a bug in a check" in err["message"]
    assert "Traceback" in err["details"]["traceback"] and "def broken" not in err["message"]
    assert rep["counts"]["error"] == 1 and rep["complete"]
    md = (out / "report.md").read_text()
    assert "**ERROR**" in md and "ZeroDivisionError: a bug in a check" in md and "```" in md


def test_a_worker_that_dies_is_reported_per_check_with_how_it_died(tmp_path):
    """With 2 workers, a worker killed by a signal (segfault, OOM killer) gives "error" results for its checks,
    not a hang and not a hidden crash; the other job's results are intact."""
    out = tmp_path / "dead"
    run = _main_in_a_fresh_process("""
        import os, signal
        from dataclasses import replace
        import srflow.verification.checks as checks

        def die(session):
            os.kill(os.getpid(), signal.SIGKILL)

        checks.CHECKS["no-wd-clock"] = replace(checks.CHECKS["no-wd-clock"], run=die)
        """, ["verify", "--quick", "--quiet", "--workers", "2", "--models", "sphere_circle", "--checks",
              "identities", "no-wd-clock", "normalized-gd", "--out", str(out)])
    code = run.returncode
    assert "os.fork()" not in run.stderr, run.stderr
    rep = _report(out)
    by = {c["name"]: c for c in rep["checks"]}
    assert code == 3 and by["identities"]["status"] == "pass"
    for name in ("no-wd-clock", "normalized-gd"):
        assert by[name]["status"] == "error" and "killed by SIGKILL" in by[name]["message"]


def test_an_exception_outside_the_checks_in_a_worker_comes_back_with_its_traceback(tmp_path):
    out = tmp_path / "crash"
    run = _main_in_a_fresh_process("""
        import srflow.cli
        import srflow.verification.verify as verify
        from srflow.toy_models import make_model

        def no_model(spec, seed):
            raise RuntimeError("cannot build")

        verify.build_model = no_model
        srflow.cli._models_up_front = lambda specs, seed: {s: make_model(s) for s in specs}
        """, ["verify", "--quick", "--quiet", "--workers", "2", "--models", "sphere_circle", "--checks",
              "identities", "no-wd-clock", "--out", str(out)])
    code = run.returncode
    assert "os.fork()" not in run.stderr, run.stderr
    rep = _report(out)
    assert code == 3 and {c["status"] for c in rep["checks"]} == {"error"} and len(rep["checks"]) == 2
    assert all("RuntimeError: cannot build" in c["details"]["traceback"] for c in rep["checks"])


# -- half-written folders and resume ----------------------------------------------------------------------------
def test_an_interrupted_folder_is_refused_then_resumed_to_the_same_results(tmp_path, monkeypatch):
    """Interrupted after the first check: reusing --out is refused with a message pointing at --resume;
    --resume runs only the missing check, and its result equals that of an uninterrupted run (the session's
    random draws are replayed)."""
    args = [*FAST, "--models", "sphere_circle", "--checks", "identities", "eos-entry"]
    assert main(["verify", *args, "--out", str(tmp_path / "straight")]) == 0
    straight = {c["name"]: c for c in _report(tmp_path / "straight")["checks"]}

    import srflow.verification.verify as verify

    real = verify.run_job

    def stop_after_first(*a, emit, **kw):
        def emit_then_stop(res):
            emit(res)
            raise KeyboardInterrupt

        real(*a, emit=emit_then_stop, **kw)

    out = tmp_path / "half"
    monkeypatch.setattr(verify, "run_job", stop_after_first)
    assert main(["verify", *args, "--out", str(out)]) == 130
    monkeypatch.setattr(verify, "run_job", real)
    assert [c["name"] for c in _report(out)["checks"]] == ["identities"]
    assert _report(out)["not_run"] == [{"model": "sphere_circle", "check": "eos-entry"}]
    with pytest.raises(SystemExit, match="holds an unfinished run that was interrupted.*--resume"):
        main(["verify", *args, "--out", str(out)])
    with pytest.raises(SystemExit, match="--resume: takes every setting from the report"):
        main(["verify", *args, "--resume", "--out", str(out)])
    assert main(["verify", "--quiet", "--workers", "1", "--resume", "--out", str(out)]) == 0
    rep = _report(out)
    assert rep["complete"] and rep["state"] == "complete" and not rep["not_run"]
    resumed = {c["name"]: c for c in rep["checks"]}
    assert resumed["eos-entry"]["observed"] == straight["eos-entry"]["observed"]
    assert resumed["identities"]["observed"] == straight["identities"]["observed"]


def test_a_folder_left_by_a_killed_run_is_marked_and_resumable(tmp_path):
    out = tmp_path / "killed"
    out.mkdir()
    Report(out, QUICK, 0, ["sphere_circle"], ["identities"], "quick", planned=[("sphere_circle", "identities")])
    rep = _report(out)
    assert rep["state"] == "running" and rep["pid"] == os.getpid()
    assert "If no srflow process is running, that run was killed" in (out / "report.md").read_text()
    with pytest.raises(SystemExit, match="was killed \\(no process holds its lock\\).*--resume"):
        main(["verify", *FAST, "--models", "sphere_circle", "--checks", "identities", "--out", str(out)])
    assert main(["verify", "--quiet", "--workers", "1", "--resume", "--out", str(out)]) == 0
    assert _report(out)["complete"]


def test_resume_without_a_report_or_without_out_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit, match="--resume: expected --out DIR") as exc:
        main(["verify", "--resume"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit, match="holds no report to resume"):
        main(["verify", "--resume", "--out", str(tmp_path / "empty")])


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    atomic_write(path, "old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, "new")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


# -- input domain before work -----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, match", [
    (["--ladder", "1e-3", "1e-3", "1e-3"], r"--ladder: expected at least 3 distinct values of ηλ .* got 1 distinct"),
    (["--ladder", "1e-3", "1e-3", "3e-4"], r"got 2 distinct of 3"),
    (["--ladder", "1e-3", "9e-4", "8e-4"], r"3 distinct values over 0.10 decades, fewer than 4 over 1.5.*"
                                           r"--allow-short-ladder"),
    (["--ladder", "1e-3", "9e-4", "8e-4", "7e-4"], r"4 distinct values over 0.15 decades"),
    (["--ladder", "0.99", "0.9", "0.5"], r"--ladder: expected values of ηλ in \(0, 0.5\)"),
    (["--ladder", "0.3", "0.1", "0.01", "0.003"], r"--ladder: ηλ = 0.3 gives 1 step\(s\) to τ_end = 0.25, fewer than "
                                                 r"the 15 records"),
    (["--lr", "1e308"], r"--lr: expected 1e-06 ≤ η ≤ 1e\+06"),
    (["--lr", "1e-310"], r"--lr: expected 1e-06 ≤ η ≤ 1e\+06"),
    (["--lr", "nan"], r"--lr: expected"),
    (["--seed", "-1"], r"--seed: expected a non-negative integer, got -1"),
    (["--ladder", "1e-3", "1e-4", "1e-5", "1e-9"], r"about [0-9.]+e\+08 simulation steps.*above the limit.*--yes"),
])
def test_meaningless_or_impossible_runs_are_refused_before_any_work(tmp_path, argv, match):
    out = tmp_path / "x"
    with pytest.raises(SystemExit, match=match) as exc:
        main(["verify", *FAST, "--models", "sphere_circle", "--out", str(out), *argv])
    assert exc.value.code == 2
    assert not out.exists(), "a refused run must not leave a half-written folder"


def test_usage_errors_exit_2_from_a_real_process(tmp_path):
    proc = _srflow(["verify", "--seed", "-1", "--out", str(tmp_path / "s")])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.strip() == "srflow: --seed: expected a non-negative integer, got -1"


def test_a_short_ladder_with_the_override_gives_inconclusive_verdicts_and_exit_0(tmp_path):
    out = tmp_path / "short"
    code = main(["verify", *FAST, "--models", "sphere_circle", "--checks", "flow-tracking", "scale-collapse",
                 "--ladder", "1e-3", "9e-4", "8e-4", "--allow-short-ladder", "--out", str(out)])
    rep = _report(out)
    by = {c["name"]: c for c in rep["checks"]}
    assert code == 0
    assert by["flow-tracking"]["status"] == "inconclusive" and "0.10 decades" in by["flow-tracking"]["message"]
    assert by["scale-collapse"]["status"] == "pass"  # uses one rung only: unaffected
    assert rep["counts"]["inconclusive"] == 1 and "0.10 decades" in " ".join(rep["notes"])
    assert "0.10 decades" in rep["short_ladder"]  # stored, so that --resume marks its verdicts the same way


def test_mark_inconclusive_turns_a_fail_too_and_leaves_other_checks_alone():
    def res(name, status):
        return CheckResult(name, "m", status, None, None, None, 1.0, "measured")

    assert mark_inconclusive(res("flow-tracking", "fail"), "why").status == "inconclusive"
    assert mark_inconclusive(res("flow-tracking", "assumption-violated"), "why").status == "assumption-violated"
    assert mark_inconclusive(res("eos-entry", "fail"), "why").status == "fail"
    assert set(LADDER_CHECKS) == {"eos-equilibrium", "flow-tracking", "naive-flow-rejected"}


def test_ladder_rules():
    assert ladder_problems([1e-3, 3e-4, 1e-4, 3e-5])[1:] == ([], "")  # the quick ladder: 4 values, 1.52 decades
    values, errors, short = ladder_problems([1e-5, 1e-3, 1e-4, 1e-3, 3e-5])
    assert values == [1e-3, 1e-4, 3e-5, 1e-5] and not errors and not short


def test_the_cost_budget_warns_then_refuses():
    assert budget_verdict(Cost({"m": 1e5}, 60.0))[0] == "ok"
    assert budget_verdict(Cost({"m": 5e7}, 60.0))[0] == "warn"
    assert budget_verdict(Cost({"m": 1e5}, 3600.0))[0] == "warn"
    level, msg = budget_verdict(Cost({"m": 3e8}, 60.0))
    assert level == "hard" and "3e+08" in msg


def test_a_warning_above_the_soft_budget_is_printed_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    import srflow.verification.verify as verify

    monkeypatch.setattr(verify, "WARN_STEPS", 10)
    code = main(["verify", *FAST, "--models", "sphere_circle", "--checks", "scale-collapse", "--out",
                 str(tmp_path / "w")])
    # the three runs of scale-collapse (the pair and the chaos twin), QUICK.collapse_steps each
    assert code == 0 and "srflow: warning: this run needs about 1.5e+03 simulation steps" in capsys.readouterr().err


def test_duplicates_run_once_and_are_noted(tmp_path, capsys):
    out = tmp_path / "dup"
    code = main(["verify", *FAST, "--models", "sphere_circle", "sphere_circle", "--checks", "identities",
                 "identities", "scale-collapse", "--out", str(out)])
    rep = _report(out)
    assert code == 0 and [c["name"] for c in rep["checks"]] == ["identities", "scale-collapse"]
    assert rep["models"] == ["sphere_circle"] and rep["requested_checks"] == ["identities", "scale-collapse"]
    assert "repeated identities ignored" in capsys.readouterr().err
    assert dedupe(["a", "b", "a", "c", "b"]) == (["a", "b", "c"], ["a", "b"])


# -- models from files ------------------------------------------------------------------------------------------
BROKEN = textwrap.dedent('''
    import numpy as np
    from srflow.toy_models import make_model

    class Wrong:
        """sphere_circle with one member broken."""
        def __init__(self, member, bad):
            self._m, self._member, self._bad = make_model("sphere_circle"), member, bad
            self.dim, self.name = 3, "wrong"
        def __getattr__(self, key):
            real = getattr(self._m, key)
            return (lambda *a: self._bad(real(*a))) if key == self._member else real

    def wrong_shape():
        return Wrong("grad", lambda g: g[:, None])

    def nan_hess():
        return Wrong("hess", lambda h: h * np.nan)

    def raises_type_error(rng=0):
        raise TypeError("my own bug")

    def no_rng():
        return make_model("sphere_circle")
''')


@pytest.mark.parametrize("factory, match", [
    ("wrong_shape", r"model wrong: grad\(w\) returned shape \(3, 1\) dtype float64, expected a real array of shape "
                    r"\(3,\)"),
    ("nan_hess", r"model wrong: hess\(w\) returned non-finite values"),
    ("raises_type_error", r"calling raises_type_error\(\) failed: TypeError: my own bug"),
])
def test_a_broken_user_model_is_named_as_such(tmp_path, factory, match):
    path = tmp_path / "broken_models.py"
    path.write_text(BROKEN)
    with pytest.raises(SystemExit, match=match) as exc:
        main(["verify", *FAST, "--model", f"{path}:{factory}", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2


def test_a_factory_without_rng_is_called_without_it(tmp_path):
    from srflow.verification.verify import load_model

    path = tmp_path / "ok_models.py"
    path.write_text(BROKEN)
    assert load_model(f"{path}:no_rng").dim == 3


def test_status_line_names_what_runs(capsys):
    from srflow.cli import _Status

    status = _Status(True)
    status.start("mf", "eos-equilibrium")
    status.tick()
    status.done("mf", "eos-equilibrium")
    err = capsys.readouterr().err
    assert "running: mf · eos-equilibrium 0 s" in err and err.endswith("\r\033[K")


# -- library API ------------------------------------------------------------------------------------------------
def _circle():
    return make_model("sphere_circle"), np.array([np.cos(0.3), np.sin(0.3), 0.0])


@pytest.mark.parametrize("call, exc, match", [
    (lambda m, th: sharpness_reduction_flow(m, th, 1.0, n_out=0), ValueError,
     r"n_out: expected an integer >= 2, got 0"),
    (lambda m, th: sharpness_reduction_flow(m, np.zeros(3), 1.0), ValueError,
     r"theta0: expected a nonzero vector"),
    (lambda m, th: sharpness_reduction_flow(m, th, 1.0, on_gap="bogus"), ValueError,
     r"on_gap: expected one of 'raise', 'warn', 'ignore', got 'bogus'"),
    (lambda m, th: manifold_point(m, th, on_gap="bogus"), ValueError, r"on_gap: expected"),
    (lambda m, th: project_to_manifold(m, th, max_time=-1), ValueError,
     r"max_time: expected a flow time > 0"),
    (lambda m, th: m.grad(np.full(3, 1e300)), ValueError, r"w: the squared norm of block 'w' overflows float64"),
    (lambda m, th: simulate(m, th, 0.1, 10, every=0), ValueError,
     r"every: expected a positive integer"),
    (lambda m, th: simulate(m, np.full(3, 1e300), 0.1, 10), ValueError,
     r"w0: ‖w0‖² = inf is not representable"),
    (lambda m, th: simulate(m, th, "0.1", 10), TypeError,
     r"lr: expected a real number, got str '0.1'"),
    (lambda m, th: make_model("mf", rng=-1), ValueError,
     r"rng: expected a non-negative integer seed"),
    (lambda m, th: make_model("sphere_circle", ratio=-1), ValueError,
     r"ratio: expected a finite ρ > -1"),
    (lambda m, th: make_model("deep_linear_wn", scale=0), ValueError,
     r"scale: expected c > 0 finite"),
])
def test_library_api_rejects_bad_arguments_naming_them(call, exc, match):
    m, th = _circle()
    with pytest.raises(exc, match=match):
        call(m, th)


def test_a_long_flow_time_warns_before_integrating():
    """The warning comes before the (> 10 min) integration: turned into an error, it stops the call at once."""
    import warnings

    m, th = _circle()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match=r"s_end = 1e\+06 is a long flow time \(> 100\)"):
            sharpness_reduction_flow(m, th, 1e6)
        assert len(sharpness_reduction_flow(m, th, 0.1, n_out=3).s) == 3  # a normal horizon: no warning


def test_a_vector_of_huge_entries_has_a_direction():
    """Φ of a vector of 1e300s is Φ of its direction (no overflow to a 'zero norm')."""
    m, _ = _circle()
    w = np.array([1.0, 2.0, 0.5])
    assert np.allclose(project_to_manifold(m, 1e300 * w).theta, project_to_manifold(m, w).theta, atol=1e-12)


DOUBLE_CTRL_C = textwrap.dedent('''
    import ctypes, os, signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as DEFAULT_SIGINT
    from srflow.verification.runner import Cluster, run_tasks

    def stubborn(job, send):
        ctypes.CDLL(None).signal(signal.SIGTERM, ctypes.c_void_p(1))  # SIG_IGN (from a task thread, by libc)
        send(("started", os.getpid()))
        time.sleep(60)

    def on_message(i, msg):
        if msg[0] == "started":
            print(msg[1], flush=True)

    cluster = Cluster(workers=2, fork=True, allowed_failures=0)
    try:
        run_tasks(cluster, stubborn, [0, 1], on_message, lambda i, m, e: None)
    except KeyboardInterrupt:
        cluster.close()
        print("cleaned up", flush=True)
        sys.exit(130)
''')

#: how long closing a LocalCluster waits for a worker that ignores SIGTERM before it kills it
STUBBORN_GRACE = 3.0


@linux_only
def test_a_second_ctrl_c_during_cleanup_exits_at_once_and_kills_the_workers(tmp_path):
    """First Ctrl-C: the runner closes its LocalCluster, which asks the workers to stop and waits for them; a
    second Ctrl-C meanwhile kills them and exits 130 at once (no hang on a stubborn worker)."""
    script = tmp_path / "double.py"
    script.write_text(DOUBLE_CTRL_C)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(proc.stdout.readline()) for _ in range(2)]
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.3)
        start = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # without the second Ctrl-C the run would end only when the cluster's close gives up on the stubborn workers
    # (and print "cleaned up"); a loaded machine takes ~1 s to get there even "at once"
    assert proc.returncode == 130 and elapsed < STUBBORN_GRACE, elapsed
    assert "cleaned up" not in proc.stdout.read()  # it did not wait for the cleanup to finish
    wait_for(lambda: not _live_in_group(proc.pid), 10, f"workers {workers} to die")


@linux_only
def test_progress_is_visible_on_a_terminal_with_two_workers(tmp_path):
    """stderr on a pseudo-terminal, 2 workers: the status line names the running model · check."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "srflow", "verify", "--quick", "--workers", "2", "--models",
                             "sphere_circle", "--checks", "eos-equilibrium", "no-wd-clock", "--out",
                             str(tmp_path / "tty")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the pty closes when the process ends
                break
            if not chunk:
                break
            seen += chunk
    finally:
        proc.wait(timeout=300)
        os.close(master)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0
    # the two jobs run side by side, so either may be named first on the status line
    assert "running: sphere_circle · " in text
    assert "sphere_circle · eos-equilibrium" in text and "sphere_circle · no-wd-clock" in text


def test_an_inconclusive_verdict_is_not_a_failure(tmp_path, monkeypatch):
    """A check returning "inconclusive" (the lead's verdict for e.g. dim Γ = 0): exit 0, counted and shown."""
    from srflow.cli import exit_status

    def undecided(session):
        return CheckResult("scale-collapse", session.name, "inconclusive", None, None, None, float("nan"),
                           "inconclusive: cannot decide here")

    monkeypatch.setitem(checks.CHECKS, "scale-collapse", replace(checks.CHECKS["scale-collapse"], run=undecided))
    out = tmp_path / "inc"
    code = main(["verify", *FAST, "--models", "sphere_circle", "--checks", "identities", "scale-collapse",
                 "--out", str(out)])
    rep = _report(out)
    assert code == 0 and rep["counts"]["inconclusive"] == 1 and rep["complete"]
    assert "inconclusive: cannot decide here" in (out / "report.md").read_text()

    def res(status):
        return CheckResult("c", "m", status, None, None, None, 0.0)

    assert exit_status([res("pass"), res("inconclusive"), res("assumption-violated")]) == 0
    assert exit_status([res("pass"), res("fail"), res("inconclusive")]) == 1
    assert exit_status([res("fail"), res("error")]) == 3


def test_two_models_with_one_name_stay_separate(tmp_path):
    """A registered model and a user model both named sphere_circle: two labelled rows, not one."""
    path = tmp_path / "same_name.py"
    path.write_text(BROKEN)
    out = tmp_path / "o"
    code = main(["verify", *FAST, "--models", "sphere_circle", "--model", f"{path}:no_rng", "--checks", "identities",
                 "--out", str(out)])
    rep = _report(out)
    labels = sorted(c["model"] for c in rep["checks"])
    assert code == 0 and labels == ["sphere_circle", f"sphere_circle [{path}:no_rng]"]


@linux_only
def test_sigterm_to_the_main_process_ends_the_run_like_ctrl_c(tmp_path):
    out = tmp_path / "term"
    proc = _srflow(["verify", "--quick", "--workers", "2", "--out", str(out)])
    try:
        wait_for(lambda: _has_results(out), 120, "a first result")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert _report(out)["interrupted"] is True and _report(out)["not_run"]
    wait_for(lambda: not _live_in_group(proc.pid), 10, "no live process in the group")
