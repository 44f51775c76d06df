"""sqrt-loss-gd: GD on √L on the sphere follows dX/dτ = -⅛∇_Γ λ₁ at τ = η²t, error O(η)."""

from __future__ import annotations

from typing import Callable

from ..ladder import SQRT_ORDER
from ..session import CheckResult, Session
from . import _costs
from ._alp import _alp_check
from ._record import Check, Series


def check_sqrt_loss_gd(session: Session, clock: Callable | None = None) -> CheckResult:
    """GD on √L on the sphere vs dX/dτ = -⅛∇_Γ λ₁, τ = η²t (``theory.sqrt_gd_steps``); O(η): the cubic term
    moves the split of its 2-cycle (docs/theory.md §5b), which costs O(η)."""
    return _alp_check(session, "sqrt-loss-gd", "sqrt-sphere", clock, SQRT_ORDER)


CHECK = Check(
    name="sqrt-loss-gd", position=70, group="related", run=check_sqrt_loss_gd, order=SQRT_ORDER,
    summary="GD on √L on the sphere follows dX/dτ = −⅛∇_Γ λ₁ at τ = η²t, path and clock errors O(η).",
    cost=lambda config: _costs.alp(config, "sqrt"),
    series=(Series("path_errors", "path: ‖Φ(w̄_t) − ζ(s_t)‖", "path"),
            Series("clock_errors", "clock: |s_t − s(η²t)|", "clock")),
    xlabel="η")
