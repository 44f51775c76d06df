"""``srflow sweep SPEC``: models × seeds × (ηλ ladder or checks) on Dask, one tidy xarray Dataset per sweep.

A **cell** is one unit of work, cached on its own:

* a *tracking* cell (model, seed, ηλ): GD+WD from the EoS start above θ₀ to τ = ηλt = ``tau_end`` with Φ recorded
  (``Session.gdwd_run``), compared with the canonical flow ζ at the matched clock (``theory.gdwd_steps``):
  ``path_error``, ``clock_error`` and the combined ``tracking_error`` as in the flow-tracking check
  (verification/checks.py), the naive clock's error, η_eff·λ₁ (the EoS prediction: 2), λ₁ and ‖w‖², and the
  records along the run;
* a *check* cell (model, seed, check): one theorem check of ``srflow verify`` (verdict, scaled error, resolving
  power δ* of each prediction it tests).

The session of (model, seed) is the one ``srflow verify --models MODEL --seed SEED`` builds, so a cell reproduces
the corresponding run of ``srflow verify`` with the same configuration. The flow ζ of each (model, seed) is a Dask
task of its own that the tracking cells of that pair depend on (it is computed once, not once per ηλ).

**Cache and resume.** Each cell is stored as ``CACHE/<key[:2]>/<key>.json``, ``key`` = sha256 of the cell's full
spec (kind, model -- with the sha256 of a user's model file --, seed, ηλ or check, the configuration it reads)
and ``provenance.code_version()`` (a hash of the source of toy_models, theory and verification). Only the client
writes the cache, as each cell completes, atomically (temp file + ``os.replace``), so Ctrl-C or a killed run
keeps every finished cell and a rerun computes only what is missing or changed; an entry that does not load is
recomputed with a warning. Cells that raise an unexpected error are reported and not cached.

**Outputs** (``--out``, never overwritten): ``sweep.nc`` (netCDF4 via h5netcdf; ``xarray.open_dataset`` loads
it) and ``sweep.json`` (provenance and one row per cell: where it came from -- computed or cache --, its worker
and time). Provenance (command line, spec, seeds, versions, git revision and code version) is in both; see
verification/provenance.py for where the revision comes from when installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np

EXAMPLE = """\
example spec (TOML):

  # models: registered names (`srflow list`) or path/to/file.py:factory (comma-separated strings also work)
  models = ["sphere_circle", "mf", "bn_linear"]
  seeds = [0, 1, 2]
  # the ηλ ladder: one flow-tracking cell per (model, seed, ηλ)
  eta_lambda = [1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5]
  # checks = ["flow-tracking", "eos-equilibrium"]   # instead: one cell per (model, seed, check),
  #                                                 # eta_lambda is then the checks' ladder

  [config]          # optional: a base configuration and any field of VerifyConfig
  base = "quick"    # "quick" or "full" (as srflow verify --quick / default)
  lr = 0.1          # η
  tau_end = 0.1     # horizon in τ = ηλt
  records = 15      # records of Φ per run

Results: OUT/sweep.nc (xarray.open_dataset) and OUT/sweep.json (provenance, cells). Cells are cached in --cache
by a hash of their spec and of the code: a rerun computes only what is missing or changed.
"""

SPEC_KEYS = ("models", "seeds", "eta_lambda", "checks", "config")
#: fields of VerifyConfig that a tracking cell reads (its cache key depends on these only)
TRACKING_FIELDS = ("lr", "tau_end", "records")
#: per-record series of a tracking cell, in the dataset on (model, seed, eta_lambda, record)
SERIES = ("loss", "norm_sq", "lam1", "eta_eff_lam1", "phi_lam1", "offset_sq", "s", "s_predicted", "tracking_error_t")
#: per-cell numbers of a tracking cell, in the dataset on (model, seed, eta_lambda)
SCALARS = ("path_error", "clock_error", "tracking_error", "naive_clock_error", "eta_eff_lam1_mean",
           "eta_eff_lam1_predicted", "lam1_final", "lam1_flow_final", "norm_sq_final", "steps", "seconds")


class SpecError(ValueError):
    """A sweep spec that cannot be run; the message names the key and what was expected."""


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: ``models`` (registered names or ``file.py:factory`` with an absolute path), their labels in
    the dataset, ``seeds``, ``eta_lambda`` (decreasing), ``checks`` (empty: tracking cells), the configuration,
    and the spec's text."""

    models: tuple[str, ...]
    labels: tuple[str, ...]
    seeds: tuple[int, ...]
    eta_lambda: tuple[float, ...]
    checks: tuple[str, ...]
    config: object
    text: str = ""

    @property
    def kind(self) -> str:
        return "check" if self.checks else "tracking"


