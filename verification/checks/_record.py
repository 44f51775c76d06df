"""The ``Check`` record: everything the rest of srflow needs to know about one theorem check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..session import CheckResult, Session, VerifyConfig
from ..verdicts import Order


@dataclass(frozen=True)
class Series:
    """One curve of a check's convergence figure: ``details[key]`` against the ladder, drawn with ``label``;
    ``verdict`` names the entry of ``details`` holding that curve's ladder verdict (its fitted order, its
    bound) or is None for a curve shown without one."""

    key: str
    label: str
    verdict: str | None = None


def no_cost(config: VerifyConfig) -> dict:
    return {}


@dataclass(frozen=True)
class Check:
    """One theorem check, as data.

    * ``name``: as on the command line (``--checks``) and in reports; ``summary``: one sentence a reader can repeat.
    * ``run(session) -> CheckResult``: the check itself (calling a ``Check`` calls ``run``).
    * ``group``: checks of one group share a session (its start point, flows and runs) and run in one job, in
      ``position`` order: "gdwd" (the GD+WD ladder), "related" (the other algorithms, and eos-entry, whose runs are
      its own: with two workers the two jobs of a model then take about as long, e.g. on bn_mlp each pays for the
      flow once, and eos-entry's ≈ 110 s goes beside identities and scale-collapse instead of after them).
    * ``ladder``: the verdict rests on the fitted exponent over the GD+WD ladder of ηλ (a short ladder makes it
      inconclusive).
    * ``cost(config) -> {run key: (steps, records)}``: the simulations it needs; checks sharing runs name them
      with the same key, so the estimate counts them once.
    * ``series``, ``xlabel``: its convergence figure (verification/check_figures.py); ``order``: the theory's
      error order it judges by, when it is a ladder of one small parameter.
    """

    name: str
    summary: str
    run: Callable[[Session], CheckResult]
    group: str
    position: int
    ladder: bool = False
    cost: Callable[[VerifyConfig], dict] = no_cost
    series: tuple[Series, ...] = field(default_factory=tuple)
    xlabel: str = "ηλ"
    order: Order | None = None

    def __call__(self, session: Session) -> CheckResult:
        return self.run(session)
