"""Contracts at the edges (issue 21): every hostile input gives a clear error naming the argument (exit status 2
from the command line) or the right verdict, and results written before a failure survive it.

Rows: the library validates at its public boundary (NaN, a negative sharpness, a zero norm, None for a
generator: a ValueError or TypeError naming the argument, never a number); a model whose derivatives overflow is
a divergence (fail, with the step or flow time and the quantity), not an internal error; a full disk ends
``srflow verify`` with every finished result kept and the report not left "running"; so does a second Ctrl-C;
``srflow verify --ladder`` and a sweep's ``eta_lambda`` accept the same ηλ.
"""

import errno
import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import srflow.theory as th
from srflow.cli import main
from srflow.theory import predictions
from srflow.theory.gamma import Diverged
from srflow.toy_models import make_model
from srflow.verification.identities import check_identities, check_minimizer
from srflow.verification.simulate import simulate
from srflow.verification.sweep_spec import SpecError, parse_spec
from srflow.verification.verify import MAX_ETA_LAMBDA, ladder_problems

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--quick", "--workers", "1", "--quiet"]


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def circle():
    m = make_model("sphere_circle")
    theta = th.project_to_manifold(m, np.array([np.cos(0.3), np.sin(0.3), 0.0])).theta
    return m, theta


@pytest.fixture(scope="module")
def flow(circle):
    m, theta = circle
    return th.sharpness_reduction_flow(m, theta, 0.05, n_out=5)


# -- the library at its public boundary --------------------------------------------------------------------------
#: a valid value of every argument of the closed forms (theory.predictions)
VALID = {"lr": 0.1, "wd": 1e-3, "lam1": 2.0, "norm_sq": 1.0, "norm_ratio": 5.0, "G": 0.5, "eps": 0.1, "step_on_gamma": 10.0,
         "cubic": 0.3, "ratios": [0.5], "tau": 1.0, "algorithm": "sqrt", "c": 2.0, "eta_lambda": 1e-3,
         "s_gap": 0.01}
PREDICTIONS = [f for _, f in inspect.getmembers(predictions, inspect.isfunction) if f.__module__ == predictions.__name__]


def _cases():
    for fn in PREDICTIONS:
        for arg in inspect.signature(fn).parameters:
            if arg != "algorithm":
                yield pytest.param(fn, arg, id=f"{fn.__name__}-{arg}")


