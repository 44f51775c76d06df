"""How far a recorded run is from a flow: the path error at the run's own clock, the clock error at every step, and
the combined error (docs/theory.md §7). Shared by the tracking checks, ``srflow sweep`` and figure 4."""

from __future__ import annotations

from typing import Callable

import numpy as np

import srflow.theory as th

from . import tolerances as tol
from .simulate import Trajectory


class ScaledFlow:
    """ζ_δ(s) = ζ((1 + δ)s): the flow with coefficient (1 + δ)·(-¼), since the flow is autonomous. Has the
    fields the clocks read (``s``, ``sharpness``) and ``at``."""

    def __init__(self, flow, factor: float):
        self.flow, self.factor = flow, factor
        self.s, self.lam1 = flow.s / factor, flow.lam1

    def at(self, s):
        return self.flow.at(np.asarray(s) * self.factor)


def phi_error(tr: Trajectory, flow, s) -> float:
    """max_t ‖Φ(w̄_t) - ζ(s_t)‖ over the records of ``tr``, s_t the flow time matched to each record."""
    return float(np.nanmax(np.linalg.norm(tr.phi - flow.at(s), axis=1)))


def path_error(tr: Trajectory, flow) -> float:
    """``phi_error`` at the run's own intrinsic clock s_t = Σ‖w̄_{k+1} - w̄_k‖²: whether Φ moves along the flow's
    path at the flow's rate per unit of s (the coefficient -¼)."""
    return phi_error(tr, flow, tr.clock)


def clock_error(tr: Trajectory, flow, clock_steps: np.ndarray, scale: float = 1.0) -> float:
    """max over every step t of |s_t - s(t)|, s(t) from the clock under test (``clock_steps``·``scale`` = steps
    as a function of the flow time): whether the run spends flow time at the predicted rate."""
    # every step where the simulator kept them (numpy path), else the records (compiled path)
    t, s = ((np.arange(len(tr.clock_steps), dtype=float), tr.clock_steps) if tr.clock_steps is not None
            else (tr.steps.astype(float), tr.clock))
    if t[-1] > clock_steps[-1] * scale * (1 + 1e-12):
        raise ValueError(f"flow: its horizon covers {clock_steps[-1] * scale:.6g} steps, the run has {t[-1]:.0f}")
    return float(np.max(np.abs(s - th.flows.invert_clock(clock_steps * scale, flow.s, t))))


def path_and_clock(tr: Trajectory, flow, clock: Callable, clock_args: tuple, paths: dict | None = None,
                   factor: float = 1.0, scale: float = 1.0) -> dict:
    """{"path", "clock"} errors of ``tr`` against ``flow`` run at (1 + δ) = ``factor`` times its rate
    (``ScaledFlow``), the clock ``clock(flow, *clock_args)`` stretched by ``scale``. ``paths`` caches the
    unperturbed path error per run (it does not depend on the clock)."""
    f = flow if factor == 1.0 else ScaledFlow(flow, factor)
    if factor == 1.0 and paths is not None:
        path = paths.setdefault(id(tr), path_error(tr, f))
    else:
        path = path_error(tr, f)
    return {"path": path, "clock": clock_error(tr, f, clock(f, *clock_args), scale)}


def cluster_caveat(session, flow) -> str:
    """Where, within the runs' reach (τ ≤ tau_end), the O(ηλ) tracking of the cluster flow does not apply, and why
    (docs/theory.md §4c), or "": a branch joins the cluster (the joining mode grows from the round-off floor: the
    hand-off is delayed by Δτ ≈ √(ηλ·log(a/ν)/r)), the flow halts (the loaded amplitudes' antisymmetric mode is
    neutral: Φ circles the halt point), or a near tie that is not a tie has a relative gap below
    NEAR_TIE_FACTOR·ηλ on some rung (GD+WD loads both branches, the flow treats them as separate)."""
    tau = th.gdwd_tau(flow)
    reach = float(flow.s[min(int(np.searchsorted(tau, session.config.tau_end)), len(flow.s) - 1)])
    notes = []
    for e in getattr(flow, "events", ()):
        if e["s"] > reach:
            continue
        if e["kind"] == "join":
            notes.append(f"a branch joins the top cluster at flow time s = {e['s']:.4g} (k = {e['k']}): the joining "
                         "mode starts from the round-off floor and its growth is delayed (a delayed bifurcation, "
                         "Δτ ≈ √(ηλ·log(a/ν)/r)), so the error there is O(√ηλ), not O(ηλ)")
        elif e["kind"] == "halt":
            notes.append(f"the flow halts at s = {e['s']:.4g} (0 in the generalized gradient, k = {e['k']}): the "
                         "antisymmetric mode of the loaded amplitudes is neutral, Φ(w̄_t) circles the halt point "
                         "(amplitude ∝ √ηλ measured) and the cluster flow describes its time average")
    big = max(session.config.ladder)
    for s_nt, gap in getattr(flow, "near_ties", ()):
        if s_nt <= reach and gap < tol.NEAR_TIE_FACTOR * big:
            notes.append(f"a near tie that is not a tie at s = {s_nt:.4g}: (λ_k - λ_k+1)/λ₁ = {gap:.3g} < "
                         f"{tol.NEAR_TIE_FACTOR:g}·ηλ = {tol.NEAR_TIE_FACTOR * big:.3g} (ηλ = {big:g}): GD+WD loads both "
                         "branches there, the flow treats them as separate")
    return ("assumption violated (cluster theory, docs/theory.md §4c): " + "; ".join(notes)) if notes else ""


