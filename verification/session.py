"""The frame the theorem checks run in: configuration, the result record, and the per-model session.

Every check returns a ``CheckResult`` with ``status`` "pass", "fail", "inconclusive" (the runs cannot decide:
not yet asymptotic within the budget, or a control without power) or "assumption-violated" (a theory assumption
does not hold on this model or run: said where and why), the predicted and observed values, the tolerance, the
scaled error (≤ 1 passes), the resolving power of each prediction (verification/verdicts.py), the model's spec
and start point, and summaries of the runs behind it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import numpy as np

from srflow.theory import (AssumptionViolated, breathing_period, manifold_point, project_to_manifold, sharpness,
                           sharpness_reduction_flow, time_scale_separation)
from srflow.toy_models.protocol import minimizer_point, model_name

from srflow.theory.sharpness import is_dense

from .flow_cache import failure_applies
from .simulate import Trajectory, eos_start, simulate
from .verdicts import Status, fit_exponent  # noqa: F401 -- fit_exponent re-exported (figures and tests use it)


@dataclass(frozen=True)
class VerifyConfig:
    """Hyperparameters of ``srflow verify``.

    * ``lr``: η of the GD+WD runs; ``ladder``: the values of ηλ; ``tau_end``: horizon in τ = ηλt;
      ``records``: records (Φ projections) per run.
    * ``entry_eta_lambda``, ``entry_norm_ratio``: the eos-entry run (ηλ, and ‖w₀‖² over the EoS norm). Phase 2 lasts
      ≈ log(ratio)/(2ηλ) steps (2700 at 3e-4) while GD needs up to ~900 steps to reach Γ on ``mf``: a smaller
      ηλ separates the phases on every start.
    * ``collapse_factor``, ``collapse_steps``: scale-collapse runs (η, λ) and (cη, λ/c).
    * ``nowd_ladder``: the values of ε for GD without WD, started at η_eff λ₁ = 2(1 + ε); ``nowd_kick``.
    * ``alp_ladder``: the values of η for normalized GD and GD on √L; ``alp_tau_end``: horizon in τ = η²t.
    * ``extend_steps``: budget of simulated steps per check for rungs added below a ladder whose local exponents
      have not settled (verification/verdicts.py); ``extend_factor``: each added rung is the smallest one over it.
    * ``alp_extend_steps``: that budget for the ALP ladders (normalized-gd, sqrt-loss-gd) on a model the compiled
      simulator runs (a JAX model: ``verification.compiled``, ≈ 1e5 sphere steps/s against ≈ 5e3 in the numpy loop,
      which keeps ``extend_steps``). GD on √L leaves its pre-asymptotic regimes only at small η: the split's drift
      lasts τ_C ∝ η and on larger η the split saws instead of holding its plateau (docs/theory.md §5b), so with
      ``--quick`` (τ ≤ 0.05) the ladder needs rungs down to η = 7.8125e-5 on the zoo: 0.00125, 0.000625, 0.0003125,
      0.00015625, 7.8125e-5 cost 32k + 128k + 512k + 2048k + 8192k steps (the last ≈ 90 s compiled). It is a budget
      of work, steps × D: ``alp_extend_steps`` steps up to D = ``alp_extend_dim``, alp_extend_steps·alp_extend_dim/D
      above (a compiled step costs ∝ D there: at D = 4000, `mf` of the zoo, the 11M steps took over 15 min, and a
      `--quick` run of every check is meant to take ≤ 10 min; the zoo's models have D ≤ 36, the defaults' twins less).
    """

    lr: float = 0.1
    ladder: tuple[float, ...] = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
    tau_end: float = 0.3
    records: int = 25
    entry_eta_lambda: float = 3e-4
    entry_norm_ratio: float = 5.0
    collapse_factor: float = 3.0
    collapse_steps: int = 2000
    nowd_ladder: tuple[float, ...] = (0.1, 0.05, 0.025, 0.0125, 0.00625)
    nowd_kick: float = 1e-5
    alp_ladder: tuple[float, ...] = (0.02, 0.01, 0.005, 0.0025, 0.00125)
    alp_tau_end: float = 0.1
    extend_steps: int = 400_000
    extend_factor: float = 2.0
    alp_extend_steps: int = 11_000_000
    alp_extend_dim: int = 64

    def alp_budget(self, dim: int) -> int:
        """The ALP ladders' budget of extra steps on a compiled (JAX) model of dimension ``dim``: the work of
        ``alp_extend_steps`` steps at D = ``alp_extend_dim``, spread over D (``alp_extend_steps`` at D ≤ alp_extend_dim)."""
        return int(self.alp_extend_steps * min(1.0, self.alp_extend_dim / max(int(dim), 1)))


#: VerifyConfig fields saved under another name in report.json and sweep.json (the files predate the field's name;
#: old results must still load): field -> saved name
SAVED_NAMES = {"entry_eta_lambda": "entry_wd_lr"}  # names: saved


def config_record(config: VerifyConfig) -> dict:
    """``config`` as the dict report.json and sweep.json save (fields under their ``SAVED_NAMES``)."""
    return {SAVED_NAMES.get(k, k): v for k, v in asdict(config).items()}


def config_fields(record: dict) -> dict:
    """The VerifyConfig fields of a saved ``config_record`` (saved names mapped back; other keys dropped)."""
    back = {v: k for k, v in SAVED_NAMES.items()}
    names = {f.name for f in fields(VerifyConfig)}
    return {back.get(k, k): v for k, v in record.items() if back.get(k, k) in names}


QUICK = VerifyConfig(ladder=(1e-3, 3e-4, 1e-4, 3e-5), tau_end=0.25, records=15, collapse_steps=500,
                     nowd_ladder=(0.1, 0.05, 0.025, 0.0125), alp_ladder=(0.02, 0.01, 0.005, 0.0025), alp_tau_end=0.05)
FULL = VerifyConfig()


@dataclass
class CheckResult:
    """One check on one model. ``status``: pass, fail, inconclusive (the runs cannot decide yet: not asymptotic
    within the budget, or a control without power) or assumption-violated. ``resolving_power`` maps each
    prediction the check tests to δ*, the smallest relative perturbation of it that the same runs reject
    (inf: none up to the largest tried; verification/verdicts.py)."""

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
    resolving_power: dict = field(default_factory=dict)
    model_info: dict = field(default_factory=dict)
    #: the start point θ₀ on Γ the check ran from (None if it was not reached); not in ``to_json`` (the report
    #: saves it once per model as ``theta0-<model>.npy``, identified in ``model_info`` by its sha256)
    theta0: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("theta0")
        return _jsonable(data)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else ("inf" if x == math.inf else "-inf" if x == -math.inf else None)
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    return x


def run_summary(tr: Trajectory) -> dict:
    return {"algorithm": tr.algorithm, "lr": tr.lr, "wd": tr.wd, "steps": int(tr.steps[-1]) if len(tr.steps) else 0,
            "seconds": round(tr.seconds, 3), "diverged": tr.diverged, "monitor": tr.monitor[:5]}


def falls(p: float, se: float) -> bool:
    """An error 'falls' with the small parameter when its fitted exponent is > 0 by two standard errors."""
    return p - 2 * se > 0


#: records of λ₁ per run for the EoS averages: the pair-averaged λ₁ breathes with the slow norm-amplitude
#: oscillation (period 2π/√(8ηλ) steps); 400 samples over ≥ 10 periods bring its sampling error to ≈ 1% of the O(ηλ) term.
EOS_RECORDS = 400
#: ... and at least this many per breathing period: at ηλ = 1e-7 (``--deep``) 400 records over 3·10⁶ steps come
#: one per period (stride ≈ period), and the aliased mean was off by 0.5% of c; the mean over whole periods
#: (``extrapolation.whole_period_mean``) integrates the records' linear interpolant, whose error dominated the
#: one-period batch means at few records per period (s.e. of c at ηλ = 1e-5 on mf: 5.9e-4 at 9 per period, 1.6e-4 at 33)
EOS_SAMPLES_PER_PERIOD = 16


def odd_stride(steps: int, records: int) -> int:
    """A record stride near steps/records that is odd, so that the records alternate between the two phases of a
    period-2 oscillation (an even stride samples one phase only, and averages over records would be biased)."""
    return max(1, steps // records) | 1


def stable_hash(text: str) -> int:
    """A 64-bit integer from ``text`` that is the same in every process and Python version (unlike hash())."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16)


