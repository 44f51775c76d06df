"""The report of ``srflow verify``: ``report.json`` and ``report.md``, rewritten (atomically) after every
check so that what has completed is always on disk.

``report.json`` holds ``state`` ("running", "complete" or "interrupted"), ``complete``, ``interrupted``,
``pid`` (of the writing run), ``not_run`` (the planned model · check pairs without a result, once the run has
ended), the results (status "pass", "fail", "inconclusive", "assumption-violated" or "error"; an error carries
its traceback in ``details.traceback``) and their ``counts``, the source revision (``git_revision``,
``git_dirty``, ``git_revision_source``: from the checkout, or from the build after ``pip install .``; one function,
``provenance.source_revision``, for the report and the sweep) and ``theta0_files``: each model's start point θ₀
on Γ, saved beside the report as ``theta0-<model>.npy`` (``srflow verify --theta0 FILE.npy`` reuses it).
A folder whose ``state`` is "running" while no process holds its lock was left by a killed run: ``srflow verify
--resume --out DIR`` finishes it.

report.md gives, for each result, one sentence a reader can repeat (the check's claim and its verdict on the
model), the numbers with their meaning and unit, the ladder with its local exponents, and the figure; the rule
that turns a ladder into a verdict is stated from ``verdicts.py`` and ``tolerances.py`` (``verdict_rule``).

A write that fails (a full disk) raises ``outdir.OutputWriteFailed``; ``finish`` then releases the folder's
``outdir.Reserve`` (space held for exactly this) and writes the last report, interrupted, with every finished
result. A resumed run starts from it."""

from __future__ import annotations

import io
import json
import os
import platform
import re
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from . import tolerances as tol
from .outdir import OutputWriteFailed, Reserve, atomic_write
from .provenance import source_revision
from .session import CheckResult, VerifyConfig, config_record

#: every verdict, and how report.md shows it; "inconclusive", "assumption-violated" are not failures,
#: "error" is an internal error (a check raised, a worker crashed), not a verdict on the theorem
STATUS_MARK = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "inconclusive",
               "assumption-violated": "assumption violated", "error": "**ERROR**"}


def versions() -> dict:
    import matplotlib
    import scipy
    import sympy

    from srflow import __version__

    try:
        from importlib.metadata import version
        installed = version("srflow")
    except Exception:  # noqa: BLE001 -- running from a checkout without installing
        installed = "not installed"
    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "sympy": sympy.__version__, "matplotlib": matplotlib.__version__, "srflow": __version__,
            "srflow_installed": installed}


def git_revision() -> str:
    """The source revision (``provenance.source_revision``: the checkout's, else the one the build recorded)."""
    return source_revision()["revision"]


def revision_text(meta: dict) -> str:
    """'git 1cf57c62266b (from the git checkout)' / '(recorded when this installation was built)' / unknown."""
    rev, source, dirty = meta.get("git_revision", "unknown"), meta.get("git_revision_source"), meta.get("git_dirty")
    if rev == "unknown":
        return "git revision unknown (neither a git checkout nor a build that recorded it)"
    where = {"checkout": "from the git checkout", "build": "recorded when this installation was built"}.get(
        source, source or "")
    state = "; with uncommitted changes" if dirty else ""
    return f"git {rev[:12]} ({where}{state})" if where else f"git {rev[:12]}"


def theta0_filename(label: str) -> str:
    """``theta0-<label>.npy`` with every character outside [A-Za-z0-9_.-] replaced by '_'."""
    return f"theta0-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}.npy"


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
    return "" if r is None else f"{STATUS_MARK.get(r.status, r.status)} ({_fmt(r.scaled_error, 2)})"


def _delta(r: CheckResult | None, key: str) -> str:
    """A resolving power δ* for the table ("inf" as stored in JSON, NaN/None as '-')."""
    if r is None or key not in r.resolving_power:
        return ""
    v = r.resolving_power[key]
    if v in ("inf", float("inf")):
        return "inf"
    return "-" if v is None or not np.isfinite(v) else f"{v:.2g}"


