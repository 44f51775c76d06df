"""Verdict accuracy on the zoo: every check on drawn models, unmutated and with each prediction wrong by ±1%.

For each zoo model (``toy_models.zoo.zoo_specs(n, seed)``) this runs the checks on one ``Session`` -- the same
session ``srflow verify --quick --models zoo:NAME --seed S`` builds, so every row is reproducible from its model
name and seed -- and then, for each prediction a check tests, the same check again with that prediction × (1 ± 1%)
handed in through the public ``theory`` function it calls (``MUTATIONS``; the tests/test_mutations.py mechanism).
The runs do not depend on the predictions: the mutated checks reuse the session's runs, and the runs the ALP,
no-WD, entry and stability checks keep to themselves are memoized (``memoized_runs``); so are the values of the
theory's costly pure functions of a point of Γ that the checks evaluate along the flow (``memoized_theory``: κ, the
slaving of the normal modes, c), which a mutated prediction wraps and rescales. As in ``srflow verify``, the checks
of one group (``checks.groups``) share one session and run in their order, each group in a session of its own.

A row records the unmutated verdict and, for each mutation, the mutated verdict and whether it failed *by
measurement* (the check computed its errors: details and a finite scaled error, not a crashed or diverged run).
A check *has power* on a model for a prediction where its unmutated verdict is ``pass`` (a check that cannot pass
the right prediction cannot tell a wrong one from it). ``summarize`` gives the confusion counts and the mutation
rejection rate per (check, prediction). Rows are appended to a JSON-lines file as each model completes, so an
interrupted study resumes where it stopped (``run_study(..., out=PATH)``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import numbers
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import srflow.theory as theory
import srflow.theory.flows as theory_flows

from .session import QUICK, Session, VerifyConfig

#: the relative size of the mutations (both signs)
MUTATION = 0.01


def _scaled(fn, factor):
    def mutated(*a, **k):
        return factor * fn(*a, **k)
    return mutated


def _scaled_rate(fn, factor):
    def mutated(*a, **k):
        out = fn(*a, **k)
        return dataclasses.replace(out, rate=factor * out.rate)
    return mutated


#: check -> [(prediction, theory attribute, builder(unmutated function, factor))]: each prediction the check tests,
#: perturbed where the check reads it (``srflow.theory.<attribute>``); the flow coefficient -¼ lives in
#: ``theory.flows.CANONICAL_COEF`` (a mutated coefficient recomputes the session's flows)
MUTATIONS: dict[str, list[tuple[str, str, object]]] = {
    "flow-tracking": [("GD+WD clock", "gdwd_steps", _scaled), ("flow coefficient -1/4", "flows.CANONICAL_COEF", None)],
    "eos-equilibrium": [("EoS sharpness 2 + c·ηλ", "eos_sharpness", _scaled),
                        ("equilibrium norm", "equilibrium_norm_sq", _scaled),
                        ("oscillation amplitude a²", "oscillation_amplitude_sq", _scaled)],
    "eos-stability": [("breathing rate κ", "eos_stability", _scaled_rate)],
    "eos-entry": [("phase-2 duration", "phase2_duration", _scaled), ("EoS threshold", "eos_threshold", _scaled)],
    "no-wd-clock": [("no-WD clock", "nowd_flow_time", _scaled), ("no-WD rest point", "nowd_final", _scaled)],
    "normalized-gd": [("normalized-GD clock", "normalized_gd_steps", _scaled)],
    "sqrt-loss-gd": [("sqrt-GD clock", "sqrt_gd_steps", _scaled)],
    "scale-collapse": [("collapse factor √c", "collapse_factor", _scaled)],
}


@contextmanager
def mutated(attr: str, builder, factor: float):
    """``srflow.theory.<attr>`` (or ``theory.flows.CANONICAL_COEF``) × ``factor`` inside the block."""
    if attr == "flows.CANONICAL_COEF":
        owner, name = theory_flows, "CANONICAL_COEF"
        original = owner.CANONICAL_COEF
        new = original * factor
    else:
        owner, name = theory, attr
        original = getattr(theory, attr)
        new = builder(original, factor)
    # also where the function is defined, so that theory's own callers (e.g. eos_entry_step calling
    # phase2_duration in theory.predictions) see the mutation, as tests/test_mutations.py does
    import sys

    home = sys.modules.get(getattr(original, "__module__", ""), None)
    owners = [owner] + ([home] if home is not None and home is not owner and getattr(home, name, None) is original
                        else [])
    for o in owners:
        setattr(o, name, new)
    try:
        yield
    finally:
        for o in owners:
            setattr(o, name, original)


#: keywords of ``simulate`` that do not change the run
_IGNORED = ("label", "quiet")


def _check_modules() -> list:
    """Every module of ``verification/checks`` (the shared ones included: the ALP runs are simulated in one)."""
    import importlib
    import pkgutil

    from . import checks as package

    return [importlib.import_module(f"{package.__name__}.{info.name}") for info in pkgutil.iter_modules(package.__path__)]


@contextmanager
def verdict_only():
    """Inside the block the checks skip their resolving power δ* (``resolving_power`` returns NaN): a mutated check
    needs only its verdict, and δ* is a bisection over many re-evaluations of the recorded runs."""
    saved = []
    for module in _check_modules():
        if hasattr(module, "resolving_power"):
            saved.append((module, module.resolving_power))
            module.resolving_power = lambda *a, **k: float("nan")
    try:
        yield
    finally:
        for module, fn in saved:
            module.resolving_power = fn


@contextmanager
def memoized_runs():
    """``simulate`` in the check modules that keep their runs to themselves, served from a memo keyed by every
    argument that changes the run (model object, w0's bytes, η, steps, plain keywords); each call gets a deep copy."""
    modules = [m for m in _check_modules() if hasattr(m, "simulate")]
    memo: dict = {}
    saved = [(m, m.simulate) for m in modules]
    for module, real in saved:
        def simulate(model, w0, lr, steps, _real=real, **kw):
            items = []
            for k, v in sorted(kw.items()):
                if k in _IGNORED:
                    continue
                if not isinstance(v, (numbers.Number, str, bool, type(None))):
                    return _real(model, w0, lr, steps, **kw)
                items.append((k, v))
            w = np.asarray(w0, dtype=float)
            key = (id(model), w.shape, w.tobytes(), float(lr), int(steps), tuple(items))
            if key not in memo:
                memo[key] = (model, _real(model, w0, lr, steps, **kw))
            return copy.deepcopy(memo[key][1])
        module.simulate = simulate
    try:
        yield memo
    finally:
        for module, real in saved:
            module.simulate = real


#: the theory's pure functions of (model, θ ∈ Γ, ...) that the checks evaluate at many flow samples, unmutated and
#: again inside each mutated check: seconds per model each on the zoo (eos-stability evaluates κ and the slaving at
#: all 401 samples of its flow)
MEMOIZED_THEORY = ("eos_stability", "eos_slaving", "eos_sharpness_coefficient")


def _theory_key(args, kwargs):
    """A memo key for a call with ``args`` and ``kwargs``: arrays by shape, dtype and bytes, plain values as they are,
    anything else (the model) by identity."""
    def one(a):
        if isinstance(a, np.ndarray):
            return (a.shape, a.dtype.str, a.tobytes())
        if isinstance(a, (numbers.Number, str, bool, type(None))):
            return a
        return ("id", id(a))  # the model: the study keeps it alive for the memo's lifetime
    return tuple(one(a) for a in args), tuple((k, one(v)) for k, v in sorted(kwargs.items()))


@contextmanager
def memoized_theory(names=MEMOIZED_THEORY):
    """``srflow.theory.<name>`` (and the same function where it is defined) served from a memo keyed by its arguments
    (the model by identity, arrays by their bytes) inside the block. Only for deterministic functions whose results the
    callers do not modify; a mutation (``mutated``) entered inside the block wraps the memoized function, so the
    mutated prediction is the memoized value rescaled -- the value the unmemoized function would have rescaled."""
    import functools
    import sys

    saved = []
    for name in names:
        original = getattr(theory, name)
        memo: dict = {}

        @functools.wraps(original)
        def memoized(*args, _fn=original, _memo=memo, **kwargs):
            key = _theory_key(args, kwargs)
            if key not in _memo:
                _memo[key] = _fn(*args, **kwargs)
            return _memo[key]

        home = sys.modules.get(original.__module__)
        owners = [theory] + ([home] if home is not None and home is not theory and getattr(home, name, None) is original
                             else [])
        for owner in owners:
            saved.append((owner, name, original))
            setattr(owner, name, memoized)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _fails_by_measurement(res) -> bool:
    return res.status == "fail" and bool(res.details) and bool(np.isfinite(res.scaled_error))


def _short(text: str, n: int = 400) -> str:
    text = str(text).replace("\n", " ")
    return text if len(text) <= n else text[:n] + " …"


def study_model(name: str, seed: int, checks_to_run, config: VerifyConfig = QUICK, mutation: float = MUTATION,
                mutate: bool = True, emit=None, skip: tuple = ()) -> list[dict]:
    """The rows of one zoo model ``name`` (its ``toy_models.zoo`` name): for each check of ``checks_to_run``, the
    unmutated verdict and (``mutate``) the verdict of each prediction × (1 ± ``mutation``) on the same runs.
    ``emit(row)`` is called with each row as it completes; the predictions named in ``skip`` are not mutated."""
    from srflow.toy_models.zoo import conditioning, zoo_model

    from .checks import CHECKS

    model = zoo_model(name)
    # one session per group of checks, in running order, as ``srflow verify`` runs them (verify.run_job): a check
    # sees the flows and runs its group's earlier checks left in the session, and only those
    order = list(CHECKS)
    checks_to_run = sorted(checks_to_run, key=order.index)
    sessions: dict = {}

    def session_of(check):
        group = CHECKS[check].group
        if group not in sessions:
            sessions[group] = Session(model, config, seed, quiet=True, spec=f"zoo:{name}")
        return sessions[group]

    rows = []
    # one BLAS thread: the matrices are at most a few dozen wide, where OpenBLAS's threads only add synchronization
    # (on a shared 2-core machine eigh of a 36×36 Hessian took 12.8 ms on two threads, 0.11 ms on one; κ at one
    # point of the D = 36 zoo model 0.37 s against 0.005 s), as figures/_common.py does
    with threadpool_limits(limits=1, user_api="blas"), memoized_runs(), memoized_theory():
        cond = {}
        try:
            theta0 = session_of(checks_to_run[0]).theta0 if checks_to_run else None
            cond = {k: float(v) for k, v in conditioning(model, theta0).items()} if model.dim <= 400 else {}
        except Exception as exc:  # noqa: BLE001 -- conditioning is context, not a verdict
            cond = {"error": f"{type(exc).__name__}: {exc}"}
        for check in checks_to_run:
            session = session_of(check)
            start, cpu = time.perf_counter(), time.process_time()
            try:
                res = CHECKS[check](session)
                status, message, power = str(res.status), res.message, res.resolving_power
            except Exception as exc:  # noqa: BLE001 -- an internal error is a row, not a crash of the study
                status, message, power, res = "error", f"{type(exc).__name__}: {exc}", {}, None
            row = {"model": name, "seed": seed, "check": check, "status": status, "message": _short(message, 1200),
                   "seconds": round(time.perf_counter() - start, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
                   "conditioning": cond,
                   "resolving_power": {k: (float(v) if isinstance(v, (int, float)) else None) for k, v in power.items()},
                   "mutations": []}
            if mutate and status == "pass":
                for label, attr, builder in [m for m in MUTATIONS.get(check, []) if m[0] not in skip]:
                    for factor in (1 + mutation, 1 - mutation):
                        t0, c0 = time.perf_counter(), time.process_time()
                        s = Session(model, config, seed, quiet=True, spec=f"zoo:{name}")
                        s._cache = {k: v for k, v in session._cache.items()
                                    if not (attr == "flows.CANONICAL_COEF" and k in ("flows", "flow_failed"))}
                        try:
                            with mutated(attr, builder, factor), verdict_only():
                                mres = CHECKS[check](s)
                            mstatus, mmsg, by_meas = str(mres.status), mres.message, _fails_by_measurement(mres)
                        except Exception as exc:  # noqa: BLE001
                            mstatus, mmsg, by_meas = "error", f"{type(exc).__name__}: {exc}", False
                        row["mutations"].append({"prediction": label, "factor": factor, "status": mstatus,
                                                 "fails_by_measurement": by_meas, "message": _short(mmsg),
                                                 "seconds": round(time.perf_counter() - t0, 2),
                                                 "cpu_seconds": round(time.process_time() - c0, 2)})
            rows.append(row)
            if emit is not None:
                emit(row)
    return rows


def done_rows(path: Path) -> list[dict]:
    """The rows already written to ``path`` (a JSON-lines file; a torn last line is ignored), the last one for each
    (model, check) (a check rerun with ``redo`` replaces its earlier row)."""
    rows: dict = {}
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows.pop((r["model"], r["check"]), None)
            rows[(r["model"], r["check"])] = r
    return list(rows.values())


def run_study(n: int, seed: int, checks_to_run, out, config: VerifyConfig = QUICK, families=None, backends=None,
              mutate: bool = True, log=print, redo: bool = False, skip: tuple = ()) -> list[dict]:
    """``study_model`` on the ``n`` models of ``zoo_specs(n, seed)``, appending each model's rows to ``out`` (JSON
    lines) as it completes; models whose rows for every check are already in ``out`` are skipped (resume)."""
    from srflow.toy_models.zoo import zoo_specs

    out = Path(out)
    specs = zoo_specs(n, seed, families=families, backends=backends)
    log(f"zoo study: seed {seed}, {n} model(s), checks {', '.join(checks_to_run)} -> {out}")
    have = set() if redo else {(r["model"], r["check"]) for r in done_rows(out)}
    for i, spec in enumerate(specs):
        todo = [c for c in checks_to_run if (spec.name, c) not in have]
        if not todo:
            continue
        start = time.perf_counter()

        def emit(row):
            with out.open("a") as fh:
                fh.write(json.dumps(row, default=float) + "\n")
            log(f"[{i}] {spec.name} {row['check']}: {row['status']} ({row['seconds']:.0f} s; mutations "
                + ", ".join(f"{m['factor'] - 1:+.0%} {m['prediction']}: {m['status']}" for m in row["mutations"]) + ")")

        study_model(spec.name, seed, todo, config, mutate=mutate, emit=emit, skip=skip)
        log(f"[{i}] {spec.name}: done in {time.perf_counter() - start:.0f} s")
    return done_rows(out)


#: (check, prediction) -> the key of the check's resolving power δ* for that prediction (``CheckResult.resolving_power``)
#: where the check reports one: a model on which the check passes but resolves the prediction only to δ* > 1% has no
#: power against a 1% error by its own account (``summarize``'s second count)
POWER_KEYS = {("flow-tracking", "GD+WD clock"): "clock rate",
              ("eos-equilibrium", "EoS sharpness 2 + c·ηλ"): "threshold, leading term",
              ("eos-equilibrium", "equilibrium norm"): "equilibrium norm",
              ("eos-equilibrium", "oscillation amplitude a²"): "amplitude",
              ("eos-stability", "breathing rate κ"): "breathing rate κ (relative)",
              ("no-wd-clock", "no-WD rest point"): "rest point",
              ("normalized-gd", "normalized-GD clock"): "clock rate",
              ("sqrt-loss-gd", "sqrt-GD clock"): "clock rate"}


def summarize(rows) -> dict:
    """Confusion counts per check (pass, fail, inconclusive, assumption-violated, error) and, per (check, prediction,
    sign), the number of models with power (unmutated pass) and of those where the mutation failed by measurement."""
    verdicts: dict = {}
    mutation: dict = {}
    resolved: dict = {}
    for r in rows:
        verdicts.setdefault(r["check"], {}).setdefault(r["status"], 0)
        verdicts[r["check"]][r["status"]] += 1
        for m in r.get("mutations", []):
            key = (r["check"], m["prediction"], f"{m['factor'] - 1:+.0%}")
            power, failed = mutation.get(key, (0, 0))
            mutation[key] = (power + 1, failed + int(m["fails_by_measurement"]))
            name = POWER_KEYS.get((r["check"], m["prediction"]))
            if name is not None:
                delta = r.get("resolving_power", {}).get(name)
                n, f = resolved.get(key, (0, 0))
                ok = delta is not None and np.isfinite(delta) and delta <= abs(m["factor"] - 1)
                resolved[key] = (n + int(ok), f + int(ok and m["fails_by_measurement"]))
    return {"verdicts": verdicts, "mutations": mutation, "resolved": resolved}


def confusion(rows) -> dict:
    """Right/wrong × verdict: ``right`` counts the verdicts of the theory's predictions (every row), ``wrong`` those of
    the ±1% mutations (run where the unmutated check passes: the checks with power on that model)."""
    right: dict = {}
    wrong: dict = {}
    for r in rows:
        right[r["status"]] = right.get(r["status"], 0) + 1
        for m in r.get("mutations", []):
            wrong[m["status"]] = wrong.get(m["status"], 0) + 1
    return {"right": right, "wrong": wrong}


def tables(rows) -> str:
    """Markdown: the verdicts per check and the mutation rejection rates (``summarize``)."""
    s = summarize(rows)
    statuses = ["pass", "fail", "inconclusive", "assumption-violated", "error"]
    lines = ["| check | models | " + " | ".join(statuses) + " |", "| --- | --- |" + " --- |" * len(statuses)]
    total = dict.fromkeys(statuses, 0)
    for check, counts in s["verdicts"].items():
        lines.append(f"| {check} | {sum(counts.values())} | " + " | ".join(str(counts.get(k, 0)) for k in statuses) + " |")
        for k in statuses:
            total[k] += counts.get(k, 0)
    lines.append(f"| all | {sum(total.values())} | " + " | ".join(str(total[k]) for k in statuses) + " |")
    conf = confusion(rows)
    lines += ["", "| prediction | " + " | ".join(statuses) + " |", "| --- |" + " --- |" * len(statuses)]
    lines += [f"| {label} | " + " | ".join(str(conf[key].get(k, 0)) for k in statuses) + " |"
              for key, label in (("right", "right (the theory's)"), ("wrong", "wrong (±1%, where the check has power)"))]
    lines += ["", "| check | prediction | mutation | models with power | failed by measurement | rate | of them δ* ≤ 1% | "
              "failed | rate |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, (power, failed) in s["mutations"].items():
        n, f = s["resolved"].get(key, (None, None))
        tail = "– | – | –" if n is None else f"{n} | {f} | " + (f"{f / n:.0%}" if n else "–")
        lines.append(f"| {' | '.join(key)} | {power} | {failed} | {failed / power:.0%} | {tail} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m srflow.verification.zoo_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checks", nargs="+", required=True)
    p.add_argument("--out", required=True, help="JSON-lines file (appended; resumes)")
    p.add_argument("--families", nargs="+")
    p.add_argument("--backends", nargs="+")
    p.add_argument("--no-mutations", action="store_true")
    p.add_argument("--skip-predictions", nargs="+", default=(), metavar="PREDICTION",
                   help="predictions not to mutate (their labels in MUTATIONS), e.g. 'flow coefficient -1/4'")
    p.add_argument("--redo", action="store_true", help="rerun the checks even where OUT has a row (the new row replaces it)")
    a = p.parse_args(argv)
    rows = run_study(a.n, a.seed, a.checks, a.out, families=a.families, backends=a.backends,
                     mutate=not a.no_mutations, log=lambda m: print(m, flush=True), redo=a.redo,
                     skip=tuple(a.skip_predictions))
    print(tables(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
