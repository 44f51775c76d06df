"""The flows of matrix-free models shared through the disk cache (verification/flow_cache.py, Session.flow), and the
bound on how far a failed flow looked ahead (theory.flows.failure_reach) that lets a failure answer other horizons."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest

import srflow.theory as th
from srflow.theory import flows
from srflow.toy_models import make_model
from srflow.verification import flow_cache, session as session_mod
from srflow.verification.flow_cache import FlowStore, failure_applies, flow_key
from srflow.verification.session import Session, VerifyConfig

THETA_CIRCLE = np.array([np.cos(0.3), np.sin(0.3), 0.0])
REAL_FIELD = flows._field


def _failing_field(record, s_fail):
    """A field that records where it is evaluated and fails (a closed gap) from flow time ``s_fail`` on."""
    def field(model, s, x, coef, on_gap, memo=None):
        record.append(float(s))
        if s > s_fail:
            raise th.AssumptionViolated(f"gap closed (flow time s = {s:.4g})", kind="gap", s=float(s))
        return REAL_FIELD(model, s, x, coef, on_gap, memo)
    return field


@pytest.mark.parametrize("s_fail", [0.02, 0.05, 0.3])
def test_failure_reach_bounds_the_steps(monkeypatch, s_fail):
    """A flow that fails reports how far it may have looked ahead (the ends of its step attempts, the failed one's
    bounded through its first stage node c₁); to any horizon beyond it the integration evaluates the field at the same flow times and fails at the same one -- what
    Session.flow relies on to reuse a failure (s_fail = 0.02 fails at the initial step selection's probe, 0.05 in
    the first step, 0.3 after several)."""
    m = make_model("sphere_circle")

    def run(horizon):
        record = []
        monkeypatch.setattr(flows, "_field", _failing_field(record, s_fail))
        with pytest.raises(th.AssumptionViolated) as info:
            flows.simple_flow(m, THETA_CIRCLE, horizon, n_out=5)
        c1 = 0.0526001519587677318785587544488  # DOP853's first stage node
        assert max(record) <= info.value.reach <= max(record) / c1
        assert info.value.s == record[-1] > s_fail and info.value.kind == "gap"
        return record, info.value.reach, info.value.s

    first = run(50.0)
    for horizon in (first[1] * 1.0001, 3 * first[1], 20.0):
        assert run(horizon) == first, horizon
    # a horizon inside the first step attempt changes the steps (the bound is not vacuous there)
    record = []
    monkeypatch.setattr(flows, "_field", _failing_field(record, s_fail))
    try:
        flows.simple_flow(m, THETA_CIRCLE, first[0][1] * 0.5, n_out=5)
    except th.AssumptionViolated:
        pass
    assert record[:len(first[0])] != first[0]


def test_failure_applies():
    """The same or a longer horizon always; a shorter one only when neither horizon reaches into the failed steps."""
    assert failure_applies(1.0, None, 1.0) and failure_applies(1.0, None, 2.0) and not failure_applies(1.0, None, 0.9)
    assert failure_applies(1.0, 0.02, 0.03) and not failure_applies(1.0, 0.02, 0.02)
    assert not failure_applies(0.01, 0.02, 0.005)  # the failed flow was clipped at its horizon: no reuse below it
    assert failure_applies(0.01, 0.02, 0.01)


def _big_mf():
    """mf with D = 404 > DENSE_MAX_DIM: the matrix-free path, a numpy model (forks cleanly)."""
    m = make_model("mf", m=101, n=101, rank=2)
    assert not th.is_dense(m)
    return m


def _theta(m):
    return np.asarray(m.minimizer(np.random.default_rng(0)), dtype=float)


def test_key_names_what_the_flow_depends_on(monkeypatch):
    """flow_key changes with the start, the model (another seed), the flow's arguments and the canonical coefficient
    as it is at call time; it is the same for the same inputs."""
    m, m2 = _big_mf(), make_model("mf", rng=1, m=101, n=101, rank=2)
    t = _theta(m)
    key = flow_key("mf", m, t, 401, 1e-9, 1e-12)
    assert key == flow_key("mf", m, t.copy(), 401, 1e-9, 1e-12)
    others = {flow_key("mf", m, t * (1 + 1e-15 * np.arange(m.dim)), 401, 1e-9, 1e-12),
              flow_key("mf", m2, t, 401, 1e-9, 1e-12), flow_key("mf", m, t, 201, 1e-9, 1e-12),
              flow_key("mf", m, t, 401, 1e-10, 1e-12), flow_key("mf2", m, t, 401, 1e-9, 1e-12)}
    monkeypatch.setattr(flows, "CANONICAL_COEF", -0.25 * 1.01)
    others.add(flow_key("mf", m, t, 401, 1e-9, 1e-12))
    assert key not in others and len(others) == 6


#: the forked children here use numpy models and never touch JAX, which the parent process (an xdist worker) may have
#: loaded: JAX's fork warning does not apply to them (the monkeypatched flow needs fork, not spawn)
_FORK_WITH_JAX_LOADED = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")


def _session_flow(args):
    """In a forked process: a sharing Session's flow to ``s_end``; returns (error text, seconds waited)."""
    cache, s_end, marker = args
    import os
    os.environ["SRFLOW_CACHE_DIR"] = cache
    m = _big_mf()
    sess = Session(m, VerifyConfig(), 0, spec="mf-big", theta0=_theta(m), share_flows=True)
    start = time.perf_counter()
    try:
        sess.flow(s_end)
    except th.AssumptionViolated as exc:
        return str(exc), time.perf_counter() - start
    return "", time.perf_counter() - start


