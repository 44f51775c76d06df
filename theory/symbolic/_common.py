"""Shared output format of the derivation scripts: each derives, verifies exactly, and prints."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp


@dataclass(frozen=True)
class Derived:
    """One derived statement: ``expr`` is what was derived, ``verified`` whether the exact check held."""

    name: str
    statement: str
    expr: str
    verified: bool


@lru_cache(maxsize=1024)  # a statement is shown and then verified: the same exact test, once
def is_zero(expr) -> bool:
    """Exact zero test (no numerical sampling): the numerator over a common denominator expands to 0, or else
    ``sp.simplify`` gives 0. The first is cheap and suffices for every identity of these scripts; it is sound,
    since a numerator that is identically 0 makes the expression 0. The second (seconds each) is the fallback."""
    numerator, _ = sp.fraction(sp.together(sp.expand(expr)))
    return sp.expand(numerator) == 0 or sp.simplify(sp.together(sp.expand(expr))) == 0


def shown(expr) -> str:
    """``expr`` for the printed derivation: "0" where ``is_zero`` holds, else its simplified form."""
    return "0" if is_zero(expr) else str(sp.simplify(expr))


def report(title: str, results: list[Derived]) -> bool:
    print(title)
    for r in results:
        print(f"  [{'verified' if r.verified else 'FAILED  '}] {r.name}: {r.statement}")
        print(f"             derived: {r.expr}")
    ok = all(r.verified for r in results)
    print(f"  -> {'all verified' if ok else 'NOT VERIFIED'}")
    return ok
