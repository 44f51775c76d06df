"""The spec of ``srflow sweep`` (a TOML file, validated) and its cells, each with the key that caches it
(verification/sweep.py describes the cells and the cache)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from pathlib import Path

from .verify import MAX_ETA_LAMBDA, short_ladder, spec_label

SPEC_KEYS = ("models", "seeds", "eta_lambda", "checks", "config")
#: fields of VerifyConfig that a tracking cell reads (its cache key depends on these only)
TRACKING_FIELDS = ("lr", "tau_end", "records")


class SpecError(ValueError):
    """A sweep spec that cannot be run; the message names the key and what was expected."""


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: ``models`` (registered names or ``file.py:factory`` with an absolute path), their labels in
    the dataset, ``seeds``, ``eta_lambda`` (decreasing), ``checks`` (empty: tracking cells), the configuration,
    the spec's text, and ``short_ladder``: why the ladder is too short for a verdict on a fitted exponent (as
    ``srflow verify``: fewer than 4 values over 1.5 decades; "" when it is not) -- the ladder verdicts are then
    inconclusive, and ``srflow sweep`` refuses to start without ``--allow-short-ladder``."""

    models: tuple[str, ...]
    labels: tuple[str, ...]
    seeds: tuple[int, ...]
    eta_lambda: tuple[float, ...]
    checks: tuple[str, ...]
    config: object
    text: str = ""
    short_ladder: str = ""

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


def parse_spec(data: dict, text: str = "", base_dir: Path | None = None) -> SweepSpec:
    """Validate a spec (the TOML table ``data``); relative model files are resolved against ``base_dir``
    (the spec file's folder)."""
    from srflow.theory import check_hyperparameters
    from srflow.toy_models import REGISTRY

    from .checks import CHECKS
    from .session import FULL, QUICK, SAVED_NAMES

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
    labels = [spec_label(m) for m in resolved]
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
    saved = {v: k for k, v in SAVED_NAMES.items()}  # a spec written with a field's saved name still reads
    cfg_data = {saved.get(k, k): v for k, v in cfg_data.items()}
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
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ladder)):
        raise SpecError(f"eta_lambda: expected a list of numbers in (0, {MAX_ETA_LAMBDA:g}), got {ladder!r}")
    ladder = tuple(sorted({float(v) for v in ladder}, reverse=True))
    cfg = dataclasses.replace(cfg, **cfg_data, ladder=ladder)
    try:
        check_hyperparameters(cfg.lr)
        for eta_lambda in ladder:
            if not (math.isfinite(eta_lambda) and 0 < eta_lambda < MAX_ETA_LAMBDA):
                raise ValueError(f"expected values of ηλ in (0, {MAX_ETA_LAMBDA:g}) (ηλ is the small parameter of "
                                 f"the theory), got {eta_lambda!r}")
            check_hyperparameters(cfg.lr, eta_lambda / cfg.lr)
        if cfg.tau_end <= 0 or cfg.records < 2:
            raise ValueError(f"config: expected tau_end > 0 and records ≥ 2, got {cfg.tau_end!r}, {cfg.records!r}")
    except ValueError as exc:
        raise SpecError(f"eta_lambda/config: {exc}") from None
    return SweepSpec(tuple(resolved), tuple(labels), tuple(int(s) for s in seeds), ladder, tuple(checks), cfg, text,
                     short_ladder(ladder))


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
    from .session import config_record

    cfg = config_record(spec.config)
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
                    cell["short_ladder"] = spec.short_ladder  # a function of the ladder, which is in the key
                    full = {**ident, "seed": seed, "check": unit, "config": cfg}
                else:
                    cell["eta_lambda"] = unit
                    cell["flow"] = flow_key
                    full = {**ident, "seed": seed, "eta_lambda": unit, "config": track_cfg}
                cell["key"] = _sha({"kind": spec.kind, **full, "code": code})
                cells.append(cell)
    return cells


def cell_name(cell: dict) -> str:
    unit = f"ηλ={cell['eta_lambda']:g}" if cell["kind"] == "tracking" else cell["check"]
    return f"{cell['label']} seed={cell['seed']} {unit}"
