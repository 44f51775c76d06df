"""One spelling per quantity (issue 21): ηλ is ``eta_lambda``, λ₁ is ``lam1``, from the CLI to theory.

The source tree is searched line by line for the retired spellings with word-boundary regexes; a hit fails with
file:line. A line may carry a retired spelling only with a ``# names:`` comment saying why (a saved file format:
report.json and sweep.json keep the names old results were written with).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the folders searched (the package and the benchmarks; tests and docs may quote a retired name)
FOLDERS = ("theory", "verification", "toy_models", "figures", "srflow", "benchmarks")
#: the ``lr * wd`` product is the definition of ηλ where (η, λ) are the arguments: theory's closed forms, the
#: steppers (the step itself needs λ) and ``Trajectory.eta_lambda``
PRODUCT_ALLOWED = ("theory/", "verification/simulate.py", "verification/compiled.py", "verification/trajectory.py")
EXEMPT = "# names:"

RETIRED = {
    "wd_lr, WD_LR, entry_wd_lr: ηλ is eta_lambda": re.compile(r"\b(?:entry_)?(?:wd_lr|WD_LR)s?\b"),
    "lam, lam_phi: λ₁ is lam1": re.compile(r"\blam(?:_phi)?\b"),
    "lw as ηλ: eta_lambda (matplotlib's lw= keyword is not ηλ)": re.compile(r"\blw\b(?!\s*=(?!=))"),
    "sharpness as a name for λ₁: lam1 (the function sharpness(...) and the module theory.sharpness stay)":
        re.compile(r"(?<![\w.`])sharpness\s*(?::\s*(?:float|np\.)|=(?!=))"  # a variable or an argument
                   r"|(?<=[\w)\]])(?<!theory)\.sharpness\b(?!\s*\(|\.|\s+import)"  # an attribute
                   r"|\b(?:phi_)?sharpness_(?:mid|next)\b|\bphi_sharp(?:ness)?\b"),
    # a ladder of ηλ is config.ladder (verification/ladder.py's x is any small parameter: ηλ, η or ε)
    "x, xs as ηλ: eta_lambda": re.compile(r"\bfor\s+xs?\s+in\s+(?:\w+\.)+ladder\b|\bxs?\s*=\s*[\w.]*\blr\s*\*\s*[\w.]*\bwd\b"),
}
PRODUCT = ("lr * wd recomputed: eta_lambda (Trajectory.eta_lambda for a run)",
           re.compile(r"\b(?:\w+\.)?lr\s*\*\s*(?:\w+\.)?wd\b"))


def retired_names(text: str, path: str = "") -> list[tuple[int, str, str]]:
    """(line number, rule, line) of every retired spelling in ``text`` (the source of ``path``)."""
    rules = list(RETIRED.items())
    if not path.startswith(PRODUCT_ALLOWED):
        rules.append(PRODUCT)
    hits = []
    for n, line in enumerate(text.splitlines(), start=1):
        if EXEMPT in line:
            continue
        hits += [(n, rule, line.strip()) for rule, rx in rules if rx.search(line)]
    return hits


def source_files():
    for folder in FOLDERS:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_the_source_tree_uses_one_name_per_quantity():
    """No retired spelling of ηλ or λ₁ in theory, verification, toy_models, figures, srflow, benchmarks."""
    found = []
    for f in source_files():
        rel = f.relative_to(ROOT).as_posix()
        found += [f"{rel}:{n}: {rule}: {line}" for n, rule, line in retired_names(f.read_text(encoding="utf-8"), rel)]
    assert not found, "retired names:\n" + "\n".join(found)


def test_the_search_covers_the_package():
    """The folders exist and hold the modules (a search over nothing would pass)."""
    names = {f.relative_to(ROOT).as_posix() for f in source_files()}
    assert {"theory/predictions.py", "verification/checks/eos_entry.py", "figures/fig1_eos.py",
            "srflow/cli.py", "toy_models/registry.py"} <= names


@pytest.mark.parametrize("snippet", [
    "steps = int(round(tau_end / wd_lr))",
    "WD_LR = 1e-3",
    "wd = cfg.entry_wd_lr / cfg.lr",
    "for k, wd_lrs in enumerate(rows):",
    "lam = th.manifold_point(m, theta).lam1",
    "d = phase2_duration(lr, wd, n, lam_phi)",
    "return [self.gdwd_run(lw) for lw in self.config.ladder]",
    "label=f'ηλ = {lw:g}'",
    "def equilibrium_norm_sq(lr: float, wd: float, sharpness: float) -> float:",
    "sharpness = positive_real(x)",
    "near = tr.sharpness[i] * tr.norm_sq[i]",
    "pair = 0.5 * (tr.sharpness + tr.sharpness_next)",
    "rec['phi_sharp'].append(v)",
    "steps = [int(round(config.tau_end / x)) for x in config.ladder]",
    "xs = sorted((float(x) for x in cfg.ladder), reverse=True)",
    "x = dense.lr * dense.wd",
    "xs = np.array([tr.lr * tr.wd for tr in runs])",
])
def test_a_retired_name_is_found(snippet):
    """Each retired spelling in a snippet is reported, with its line."""
    hits = retired_names("a = 1\n" + snippet + "\n", "verification/checks/example.py")
    assert hits and all(n == 2 for n, _, _ in hits), hits


def test_the_product_is_found_outside_theory_and_the_steppers():
    snippet = "pair_means = tr.lr * 0.5 * x\nse = blocked(tr.steps, tr.lr * tr.wd)\n"
    assert [n for n, _, _ in retired_names(snippet, "verification/checks/example.py")] == [2]
    assert retired_names(snippet, "theory/predictions.py") == []


@pytest.mark.parametrize("snippet", [
    "ax.plot(x, y, lw=0.5)",
    "ax.axhline(y, color='k', lw = 0.5)",
    "lam1 = sharpness(model, w)",
    "from srflow.theory.sharpness import is_dense",
    "from .sharpness import check_hyperparameters",
    "switch = theory.sharpness.DENSE_MAX_DIM",
    "flow = sharpness_reduction_flow(model, theta0, 1.0)",
    "y = flow.sharpness_at(s)",
    "lams.append(lam1)",
    "    * ``sharpness``: η⟨λ₁(∇²L(w_t))⟩",
    "saved = {'wd_lr': eta_lambda}  # names: saved -- report.json's key",
])
def test_allowed_spellings_are_not_reported(snippet):
    """matplotlib's lw=, the function and module ``sharpness``, the flow's name, and an exempted saved name pass."""
    assert retired_names(snippet + "\n", "verification/checks/example.py") == []


def test_saved_files_keep_their_names():
    """report.json and sweep.json keep the config key ``entry_wd_lr`` that old results were written with, and read
    it back into ``VerifyConfig.entry_eta_lambda`` (a resumed run and an old sweep spec keep their value)."""
    import dataclasses

    from srflow.verification.session import QUICK, VerifyConfig, config_fields, config_record

    config = dataclasses.replace(QUICK, entry_eta_lambda=2e-4)
    record = config_record(config)
    assert record["entry_wd_lr"] == 2e-4 and "entry_eta_lambda" not in record
    assert VerifyConfig(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in config_fields(record).items()}) == config
    assert config_fields({"entry_wd_lr": 1e-4, "unknown": 1}) == {"entry_eta_lambda": 1e-4}


def test_a_sweep_spec_may_use_the_saved_name():
    """A sweep spec written with the saved name ``entry_wd_lr`` sets ``entry_eta_lambda``; the new name works too."""
    from srflow.verification.sweep_spec import parse_spec

    for key in ("entry_wd_lr", "entry_eta_lambda"):
        spec = parse_spec({"models": ["sphere_circle"], "eta_lambda": [1e-3, 3e-4], "config": {key: 2e-4}})
        assert spec.config.entry_eta_lambda == 2e-4
