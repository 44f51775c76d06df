"""The sharpness-reduction flows of matrix-free models, shared between the jobs of a run through the disk cache.

``srflow verify`` runs a model's checks as several jobs (one per group of checks, ``verify.plan_jobs``), often in
parallel processes, and more than one group needs the model's flow (on ``bn_mlp``: eos-equilibrium in one, no-wd-clock
and the ALP checks in the other). Above DENSE_MAX_DIM one flow costs minutes (Lanczos and LSQR solves in every field
evaluation), and so does one that fails when the spectral gap closes. ``FlowStore(key)`` is the record of the flows
computed for one key -- the flows that reached their horizon and the failures (``AssumptionViolated`` with the
horizon asked, ``kind``, ``s`` and ``reach``) -- in ``cache_dir()/flows/flow_<key>.pkl``, and ``locked()`` holds an
exclusive ``flock`` on ``flow_<key>.lock`` while a flow for that key is looked up and, if none fits, integrated: a
second job that needs the same flow waits for the first and reads its result instead of integrating it again. The
kernel releases the lock however its holder ends (a killed worker included); the waiting job then finds no
record and integrates the flow itself.

``flow_key`` identifies the flow by everything it depends on: the model's spec, dimension and a fingerprint of its
loss and gradient at a point drawn from the start (a changed model file changes it), the start point θ₀ (bytes),
the flow's arguments, the coefficient of the canonical flow and the gap tolerance as they are at call time, the
source of ``theory/`` and the versions of numpy, scipy and jax. Dense models are never cached on disk (their flows
take seconds, and the tests perturb theory's functions at run time, which no key can see).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pickle
import warnings
from pathlib import Path

import numpy as np

#: the version of the record's layout: a change makes old records unreadable, so it is part of the key
FORMAT = 1


def _theory_source() -> str:
    """sha256 over the source files of ``theory`` (any change of the flow's code gives new keys)."""
    from srflow import theory

    digest = hashlib.sha256()
    for path in sorted(Path(theory.__file__).parent.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _versions() -> tuple:
    import scipy

    try:
        import jax
        jax_version = jax.__version__
    except ImportError:  # pragma: no cover -- the matrix-free models of the registry are JAX models
        jax_version = None
    return np.__version__, scipy.__version__, jax_version


def model_fingerprint(model, theta0: np.ndarray) -> str:
    """sha256 of L and ∇L at θ₀ + 0.1ξ (ξ a fixed unit draw): two models that agree there are the same model for the
    cache (a spec names the model; this catches a model file edited under the same spec)."""
    xi = np.random.default_rng(20).standard_normal(model.dim)
    w = theta0 + 0.1 * xi / np.linalg.norm(xi)
    digest = hashlib.sha256(np.float64(model.loss(w)).tobytes())
    digest.update(np.ascontiguousarray(model.grad(w), dtype=np.float64).tobytes())
    return digest.hexdigest()


def flow_key(spec: str, model, theta0: np.ndarray, n_out: int, rtol: float, atol: float) -> str:
    """The cache key of the canonical flow of ``model`` (named ``spec``) from ``theta0`` (module docstring)."""
    from srflow.theory import flows, gamma

    theta0 = np.ascontiguousarray(theta0, dtype=np.float64)
    parts = (FORMAT, spec, int(model.dim), hashlib.sha256(theta0.tobytes()).hexdigest(),
             model_fingerprint(model, theta0), int(n_out), float(rtol), float(atol), float(flows.CANONICAL_COEF),
             float(gamma.GAP_RTOL), _theory_source(), _versions())
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def failure_applies(s_end_failed: float, reach: float | None, s_end: float) -> bool:
    """Whether a flow that failed on its way to ``s_end_failed`` (looking ahead up to ``reach``,
    ``theory.flows.failure_reach``) fails in the same way on its way to ``s_end``: when s_end ≥ s_end_failed (it
    fails at the same point or earlier), or when neither horizon clipped a step: reach < s_end_failed and
    reach < s_end (then both integrations take the same steps up to the failure)."""
    if s_end >= s_end_failed:
        return True
    return reach is not None and reach < s_end_failed and reach < s_end


class FlowStore:
    """The disk record of the flows of one ``flow_key`` (module docstring). ``folder`` None: nothing is stored."""

    def __init__(self, folder: Path | None, key: str):
        self.folder = None if folder is None else Path(folder) / "flows"
        self.key = key

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.folder / f"flow_{self.key}.pkl"

    @contextlib.contextmanager
    def locked(self):
        """Hold the exclusive lock of this key (blocking until another process releases it); without a folder, or
        where it cannot be created, no lock (a warning)."""
        fd = None
        if self.folder is not None:
            try:
                import fcntl

                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.folder / f"flow_{self.key}.lock", os.O_CREAT | os.O_RDWR, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except (OSError, ImportError) as exc:
                if fd is not None:
                    os.close(fd)
                    fd = None
                warnings.warn(f"flow cache: no lock in {self.folder} ({exc}); the flow is not shared", stacklevel=3)
        try:
            yield self
        finally:
            if fd is not None:
                os.close(fd)  # releases the flock

    def entries(self) -> list[dict]:
        """The stored records: {"s_end", "flow" (a FlowResult without its model) or None, "failure" (message, kind,
        s, reach) or None}; [] when there is no (readable) record."""
        if self.path is None or not self.path.exists():
            return []
        try:
            with open(self.path, "rb") as fh:
                data = pickle.load(fh)
        except Exception:  # noqa: BLE001 -- a damaged or foreign record is a cache miss
            return []
        return data if isinstance(data, list) else []

    def lookup(self, s_end: float, model):
        """A stored flow reaching ``s_end`` (its model attached), an ``AssumptionViolated`` that a flow to ``s_end``
        would raise (``failure_applies``), or None."""
        from srflow.theory import AssumptionViolated

        for e in self.entries():
            if e.get("flow") is not None and e["flow"].s[-1] >= s_end:
                return dataclasses.replace(e["flow"], model=model)
            fail = e.get("failure")
            if fail is not None and failure_applies(e["s_end"], fail[3], s_end):
                return AssumptionViolated(*fail)
        return None

    def add(self, s_end: float, flow=None, failure=None) -> None:
        """Append a flow (a FlowResult) or a failure (an ``AssumptionViolated``) to the record, atomically; a
        failure to write only warns."""
        if self.path is None:
            return
        entry = {"s_end": float(s_end), "flow": None if flow is None else dataclasses.replace(flow, model=None),
                 "failure": None if failure is None else (str(failure), failure.kind, failure.s,
                                                          getattr(failure, "reach", None))}
        from .outdir import atomic_write

        try:
            atomic_write(self.path, pickle.dumps(self.entries() + [entry], protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as exc:  # noqa: BLE001 -- the cache is an optimization
            warnings.warn(f"flow cache: could not write {self.path} ({exc})", stacklevel=2)
