"""Shared output format of the derivation scripts: each derives, verifies exactly, and prints."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class Derived:
    """One derived statement: ``expr`` is what was derived, ``verified`` whether the exact check held."""

    name: str
    statement: str
    expr: str
    verified: bool


def is_zero(expr) -> bool:
    """Exact zero test by simplification (no numerical sampling)."""
    return sp.simplify(sp.together(sp.expand(expr))) == 0


def report(title: str, results: list[Derived]) -> bool:
    print(title)
    for r in results:
        print(f"  [{'verified' if r.verified else 'FAILED  '}] {r.name}: {r.statement}")
        print(f"             derived: {r.expr}")
    ok = all(r.verified for r in results)
    print(f"  -> {'all verified' if ok else 'NOT VERIFIED'}")
    return ok
