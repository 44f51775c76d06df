"""``srflow verify``: run the theorem checks on models and stream the verdicts into a report.

Work is split into jobs (model × group of checks that share runs); with ``workers`` > 1 the jobs run in
parallel as Dask tasks (``verification.runner``, the runner of ``srflow sweep``: a LocalCluster whose workers die
with their parent, Ctrl-C stops them, a crash comes back with its traceback; or a cluster with ``--scheduler``)
and each finished check is handed back at once, so the report on disk always holds every check
that has completed (Ctrl-C loses only the checks in flight).
Determinism: a registered model is built with ``rng=seed``; every random draw of a session comes from
``np.random.default_rng([seed, hash(model spec), hash(purpose)])`` (``Session.rng``, ``session.draw_rng``), so results
depend on neither scheduling, nor the order of the models, nor which checks run; θ₀ is ``session.start_point``, and
``jax:NAME`` (``--deep``) draws as ``NAME`` (``session.draw_key``): the JAX twin starts from the numpy model's θ₀.

Before any work the CLI validates the input domain (``ladder_problems``, ``check_lr``, ``probe_model``) and
estimates the cost (``estimate_cost``, ``budget_verdict``), so that a meaningless or impossible run is refused
up front, naming the argument.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from srflow.theory import is_dense
from srflow.toy_models import REGISTRY, make_model
from srflow.toy_models.protocol import check_model
from srflow.toy_models.zoo import SPEC_PREFIX, is_zoo_spec, parse_spec, zoo_model

from .checks import CHECKS, groups, ladder_checks
from .identities import check_identities
from .outdir import OutputWriteFailed
from .runner import one_blas_thread
from .session import CheckResult, Session, VerifyConfig, result
from .verdicts import NOT_FAILING, Status  # noqa: F401 -- NOT_FAILING re-exported (the CLI)

#: the models ``srflow verify`` runs by default: G large enough for the naive control to bite, a spectral gap
#: along the whole flow horizon, and min L = 0 (GD on √L). deep_linear_wn loses its gap near s = 0.25 and
#: sym_mf has G = 0 (λ₁ constant on Γ): both give assumption-violated verdicts, by design.
DEFAULT_MODELS = ("sphere_circle", "mf", "bn_linear")

# -- the input domain -----------------------------------------------------------------------------------------
#: checks whose verdict rests on the fitted exponent over the GD+WD ladder of ηλ (``Check.ladder``)
LADDER_CHECKS = ladder_checks()
#: an exponent needs at least this many distinct rungs even with --allow-short-ladder (its standard error is
#: undefined below 3)
LADDER_MIN_POINTS = 3
#: the ladder the README promises: ≥ 4 distinct values over ≥ 1.5 decades; with fewer, a fitted exponent of
#: order 1 has a standard error comparable to itself, so a verdict on it is inconclusive
LADDER_MIN_DISTINCT = 4
LADDER_MIN_DECADES = 1.5
#: ηλ is the small parameter of the theory; at ηλ ≥ 0.5 the step w' = (1 - ηλ)w - ηg more than halves w, there
#: is no edge-of-stability regime to speak of. The one bound on ηλ: ``--ladder`` here and ``eta_lambda`` of a
#: sweep spec (``verification.sweep_spec``)
MAX_ETA_LAMBDA = 0.5
#: η range: the EoS norm ‖w‖² = ηλ₁/(2(1 - ηλ)) and the derivatives (∝ ‖w‖⁻ᵏ, k ≤ 3) must stay far from float64
#: overflow and underflow whatever λ₁ a model has (η = 1e308 overflows ‖w‖², 1e-310 the Hessian); every
#: meaningful choice (the paper uses 1e-3 to 1) lies well inside
LR_RANGE = (1e-6, 1e6)

# -- the cost budget ------------------------------------------------------------------------------------------
#: above either, ``srflow verify`` warns before starting
WARN_STEPS, WARN_SECONDS = 2e7, 1800.0
#: above either, it refuses to start without --yes (the default run is ~1e5 steps per model and ~90 s)
HARD_STEPS, HARD_SECONDS = 2e8, 6 * 3600.0
#: a simulation step costs this many gradient evaluations (the update, norms and clock; measured 2.7-3.0 with
#: 5000-step runs on sphere_circle, mf and bn_linear)
STEP_COST_IN_GRADS = 3.0
#: above DENSE_MAX_DIM the estimate counts a record's eigenvalue work as this many HVPs (ARPACK from a cold start
#: on the BN MLP: ~100; a rough figure like the rest of the estimate)
LANCZOS_HVPS = 100


class ModelLoadError(ValueError):
    """A ``--model`` spec that cannot give a protocol model; the message says which part failed."""


class ModelOutputError(ValueError):
    """A model whose members return the wrong shape or non-finite values at a generic point; the message names
    the member, what it returned and what was expected."""


def _call_factory(factory, attr: str, seed: int = 0):
    """``factory(rng=seed)`` if its signature takes ``rng`` (or ``**kwargs``), else ``factory()``. The signature is
    read, not guessed by retrying, so a TypeError raised inside the factory is reported as such."""
    try:
        params = inspect.signature(factory).parameters.values()
        takes_rng = any(p.name == "rng" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    except (TypeError, ValueError):  # a builtin or extension callable without a signature
        takes_rng = False
    return factory(rng=seed) if takes_rng else factory()


def load_model(spec: str, seed: int = 0):
    """A model from ``path/to/file.py:factory`` or ``package.module:factory``; ``factory()`` is called
    without arguments (or with ``rng=seed`` if it takes one: ``--seed`` reaches user factories)."""
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ModelLoadError(f"--model: expected 'path/to/file.py:factory' or 'package.module:factory', got {spec!r}")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ModelLoadError(f"--model: no such file {where!r}")
            mod_spec = importlib.util.spec_from_file_location(f"srflow_user_{path.stem}", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any error in the user's file is reported, not raised
        raise ModelLoadError(f"--model: importing {where!r} failed: {type(exc).__name__}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise ModelLoadError(f"--model: {where!r} has no attribute {attr!r}")
    if not callable(factory):
        raise ModelLoadError(f"--model: {where}:{attr} is not callable (expected a factory returning a model)")
    try:
        model = _call_factory(factory, attr, seed)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"--model: calling {attr}() failed: {type(exc).__name__}: {exc}") from exc
    try:
        check_model(model)
    except TypeError as exc:
        raise ModelLoadError(f"--model: {spec}: {exc}") from exc
    return model


def spec_label(spec: str) -> str:
    """A model spec's name: the registered name, or the file stem / last module of ``where:factory``."""
    if ":" not in spec:
        return spec
    where = spec.rpartition(":")[0]
    return Path(where).stem if where.endswith(".py") else where.rsplit(".", 1)[-1]