#: the prefix of a registered model's JAX twin in a spec (``srflow verify --deep``, ``verify.build_model``)
TWIN_PREFIX = "jax:"


def draw_key(model, spec: str | None = None) -> str:
    """The model part of every random draw's seed (``draw_rng``): what makes one (model, seed) one θ₀ on every path.

    * a registered name ``NAME`` and its JAX twin ``jax:NAME`` (``srflow verify --deep``) -> ``NAME``: the twin has
      the same data and Γ (``toy_models.make_jax_model``), so it gets the same θ₀ and the same draws;
    * no spec (a ``Session`` built from the API): the model's name when it is a registered name (``make_model`` and
      ``make_jax_model`` builds, at any sizes), else ``"<name>(dim=<D>)"``;
    * any other spec (``zoo:NAME``, a user's ``FILE.py:FACTORY``) -> the spec itself."""
    from srflow.toy_models.registry import REGISTRY

    if spec:
        rest = spec[len(TWIN_PREFIX):] if spec.startswith(TWIN_PREFIX) else None
        return rest if rest in REGISTRY else spec
    name = model_name(model)
    return name if name in REGISTRY else f"{name}(dim={model.dim})"


def draw_rng(seed: int, key: str, purpose: str) -> np.random.Generator:
    """``default_rng([seed, hash(key), hash(purpose)])``: the generator of every random draw of a session
    (``key`` from ``draw_key``; ``purpose`` says what it is for, e.g. "theta0", "eos-entry")."""
    return np.random.default_rng([int(seed), stable_hash(key), stable_hash(purpose)])


