"""What a sweep computes: the work done on the Dask workers (flows, tracking cells, check cells), the cell cache,
and the tidy Dataset assembled from finished cells (verification/sweep.py describes them)."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np

from . import tolerances as _tol
from .runner import one_blas_thread
from .sweep_spec import SweepSpec, cell_name

#: per-record series of a tracking cell, in the dataset on (model, seed, eta_lambda, record)
SERIES = ("loss", "norm_sq", "lam1", "eta_eff_lam1", "phi_lam1", "offset_sq", "s", "s_predicted", "tracking_error_t")
#: per-cell numbers of a tracking cell, in the dataset on (model, seed, eta_lambda)
SCALARS = ("path_error", "clock_error", "tracking_error", "naive_clock_error", "eta_eff_lam1_mean",
           "eta_eff_lam1_predicted", "lam1_final", "lam1_flow_final", "norm_sq_final", "steps", "seconds")


# -- work done on the workers -------------------------------------------------------------------------------
def _session(model: str, seed: int, config):
    """The Session ``srflow verify --models MODEL --seed SEED`` builds (its draws depend on (seed, spec) only)."""
    from .session import Session
    from .verify import build_model

    return Session(build_model(model, seed), config, seed, quiet=True, spec=model)


def compute_flow(model: str, seed: int, config):
    """The canonical flow from θ₀ of (model, seed) to the horizon of the flow-tracking check."""
    from .tracking import gdwd_horizon

    with one_blas_thread():
        session = _session(model, seed, config)
        return session.flow(gdwd_horizon(session))


def run_tracking_cell(cell: dict, config, flow) -> dict:
    """``_tracking_cell`` with one BLAS thread (``runner.one_blas_thread``, as a verify job)."""
    with one_blas_thread():
        return _tracking_cell(cell, config, flow)


def _tracking_cell(cell: dict, config, flow) -> dict:
    """One tracking cell: the GD+WD run at ηλ (``Session.gdwd_run``) against ``flow``.

    * ``path_error``, ``clock_error``, ``tracking_error``: ``tracking.path_error``, ``tracking.clock_error`` with the
      clock ``theory.gdwd_steps`` and ``tracking.phi_error`` at s(t) from that clock; ``naive_clock_error`` the
      clock error of ``theory.naive_gdwd_steps``;
    * ``eta_eff_lam1`` = η_eff·λ₁(w̄_t) = ηλ₁(∇²L(w_t))/(1 - ηλ) (``theory.eta_eff_sharpness``; λ₁ is of degree
      -2), averaged over the pair t, t+1 (the ±a∇³L[v₁,v₁,v₁] term cancels over a pair); ``eta_eff_lam1_predicted``
      is the same function at ``theory.eos_threshold``: 2, the leading-order flip condition (the O(ηλ) term of
      η⟨λ₁⟩ is eos-equilibrium's);
    * per record: ``tracking_error_t`` = ‖Φ(w̄_t) - ζ(s(t))‖, ``s`` the run's intrinsic clock s_t and
      ``s_predicted`` = s(t).
    """
    import socket

    import srflow.theory as th

    from .tracking import clock_error, path_error, phi_error

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
    pair = 0.5 * (tr.lam1 + tr.lam1_next)
    eta_eff_lam1 = th.eta_eff_sharpness(lr, wd, pair)
    scalars = {
        "path_error": path_error(tr, flow),
        "clock_error": clock_error(tr, flow, clk),
        "tracking_error": phi_error(tr, flow, s_pred),
        "naive_clock_error": clock_error(tr, flow, th.naive_gdwd_steps(flow, lr, wd)),
        "eta_eff_lam1_mean": float(np.mean(eta_eff_lam1)),
        # the period-2 flip condition η_eff·λ₁ = 2 (leading order; the O(ηλ) term is eos-equilibrium's)
        "eta_eff_lam1_predicted": th.eta_eff_sharpness(lr, wd, th.eos_threshold(lr, wd)),
        "lam1_final": float(tr.phi_lam1[-1]),
        "lam1_flow_final": float(np.interp(s_pred[-1], flow.s, flow.lam1)),
        "norm_sq_final": float(tr.norm_sq[-1]),
        "steps": int(tr.steps[-1]),
        "seconds": round(time.perf_counter() - start, 3),
    }
    series = {"step": tr.steps, "tau": tr.tau, "loss": tr.loss, "norm_sq": tr.norm_sq, "lam1": tr.lam1,
              "eta_eff_lam1": eta_eff_lam1, "phi_lam1": tr.phi_lam1, "offset_sq": tr.offset_sq, "s": tr.clock,
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
    run_job(cell["model"], 0, (cell["check"],), config, cell["seed"], True, out.append,
            short_ladder=cell.get("short_ladder", ""))
    res = out[0]  # status as plain str, as a cached cell has it (JSON): a dataset cannot mix the enum and str
    return {"status": str(res.status), "message": res.message, "worker": f"{socket.gethostname()}:{os.getpid()}",
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
            warnings.warn(f"sweep cache: {path} is unreadable ({exc}); {cell_name(cell)} is recomputed",
                          RuntimeWarning, stacklevel=2)
            return None

    def put(self, cell: dict, result: dict) -> None:
        path = self.path(cell["key"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": cell["key"], "cell": cell, "result": result}), encoding="utf-8")
        os.replace(tmp, path)


# -- the dataset ----------------------------------------------------------------------------------------------
def num(x) -> float:
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
            scaled[i], seconds[i] = num(r["scaled_error"]), num(r["seconds"])
            details[i] = json.dumps(r["details"], ensure_ascii=False)
            for j, p in enumerate(preds):
                if p in r.get("resolving_power", {}):
                    power[i + (j,)] = num(r["resolving_power"][p])
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
    check's order (O(ηλ)), when every rung finished "ok"; no rungs are added (a sweep's ladder is the user's).
    On a short ladder (``spec.short_ladder``) a pass or fail becomes "inconclusive", as in ``srflow verify``."""
    from .ladder import GDWD_ORDER
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
            # str, not the Status enum: netCDF stores an object array only when all its entries are plain str
            verdict[i], reason[i], order[i], order_se[i] = str(v.status), v.reason, v.order, v.order_se
            if spec.short_ladder and v.status in ("pass", "fail"):
                verdict[i] = "inconclusive"
                reason[i] = f"inconclusive: {spec.short_ladder} (--allow-short-ladder); measured: {v.status}: {v.reason}"
        out.update({f"{name}_verdict": (("model", "seed"), verdict), f"{name}_verdict_reason": (("model", "seed"), reason),
                    f"{name}_order": (("model", "seed"), order), f"{name}_order_se": (("model", "seed"), order_se)})
    return out


#: every variable and coordinate of a sweep's Dataset: its definition, unit and meaning (``srflow sweep --help``
#: prints them; tests/test_sweep.py checks that every variable of a dataset has one)
DESCRIPTIONS = {
    # coordinates
    "model": "the model's label (registered name, or the stem of path/to/file.py:factory)",
    "seed": "the seed of the model, its start point θ₀ on Γ and every random draw (as srflow verify --seed)",
    "eta_lambda": "ηλ = lr·wd of the GD+WD run (tracking sweeps), the small parameter of the theory",
    "check": "the theorem check of the cell (check sweeps; srflow list)",
    "record": "index of a record along a run (records are taken at odd step strides, as srflow verify does)",
    "step": "the recorded step t", "tau": "τ = ηλt at the recorded step",
    "prediction": "a prediction a check tests (for resolving_power)",
    # every cell
    "finished": "1 where the cell finished (0: interrupted, not run, or it raised: see sweep.json)",
    "status": "tracking: ok, diverged or assumption-violated (a monitor fired: spectral gap, distance from Γ); "
              "check: pass, fail, inconclusive or assumption-violated; '' where not finished",
    "message": "why a cell is not ok (the monitor or the check's message)",
    # tracking cells, one number per (model, seed, eta_lambda)
    "path_error": "max over records of ‖Φ(w̄_t) - ζ(s_t)‖ at the run's own intrinsic clock s_t: whether the limit "
                  "point moves along the flow's path at the flow's rate (a distance in parameter space, Γ on the unit "
                  "sphere); theory: O(ηλ) (tracking.path_error)",
    "clock_error": "max over every step of |s_t - s(t)|, s(t) the predicted clock (theory.gdwd_steps), in units of "
                   "flow time s; theory: O(ηλ) (tracking.clock_error)",
    "tracking_error": "max over records of ‖Φ(w̄_t) - ζ(s(t))‖ at the predicted clock s(t): path and clock errors "
                      "combined (≤ path_error + ‖dζ/ds‖·clock_error), a distance as path_error; O(ηλ) once both "
                      "are, not judged on its own (tracking.phi_error): path_verdict and clock_verdict judge the parts",
    "naive_clock_error": "clock_error of the naive clock s = 2ηλt (negative control: does not fall with ηλ)",
    "eta_eff_lam1_mean": "mean over records of η_eff·λ₁ = ηλ₁(∇²L(w_t))/(1 - ηλ), pair-averaged over t, t+1; "
                         "dimensionless, the EoS prediction is 2",
    "eta_eff_lam1_predicted": "the EoS prediction of η_eff·λ₁: η·theory.eos_threshold/(1 - ηλ) = 2",
    "lam1_final": "λ₁(∇²L(Φ(w̄_t))) at the last record", "lam1_flow_final": "λ₁(ζ(s(t))) at the last record",
    "norm_sq_final": "‖w_t‖² at the last record", "steps": "steps simulated",
    "seconds": "wall time of the cell in seconds (the only number that differs between identical runs)",
    # tracking cells, per record
    "loss": "L(w_t)", "norm_sq": "‖w_t‖²", "lam1": "λ₁(∇²L(w_t)), the largest algebraic eigenvalue",
    "eta_eff_lam1": "η_eff·λ₁ per record (pair-averaged)", "phi_lam1": "λ₁(∇²L(Φ(w̄_t)))",
    "offset_sq": "‖w̄_t - Φ(w̄_t)‖²", "s": "intrinsic clock s_t = Σ‖w̄_{k+1} - w̄_k‖²",
    "s_predicted": "s(t) from theory.gdwd_steps", "tracking_error_t": "‖Φ(w̄_t) - ζ(s(t))‖ per record",
    # tracking sweeps, per (model, seed): the verdict on the ladder
    "path_verdict": f"verdicts.judge of path_error over the ηλ ladder against the order O(ηλ): fitted order ≥ "
                    f"{1 - _tol.ORDER_MARGIN:g}, no constant assumed (pass, fail, inconclusive; 'not judged' unless "
                    "every rung is ok; inconclusive on a short ladder)",
    "path_verdict_reason": "the reason of path_verdict, with the local exponents and the rungs",
    "path_order": "exponent p of path_error ∝ (ηλ)^p fitted on the last 3 rungs (theory: 1)",
    "path_order_se": "standard error of path_order",
    "clock_verdict": "as path_verdict, for clock_error", "clock_verdict_reason": "the reason of clock_verdict",
    "clock_order": "exponent of clock_error ∝ (ηλ)^p on the last 3 rungs (theory: 1)",
    "clock_order_se": "standard error of clock_order",
    # check cells
    "scaled_error": "the check's scaled error: its largest error over its bound (≤ 1 passes)",
    "resolving_power": "δ*: the smallest relative perturbation of the prediction the check rejects on its runs "
                       "(inf: none up to 30%; NaN where the check did not pass)",
    "details": "the check's details as JSON (ladder, errors, local exponents, fitted orders, ...)",
}
