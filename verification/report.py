"""The report of ``srflow verify``: ``report.json`` and ``report.md``, rewritten (atomically) after every
check so that what has completed is always on disk."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .session import CheckResult, VerifyConfig

STATUS_MARK = {"pass": "pass", "fail": "**FAIL**", "assumption-violated": "assumption violated"}


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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, (float, np.floating)):
        return "-" if not np.isfinite(x) else f"{x:.4g}"
    return str(x)


class Report:
    """Collects check results and keeps ``out/report.json`` and ``out/report.md`` up to date."""

    def __init__(self, out: Path, config: VerifyConfig, seed: int, models: list[str], checks: list[str],
                 mode: str):
        self.out, self.results, self.figures = out, [], {}
        self.meta = {"config": asdict(config), "mode": mode, "seed": seed, "models": models, "requested_checks": checks,
                     "versions": versions(), "git_revision": git_revision(), "complete": False,
                     "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.write()

    def add(self, res: CheckResult, figure: str | None = None) -> None:
        self.results.append(res)
        if figure:
            self.figures[(res.model, res.name)] = figure
        self.write()

    def finish(self, seconds: float, interrupted: bool = False) -> None:
        self.meta.update({"complete": not interrupted, "seconds": round(seconds, 1), "interrupted": interrupted})
        self.write()

    def _ordered(self) -> list[CheckResult]:
        """Results by model (in order of completion of their first result), then in the order of the checks."""
        first = {}
        for r in self.results:
            first.setdefault(r.model, len(first))
        order = {c: i for i, c in enumerate(self.meta["requested_checks"])}
        return sorted(self.results, key=lambda r: (first[r.model], order.get(r.name, len(order))))

    def counts(self) -> dict:
        return {s: sum(r.status == s for r in self.results) for s in STATUS_MARK}

    def write(self) -> None:
        data = {"checks": [r.to_json() for r in self.results], **self.meta, "counts": self.counts()}
        _atomic_write(self.out / "report.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        _atomic_write(self.out / "report.md", self.markdown())

    def markdown(self) -> str:
        m, c = self.meta, self.counts()
        state = ("complete" if m["complete"] else "interrupted" if m.get("interrupted") else "in progress")
        lines = [
            "# srflow verify",
            "",
            f"Run {state}: {len(self.results)} result(s): {c['pass']} pass, {c['fail']} fail, "
            f"{c['assumption-violated']} assumption violated"
            + (f", in {m['seconds']} s" if "seconds" in m else "") + ".",
            f"Mode `{m['mode']}`, seed {m['seed']}, srflow {m['versions']['srflow']} at git {m['git_revision'][:12]}, "
            f"started {m['started']}.",
            "",
            "Each check compares a simulation with a prediction of the theory. *scaled error* = error / tolerance "
            "(pass ≤ 1). Convergence checks run a ladder of the small parameter (ηλ, ε or η) and also require the "
            "error to **fall** with it: the fitted exponent p of error ∝ parameter^p must exceed 0 by two standard "
            "errors. *assumption violated* means a hypothesis of the theorem fails on this model or run (where "
            "and why is stated); it is neither a pass nor a fail.",
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
            cells = []
            for mo in models:
                r = by.get((mo, ch))
                cells.append("" if r is None else f"{STATUS_MARK[r.status]} ({_fmt(r.scaled_error)})")
            lines.append(f"| {ch} | " + " | ".join(cells) + " |")
        bad = [r for r in results if r.status != "pass"]
        if bad:
            lines += ["", "## Not passing", ""]
            lines += [f"- **{r.model} · {r.name}** ({STATUS_MARK[r.status]}): {r.message}" for r in bad]
        lines += ["", "## Results", ""]
        for r in results:
            lines += [f"### {r.model} · {r.name}: {STATUS_MARK[r.status]}", "", r.message, "",
                      f"predicted {_fmt(r.predicted)} · observed {_fmt(r.observed)} · tolerance {_fmt(r.tolerance)} · "
                      f"scaled error {_fmt(r.scaled_error)} · {r.seconds} s", ""]
            d = r.details
            if "ladder" in d and ("errors" in d or "naive_errors" in d or "sharpness_deviation" in d):
                cols = [k for k in ("errors", "flow_errors", "naive_errors", "sharpness_deviation", "norm_deviation",
                                    "stop_rel_error") if k in d]
                lines += ["| parameter | " + " | ".join(cols) + " |", "| --- |" + " --- |" * len(cols)]
                for i, x in enumerate(d["ladder"]):
                    lines.append(f"| {x:g} | " + " | ".join(f"{d[k][i]:.3e}" for k in cols) + " |")
                lines.append("")
            if (r.model, r.name) in self.figures:
                lines += [f"![{r.model} {r.name}]({self.figures[(r.model, r.name)]})", ""]
            diverged = [run["diverged"] for run in r.runs if run.get("diverged")]
            monitors = [mon for run in r.runs for mon in run.get("monitor", [])]
            if diverged or monitors:
                lines += ["Monitors: " + "; ".join(diverged + monitors[:3]), ""]
        lines += ["## Configuration", "", "```", json.dumps(m["config"], indent=1), "```", "",
                  "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()), ""]
        return "\n".join(lines)
