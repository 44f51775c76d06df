"""The report of ``srflow verify``: ``report.json`` and ``report.md``, rewritten (atomically) after every
check so that what has completed is always on disk.

``report.json`` holds ``state`` ("running", "complete" or "interrupted"), ``complete``, ``interrupted``,
``pid`` (of the writing run), ``not_run`` (the planned model · check pairs without a result, once the run has
ended), the results (status "pass", "fail", "inconclusive", "assumption-violated" or "error"; an error carries
its traceback in ``details.traceback``) and their ``counts``. A folder whose ``state`` is "running" while no
process holds its lock was left by a killed run: ``srflow verify --resume --out DIR`` finishes it.

A write that fails (a full disk) raises ``outdir.OutputWriteFailed``; ``finish`` then releases the folder's
``outdir.Reserve`` (space held for exactly this) and writes the last report, interrupted, with every finished
result. A resumed run starts from it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from .outdir import OutputWriteFailed, Reserve, atomic_write
from .session import CheckResult, VerifyConfig

#: every verdict, and how report.md shows it; "inconclusive", "assumption-violated" are not failures,
#: "error" is an internal error (a check raised, a worker crashed), not a verdict on the theorem
STATUS_MARK = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "inconclusive",
               "assumption-violated": "assumption violated", "error": "**ERROR**"}


def versions() -> dict:
    import matplotlib
    import scipy
    import sympy

    try:
        from importlib.metadata import version
        srflow = version("srflow")
    except Exception:  # noqa: BLE001 -- running from a checkout without installing
        srflow = "not installed"
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "sympy": sympy.__version__, "matplotlib": matplotlib.__version__, "srflow": srflow}


def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def result_from_json(data: dict) -> CheckResult:
    """A ``CheckResult`` from its ``report.json`` entry (non-finite numbers were stored as null)."""
    names = {f.name for f in fields(CheckResult)}
    res = CheckResult(**{k: v for k, v in data.items() if k in names})
    if res.scaled_error is None:
        res.scaled_error = float("nan")
    return res


def count_text(counts: dict) -> str:
    """'3 pass, 1 fail, 0 assumption violated' plus the inconclusive and error counts when there are any."""
    parts = [f"{counts['pass']} pass", f"{counts['fail']} fail", f"{counts['assumption-violated']} assumption violated"]
    parts += [f"{counts[s]} {s}" for s in ("inconclusive", "error") if counts.get(s)]
    return ", ".join(parts)


def summary_cell(r: CheckResult | None) -> str:
    """One cell of the summary table: the verdict and the scaled error."""
    return "" if r is None else f"{STATUS_MARK.get(r.status, r.status)} ({_fmt(r.scaled_error)})"


def _delta(r: CheckResult | None, key: str) -> str:
    """A resolving power δ* for the table ("inf" as stored in JSON, NaN/None as '-')."""
    if r is None or key not in r.resolving_power:
        return ""
    v = r.resolving_power[key]
    if v in ("inf", float("inf")):
        return "inf"
    return "-" if v is None or not np.isfinite(v) else f"{v:.2g}"


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, (float, np.floating)):
        return "-" if not np.isfinite(x) else f"{x:.4g}"
    return str(x)


class Report:
    """Collects check results and keeps ``out/report.json`` and ``out/report.md`` up to date."""

    def __init__(self, out: Path, config: VerifyConfig, seed: int, models: list[str], checks: list[str],
                 mode: str, planned: list[tuple[str, str]] | None = None, previous: dict | None = None,
                 notes: list[str] | None = None, extra: dict | None = None):
        """``planned``: the (model label, check) pairs this run should produce; ``previous``: the report.json
        of an interrupted run being resumed (its results are kept)."""
        self.out, self.results, self.figures = out, [], {}
        self.reserve = Reserve(out)
        self.planned = list(planned or [])
        self.meta = {"config": asdict(config), "mode": mode, "seed": seed, "models": models, "requested_checks": checks,
                     "versions": versions(), "git_revision": git_revision(), "complete": False,
                     "interrupted": False, "state": "running", "pid": os.getpid(), "notes": list(notes or []),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S"), **(extra or {})}
        if previous is not None:
            self.meta["resumed_from"] = {"started": previous.get("started"), "state": previous.get("state")}
            self.meta["started"] = previous.get("started", self.meta["started"])
            self.results = [result_from_json(c) for c in previous.get("checks", []) if c.get("status") != "error"]
            self.figures = {(r.model, r.name): f for r in self.results
                            if (f := f"figures/{r.model}-{r.name}.png") and (out / f).exists()}
        self.write()

    def add(self, res: CheckResult, figure: str | None = None) -> None:
        self.results.append(res)
        if figure:
            self.figures[(res.model, res.name)] = figure
        self.write()

    def finish(self, seconds: float, interrupted: bool = False, reason: str = "") -> None:
        """Mark the run ended: ``complete`` (every planned check has a result) or ``interrupted`` (``reason``, e.g.
        a full disk, goes into the notes). The reserve is released first, so the last write finds room."""
        self.meta.update({"complete": not interrupted and not self.not_run(), "seconds": round(seconds, 1),
                          "interrupted": interrupted, "state": "interrupted" if interrupted else "complete",
                          "not_run": [{"model": m, "check": c} for m, c in self.not_run()]})
        if reason:
            self.meta["notes"] = [*self.meta["notes"], f"interrupted: {reason}"]
        self.reserve.release()
        self.write(reserve=False)

    def not_run(self) -> list[tuple[str, str]]:
        """Planned (model, check) pairs without a result."""
        have = {(r.model, r.name) for r in self.results}
        return [p for p in self.planned if p not in have]

    def _ordered(self) -> list[CheckResult]:
        """Results by model (in order of completion of their first result), then in the order of the checks."""
        first = {}
        for r in self.results:
            first.setdefault(r.model, len(first))
        order = {c: i for i, c in enumerate(self.meta["requested_checks"])}
        return sorted(self.results, key=lambda r: (first[r.model], order.get(r.name, len(order))))

    def counts(self) -> dict:
        return {s: sum(r.status == s for r in self.results) for s in STATUS_MARK}

    def write(self, reserve: bool = True) -> None:
        """Rewrite report.json and report.md (atomically), then grow the reserve to their size (``reserve``).
        Raises ``OutputWriteFailed`` when the folder cannot take them."""
        data = {"checks": [r.to_json() for r in self.results], **self.meta, "counts": self.counts()}
        text, md = json.dumps(data, indent=1, ensure_ascii=False) + "\n", self.markdown()
        try:
            atomic_write(self.out / "report.json", text)
            atomic_write(self.out / "report.md", md)
            if reserve:
                self.reserve.ensure(2 * (len(text.encode()) + len(md.encode())))
        except OSError as exc:
            raise OutputWriteFailed(self.out, exc) from exc

    def markdown(self) -> str:
        m, c = self.meta, self.counts()
        state = {"complete": "complete", "interrupted": "interrupted"}.get(m["state"], "in progress")
        lines = [
            "# srflow verify",
            "",
            f"Run {state}: {len(self.results)} result(s): {count_text(c)}"
            + (f", in {m['seconds']} s" if "seconds" in m else "") + ".",
            f"Mode `{m['mode']}`, seed {m['seed']}, srflow {m['versions']['srflow']} at git {m['git_revision'][:12]}, "
            f"started {m['started']}" + (" (resumed)" if "resumed_from" in m else "") + ".",
            "",
        ]
        if m["state"] == "running":
            lines += [f"(Written by process {m['pid']} while it runs. If no srflow process is running, that run was "
                      f"killed: `srflow verify --resume --out {self.out}` finishes it.)", ""]
        if m["state"] == "interrupted":
            lines += [f"Interrupted: {len(self.not_run())} planned check(s) did not run (listed under *Not run*); "
                      f"`srflow verify --resume --out {self.out}` runs them.", ""]
        lines += [f"Note: {note}" for note in m["notes"]] + ([""] if m["notes"] else [])
        lines += [
            "Each check compares a simulation with a prediction of the theory (docs/theory.md). Convergence checks "
            "measure errors on a ladder of their small parameter (ηλ, ε or η) and judge them against the order the "
            "theory states (docs/theory.md §7): **pass** when the local exponents have settled at that order and the "
            "error is within C·parameter^p; **fail** when the error settles at a lower order (a floor: the prediction "
            "is off by a fixed amount) or exceeds the bound; **inconclusive** when the ladder, extended within its "
            "budget, is not yet asymptotic (the reason and the rungs are stated). The summary cell shows the verdict "
            "and the largest error over its bound (≤ 1 passes). *assumption violated* means a hypothesis of the "
            "theorem fails on this model or run; *ERROR* is a defect of the run (a check raised, a worker died), "
            "with its traceback. **Resolving power** δ*: the smallest relative perturbation of each prediction "
            "that the same recorded runs reject -- the smaller, the finer the check.",
            "",
            "## Summary",
            "",
        ]
        results = self._ordered()
        models = list(dict.fromkeys(r.model for r in results))
        checks = [c for c in m["requested_checks"] if any(r.name == c for r in results)]
        lines += ["| check | " + " | ".join(models) + " |", "| --- |" + " --- |" * len(models)]
        by = {(r.model, r.name): r for r in self.results}
        for ch in checks:
            cells = [summary_cell(by.get((mo, ch))) for mo in models]
            lines.append(f"| {ch} | " + " | ".join(cells) + " |")
        powers = list(dict.fromkeys((r.name, k) for r in results for k in r.resolving_power))
        if powers:
            lines += ["", "## Resolving power δ*", "",
                      "The smallest relative perturbation of the prediction that the check rejects on its recorded "
                      "runs (inf: not rejected up to 30%; - : the check did not pass, so δ* has no meaning).", "",
                      "| check | prediction | " + " | ".join(models) + " |", "| --- | --- |" + " --- |" * len(models)]
            for ch, key in powers:
                cells = [_delta(by.get((mo, ch)), key) for mo in models]
                lines.append(f"| {ch} | {key} | " + " | ".join(cells) + " |")
        infos = {r.model: r.model_info for r in results if r.model_info}
        if infos:
            lines += ["", "## Models and start points", "",
                      "| model | spec | seed | dim | θ₀ (sha256) | L(θ₀) | λ₁(θ₀) | G(θ₀) |", "| --- |" + " --- |" * 7]
            for mo, i in infos.items():
                lines.append(f"| {mo} | `{i.get('spec')}` | {i.get('seed')} | {i.get('dim')} | {i.get('theta0_sha256')} | "
                             f"{_fmt(i.get('loss_theta0'))} | {_fmt(i.get('lam1_theta0'))} | {_fmt(i.get('G_theta0'))} |")
        bad = [r for r in results if r.status != "pass"]
        if bad:
            lines += ["", "## Not passing", ""]
            lines += [f"- **{r.model} · {r.name}** ({STATUS_MARK.get(r.status, r.status)}): {r.message}" for r in bad]
        missing = self.not_run() if m["state"] != "running" else []
        if missing:
            lines += ["", "## Not run", ""] + [f"- {mo} · {ch}" for mo, ch in missing]
        lines += ["", "## Results", ""]
        for r in results:
            lines += [f"### {r.model} · {r.name}: {STATUS_MARK.get(r.status, r.status)}", "", r.message, "",
                      f"predicted {_fmt(r.predicted)} · observed {_fmt(r.observed)} · tolerance {_fmt(r.tolerance)} · "
                      f"scaled error {_fmt(r.scaled_error)} · {r.seconds} s", ""]
            d = r.details
            cols = [k for k in ("errors", "path_errors", "clock_errors", "tracking_errors", "rest point_errors",
                                "combined_errors", "flow_errors", "naive_errors", "sharpness_deviation", "norm_deviation",
                                "c_observed", "c_predicted")
                    if k in d and d[k] is not None and "ladder" in d and len(d[k]) == len(d["ladder"])]
            if "ladder" in d and cols:
                lines += ["| parameter | " + " | ".join(cols) + " |", "| --- |" + " --- |" * len(cols)]
                for i, x in enumerate(d["ladder"]):
                    lines.append(f"| {x:g} | " + " | ".join("-" if d[k][i] is None else f"{d[k][i]:.3e}" for k in cols)
                                 + " |")
                lines.append("")
            if r.details.get("traceback"):
                lines += ["```", r.details["traceback"].rstrip(), "```", ""]
            if (r.model, r.name) in self.figures:
                lines += [f"![{r.model} {r.name}]({self.figures[(r.model, r.name)]})", ""]
            diverged = [run["diverged"] for run in r.runs if run.get("diverged")]
            monitors = [mon for run in r.runs for mon in run.get("monitor", [])]
            if diverged or monitors:
                lines += ["Monitors: " + "; ".join(diverged + monitors[:3]), ""]
        lines += ["## Configuration", "", "```", json.dumps(m["config"], indent=1), "```", "",
                  "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()), ""]
        return "\n".join(lines)
