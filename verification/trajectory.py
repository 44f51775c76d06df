"""The record of a run, shared by the simulators (``verification.simulate``, the numpy reference, and
``verification.compiled``, the JAX engine) and read by the checks: ``Trajectory``, the algorithm names, the Φ
monitor of a record (``record_phi``) and the progress bar.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from srflow import theory
from srflow.theory import project_to_manifold, top_eigenpairs
from srflow.theory.gamma import Diverged
from srflow.theory.manifold import GAP_RTOL, AssumptionViolated, tangent_space
from srflow.theory.sharpness import is_dense

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
    lam1: np.ndarray
    lam1_mid: np.ndarray
    lam1_next: np.ndarray
    grad_norm: np.ndarray
    clock: np.ndarray
    phi: np.ndarray | None = None
    phi_lam1: np.ndarray | None = None
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
        near = self.grad_norm <= on_gamma_rtol * self.lam1 * np.sqrt(self.norm_sq)
        first = int(np.argmax(near)) if near.any() else None
        out = {"on-gamma": None if first is None else int(self.steps[first]), "eos": None}
        if first is not None:
            at_eos = self.lam1[first:] >= theory.eos_threshold(self.lr, self.wd)
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
        y0, y1 = np.log(self.lr * self.lam1[i - 1:i + 1])
        frac = (np.log(self.lr * theory.eos_threshold(self.lr, self.wd)) - y0) / (y1 - y0)
        return float(self.steps[i - 1] + frac * (self.steps[i] - self.steps[i - 1]))

    @property
    def eta_lambda(self) -> float:
        """ηλ of the run: η·λ (0 without weight decay). ``wd`` = λ is what the step itself uses."""
        return self.lr * self.wd

    @property
    def tau(self) -> np.ndarray:
        """τ = ηλt (GD+WD) or η²t (the ALP algorithms)."""
        return self.steps * (self.eta_lambda if self.wd > 0 else self.lr**2)

    def to_xarray(self):
        """The records as an ``xarray.Dataset`` on dimension ``step`` (the recorded steps), with coordinate ``tau``
        (``Trajectory.tau``); Φ(w̄_t) as ``phi`` (step, component) when tracked; the intrinsic clock at every step
        as ``clock_steps`` on dimension ``t``; ``algorithm``, ``lr``, ``wd``, ``diverged``, ``monitor`` (joined by
        newlines) and ``seconds`` in the attrs."""
        import xarray as xr

        names = ("loss", "norm_sq", "lam1", "lam1_mid", "lam1_next", "grad_norm", "clock", "phi_lam1", "offset_sq")
        data = {k: ("step", getattr(self, k)) for k in names if getattr(self, k) is not None}
        if self.phi is not None:
            data["phi"] = (("step", "component"), self.phi)
        if self.clock_steps is not None:
            data["clock_steps"] = ("t", self.clock_steps)
        return xr.Dataset(data, coords={"step": self.steps, "tau": ("step", self.tau)},
                          attrs={"algorithm": self.algorithm, "lr": self.lr, "wd": self.wd, "diverged": self.diverged,
                                 "monitor": "\n".join(self.monitor), "seconds": self.seconds})


class Progress:
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
    """Append Φ(w̄_t), λ₁(∇²L(Φ)) and ‖w̄_t - Φ(w̄_t)‖² to ``rec`` ("phi", "phi_lam1", "offset"); note a
    failed rank condition (dense models: a tie is the cluster theory's, docs/theory.md §4c) or a missing spectral gap
    (matrix-free: the simple flow) at Φ, a distance from Γ above MAX_OFFSET_SQ or a failed projection in
    ``monitor``. A
    projection that overflows raises ``theory.gamma.Diverged`` naming step ``t``."""
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
        rec["phi_lam1"].append(float(vals[-1]))
        rec["offset"].append(offset)
    except Diverged as exc:
        raise Diverged(f"{exc} (Φ of the iterate at step {t})") from None
    except AssumptionViolated as exc:
        monitor.append(f"{exc} (step {t})")
        rec["phi"].append(np.full(model.dim, np.nan))
        rec["phi_lam1"].append(np.nan)
        rec["offset"].append(np.nan)
