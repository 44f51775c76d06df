"""eos-entry: the step at which GD+WD enters the edge of stability."""

from __future__ import annotations

from typing import Callable

import numpy as np

import srflow.theory as th

from .. import tolerances as tol
from ..simulate import simulate
from ..session import CheckResult, Session, guard, result
from ..verdicts import Status
from . import _costs
from ._record import Check

#: record stride of the eos-entry run
ENTRY_EVERY = 5


def check_eos_entry(session: Session, entry_step: Callable | None = None) -> CheckResult:
    """From a random start with ‖w₀‖² = ``entry_norm_ratio`` × the EoS norm: GD+WD converges to Γ (phase 1),
    weight decay shrinks the norm (phase 2), and EoS starts (phase 3) where λ₁(∇²L(w_t)) first reaches
    ``theory.eos_threshold``. Predicted: ``entry_step`` (default ``theory.eos_entry_step``: the step on Γ +
    ``theory.phase2_duration``) from the state at that step, the on-Γ marker set for the model's λ₁/μ and
    ‖∇ log λ₁‖ (``tolerances.on_gamma_rtol``).
    Tolerance ENTRY_LOG_RTOL/(2ηλ) steps on the crossing interpolated between records; δ* is the
    smallest relative change of the predicted duration that the tolerance rejects."""
    name = "eos-entry"

    def run():
        cfg, m = session.config, session.model
        entry = entry_step or th.eos_entry_step
        u = session.rng("eos-entry").standard_normal(m.dim)
        theta = th.project_to_manifold(m, u).theta
        lam1 = th.manifold_point(m, theta).lam1
        kappa, g = th.normal_conditioning(m, theta)
        rho = tol.on_gamma_rtol(kappa, g)
        # first at entry_eta_lambda; where the phases are not separated there (GD has not reached Γ when the norm
        # has decayed: an ill-conditioned model), once more at the ηλ whose phase 2 outlasts the estimated phase 1
        derived, phase1 = entry_eta_lambda(cfg, kappa, rho)
        for eta_lambda in sorted({float(cfg.entry_eta_lambda), derived}, reverse=True):
            steps = int(1.5 * th.phase2_steps(eta_lambda, cfg.entry_norm_ratio)) + 500
            saved_eta_lambda = {"wd_lr": eta_lambda}  # names: saved -- report.json's key for ηλ, kept for old reports
            if steps > cfg.extend_steps:
                return result(session, name, Status.INCONCLUSIVE, None, None, None, float("nan"),
                              f"phases not separated at ηλ = {cfg.entry_eta_lambda:g}, and cannot be within the step "
                              f"budget: GD reaches Γ (‖∇L‖ ≤ {rho:.2g}·λ₁‖w‖) in ≈ {phase1:.3g} steps on this model "
                              f"(λ₁/μ = {kappa:.3g}), so phase 2 must last longer, ηλ ≤ {eta_lambda:.2g}: {steps} steps "
                              f"> budget {cfg.extend_steps}",
                              {"lam1_over_mu": kappa, "phase1_steps": phase1, **saved_eta_lambda})
            wd = eta_lambda / cfg.lr
            w0 = u / np.linalg.norm(u) * np.sqrt(cfg.entry_norm_ratio * th.equilibrium_norm_sq(cfg.lr, wd, lam1))
            # λ₁(∇²L(w_t)) grows geometrically while the run sits on Γ, so the crossing interpolated in log λ₁ between
            # records ENTRY_EVERY steps apart is exact there (``Trajectory.crossing``)
            tr = simulate(m, w0, cfg.lr, steps, wd=wd, every=ENTRY_EVERY, pairs=False, quiet=session.quiet,
                          label=f"{session.name} entry")
            if tr.diverged:
                raise RuntimeError(f"entry run: {tr.diverged}")
            ph = tr.phases(rho)
            if not (ph["on-gamma"] is None or ph["eos"] is None or ph["on-gamma"] == ph["eos"]):
                break
        else:
            def at(step):
                return "never" if step is None else f"step {step}"
            estimate = ("λ₁/μ not computed above DENSE_MAX_DIM, so phase 1 is not estimated" if not np.isfinite(kappa)
                        else f"phase 1 estimated at {phase1:.3g} steps, λ₁/μ = {kappa:.3g}")
            return result(session, name, Status.INCONCLUSIVE, None, ph["eos"], None, float("nan"),
                          f"phases not separated in {steps} steps at ηλ = {eta_lambda:g} (on Γ: {at(ph['on-gamma'])}, "
                          f"EoS: {at(ph['eos'])}; {estimate}): GD did not reach Γ before the norm decayed, so the "
                          "entry step cannot be tested on this start",
                          {"phases": ph, **saved_eta_lambda}, [tr])
        i = int(np.searchsorted(tr.steps, ph["on-gamma"]))
        lam1_bar = tr.lam1[i] * tr.norm_sq[i]  # λ₁ is degree -2: λ₁(w̄) = ‖w‖² λ₁(w) on Γ
        d = th.phase2_duration(cfg.lr, wd, tr.norm_sq[i], lam1_bar)
        predicted = entry(cfg.lr, wd, tr.norm_sq[i], lam1_bar, step_on_gamma=ph["on-gamma"])
        observed = tr.crossing(ph["eos"])
        err = observed - predicted
        tolerance = tol.ENTRY_LOG_RTOL / (2 * eta_lambda)
        scaled = abs(err) / tolerance
        power = (abs(err) + tolerance) / d if d > 0 else float("inf")
        return result(session, name, Status.PASS if scaled <= 1 else Status.FAIL, predicted, observed, tolerance,
                      scaled, f"EoS begins at step {observed:.3f} vs predicted {predicted:.3f} (on Γ at step "
                      f"{ph['on-gamma']}; first EoS step {ph['eos']}; phase 2 lasts {d:.1f} steps)",
                      {"phases": ph, **saved_eta_lambda, "duration": d, "on_gamma_rtol": rho, "phase1_steps": phase1},
                      [tr], {"entry step (duration)": power})

    return guard(session, name, run)


def entry_eta_lambda(cfg, kappa: float, rho: float) -> tuple[float, float]:
    """(ηλ of the entry run, the estimated phase-1 steps N₁). From ‖w₀‖² = r × the EoS norm (r = entry_norm_ratio)
    GD has η_eff λ₁ ≈ 2/r, so the slowest normal mode (eigenvalue μ = λ₁/κ) contracts at η_eff μ ≈ 2/(rκ) per step
    and reaches the on-Γ marker ρ after N₁ = rκ·log(1/ρ)/2 steps; phase 2 lasts log(r)/(2ηλ) steps and must outlast
    phase 1 (by 2×, the run's margin): ηλ = min(entry_eta_lambda, log r/(4N₁)); entry_eta_lambda where κ is unknown
    (NaN)."""
    if not (kappa > 0 and np.isfinite(kappa)):
        return float(cfg.entry_eta_lambda), float("nan")
    r = cfg.entry_norm_ratio
    phase1 = r * kappa * np.log(1 / rho) / 2
    return float(min(cfg.entry_eta_lambda, np.log(r) / (4 * phase1))), float(phase1)


CHECK = Check(
    name="eos-entry", position=30, group="related", run=check_eos_entry, cost=_costs.entry,
    summary="From a random start above the EoS norm, the edge of stability begins at the predicted step.")