def _str_list(data: dict, key: str) -> list[str]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"{key}: expected a list of names (or a comma-separated string), got {value!r}")
    return value


def _label(spec: str) -> str:
    """A model's name in the dataset: its registered name, or the file stem / module of ``where:factory``."""
    if ":" not in spec:
        return spec
    where = spec.rpartition(":")[0]
    return Path(where).stem if where.endswith(".py") else where.rsplit(".", 1)[-1]


def parse_spec(data: dict, text: str = "", base_dir: Path | None = None) -> SweepSpec:
    """Validate a spec (the TOML table ``data``); relative model files are resolved against ``base_dir``
    (the spec file's folder)."""
    from theory import check_hyperparameters
    from toy_models import REGISTRY

    from .checks import CHECKS
    from .session import FULL, QUICK

    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(unknown)}; valid: {', '.join(SPEC_KEYS)}")
    models = _str_list(data, "models")
    if not models:
        raise SpecError("models: expected at least one model")
    resolved = []
    for m in models:
        if ":" in m:
            where, _, attr = m.rpartition(":")
            if where.endswith(".py"):
                path = Path(where) if Path(where).is_absolute() else (base_dir or Path.cwd()) / where
                if not path.is_file():
                    raise SpecError(f"models: no such file {str(path)!r} (in {m!r})")
                m = f"{path.resolve()}:{attr}"
        elif m not in REGISTRY:
            raise SpecError(f"models: unknown model {m!r}; valid: {', '.join(REGISTRY)} (or path/to/file.py:factory)")
        resolved.append(m)
    labels = [_label(m) for m in resolved]
    if len(set(labels)) < len(labels):
        labels = list(models)
    if len(set(resolved)) < len(resolved):
        raise SpecError(f"models: listed twice: {models!r}")
    seeds = data.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) < len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise SpecError(f"seeds: expected a list of distinct non-negative integers, got {seeds!r}")
    checks = _str_list(data, "checks")
    bad = [c for c in checks if c not in CHECKS]
    if bad:
        raise SpecError(f"checks: unknown check(s) {', '.join(bad)}; valid: {', '.join(CHECKS)}")
    cfg_data = dict(data.get("config", {}))
    if not isinstance(data.get("config", {}), dict):
        raise SpecError("config: expected a table ([config])")
    base = cfg_data.pop("base", "quick")
    if base not in ("quick", "full"):
        raise SpecError(f"config.base: expected 'quick' or 'full', got {base!r}")
    fields = {f.name: f for f in dataclasses.fields(QUICK)}
    bad = sorted(set(cfg_data) - set(fields) - {"ladder"})
    if bad or "ladder" in cfg_data:
        raise SpecError(f"config: unknown field(s) {', '.join(bad or ['ladder'])} (the ladder is eta_lambda); "
                        f"valid: base, {', '.join(f for f in fields if f != 'ladder')}")
    cfg = QUICK if base == "quick" else FULL
    try:
        for k, v in cfg_data.items():
            default = getattr(cfg, k)
            if isinstance(default, tuple):
                v = tuple(float(x) for x in v)
            elif isinstance(default, int):
                if not isinstance(v, int) or isinstance(v, bool):
                    raise TypeError
            else:
                v = float(v)
            cfg_data[k] = v
    except (TypeError, ValueError):
        raise SpecError(f"config.{k}: expected a value like {getattr(cfg, k)!r}, got {v!r}") from None
    ladder = data.get("eta_lambda", list(cfg.ladder))
    if (not isinstance(ladder, list) or not ladder
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in ladder)):
        raise SpecError(f"eta_lambda: expected a list of numbers in (0, 1), got {ladder!r}")
    ladder = tuple(sorted({float(x) for x in ladder}, reverse=True))
    cfg = dataclasses.replace(cfg, **cfg_data, ladder=ladder)
    try:
        check_hyperparameters(cfg.lr)
        for lw in ladder:
            if not 0 < lw < 1:
                raise ValueError(f"expected values in (0, 1), got {lw!r}")
            check_hyperparameters(cfg.lr, lw / cfg.lr)
        if cfg.tau_end <= 0 or cfg.records < 2:
            raise ValueError(f"config: expected tau_end > 0 and records ≥ 2, got {cfg.tau_end!r}, {cfg.records!r}")
    except ValueError as exc:
        raise SpecError(f"eta_lambda/config: {exc}") from None
    return SweepSpec(tuple(resolved), tuple(labels), tuple(int(s) for s in seeds), ladder, tuple(checks), cfg, text)


