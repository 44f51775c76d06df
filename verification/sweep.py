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

**Outputs** (``--out``, never overwritten): ``sweep.nc`` (netCDF4 via h5netcdf; ``xarray.open_dataset`` loads
it) and ``sweep.json`` (provenance and one row per cell: where it came from -- computed or cache --, its worker
and time). Provenance (command line, spec, seeds, versions, git revision and code version) is in both; see
verification/provenance.py for where the revision comes from when installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from .runner import Cluster
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

Results: OUT/sweep.nc (xarray.open_dataset) and OUT/sweep.json (provenance, cells). Cells are cached in --cache
by a hash of their spec and of the code: a rerun computes only what is missing or changed.
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


def run_sweep(spec: SweepSpec, out, cache_dir, scheduler: str | None = None, workers: int | None = None,
              quiet: bool = False, command: list[str] | None = None, processes: bool = True):
    """Run (or resume) ``spec``: cached cells are read, the others computed on Dask and cached as each completes;
    writes ``out/sweep.nc`` and ``out/sweep.json``. Returns (dataset, sidecar dict). Ctrl-C stops the run, keeps
    what finished (cache and outputs, ``complete`` = 0) and re-raises KeyboardInterrupt."""
    from distributed import as_completed

    out, cache = Path(out), CellCache(cache_dir)
    start = time.perf_counter()
    cells = make_cells(spec)
    say = (lambda *_: None) if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
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
    ds, sidecar = _write(spec, cells, results, log, out, command, time.perf_counter() - start, interrupted)
    say(f"srflow sweep: {sum(1 for c in cells if c['key'] in results)}/{len(cells)} cell(s) in "
        f"{time.perf_counter() - start:.1f} s{' (interrupted)' if interrupted else ''}"
        f"{f', {errors} error(s)' if errors else ''}; {out / 'sweep.nc'}")
    if interrupted:
        raise KeyboardInterrupt
    return ds, sidecar


def _write(spec, cells, results, log, out: Path, command, seconds: float, interrupted: bool):
    from .provenance import provenance

    ok = {k: r for k, r in results.items() if r["status"] != "error"}
    ds = assemble(spec, cells, ok)
    prov = provenance()
    spec_json = {"models": list(spec.models), "labels": list(spec.labels), "seeds": list(spec.seeds),
                 "eta_lambda": list(spec.eta_lambda), "checks": list(spec.checks),
                 "config": dataclasses.asdict(spec.config)}
    complete = not interrupted and len(ok) == len(cells)
    ds.attrs.update({
        "title": "srflow sweep", "command": " ".join(command or sys.argv), "spec": spec.text,
        "spec_json": json.dumps(spec_json), "seeds": list(spec.seeds), "git_revision": prov["git_revision"],
        "git_dirty": -1 if prov["git_dirty"] is None else int(prov["git_dirty"]),
        "git_revision_source": prov["git_revision_source"], "code_version": prov["code_version"],
        "versions": json.dumps(prov["versions"]), "complete": int(complete),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    sidecar = {"command": command or sys.argv, "argv": sys.argv, "cwd": os.getcwd(), "spec": spec.text, "resolved_spec": spec_json, **prov,
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


def add_parser(sub) -> None:
    """The ``sweep`` subcommand of ``srflow``."""
    p = sub.add_parser("sweep", help="models × seeds × ηλ (or checks) on Dask, into one xarray Dataset (netCDF)",
                       description="Run a sweep on dask.distributed: one cell per (model, seed, ηλ or check), each "
                       "cached by a hash of its spec and of the code (a rerun computes only what is missing).",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="the sweep, a TOML file (see the example below)")
    p.add_argument("--out", metavar="DIR", help="output folder (default ./srflow-out/sweep-<timestamp>; never "
                   "overwritten)")
    p.add_argument("--cache", metavar="DIR", help=f"cell cache (default {default_cache()})")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (e.g. tcp://host:8786); "
                   "default: a LocalCluster on this machine")
    p.add_argument("--workers", type=int, help="worker processes of the LocalCluster (default: up to 2)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_sweep)


def _out_dir(arg: str | None) -> Path:
    from .outdir import writable as _writable

    if arg is None:
        base = Path("srflow-out") / time.strftime("sweep-%Y%m%d-%H%M%S")
        out, k = base, 1
        while out.exists():
            out, k = base.with_name(f"{base.name}-{k}"), k + 1
    else:
        out = Path(arg)
        if (out / "sweep.nc").exists():
            raise SystemExit(f"srflow: sweep: --out: {out} already holds a sweep; choose another folder or remove it")
    return _writable(out, "srflow: sweep: --out")


def _command(args) -> list[str]:
    """The command line that reproduces this sweep (whether it came from the shell or from ``main(argv)``)."""
    cmd = ["srflow", "sweep", args.spec]
    for flag in ("out", "cache", "scheduler", "workers"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag}", str(getattr(args, flag))]
    return cmd + (["--quiet"] if args.quiet else [])


def cmd_sweep(args) -> int:
    from .outdir import writable as _writable

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        raise SystemExit(f"srflow: sweep: {exc}")
    if args.workers is not None and args.workers < 1:
        raise SystemExit("srflow: sweep: --workers: expected a positive integer")
    start = time.perf_counter()
    out = _out_dir(args.out)
    cache = _writable(Path(args.cache) if args.cache else default_cache(), "srflow: sweep: --cache")
    try:
        _, sidecar = run_sweep(spec, out, cache, args.scheduler, args.workers, args.quiet, _command(args))
    except KeyboardInterrupt:
        print(f"\nsrflow: sweep interrupted; finished cells are cached in {cache} and written to {out}",
              file=sys.stderr)
        return 130
    c, seconds = sidecar["counts"], time.perf_counter() - start
    errors = f", {c['errors']} error(s)" if c["errors"] else ""
    print(f"{c['finished']}/{c['cells']} cell(s) ({c['from_cache']} from the cache, {c['computed']} computed{errors}) "
          f"in {seconds:.1f} s -> {out / 'sweep.nc'}")
    failed = any(e["status"] in ("fail", "error") for e in sidecar["cells"])
    return 1 if failed else 0
