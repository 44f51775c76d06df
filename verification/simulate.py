"""Simulators: GD with weight decay, GD, normalized GD and GD on √L, on any protocol model.

Updates (η = ``lr``, λ = ``wd``, g = ∇L(w_t)):

* ``gdwd``        w' = (1 - ηλ) w - η g                     (``gd`` is λ = 0)
* ``ngd``         w' = w - η g/‖g‖
* ``sqrt``        w' = w - η ∇√L = w - η g/(2√L)
* ``ngd-sphere``, ``sqrt-sphere``: the same step followed by w' ← w'/‖w'‖, i.e. the algorithm on the unit
  sphere, where Γ is a fixed manifold as in ALP's setting (on a scale-invariant loss the unprojected
  versions grow the norm and follow the no-WD clock instead; docs/theory.md §5).

Recorded every ``every`` steps (and at the last): loss, ‖w‖², λ₁(∇²L(w_t)), λ₁(∇²L(w_{t+1})) (so that
averages cover both phases of the period-2 oscillation: λ₁ has a first-order term ±a∇³L[v₁,v₁,v₁] that
only cancels over a pair) and λ₁ at the midpoint (w_t + w_{t+1})/2, and with ``track_phi`` Φ(w̄_t), the spherical sharpness λ₁(∇²L(Φ)) and ‖w̄_t - Φ(w̄_t)‖² (≈ a², the oscillation); the monitors then
note (in ``monitor``, with the step) a failure of the rank condition at Φ (dense models: a tie of the top eigenvalue
is no violation, the flow goes through it as the cluster flow, docs/theory.md §4c) or a spectral gap
λ₁ - λ₂ ≤ GAP_RTOL·λ₁ at Φ (matrix-free models, whose flow is the simple one), a distance from Γ above
MAX_OFFSET_SQ, or a failed projection. The intrinsic clock
s_t = Σ_{k<t} ‖w̄_{k+1} - w̄_k‖² is accumulated every step. A non-finite iterate or loss stops the run and
is reported with its step and quantity (``diverged``); results up to there are kept.
"""

from __future__ import annotations

import time

import numpy as np

from srflow.theory import (alp_flip_step, check_hyperparameters, equilibrium_norm_sq, manifold_point,
                           oscillation_amplitude_sq, oscillation_curvature, sharpness)
from srflow.theory.cluster_flow import cluster_point
from srflow.theory.manifold import AssumptionViolated
from srflow.theory.sharpness import is_dense
from srflow.toy_models.validate import as_vector

from srflow.theory.gamma import Diverged, finite

from .trajectory import ALGORITHMS, MAX_OFFSET_SQ, Progress, Trajectory, record_phi

__all__ = ["simulate", "oscillation_curvatures", "eos_start", "two_cycle_start", "Trajectory", "ALGORITHMS", "MAX_OFFSET_SQ", "record_phi"]

def _step(model, algorithm: str, w: np.ndarray, g: np.ndarray, lr: float, wd: float) -> np.ndarray:
    """One update from w with g = ∇L(w)."""
    if algorithm in ("gdwd", "gd"):
        return (1.0 - lr * wd) * w - lr * g
    if algorithm.startswith("ngd"):
        new = w - lr * g / np.linalg.norm(g)
    else:
        new = w - lr * g / (2.0 * np.sqrt(model.loss(w)))
    return new / np.linalg.norm(new) if algorithm.endswith("sphere") else new


def oscillation_curvatures(model, w, lr: float, wd: float, count: int = 2) -> np.ndarray:
    """The curvature along the oscillation RQ(H̄_t, d_t) (``theory.oscillation_curvature``) at t = 0, …, count - 1
    of GD+WD (``_step``) from w_0 = ``w``: count + 1 steps, one gradient each. With count = 2 the mean covers both
    phases of the period-2 flip."""
    check_hyperparameters(lr, wd)
    count = int(count)
    if count < 1:
        raise ValueError(f"count: expected a positive number of steps, got {count!r}")
    ws = [as_vector(w, "w", model.dim).copy()]
    for _ in range(count + 1):
        ws.append(_step(model, "gdwd", ws[-1], model.grad(ws[-1]), lr, wd))
    d = np.diff(np.array(ws), axis=0)
    return np.array([oscillation_curvature(d[i], d[i + 1], lr, wd) for i in range(count)])