def load_spec(path) -> SweepSpec:
    """Read and validate a TOML spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise SpecError(f"SPEC: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"SPEC: {str(path)!r} is not valid TOML: {exc}") from None
    return parse_spec(data, text, path.resolve().parent)


# -- cells and their keys -----------------------------------------------------------------------------------
def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _model_identity(model: str) -> dict:
    """What identifies a model spec: the registered name, or the file (absolute path) and its content's sha256."""
    if ":" in model and model.rpartition(":")[0].endswith(".py"):
        where = model.rpartition(":")[0]
        return {"model": model, "file_sha256": hashlib.sha256(Path(where).read_bytes()).hexdigest()}
    return {"model": model}


def make_cells(spec: SweepSpec) -> list[dict]:
    """Every cell of ``spec``, each with its cache ``key`` and the ``flow`` key it depends on (tracking cells)."""
    from .provenance import code_version

    code = code_version()
    cfg = dataclasses.asdict(spec.config)
    track_cfg = {k: cfg[k] for k in TRACKING_FIELDS}
    cells = []
    for model, label in zip(spec.models, spec.labels):
        ident = _model_identity(model)
        for seed in spec.seeds:
            flow_key = _sha({"kind": "flow", **ident, "seed": seed, "config": track_cfg, "code": code})
            units = spec.checks or spec.eta_lambda
            for unit in units:
                cell = {"kind": spec.kind, "model": model, "label": label, "seed": seed}
                if spec.checks:
                    cell["check"] = unit
                    full = {**ident, "seed": seed, "check": unit, "config": cfg}
                else:
                    cell["eta_lambda"] = unit
                    cell["flow"] = flow_key
                    full = {**ident, "seed": seed, "eta_lambda": unit, "config": track_cfg}
                cell["key"] = _sha({"kind": spec.kind, **full, "code": code})
                cells.append(cell)
    return cells


def _cell_name(cell: dict) -> str:
    unit = f"ηλ={cell['eta_lambda']:g}" if cell["kind"] == "tracking" else cell["check"]
    return f"{cell['label']} seed={cell['seed']} {unit}"


# -- work done on the workers -------------------------------------------------------------------------------
def _session(model: str, seed: int, config):
    """The Session ``srflow verify --models MODEL --seed SEED`` builds for its first model."""
    from .session import Session
    from .verify import build_model

    return Session(build_model(model, seed), config, np.random.default_rng([seed, 0]), quiet=True)


def compute_flow(model: str, seed: int, config):
    """The canonical flow from θ₀ of (model, seed) to the horizon of the flow-tracking check."""
    from .checks import _gdwd_horizon

    session = _session(model, seed, config)
    return session.flow(_gdwd_horizon(session))


