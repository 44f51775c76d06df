"""The ``srflow`` command line: ``verify``, ``zoo``, ``figures``, ``sweep``, ``list``, ``check-identities``,
``derive``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

from srflow import __version__
from srflow.toy_models import REGISTRY, make_model
from srflow.toy_models.protocol import minimizer_point, model_name
from srflow.verification.identities import IDENTITIES, check_identities, check_minimizer
from srflow.verification.outdir import (EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE,  # noqa: F401
                                        OutputWriteFailed, UsageError, fresh_folder, writable as _writable)


def _models(names: list[str] | None, seed: int):
    names = list(REGISTRY) if not names else names
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UsageError(f"srflow: --models: unknown model(s) {', '.join(unknown)}; valid: {', '.join(REGISTRY)}")
    return [make_model(n, rng=seed) for n in names]


def _cmd_list(args) -> int:
    print("models (toy_models.REGISTRY):")
    for name in REGISTRY:
        try:
            m = make_model(name)
        except ModuleNotFoundError as exc:  # the networks need the optional jax extra
            print(f"  {name:<16} needs the jax extra (python3 -m pip install 'srflow[jax]'): no module {exc.name!r}")
            continue
        gamma = getattr(m, "manifold_dim", None)
        print(f"  {name:<16} D={m.dim:<4} dim Γ={'-' if gamma is None else gamma:<3} {getattr(m, 'description', '')}")
    from srflow.toy_models.zoo import FAMILIES

    print("zoo families (srflow zoo; toy_models.zoo): " + ", ".join(f"{f} ({'/'.join(b)})" for f, b in FAMILIES.items()))
    from srflow.theory.symbolic import SCRIPTS

    print("derivations (srflow derive):")
    for name, what in SCRIPTS.items():
        print(f"  {name:<16} {what}")
    from srflow.verification.checks import CHECKS
    from srflow.verification.verify import DEFAULT_MODELS

    print(f"checks (srflow verify; default models: {', '.join(DEFAULT_MODELS)}):")
    for name, check in CHECKS.items():
        print(f"  {name:<20} {check.summary}")
    from srflow.figures import FIGURES

    print("figures (srflow figures):")
    for name, mod in FIGURES.items():
        print(f"  {name:<20} {(mod.__doc__ or '').strip().splitlines()[0]}")
    print("identities (srflow check-identities):")
    for ident in IDENTITIES:
        print(f"  {ident.name:<16} {ident.statement}")
    return 0


def _cmd_check_identities(args) -> int:
    seeds = np.random.SeedSequence(args.seed).spawn(2)
    models = _models(args.models, int(seeds[0].generate_state(1)[0]))
    rng = np.random.default_rng(seeds[1])
    print(f"{'model':<16} {'check':<20} {'scaled error':>12}  status  (scaled = error/(tol·scale), pass ≤ 1)")
    failed = 0
    for model in models:
        rows = check_identities(model, rng, points=args.points)
        theta = minimizer_point(model, rng)
        if theta is not None:
            rows += check_minimizer(model, theta)
        for r in rows:
            failed += r.status != "pass"
            print(f"{model_name(model):<16} {r.identity:<20} {r.scaled_error:>12.2e}  {r.status:<6}  {r.message}")
    total = sum(1 for _ in models)
    print(f"\n{total} models; {'all checks pass' if not failed else f'{failed} check(s) FAILED'}")
    return 1 if failed else 0


def _cmd_derive(args) -> int:
    from srflow.theory.symbolic import SCRIPTS, run

    names = args.names or list(SCRIPTS)
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        raise UsageError(f"srflow: derive: unknown derivation(s) {', '.join(unknown)}; valid: {', '.join(SCRIPTS)}")
    failed = [n for n in names if not run(n)]
    print(f"\n{len(names)} derivation(s); {'all verified' if not failed else 'NOT verified: ' + ', '.join(failed)}")
    return 1 if failed else 0


def _out_dir(arg: str | None) -> Path:
    """``--out`` or a fresh ./srflow-out/<timestamp> (claimed with an exclusive mkdir, so two runs started in the
    same second get different folders); fails clearly if unwritable."""
    if arg is not None:
        return _writable(Path(arg), "srflow: --out")
    out = fresh_folder("", "srflow: --out")
    return _writable(out, "srflow: --out")


def _previous_run(out: Path) -> dict | None:
    """The report.json already in ``out`` (None if there is none); its ``state`` is "complete",
    "interrupted", "running" (a killed run: nobody holds the lock) or "unreadable"."""
    path = out / "report.json"
    if not path.exists():
        return None
    try:
        prev = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"state": "unreadable", "checks": []}
    if "state" not in prev:  # written by an older srflow
        prev["state"] = "complete" if prev.get("complete") else "interrupted" if prev.get("interrupted") else "running"
    return prev


def _claim_out(args) -> tuple[Path, "OutputLock", dict | None]:
    """Lock the output folder and decide what to do with a report already there: a complete one is never
    overwritten; an unfinished one (interrupted, or left by a killed run) is resumed with --resume, else refused
    with a message saying so."""
    from srflow.verification.outdir import FolderBusy, OutputLock

    if args.resume and args.out is None:
        raise UsageError("srflow: --resume: expected --out DIR, the folder of the run to resume")
    out = _out_dir(args.out)
    lock = OutputLock(out)
    try:
        lock.acquire()
    except FolderBusy as exc:
        raise UsageError(f"srflow: --out: {exc}; wait for it to finish or choose another folder")
    prev = _previous_run(out)
    problem = None
    if prev is None and args.resume:
        problem = f"srflow: --resume: {out} holds no report to resume"
    elif prev is not None and prev["state"] == "complete":
        problem = f"srflow: --out: {out} already holds a report; choose another folder or remove it"
    elif prev is not None and prev["state"] == "unreadable":
        problem = f"srflow: --out: {out}/report.json is unreadable; choose another folder or remove it"
    elif prev is not None and not args.resume:
        how = "was interrupted" if prev["state"] == "interrupted" else "was killed (no process holds its lock)"
        problem = (f"srflow: --out: {out} holds an unfinished run that {how}, with {len(prev.get('checks', []))} "
                   "result(s); finish it with --resume or choose another folder")
    if problem:
        lock.release()
        raise UsageError(problem)
    return out, lock, prev


#: the settings a resumed run takes from the report it resumes
RESUMED = ("models", "model", "checks", "seed", "lr", "ladder", "quick", "allow_short_ladder", "theta0")


def _settings_of(prev: dict, args):
    """``args`` with the models, checks, seed and configuration of the run being resumed."""
    given = [f"--{k.replace('_', '-')}" for k in RESUMED if getattr(args, k) not in (None, False)]
    if given:
        raise UsageError(f"srflow: --resume: takes every setting from the report it resumes; drop {', '.join(given)}")
    from srflow.verification.session import VerifyConfig, config_fields

    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in config_fields(prev["config"]).items()}
    return (VerifyConfig(**cfg), list(prev["models"]), list(prev["requested_checks"]), int(prev["seed"]),
            prev.get("mode", "default"), prev.get("short_ladder", ""))


def _config(args):
    from srflow.verification.session import FULL, QUICK
    from srflow.verification.verify import DEEP_LADDER, check_lr, ladder_problems, ladder_steps

    cfg = QUICK if args.quick else FULL
    lr = cfg.lr if args.lr is None else args.lr
    try:
        check_lr(lr)
    except ValueError as exc:
        raise UsageError(f"srflow: {exc}")
    default = DEEP_LADDER if getattr(args, "deep", False) else cfg.ladder
    ladder, errors, short = ladder_problems(default if args.ladder is None else args.ladder)
    if errors:
        raise UsageError("srflow: " + "; ".join(errors))
    if short and not args.allow_short_ladder:
        raise UsageError(f"srflow: --ladder: {short}, the minimum for a fitted exponent to decide a verdict; add "
                         "values, or pass --allow-short-ladder to run anyway with the ladder checks marked inconclusive")
    config = dataclasses.replace(cfg, lr=lr, ladder=tuple(ladder))
    steps = ladder_steps(config)
    if min(steps) < config.records:
        eta_lambda = config.ladder[int(np.argmin(steps))]
        raise UsageError(f"srflow: --ladder: ηλ = {eta_lambda:g} gives {min(steps)} step(s) to τ_end = {config.tau_end:g}, "
                         f"fewer than the {config.records} records of a run; expected ηλ ≤ "
                         f"{config.tau_end / config.records:.3g}")
    return config, short


def _models_up_front(specs: list[str], seed: int) -> dict:
    """Build every model once before any work (a broken file or a model returning wrong shapes or non-finite
    values is an input error, named as such); returns spec -> model."""
    from srflow.verification.verify import ModelLoadError, ModelOutputError, build_model, probe_model

    models = {}
    for spec in specs:
        try:
            model = build_model(spec, seed)
            probe_model(model, np.random.default_rng([seed, 98]), model_name(model))
        except (ModelLoadError, ModelOutputError) as exc:
            raise UsageError(f"srflow: {exc}")
        models[spec] = model
    return models


def _theta0_up_front(values: list[str], built: dict, labels: dict) -> dict:
    """``--theta0 FILE.npy`` (a run of one model) or ``--theta0 MODEL=FILE.npy`` (repeatable): spec -> (θ₀, file),
    each validated (``verify.load_theta0``: shape (D,), finite, a point of Γ); a bad one is an input error naming
    ``--theta0``."""
    from srflow.verification.verify import load_theta0

    by_name = {**{spec: spec for spec in built}, **{label: spec for spec, label in labels.items()}}
    out = {}
    for value in values:
        name, sep, path = value.rpartition("=")
        if not sep:
            if len(built) != 1:
                raise UsageError(f"srflow: --theta0: {value!r} names no model, and this run has {len(built)} "
                                 f"({', '.join(labels.values())}); use --theta0 MODEL=FILE.npy")
            spec = next(iter(built))
        elif name in by_name:
            spec = by_name[name]
        else:
            raise UsageError(f"srflow: --theta0: {name!r} is not a model of this run; valid: "
                             f"{', '.join(labels.values())}")
        if spec in out:
            raise UsageError(f"srflow: --theta0: model {labels[spec]} given twice")
        try:
            out[spec] = (load_theta0(path, built[spec], labels[spec]), path)
        except ValueError as exc:
            raise UsageError(f"srflow: {exc}")
    return out


def _theta0_resumed(prev: dict, out: Path, built: dict, labels: dict) -> dict:
    """The θ₀ a resumed run was given (``--theta0``), from the files it saved in ``out``."""
    from srflow.verification.verify import load_theta0

    given = prev.get("theta0_given", {})
    found = {}
    for spec, label in labels.items():
        if label in given:
            path = out / prev.get("theta0_files", {}).get(label, "")
            try:
                found[spec] = (load_theta0(path, built[spec], label, option="--resume"), given[label])
            except ValueError as exc:
                raise UsageError(f"srflow: {exc} (the start point the run was given)")
    return found


def _check_budget(models: dict, checks: list[str], config, args) -> None:
    from srflow.verification.verify import budget_verdict, estimate_cost

    level, msg = budget_verdict(estimate_cost({model_name(m): m for m in models.values()}, checks, config,
                                              args.workers))
    if level == "ok":
        return
    if level == "warn" or args.yes:
        print(f"srflow: warning: {msg}", file=sys.stderr, flush=True)
        return
    if sys.stdin.isatty() and sys.stderr.isatty():
        answer = input(f"srflow: {msg}. Run anyway? [y/N] ")
        if answer.strip().lower() in ("y", "yes"):
            return
    raise UsageError(f"srflow: {msg}; pass --yes to run anyway, or shorten the ladder (--ladder) or the model list")


class _Status:
    """What is running, on one refreshed stderr line (a terminal only): visible with any number of workers."""

    def __init__(self, on: bool):
        self.on, self.running, self.shown = on, {}, False

    def start(self, label: str, check: str) -> None:
        self.running[(label, check)] = time.monotonic()

    def done(self, label: str, check: str) -> None:
        self.running.pop((label, check), None)
        self.clear()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False

    def tick(self) -> None:
        if not self.on or not self.running:
            return
        now = time.monotonic()
        parts = [f"{m} · {c} {now - t:.0f} s" for (m, c), t in self.running.items()]
        width = shutil.get_terminal_size((100, 20)).columns - 1
        sys.stderr.write("\r\033[K" + ("running: " + ", ".join(parts))[:width])
        sys.stderr.flush()
        self.shown = True


def _cmd_verify(args) -> int:
    held = []  # the lock on --out, once taken; released however the run ends
    try:
        return _verify(args, held)
    finally:
        for lock in held:
            lock.release()


def _verify(args, held: list) -> int:
    from srflow.verification.check_figures import plot_check
    from srflow.verification.checks import CHECKS
    from srflow.verification.report import STATUS_MARK, Report, count_text
    from srflow.verification.runner import SchedulerUnreachable
    from srflow.verification.verify import (DEFAULT_MODELS, LADDER_CHECKS, dedupe, load_model, model_label, plan_jobs,
                                            run_all, validate)

    out, lock, prev = _claim_out(args) if args.resume else (None, None, None)
    if lock is not None:
        held.append(lock)
    if prev is not None:
        config, models, checks, seed, mode, short = _settings_of(prev, args)
        notes = list(prev.get("notes", []))
    else:
        notes = []
        zoo = list(getattr(args, "zoo", None) or [])  # srflow zoo: the drawn models, as zoo:NAME specs
        registered, dup_models = dedupe(list(args.models or ([] if args.model or zoo else DEFAULT_MODELS)) + zoo)
        user, dup_user = dedupe(list(args.model or []))
        checks, dup_checks = dedupe(list(args.checks or CHECKS))
        for what, dups in (("--models", dup_models), ("--model", dup_user), ("--checks", dup_checks)):
            if dups:
                notes.append(f"{what}: repeated {', '.join(sorted(set(dups)))} ignored (each runs once)")
        try:
            validate(registered, checks)
            for spec in user:
                load_model(spec)  # a spec without ':' is an error here, not a registered name
        except ValueError as exc:
            raise UsageError(f"srflow: {exc}")
        models, seed = registered + user, 0 if args.seed is None else args.seed
        config, short = _config(args)
        mode = "quick" if args.quick else "deep" if args.deep else "default"
        notes += list(getattr(args, "zoo_notes", None) or [])
        if args.deep:  # the compiled engine: registered models by their JAX twins
            try:
                import srflow.toy_models.jax_models  # noqa: F401
            except ImportError:
                raise UsageError('srflow: --deep needs the JAX extra: python3 -m pip install ".[jax]"')
            models = [f"jax:{m}" for m in registered] + user
        if short:
            notes.append(f"{short}: the verdicts of {', '.join(LADDER_CHECKS)} are inconclusive "
                         "(--allow-short-ladder)")
    built = _models_up_front(models, seed)
    labels = {spec: model_label(spec, m) for spec, m in built.items()}
    same = {name for name, n in Counter(labels.values()).items() if n > 1}
    # two models with one name stay separate: each is labelled with its spec as well
    labels = {spec: f"{name} [{spec}]" if name in same and spec != name else name for spec, name in labels.items()}
    if prev is None:
        theta0 = _theta0_up_front(args.theta0 or [], built, labels)
        _check_budget(built, checks, config, args)
        out, lock, _ = _claim_out(args)
        held.append(lock)
    else:
        theta0 = _theta0_resumed(prev, out, built, labels)
    for note in notes:
        print(f"srflow: note: {note}", file=sys.stderr)
    planned = [(labels[spec], c) for spec in models for c in checks]
    done = {(c["model"], c["name"]) for c in (prev or {}).get("checks", []) if c.get("status") != "error"}
    try:
        report = Report(out, config, seed, models, checks, mode, planned=planned, previous=prev, notes=notes,
                        extra={"short_ladder": short},
                        theta0_given={labels[spec]: pair for spec, pair in theta0.items()})
    except OutputWriteFailed as exc:
        raise UsageError(f"srflow: --out: {exc}")
    jobs = plan_jobs(models, labels, checks, done, {spec: th for spec, (th, _) in theta0.items()})
    total = len(planned)
    verb = f"resuming ({len(report.results)} of {total} done)" if prev is not None else f"{total} check(s)"
    print(f"srflow verify: {len(models)} model(s) × {len(checks)} check(s), {verb} -> {out}/report.md", flush=True)
    status = _Status(sys.stderr.isatty() and not args.quiet)
    start = time.perf_counter()

    def on_start(job, check):
        status.start(job.label, check)
        if args.workers <= 1 or len(jobs) == 1:
            status.tick()

    def on_result(res):
        status.done(res.model, res.name)
        try:
            figure = plot_check(res, out / "figures")
        except OSError as exc:  # the result is kept (in the last report) without its figure
            report.results.append(res)
            raise OutputWriteFailed(out, exc) from exc
        report.add(res, figure)
        print(f"[{len(report.results):>2}/{total}] {res.model:<14} {res.name:<20} {STATUS_MARK.get(res.status, res.status):<20} "
              f"{res.seconds:6.1f} s  {res.message}", flush=True)

    def before_exit():
        """A second Ctrl-C while the workers stop ends the process at once: the report is finished first."""
        report.finish(time.perf_counter() - start, interrupted=True)

    stops = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    old = {sig: signal.signal(sig, _raise_interrupt) for sig in stops}
    try:
        run_all(jobs, config, seed, args.quiet, args.workers, on_result, short_ladder=short, on_start=on_start,
                on_tick=status.tick, spawn=any(hasattr(m, "jax_loss") for m in built.values()),
                scheduler=args.scheduler, before_exit=before_exit)
    except SchedulerUnreachable as exc:
        status.clear()
        report.finish(time.perf_counter() - start, interrupted=True)
        raise UsageError(f"srflow: {exc}")
    except KeyboardInterrupt:
        with _shielded():  # a second Ctrl-C must not leave the report "running"
            status.clear()
            report.finish(time.perf_counter() - start, interrupted=True)
        print(f"\nsrflow: interrupted; the {len(report.results)} finished result(s) are in {out}; "
              f"{len(report.not_run())} check(s) did not run (resume: srflow verify --resume --out {out})",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except OutputWriteFailed as exc:
        with _shielded():
            status.clear()
            try:
                report.finish(time.perf_counter() - start, interrupted=True, reason=f"--out: {exc}")
                kept = f"the {len(report.results)} finished result(s) are kept in {out}/report.json"
            except OutputWriteFailed:
                kept = f"{out}/report.json holds the results written before it"
        raise UsageError(f"srflow: --out: {exc}; the run stopped: {kept}; {len(report.not_run())} check(s) did not "
                         f"run (free space, then: srflow verify --resume --out {out})")
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    try:
        report.finish(time.perf_counter() - start)
    except OutputWriteFailed as exc:
        raise UsageError(f"srflow: --out: {exc}; the last report could not be written ({out}/report.json holds the "
                         "results written before it)")
    c = report.counts()
    print(f"\n{count_text(c)} in {time.perf_counter() - start:.0f} s; report: {out / 'report.md'}")
    return exit_status(report.results)


def _cmd_zoo(args) -> int:
    """``srflow zoo``: draw ``--n`` zoo models with ``--seed`` (model i = ``toy_models.zoo.zoo_specs(n, S)[i]``) and
    run every check on each through ``srflow verify``'s code path (same runner, report and exit statuses)."""
    from srflow.toy_models.zoo import zoo_specs

    if args.n < 1:
        raise UsageError(f"srflow: zoo: --n: expected a positive number of models, got {args.n}")
    args.models = args.model = args.lr = args.ladder = args.scheduler = args.theta0 = None
    args.deep = args.allow_short_ladder = False
    if args.resume:  # the models, seed and checks come from the report being resumed
        args.zoo = None
        return _cmd_verify(args)
    seed = 0 if args.seed is None else args.seed
    try:
        specs = zoo_specs(args.n, seed, families=args.families, backends=args.backends)
    except ValueError as exc:
        raise UsageError(f"srflow: zoo: --{exc}")
    args.zoo = [f"zoo:{s.name}" for s in specs]
    args.seed = seed
    restricted = "".join(f", {what} {', '.join(v)}" for what, v in (("families", args.families),
                                                                     ("backends", args.backends)) if v)
    args.zoo_notes = [f"zoo: {args.n} model(s) drawn with seed {seed}{restricted}: model i is "
                      f"toy_models.zoo.zoo_specs(n, {seed}{', families, backends' if restricted else ''})[i] "
                      f"(families in turn); each name rebuilds its model: toy_models.zoo.zoo_model(NAME), or srflow verify --models zoo:NAME "
                      f"--seed {seed}{' --quick' if args.quick else ''} (the same runs)"]
    print("srflow zoo: seed " + str(seed) + "\n" + "\n".join(f"  [{i}] {s.name}" for i, s in enumerate(specs)),
          flush=True)
    return _cmd_verify(args)