def model_label(spec: str, model) -> str:
    """A model's name in reports: the ``name`` it was given, else ``spec_label(spec)`` (for a user model, the
    file stem -- never the factory's name)."""
    return getattr(model, "name", None) or spec_label(spec)


#: ``srflow verify --deep``: the GD+WD ladder continued to ηλ = 1e-7, on the JAX twins of the registered models
DEEP_LADDER = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7)


def build_model(spec: str, seed: int):
    """A registered name, ``jax:NAME`` (its JAX twin, ``toy_models.make_jax_model``: compiled runs), ``zoo:NAME``
    (the zoo model of that name, ``toy_models.zoo.zoo_model``; ``seed`` does not change it), or a ``--model``
    spec (contains ':')."""
    if spec.startswith(SPEC_PREFIX):
        return zoo_model(spec[len(SPEC_PREFIX):])
    if spec.startswith("jax:") and spec[4:] in REGISTRY:
        from srflow.toy_models.jax_losses import make_jax_model
        return make_jax_model(spec[4:], rng=seed)
    return load_model(spec, seed) if ":" in spec else make_model(spec, rng=seed)


def validate(models: list[str], checks: list[str]) -> None:
    """Registered model names and check names; unknown ones raise ValueError listing the valid ones."""
    for m in models:
        if m.startswith(SPEC_PREFIX):
            try:
                parse_spec(m[len(SPEC_PREFIX):])
            except ValueError as exc:
                raise ValueError(f"--models: {m}: {exc}") from None
    bad = [m for m in models if m not in REGISTRY and not is_zoo_spec(m)]
    if bad:
        raise ValueError(f"--models: unknown model(s) {', '.join(bad)}; valid: {', '.join(REGISTRY)}, or "
                         "zoo:NAME for a zoo model (srflow zoo prints the names) "
                         "(or --model path/to/file.py:factory)")
    bad = [c for c in checks if c not in CHECKS]
    if bad:
        raise ValueError(f"--checks: unknown check(s) {', '.join(bad)}; valid: {', '.join(CHECKS)}")