def _slow_failing_flow(marker):
    def flow(model, theta0, s_end, n_out, rtol, atol):
        with open(marker, "a") as fh:  # one line per integration
            fh.write(f"{s_end}\n")
        time.sleep(1.5)
        raise th.AssumptionViolated("spectral gap closed (flow time s = 0.001068)", kind="gap", s=0.001068,
                                    reach=0.0203)
    return flow


@_FORK_WITH_JAX_LOADED
def test_two_processes_share_one_failed_flow(tmp_path, monkeypatch):
    """Two processes ask for the flow at once, to horizons beyond the failure's reach: one integrates it, the other
    waits on the lock and reads its failure -- the same text -- instead of integrating it again."""
    marker = tmp_path / "integrations.txt"
    monkeypatch.setattr(session_mod, "sharpness_reduction_flow", _slow_failing_flow(marker))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        out = pool.map(_session_flow, [(str(tmp_path), 0.907, marker), (str(tmp_path), 0.26, marker)])
    assert len(marker.read_text().split()) == 1
    texts = [t for t, _ in out]
    assert texts[0] == texts[1] and "s = 0.001068" in texts[0]
    assert max(w for _, w in out) >= 1.4  # the second one waited for the first
    # a third session, later, in this process: from the disk, no integration
    assert _session_flow((str(tmp_path), 0.5, marker))[0] == texts[0]
    assert len(marker.read_text().split()) == 1
    # below the reach the failure does not answer: integrated again
    assert _session_flow((str(tmp_path), 0.01, marker))[0]
    assert len(marker.read_text().split()) == 2


@_FORK_WITH_JAX_LOADED
def test_a_dead_holder_releases_the_lock(tmp_path):
    """A process killed while it holds the lock releases it (flock), and leaves no record: the next one proceeds."""
    store = FlowStore(tmp_path, "k")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()

    def hold():
        with store.locked():
            ready.set()
            time.sleep(60)
    proc = ctx.Process(target=hold)
    proc.start()
    assert ready.wait(10)
    proc.kill()
    proc.join()
    start = time.perf_counter()
    with store.locked():
        assert store.lookup(0.1, None) is None
    assert time.perf_counter() - start < 5


