"""identities: the scale-invariance identities and exact derivatives at random points, and θ₀ ∈ Γ."""

from __future__ import annotations

from ..identities import check_identities, check_minimizer
from ..session import CheckResult, Session, result
from ..verdicts import Status
from ._record import Check


def check_identities_on(session: Session) -> CheckResult:
    """The scale-invariance identities and exact derivatives (verification/identities.py) at random points,
    and the minimizer conditions at θ₀."""
    rows = check_identities(session.model, session.rng("identities"), points=2)
    if hasattr(session.model, "minimizer"):
        rows += check_minimizer(session.model, session.theta0)
    worst = max(rows, key=lambda r: r.scaled_error)
    failed = [r for r in rows if r.status != "pass"]
    msg = "; ".join(f"{r.identity}: {r.message}" for r in failed[:3])
    if any(r.identity in ("invariance", "euler-grad") for r in failed):
        msg = "the loss is not scale-invariant; every other check assumes it. " + msg
    return result(session, "identities", Status.PASS if not failed else Status.FAIL, 0.0, worst.scaled_error, 1.0,
                  worst.scaled_error, msg or f"{len(rows)} identities; worst: {worst.identity}",
                  {r.identity: r.scaled_error for r in rows})


CHECK = Check(
    name="identities", position=0, group="gdwd", run=check_identities_on,
    summary="The scale-invariance identities and exact derivatives hold at random points, and θ₀ is a minimizer.")