def dedupe(values: list[str]) -> tuple[list[str], list[str]]:
    """``values`` without repeats (first occurrence kept, order kept) and the repeated entries."""
    seen, out, dropped = set(), [], []
    for v in values:
        (dropped if v in seen else out).append(v)
        seen.add(v)
    return out, dropped


def probe_model(model, rng: np.random.Generator, label: str) -> None:
    """Call every protocol member once at a random unit point and check shape and finiteness of the output:
    ``loss`` a finite scalar, ``grad``/``hvp``/``third`` finite (D,), ``hess`` finite (D, D). Raises
    ``ModelOutputError`` naming ``label``, the member and what it returned (so a broken model is not reported
    as 'not scale-invariant' or as a theorem failure)."""
    d = int(model.dim)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    u, v = rng.standard_normal(d), rng.standard_normal(d)
    calls = {"loss": (lambda: model.loss(w), ()), "grad": (lambda: model.grad(w), (d,)),
             "hess": (lambda: model.hess(w), (d, d)), "hvp": (lambda: model.hvp(w, v), (d,)),
             "third": (lambda: model.third(w, u, v), (d,))}
    if not is_dense(model):  # above DENSE_MAX_DIM the checks never build the D×D Hessian
        del calls["hess"]
    for member, (call, shape) in calls.items():
        try:
            out = np.asarray(call())
        except Exception as exc:  # noqa: BLE001 -- reported with the member's name
            raise ModelOutputError(f"model {label}: {member}(w) raised {type(exc).__name__}: {exc} at a random "
                                   "unit point w") from exc
        if out.dtype.kind not in "fiu" or out.shape != shape:
            raise ModelOutputError(f"model {label}: {member}(w) returned shape {out.shape} dtype {out.dtype}, "
                                   f"expected a real array of shape {shape} (D = {d})")
        if not np.all(np.isfinite(out)):
            raise ModelOutputError(f"model {label}: {member}(w) returned non-finite values at a random unit point "
                                   f"(expected finite; {int(np.sum(~np.isfinite(out)))} of {out.size} entries)")