def start_point(model, seed: int, spec: str | None = None) -> np.ndarray:
    """THE start point θ₀ ∈ Γ of (model, seed): ``model.minimizer(rng)`` when the model has one
    (``toy_models.minimizer_point``: not one that raises NotImplementedError), else Φ of a standard
    normal draw (descend to Γ, ``theory.project_to_manifold``), with ``rng = draw_rng(seed, draw_key(model, spec),
    "theta0")``. Every path draws θ₀ here (``Session.theta0``: ``srflow verify`` on the numpy model, ``--deep`` on
    its JAX twin, ``srflow sweep``'s cells, the API), so one (model, seed) has one θ₀ -- equal to float64 round-off
    between a model and its JAX twin (the twin normalizes the minimizer's point once more)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    rng = draw_rng(seed, draw_key(model, spec), "theta0")
    theta = minimizer_point(model, rng)
    if theta is not None:
        return theta
    return project_to_manifold(model, rng.standard_normal(model.dim)).theta


#: samples and (rtol, atol) of the sessions' flows (``Session.flow``)
FLOW_SAMPLES, FLOW_TOLERANCES = 401, (1e-9, 1e-12)


class Session:
    """One model under verification: its start point on Γ, its flows and the runs shared between checks (cached).

    Every random draw comes from ``rng(purpose)`` = ``draw_rng(seed, draw_key(model, spec), purpose)``: it depends
    on the seed, the model's spec and what it is for -- not on which checks run, in which order, on the other
    models of the run, or on whether the model is the numpy one or its JAX twin (``draw_key``). ``spec`` (shown in
    the report) defaults to the model's name and dimension. ``theta0``: a start point on Γ to use instead of
    ``start_point``'s (``srflow verify --theta0``; validated by the caller, see ``theta0_problems``).
    ``share_flows``: share the flows of a matrix-free model with the other sessions of the same model and start,
    in this process and others, through the disk cache (``verification.flow_cache``; ``srflow verify``'s jobs)."""

    def __init__(self, model, config: VerifyConfig, seed=0, quiet: bool = True, spec: str | None = None,
                 theta0: np.ndarray | None = None, share_flows: bool = False):
        if isinstance(seed, np.random.Generator):
            seed = int(seed.integers(2**63))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        self.model, self.config, self.seed, self.quiet = model, config, int(seed), quiet
        self.name = model_name(model)
        self.spec = spec or f"{self.name}(dim={model.dim})"
        self.spec_given, self.draw_key = spec, draw_key(model, spec)
        self._cache: dict = {}
        self.share_flows = bool(share_flows)
        if theta0 is not None:
            theta0 = np.array(theta0, dtype=np.float64)
            theta0.setflags(write=False)
            self._cache["theta0"] = theta0

    def rng(self, purpose: str) -> np.random.Generator:
        return draw_rng(self.seed, self.draw_key, purpose)

    def cached(self, key, make: Callable):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def theta0(self) -> np.ndarray:
        """The start point on Γ: ``start_point(model, seed, spec)`` (or the one given to the constructor)."""
        return self.cached("theta0", lambda: start_point(self.model, self.seed, self.spec_given))

    def model_info(self) -> dict:
        """What identifies the run's model and start: spec, seed, a hash of θ₀, L(θ₀), λ₁(θ₀), G(θ₀)."""
        def make():
            try:
                th = self.theta0
            except Exception as exc:  # noqa: BLE001 -- the report must still say which model and seed
                return {"spec": self.spec, "seed": self.seed, "dim": int(self.model.dim),
                        "theta0_error": f"{type(exc).__name__}: {exc}"}
            try:
                mp = manifold_point(self.model, th)
                lam1, G = mp.lam1, mp.G
            except AssumptionViolated:
                lam1, G = sharpness(self.model, th), float("nan")
            return {"spec": self.spec, "seed": self.seed, "dim": int(self.model.dim),
                    "theta0_sha256": hashlib.sha256(np.ascontiguousarray(th, dtype=np.float64).tobytes()).hexdigest()[:16],
                    "loss_theta0": float(self.model.loss(th)), "lam1_theta0": lam1, "G_theta0": G}
        return self.cached("model_info", make)

    def flow(self, s_end: float):
        """The canonical flow from θ₀ to flow time ``s_end`` -- sized by each check to the horizon it needs, so
        that a spectral gap closing beyond a check's reach does not change its verdict. A cached flow that
        reaches at least as far is reused; a flow that failed (``AssumptionViolated``: the gap closed) is not
        integrated again to a horizon where it fails in the same way (``flow_cache.failure_applies``: the same or
        a longer horizon, or any horizon beyond what the failed integration looked ahead to); on a network one
        attempt costs minutes. With ``share_flows`` (a matrix-free model) the flow, or its failure, is shared
        with the other jobs of the run through the disk cache, under a lock (``verification.flow_cache``)."""
        flows = self._cache.setdefault("flows", [])
        for f in flows:
            if f.s[-1] >= s_end:
                return f
        failed = self._cache.get("flow_failed")  # (s_end, exception): a flow that failed fails again further on
        if failed is not None and failure_applies(failed[0], failed[1].reach, s_end):
            raise AssumptionViolated(str(failed[1]))
        if not self.share_flows or is_dense(self.model):
            return self._integrate_flow(s_end, None)
        from srflow.toy_models.cache import cache_dir

        from .flow_cache import FlowStore, flow_key

        store = FlowStore(cache_dir(), flow_key(self.draw_key, self.model, self.theta0, FLOW_SAMPLES, *FLOW_TOLERANCES))
        with store.locked():
            hit = store.lookup(s_end, self.model)
            if isinstance(hit, AssumptionViolated):
                exc = self._through_a_tie(hit)
                self._cache["flow_failed"] = (s_end, exc)
                raise exc
            if hit is not None:
                flows.append(hit)
                return hit
            return self._integrate_flow(s_end, store)

    def _integrate_flow(self, s_end: float, store):
        """``sharpness_reduction_flow`` from θ₀ to ``s_end``, cached in memory (and in ``store``, a FlowStore)."""
        try:
            f = sharpness_reduction_flow(self.model, self.theta0, s_end, FLOW_SAMPLES, *FLOW_TOLERANCES)
        except AssumptionViolated as exc:
            if store is not None:
                store.add(s_end, failure=exc)
            exc = self._through_a_tie(exc)
            self._cache["flow_failed"] = (s_end, exc)
            raise exc from None
        if store is not None:
            store.add(s_end, flow=f)
        self._cache["flows"].append(f)
        return f

    def flow_to_tie(self, s_end: float, max_evals: int | None = None):
        """The canonical flow from θ₀ to ``s_end`` or to its first tie of λ₁ (a join of the dense cluster flow),
        whichever comes first: for a check whose prediction needs λ₁ simple, which need not integrate the cluster
        flow past the tie (on zoo model bnc-np-nomin-n5-obs0.9-r2-t1-s865987421 a join at s = 0.437 and then a
        k = 2 segment at ≈ 0.01 of s per 4 s, towards s = 14.3: more than 15 min). With ``max_evals`` (dense models)
        it also ends where its field has been evaluated that many times (an event of kind "budget"). A flow of
        ``flow`` that reaches ``s_end`` is reused."""
        for f in self._cache.get("flows", []):
            if f.s[-1] >= s_end:
                return f
        key = ("flow_to_tie", float(s_end), max_evals)
        if key not in self._cache:
            failed = self._cache.get("flow_failed")
            if failed is not None and s_end >= failed[0]:
                raise AssumptionViolated(str(failed[1]))
            self._cache[key] = sharpness_reduction_flow(self.model, self.theta0, s_end, n_out=401, stop_at_join=True,
                                                        max_evals=max_evals)
        return self._cache[key]

    def _through_a_tie(self, exc: AssumptionViolated) -> AssumptionViolated:
        """A spectral gap that closed on the flow (matrix-free models: the cluster flow of docs/theory.md §4c is
        dense-only) with what the cluster theory would need: its separation of time scales at the ladder's ηλ
        (``theory.time_scale_separation``: the top cluster changes after Δτ, GD+WD re-equilibrates over τ_b)."""
        G = self.model_info().get("G_theta0", float("nan"))
        if exc.kind != "gap" or not exc.s or not np.isfinite(G):
            return exc
        xs = sorted(self.config.ladder, reverse=True)
        dtau, tau_b, x_max = time_scale_separation(exc.s, G, xs)
        text = (f"{exc}. Through a tie the theory is the cluster flow (docs/theory.md §4c): the top cluster changes "
                f"after Δτ = {dtau:.3g} (s = {exc.s:.3g}, G = {G:.3g} at θ₀), and GD+WD re-equilibrates its "
                f"amplitudes over a breathing period τ_b = 2π√(ηλ/8) = {tau_b[0]:.3g} … {tau_b[-1]:.3g} at ηλ = "
                f"{xs[0]:g} … {xs[-1]:g}; ")
        if tau_b[-1] > dtau:
            text += (f"the separation of time scales fails on every rung ({tau_b[-1] / dtau:.3g}× or more); it would "
                     f"need ηλ ≤ {x_max:.2g}")
        else:
            text += (f"the separation holds for ηλ ≤ {x_max:.2g}, where the cluster flow is needed and is computed "
                     "for dense models only (D ≤ theory.sharpness.DENSE_MAX_DIM)")
        return AssumptionViolated(text, kind=exc.kind, s=exc.s, reach=exc.reach)

    def gdwd_run(self, eta_lambda: float) -> Trajectory:
        """GD+WD from the EoS norm above θ₀, kicked by the predicted amplitude, at ηλ = ``eta_lambda``, to τ_end."""
        def make():
            cfg = self.config
            wd, steps = eta_lambda / cfg.lr, int(round(cfg.tau_end / eta_lambda))
            w0 = eos_start(self.model, self.theta0, cfg.lr, wd)
            tr = simulate(self.model, w0, cfg.lr, steps, wd=wd, every=odd_stride(steps, cfg.records), track_phi=True,
                          quiet=self.quiet, label=f"{self.name} GD+WD ηλ={eta_lambda:g}")
            if tr.diverged:
                raise RuntimeError(f"GD+WD at ηλ = {eta_lambda:g}: {tr.diverged}")
            return tr
        return self.cached(("gdwd", float(eta_lambda)), make)

    def eos_run(self, eta_lambda: float) -> Trajectory:
        """The GD+WD run of ``gdwd_run`` again, without Φ, recording λ₁ at w_t and w_{t+1} about EOS_RECORDS
        times (odd stride): pair averages of λ₁ need many samples of the slow breathing of the amplitude."""
        def make():
            cfg = self.config
            wd, steps = eta_lambda / cfg.lr, int(round(cfg.tau_end / eta_lambda))
            w0 = eos_start(self.model, self.theta0, cfg.lr, wd)
            # ≥ EOS_SAMPLES_PER_PERIOD records per breathing period 2π/√(8ηλ): a stride near the period would alias
            periods = steps / breathing_period(eta_lambda)
            records = max(EOS_RECORDS, int(EOS_SAMPLES_PER_PERIOD * periods))
            tr = simulate(self.model, w0, cfg.lr, steps, wd=wd, every=odd_stride(steps, records), quiet=self.quiet,
                          label=f"{self.name} GD+WD ηλ={eta_lambda:g} (λ₁ pairs)")
            if tr.diverged:
                raise RuntimeError(f"GD+WD at ηλ = {eta_lambda:g}: {tr.diverged}")
            return tr
        return self.cached(("eos", float(eta_lambda)), make)

    def ladder_runs(self) -> list[Trajectory]:
        """The GD+WD runs of the configured ladder (``gdwd_run`` for each ηλ)."""
        return [self.gdwd_run(eta_lambda) for eta_lambda in self.config.ladder]


def result(session: Session, name, status, predicted, observed, tolerance, scaled, message="", details=None,
           runs=(), resolving_power=None) -> CheckResult:
    return CheckResult(name, session.name, status, predicted, observed, tolerance, float(scaled), message,
                       details or {}, [run_summary(r) for r in runs], resolving_power=resolving_power or {},
                       model_info=session.model_info(), theta0=session._cache.get("theta0"))


def guard(session: Session, name: str, fn: Callable[[], CheckResult]) -> CheckResult:
    """Run a check; assumption violations and diverging runs become verdicts, not crashes."""
    try:
        return fn()
    except AssumptionViolated as exc:
        text = str(exc) if str(exc).startswith("assumption violated") else f"assumption violated: {exc}"
        return result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"), text)
    except (NotImplementedError, RecursionError):  # RuntimeErrors that are bugs, not a run that diverged: errors
        raise
    except RuntimeError as exc:
        return result(session, name, Status.FAIL, None, None, None, float("inf"), str(exc))