def run_tracking_cell(cell: dict, config, flow) -> dict:
    """One tracking cell: the GD+WD run at ηλ (``Session.gdwd_run``) against ``flow``.

    * ``path_error``, ``clock_error``, ``tracking_error``: ``checks.path_error``, ``checks.clock_error`` with the
      clock ``theory.gdwd_steps`` and ``checks.phi_error`` at s(t) from that clock; ``naive_clock_error`` the
      clock error of ``theory.naive_gdwd_steps``;
    * ``eta_eff_lam1`` = η_eff·λ₁(w̄_t) = ηλ₁(∇²L(w_t))/(1 - ηλ) (λ₁ is of degree -2), averaged over the pair
      t, t+1 (the ±a∇³L[v₁,v₁,v₁] term cancels over a pair); its EoS prediction ``eta_eff_lam1_predicted`` is
      η·``theory.eos_threshold``/(1 - ηλ) = 2;
    * per record: ``tracking_error_t`` = ‖Φ(w̄_t) - ζ(s(t))‖, ``s`` the run's intrinsic clock s_t and
      ``s_predicted`` = s(t).
    """
    import socket

    import theory as th

    from .checks import clock_error, path_error, phi_error

    start = time.perf_counter()
    where = f"{socket.gethostname()}:{os.getpid()}"
    session = _session(cell["model"], cell["seed"], config)
    try:
        tr = session.gdwd_run(cell["eta_lambda"])
    except th.AssumptionViolated as exc:
        return {"status": "assumption-violated", "message": str(exc), "worker": where}
    except RuntimeError as exc:  # a diverging run (Session.gdwd_run)
        return {"status": "diverged", "message": str(exc), "worker": where}
    lr, wd = tr.lr, tr.wd
    clk = th.gdwd_steps(flow, lr, wd)
    s_pred = th.s_at_steps(flow, clk, tr.steps)
    pair = 0.5 * (tr.sharpness + tr.sharpness_next)
    eta_eff_lam1 = lr * pair / (1 - lr * wd)
    scalars = {
        "path_error": path_error(tr, flow),
        "clock_error": clock_error(tr, flow, clk),
        "tracking_error": phi_error(tr, flow, s_pred),
        "naive_clock_error": clock_error(tr, flow, th.naive_gdwd_steps(flow, lr, wd)),
        "eta_eff_lam1_mean": float(np.mean(eta_eff_lam1)),
        "eta_eff_lam1_predicted": lr * th.eos_threshold(lr, wd) / (1 - lr * wd),
        "lam1_final": float(tr.phi_sharpness[-1]),
        "lam1_flow_final": float(np.interp(s_pred[-1], flow.s, flow.sharpness)),
        "norm_sq_final": float(tr.norm_sq[-1]),
        "steps": int(tr.steps[-1]),
        "seconds": round(time.perf_counter() - start, 3),
    }
    series = {"step": tr.steps, "tau": tr.tau, "loss": tr.loss, "norm_sq": tr.norm_sq, "lam1": tr.sharpness,
              "eta_eff_lam1": eta_eff_lam1, "phi_lam1": tr.phi_sharpness, "offset_sq": tr.offset_sq, "s": tr.clock,
              "s_predicted": s_pred,
              "tracking_error_t": np.linalg.norm(tr.phi - flow.at(s_pred), axis=1)}
    monitor = "; ".join(tr.monitor[:3])
    return {"status": "assumption-violated" if tr.monitor else "ok", "message": monitor, "worker": where,
            "scalars": scalars, "series": {k: np.asarray(v, dtype=float).tolist() for k, v in series.items()}}


def run_check_cell(cell: dict, config) -> dict:
    """One check cell: ``verify.run_job`` with this check alone (same guards and verdicts as ``srflow verify``)."""
    import socket

    from .verify import run_job

    out = []
    run_job(cell["model"], 0, (cell["check"],), config, cell["seed"], True, out.append)
    res = out[0]
    return {"status": res.status, "message": res.message, "worker": f"{socket.gethostname()}:{os.getpid()}",
            "result": res.to_json()}


