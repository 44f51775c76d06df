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
        wd = cfg.entry_eta_lambda / cfg.lr
        u = session.rng("eos-entry").standard_normal(m.dim)
        theta = th.project_to_manifold(m, u).theta
        lam1 = th.manifold_point(m, theta).lam1
        rho = tol.on_gamma_rtol(*th.normal_conditioning(m, theta))
        w0 = u / np.linalg.norm(u) * np.sqrt(cfg.entry_norm_ratio * th.equilibrium_norm_sq(cfg.lr, wd, lam1))
        steps = _costs.entry_steps(cfg)
        # λ₁(∇²L(w_t)) grows geometrically while the run sits on Γ, so the crossing interpolated in log λ₁ between
        # records ENTRY_EVERY steps apart is exact there (``Trajectory.crossing``)
        tr = simulate(m, w0, cfg.lr, steps, wd=wd, every=ENTRY_EVERY, pairs=False, quiet=session.quiet,
                      label=f"{session.name} entry")
        if tr.diverged:
            raise RuntimeError(f"entry run: {tr.diverged}")
        ph = tr.phases(rho)
        if ph["on-gamma"] is None or ph["eos"] is None or ph["on-gamma"] == ph["eos"]:
            return result(session, name, Status.INCONCLUSIVE, None, ph["eos"], None, float("nan"),
                          f"phases not separated in {steps} steps (on Γ at {ph['on-gamma']}, EoS at {ph['eos']}): GD "
                          "did not reach Γ before the norm decayed, so the entry step cannot be tested on this start",
                          {"phases": ph}, [tr])
        i = int(np.searchsorted(tr.steps, ph["on-gamma"]))
        lam1_bar = tr.lam1[i] * tr.norm_sq[i]  # λ₁ is degree -2: λ₁(w̄) = ‖w‖² λ₁(w) on Γ
        d = th.phase2_duration(cfg.lr, wd, tr.norm_sq[i], lam1_bar)
        predicted = entry(cfg.lr, wd, tr.norm_sq[i], lam1_bar, step_on_gamma=ph["on-gamma"])
        observed = tr.crossing(ph["eos"])
        err = observed - predicted
        tolerance = tol.ENTRY_LOG_RTOL / (2 * cfg.entry_eta_lambda)
        scaled = abs(err) / tolerance
        power = (abs(err) + tolerance) / d if d > 0 else float("inf")
        saved_eta_lambda = {"wd_lr": cfg.entry_eta_lambda}  # names: saved -- report.json's key for ηλ, kept for old reports
        return result(session, name, Status.PASS if scaled <= 1 else Status.FAIL, predicted, observed, tolerance,
                      scaled, f"EoS begins at step {observed:.3f} vs predicted {predicted:.3f} (on Γ at step "
                      f"{ph['on-gamma']}; first EoS step {ph['eos']}; phase 2 lasts {d:.1f} steps)",
                      {"phases": ph, **saved_eta_lambda, "duration": d, "on_gamma_rtol": rho}, [tr],
                      {"entry step (duration)": power})

    return guard(session, name, run)


CHECK = Check(
    name="eos-entry", position=30, group="gdwd", run=check_eos_entry, cost=_costs.entry,
    summary="From a random start above the EoS norm, the edge of stability begins at the predicted step.")
