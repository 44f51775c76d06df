"""The ``srflow`` command line: ``srflow list``, ``srflow check-identities``, ``srflow derive``."""

from __future__ import annotations

import argparse
import sys

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srflow", description="Numerical verification of sharpness reduction "
                                     "by normalization layers (Lyu, Li, Arora 2022).")
    sub = parser.add_subparsers(dest="command", required=True)
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
