"""The one runner (verification/runner.py): srflow verify on Dask -- a LocalCluster or a scheduler address --
gives the verdicts of an in-process run, and messages stream while a task still runs."""

import json
import os
import time
from pathlib import Path

import pytest

from srflow.cli import main
from srflow.verification.runner import Cluster, run_tasks

CHECKS = "identities,flow-tracking,eos-entry,scale-collapse"
ROOT = Path(__file__).resolve().parents[1]


def _checks(out):
    rep = json.loads((out / "report.json").read_text())
    return {(c["model"], c["name"]): (c["status"], c["observed"]) for c in rep["checks"]}


def test_verify_on_a_scheduler_gives_the_in_process_verdicts(tmp_path):
    """The same checks in this process (--workers 1), on a LocalCluster (--workers 2) and on a cluster reached
    through --scheduler ADDRESS: the same verdicts and the same observed values, bit for bit (every draw depends
    on (seed, spec) only)."""
    from distributed import LocalCluster

    common = ["verify", "--quick", "--quiet", "--models", "sphere_circle", "--checks", CHECKS]
    assert main([*common, "--workers", "1", "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--workers", "2", "--out", str(tmp_path / "pool")]) == 0
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        assert main([*common, "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "remote")]) == 0
    local = _checks(tmp_path / "local")
    assert len(local) == 4 and {s for s, _ in local.values()} == {"pass"}
    assert _checks(tmp_path / "pool") == local and _checks(tmp_path / "remote") == local


def _slow_task(arg, send):
    send(("first", time.time()))
    time.sleep(arg)
    send(("last", time.time()))


def test_messages_stream_while_the_task_runs():
    arrived, done = {}, {}
    with Cluster(workers=1, fork=True, allowed_failures=0) as cluster:
        run_tasks(cluster, _slow_task, [2.0], lambda i, msg: arrived.setdefault(msg[0], time.time()),
                  lambda i, messages, error: done.setdefault(i, (time.time(), messages, error)))
    finished, messages, error = done[0]
    assert error is None and [m[0] for m in messages] == ["pid", "first", "last"]
    assert set(arrived) == {"pid", "first", "last"}  # each message handed over exactly once
    assert arrived["first"] < finished - 1.0  # seen while the task still slept


def _boom(arg, send):
    raise ZeroDivisionError("in a task")


def test_a_task_error_comes_back_as_the_error():
    done = {}
    with Cluster(workers=1, fork=True) as cluster:
        run_tasks(cluster, _boom, [0], lambda i, msg: None, lambda i, m, e: done.setdefault(i, e))
    assert isinstance(done[0], ZeroDivisionError)


def test_a_bad_scheduler_address_is_an_error_naming_it(tmp_path, monkeypatch):
    with pytest.raises(OSError, match="--scheduler: cannot reach a Dask scheduler at tcp://127.0.0.1:1"):
        Cluster("tcp://127.0.0.1:1", timeout=1.0)
    monkeypatch.setattr(Cluster.__init__, "__defaults__", (None, None, True, False, None, 1.0))
    with pytest.raises(SystemExit, match="--scheduler: cannot reach") as exc:
        main(["verify", "--quick", "--quiet", "--checks", "identities", "--scheduler", "tcp://127.0.0.1:1",
              "--out", str(tmp_path / "x")])
    assert exc.value.code == 2


def test_workers_are_spawned_not_forked_once_jax_is_loaded(recwarn):
    """Forking a process that has loaded JAX (multithreaded) can deadlock: Cluster(fork=True) then spawns its
    workers -- no "os.fork() was called" warning -- and the tasks still run; without JAX it forks."""
    import subprocess
    import sys

    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()  # JAX's runtime (and its threads) started
    done = {}
    with Cluster(workers=1, fork=True) as cluster:
        assert cluster.forked is False
        run_tasks(cluster, _boom, [0], lambda i, msg: None, lambda i, m, e: done.setdefault(i, e))
    assert isinstance(done[0], ZeroDivisionError)
    assert not [w for w in recwarn if "os.fork()" in str(w.message)]
    probe = ("from srflow.verification.runner import Cluster\n"
             "with Cluster(workers=1, fork=True) as c:\n    print(c.forked)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.stdout.strip() == "True", run.stderr


def test_a_verify_job_runs_with_one_blas_thread(monkeypatch):
    """run_job (in this process or on a worker) limits BLAS to runner.BLAS_THREADS = 1 whatever the caller set: two
    workers on two cores with OpenBLAS's threads each would oversubscribe them."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import srflow.verification.verify as verify
    from srflow.verification.runner import BLAS_THREADS

    seen, real = [], verify.build_model

    def build(spec, seed):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return real(spec, seed)

    monkeypatch.setattr(verify, "build_model", build)
    with threadpool_limits(limits=2, user_api="blas"):
        outside = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
        results = []
        verify.run_job("sphere_circle", 0, ("identities",), verify.VerifyConfig(), 0, True, results.append)
    assert BLAS_THREADS == 1 and outside == {2} and seen == [{1}]
    assert [r.status for r in results] == ["pass"]