def exit_status(results) -> int:
    """EXIT_INTERNAL if a result is an error, else EXIT_FAILED if one is not a non-failing verdict (pass,
    inconclusive, assumption-violated), else EXIT_OK."""
    from srflow.verification.verify import NOT_FAILING

    if any(r.status == "error" for r in results):
        return EXIT_INTERNAL
    return EXIT_FAILED if any(r.status not in NOT_FAILING for r in results) else EXIT_OK


@contextlib.contextmanager
def _shielded():
    """Ignore SIGINT, SIGTERM and SIGHUP for the duration (main thread only): the report's last write finishes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _raise_interrupt(signum, frame):
    """SIGTERM and SIGHUP (terminal closed) end a run like Ctrl-C: workers stopped, report marked interrupted,
    exit status 130."""
    raise KeyboardInterrupt


def _cmd_figures(args) -> int:
    from srflow.figures import FIGURES, default_out, make_figure

    names = args.only or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise UsageError(f"srflow: figures: --only: unknown figure(s) {', '.join(unknown)}; valid: {', '.join(FIGURES)}")
    out = _writable(Path(args.out) if args.out else default_out(args.quick), "srflow: figures: --out")
    start = time.perf_counter()
    missing = []
    for name in names:
        t = time.perf_counter()
        try:
            files = make_figure(FIGURES[name], out, quick=args.quick, seed=args.seed, recompute=args.recompute)
        except ModuleNotFoundError as exc:  # the real-network figures need the optional jax extra (JAX, scikit-learn)
            if exc.name not in OPTIONAL_MODULES:
                raise
            missing.append(name)
            print(f"{name:<20} not written: needs the jax extra (python3 -m pip install 'srflow[jax]'): no module "
                  f"{exc.name!r}", flush=True)
            continue
        print(f"{name:<20} {time.perf_counter() - t:6.1f} s  {', '.join(str(f) for f in files[:2])}", flush=True)
    print(f"{len(names) - len(missing)} figure(s) in {time.perf_counter() - start:.0f} s -> {out}"
          + (f"; not written: {', '.join(missing)}" if missing else ""))
    return EXIT_FAILED if missing else EXIT_OK


#: modules of the optional jax extra: a figure that needs one is reported as not written, not as a crash
OPTIONAL_MODULES = ("jax", "jaxlib", "sklearn")

#: options that take names: each may be given as separate words, comma-separated, or both
NAME_LISTS = ("models", "checks", "only", "families")


def split_names(values: list[str], option: str) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``; an empty name (``"a,,b"``, a trailing comma) is a usage error."""
    names = [name.strip() for value in values for name in value.split(",")]
    if not all(names):
        raise UsageError(f"srflow: --{option}: expected names separated by spaces or commas, got {' '.join(values)!r}")
    return names


