"""``srflow sweep SPEC``: models × seeds × (ηλ ladder or checks) on Dask, one tidy xarray Dataset per sweep.

A **cell** is one unit of work, cached on its own:

* a *tracking* cell (model, seed, ηλ): GD+WD from the EoS start above θ₀ to τ = ηλt = ``tau_end`` with Φ recorded
  (``Session.gdwd_run``), compared with the canonical flow ζ at the matched clock (``theory.gdwd_steps``):
  ``path_error``, ``clock_error`` and the combined ``tracking_error`` as in the flow-tracking check
  (verification/tracking.py), the naive clock's error, η_eff·λ₁ (the EoS prediction: 2), λ₁ and ‖w‖², and the
  records along the run;
* a *check* cell (model, seed, check): one theorem check of ``srflow verify`` (verdict, scaled error, resolving
  power δ* of each prediction it tests).

The session of (model, seed) is the one ``srflow verify --models MODEL --seed SEED`` builds, so a cell reproduces
the corresponding run of ``srflow verify`` with the same configuration. The flow ζ of each (model, seed) is a Dask
task of its own that the tracking cells of that pair depend on (it is computed once, not once per ηλ).

**Cache and resume.** Each cell is stored as ``CACHE/<key[:2]>/<key>.json``, ``key`` = sha256 of the cell's full
spec (kind, model -- with the sha256 of a user's model file --, seed, ηλ or check, the configuration it reads)
and ``provenance.code_version()`` (a hash of the source of toy_models, theory and verification). Only the client
writes the cache, as each cell completes, atomically (temp file + ``os.replace``), so Ctrl-C or a killed run
keeps every finished cell and a rerun computes only what is missing or changed; an entry that does not load is
recomputed with a warning. Cells that raise an unexpected error are reported and not cached.

**Outputs** (``--out``): ``sweep.nc`` (netCDF4 via h5netcdf; ``xarray.open_dataset`` loads it; every variable
is defined in ``sweep_cells.DESCRIPTIONS``, printed by ``srflow sweep --help``) and ``sweep.json`` (provenance,
the cache used, and one row per cell: where it came from -- computed or cache --, its worker and time), both
rewritten atomically at the end of a run, interrupted or not. ``srflow sweep`` locks ``--out``
(``outdir.OutputLock``); a folder holding an unfinished sweep of the same resolved spec is resumed in place (the
same command after Ctrl-C: finished cells come from the cache, so the dataset equals an uninterrupted run's), a
complete one of the same spec and code is left as it is, and any other sweep there is refused (exit status 2). Provenance (command line, spec, seeds, versions, git revision and code version) is in both; see
verification/provenance.py for where the revision comes from when installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .outdir import EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, UsageError, fresh_folder, writable
from .runner import Cluster, SchedulerUnreachable
from .sweep_cells import CellCache, assemble, compute_flow, num, run_check_cell, run_tracking_cell
from .sweep_spec import SpecError, SweepSpec, cell_name, load_spec, make_cells, parse_spec

__all__ = ["run_sweep", "load_spec", "parse_spec", "make_cells", "SpecError", "SweepSpec", "CellCache", "assemble",
           "add_parser"]

EXAMPLE = """\
example spec (TOML):

  # models: registered names (`srflow list`) or path/to/file.py:factory (comma-separated strings also work)
  models = ["sphere_circle", "mf", "bn_linear"]
  seeds = [0, 1, 2]
  # the ηλ ladder: one flow-tracking cell per (model, seed, ηλ)
  eta_lambda = [1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5]
  # checks = ["flow-tracking", "eos-equilibrium"]   # instead: one cell per (model, seed, check),
  #                                                 # eta_lambda is then the checks' ladder

  [config]          # optional: a base configuration and any field of VerifyConfig
  base = "quick"    # "quick" or "full" (as srflow verify --quick / default)
  lr = 0.1          # η
  tau_end = 0.1     # horizon in τ = ηλt
  records = 15      # records of Φ per run

The ladder eta_lambda needs at least 4 values over 1.5 decades for a verdict on a fitted exponent (as srflow
verify; --allow-short-ladder runs a shorter one with its verdicts inconclusive).

