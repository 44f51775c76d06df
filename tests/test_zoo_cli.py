"""``srflow zoo``: draws N zoo models and runs the checks through ``srflow verify``'s code path (runner, report,
exit statuses); the report gives the seed and every model's spec, and a printed name rebuilds the model."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from srflow.cli import main
from srflow.toy_models.zoo import zoo_specs

#: two numpy models (no JAX compile), two cheap checks
FAST = ["--n", "2", "--seed", "5", "--backends", "np", "--families", "curved", "rq_sum", "--quick", "--workers", "1",
        "--quiet"]


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_zoo_runs_the_checks_and_reports_seed_and_specs(tmp_path, capsys):
    out = tmp_path / "zoo"
    code = main(["zoo", *FAST, "--checks", "identities", "scale-collapse", "--out", str(out)])
    specs = zoo_specs(2, 5, families=["curved", "rq_sum"], backends=["np"])
    assert code == 0
    rep = _report(out)
    assert rep["seed"] == 5 and rep["models"] == [f"zoo:{s.name}" for s in specs] and rep["complete"]
    assert [(c["model"], c["name"]) for c in rep["checks"]] == [(s.name, c) for s in specs
                                                                 for c in ("identities", "scale-collapse")]
    assert all(c["status"] == "pass" for c in rep["checks"])
    assert {c["model_info"]["spec"] for c in rep["checks"]} == {f"zoo:{s.name}" for s in specs}
    md = (out / "report.md").read_text()
    assert "seed 5" in md and all(f"`zoo:{s.name}`" in md for s in specs)
    assert any("zoo: 2 model(s) drawn with seed 5" in n for n in rep["notes"])
    printed = capsys.readouterr().out
    assert "srflow zoo: seed 5" in printed and all(s.name in printed for s in specs)


def test_a_printed_name_reruns_the_same_model_with_verify(tmp_path):
    """``srflow verify --models zoo:NAME --seed S`` rebuilds model and start point of the zoo run."""
    out_zoo, out_one = tmp_path / "zoo", tmp_path / "one"
    assert main(["zoo", *FAST, "--n", "1", "--checks", "identities", "--out", str(out_zoo)]) == 0
    info = _report(out_zoo)["checks"][0]["model_info"]
    assert main(["verify", "--quick", "--workers", "1", "--quiet", "--models", info["spec"], "--seed", "5",
                 "--checks", "identities", "--out", str(out_one)]) == 0
    again = _report(out_one)["checks"][0]["model_info"]
    assert again["theta0_sha256"] == info["theta0_sha256"] and again["lam1_theta0"] == info["lam1_theta0"]


def test_a_failing_check_on_a_zoo_model_exits_1_for_the_measured_reason(tmp_path, monkeypatch):
    """scale-collapse handed the wrong rescaling (c·w₀ instead of √c·w₀): the runs separate, exit status 1."""
    import srflow.verification.checks as checks

    monkeypatch.setitem(checks.CHECKS, "scale-collapse", replace(
        checks.CHECKS["scale-collapse"], run=lambda s: checks.check_scale_collapse(s, rescale=lambda c: c)))
    out = tmp_path / "f"
    assert main(["zoo", *FAST, "--n", "1", "--checks", "scale-collapse", "--out", str(out)]) == 1
    res = _report(out)["checks"][0]
    assert res["status"] == "fail" and "relative difference" in res["message"]
    assert float(res["observed"]) > 1e-3


def test_a_check_that_raises_on_a_zoo_model_exits_3(tmp_path, monkeypatch):
    import srflow.verification.checks as checks

    def broken(session):
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(checks.CHECKS, "identities", replace(checks.CHECKS["identities"], run=broken))
    out = tmp_path / "e"
    assert main(["zoo", *FAST, "--n", "1", "--checks", "identities", "--out", str(out)]) == 3
    assert _report(out)["checks"][0]["status"] == "error"


@pytest.mark.parametrize("argv, match", [
    (["--n", "0"], "--n: expected a positive number"),
    (["--families", "nosuch"], "--families: unknown zoo family nosuch"),
    (["--families", "bnnet", "--backends", "np"], "--families: none of bnnet is built with np"),
    (["--checks", "nosuch"], "--checks: unknown check"),
    (["--seed", "-1"], "--seed: expected a non-negative integer"),
])
def test_bad_zoo_input_is_a_clear_error(tmp_path, argv, match):
    with pytest.raises(SystemExit, match=match):
        main(["zoo", "--quick", "--workers", "1", "--out", str(tmp_path / "x"), *argv])


def test_verify_names_a_bad_zoo_spec(tmp_path):
    with pytest.raises(SystemExit, match="--models: zoo:rq_sum-np: spec: expected a zoo model name"):
        main(["verify", "--quick", "--workers", "1", "--models", "zoo:rq_sum-np", "--out", str(tmp_path / "x")])