def load_theta0(path, model, label: str, option: str = "--theta0") -> np.ndarray:
    """A start point θ₀ of ``model`` from a ``.npy`` file, validated: a real float array of shape (D,), finite,
    and a point of Γ (``identities.check_minimizer``: unit norm, critical, PSD Hessian, rank). Raises ValueError
    naming ``option``, the file and what is wrong."""
    from .identities import check_minimizer

    try:
        theta = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{option}: cannot read {str(path)!r} as a .npy array: {exc}") from None
    d = int(model.dim)
    if theta.dtype.kind not in "fiu" or theta.shape != (d,):
        raise ValueError(f"{option}: {str(path)!r} holds an array of shape {theta.shape} dtype {theta.dtype}; "
                         f"expected a real vector of shape ({d},), the dimension D of model {label}")
    theta = theta.astype(np.float64)
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"{option}: {str(path)!r} has {int(np.sum(~np.isfinite(theta)))} non-finite entries; "
                         "expected a finite point of Γ")
    try:
        rows = check_minimizer(model, theta)
    except Exception as exc:  # noqa: BLE001 -- e.g. a zero vector: reported as a bad argument
        raise ValueError(f"{option}: {str(path)!r} is not a point of Γ of model {label}: "
                         f"{type(exc).__name__}: {exc}") from None
    bad = [r for r in rows if r.status != "pass"]
    if bad:
        raise ValueError(f"{option}: {str(path)!r} is not a point of Γ of model {label} (a minimizer of unit norm): "
                         + "; ".join(f"{r.identity} ({r.statement}): "
                                     f"{r.message or f'error {r.error:.3g}, {r.scaled_error:.3g}× its tolerance'}"
                                     for r in bad))
    return theta


# -- ladder and budget ----------------------------------------------------------------------------------------
def ladder_problems(ladder) -> tuple[list[float], list[str], str]:
    """The distinct ladder (descending), the hard errors (each names ``--ladder``) and, when the ladder is
    below the promised minimum but usable, the reason its verdicts are inconclusive ("" otherwise)."""
    values = sorted(set(float(eta_lambda) for eta_lambda in ladder), reverse=True)
    errors = []
    bad = [eta_lambda for eta_lambda in values if not (np.isfinite(eta_lambda) and 0 < eta_lambda < MAX_ETA_LAMBDA)]
    if bad:
        errors.append(f"--ladder: expected values of ηλ in (0, {MAX_ETA_LAMBDA:g}) (ηλ is the small parameter of "
                      f"the theory), got {', '.join(f'{eta_lambda:g}' for eta_lambda in bad)}")
    if len(values) < LADDER_MIN_POINTS:
        errors.append(f"--ladder: expected at least {LADDER_MIN_POINTS} distinct values of ηλ (an exponent needs "
                      f"them), got {len(values)} distinct of {len(list(ladder))}")
    return values, errors, ("" if errors else short_ladder(values))


def short_ladder(values) -> str:
    """Why a ladder of distinct positive values (descending) is too short for a verdict on a fitted exponent
    (fewer than LADDER_MIN_DISTINCT values or less than LADDER_MIN_DECADES decades), or "" when it is not."""
    values = sorted(set(float(x) for x in values), reverse=True)
    decades = float(np.log10(values[0] / values[-1]))
    if len(values) < LADDER_MIN_DISTINCT or decades < LADDER_MIN_DECADES - 1e-9:
        return (f"the ladder has {len(values)} distinct values over {decades:.2f} decades, fewer than "
                f"{LADDER_MIN_DISTINCT} over {LADDER_MIN_DECADES:g}")
    return ""


def check_lr(lr) -> None:
    """``--lr`` within LR_RANGE, or ValueError naming it."""
    lo, hi = LR_RANGE
    if not (np.isfinite(lr) and lo <= lr <= hi):
        raise ValueError(f"--lr: expected {lo:g} ≤ η ≤ {hi:g} (the EoS norm ‖w‖² = ηλ₁/(2(1-ηλ)) and the "
                         f"derivatives ∝ ‖w‖⁻ᵏ must stay far from float64 overflow), got {lr!r}")


def ladder_steps(config: VerifyConfig) -> list[int]:
    """Steps of each GD+WD ladder run: τ_end/ηλ (session.ladder_runs)."""
    return [int(round(config.tau_end / eta_lambda)) for eta_lambda in config.ladder]


@dataclass
class Cost:
    """Estimated steps per model, and wall-clock seconds for the whole run."""

    steps: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_steps(self) -> float:
        return float(sum(self.steps.values()))