# -- the cache ----------------------------------------------------------------------------------------------
class CellCache:
    """One JSON file per cell under ``root``; written atomically, read back only if intact and for this key."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, cell: dict) -> dict | None:
        """The cached result of ``cell``, or None (absent, or corrupt: then a warning, and it is recomputed)."""
        path = self.path(cell["key"])
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("key") != cell["key"] or "status" not in entry.get("result", {}):
                raise ValueError("the entry is for another cell or has no result")
            return entry["result"]
        except (OSError, ValueError, AttributeError) as exc:
            warnings.warn(f"sweep cache: {path} is unreadable ({exc}); {_cell_name(cell)} is recomputed",
                          RuntimeWarning, stacklevel=2)
            return None

    def put(self, cell: dict, result: dict) -> None:
        path = self.path(cell["key"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": cell["key"], "cell": cell, "result": result}), encoding="utf-8")
        os.replace(tmp, path)


# -- the dataset ----------------------------------------------------------------------------------------------
def _num(x) -> float:
    """A number from JSON (``"inf"``/``"-inf"`` strings and None from ``CheckResult.to_json``)."""
    if x is None:
        return math.nan
    return float(x)


def assemble(spec: SweepSpec, cells: list[dict], results: dict):
    """The sweep's Dataset from the finished ``results`` (by key); unfinished cells are NaN/"" with
    ``finished`` = 0."""
    import xarray as xr

    coords = {"model": list(spec.labels), "seed": list(spec.seeds)}
    im = {m: i for i, m in enumerate(spec.models)}
    iseed = {s: i for i, s in enumerate(spec.seeds)}
    if spec.kind == "tracking":
        units, unit_dim = list(spec.eta_lambda), "eta_lambda"
        iu = {x: i for i, x in enumerate(units)}
        unit_of = lambda c: iu[c["eta_lambda"]]  # noqa: E731
    else:
        units, unit_dim = list(spec.checks), "check"
        iu = {x: i for i, x in enumerate(units)}
        unit_of = lambda c: iu[c["check"]]  # noqa: E731
    coords[unit_dim] = units
    shape = (len(spec.models), len(spec.seeds), len(units))
    dims = ("model", "seed", unit_dim)
    finished = np.zeros(shape, dtype=np.int8)
    status = np.full(shape, "", dtype=object)
    message = np.full(shape, "", dtype=object)
    idx = {}
    for c in cells:
        if c["key"] in results:
            i = (im[c["model"]], iseed[c["seed"]], unit_of(c))
            idx[c["key"]] = i
            r = results[c["key"]]
            finished[i], status[i], message[i] = 1, r["status"], r.get("message", "")
    data = {"finished": (dims, finished, {"description": "1 where the cell finished (0: interrupted or not run)"}),
            "status": (dims, status), "message": (dims, message)}
    if spec.kind == "tracking":
        n_rec = max((len(r["series"]["step"]) for k, r in results.items() if k in idx and "series" in r), default=0)
        scal = {k: np.full(shape, np.nan) for k in SCALARS}
        ser = {k: np.full(shape + (n_rec,), np.nan) for k in SERIES}
        step = np.full((len(units), n_rec), np.nan)
        tau = np.full((len(units), n_rec), np.nan)
        for key, i in idx.items():
            r = results[key]
            if "series" not in r:
                continue
            for k in SCALARS:
                scal[k][i] = r["scalars"][k]
            n = len(r["series"]["step"])
            for k in SERIES:
                ser[k][i][:n] = r["series"][k]
            if np.isnan(step[i[2], n - 1]):
                step[i[2], :n], tau[i[2], :n] = r["series"]["step"], r["series"]["tau"]
        data.update({k: (dims, v) for k, v in scal.items()})
        data.update({k: (dims + ("record",), v) for k, v in ser.items()})
        coords["step"] = (("eta_lambda", "record"), step)
        coords["tau"] = (("eta_lambda", "record"), tau)
        data.update(_verdicts(spec, scal, status))
    else:
        res = {key: results[key]["result"] for key in idx}
        preds = sorted({p for r in res.values() for p in r.get("resolving_power", {})})
        power = np.full(shape + (len(preds),), np.nan)
        scaled, seconds = np.full(shape, np.nan), np.full(shape, np.nan)
        details = np.full(shape, "", dtype=object)
        for key, i in idx.items():
            r = res[key]
            scaled[i], seconds[i] = _num(r["scaled_error"]), _num(r["seconds"])
            details[i] = json.dumps(r["details"], ensure_ascii=False)
            for j, p in enumerate(preds):
                if p in r.get("resolving_power", {}):
                    power[i + (j,)] = _num(r["resolving_power"][p])
        coords["prediction"] = preds
        data.update({"scaled_error": (dims, scaled), "seconds": (dims, seconds),
                     "resolving_power": (dims + ("prediction",), power), "details": (dims, details)})
    ds = xr.Dataset(data, coords=coords)
    for k, text in DESCRIPTIONS.items():
        if k in ds:
            ds[k].attrs["description"] = text
    return ds


def _verdicts(spec: SweepSpec, scal: dict, status: np.ndarray) -> dict:
    """Per (model, seed): ``verdicts.judge`` of path and clock errors over the ηλ ladder with the flow-tracking
    check's order (O(ηλ)), when every rung finished "ok"; no rungs are added (a sweep's ladder is the user's)."""
    from .checks import GDWD_ORDER
    from .verdicts import judge

    out = {}
    shape = status.shape[:2]
    for name in ("path", "clock"):
        verdict, reason = np.full(shape, "", dtype=object), np.full(shape, "", dtype=object)
        order, order_se = np.full(shape, np.nan), np.full(shape, np.nan)
        for i in np.ndindex(shape):
            if not all(s == "ok" for s in status[i]):
                verdict[i], reason[i] = "not judged", "not every rung finished without a monitor firing"
                continue
            v = judge(spec.eta_lambda, scal[f"{name}_error"][i], GDWD_ORDER)
            verdict[i], reason[i], order[i], order_se[i] = v.status, v.reason, v.order, v.order_se
        out.update({f"{name}_verdict": (("model", "seed"), verdict), f"{name}_verdict_reason": (("model", "seed"), reason),
                    f"{name}_order": (("model", "seed"), order), f"{name}_order_se": (("model", "seed"), order_se)})
    return out


