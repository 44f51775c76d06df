"""The ``srflow`` command line: ``verify``, ``figures``, ``list``, ``check-identities``, ``derive``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

from toy_models import REGISTRY, make_model
from toy_models.protocol import model_name

from .identities import IDENTITIES, check_identities, check_minimizer


def _models(names: list[str] | None, seed: int):
    names = list(REGISTRY) if not names else names
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise SystemExit(f"srflow: --models: unknown model(s) {', '.join(unknown)}; valid: {', '.join(REGISTRY)}")
    return [make_model(n, rng=seed) for n in names]


def _cmd_list(args) -> int:
    print("models (toy_models.REGISTRY):")
    for name in REGISTRY:
        m = make_model(name)
        gamma = getattr(m, "manifold_dim", None)
        print(f"  {name:<16} D={m.dim:<4} dim Γ={'-' if gamma is None else gamma:<3} {getattr(m, 'description', '')}")
    from theory.symbolic import SCRIPTS

    print("derivations (srflow derive):")
    for name, what in SCRIPTS.items():
        print(f"  {name:<16} {what}")
    from .checks import CHECKS
    from .verify import DEFAULT_MODELS

    print(f"checks (srflow verify; default models: {', '.join(DEFAULT_MODELS)}):")
    for name, fn in CHECKS.items():
        print(f"  {name:<20} {(fn.__doc__ or '').strip().splitlines()[0]}")
    from figures import FIGURES

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
        if hasattr(model, "minimizer"):
            rows += check_minimizer(model, model.minimizer(rng))
        for r in rows:
            failed += r.status != "pass"
            print(f"{model_name(model):<16} {r.identity:<20} {r.scaled_error:>12.2e}  {r.status:<6}  {r.message}")
    total = sum(1 for _ in models)
    print(f"\n{total} models; {'all checks pass' if not failed else f'{failed} check(s) FAILED'}")
    return 1 if failed else 0


def _cmd_derive(args) -> int:
    from theory.symbolic import SCRIPTS, run

    names = args.names or list(SCRIPTS)
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        raise SystemExit(f"srflow: derive: unknown derivation(s) {', '.join(unknown)}; valid: {', '.join(SCRIPTS)}")
    failed = [n for n in names if not run(n)]
    print(f"\n{len(names)} derivation(s); {'all verified' if not failed else 'NOT verified: ' + ', '.join(failed)}")
    return 1 if failed else 0


def _out_dir(arg: str | None) -> Path:
    """``--out`` or ./srflow-out/<timestamp>; never an existing report folder; fails clearly if unwritable."""
    if arg is None:
        base = Path("srflow-out") / time.strftime("%Y%m%d-%H%M%S")
        out, k = base, 1
        while out.exists():
            out, k = base.with_name(f"{base.name}-{k}"), k + 1
    else:
        out = Path(arg)
        if (out / "report.json").exists():
            raise SystemExit(f"srflow: --out: {out} already holds a report; choose another folder or remove it")
    return _writable(out, "srflow: --out")


def _writable(out: Path, what: str) -> Path:
    """Create ``out`` and prove it writable, or exit with a message naming ``what`` and the reason."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".srflow-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(f"{what}: cannot write to {out}: {exc.strerror or exc}")
    return out


def _config(args):
    from theory import check_hyperparameters

    from .session import FULL, QUICK

    from .verify import DEEP_LADDER

    cfg = QUICK if args.quick else FULL
    lr = cfg.lr if args.lr is None else args.lr
    ladder = tuple((DEEP_LADDER if getattr(args, "deep", False) else cfg.ladder) if args.ladder is None else args.ladder)
    try:
        check_hyperparameters(lr)
        for lw in ladder:
            if not 0 < lw < 1:
                raise ValueError(f"ηλ: expected values in (0, 1), got {lw!r}")
            check_hyperparameters(lr, lw / lr)
    except ValueError as exc:
        raise SystemExit(f"srflow: --lr/--ladder: {exc}")
    if len(ladder) < 3:
        raise SystemExit("srflow: --ladder: expected at least 3 values of ηλ (an exponent needs them)")
    return dataclasses.replace(cfg, lr=lr, ladder=tuple(sorted(ladder, reverse=True)))


