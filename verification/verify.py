"""``srflow verify``: run the theorem checks on models and stream the verdicts into a report.

Work is split into jobs (model × group of checks that share runs); with ``workers`` > 1 the jobs run in
parallel processes and each finished check is handed back at once through a queue, so the report on disk
always holds every check that has completed (Ctrl-C loses only the checks in flight).
Determinism: a registered model is built with ``rng=seed``; every session draws from
``np.random.default_rng([seed, model_index])``, so results do not depend on scheduling.
"""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from toy_models import REGISTRY, make_model
from toy_models.protocol import check_model

from .checks import CHECKS
from .identities import check_identities
from .session import CheckResult, Session, VerifyConfig, result

#: the models ``srflow verify`` runs by default: G large enough for the naive control to bite, a spectral gap
#: along the whole flow horizon, and min L = 0 (GD on √L). deep_linear_wn loses its gap near s = 0.25 and
#: sym_mf has G = 0 (λ₁ constant on Γ): both give assumption-violated verdicts, by design.
DEFAULT_MODELS = ("sphere_circle", "mf", "bn_linear")

#: checks that share runs go to the same job
GROUPS = (("identities", "eos-equilibrium", "flow-tracking", "naive-flow-rejected", "eos-entry", "scale-collapse"),
          ("no-wd-clock", "normalized-gd", "sqrt-loss-gd"))


class ModelLoadError(ValueError):
    """A ``--model`` spec that cannot give a protocol model; the message says which part failed."""


def load_model(spec: str):
    """A model from ``path/to/file.py:factory`` or ``package.module:factory``; ``factory()`` is called
    without arguments (or with ``rng=0`` if it takes one)."""
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
    try:
        try:
            model = factory(rng=0)
        except TypeError:
            model = factory()
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"--model: calling {attr}() failed: {type(exc).__name__}: {exc}") from exc
    try:
        check_model(model)
    except TypeError as exc:
        raise ModelLoadError(f"--model: {spec}: {exc}") from exc
    if not hasattr(model, "name"):
        try:
            model.name = attr
        except AttributeError:
            pass
    return model


#: ``srflow verify --deep``: the GD+WD ladder continued to ηλ = 1e-7, on the JAX twins of the registered models
DEEP_LADDER = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7)


def build_model(spec: str, seed: int):
    """A registered name, ``jax:NAME`` (its JAX twin, ``toy_models.make_jax_model``: compiled runs), or a
    ``--model`` spec (contains ':')."""
    if spec.startswith("jax:") and spec[4:] in REGISTRY:
        from toy_models.jax_models import make_jax_model
        return make_jax_model(spec[4:], rng=seed)
    return load_model(spec) if ":" in spec else make_model(spec, rng=seed)


def validate(models: list[str], checks: list[str]) -> None:
    """Registered model names and check names; unknown ones raise ValueError listing the valid ones."""
    bad = [m for m in models if m not in REGISTRY]
    if bad:
        raise ValueError(f"--models: unknown model(s) {', '.join(bad)}; valid: {', '.join(REGISTRY)} "
                         "(or --model path/to/file.py:factory)")
    bad = [c for c in checks if c not in CHECKS]
    if bad:
        raise ValueError(f"--checks: unknown check(s) {', '.join(bad)}; valid: {', '.join(CHECKS)}")


def _not_scale_invariant(model, seed: int) -> str:
    rows = check_identities(model, np.random.default_rng([seed, 99]), points=1, names=("invariance", "euler-grad"))
    bad = [r for r in rows if r.status != "pass"]
    return "; ".join(f"{r.identity}: {r.message}" for r in bad)


def run_job(spec: str, index: int, checks: tuple[str, ...], config: VerifyConfig, seed: int, quiet: bool,
            emit: Callable[[CheckResult], None]) -> None:
    """Run ``checks`` on one model, calling ``emit`` with each result as it completes."""
    model = build_model(spec, seed)
    session = Session(model, config, np.random.default_rng([seed, index]), quiet=quiet)
    broken = _not_scale_invariant(model, seed)
    for name in checks:
        start = time.perf_counter()
        if broken and name != "identities":
            res = result(session, name, "assumption-violated", None, None, None, float("nan"),
                         f"assumption violated: the loss is not scale-invariant ({broken}); this check needs it")
        else:
            try:
                res = CHECKS[name](session)
            except Exception as exc:  # noqa: BLE001 -- one broken check must not stop the others
                res = result(session, name, "fail", None, None, None, float("inf"),
                             f"error: {type(exc).__name__}: {exc}")
        res.seconds = round(time.perf_counter() - start, 2)
        emit(res)


def _job_in_worker(args):
    *job, queue = args
    run_job(*job, emit=queue.put)
    return None


def run_all(models: list[str], checks: list[str], config: VerifyConfig, seed: int, quiet: bool, workers: int,
            on_result: Callable[[CheckResult], None]) -> int:
    """Run every requested check on every model; ``on_result`` sees each result as it completes. Returns the
    number of results."""
    jobs = []
    for index, spec in enumerate(models):
        for group in GROUPS:
            chosen = tuple(c for c in group if c in checks)
            if chosen:
                jobs.append((spec, index, chosen, config, seed, quiet or workers > 1))
    expected = sum(len(j[2]) for j in jobs)
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            run_job(*job, emit=on_result)
        return expected
    # fork is unsafe once JAX (multithreaded) is loaded, e.g. by a --model file with a JAX loss
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") and "jax" not in sys.modules else "spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        queue = manager.Queue()
        futures = [pool.submit(_job_in_worker, (*job, queue)) for job in jobs]
        got = 0
        try:
            while got < expected:
                try:
                    res = queue.get(timeout=1.0)
                except Exception:  # noqa: BLE001 -- queue.Empty through the manager proxy
                    crashed = [f for f in futures if f.done() and f.exception() is not None]
                    if crashed:
                        raise crashed[0].exception()
                    continue
                got += 1
                on_result(res)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            raise
    return expected