DESCRIPTIONS = {
    "path_error": "max_t ‖Φ(w̄_t) - ζ(s_t)‖ at the run's intrinsic clock s_t (checks.path_error)",
    "clock_error": "max_t |s_t - s(t)|, s(t) from theory.gdwd_steps (checks.clock_error)",
    "tracking_error": "max_t ‖Φ(w̄_t) - ζ(s(t))‖ at the matched clock (checks.phi_error)",
    "naive_clock_error": "max_t |s_t - s(t)| for the naive clock s = 2ηλt (negative control)",
    "eta_eff_lam1_mean": "mean over records of η_eff·λ₁ = ηλ₁(∇²L(w_t))/(1 - ηλ), pair-averaged over t, t+1",
    "eta_eff_lam1_predicted": "the EoS prediction of η_eff·λ₁: η·theory.eos_threshold/(1 - ηλ) = 2",
    "lam1_final": "λ₁(∇²L(Φ(w̄_t))) at the last record", "lam1_flow_final": "λ₁(ζ(s(t))) at the last record",
    "norm_sq_final": "‖w_t‖² at the last record", "steps": "steps simulated", "seconds": "wall time of the cell",
    "lam1": "λ₁(∇²L(w_t))", "eta_eff_lam1": "η_eff·λ₁ per record (pair-averaged)", "phi_lam1": "λ₁(∇²L(Φ(w̄_t)))",
    "offset_sq": "‖w̄_t - Φ(w̄_t)‖²", "s": "intrinsic clock s_t = Σ‖w̄_{k+1} - w̄_k‖²",
    "s_predicted": "s(t) from theory.gdwd_steps", "tracking_error_t": "‖Φ(w̄_t) - ζ(s(t))‖",
    "tau": "τ = ηλt", "step": "the recorded step t",
    "resolving_power": "δ*: the smallest relative perturbation of the prediction the check rejects on its runs",
}


# -- running ------------------------------------------------------------------------------------------------
class _Cluster:
    """A Dask client: on the scheduler at ``address``, or on a LocalCluster of ``workers`` processes."""

    def __init__(self, address: str | None, workers: int | None, processes: bool = True):
        import logging

        from distributed import Client, LocalCluster

        self.cluster = None
        if address:
            self.client = Client(address, timeout="30s")
        else:
            n = workers or min(2, os.cpu_count() or 1)
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                                        dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _submit(client, spec: SweepSpec, todo: list[dict]) -> dict:
    flows, futures = {}, {}
    for cell in todo:
        if cell["kind"] == "tracking":
            if cell["flow"] not in flows:
                flows[cell["flow"]] = client.submit(compute_flow, cell["model"], cell["seed"], spec.config,
                                                    key=f"flow-{cell['flow']}")
            fut = client.submit(run_tracking_cell, cell, spec.config, flows[cell["flow"]], key=f"cell-{cell['key']}")
        else:
            fut = client.submit(run_check_cell, cell, spec.config, key=f"cell-{cell['key']}")
        futures[fut.key] = (fut, cell)
    return futures