def _cmd_verify(args) -> int:
    from .check_figures import plot_check
    from .checks import CHECKS
    from .report import STATUS_MARK, Report
    from .verify import DEFAULT_MODELS, ModelLoadError, load_model, run_all, validate

    registered = list(args.models or ([] if args.model else DEFAULT_MODELS))
    models = registered + list(args.model or [])
    checks = list(args.checks or CHECKS)
    try:
        validate(registered, checks)
        for spec in args.model or []:
            load_model(spec)  # fail before any work if the file is broken
    except (ValueError, ModelLoadError) as exc:
        raise SystemExit(f"srflow: {exc}")
    config = _config(args)
    if args.deep:  # the compiled engine: registered models by their JAX twins
        try:
            import toy_models.jax_models  # noqa: F401
        except ImportError:
            raise SystemExit('srflow: --deep needs the JAX extra: python3 -m pip install ".[jax]"')
        models = [f"jax:{m}" for m in registered] + list(args.model or [])
    if args.workers < 1:
        raise SystemExit("srflow: --workers: expected a positive integer")
    out = _out_dir(args.out)
    report = Report(out, config, args.seed, models, checks, "quick" if args.quick else "deep" if args.deep else "default")
    total = len(models) * len(checks)
    print(f"srflow verify: {len(models)} model(s) × {len(checks)} check(s) -> {out}/report.md", flush=True)
    start = time.perf_counter()

    def on_result(res):
        figure = plot_check(res, out / "figures")
        report.add(res, figure)
        print(f"[{len(report.results):>2}/{total}] {res.model:<14} {res.name:<20} {STATUS_MARK[res.status]:<20} "
              f"{res.seconds:6.1f} s  {res.message}", flush=True)

    try:
        run_all(models, checks, config, args.seed, args.quiet, args.workers, on_result)
    except KeyboardInterrupt:
        report.finish(time.perf_counter() - start, interrupted=True)
        print(f"\nsrflow: interrupted; the {len(report.results)} finished result(s) are in {out}", file=sys.stderr)
        return 130
    report.finish(time.perf_counter() - start)
    c = report.counts()
    print(f"\n{c['pass']} pass, {c['fail']} fail, {c['assumption-violated']} assumption violated "
          f"in {time.perf_counter() - start:.0f} s; report: {out / 'report.md'}")
    return 1 if c["fail"] else 0


def _cmd_figures(args) -> int:
    from figures import FIGURES, make_figure

    names = args.only or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise SystemExit(f"srflow: figures: --only: unknown figure(s) {', '.join(unknown)}; valid: {', '.join(FIGURES)}")
    out = _writable(Path(args.out), "srflow: figures: --out")
    start = time.perf_counter()
    for name in names:
        t = time.perf_counter()
        files = make_figure(FIGURES[name], out, quick=args.quick, seed=args.seed, recompute=args.recompute)
        print(f"{name:<20} {time.perf_counter() - t:6.1f} s  {', '.join(str(f) for f in files[:2])}", flush=True)
    print(f"{len(names)} figure(s) in {time.perf_counter() - start:.0f} s -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srflow", description="Numerical verification of sharpness reduction "
                                     "by normalization layers (Lyu, Li, Arora 2022).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="run the theorem checks and write a report (report.md, report.json, figures)")
    p.add_argument("--models", nargs="+", metavar="NAME", help="registered models (default: sphere_circle mf bn_linear)")
    p.add_argument("--model", action="append", metavar="FILE.py:FACTORY",
                   help="your own model: path/to/file.py:factory or package.module:factory (repeatable)")
    p.add_argument("--checks", nargs="+", metavar="CHECK", help="checks to run (default: all; see `srflow list`)")
    p.add_argument("--quick", action="store_true", help="short ladders and horizons (about a minute)")
    p.add_argument("--deep", action="store_true", help="GD+WD ladder down to ηλ = 1e-7, compiled (JAX twins of the "
                   "registered models; needs the jax extra)")
    p.add_argument("--seed", type=int, default=0, help="seed of models, start points and kicks (default 0)")
    p.add_argument("--out", metavar="DIR", help="output folder (default ./srflow-out/<timestamp>; never overwritten)")
    p.add_argument("--lr", type=float, help="η of the GD+WD runs (default 0.1)")
    p.add_argument("--ladder", type=float, nargs="+", metavar="ETA_LAMBDA", help="values of ηλ for the GD+WD ladder")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="parallel processes (default: up to 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("figures", help="regenerate the paper's figures (PNG, PDF, caption, cached arrays)")
    p.add_argument("--out", default="figures", metavar="DIR", help="output folder (default ./figures)")
    p.add_argument("--quick", action="store_true", help="small versions (for tests)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these figures (see `srflow list`)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    p.add_argument("--recompute", action="store_true", help="ignore cached arrays with a matching config")
    p.set_defaults(func=_cmd_figures)
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
    args = build_parser().parse_args(argv)
    if getattr(args, "points", 1) < 1:
        raise SystemExit("srflow: --points: expected a positive integer")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
