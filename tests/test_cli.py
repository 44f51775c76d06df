"""The command line, through ``main(argv)`` and as a subprocess."""

import subprocess
import sys
from pathlib import Path

import pytest

from srflow.toy_models import REGISTRY
from srflow.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REGISTRY) and "fd-third" in out


def test_check_identities_passes_on_chosen_models(capsys):
    assert main(["check-identities", "--models", "sphere_circle", "sym_mf", "--points", "1"]) == 0
    out = capsys.readouterr().out
    assert "minimizer-rank" in out and "all checks pass" in out and "FAILED" not in out


def test_unknown_model_is_a_clear_error():
    with pytest.raises(SystemExit, match="unknown model\\(s\\) nope; valid: mf"):
        main(["check-identities", "--models", "nope"])


def test_module_entry_point_in_subprocess():
    run = subprocess.run([sys.executable, "-m", "srflow", "check-identities", "--models", "mf", "--points", "1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "all checks pass" in run.stdout


def test_readme_test_command_is_what_ci_runs():
    """The Quick start's test command appears verbatim in .ci/run."""
    readme = (ROOT / "README.md").read_text().splitlines()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line.strip() for line in readme if "pytest" in line and line.strip().startswith("python")]
    assert len(commands) == 1, commands
    assert commands[0] in [line.strip() for line in ci]


def test_list_and_figures_without_the_jax_extra(tmp_path):
    """Without JAX: ``srflow list`` names the networks as needing the jax extra instead of crashing, and
    ``srflow figures --only`` a real-network figure reports it as not written (exit 1), naming the extra."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import sys; sys.modules['jax'] = None\n"
            "from srflow.cli import main\n"
            "print('list exit', main(['list']))\n"
            f"print('figures exit', main(['figures', '--quick', '--only', 'fig9_bn_eos', '--out', {str(tmp_path)!r}]))")
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "bn_mlp           needs the jax extra" in run.stdout and "list exit 0" in run.stdout
    assert "fig9_bn_eos          not written: needs the jax extra" in run.stdout and "figures exit 1" in run.stdout
    assert not (tmp_path / "fig9_bn_eos.png").exists()