def _seconds_per_call(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def estimate_cost(models: dict, checks: list[str], config: VerifyConfig, workers: int) -> Cost:
    """Steps of the simulations each model's checks need, and their time from a timing of one gradient and one
    Hessian eigendecomposition per model: steps·STEP_COST_IN_GRADS·t(∇L) + records·25·t(eigh ∇²L) (a record costs ~3 eigh and a
    projection onto Γ). A rough figure (the runs each check names in its ``Check.cost``, counted once when shared), meant to catch runs
    that are orders of magnitude too long before they start."""
    cost = Cost()
    runs: dict = {}  # the simulations, counted once however many checks share them
    for name in checks:
        runs.update(CHECKS[name].cost(config))
    steps = sum(st for st, _ in runs.values())
    records = sum(rec for _, rec in runs.values())
    seconds = 0.0
    rng = np.random.default_rng(0)
    for label, model in models.items():
        cost.steps[label] = steps
        w = rng.standard_normal(model.dim)
        w /= np.linalg.norm(w)
        t_grad = _seconds_per_call(lambda: model.grad(w))
        if not is_dense(model):  # matrix-free: a λ₁ or a projection costs ~LANCZOS_HVPS Hessian-vector products
            t_eig = LANCZOS_HVPS * _seconds_per_call(lambda: model.hvp(w, w), repeat=2)
        elif model.dim <= 400:
            t_eig = _seconds_per_call(lambda: np.linalg.eigvalsh(model.hess(w)), repeat=2)
        else:  # extrapolate eigh as D³ from a 200 × 200 one, plus one Hessian evaluation
            a = rng.standard_normal((200, 200))
            t_eig = _seconds_per_call(lambda: np.linalg.eigvalsh(a + a.T), repeat=2) * (model.dim / 200) ** 3
            t_eig += _seconds_per_call(lambda: model.hess(w), repeat=1)
        seconds += steps * STEP_COST_IN_GRADS * t_grad + records * 25 * t_eig
    cost.seconds = seconds / max(1, min(workers, 2 * len(models)))
    return cost


def budget_verdict(cost: Cost) -> tuple[str, str]:
    """("ok" | "warn" | "hard", message) for an estimated cost."""
    msg = (f"this run needs about {cost.total_steps:.3g} simulation steps "
           f"({', '.join(f'{k}: {v:.3g}' for k, v in cost.steps.items())}), about {_duration(cost.seconds)}")
    if cost.total_steps > HARD_STEPS or cost.seconds > HARD_SECONDS:
        return "hard", msg + f"; above the limit ({HARD_STEPS:.0e} steps or {_duration(HARD_SECONDS)})"
    if cost.total_steps > WARN_STEPS or cost.seconds > WARN_SECONDS:
        return "warn", msg
    return "ok", msg


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.3g} days"


# -- jobs -----------------------------------------------------------------------------------------------------
def _not_scale_invariant(model, seed: int) -> str:
    rows = check_identities(model, np.random.default_rng([seed, 99]), points=1, names=("invariance", "euler-grad"))
    bad = [r for r in rows if r.status != "pass"]
    return "; ".join(f"{r.identity}: {r.message}" for r in bad)


def error_result(model: str, name: str, message: str, tb: str = "") -> CheckResult:
    """An internal error (an exception in a check, a crashed worker): status "error", the traceback in
    ``details["traceback"]``."""
    return CheckResult(name, model, Status.ERROR, None, None, None, float("nan"), message,
                       {"traceback": tb} if tb else {})


def mark_inconclusive(res: CheckResult, reason: str) -> CheckResult:
    """A pass or fail of a ladder check on a short ladder becomes "inconclusive", with the reason."""
    if res.name in LADDER_CHECKS and res.status in (Status.PASS, Status.FAIL):
        res.details["verdict_before_override"] = res.status
        res.status = Status.INCONCLUSIVE
        res.message = f"inconclusive: {reason} (--allow-short-ladder); measured: {res.message}"
    return res