def neighbourhood_caveat(runs: list[Trajectory]) -> str:
    """"" while the GD+WD runs stay in the neighbourhood of Γ the analysis is local to, else why not (docs/theory.md
    §6): at EoS the unit iterate sits ≈ a from Γ, a² = 2ηλ/(4 + G) (§4), so the mean squared distance ⟨‖w̄_t - Φ(w̄_t)‖²⟩
    over a run falls ∝ ηλ, by the ratio of the rungs (≥ 30 over the ladder's ≥ 1.5 decades). Where it does not fall
    at all (its fitted exponent over the rungs is not > 0 by two standard errors, ``session.falls``) the runs are not
    in that neighbourhood whatever ηλ, and the O(ηλ) claims of the GD+WD checks are outside their premise."""
    from .session import falls
    from .verdicts import fit_exponent

    runs = [tr for tr in runs if tr.offset_sq is not None and len(tr.offset_sq)]
    if len(runs) < 3:
        return ""
    ladder = np.array([tr.eta_lambda for tr in runs])
    means = np.array([float(np.mean(tr.offset_sq)) for tr in runs])
    p, se = fit_exponent(ladder, means)
    if falls(p, se):
        return ""
    rungs = ", ".join(f"{x:g}: {m:.2e}" for x, m in zip(ladder, means))
    return ("assumption violated: the runs leave the O(√ηλ) neighbourhood of Γ the analysis is local to (docs/theory.md "
            f"§6): the mean squared distance ⟨‖w̄_t − Φ(w̄_t)‖²⟩ should fall ∝ ηλ (≈ 2ηλ/(4 + G)) but does not fall "
            f"(∝ ηλ^{p:.2f} ± {se:.2f}: {rungs})")


def separation_caveat(session, xs) -> str:
    """"" while the rungs the verdict reads (the three smallest ηλ) separate the time scales the O(ηλ) expansion rests
    on, else why not (docs/theory.md §6): at η_eff λ₁ = 2 the slowest normal mode (eigenvalue μ) relaxes by 2μ/λ₁ per
    step while the flow moves O(ηλ) per step, so the expansion parameter is ηλ·κ/2 (κ = λ₁/μ at θ₀,
    ``theory.normal_conditioning``); where it is ≥ 1 on a judged rung the ladder has not reached the regime the
    claim is about."""
    kappa, _ = th.normal_conditioning(session.model, session.theta0)
    if not (kappa > 0 and np.isfinite(kappa)):
        return ""
    judged = sorted(float(x) for x in xs)[:3]
    bad = [x for x in judged if x * kappa / 2 >= 1]
    if not bad:
        return ""
    return (f"assumption violated: time scales not separated on the judged rungs (docs/theory.md §6): the slowest "
            f"normal mode relaxes by 2μ/λ₁ = {2 / kappa:.2g} per step (λ₁/μ = {kappa:.3g}), not faster than the flow "
            f"moves (ηλ per step) at ηλ = {', '.join(f'{x:g}' for x in bad)} (ηλ·λ₁/(2μ) = "
            f"{', '.join(f'{x * kappa / 2:.2g}' for x in bad)}); the O(ηλ) claim needs ηλ < {2 / kappa:.2g}")


def with_caveat(res, caveat: str):
    """``res`` as assumption-violated with ``caveat`` first, its measured verdict kept in the message and details."""
    from .verdicts import Status

    if not caveat or res.status == Status.ASSUMPTION_VIOLATED:
        return res
    res.details["measured_status"] = str(res.status)
    res.message = f"{caveat}. Measured anyway: {res.status}: {res.message}"
    res.status = Status.ASSUMPTION_VIOLATED
    res.resolving_power = {k: float("nan") for k in res.resolving_power}
    return res


def gdwd_horizon(session) -> float:
    """Flow time the GD+WD checks need: s ≤ 2τ (log λ₁ falls along the flow), for a clock slowed by up to
    DELTA_MAX, and a flow sped up by as much."""
    return 2 * session.config.tau_end / (1 - tol.DELTA_MAX) + 0.05


def tracking_errors(session, clock: Callable) -> tuple[np.ndarray, list[Trajectory], object]:
    """max_t ‖Φ(w̄_t) - ζ(s(t))‖ per GD+WD run of the configured ladder, with s(t) from inverting
    ``clock(flow, lr, wd)`` (the combined error of path and clock; figures use it)."""
    flow = session.flow(gdwd_horizon(session))
    runs = session.ladder_runs()
    errors = [phi_error(tr, flow, th.s_at_steps(flow, clock(flow, tr.lr, tr.wd), tr.steps)) for tr in runs]
    return np.array(errors), runs, flow
