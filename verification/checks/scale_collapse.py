"""scale-collapse: (η, λ) from w₀ and (cη, λ/c) from √c·w₀ give the same run in τ = ηλt."""

from __future__ import annotations

from typing import Callable

import numpy as np

import srflow.theory as th

from .. import tolerances as tol
from ..session import CheckResult, Session, guard, result
from ..simulate import eos_start, simulate
from ..verdicts import Status
from ._record import Check


def check_scale_collapse(session: Session, rescale: Callable | None = None) -> CheckResult:
    """GD+WD with (η, λ) from w₀ and with (cη, λ/c) from ``rescale``(c)·w₀ (default ``theory.collapse_factor``: √c):
    by scale invariance
    (∇L(√c w) = ∇L(w)/√c) the second run is √c times the first, step for step (same ηλ, so the same τ).
    Observed: max relative difference of ‖w‖²/c and of the loss over the run; tolerance COLLAPSE_RTOL
    (round-off). δ*: the smallest relative error in the predicted factor √c that the tolerance rejects.

    Round-off makes the two runs differ by ~1e-16 per step, and chaotic dynamics (a network at EoS) amplify that
    like any other perturbation. So a twin of the first run from w₀(1 + TWIN_RTOL·ξ) measures the amplification
    twin(t)/twin(s) from step s to t, and the runs are compared only over the records before the round-off of every
    step so amplified, Σ_{s ≤ t} TWIN_RTOL·twin(t)/twin(s), exceeds COLLAPSE_RTOL/CHAOS_MARGIN: a wrong factor
    shows from the first record on, round-off amplified by chaos only after that horizon. A horizon
    shorter than CHAOS_MIN_FRACTION of the run is ``inconclusive``."""
    name = "scale-collapse"

    def rel_dev(x, y, c=1.0):
        """Per record: max of the relative differences of ‖w‖²/c and of the loss of run y against run x."""
        return np.maximum(np.abs(y.norm_sq / (c * x.norm_sq) - 1),
                          np.abs(y.loss - x.loss) / np.maximum(np.abs(x.loss), 1e-300))

    def run():
        cfg, m, c = session.config, session.model, session.config.collapse_factor
        eta_lambda = cfg.ladder[0]
        w0 = eos_start(m, session.theta0, cfg.lr, eta_lambda / cfg.lr)
        every = max(1, cfg.collapse_steps // 100)
        xi = session.rng("collapse twin").standard_normal(m.dim)
        twin_w0 = w0 + tol.TWIN_RTOL * np.linalg.norm(w0) * xi / np.linalg.norm(xi)
        factor = (rescale or th.collapse_factor)(c)
        a, b, twin = (simulate(m, w, lr, cfg.collapse_steps, wd=eta_lambda / lr, every=every, pairs=False, quiet=True)
                      for w, lr in ((w0, cfg.lr), (factor * w0, c * cfg.lr), (twin_w0, cfg.lr)))
        for tr in (a, b, twin):
            if tr.diverged:
                raise RuntimeError(f"scale-collapse run η={tr.lr:g}: {tr.diverged}")
        # round-off enters the two runs at every step, not once: each step's share (≈ TWIN_RTOL, the twin's start
        # perturbation) is amplified from its step s to record t as the twin's was, by twin(t)/twin(s); the runs are
        # compared while that sum, Σ_{s ≤ t} TWIN_RTOL·twin(t)/twin(s), stays below COLLAPSE_RTOL/CHAOS_MARGIN (a
        # slowly chaotic run accumulates ~1/γ steps of round-off at growth rate γ per step: 16 on a zoo LN net, where
        # the twin's own deviation alone let the runs differ by 1.1e-8 at the horizon)
        twin_dev = np.maximum(rel_dev(a, twin), tol.TWIN_RTOL)
        per_record = np.diff(np.concatenate([[0], a.steps])) / twin_dev
        accumulated = tol.TWIN_RTOL * twin_dev * np.cumsum(per_record)
        strays = accumulated > tol.COLLAPSE_RTOL / tol.CHAOS_MARGIN
        horizon = int(np.argmax(strays)) if strays.any() else len(a.steps)
        setting = (f"(η, λ) = ({cfg.lr:g}, {eta_lambda / cfg.lr:g}) vs ({c * cfg.lr:g}, {eta_lambda / (c * cfg.lr):g}) over "
                   f"{cfg.collapse_steps} steps")
        details = {"factor": c, "horizon_steps": int(a.steps[horizon - 1]) if horizon else 0,
                   "twin_max_deviation": float(np.max(rel_dev(a, twin)))}
        if horizon < max(2, tol.CHAOS_MIN_FRACTION * len(a.steps)):
            return result(session, name, Status.INCONCLUSIVE, 0.0, None, tol.COLLAPSE_RTOL, float("nan"),
                          f"{setting}: chaotic -- a twin started {tol.TWIN_RTOL:g} (relative) away strays by more than "
                          f"{tol.COLLAPSE_RTOL / tol.CHAOS_MARGIN:g} by step {int(a.steps[horizon])} (and by "
                          f"{details['twin_max_deviation']:.1e} at most), so round-off alone separates the two runs; "
                          "shorten the run (collapse_steps) to test the collapse", details, [a, b, twin])
        dev_t = rel_dev(a, b, c)[:horizon]
        norm_dev = float(np.max(np.abs(b.norm_sq / (c * a.norm_sq) - 1)[:horizon]))
        dev = float(np.max(dev_t))
        scaled = dev / tol.COLLAPSE_RTOL
        # the factor √c(1 + δ) predicts ‖w_b‖² = c(1 + δ)²‖w_a‖²: rejected once |(1 + dev)/(1 + δ)² - 1| > tol
        power = float(np.sqrt((1 + norm_dev) / (1 - tol.COLLAPSE_RTOL)) - 1) if scaled <= 1 else float("nan")
        within = "" if horizon == len(a.steps) else f" (the first {details['horizon_steps']}, before chaos: round-off " \
            f"of every step, amplified as a twin started {tol.TWIN_RTOL:g} away, exceeds " \
            f"{tol.COLLAPSE_RTOL / tol.CHAOS_MARGIN:g} after that)"
        return result(session, name, Status.PASS if scaled <= 1 else Status.FAIL, 0.0, dev, tol.COLLAPSE_RTOL, scaled,
                      f"{setting}{within}: max relative difference {dev:.1e}", details, [a, b, twin],
                      {"scale factor √c": abs(power)})

    return guard(session, name, run)


CHECK = Check(
    name="scale-collapse", position=40, group="gdwd", run=check_scale_collapse,
    cost=lambda config: {"collapse": (3 * config.collapse_steps, 0)},
    summary="GD+WD with (η, λ) from w₀ and with (cη, λ/c) from √c·w₀ are the same run, step for step, to round-off.")