def _progress(done: int, total: int, cell: dict, r: dict) -> str:
    text = f"[{done:>{len(str(total))}}/{total}] {_cell_name(cell):<36} {r['status']:<20}"
    if "scalars" in r:
        s = r["scalars"]
        text += f" tracking {s['tracking_error']:.2e}  clock {s['clock_error']:.2e}"
    elif "result" in r:
        text += f" scaled error {_num(r['result']['scaled_error']):.3g}"
    seconds = r.get("scalars", {}).get("seconds") or _num((r.get("result") or {}).get("seconds"))
    return text + (f"  {seconds:.1f} s" if seconds == seconds else "")


def run_sweep(spec: SweepSpec, out, cache_dir, scheduler: str | None = None, workers: int | None = None,
              quiet: bool = False, command: list[str] | None = None, processes: bool = True):
    """Run (or resume) ``spec``: cached cells are read, the others computed on Dask and cached as each completes;
    writes ``out/sweep.nc`` and ``out/sweep.json``. Returns (dataset, sidecar dict). Ctrl-C stops the run, keeps
    what finished (cache and outputs, ``complete`` = 0) and re-raises KeyboardInterrupt."""
    from distributed import as_completed

    out, cache = Path(out), CellCache(cache_dir)
    start = time.perf_counter()
    cells = make_cells(spec)
    say = (lambda *_: None) if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    results, log = {}, []
    for cell in cells:
        r = cache.get(cell)
        if r is not None:
            results[cell["key"]] = r
            log.append({"key": cell["key"], "cell": _cell_name(cell), "source": "cache", "status": r["status"],
                        "worker": r.get("worker", "")})
    todo = [c for c in cells if c["key"] not in results]
    say(f"srflow sweep: {len(cells)} cell(s), {len(cells) - len(todo)} from the cache, {len(todo)} to compute"
        + (f" on {scheduler or 'a LocalCluster'}" if todo else "") + f" -> {out}")
    interrupted, errors = False, 0
    if todo:
        cluster = _Cluster(scheduler, workers, processes)
        try:
            futures = _submit(cluster.client, spec, todo)
            for fut in as_completed([f for f, _ in futures.values()]):
                cell = futures[fut.key][1]
                try:
                    r = fut.result()
                except Exception as exc:  # noqa: BLE001 -- one broken cell must not stop the sweep
                    errors += 1
                    r = {"status": "error", "message": f"{type(exc).__name__}: {exc}", "worker": ""}
                else:
                    cache.put(cell, r)
                results[cell["key"]] = r
                log.append({"key": cell["key"], "cell": _cell_name(cell), "source": "computed", "status": r["status"],
                            "worker": r.get("worker", ""), "message": r.get("message", "")})
                say(_progress(len(results), len(cells), cell, r))
                fut.release()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            cluster.close()
    ds, sidecar = _write(spec, cells, results, log, out, command, time.perf_counter() - start, interrupted)
    say(f"srflow sweep: {sum(1 for c in cells if c['key'] in results)}/{len(cells)} cell(s) in "
        f"{time.perf_counter() - start:.1f} s{' (interrupted)' if interrupted else ''}"
        f"{f', {errors} error(s)' if errors else ''}; {out / 'sweep.nc'}")
    if interrupted:
        raise KeyboardInterrupt
    return ds, sidecar


