"""Every derivation script runs and verifies; its results agree with the numeric code."""

import subprocess
import sys
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest

from srflow.theory import eos_threshold, equilibrium_norm_sq, oscillation_amplitude_sq
from srflow.theory.symbolic import SCRIPTS
from srflow.cli import main


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_derivation_verifies(name):
    results = import_module(f"srflow.theory.symbolic.{name}").derive()
    assert results and all(r.verified for r in results), [r.name for r in results if not r.verified]


def test_symbolic_constants_equal_the_numeric_closed_forms():
    """(c)'s flip radius at φ → 0 and amplitude equal theory.predictions at exact rational points."""
    import sympy as sp

    from srflow.theory.symbolic import eos_period_two

    by_name = {r.name: r for r in eos_period_two.derive()}
    assert by_name["amplitude"].expr == "2*mu/(G + 4)"
    for lr, wd, lam1, G in [(0.1, 1e-3, 3.0, 0.0), (0.5, 0.01, 7.0, 2.5)]:
        assert oscillation_amplitude_sq(lr, wd, G) == pytest.approx(float(sp.Rational(2) * lr * wd / (G + 4)), rel=1e-15)
        flip = lr * lam1 * np.cos(0.0) / (2 * (1 - lr * wd))
        assert equilibrium_norm_sq(lr, wd, lam1) == pytest.approx(flip, rel=1e-15)
        assert lam1 / flip == pytest.approx(eos_threshold(lr, wd), rel=1e-15)


def test_derivation_fails_when_the_claim_is_wrong():
    """Must fail: the same machinery rejects a wrong constant (the naive ½ instead of the drift's ¼)."""
    import sympy as sp

    from srflow.theory.symbolic._common import is_zero

    delta, lam1, dlam = sp.symbols("delta lambda dlambda", positive=True)
    assert not is_zero(-(delta**2 / 4) * dlam / lam1 - (-(delta**2 / 2) * dlam / lam1))


def test_cli_derive_one_and_unknown(capsys):
    assert main(["derive", "alp_constants"]) == 0
    assert "all verified" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown derivation"):
        main(["derive", "nope"])


def test_module_entry_point():
    run = subprocess.run([sys.executable, "-m", "srflow.theory.symbolic.limit_map"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert run.returncode == 0 and "all verified" in run.stdout
