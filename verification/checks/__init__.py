"""The theorem checks: one module per check, each exporting one ``Check`` record named ``CHECK``.

To add a check, add one file here (``verification/checks/<name>.py``) that defines ``CHECK = Check(...)`` (see
``_record.py``) and its tests: ``srflow verify``, ``srflow list``, the report, the per-check figures, the cost
estimate and ``srflow sweep`` all read the records. Modules whose name starts with ``_`` hold shared code.

Every check takes a ``Session`` (one model, its start point on Γ, its flows and the shared runs) and returns a
``CheckResult``. Every formula comes from ``theory`` at call time (``th.<name>``), so a prediction perturbed there
-- or handed in as a check's parameter -- is what the check tests. Convergence checks are judged by
``verdicts.judge`` against the theory's order and report their resolving power δ* (docs/theory.md §7).
"""

from __future__ import annotations

import importlib
import pkgutil

from ._record import Check, Series


def _discover() -> dict[str, Check]:
    records = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        record = getattr(module, "CHECK", None)
        if not isinstance(record, Check):
            raise TypeError(f"verification/checks/{info.name}.py: expected a module-level CHECK = Check(...)")
        records.append(record)
        # the check functions, importable from the package (``from srflow.verification.checks import check_x``)
        globals().update({k: v for k, v in vars(module).items() if k.startswith("check_") and callable(v)})
    records.sort(key=lambda c: (c.position, c.name))
    names = [c.name for c in records]
    if len(set(names)) != len(names):
        raise ValueError(f"verification/checks: duplicate check names in {names}")
    return {c.name: c for c in records}


#: every check, by name, in running order
CHECKS: dict[str, Check] = _discover()


def groups() -> list[tuple[str, ...]]:
    """The checks of each group, in running order (groups ordered by their first check)."""
    out: dict[str, list[str]] = {}
    for c in CHECKS.values():
        out.setdefault(c.group, []).append(c.name)
    return [tuple(v) for v in out.values()]


def ladder_checks() -> tuple[str, ...]:
    """The checks whose verdict rests on the GD+WD ladder of ηλ."""
    return tuple(c.name for c in CHECKS.values() if c.ladder)


__all__ = ["CHECKS", "Check", "Series", "groups", "ladder_checks"]