def _record(model, w: np.ndarray, new: np.ndarray, g: np.ndarray, pairs: bool) -> dict:
    """The records at w_t (``new`` = w_{t+1}, ``g`` = ∇L(w_t)); ``theory.gamma.Diverged`` if a Hessian overflows."""
    with np.errstate(over="ignore"):
        loss = finite(model.loss(w), "L(w)", f"at ‖w‖ = {np.linalg.norm(w):.4g}")
    lam1 = sharpness(model, w)
    mid, nxt = (sharpness(model, 0.5 * (w + new)), sharpness(model, new)) if pairs else (np.nan, np.nan)
    return {"loss": float(loss), "norm_sq": float(w @ w), "lam1": lam1, "lam1_mid": mid, "lam1_next": nxt,
            "grad_norm": float(np.linalg.norm(g))}


def simulate(model, w0, lr: float, steps: int, wd: float = 0.0, algorithm: str = "gdwd", every: int = 100,
             track_phi: bool = False, quiet: bool = True, label: str = "", pairs: bool = True,
             engine: str = "auto", dense_clock: bool = True) -> Trajectory:
    """Run ``algorithm`` for ``steps`` steps from ``w0``; see the module docstring. ``pairs=False`` skips
    the λ₁ records at w_{t+1} and at the midpoint (NaN), for runs that record every step. ``engine``:
    "numpy" (this loop, the reference), "jax" (``verification.compiled``, for a JAX model), or "auto" (jax
    when the model has ``jax_loss``)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: unknown {algorithm!r}; valid are {', '.join(ALGORITHMS)}")
    check_hyperparameters(lr, wd)
    if algorithm != "gdwd" and wd != 0:
        raise ValueError(f"wd: only 'gdwd' uses weight decay, got wd={wd!r} with algorithm={algorithm!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps!r}")
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every: expected a positive integer (record every that many steps), got {every!r}")
    w = as_vector(w0, "w0", model.dim).copy()
    if not np.any(w):
        raise ValueError("w0: expected a nonzero vector (the loss is scale-invariant, w = 0 is undefined)")
    with np.errstate(over="ignore", under="ignore"):
        norm_sq = float(w @ w)
    if not 0 < norm_sq < np.inf:
        raise ValueError(f"w0: ‖w0‖² = {norm_sq:g} is not representable in float64 (largest |entry| "
                         f"{np.max(np.abs(w)):.3g}); expected entries between ~1e-150 and ~1e150")
    if engine not in ("auto", "numpy", "jax"):
        raise ValueError(f"engine: expected 'auto', 'numpy' or 'jax', got {engine!r}")
    if engine == "jax" or (engine == "auto" and hasattr(model, "jax_loss")):
        from . import device_phi  # noqa: F401 -- Φ on the device (it sets compiled.PHI_RECORDS)
        from .compiled import simulate_compiled
        return simulate_compiled(model, w, lr, steps, wd=wd, algorithm=algorithm, every=every, track_phi=track_phi,
                                 quiet=quiet, label=label, pairs=pairs, dense_clock=dense_clock)
    rec = {k: [] for k in ("steps", "loss", "norm_sq", "lam1", "lam1_mid", "lam1_next", "grad_norm", "clock", "phi", "phi_lam1", "offset")}
    clock, diverged, monitor = 0.0, "", []
    clock_steps = np.empty(steps + 1)
    bar = Progress(steps, label or f"{algorithm} lr={lr:g} wd={wd:g}", quiet)
    start = time.perf_counter()
    u = w / np.linalg.norm(w)  # w̄_t, carried over from the previous step's w̄_{t+1} (the same numbers)
    for t in range(steps + 1):
        try:
            g = np.asarray(model.grad(w), dtype=np.float64)
            if not np.isfinite(g).all():  # the message (a norm and a format) only when it is needed
                g = finite(g, "∇L(w_t)", f"at ‖w_t‖ = {np.linalg.norm(w):.4g}")
            new = _step(model, algorithm, w, g, lr, wd)
        except (ValueError, FloatingPointError, Diverged) as exc:
            diverged = f"diverged at step {t}: {exc}"
            break
        if not np.isfinite(new).all() or not np.isfinite(new @ new):
            diverged = f"diverged at step {t + 1}: ‖w‖² = {float(np.nan_to_num(new @ new, nan=np.inf)):.3g} (non-finite)"
            break
        if t % every == 0 or t == steps:
            try:
                row = _record(model, w, new, g, pairs)
                if track_phi:
                    record_phi(model, w, t, rec, monitor)
            except Diverged as exc:
                diverged = f"diverged at step {t}: {exc}"
                break
            rec["steps"].append(t)
            for key, value in row.items():
                rec[key].append(value)
            rec["clock"].append(clock)
        clock_steps[t] = clock
        if t == steps:
            break
        v = new / np.linalg.norm(new)
        clock += float((v - u) @ (v - u))
        w, u = new, v
        bar.update(t + 1)
    arr = {k: np.array(v) for k, v in rec.items()}
    return Trajectory(algorithm, lr, wd, arr["steps"], arr["loss"], arr["norm_sq"], arr["lam1"],
                      arr["lam1_mid"], arr["lam1_next"], arr["grad_norm"], arr["clock"], arr["phi"] if track_phi else None,
                      arr["phi_lam1"] if track_phi else None, arr["offset"] if track_phi else None, diverged,
                      monitor, time.perf_counter() - start,
                      clock_steps=clock_steps[:t + 1] if not diverged else clock_steps[:t], w_last=w)


def eos_start(model, theta0, lr: float, wd: float, kick="amplitude", rng: np.random.Generator | None = None):
    """w₀ at the EoS norm ‖w₀‖² = ηλ₁(θ₀)/(2(1 - ηλ)) above θ₀ ∈ Γ, kicked along v₁ by ``kick``: the predicted
    amplitude a = √((ηλ/2)·4/(4+G)) ("amplitude"), or a number. Without a kick an exactly aligned state never
    starts oscillating (docs/theory.md §4); a random kick direction needs ``rng``."""
    try:
        mp = manifold_point(model, theta0)
        lam1, G, v1, theta = mp.lam1, mp.G, mp.v1, mp.theta
    except AssumptionViolated:  # a tie at θ₀: kick along the loaded directions, Σ ∝ P (docs/theory.md §4c)
        if not is_dense(model):
            raise
        cp = cluster_point(model, theta0)
        lam1, G, theta = cp.lam1, cp.G, cp.theta / np.linalg.norm(cp.theta)
        pw, pv = np.linalg.eigh(cp.P)
        v1 = cp.U @ (pv @ np.sqrt(np.clip(pw, 0.0, None)))
    a = np.sqrt(oscillation_amplitude_sq(lr, wd, G)) if kick == "amplitude" else float(kick)
    direction = v1 if rng is None else rng.standard_normal(model.dim)
    direction = direction - (direction @ theta) * theta
    direction /= np.linalg.norm(direction)
    return np.sqrt(equilibrium_norm_sq(lr, wd, lam1)) * (theta + a * direction)


def two_cycle_start(model, theta0, lr: float, algorithm: str) -> np.ndarray:
    """A unit start on the period-2 orbit of normalized GD / GD on √L across Γ at θ₀ along v₁.

    Near θ₀, L ≈ ½λ₁x² along v₁. Normalized GD steps ±η, so its 2-cycle is x = ±η/2; GD on √L steps
    η·√(λ₁/2), so x = ±(η/2)√(λ₁/2). Starting there avoids the O(1) transient (and the 0/0 of ∇L/‖∇L‖ at
    θ₀ itself)."""
    mp = manifold_point(model, theta0)
    w = mp.theta + 0.5 * alp_flip_step(lr, mp.lam1, algorithm) * mp.v1
    return w / np.linalg.norm(w)