Results: OUT/sweep.nc (xarray.open_dataset) and OUT/sweep.json (provenance, cells). Cells are cached in --cache
by a hash of their spec and of the code: a rerun computes only what is missing or changed, and the same
command after an interrupt resumes the sweep in its --out folder.
"""


# -- running ------------------------------------------------------------------------------------------------
def _submit(client, spec: SweepSpec, todo: list[dict]) -> dict:
    flows, futures = {}, {}
    for cell in todo:
        if cell["kind"] == "tracking":
            if cell["flow"] not in flows:
                flows[cell["flow"]] = client.submit(compute_flow, cell["model"], cell["seed"], spec.config,
                                                    key=f"flow-{cell['flow']}")
            fut = client.submit(run_tracking_cell, cell, spec.config, flows[cell["flow"]], key=f"cell-{cell['key']}")
        else:
            fut = client.submit(run_check_cell, cell, spec.config, key=f"cell-{cell['key']}")
        futures[fut.key] = (fut, cell)
    return futures


def _progress(done: int, total: int, cell: dict, r: dict) -> str:
    text = f"[{done:>{len(str(total))}}/{total}] {cell_name(cell):<36} {r['status']:<20}"
    if "scalars" in r:
        s = r["scalars"]
        text += f" tracking {s['tracking_error']:.2e}  clock {s['clock_error']:.2e}"
    elif "result" in r:
        text += f" scaled error {num(r['result']['scaled_error']):.3g}"
    seconds = r.get("scalars", {}).get("seconds") or num((r.get("result") or {}).get("seconds"))
    return text + (f"  {seconds:.1f} s" if seconds == seconds else "")


def short_ladder_note(spec: SweepSpec) -> str:
    """The note of a short ladder (as ``srflow verify --allow-short-ladder`` gives), or ""."""
    if not spec.short_ladder:
        return ""
    which = "path_verdict and clock_verdict" if spec.kind == "tracking" else "the ladder checks' verdicts"
    return f"{spec.short_ladder}: {which} are inconclusive (--allow-short-ladder)"


def run_sweep(spec: SweepSpec, out, cache_dir, scheduler: str | None = None, workers: int | None = None,
              quiet: bool = False, command: list[str] | None = None, processes: bool = True):
    """Run (or resume) ``spec``: cached cells are read, the others computed on Dask and cached as each completes;
    writes ``out/sweep.nc`` and ``out/sweep.json``. Returns (dataset, sidecar dict). Ctrl-C stops the run, keeps
    what finished (cache and outputs, ``complete`` = 0) and re-raises KeyboardInterrupt. Does not lock ``out``
    (``srflow sweep`` does)."""
    from distributed import as_completed

    out, cache = Path(out), CellCache(cache_dir)
    start = time.perf_counter()
    cells = make_cells(spec)
    say = (lambda *_: None) if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    if spec.short_ladder:
        say(f"srflow: note: {short_ladder_note(spec)}")
    results, log = {}, []
    for cell in cells:
        r = cache.get(cell)
        if r is not None:
            results[cell["key"]] = r
            log.append({"key": cell["key"], "cell": cell_name(cell), "source": "cache", "status": r["status"],
                        "worker": r.get("worker", "")})
    todo = [c for c in cells if c["key"] not in results]
    say(f"srflow sweep: {len(cells)} cell(s), {len(cells) - len(todo)} from the cache, {len(todo)} to compute"
        + (f" on {scheduler or 'a LocalCluster'}" if todo else "") + f" -> {out}")
    interrupted, errors = False, 0
    if todo:
        cluster = Cluster(scheduler, workers, processes)
        try:
            futures = _submit(cluster.client, spec, todo)
            for fut in as_completed([f for f, _ in futures.values()]):
                cell = futures[fut.key][1]
                try:
                    r = fut.result()
                except Exception as exc:  # noqa: BLE001 -- one broken cell must not stop the sweep
                    errors += 1
                    r = {"status": "error", "message": f"{type(exc).__name__}: {exc}", "worker": ""}
                else:
                    cache.put(cell, r)
                results[cell["key"]] = r
                log.append({"key": cell["key"], "cell": cell_name(cell), "source": "computed", "status": r["status"],
                            "worker": r.get("worker", ""), "message": r.get("message", "")})
                say(_progress(len(results), len(cells), cell, r))
                fut.release()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            cluster.close()
        if interrupted:  # a cell cached just before the interrupt, not yet counted: the outputs show what the cache has
            for cell in todo:
                if cell["key"] not in results and (r := cache.get(cell)) is not None:
                    results[cell["key"]] = r
                    log.append({"key": cell["key"], "cell": cell_name(cell), "source": "computed",
                                "status": r["status"], "worker": r.get("worker", ""), "message": r.get("message", "")})
    ds, sidecar = _write(spec, cells, results, log, out, command, time.perf_counter() - start, interrupted,
                         cache.root)
    say(f"srflow sweep: {sum(1 for c in cells if c['key'] in results)}/{len(cells)} cell(s) in "
        f"{time.perf_counter() - start:.1f} s{' (interrupted)' if interrupted else ''}"
        f"{f', {errors} error(s)' if errors else ''}; {out / 'sweep.nc'}")
    if interrupted:
        raise KeyboardInterrupt
    return ds, sidecar


def spec_record(spec: SweepSpec) -> dict:
    """The resolved spec as JSON data (``sweep.json``'s ``resolved_spec``): what a rerun must match to resume."""
    from .session import config_record

    return json.loads(json.dumps({"models": list(spec.models), "labels": list(spec.labels), "seeds": list(spec.seeds),
                                  "eta_lambda": list(spec.eta_lambda), "checks": list(spec.checks),
                                  "config": config_record(spec.config)}))


def _write(spec, cells, results, log, out: Path, command, seconds: float, interrupted: bool, cache_root=None):
    from .provenance import provenance

    ok = {k: r for k, r in results.items() if r["status"] != "error"}
    ds = assemble(spec, cells, ok)
    prov = provenance()
    spec_json = spec_record(spec)
    complete = not interrupted and len(ok) == len(cells)
    notes = [n for n in (short_ladder_note(spec),) if n]
    ds.attrs.update({
        "title": "srflow sweep", "command": " ".join(command or sys.argv), "spec": spec.text,
        "notes": json.dumps(notes, ensure_ascii=False),
        "spec_json": json.dumps(spec_json), "seeds": list(spec.seeds), "git_revision": prov["git_revision"],
        "git_dirty": -1 if prov["git_dirty"] is None else int(prov["git_dirty"]),
        "git_revision_source": prov["git_revision_source"], "code_version": prov["code_version"],
        "versions": json.dumps(prov["versions"]), "complete": int(complete),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    sidecar = {"command": command or sys.argv, "argv": sys.argv, "cwd": os.getcwd(), "spec": spec.text,
               "resolved_spec": spec_json, **prov, "notes": notes,
               "cache": None if cache_root is None else str(Path(cache_root).resolve()),
               "complete": complete, "interrupted": interrupted, "seconds": round(seconds, 2),
               "counts": {"cells": len(cells), "finished": len(ok),
                          "from_cache": sum(e["source"] == "cache" for e in log),
                          "computed": sum(e["source"] == "computed" and e["status"] != "error" for e in log),
                          "errors": len(results) - len(ok)},
               "cells": log}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "sweep.nc.tmp"
    ds.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, out / "sweep.nc")
    tmp = out / "sweep.json.tmp"
    tmp.write_text(json.dumps(sidecar, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, out / "sweep.json")
    return ds, sidecar


# -- the command line ---------------------------------------------------------------------------------------
def default_cache() -> Path:
    """$XDG_CACHE_HOME/srflow/sweep, else ~/.cache/srflow/sweep."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "srflow" / "sweep"


def variables_help(width: int = 100) -> str:
    """Every variable and coordinate of the Dataset with its definition (``srflow sweep --help``)."""
    import textwrap

    from .sweep_cells import DESCRIPTIONS

    lines = ["variables and coordinates of OUT/sweep.nc (each also in its attrs['description']):", ""]
    for name, text in DESCRIPTIONS.items():
        lines += textwrap.wrap(text, width, initial_indent=f"  {name:<22} ", subsequent_indent=" " * 25,
                               break_on_hyphens=False, break_long_words=False)
    return "\n".join(lines) + "\n"


EXIT_TEXT = """\
exit status (as srflow verify): 0 every cell finished and nothing failed (inconclusive and assumption-violated are
not failures); 1 a check cell failed, a run diverged or path_verdict/clock_verdict is fail; 2 usage or input
error (the message names the argument); 3 internal error (a cell raised; sweep.json has the message);
130 interrupted (finished cells are cached and written: rerun the same command to resume in place).
"""


def add_parser(sub) -> None:
    """The ``sweep`` subcommand of ``srflow``."""
    p = sub.add_parser("sweep", help="models × seeds × ηλ (or checks) on Dask, into one xarray Dataset (netCDF)",
                       description="Run a sweep on dask.distributed: one cell per (model, seed, ηλ or check), each "
                       "cached by a hash of its spec and of the code (a rerun computes only what is missing). "
                       "Rerunning the same command after an interrupt resumes the sweep in its --out folder.",
                       epilog=EXAMPLE + "\n" + variables_help() + "\n" + EXIT_TEXT,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="the sweep, a TOML file (see the example below)")
    p.add_argument("--out", metavar="DIR", help="output folder (default ./srflow-out/sweep-<timestamp>); a folder "
                   "holding an unfinished sweep of the same spec is resumed, one holding another sweep is refused")
    p.add_argument("--cache", metavar="DIR", help=f"cell cache (default {default_cache()})")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (e.g. tcp://host:8786); "
                   "default: a LocalCluster on this machine")
    p.add_argument("--workers", type=int, help="worker processes of the LocalCluster (default: up to 2)")
    p.add_argument("--allow-short-ladder", action="store_true",
                   help="accept an ηλ ladder below 4 values over 1.5 decades (as srflow verify); its verdicts are "
                   "then inconclusive")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_sweep)


def _claim_out(arg: str | None, spec: SweepSpec):
    """Lock the output folder and read the sweep already in it: (out, lock, its sweep.json or None). A folder
    with a sweep of another spec, or an unreadable one, is refused (exit status 2)."""
    from .outdir import FolderBusy, OutputLock

    out = writable(Path(arg) if arg is not None else fresh_folder("sweep-", "srflow: sweep: --out"), "srflow: sweep: --out")
    lock = OutputLock(out)
    try:
        lock.acquire()
    except FolderBusy as exc:
        raise UsageError(f"srflow: sweep: --out: {exc}; wait for it to finish or choose another folder")
    try:
        side = out / "sweep.json"
        if not side.exists():
            if (out / "sweep.nc").exists():
                raise UsageError(f"srflow: sweep: --out: {out} holds a sweep.nc without its sweep.json; choose "
                                 "another folder or remove it")
            return out, lock, None
        try:
            prev = json.loads(side.read_text(encoding="utf-8"))
            recorded = prev["resolved_spec"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UsageError(f"srflow: sweep: --out: {side} is unreadable; choose another folder or remove it")
        now = spec_record(spec)
        differ = [k for k in now if recorded.get(k) != now[k]]
        if differ:
            raise UsageError(f"srflow: sweep: --out: {out} holds a sweep of another spec (it differs in "
                             f"{', '.join(differ)}); choose another folder or remove it")
        return out, lock, prev
    except BaseException:
        lock.release()
        raise


def _command(args) -> list[str]:
    """The command line that reproduces this sweep (whether it came from the shell or from ``main(argv)``)."""
    cmd = ["srflow", "sweep", args.spec]
    for flag in ("out", "cache", "scheduler", "workers"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag}", str(getattr(args, flag))]
    return cmd + (["--allow-short-ladder"] if args.allow_short_ladder else []) + (["--quiet"] if args.quiet else [])


def exit_status(ds, sidecar: dict) -> int:
    """As ``srflow verify``: EXIT_INTERNAL if a cell raised; else EXIT_FAILED if a check cell failed, a run
    diverged, or a ladder verdict (path_verdict, clock_verdict) is "fail"; else EXIT_OK."""
    statuses = {e["status"] for e in sidecar["cells"]} | set(str(v) for v in np.ravel(ds["status"].values))
    if "error" in statuses:
        return EXIT_INTERNAL
    failed = bool(statuses & {"fail", "diverged"})
    for name in ("path_verdict", "clock_verdict"):
        failed |= name in ds and bool(np.any(ds[name].values == "fail"))
    return EXIT_FAILED if failed else EXIT_OK


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_sweep(args) -> int:
    """``srflow sweep``: validate everything before any work (exit 2 on bad input), lock --out, resume the sweep
    found there when it is this spec's, run, and exit as ``srflow verify`` does."""
    import signal

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        raise UsageError(f"srflow: sweep: {exc}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"srflow: sweep: --workers: expected a positive integer, got {args.workers}")
    if spec.short_ladder and not args.allow_short_ladder:
        raise UsageError(f"srflow: sweep: eta_lambda: {spec.short_ladder}, the minimum for a fitted exponent to "
                         "decide a verdict; add values, or pass --allow-short-ladder to run anyway with the ladder "
                         "verdicts marked inconclusive")
    start = time.perf_counter()
    cache = writable(Path(args.cache) if args.cache else default_cache(), "srflow: sweep: --cache")
    out, lock, prev = _claim_out(args.out, spec)
    stops = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    old = {sig: signal.signal(sig, _raise_interrupt) for sig in stops}
    try:
        if prev is not None:
            from .provenance import code_version

            if prev.get("complete") and prev.get("code_version") == code_version():
                import xarray as xr

                with xr.open_dataset(out / "sweep.nc", engine="h5netcdf") as ds:
                    status = exit_status(ds.load(), prev)
                print(f"srflow sweep: {out} already holds this sweep, complete ({prev['counts']['cells']} cell(s)); "
                      "nothing to compute")
                return status
            if prev.get("complete"):
                raise UsageError(f"srflow: sweep: --out: {out} holds this sweep complete, computed by other code "
                                 f"(code version {prev.get('code_version')}, now {code_version()}); choose another "
                                 "folder or remove it")
            _say_resume(prev, spec, out, cache, args.quiet)
        try:
            ds, sidecar = run_sweep(spec, out, cache, args.scheduler, args.workers, args.quiet, _command(args))
        except SchedulerUnreachable as exc:
            raise UsageError(f"srflow: sweep: {exc}")
        except KeyboardInterrupt:
            print(f"\nsrflow: sweep interrupted; finished cells are cached in {cache} and written to {out}; rerun the "
                  "same command to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        lock.release()
    c, seconds = sidecar["counts"], time.perf_counter() - start
    errors = f", {c['errors']} error(s)" if c["errors"] else ""
    print(f"{c['finished']}/{c['cells']} cell(s) ({c['from_cache']} from the cache, {c['computed']} computed{errors}) "
          f"in {seconds:.1f} s -> {out / 'sweep.nc'}")
    return exit_status(ds, sidecar)


def _say_resume(prev: dict, spec: SweepSpec, out: Path, cache: Path, quiet: bool) -> None:
    """Resuming in place: say how much the folder holds, and warn when cells it lists as finished are not in the
    cache (another --cache): they are recomputed, so that the folder and the cache agree again."""
    cache_obj = CellCache(cache)
    by_key = {c["key"]: c for c in make_cells(spec)}
    finished = [e["key"] for e in prev.get("cells", []) if e.get("status") != "error" and e["key"] in by_key]
    missing = [k for k in finished if not cache_obj.path(k).exists()]
    if not quiet:
        print(f"srflow sweep: resuming the unfinished sweep in {out} ({len(finished)} of {len(by_key)} cell(s) "
              "finished there)", file=sys.stderr, flush=True)
    if missing:
        print(f"srflow: warning: {len(missing)} cell(s) finished in {out} are not in the cache {cache} (it was "
              f"{prev.get('cache')}); they are recomputed", file=sys.stderr, flush=True)
