"""normalized-gd: normalized GD on the sphere follows dX/dτ = -¼∇_Γ log λ₁ at τ = η²t, error O(η²)."""

from __future__ import annotations

from typing import Callable

from ..ladder import NGD_ORDER
from ..session import CheckResult, Session
from . import _costs
from ._alp import _alp_check
from ._record import Check, Series


def check_normalized_gd(session: Session, clock: Callable | None = None) -> CheckResult:
    """Normalized GD on the sphere vs dX/dτ = -¼∇_Γ log λ₁, τ = η²t (``theory.normalized_gd_steps``); O(η²):
    its steps have length η exactly, so the 2-cycle stays symmetric and the O(η) terms cancel over a pair."""
    return _alp_check(session, "normalized-gd", "ngd-sphere", clock, NGD_ORDER)


CHECK = Check(
    name="normalized-gd", position=60, group="related", run=check_normalized_gd, order=NGD_ORDER,
    summary="Normalized GD on the sphere follows dX/dτ = −¼∇_Γ log λ₁ at τ = η²t, path and clock errors O(η²).",
    cost=lambda config: _costs.alp(config, "ngd"),
    series=(Series("path_errors", "path: ‖Φ(w̄_t) − ζ(s_t)‖", "path"),
            Series("clock_errors", "clock: |s_t − s(η²t)|", "clock")),
    xlabel="η")