def test_a_flow_round_trips_through_the_disk(tmp_path, monkeypatch):
    """A flow that reaches its horizon (here a real one of sphere_circle standing in for the matrix-free integration)
    is stored and read back by another sharing session: the same samples and dense solution, the session's model
    attached; a shorter horizon is served by it, a longer one integrated. (The real matrix-free flow: the slow test
    below.)"""
    monkeypatch.setenv("SRFLOW_CACHE_DIR", str(tmp_path))
    m = _big_mf()
    t = _theta(m)
    real = flows.sharpness_reduction_flow(make_model("sphere_circle"), THETA_CIRCLE, 0.05, n_out=11)
    calls = []

    def flow(model, theta0, s_end, n_out, rtol, atol):
        calls.append(s_end)
        if s_end > 0.05:
            raise ZeroDivisionError("integrated")
        return real
    monkeypatch.setattr(session_mod, "sharpness_reduction_flow", flow)
    a = Session(m, VerifyConfig(), 0, spec="mf-big", theta0=t, share_flows=True).flow(0.05)
    b = Session(m, VerifyConfig(), 0, spec="mf-big", theta0=t, share_flows=True).flow(0.03)
    assert calls == [0.05] and b is not a and b.model is m
    for name in ("s", "theta", "lam1", "G"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(a.sol(0.037), b.sol(0.037))
    with pytest.raises(ZeroDivisionError):
        Session(m, VerifyConfig(), 0, spec="mf-big", theta0=t, share_flows=True).flow(0.08)


@pytest.mark.slow
def test_a_real_flow_round_trips_through_the_disk(tmp_path, monkeypatch):
    """A matrix-free flow that reaches its horizon is stored and read back by another session: the same samples and
    dense output (``at``), its model attached; a shorter horizon is served by it, a longer one integrated."""
    monkeypatch.setenv("SRFLOW_CACHE_DIR", str(tmp_path))
    m = _big_mf()
    t = _theta(m)
    a = Session(m, VerifyConfig(), 0, spec="mf-big", theta0=t, share_flows=True).flow(0.006)
    calls = []
    monkeypatch.setattr(session_mod, "sharpness_reduction_flow", lambda *a, **k: calls.append(a) or 1 / 0)
    b = Session(m, VerifyConfig(), 0, spec="mf-big", theta0=t, share_flows=True).flow(0.004)
    assert calls == [] and b is not a and b.model is m
    for name in ("s", "theta", "lam1", "G"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(a.at([0.005]), b.at([0.005]))
    with pytest.raises(ZeroDivisionError):
        Session(m, VerifyConfig(), 0, spec="mf-big", theta0=t, share_flows=True).flow(0.008)
    # without share_flows (the API's default) the disk is not read
    with pytest.raises(ZeroDivisionError):
        Session(m, VerifyConfig(), 0, spec="mf-big", theta0=t).flow(0.004)


def test_dense_models_are_not_cached_on_disk(tmp_path, monkeypatch):
    """A dense model's flow (seconds; the tests perturb theory at run time) never goes to the disk."""
    monkeypatch.setenv("SRFLOW_CACHE_DIR", str(tmp_path))
    m = make_model("sphere_circle")
    Session(m, VerifyConfig(), 0, theta0=THETA_CIRCLE, share_flows=True).flow(0.05)
    assert not any(tmp_path.iterdir())


def test_an_unreadable_record_is_a_miss(tmp_path):
    store = FlowStore(tmp_path, "k")
    store.folder.mkdir(parents=True)
    store.path.write_bytes(b"not a pickle")
    assert store.entries() == [] and store.lookup(0.1, None) is None
    store.add(0.5, failure=th.AssumptionViolated("x", kind="gap", s=0.001, reach=0.02))
    hit = store.lookup(0.3, None)
    assert isinstance(hit, th.AssumptionViolated) and (str(hit), hit.kind, hit.s, hit.reach) == ("x", "gap", 0.001, 0.02)
    assert flow_cache.FlowStore(None, "k").lookup(0.3, None) is None
