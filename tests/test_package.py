"""The installed package: one ``srflow`` namespace, ``--version``, and the command line's name lists."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import srflow
from srflow.cli import main
from srflow.verification.verify import load_model, model_label

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_installed():
    """Every folder of the four parts that holds an ``__init__.py`` is listed in pyproject.toml's ``packages``
    (setuptools installs only the listed ones: a new subpackage left out imports from a checkout, not installed)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"srflow." + ".".join(p.parent.relative_to(ROOT).parts)
             for part in ("theory", "toy_models", "verification", "figures") for p in (ROOT / part).rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def test_install_puts_only_srflow_on_the_path(tmp_path):
    """``pip install .`` (into a target folder, no dependencies) installs the four folders as srflow.theory,
    srflow.toy_models, srflow.verification, srflow.figures, and nothing else at top level that could shadow
    a user's own ``theory`` or ``figures``; the installed copy imports without the checkout."""
    # from a copy of the sources: pip builds in the tree, and a build/ folder left by an older layout would be
    # packed into the wheel as it is
    source, target = tmp_path / "src", tmp_path / "site"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", ".*venv", "srflow-out",
                                                                 "__pycache__", "data", "quick", "*.png", "*.pdf"))
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--target", str(target), str(source)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    top = {p.name for p in target.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))}
    assert top == {"srflow", "bin"} or top == {"srflow"}, top
    assert {p.name for p in (target / "srflow").iterdir() if p.is_dir()} >= {"theory", "toy_models", "verification",
                                                                             "figures"}
    probe = ("import srflow.theory, srflow.cli, srflow.verification.checks; from srflow import toy_models; "
             "print(srflow.theory.__file__); print(toy_models.make_model('mf').dim)")
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    got = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert got.returncode == 0, got.stderr
    theory_file, dim = got.stdout.split()
    assert Path(theory_file).is_relative_to(target / "srflow" / "theory") and dim == "16"
    for name in ("theory", "figures", "toy_models", "verification"):
        missing = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert missing.returncode != 0 and "ModuleNotFoundError" in missing.stderr, name


def test_version_on_the_command_line():
    run = subprocess.run([sys.executable, "-m", "srflow", "--version"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == f"srflow {srflow.__version__}"


def test_source_checkout_imports_the_same_modules():
    """From the repository root, ``srflow.theory`` is the checkout's ``theory/`` folder, and no top-level
    ``theory`` module is loaded on the way (two copies of a module would split monkeypatches and caches)."""
    import srflow.theory
    assert Path(srflow.theory.__file__).parent == ROOT / "theory"
    assert "theory" not in sys.modules and "verification" not in sys.modules


def test_name_lists_take_commas_and_spaces(capsys):
    assert main(["check-identities", "--models", "sphere_circle,sym_mf", "--points", "1"]) == 0
    out = capsys.readouterr().out
    assert "sphere_circle" in out and "sym_mf" in out
    with pytest.raises(SystemExit, match="--models: expected names separated by spaces or commas"):
        main(["check-identities", "--models", "sphere_circle,,sym_mf"])
    with pytest.raises(SystemExit, match="--checks: expected names"):
        main(["verify", "--checks", "eos-entry,", "--quick"])


def test_user_model_is_shown_by_its_name_or_file_stem(tmp_path):
    (tmp_path / "my_circle.py").write_text(
        "from srflow.toy_models import wrap\n"
        "import numpy as np\n\n"
        "def _f(w): return 0.5 * w[0] ** 2\n"
        "def _g(w): return np.array([w[0], 0.0])\n"
        "def _h(w): return np.diag([1.0, 0.0])\n"
        "def _t(w, u, v): return np.zeros(2)\n\n"
        "def make(): return wrap(2, _f, _g, _h, _t)\n"
        "def named(): return wrap(2, _f, _g, _h, _t, name='parabola')\n")
    spec = f"{tmp_path / 'my_circle.py'}:make"
    assert model_label(spec, load_model(spec)) == "my_circle"
    spec = f"{tmp_path / 'my_circle.py'}:named"
    assert model_label(spec, load_model(spec)) == "parabola"