@pytest.mark.parametrize("fn, arg", list(_cases()))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_every_closed_form_rejects_a_non_finite_argument_naming_it(fn, arg, bad):
    """NaN or inf in any argument of any closed form is a ValueError naming that argument, not a number out."""
    kwargs = {k: VALID[k] for k in inspect.signature(fn).parameters}
    assert np.all(np.isfinite(fn(**kwargs)))  # the valid call works
    kwargs[arg] = [bad] if arg == "ratios" else bad
    with pytest.raises(ValueError, match=rf"^{arg}\b.*expected"):
        fn(**kwargs)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: th.equilibrium_norm_sq(0.1, 1e-3, -2.0), ValueError, r"lam1: expected a spherical sharpness λ₁\(θ\) > 0"),
    (lambda: th.equilibrium_norm_sq(0.1, 1e-3, 0.0), ValueError, r"lam1: expected .* > 0"),
    (lambda: th.equilibrium_norm_sq(0.1, 1e-3, np.array([2.0, -1.0])), ValueError, r"lam1: expected .* got -1.0"),
    (lambda: th.equilibrium_norm_sq(0.1, 1e-3, np.array([2.0, np.nan])), ValueError, r"lam1: expected finite"),
    (lambda: th.eos_entry_step(0.1, 1e-3, np.nan, 2.0), ValueError, r"norm_sq: expected a squared norm ‖w‖² > 0"),
    (lambda: th.phase2_duration(0.1, 1e-3, norm_sq=0, lam1=2.0), ValueError, r"norm_sq: expected .* > 0"),
    (lambda: th.phase2_duration(0.1, 1e-3, norm_sq=-1.0, lam1=2.0), ValueError, r"norm_sq: expected"),
    (lambda: th.oscillation_amplitude_sq(0.1, 1e-3, -1.0), ValueError, r"G: expected G = ‖∇_Γ log λ₁‖² >= 0"),
    (lambda: th.nowd_start_norm_sq(0.1, 2.0, -1.0), ValueError, r"eps: expected a finite ε > -1"),
    (lambda: th.alp_flip_step(0.1, 2.0, None), TypeError, r"algorithm: expected one of ngd"),
    (lambda: th.alp_flip_step(0.1, 2.0, "gd"), ValueError, r"algorithm: expected one of ngd"),
    (lambda: th.sqrt_cycle_split(2.0, 0.3, [[0.5]], 0.1, 1.0), ValueError, r"ratios: expected a 1-dimensional"),
    (lambda: th.sqrt_cycle_split(2.0, 0.3, [0.5], 0.1, -1.0), ValueError, r"tau: expected a time τ"),
    (lambda: th.equilibrium_norm_sq(0.1, 1e-3, "2"), TypeError, r"lam1: expected .* got str"),
    (lambda: th.effective_lr(0.1, np.zeros(3)), ValueError, r"w: expected a nonzero vector"),
    (lambda: th.effective_lr(0.1, [1.0, np.nan]), ValueError, r"w: expected finite entries"),
    (lambda: th.effective_lr(0.1, None), TypeError, r"w: expected a real array, got None"),
    (lambda: th.effective_lr(0.1, np.full(2, 1e300)), ValueError, r"w: expected a nonzero vector whose ‖w‖² is finite"),
])
def test_closed_forms_reject_meaningless_values_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_the_library_rejects_bad_arguments_of_models_flows_and_identities(circle, flow):
    """The functions of (model, w, ...) and of a flow result: each wrong argument is named."""
    m, theta = circle
    cases = [
        (lambda: th.top_eigenpairs(m, theta, k=1.5), ValueError, r"k: expected an integer >= 1"),
        (lambda: th.top_eigenpairs(m, theta, v0=np.ones(2)), ValueError, r"v0: expected shape \(3,\)"),
        (lambda: th.top_eigenpairs(m, theta, tol=-1.0), ValueError, r"tol: expected"),
        (lambda: th.manifold_point(m, theta, gap_rtol=np.nan), ValueError, r"gap_rtol: expected"),
        (lambda: th.project_to_manifold(m, [np.nan, 1.0, 0.0]), ValueError, r"w: expected finite entries"),
        (lambda: th.manifold.newton_polish(m, theta, iters=-1), ValueError, r"iters: expected an integer >= 0"),
        (lambda: th.sharpness_reduction_flow(m, theta, 0.1, coef=np.nan), ValueError, r"coef: expected a finite"),
        (lambda: th.eos_sharpness(m, theta, 0.1, 1e-3, coefficient=np.nan), ValueError, r"coefficient: expected"),
        (lambda: th.eos_sharpness_coefficient(m, theta, h=0.0), ValueError, r"h: expected a finite-difference step"),
        (lambda: flow.at(np.nan), ValueError, r"s: expected finite entries"),
        (lambda: th.gdwd_steps(None, 0.1, 1e-3), TypeError, r"result: expected a FlowResult"),
        (lambda: th.gdwd_tau({"s": [0.0]}), TypeError, r"result: expected a FlowResult"),
        (lambda: th.nowd_norm_sq(flow, 0.0), ValueError, r"norm0_sq: expected the squared norm"),
        (lambda: th.nowd_stop(flow, 0.1, np.nan), ValueError, r"norm0_sq: expected"),
        (lambda: th.nowd_flow_time([1.0, -1.0], 1.0), ValueError, r"norm_sq: expected squared norms > 0"),
        (lambda: th.s_at_steps(flow, np.arange(3.0), 1.0), ValueError, r"steps_of_s: expected one value per flow sample"),
        (lambda: th.s_at_steps(flow, th.normalized_gd_steps(flow, 0.1), np.nan), ValueError, r"steps: expected finite"),
        (lambda: check_identities(m, None), TypeError, r"rng: expected a numpy.random.Generator or an integer seed"),
        (lambda: check_identities(m, np.random.default_rng(0), points=0), ValueError, r"points: expected an integer"),
        (lambda: check_identities(None, 0), TypeError, r"model: missing protocol member"),
        (lambda: check_minimizer(m, [np.nan, 1.0, 0.0]), ValueError, r"theta: expected finite entries"),
        (lambda: check_minimizer(m, np.ones(4)), ValueError, r"theta: expected shape \(3,\)"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()


def test_identities_take_a_seed_or_one_name(circle):
    """``check_identities`` accepts an integer seed (the same draws as its Generator) and one name as a string."""
    m, _ = circle
    by_seed = check_identities(m, 3, points=1, names="invariance")
    by_rng = check_identities(m, np.random.default_rng(3), points=1, names=["invariance"])
    assert [r.identity for r in by_seed] == ["invariance"] and by_seed[0].point == by_rng[0].point


# -- overflow: a divergence verdict, not an internal error ---------------------------------------------------------
class OverflowInside:
    """sphere_circle, but inside the ball ‖w‖² < ``norm_sq`` the chosen derivatives overflow float64 (×1e300²)."""

    def __init__(self, norm_sq: float = 0.5, members=("grad",)):
        self.base, self.norm_sq, self.members = make_model("sphere_circle"), norm_sq, members
        self.dim, self.name = 3, "overflow_inside"

    def _scale(self, member, w):
        w = np.asarray(w, dtype=float)
        with np.errstate(over="ignore"):
            return np.float64(1e300) * 1e300 if member in self.members and w @ w < self.norm_sq else 1.0

    def loss(self, w):
        return self.base.loss(w)

    def grad(self, w):
        with np.errstate(invalid="ignore"):  # inf·0 = NaN where a component of ∇L is zero
            return self.base.grad(w) * self._scale("grad", w)

    def hess(self, w):
        with np.errstate(invalid="ignore"):
            return self.base.hess(w) * self._scale("hess", w)

    def hvp(self, w, v):
        with np.errstate(invalid="ignore"):
            return self.base.hvp(w, v) * self._scale("hess", w)

    def third(self, w, u, v):
        return self.base.third(w, u, v)


@pytest.mark.parametrize("members, quantity, early", [(("grad",), "∇L\\(w_t\\)", 0), (("hess",), "∇²L\\(w\\)", 1)])
def test_an_overflowing_derivative_ends_a_run_as_a_divergence_with_its_step(members, quantity, early):
    """GD+WD shrinks ‖w‖² by (1 - ηλ)² per step from 1 into the ball ‖w‖² < 0.5 where the gradient (or the
    Hessian) overflows: the run stops at the first step t with w_t inside (the Hessian: one step earlier, as the
    record at t reads λ₁ at w_{t+1}); ``diverged`` names the step and the quantity; the records before are kept."""
    model = OverflowInside(0.5, members)
    w0 = np.array([1.0, 0.2, 0.1]) / np.linalg.norm([1.0, 0.2, 0.1])  # off Γ: ∇L ≠ 0, so ∞·∇L overflows
    tr = simulate(model, w0, 0.1, 200, wd=0.5, every=1)
    first_inside = int(np.ceil(np.log(0.5) / (2 * np.log(0.95))))  # (0.95)^(2t) < 0.5
    assert tr.diverged.startswith(f"diverged at step {first_inside - early}: ")
    assert "non-finite" in tr.diverged and "overflows float64" in tr.diverged
    assert len(tr.steps) == first_inside - early and np.all(np.isfinite(tr.lam1))
    import re
    assert re.search(quantity, tr.diverged), tr.diverged


OVERFLOW_MODEL = textwrap.dedent('''
    import numpy as np
    from srflow.toy_models import make_model

    class Huge:
        """sphere_circle's loss times 1e300: finite at unit norm, its gradient flow overflows at once."""
        def __init__(self):
            self.base, self.dim, self.name = make_model("sphere_circle"), 3, "huge"
        def loss(self, w): return 1e300 * self.base.loss(w)
        def grad(self, w): return 1e300 * self.base.grad(w)
        def hess(self, w): return 1e300 * self.base.hess(w)
        def hvp(self, w, v): return 1e300 * self.base.hvp(w, v)
        def third(self, w, u, v): return 1e300 * self.base.third(w, u, v)

    def factory():
        return Huge()
''')


def test_a_model_whose_gradient_overflows_is_a_divergence_verdict_not_an_internal_error(tmp_path):
    """The audit's row: the projection onto Γ (every check's start) overflows. Each check fails saying where the
    flow diverged and which quantity left float64; exit status 1 (a check failed), not 3 (internal error)."""
    (tmp_path / "huge.py").write_text(OVERFLOW_MODEL)
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning):
        code = main(["verify", *FAST, "--model", f"{tmp_path / 'huge.py'}:factory", "--checks", "identities",
                     "eos-entry", "flow-tracking", "--out", str(out)])
    rep = _report(out)
    by = {c["name"]: c for c in rep["checks"]}
    assert code == 1 and rep["counts"]["error"] == 0, [c["message"] for c in rep["checks"]]
    for name in ("eos-entry", "flow-tracking"):
        assert by[name]["status"] == "fail"
        assert "diverged" in by[name]["message"] and "flow time" in by[name]["message"]
        assert "overflow float64" in by[name]["message"]


def test_a_diverging_gradient_flow_raises_diverged_naming_the_flow_time():
    model = OverflowInside(2.0, ("grad",))  # overflows everywhere on the unit sphere
    with pytest.raises(Diverged, match=r"∇L\(x\) is non-finite .* at flow time 0 of the gradient flow towards Γ"):
        th.project_to_manifold(model, np.array([1.0, 0.2, 0.1]))


# -- the ηλ domain: one bound for verify and sweep -----------------------------------------------------------------
@pytest.mark.parametrize("eta_lambda", [0.7, MAX_ETA_LAMBDA, 0.0, -1e-3])
def test_verify_and_sweep_accept_the_same_eta_lambda(eta_lambda):
    """``--ladder`` of verify and ``eta_lambda`` of a sweep spec refuse the same ηλ, naming the bound."""
    _, errors, _ = ladder_problems([eta_lambda, 1e-3, 1e-4])
    assert errors and f"(0, {MAX_ETA_LAMBDA:g})" in errors[0]
    with pytest.raises(SpecError, match=rf"expected values of ηλ in \(0, {MAX_ETA_LAMBDA:g}\)"):
        parse_spec({"models": ["sphere_circle"], "seeds": [0], "eta_lambda": [eta_lambda, 1e-3]})
    ok = 0.9 * MAX_ETA_LAMBDA
    assert not ladder_problems([ok, 1e-3, 1e-4])[1]
    assert parse_spec({"models": ["sphere_circle"], "seeds": [0], "eta_lambda": [ok, 1e-3]}).eta_lambda[0] == ok


# -- a full disk -------------------------------------------------------------------------------------------------
CHECKS3 = ["--models", "sphere_circle", "--checks", "identities", "eos-entry", "scale-collapse"]
#: the order they run in with one worker: the "gdwd" job (identities, scale-collapse), then the "related" one
RUN_ORDER3 = ["identities", "scale-collapse", "eos-entry"]


def _assert_kept(out: Path, code: int, capsys_err: str, n_done: int):
    rep = _report(out)
    assert code == 2
    assert rep["state"] == "interrupted" and not rep["complete"]
    assert [c["name"] for c in rep["checks"]] == RUN_ORDER3[:n_done]
    assert sorted(n["check"] for n in rep["not_run"]) == sorted(RUN_ORDER3[n_done:])
    assert all(n["model"] == "sphere_circle" for n in rep["not_run"])
    assert any("No space left on device" in n for n in rep["notes"])
    assert "No space left on device" in capsys_err and "--resume --out" in capsys_err
    md = (out / "report.md").read_text()
    assert "Run interrupted" in md and "## Not run" in md and "scale-collapse" in md
    assert not (out / ".srflow-reserve").exists()


def test_a_full_disk_keeps_every_finished_result_and_ends_the_run(tmp_path, monkeypatch, capsys):
    """The disk fills after the first result (simulated: every write of the report fails with ENOSPC while the
    reserve holds the last free blocks). The second result cannot be written: the run stops with exit 2 and a message naming
    --out, and report.json/report.md hold both finished results, state "interrupted" and the check not run."""
    import srflow.verification.report as report_module

    real = report_module.atomic_write
    writes = []

    def disk(path, data):
        # full once report.md has been written twice (at the start, and with the first result)
        full = writes.count("report.md") >= 2 and (path.parent / ".srflow-reserve").exists()
        writes.append(path.name)
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(report_module, "atomic_write", disk)
    out = tmp_path / "full"
    with pytest.raises(SystemExit) as exc:
        main(["verify", *FAST, *CHECKS3, "--out", str(out)])
    _assert_kept(out, exc.value.code, str(exc.value) + capsys.readouterr().err, 2)


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    folder.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def test_a_really_full_disk_keeps_every_finished_result(tmp_path, monkeypatch, capsys):
    """The same on a real 200 kB tmpfs (root only): when the second result arrives a file fills the disk to the
    last block, so writing it meets ENOSPC from the kernel."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "200k"):
        pytest.skip("needs root and tmpfs (mount -t tmpfs)")
    try:
        import srflow.verification.check_figures as check_figures

        real = check_figures.plot_check
        calls = []

        def fill_then_plot(res, folder):
            calls.append(res.name)
            if len(calls) == 2:  # the first result is on the disk: fill it
                with open(disk / "filler", "wb") as fh:
                    try:
                        while True:
                            fh.write(b"\0" * 4096)
                            fh.flush()
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
            return real(res, folder)

        monkeypatch.setattr(check_figures, "plot_check", fill_then_plot)
        out = disk / "run"
        with pytest.raises(SystemExit) as exc:
            main(["verify", *FAST, *CHECKS3, "--out", str(out)])
        _assert_kept(out, exc.value.code, str(exc.value) + capsys.readouterr().err, 2)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


# -- a second Ctrl-C ---------------------------------------------------------------------------------------------
SECOND_CTRL_C = textwrap.dedent('''
    import os, signal, sys, time
    # Ctrl-C is KeyboardInterrupt here even where the parent (an xdist worker) ignores SIGINT; set in the child
    # rather than by a preexec_fn, which would fork a process that has JAX loaded (JAX warns of a deadlock)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import srflow.verification.runner as runner
    from srflow.cli import main

    real_run_tasks, real_close = runner.run_tasks, runner.Cluster.close

    def first_ctrl_c(cluster, fn, args, on_message, *a, **kw):
        def on_message_then_stop(i, msg):
            on_message(i, msg)
            if msg[0] == "result":  # the first finished result is in the report: Ctrl-C
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
        real_run_tasks(cluster, fn, args, on_message_then_stop, *a, **kw)

    def slow_close(self, before_exit=None):
        client_close = self.client.close

        def close():
            os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, while the workers are being stopped
            time.sleep(5)
            client_close()
        self.client.close = close
        real_close(self, before_exit=before_exit)

    runner.run_tasks, runner.Cluster.close = first_ctrl_c, slow_close
    sys.exit(main(sys.argv[1:]))
''')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals to the own process")
def test_a_second_ctrl_c_leaves_the_report_interrupted_with_not_run(tmp_path):
    """Two jobs on 2 workers (the checks are in different groups). First Ctrl-C after one result; the second while
    the cluster closes, which ends the process at once (exit 130): report.json is "interrupted", not "running", and lists the checks that did not run."""
    script = tmp_path / "second.py"
    script.write_text(SECOND_CTRL_C)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(script), "verify", "--quick", "--quiet", "--workers", "2", "--models",
                          "sphere_circle", "--checks", "identities", "no-wd-clock", "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 130, run.stderr
    rep = _report(out)
    assert rep["state"] == "interrupted" and not rep["complete"], rep["state"]
    done = [(c["model"], c["name"]) for c in rep["checks"]]
    assert len(done) >= 1
    assert sorted((n["model"], n["check"]) for n in rep["not_run"]) == sorted(
        {("sphere_circle", "identities"), ("sphere_circle", "no-wd-clock")} - set(done))
    assert rep["not_run"] and "## Not run" in (out / "report.md").read_text()


def test_the_equilibrium_norm_is_elementwise_over_an_array_of_sharpness():
    """ηλ₁/(2(1 - ηλ)) for each λ₁ of an array (eos-equilibrium reads it along the flow), the same as one by one."""
    lam1 = np.array([2.0, 4.5])
    assert np.array_equal(th.equilibrium_norm_sq(0.1, 1e-3, lam1), [th.equilibrium_norm_sq(0.1, 1e-3, x) for x in lam1])