class _Parser(argparse.ArgumentParser):
    """argparse's parser, reading a negative number in scientific notation (``--ladder 1e-3 -1e-4``) as a value
    rather than an unknown option, so that the value check names ``--ladder`` and what it expects. argparse
    recognises only ``-1`` and ``-0.5`` as negative numbers (its ``_negative_number_matcher``, an attribute every
    Python from 3.8 to 3.13 reads in ``_parse_optional``); srflow has no option that looks like a number."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="srflow", description="Numerical verification of sharpness reduction "
                                     "by normalization layers (Lyu, Li, Arora 2022).")
    parser.add_argument("--version", action="version", version=f"srflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("verify", help="run the theorem checks and write a report (report.md, report.json, figures)")
    p.add_argument("--models", nargs="+", metavar="NAME", help="registered models (default: sphere_circle mf bn_linear)")
    p.add_argument("--model", action="append", metavar="FILE.py:FACTORY",
                   help="your own model: path/to/file.py:factory or package.module:factory (repeatable)")
    p.add_argument("--checks", nargs="+", metavar="CHECK", help="checks to run (default: all; see `srflow list`)")
    p.add_argument("--quick", action="store_true", help="shorter ladders and horizons (QUICK in verification.session)")
    p.add_argument("--deep", action="store_true", help="GD+WD ladder down to ηλ = 1e-7, compiled (JAX twins of the "
                   "registered models; needs the jax extra)")
    p.add_argument("--seed", type=int, help="seed of models, start points and kicks (default 0)")
    p.add_argument("--theta0", action="append", metavar="[MODEL=]FILE.npy",
                   help="start from this point of Γ (a float64 vector of length D, as the theta0-MODEL.npy a report "
                   "saves) instead of the one the seed draws; MODEL= names the model when the run has several "
                   "(repeatable)")
    p.add_argument("--out", metavar="DIR", help="output folder (default ./srflow-out/<timestamp>; never overwritten)")
    p.add_argument("--lr", type=float, help="η of the GD+WD runs (default 0.1)")
    p.add_argument("--ladder", type=float, nargs="+", metavar="ETA_LAMBDA", help="values of ηλ for the GD+WD ladder")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes of the local Dask cluster (default: up to 2; 1: run in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the checks on the Dask cluster at ADDRESS "
                   "(e.g. tcp://host:8786; its workers need srflow installed) instead of a local one")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true",
                   help="finish the interrupted run in --out (its settings are read from its report.json)")
    p.add_argument("--yes", action="store_true", help="run even when the estimated cost is above the hard limit")
    p.add_argument("--allow-short-ladder", action="store_true",
                   help="accept a ladder below 4 values over 1.5 decades; its checks are then marked inconclusive")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("zoo", help="draw random scale-invariant models (toy_models.zoo) and run every check on each")
    p.add_argument("--n", type=int, default=10, help="number of models (default 10)")
    p.add_argument("--seed", type=int, help="seed of the draw and of the runs (default 0); model i is "
                   "toy_models.zoo.zoo_specs(n, seed)[i]")
    p.add_argument("--families", nargs="+", metavar="FAMILY", help="draw only from these zoo families (default: all)")
    p.add_argument("--backends", nargs="+", metavar="BACKEND", choices=("np", "jax"),
                   help="draw only models built with these backends: np (closed forms), jax (autodiff)")
    p.add_argument("--checks", nargs="+", metavar="CHECK", help="checks to run (default: all; see `srflow list`)")
    p.add_argument("--quick", action="store_true", help="short ladders and horizons (as srflow verify --quick)")
    p.add_argument("--out", metavar="DIR", help="output folder (default ./srflow-out/<timestamp>; never overwritten)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (default: up to 2; 1: run in this process)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true", help="finish the interrupted zoo run in --out")
    p.add_argument("--yes", action="store_true", help="run even when the estimated cost is above the hard limit")
    p.set_defaults(func=_cmd_zoo)
    p = sub.add_parser("figures", help="regenerate the paper's figures (PNG, PDF, caption, cached arrays)")
    p.add_argument("--out", metavar="DIR", help="output folder (default ./figures, with --quick ./figures/quick)")
    p.add_argument("--quick", action="store_true", help="small versions (for tests)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these figures (see `srflow list`)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    p.add_argument("--recompute", action="store_true", help="ignore cached arrays with a matching config")
    p.set_defaults(func=_cmd_figures)
    from srflow.verification.sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)
    sub.add_parser("list", help="list the models and checks").set_defaults(func=_cmd_list)
    p = sub.add_parser("check-identities", help="scale-invariance and exact-derivative checks on the models")
    p.add_argument("--models", nargs="+", metavar="NAME", help=f"models to check (default: all of {', '.join(REGISTRY)})")
    p.add_argument("--points", type=int, default=3, help="random points per identity (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the models and the points (default 0)")
    p.set_defaults(func=_cmd_check_identities)
    p = sub.add_parser("derive", help="rerun the sympy derivations behind the predictions")
    p.add_argument("names", nargs="*", metavar="NAME", help="derivations to run (default: all; see `srflow list`)")
    p.set_defaults(func=_cmd_derive)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; the exit status is 0 (all pass), 1 (a check failed), 2 (usage or input error),
    3 (internal error: a check raised or a worker crashed) or 130 (interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        for option in NAME_LISTS:
            if getattr(args, option, None) is not None:
                setattr(args, option, split_names(getattr(args, option), option))
        if getattr(args, "points", 1) < 1:
            raise UsageError("srflow: --points: expected a positive integer")
        if getattr(args, "seed", None) is not None and args.seed < 0:
            raise UsageError(f"srflow: --seed: expected a non-negative integer, got {args.seed}")
        if getattr(args, "workers", None) is not None and args.workers < 1:
            raise UsageError(f"srflow: --workers: expected a positive integer, got {args.workers}")
        return args.func(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        raise
    except KeyboardInterrupt:
        print("\nsrflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 -- a defect of srflow, not of the input: say so, with the traceback
        traceback.print_exc()
        print("srflow: internal error (exit status 3); please report it with the traceback above", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
