"""The ALP algorithms on the sphere (normalized GD, GD on √L): the shared ladder check."""

from __future__ import annotations

from typing import Callable

import numpy as np

import srflow.theory as th

from .. import tolerances as tol
from ..ladder import ladder_result, rejected_by, run_ladder
from ..session import CheckResult, Session, guard, odd_stride, result
from ..simulate import Trajectory, simulate, two_cycle_start
from ..tracking import path_and_clock
from ..verdicts import Order, Status, resolving_power


def _alp_check(session: Session, name: str, algorithm: str, clock: Callable | None, order: Order) -> CheckResult:
    """ALP: the algorithm on the unit sphere from its 2-cycle at θ₀ for τ = η²t ∈ [0, alp_tau_end], for each η
    of ``alp_ladder`` (extended while not asymptotic): ``path`` (Φ vs ζ at the intrinsic clock) and ``clock``
    (s_t vs s(t) from ``clock``(flow, η), every step), each of the theory's ``order`` in η."""

    def run():
        cfg, m = session.config, session.model
        clk = clock or (th.normalized_gd_steps if algorithm.startswith("ngd") else th.sqrt_gd_steps)
        mp = th.manifold_point(m, session.theta0)
        if algorithm.startswith("sqrt"):
            floor = m.loss(session.theta0)
            if floor > 1e-12 * max(1.0, mp.lam1):
                return result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"),
                              f"assumption violated: GD on √L needs min L = 0; L(θ₀) = {floor:.3g}")
        # s ≤ τ·max(1, λ₁/2) along the flow (λ₁ falls), for a clock slowed by up to DELTA_MAX
        flow = session.flow(cfg.alp_tau_end * max(1.0, mp.lam1 / 2) / (1 - tol.DELTA_MAX) + 0.05)
        cache: dict = {}

        def simulate_lr(lr):
            if lr not in cache:
                steps = int(round(cfg.alp_tau_end / lr**2))
                tr = simulate(m, two_cycle_start(m, session.theta0, lr, algorithm), lr, steps, algorithm=algorithm,
                              every=odd_stride(steps, cfg.records), track_phi=True, quiet=session.quiet, pairs=False,
                              label=f"{session.name} {algorithm} η={lr:g}")
                if tr.diverged:
                    raise RuntimeError(f"{algorithm}, η = {lr:g}: {tr.diverged}")
                cache[lr] = tr
            return cache[lr]

        paths: dict = {}

        def errors(lr, factor=1.0, scale=1.0):
            return path_and_clock(simulate_lr(lr), flow, clk, (lr,), paths, factor, scale)

        orders = {"path": order, "clock": order}
        xs, rows, verdicts = run_ladder(session, cfg.alp_ladder, errors, orders,
                                     cost=lambda lr: cfg.alp_tau_end / lr**2)
        runs = [simulate_lr(x) for x in xs]
        powers = {
            "clock rate": resolving_power(rejected_by(xs, lambda d: [errors(x, scale=1 + d) for x in xs], orders)),
            "flow coefficient": resolving_power(rejected_by(xs, lambda d: [errors(x, factor=1 + d) for x in xs], orders)),
        }
        # the flip along v₁ on the smallest-η run, averaged over both phases of the 2-cycle (odd record stride):
        # ⟨‖w̄ - Φ‖²⟩/(δ/2)² = 1 on the symmetric cycle x = ±δ/2, 2(C² + (1 - C)²) on the split z₊ = Cδ,
        # z₋ = -(1 - C)δ (docs/theory.md §5b)
        tr = runs[-1]
        half = 0.5 * th.alp_flip_step(xs[-1], mp.lam1, algorithm)
        flip = float(np.nanmean(tr.offset_sq) / half**2)
        t111 = float(m.third(mp.theta, mp.v1, mp.v1) @ mp.v1) / mp.lam1
        extra = {"flip_ratio": flip, "T111_over_lam1": t111}
        split = _split_check(m, tr) if algorithm.startswith("sqrt") else None
        if split is not None:
            extra.update(split)
        res = ladder_result(session, name, xs, rows, verdicts, runs, powers, extra)
        res.message += f"; ∇³L[v₁,v₁,v₁]/λ₁ = {t111:.2g} at θ₀"
        if split is not None:  # reported, not judged: docs/theory.md §5b derives it for a special case only
            res.message += (f"; cycle split ⟨C⟩ = {split['split_measured']:.4f} (the special-case formula of docs/theory.md "
                            f"§5b gives {split['split_predicted']:.4f}; not part of the verdict)")
        return res

    return guard(session, name, run)


def _split_check(model, tr: Trajectory) -> dict:
    """GD on √L: the split C = max(|x₊|, |x₋|)/(|x₊| + |x₋|) of the 2-cycle, from ‖w̄ - Φ(w̄)‖ at consecutive records
    (odd stride: they alternate phases), and ``theory.sqrt_cycle_split`` at each record's τ and Φ, averaged over
    the second half of the run: the measured and special-case means, their difference and the largest deviation of
    one record. Information only: the formula of docs/theory.md §5b holds for one normal mode (on five random models
    it was off by 0.03-0.38), so it does not enter the verdict."""
    x = np.sqrt(tr.offset_sq)
    # pairs of consecutive records an odd number of steps apart (the last record may break the odd stride)
    pair = np.nonzero(np.diff(tr.steps) % 2 == 1)[0]
    measured = np.maximum(x[pair], x[pair + 1]) / (x[pair] + x[pair + 1])
    predicted = []
    for theta, tau in zip(tr.phi[pair + 1], tr.tau[pair + 1]):
        mp = th.manifold_point(model, theta)
        vals = np.linalg.eigvalsh(model.hess(theta))
        cubic = float(model.third(theta, mp.v1, mp.v1) @ mp.v1)
        predicted.append(th.sqrt_cycle_split(mp.lam1, cubic, vals[:-1] / mp.lam1, tr.lr, tau))
    half = len(measured) // 2
    m, p = measured[half:], np.array(predicted[half:])
    # the mean over the second half: at the plateau C saws about C* (it overshoots until the unstable mode has
    # grown, then drops back)
    return {"split_measured": float(np.mean(m)), "split_predicted": float(np.mean(p)),
            "split_error": float(abs(np.mean(m) - np.mean(p))),
            "split_max_deviation": float(np.max(np.abs(m - p)))}