#: what each detail series of a check's ladder table is, and its unit (report.md's column headers)
QUANTITIES = {
    "errors": ("error", ""),
    "path_errors": ("path error max_t ‖Φ(w̄_t) − ζ(s_t)‖", "distance in parameter space, θ on the unit sphere"),
    "clock_errors": ("clock error max_t |s_t − s(t)|", "flow time s"),
    "combined_errors": ("max_t ‖Φ(w̄_t) − ζ(s(t))‖ at the predicted clock", "distance"),
    "tracking_errors": ("tracking error over the distance moved", "relative"),
    "rest point_errors": ("rest-point error |s_∞/predicted − 1|", "relative"),
    "flow_errors": ("clock error of the 4/(4+G) clock", "flow time s"),
    "naive_errors": ("clock error of the naive clock s = 2ηλt", "flow time s"),
    "sharpness_deviation": ("|η⟨λ₁⟩ − (2 + c·ηλ)|", "η·λ₁, dimensionless"),
    "norm_deviation": ("|⟨‖w_t‖²/prediction⟩ − 1|", "relative"),
    "c_observed": ("c measured (η⟨λ₁⟩ = 2 + c·ηλ)", "dimensionless"),
    "c_predicted": ("c predicted", "dimensionless"),
    "c_standard_error": ("standard error of c measured", "dimensionless"),
}

#: the numbers ``predicted``, ``observed``, ``tolerance`` of a check that compares one number with a tolerance:
#: (what they are, their unit)
VALUES = {
    "identities": ("worst identity error, in units of its tolerance (0 predicted: the identities are exact)", ""),
    "eos-entry": ("the step at which the edge of stability begins", "steps"),
    "scale-collapse": ("the largest relative difference between the two runs in τ = ηλt (0 predicted)", "relative"),
    "eos-equilibrium": ("η⟨λ₁⟩ at the smallest ηλ, predicted 2 + c·ηλ (the verdict: c's deviation extrapolated "
                        "to ηλ → 0, in the message)", "η·λ₁, dimensionless"),
    "naive-flow-rejected": ("the naive clock's error over the 4/(4+G) clock's at the smallest ηλ (needed: at least "
                            "the tolerance)", "ratio"),
}