def run_job(spec: str, index: int, checks: tuple[str, ...], config: VerifyConfig, seed: int, quiet: bool,
            emit: Callable[[CheckResult], None], *, skip: tuple[str, ...] = (), short_ladder: str = "",
            on_start: Callable[[str], None] | None = None, label: str | None = None,
            theta0: np.ndarray | None = None) -> None:
    """Run ``checks`` on one model, calling ``emit`` with each result as it completes.

    ``skip``: checks already done (``--resume``): they are still run when a later check follows them, so that
    every random draw of the session is the same as in an uninterrupted run, but not emitted.
    ``short_ladder``: the reason the ladder checks are inconclusive ("" when the ladder is adequate).
    ``label``: the model's name in the report (default: its ``name``). Every random draw depends on (seed, spec)
    only (``Session.rng``), not on ``index`` or on which checks run. ``theta0``: the start point on Γ (``srflow
    verify --theta0``, validated by ``theta0_problems``; default: the session's own)."""
    with one_blas_thread():
        _run_job(spec, index, checks, config, seed, quiet, emit, skip, short_ladder, on_start, label, theta0)


def _run_job(spec, index, checks, config, seed, quiet, emit, skip, short_ladder, on_start, label, theta0) -> None:
    model = build_model(spec, seed)
    session = Session(model, config, seed, quiet=quiet, spec=spec, theta0=theta0, share_flows=True)
    if label is not None:
        session.name = label
    broken = _not_scale_invariant(model, seed)
    todo = [c for c in checks if c not in skip]
    last = max((checks.index(c) for c in todo), default=-1)
    for name in checks[:last + 1]:
        if on_start is not None and name not in skip:
            on_start(name)
        start = time.perf_counter()
        if broken and name != "identities":
            res = result(session, name, Status.ASSUMPTION_VIOLATED, None, None, None, float("nan"),
                         f"assumption violated: the loss is not scale-invariant ({broken}); this check needs it")
        else:
            try:
                res = CHECKS[name](session)
            except Exception as exc:  # noqa: BLE001 -- one broken check must not stop the others
                res = error_result(session.name, name, f"error: {type(exc).__name__}: {exc}", traceback.format_exc())
        if short_ladder:
            res = mark_inconclusive(res, short_ladder)
        res.seconds = round(time.perf_counter() - start, 2)
        if name not in skip:
            emit(res)


@dataclass
class Job:
    """One model × group of checks. ``label`` is the model's report name; ``checks`` the group's requested
    checks in order, ``skip`` those already done."""

    spec: str
    index: int
    label: str
    checks: tuple[str, ...]
    skip: tuple[str, ...] = ()
    #: the start point on Γ (None: the session draws its own)
    theta0: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def wanted(self) -> tuple[str, ...]:
        return tuple(c for c in self.checks if c not in self.skip)


def plan_jobs(models: list[str], labels: dict, checks: list[str], done: set = frozenset(),
              theta0: dict | None = None) -> list[Job]:
    """The jobs for ``models`` × ``checks``, without those whose every check is in ``done`` ((label, check));
    ``theta0`` maps a model spec to its given start point."""
    jobs = []
    for index, spec in enumerate(models):
        for group in groups():
            chosen = tuple(c for c in group if c in checks)
            skip = tuple(c for c in chosen if (labels[spec], c) in done)
            if chosen and len(skip) < len(chosen):
                jobs.append(Job(spec, index, labels[spec], chosen, skip, (theta0 or {}).get(spec)))
    return jobs


def _job_target(payload, send) -> None:
    job, config, seed, quiet, short = payload
    run_job(job.spec, job.index, job.checks, config, seed, quiet, emit=lambda r: send(("result", r)), skip=job.skip,
            label=job.label, short_ladder=short, on_start=lambda name: send(("start", name)), theta0=job.theta0)


def _job_task(payload, send) -> None:
    """``_job_target`` on a worker; an exception anywhere in the job comes back as ("crash", traceback)."""
    try:
        _job_target(payload, send)
    except BaseException:  # noqa: BLE001 -- everything goes back to the client
        send(("crash", traceback.format_exc()))