def _write(spec, cells, results, log, out: Path, command, seconds: float, interrupted: bool):
    from .provenance import provenance

    ok = {k: r for k, r in results.items() if r["status"] != "error"}
    ds = assemble(spec, cells, ok)
    prov = provenance()
    spec_json = {"models": list(spec.models), "labels": list(spec.labels), "seeds": list(spec.seeds),
                 "eta_lambda": list(spec.eta_lambda), "checks": list(spec.checks),
                 "config": dataclasses.asdict(spec.config)}
    complete = not interrupted and len(ok) == len(cells)
    ds.attrs.update({
        "title": "srflow sweep", "command": " ".join(command or sys.argv), "spec": spec.text,
        "spec_json": json.dumps(spec_json), "seeds": list(spec.seeds), "git_revision": prov["git_revision"],
        "git_dirty": -1 if prov["git_dirty"] is None else int(prov["git_dirty"]),
        "git_revision_source": prov["git_revision_source"], "code_version": prov["code_version"],
        "versions": json.dumps(prov["versions"]), "complete": int(complete),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    sidecar = {"command": command or sys.argv, "argv": sys.argv, "cwd": os.getcwd(), "spec": spec.text, "resolved_spec": spec_json, **prov,
               "complete": complete, "interrupted": interrupted, "seconds": round(seconds, 2),
               "counts": {"cells": len(cells), "finished": len(ok),
                          "from_cache": sum(e["source"] == "cache" for e in log),
                          "computed": sum(e["source"] == "computed" and e["status"] != "error" for e in log),
                          "errors": len(results) - len(ok)},
               "cells": log}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "sweep.nc.tmp"
    ds.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, out / "sweep.nc")
    tmp = out / "sweep.json.tmp"
    tmp.write_text(json.dumps(sidecar, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, out / "sweep.json")
    return ds, sidecar


# -- the command line ---------------------------------------------------------------------------------------
def default_cache() -> Path:
    """$XDG_CACHE_HOME/srflow/sweep, else ~/.cache/srflow/sweep."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "srflow" / "sweep"


def add_parser(sub) -> None:
    """The ``sweep`` subcommand of ``srflow``."""
    p = sub.add_parser("sweep", help="models × seeds × ηλ (or checks) on Dask, into one xarray Dataset (netCDF)",
                       description="Run a sweep on dask.distributed: one cell per (model, seed, ηλ or check), each "
                       "cached by a hash of its spec and of the code (a rerun computes only what is missing).",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="the sweep, a TOML file (see the example below)")
    p.add_argument("--out", metavar="DIR", help="output folder (default ./srflow-out/sweep-<timestamp>; never "
                   "overwritten)")
    p.add_argument("--cache", metavar="DIR", help=f"cell cache (default {default_cache()})")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (e.g. tcp://host:8786); "
                   "default: a LocalCluster on this machine")
    p.add_argument("--workers", type=int, help="worker processes of the LocalCluster (default: up to 2)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_sweep)


def _out_dir(arg: str | None) -> Path:
    from .cli import _writable

    if arg is None:
        base = Path("srflow-out") / time.strftime("sweep-%Y%m%d-%H%M%S")
        out, k = base, 1
        while out.exists():
            out, k = base.with_name(f"{base.name}-{k}"), k + 1
    else:
        out = Path(arg)
        if (out / "sweep.nc").exists():
            raise SystemExit(f"srflow: sweep: --out: {out} already holds a sweep; choose another folder or remove it")
    return _writable(out, "srflow: sweep: --out")


def _command(args) -> list[str]:
    """The command line that reproduces this sweep (whether it came from the shell or from ``main(argv)``)."""
    cmd = ["srflow", "sweep", args.spec]
    for flag in ("out", "cache", "scheduler", "workers"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag}", str(getattr(args, flag))]
    return cmd + (["--quiet"] if args.quiet else [])


def cmd_sweep(args) -> int:
    from .cli import _writable

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        raise SystemExit(f"srflow: sweep: {exc}")
    if args.workers is not None and args.workers < 1:
        raise SystemExit("srflow: sweep: --workers: expected a positive integer")
    start = time.perf_counter()
    out = _out_dir(args.out)
    cache = _writable(Path(args.cache) if args.cache else default_cache(), "srflow: sweep: --cache")
    try:
        _, sidecar = run_sweep(spec, out, cache, args.scheduler, args.workers, args.quiet, _command(args))
    except KeyboardInterrupt:
        print(f"\nsrflow: sweep interrupted; finished cells are cached in {cache} and written to {out}",
              file=sys.stderr)
        return 130
    c, seconds = sidecar["counts"], time.perf_counter() - start
    errors = f", {c['errors']} error(s)" if c["errors"] else ""
    print(f"{c['finished']}/{c['cells']} cell(s) ({c['from_cache']} from the cache, {c['computed']} computed{errors}) "
          f"in {seconds:.1f} s -> {out / 'sweep.nc'}")
    failed = any(e["status"] in ("fail", "error") for e in sidecar["cells"])
    return 1 if failed else 0