def fmt_number(x, digits: int = 4) -> str:
    """A number for a reader: ``-`` for None/NaN, ``inf``, ``%.{digits}g`` otherwise; strings pass through."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if np.isnan(v):
        return "-"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}g}"


_fmt = fmt_number


def _cell(text: str) -> str:
    """Text for a markdown table cell: its '|' escaped (|x| and ‖·‖ notation would split the cell)."""
    return str(text).replace("|", "\\|")


def _fixed(x, decimals: int = 2) -> str:
    """An exponent: fixed decimals (``fmt_number``'s ``-``/``inf`` for the rest)."""
    text = fmt_number(x)
    return text if text in ("-", "inf", "-inf") or isinstance(x, str) else f"{float(x):.{decimals}f}"


def _check_record(name: str):
    try:
        from .checks import CHECKS
    except ImportError:  # pragma: no cover
        return None
    return CHECKS.get(name)


def claim(name: str) -> str:
    """The check's one-sentence claim (``Check.summary``; else the first line of its docstring)."""
    rec = _check_record(name)
    text = getattr(rec, "summary", None)
    if not text and rec is not None:
        text = (getattr(rec, "__doc__", None) or "").strip().split("\n\n")[0].replace("\n", " ")
    return (text or name).strip()


def headline(r: CheckResult) -> str:
    """The one sentence a reader can repeat: the claim, then the verdict on this model."""
    text = claim(r.name).rstrip(".")
    verdict = {"pass": "it holds (pass)", "fail": "it does NOT hold (FAIL)",
               "inconclusive": "not decided by these runs (inconclusive)",
               "assumption-violated": "not tested: an assumption of the theorem fails here (assumption violated)",
               "error": "not tested: the check raised an error (ERROR)"}.get(r.status, r.status)
    return f"**Claim:** {text}. **On {r.model}:** {verdict}."


def _ladder_verdicts(r: CheckResult) -> dict:
    """The ladder verdicts in ``details`` (name -> the dict of ``LadderVerdict.to_details``)."""
    return {k: v for k, v in r.details.items() if isinstance(v, dict) and "local_exponents" in v and "order" in v}


def values_text(r: CheckResult) -> list[str]:
    """The result's numbers with their meaning and unit (never a raw Python object)."""
    lines = []
    verdicts = _ladder_verdicts(r)
    rec = _check_record(r.name)
    order = getattr(rec, "order", None)
    if verdicts:
        lines += ["| error | at the smallest rung | fitted order (last 3 rungs) | theory | local exponents | "
                  "constant K = e/x^p there | verdict |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for key, v in verdicts.items():
            name = key.removesuffix("_verdict")
            label, unit = QUANTITIES.get(f"{name}_errors", (name, ""))
            ladder, errors = list(v.get("ladder", [])), list(v.get("errors", []))
            at = (f"{fmt_number(errors[-1], 3)} at {getattr(order, 'param', 'x')} = {fmt_number(ladder[-1], 3)}"
                  if errors and ladder else "-")
            p = v.get("p", getattr(order, "p", None))
            margin = v.get("margin", getattr(order, "margin", None))
            theory = (f"O(x^{fmt_number(p, 3)}): order ≥ {fmt_number(float(p) - float(margin), 3)}"
                      if p is not None and margin is not None and np.isfinite(float(p)) else "-")
            fitted = _fixed(v.get("order")) + (f" ± {_fixed(v.get('order_se'))}"
                                                if _fixed(v.get("order_se")) not in ("-", "inf") else "")
            local = ", ".join(_fixed(q) for q in list(v.get("local_exponents", []))) or "-"
            status = v.get("status", "")
            lines.append(f"| {_cell(label)}{f' ({unit})' if unit else ''} | {at} | {fitted} | {theory} | {local} | "
                         f"{fmt_number(v.get('constant'), 3)} | {status} |")
        lines.append("")
    elif r.status != "error" and (r.predicted is not None or r.observed is not None):
        what, unit = VALUES.get(r.name, ("the compared quantity", ""))
        tolerance = "" if isinstance(r.tolerance, str) or r.tolerance is None else \
            f"; tolerance {fmt_number(r.tolerance, 3)}"
        lines.append(f"Compared: {what}: predicted {fmt_number(r.predicted, 6)}, observed "
                     f"{fmt_number(r.observed, 6)}{tolerance}" + (f" ({unit})" if unit else "") + ".")
    if r.status != "error" and np.isfinite(r.scaled_error if r.scaled_error is not None else np.nan):
        what = ("the largest shortfall (p − fitted order)/margin" if verdicts
                else "the largest error over its tolerance")
        lines.append(f"Scaled error {fmt_number(r.scaled_error, 3)} ({what}; ≤ 1 passes) · {r.seconds} s.")
    elif r.seconds:
        lines.append(f"{r.seconds} s.")
    return lines + [""]


def verdict_rule(config: dict | None = None) -> str:
    """How a convergence check's ladder becomes a verdict, as ``verdicts.judge`` implements it, with the
    tolerances of ``tolerances.py`` and the extension budget of ``config``."""
    cfg = config or {}
    factor, budget, alp_budget = cfg.get("extend_factor", 2.0), cfg.get("extend_steps"), cfg.get("alp_extend_steps")
    alp_dim = cfg.get("alp_extend_dim")
    st, om, rt, fl, ct = tol.SETTLE_TOL, tol.ORDER_MARGIN, tol.RISING_TOL, tol.ERROR_FLOOR, tol.CONSTANT_TOL
    return (
        "**How a verdict is reached** (verification/verdicts.py, docs/theory.md §7). A convergence check measures "
        "its error e at rungs x₀ > x₁ > … of its small parameter (ηλ, ε or η); the theory states its order, "
        "e = O(x^p) (p is given with each result). No constant of e ≤ C·x^p is assumed (its size depends on the "
        "model); the constant K = e/x^p at the smallest rung is reported. Errors at or below the numerical floor "
        f"{fl:g} are left out, from the smallest rung up. With the local exponents "
        "q_i = log(e_{i−1}/e_i)/log(x_{i−1}/x_i):\n\n"
        f"- **pass**: the last two local exponents agree within {st:g}, the exponent fitted on the last three rungs is "
        f"at least p − {om:g} (an error that falls faster than x^p passes too), and K has settled: the shortfall of "
        f"the last local exponent below p, max(0, p − q), is no larger than the one before it or than {ct:g};\n"
        f"- **fail**: the last three local exponents agree within {st:g} at a fitted order below p − {om:g} and the "
        f"last does not rise by more than {rt:g} (the error tends to a floor: a prediction off by a fixed amount); "
        f"or two consecutive local exponents agreed at ≥ p − {om:g} on larger rungs and the last is below p − {om:g} "
        f"(the error stopped falling); or the last three local exponents are all below p − {om:g} and each is more "
        f"than {rt:g} below the one before (the error decelerates towards a floor); a non-finite error fails;\n"
        "- **inconclusive**: anything else (fewer than three rungs above the floor, local exponents not yet settled "
        "or rising towards p, a constant still growing, or an error that fell at the theory's order and then "
        f"flattened over the last two rung intervals, or whose local exponents fall rung after rung from ≥ p − {om:g}: "
        "a floor, or a plateau before a second fall, which more rungs decide): the check then adds rungs "
        f"x/{factor:g} below its ladder"
        + (f" within a budget of {budget:,} extra steps" if budget else "")
        + (f" ({alp_budget:,} for the ALP checks on a JAX model, which runs compiled"
           + (f"; × {alp_dim}/D above D = {alp_dim}, a budget of steps × D" if alp_dim else "") + ")"
           if budget and alp_budget else "")
        + ", and says why if the budget ends first."
        "\n\n"
        "Checks that compare one number with a tolerance (identities, eos-entry, scale-collapse) pass when "
        "|observed − predicted| ≤ tolerance; eos-equilibrium extrapolates the deviation of c (η⟨λ₁⟩ = 2 + c·ηλ) and "
        f"of the norm to ηλ → 0 and passes when it is within {tol.EOS_SEM_FACTOR:g} standard errors of 0. The "
        "summary cell shows the verdict and the scaled error, ≤ 1 passing: for a convergence check the shortfall "
        "(p − fitted order)/margin, for the others the error over its tolerance. *assumption violated* means a "
        "hypothesis of the theorem fails on this model or run (where and why is stated); *ERROR* is a defect of the "
        "run (a check raised, a worker died), with its traceback; neither is a failure of the theorem. **Resolving "
        "power** δ*: the smallest relative perturbation of a prediction that the same recorded runs no longer pass "
        "(both signs) -- the smaller, the finer the check.")


class Report:
    """Collects check results and keeps ``out/report.json`` and ``out/report.md`` up to date; saves each model's
    θ₀ as ``out/theta0-<model>.npy``."""

    def __init__(self, out: Path, config: VerifyConfig, seed: int, models: list[str], checks: list[str],
                 mode: str, planned: list[tuple[str, str]] | None = None, previous: dict | None = None,
                 notes: list[str] | None = None, extra: dict | None = None, theta0_given: dict | None = None):
        """``planned``: the (model label, check) pairs this run should produce; ``previous``: the report.json
        of an interrupted run being resumed (its results are kept); ``theta0_given``: label -> (θ₀, the file it
        came from) for the models started from ``--theta0``."""
        self.out, self.results, self.figures = out, [], {}
        self.reserve = Reserve(out)
        self.planned = list(planned or [])
        rev = source_revision()
        self.meta = {"config": config_record(config), "mode": mode, "seed": seed, "models": models, "requested_checks": checks,
                     "versions": versions(), "git_revision": rev["revision"], "git_dirty": rev["dirty"],
                     "git_revision_source": rev["source"], "complete": False,
                     "interrupted": False, "state": "running", "pid": os.getpid(), "notes": list(notes or []),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S"), "theta0_files": {}, "theta0_given": {},
                     **(extra or {})}
        if previous is not None:
            self.meta["resumed_from"] = {"started": previous.get("started"), "state": previous.get("state")}
            self.meta["started"] = previous.get("started", self.meta["started"])
            self.meta["theta0_files"] = {k: v for k, v in previous.get("theta0_files", {}).items() if (out / v).exists()}
            self.meta["theta0_given"] = dict(previous.get("theta0_given", {}))
            self.results = [result_from_json(c) for c in previous.get("checks", []) if c.get("status") != "error"]
            self.figures = {(r.model, r.name): f for r in self.results
                            if (f := f"figures/{r.model}-{r.name}.png") and (out / f).exists()}
        for label, (theta, source) in (theta0_given or {}).items():
            self.meta["theta0_given"][label] = str(source)
            self.save_theta0(label, theta)
        self.write()

    def save_theta0(self, label: str, theta) -> None:
        """Write θ₀ of model ``label`` as ``theta0-<label>.npy`` (once per model; float64, atomically)."""
        if label in self.meta["theta0_files"] or theta is None:
            return
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(theta, dtype=np.float64), allow_pickle=False)
        name = theta0_filename(label)
        try:
            atomic_write(self.out / name, buffer.getvalue())
        except OSError as exc:
            raise OutputWriteFailed(self.out, exc) from exc
        self.meta["theta0_files"][label] = name

    def add(self, res: CheckResult, figure: str | None = None) -> None:
        self.results.append(res)
        if figure:
            self.figures[(res.model, res.name)] = figure
        self.save_theta0(res.model, res.theta0)
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
        data = {"checks": [r.to_json() for r in self.results], **self.meta, "counts": self.counts(),
                # what the numbers are: each check's claim, the meaning and unit of each ladder series in
                # ``details``, and of ``predicted``/``observed`` for the checks that compare one number
                "claims": {name: claim(name) for name in self.meta["requested_checks"]},
                "quantities": {k: {"meaning": m, "unit": u} for k, (m, u) in QUANTITIES.items()},
                "compared": {k: {"meaning": m, "unit": u} for k, (m, u) in VALUES.items()}}
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
            f"Mode `{m['mode']}`, seed {m['seed']}, srflow {m['versions']['srflow']} at {revision_text(m)}, "
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
        lines += [verdict_rule(m.get("config")), "", "## Summary", "",
                  "Each cell: the verdict and, in parentheses, the check's scaled error -- its measured deviation over "
                  "what its criterion allows (at most 1 for a pass where the criterion is a bound; the check's message "
                  "below says which deviation). For an inconclusive or assumption-violated verdict it is the value the "
                  "check had computed when the ladder or the premise stopped it, not a verdict.", ""]
        results = self._ordered()
        models = list(dict.fromkeys(r.model for r in results))
        checks = [ch for ch in m["requested_checks"] if any(r.name == ch for r in results)]
        lines += ["| check | " + " | ".join(models) + " |", "| --- |" + " --- |" * len(models)]
        by = {(r.model, r.name): r for r in self.results}
        for ch in checks:
            cells = [summary_cell(by.get((mo, ch))) for mo in models]
            lines.append(f"| {ch} | " + " | ".join(cells) + " |")
        powers = list(dict.fromkeys((r.name, k) for r in results for k in r.resolving_power))
        if powers:
            lines += ["", "## Resolving power δ*", "",
                      "The smallest relative perturbation of the prediction that the check rejects on its recorded "
                      "runs, as a fraction (0.01 = 1%; inf: not rejected up to 30%; - : the check did not pass, so δ* "
                      "has no meaning).", "",
                      "| check | prediction | " + " | ".join(models) + " |", "| --- | --- |" + " --- |" * len(models)]
            for ch, key in powers:
                cells = [_delta(by.get((mo, ch)), key) for mo in models]
                lines.append(f"| {ch} | {key} | " + " | ".join(cells) + " |")
        infos = {r.model: r.model_info for r in results if r.model_info}
        if infos:
            lines += ["", "## Models and start points", "",
                      "θ₀ is the point of Γ (a minimizer, unit norm) every run of the model starts from; its file "
                      "reruns the model from the same point: `srflow verify --theta0 FILE.npy` (one model) or "
                      "`--theta0 MODEL=FILE.npy`. L is the loss, λ₁ the largest eigenvalue of the Hessian, "
                      "G = ‖∇_Γ log λ₁‖² (the clock's correction 4/(4+G)).", "",
                      "| model | spec | seed | D | θ₀ (file, sha256 of its float64 bytes) | L(θ₀) | λ₁(θ₀) | G(θ₀) |",
                      "| --- |" + " --- |" * 7]
            for mo, i in infos.items():
                file = m["theta0_files"].get(mo)
                given = m["theta0_given"].get(mo)
                where = (f"[{file}]({file})" if file else "not saved") + f", {i.get('theta0_sha256', '-')}" + (
                    f" (given: {given})" if given else "")
                lines.append(f"| {mo} | `{i.get('spec')}` | {i.get('seed')} | {i.get('dim')} | {where} | "
                             f"{fmt_number(i.get('loss_theta0'), 3)} | {fmt_number(i.get('lam1_theta0'), 6)} | "
                             f"{fmt_number(i.get('G_theta0'), 4)} |")
        bad = [r for r in results if r.status != "pass"]
        if bad:
            lines += ["", "## Not passing", ""]
            lines += [f"- **{r.model} · {r.name}** ({STATUS_MARK.get(r.status, r.status)}): {r.message}" for r in bad]
        missing = self.not_run() if m["state"] != "running" else []
        if missing:
            lines += ["", "## Not run", ""] + [f"- {mo} · {ch}" for mo, ch in missing]
        lines += ["", "## Results", ""]
        for r in results:
            lines += [f"### {r.model} · {r.name}: {STATUS_MARK.get(r.status, r.status)}", "", headline(r), "",
                      r.message, ""]
            lines += values_text(r)
            lines += _ladder_table(r)
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


def _ladder_table(r: CheckResult) -> list[str]:
    """The errors on every rung, one column per series (its meaning and unit in the header)."""
    d = r.details
    if "ladder" not in d:
        return []
    cols = [k for k in QUANTITIES if k in d and d[k] is not None and not isinstance(d[k], (str, dict))
            and np.ndim(d[k]) == 1 and len(d[k]) == len(d["ladder"])]
    if not cols:
        return []
    rec = _check_record(r.name)
    xname = getattr(rec, "xlabel", None) or "parameter"
    head = [_cell(QUANTITIES[k][0]) + (f" [{QUANTITIES[k][1]}]" if QUANTITIES[k][1] else "") for k in cols]
    lines = ["| " + _cell(xname) + " | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(cols)]
    for i, x in enumerate(d["ladder"]):
        lines.append(f"| {fmt_number(x, 4)} | " + " | ".join(
            "-" if d[k][i] is None else f"{float(d[k][i]):.3e}" for k in cols) + " |")
    return lines + [""]
