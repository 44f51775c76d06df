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

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from srflow import theory
from srflow.theory import (alp_flip_step, check_hyperparameters, equilibrium_norm_sq, manifold_point,
                    oscillation_amplitude_sq, project_to_manifold, sharpness, top_eigenpairs)
from srflow.theory.cluster_flow import cluster_point
from srflow.theory.manifold import GAP_RTOL, AssumptionViolated, tangent_space
from srflow.theory.sharpness import is_dense
from srflow.toy_models._validate import as_vector

#: the run is too far from Γ for "Φ(w̄_t) follows the flow" to mean anything when ‖w̄ - Φ(w̄)‖² exceeds this
#: (the EoS oscillation has ‖w̄ - Φ‖² ≈ a² ≤ ηλ/2; 0.05 is a 13° swing)
MAX_OFFSET_SQ = 0.05

ALGORITHMS = ("gdwd", "gd", "ngd", "sqrt", "ngd-sphere", "sqrt-sphere")


@dataclass
class Trajectory:
    """Records of one run; arrays have one entry per recorded step."""

    algorithm: str
    lr: float
    wd: float
    steps: np.ndarray
    loss: np.ndarray
    norm_sq: np.ndarray
    sharpness: np.ndarray
    sharpness_mid: np.ndarray
    sharpness_next: np.ndarray
    grad_norm: np.ndarray
    clock: np.ndarray
    phi: np.ndarray | None = None
    phi_sharpness: np.ndarray | None = None
    offset_sq: np.ndarray | None = None
    diverged: str = ""
    monitor: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: the intrinsic clock s_t at every step t = 0, 1, …, steps (cheap, and dense enough that a maximum over t
    #: is not at the mercy of the record cadence)
    clock_steps: np.ndarray | None = None
    w_last: np.ndarray | None = None  # the last iterate (where the run ended or diverged)
    #: w_t at every record (records × D), kept only on request (``simulate_batch(..., keep_iterates=True)``)
    iterates: np.ndarray | None = None

    def phases(self, on_gamma_rtol: float = 1e-6) -> dict:
        """Phase markers: the first recorded step at which each criterion fired (None if never).

        * ``on-gamma``: ‖∇L(w_t)‖ ≤ ``on_gamma_rtol``·λ₁(∇²L(w_t))·‖w_t‖ (degree-0 distance from Γ: GD has
          converged to the manifold; phase 1 → 2);
        * ``eos``: η·λ₁(∇²L(w_t)) ≥ 2(1 - ηλ), after ``on-gamma`` (the norm has decayed to the EoS norm;
          phase 2 → 3).
        """
        near = self.grad_norm <= on_gamma_rtol * self.sharpness * np.sqrt(self.norm_sq)
        first = int(np.argmax(near)) if near.any() else None
        out = {"on-gamma": None if first is None else int(self.steps[first]), "eos": None}
        if first is not None:
            at_eos = self.sharpness[first:] >= theory.eos_threshold(self.lr, self.wd)
            if at_eos.any():
                out["eos"] = int(self.steps[first + int(np.argmax(at_eos))])
        return out

    def crossing(self, step: int) -> float:
        """The real-valued step at which η·λ₁(∇²L(w_t)) crosses 2(1 - ηλ), between the records before and at
        ``step`` (a phase marker), by linear interpolation of log λ₁: exact while the norm decays
        geometrically on Γ, where λ₁(∇²L(w_t)) = λ₁(w̄)/‖w_t‖² grows geometrically."""
        i = int(np.searchsorted(self.steps, step))
        if i == 0:
            return float(step)
        y0, y1 = np.log(self.lr * self.sharpness[i - 1:i + 1])
        frac = (np.log(self.lr * theory.eos_threshold(self.lr, self.wd)) - y0) / (y1 - y0)
        return float(self.steps[i - 1] + frac * (self.steps[i] - self.steps[i - 1]))

    @property
    def tau(self) -> np.ndarray:
        """τ = ηλt (GD+WD) or η²t (the ALP algorithms)."""
        return self.steps * (self.lr * self.wd if self.wd > 0 else self.lr**2)

    def to_xarray(self):
        """The records as an ``xarray.Dataset`` on dimension ``step`` (the recorded steps), with coordinate ``tau``
        (``Trajectory.tau``); Φ(w̄_t) as ``phi`` (step, component) when tracked; the intrinsic clock at every step
        as ``clock_steps`` on dimension ``t``; ``algorithm``, ``lr``, ``wd``, ``diverged``, ``monitor`` (joined by
        newlines) and ``seconds`` in the attrs."""
        import xarray as xr

        names = ("loss", "norm_sq", "sharpness", "sharpness_mid", "sharpness_next", "grad_norm", "clock",
                 "phi_sharpness", "offset_sq")
        data = {k: ("step", getattr(self, k)) for k in names if getattr(self, k) is not None}
        if self.phi is not None:
            data["phi"] = (("step", "component"), self.phi)
        if self.clock_steps is not None:
            data["clock_steps"] = ("t", self.clock_steps)
        return xr.Dataset(data, coords={"step": self.steps, "tau": ("step", self.tau)},
                          attrs={"algorithm": self.algorithm, "lr": self.lr, "wd": self.wd, "diverged": self.diverged,
                                 "monitor": "\n".join(self.monitor), "seconds": self.seconds})


def _step(model, algorithm: str, w: np.ndarray, g: np.ndarray, lr: float, wd: float) -> np.ndarray:
    """One update from w with g = ∇L(w)."""
    if algorithm in ("gdwd", "gd"):
        return (1.0 - lr * wd) * w - lr * g
    if algorithm.startswith("ngd"):
        new = w - lr * g / np.linalg.norm(g)
    else:
        new = w - lr * g / (2.0 * np.sqrt(model.loss(w)))
    return new / np.linalg.norm(new) if algorithm.endswith("sphere") else new


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal and not quiet."""

    def __init__(self, total: int, label: str, quiet: bool):
        self.total, self.label = total, label
        self.on = not quiet and sys.stderr.isatty()
        self.last = 0.0

    def update(self, t: int):
        if self.on and (time.monotonic() - self.last > 0.2 or t == self.total):
            self.last = time.monotonic()
            done = int(30 * t / max(self.total, 1))
            sys.stderr.write(f"\r{self.label} [{'#' * done}{'.' * (30 - done)}] {t}/{self.total}")
            if t == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def record_phi(model, w: np.ndarray, t: int, rec: dict, monitor: list[str]) -> None:
    """Append Φ(w̄_t), λ₁(∇²L(Φ)) and ‖w̄_t - Φ(w̄_t)‖² to ``rec`` ("phi", "phi_sharp", "offset"); note a
    missing spectral gap at Φ, a distance from Γ above MAX_OFFSET_SQ or a failed projection in ``monitor``."""
    try:
        theta = project_to_manifold(model, w).theta
        offset = float(np.sum((w / np.linalg.norm(w) - theta) ** 2))
        if is_dense(model):  # the cluster theory (docs/theory.md §4c): a tie is no violation, the rank condition is
            vals = np.linalg.eigvalsh(model.hess(theta))
            tangent_space(model, theta)  # raises AssumptionViolated naming the rank condition
        else:  # the matrix-free flow is the simple one: it needs a gap
            vals = top_eigenpairs(model, theta, k=min(2, model.dim)).values[::-1]
            gap = float(vals[-1] - vals[-2]) if model.dim > 1 else np.inf
            if gap <= GAP_RTOL * vals[-1]:
                monitor.append(f"assumption violated: spectral gap {gap:.2g} (λ₁ = {vals[-1]:.3g}) at Φ(w̄) "
                               f"at step {t}")
        if offset > MAX_OFFSET_SQ:
            monitor.append(f"far from Γ: ‖w̄ - Φ(w̄)‖² = {offset:.2g} at step {t}")
        rec["phi"].append(theta)
        rec["phi_sharp"].append(float(vals[-1]))
        rec["offset"].append(offset)
    except AssumptionViolated as exc:
        monitor.append(f"{exc} (step {t})")
        rec["phi"].append(np.full(model.dim, np.nan))
        rec["phi_sharp"].append(np.nan)
        rec["offset"].append(np.nan)


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
        from .compiled import simulate_compiled
        return simulate_compiled(model, w, lr, steps, wd=wd, algorithm=algorithm, every=every, track_phi=track_phi,
                                 quiet=quiet, label=label, pairs=pairs, dense_clock=dense_clock)
    rec = {k: [] for k in ("steps", "loss", "norm_sq", "sharpness", "sharpness_mid", "sharpness_next", "grad_norm", "clock", "phi", "phi_sharp", "offset")}
    clock, diverged, monitor = 0.0, "", []
    clock_steps = np.empty(steps + 1)
    bar = _Progress(steps, label or f"{algorithm} lr={lr:g} wd={wd:g}", quiet)
    start = time.perf_counter()
    for t in range(steps + 1):
        try:
            g = model.grad(w)
            new = _step(model, algorithm, w, g, lr, wd)
        except (ValueError, FloatingPointError) as exc:
            diverged = f"diverged at step {t}: {exc}"
            break
        if not np.all(np.isfinite(new)) or not np.isfinite(new @ new):
            diverged = f"diverged at step {t + 1}: ‖w‖² = {float(np.nan_to_num(new @ new, nan=np.inf)):.3g} (non-finite)"
            break
        if t % every == 0 or t == steps:
            rec["steps"].append(t)
            rec["loss"].append(model.loss(w))
            rec["norm_sq"].append(float(w @ w))
            rec["sharpness"].append(sharpness(model, w))
            if pairs:
                rec["sharpness_mid"].append(sharpness(model, 0.5 * (w + new)))
                rec["sharpness_next"].append(sharpness(model, new))
            else:
                rec["sharpness_mid"].append(np.nan)
                rec["sharpness_next"].append(np.nan)
            rec["grad_norm"].append(float(np.linalg.norm(g)))
            rec["clock"].append(clock)
            if track_phi:
                record_phi(model, w, t, rec, monitor)
        clock_steps[t] = clock
        if t == steps:
            break
        u, v = w / np.linalg.norm(w), new / np.linalg.norm(new)
        clock += float((v - u) @ (v - u))
        w = new
        bar.update(t + 1)
    arr = {k: np.array(v) for k, v in rec.items()}
    return Trajectory(algorithm, lr, wd, arr["steps"], arr["loss"], arr["norm_sq"], arr["sharpness"],
                      arr["sharpness_mid"], arr["sharpness_next"], arr["grad_norm"], arr["clock"], arr["phi"] if track_phi else None,
                      arr["phi_sharp"] if track_phi else None, arr["offset"] if track_phi else None, diverged,
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
