"""The frame the theorem checks run in: configuration, the result record, and the per-model session.

Every check returns a ``CheckResult`` with ``status`` "pass", "fail" or "assumption-violated" (a theory
assumption does not hold on this model or run: said where and why), the predicted and observed values, the
tolerance, the scaled error (pass ≤ 1), and summaries of the runs behind it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from theory import AssumptionViolated, project_to_manifold, sharpness_reduction_flow
from toy_models.protocol import model_name

from .simulate import Trajectory, eos_start, simulate


@dataclass(frozen=True)
class VerifyConfig:
    """Hyperparameters of ``srflow verify``.

    * ``lr``: η of the GD+WD runs; ``ladder``: the values of ηλ; ``tau_end``: flow horizon in τ = ηλt;
      ``records``: records per run.
    * ``entry_wd_lr``, ``entry_norm_ratio``: the eos-entry run (ηλ, and ‖w₀‖² over the EoS norm).
    * ``collapse_factor``, ``collapse_steps``: scale-collapse runs (η, λ) and (cη, λ/c).
    * ``nowd_ladder``: the values of ε for GD without WD, started at η_eff λ₁ = 2(1 + ε); ``nowd_kick``.
    * ``alp_ladder``: the values of η for normalized GD and GD on √L; ``alp_tau_end``: horizon in τ = η²t.
    """

    lr: float = 0.1
    ladder: tuple[float, ...] = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
    tau_end: float = 0.3
    records: int = 25
    entry_wd_lr: float = 1e-3
    entry_norm_ratio: float = 5.0
    collapse_factor: float = 3.0
    collapse_steps: int = 2000
    nowd_ladder: tuple[float, ...] = (0.2, 0.1, 0.05, 0.025)
    nowd_kick: float = 1e-3
    alp_ladder: tuple[float, ...] = (0.02, 0.01, 0.005, 0.0025, 0.00125)
    alp_tau_end: float = 0.1


QUICK = VerifyConfig(ladder=(1e-3, 3e-4, 1e-4, 3e-5), tau_end=0.2, records=15, collapse_steps=500,
                     nowd_ladder=(0.2, 0.1, 0.05), alp_ladder=(0.02, 0.01, 0.005, 0.0025), alp_tau_end=0.05)
FULL = VerifyConfig()


@dataclass
class CheckResult:
    name: str
    model: str
    status: str
    predicted: object
    observed: object
    tolerance: object
    scaled_error: float
    message: str = ""
    details: dict = field(default_factory=dict)
    runs: list = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    return x


def run_summary(tr: Trajectory) -> dict:
    return {"algorithm": tr.algorithm, "lr": tr.lr, "wd": tr.wd, "steps": int(tr.steps[-1]) if len(tr.steps) else 0,
            "seconds": round(tr.seconds, 3), "diverged": tr.diverged, "monitor": tr.monitor[:5]}


def fit_exponent(x, y) -> tuple[float, float]:
    """Least-squares slope p of log y = p log x + c and its standard error (inf with fewer than 3 points)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    a = np.vstack([lx, np.ones_like(lx)]).T
    coef, *_ = np.linalg.lstsq(a, ly, rcond=None)
    if len(lx) < 3:
        return float(coef[0]), float("inf")
    sigma2 = float(np.sum((ly - a @ coef) ** 2)) / (len(lx) - 2)
    return float(coef[0]), float(np.sqrt(sigma2 / np.sum((lx - lx.mean()) ** 2)))


def falls(p: float, se: float) -> bool:
    """An error 'falls' with the small parameter when its fitted exponent is > 0 by two standard errors."""
    return p - 2 * se > 0


class Session:
    """One model under verification: its start point on Γ and the runs shared between checks (cached)."""

    def __init__(self, model, config: VerifyConfig, rng: np.random.Generator, quiet: bool = True):
        self.model, self.config, self.rng, self.quiet = model, config, rng, quiet
        self.name = model_name(model)
        self._cache: dict = {}

    def cached(self, key, make: Callable):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def theta0(self) -> np.ndarray:
        """A point of Γ: ``model.minimizer`` when it exists, else Φ of a random start (descend to Γ)."""
        def make():
            if hasattr(self.model, "minimizer"):
                return self.model.minimizer(self.rng)
            return project_to_manifold(self.model, self.rng.standard_normal(self.model.dim)).theta
        return self.cached("theta0", make)

    def flow(self):
        """The canonical flow from θ₀ (cached), long enough for every check: s ≤ 2τ_end for GD+WD (log λ₁
        falls along the flow), s ≈ 2 log(1 + ε) for GD without WD, s ≤ τ·max(1, λ₁/2) for the ALP flows."""
        def make():
            cfg = self.config
            lam = float(np.linalg.eigvalsh(self.model.hess(self.theta0))[-1])
            s_end = max(2 * cfg.tau_end, 2.2 * np.log1p(max(cfg.nowd_ladder)), cfg.alp_tau_end * max(1.0, lam / 2)) + 0.05
            return sharpness_reduction_flow(self.model, self.theta0, s_end, n_out=401)
        return self.cached("flow", make)

    def ladder_runs(self) -> list[Trajectory]:
        """GD+WD from the EoS norm above θ₀, kicked by the predicted amplitude, one run per ηλ, to τ_end."""
        def make():
            cfg, runs = self.config, []
            for lw in cfg.ladder:
                wd, steps = lw / cfg.lr, int(round(cfg.tau_end / lw))
                w0 = eos_start(self.model, self.theta0, cfg.lr, wd)
                tr = simulate(self.model, w0, cfg.lr, steps, wd=wd, every=max(1, steps // cfg.records),
                              track_phi=True, quiet=self.quiet, label=f"{self.name} GD+WD ηλ={lw:g}")
                if tr.diverged:
                    raise RuntimeError(f"GD+WD at ηλ = {lw:g}: {tr.diverged}")
                runs.append(tr)
            return runs
        return self.cached("ladder", make)


def result(session: Session, name, status, predicted, observed, tolerance, scaled, message="", details=None,
           runs=()) -> CheckResult:
    return CheckResult(name, session.name, status, predicted, observed, tolerance, float(scaled), message,
                       details or {}, [run_summary(r) for r in runs])


def guard(session: Session, name: str, fn: Callable[[], CheckResult]) -> CheckResult:
    """Run a check; assumption violations and diverging runs become verdicts, not crashes."""
    try:
        return fn()
    except AssumptionViolated as exc:
        return result(session, name, "assumption-violated", None, None, None, float("nan"), f"assumption violated: {exc}")
    except RuntimeError as exc:
        return result(session, name, "fail", None, None, None, float("inf"), str(exc))