#: seconds to wait for the nanny's report of how a dead worker ended
DEATH_REPORT_WAIT = 10.0


def run_all(jobs: list[Job], config: VerifyConfig, seed: int, quiet: bool, workers: int,
            on_result: Callable[[CheckResult], None], short_ladder: str = "",
            on_start: Callable[[Job, str], None] | None = None, on_tick: Callable[[], None] | None = None,
            spawn: bool = False, scheduler: str | None = None,
            before_exit: Callable[[], None] | None = None) -> int:
    """Run ``jobs``; ``on_result`` sees each result as it completes (including "error" results for a check
    that raised or whose worker crashed or died), ``on_start(job, check)`` each check as it starts. Returns
    the number of results. A KeyboardInterrupt stops every worker and propagates.

    One worker and no ``scheduler``: in this process, one job after another. Otherwise the jobs are Dask tasks
    (``verification.runner``, the runner ``srflow sweep`` uses): on a LocalCluster of ``workers`` processes --
    forked, unless ``spawn`` (the models are JAX models) or JAX is loaded here (``runner.fork_is_safe``) -- or on
    the cluster at ``scheduler``. A job whose worker dies is not retried; its checks become "error" results saying
    how it died. ``outdir.OutputWriteFailed`` from ``on_result`` (the report cannot be written) stops the run and
    propagates; ``before_exit`` runs when a second Ctrl-C ends the process while the workers stop
    (``runner.Cluster.close``)."""
    emitted: dict[int, set] = {i: set() for i in range(len(jobs))}
    crashed: dict[int, str] = {}
    pids: dict[int, int] = {}

    def on_message(i, msg):
        kind = msg[0]
        if kind == "start":
            if on_start is not None:
                on_start(jobs[i], msg[1])
        elif kind == "result":
            emitted[i].add(msg[1].name)
            on_result(msg[1])
        elif kind == "crash":
            crashed[i] = msg[1]
        elif kind == "pid":
            pids[i] = msg[1]

    def report_missing(i, died: str = ""):
        job = jobs[i]
        missing = [c for c in job.wanted if c not in emitted[i]]
        if not missing:
            return
        if i in crashed:
            last = crashed[i].strip().splitlines()[-1]
            why, tb = f"error: the job of {job.label} raised {last}", crashed[i]
        else:
            why, tb = (f"error: the worker process of {job.label} died ({died or 'no result sent'}) before this "
                       "check finished"), ""
        for name in missing:
            emitted[i].add(name)
            on_result(error_result(job.label, name, why, tb))

    expected = sum(len(j.wanted) for j in jobs)
    if (workers <= 1 or len(jobs) == 1) and scheduler is None:
        for i, job in enumerate(jobs):
            try:
                _job_target((job, config, seed, quiet, short_ladder), lambda msg, i=i: on_message(i, msg))
            except OutputWriteFailed:  # the report cannot take results: not an error of the check
                raise
            except Exception:  # noqa: BLE001 -- e.g. the model cannot be built: an error result, not a crash
                crashed[i] = traceback.format_exc()
            report_missing(i)
        return expected
    from .runner import Cluster, run_tasks

    cluster = Cluster(scheduler, min(workers, len(jobs)), fork=not spawn, allowed_failures=0)

    def on_done(i, messages, error):
        died = ""
        if error is not None and i not in crashed:
            if type(error).__name__ != "KilledWorker":  # not a death: the task itself could not run
                crashed[i] = f"{type(error).__name__}: {error}"
            else:
                died = cluster.how_died(pids.get(i), error, wait=DEATH_REPORT_WAIT)
        report_missing(i, died)

    try:
        payloads = [(job, config, seed, True, short_ladder) for job in jobs]
        run_tasks(cluster, _job_task, payloads, on_message, on_done, on_tick=on_tick, key="srflow-verify")
    finally:
        cluster.close(before_exit=before_exit)
    return expected
