"""The numbers README.md and docs/ quote agree with docs/numbers.json, which docs/quoted_numbers.py regenerates.

A quoted number is marked in the text by ``<!-- n:KEY -->`` right after it (after a ``%`` if it has one). The
default run reads the committed JSON and the texts only (no computation): every marked number must equal the JSON's
value to the digits quoted (within half a unit of the last digit quoted; an integer's trailing zeros are not
digits: 22,000 is 2.2e4). The slow test recomputes the closed-form group and compares it with the JSON."""

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JSON = ROOT / "docs" / "numbers.json"
MARK = re.compile(r"(?P<num>[+\-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+\-−]?\d+)?)%?\s*<!-- n:(?P<key>[^\s>]+) -->")
ANY_MARK = re.compile(r"<!-- n:")


def texts() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def quoted(literal: str) -> tuple[float, float]:
    """The value of a quoted number and half a unit of its last digit: '−1.09' -> (-1.09, 0.005),
    '1.2e-6' -> (1.2e-6, 5e-8), '22,000' -> (22000, 500), '70' -> (70, 5), '3531' -> (3531, 0.5)."""
    text = literal.replace("−", "-").replace(",", "")
    mantissa, _, exp = text.lower().partition("e")
    scale = 10.0 ** int(exp) if exp else 1.0
    if "." in mantissa:
        ulp = 10.0 ** -len(mantissa.split(".")[1])
    else:
        digits = mantissa.lstrip("+-")
        zeros = len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0
        ulp = 10.0 ** zeros
    return float(text), 0.5 * ulp * scale


def disagreements(text: str, numbers: dict, where: str = "") -> list[str]:
    """Every marked number in ``text`` that is not the JSON's value to the digits quoted, or whose key is unknown,
    and every marker that does not follow a number."""
    bad = []
    found = list(MARK.finditer(text))
    if len(found) != len(ANY_MARK.findall(text)):
        marked = {m.start("key") for m in found}
        for m in re.finditer(r"<!-- n:([^\s>]+) -->", text):
            if m.start(1) not in marked:
                bad.append(f"{where}: marker {m.group(1)!r} does not follow a number")
    for m in found:
        key, literal = m.group("key"), m.group("num")
        if key not in numbers:
            bad.append(f"{where}: {literal} marked {key!r}: no such key in docs/numbers.json")
            continue
        value, half = quoted(literal)
        true = numbers[key]["value"]
        if not abs(true - value) <= half * (1 + 1e-9) + 1e-300:
            bad.append(f"{where}: {literal} ({key}) but docs/numbers.json has {true:.6g} "
                       f"({numbers[key].get('group')}: {_command(key, numbers)})")
    return bad


def _command(key, numbers):
    return numbers[key].get("command", "docs/quoted_numbers.py")


def load_numbers() -> dict:
    return json.loads(JSON.read_text(encoding="utf-8"))["numbers"]


def test_quoted_numbers_agree_with_the_script():
    """Every marked number of README.md and docs/**/*.md equals docs/numbers.json to the digits quoted."""
    numbers = load_numbers()
    bad, count = [], 0
    for path in texts():
        text = path.read_text(encoding="utf-8")
        count += len(MARK.findall(text))
        bad += disagreements(text, numbers, str(path.relative_to(ROOT)))
    assert not bad, "\n".join(bad)
    assert count >= 40  # the markers are there (README's default-run paragraph, docs/theory.md)


def test_every_group_says_how_it_was_made():
    data = json.loads(JSON.read_text(encoding="utf-8"))
    for key, entry in data["numbers"].items():
        assert math.isfinite(entry["value"]), key
        group = data["groups"][entry["group"]]
        assert group["command"], key
        if entry["group"] == "recorded":
            assert entry["command"] and entry["date"], key
        else:
            assert group["date"] and group["revision"], key


def test_one_start_in_the_report_and_in_the_theory():
    """κ(θ₀) of sphere_circle as srflow verify's report gives it (--quick and default runs) equals κ at
    ``session.start_point`` computed by the closed-form group: the runs and the theory start from one θ₀."""
    numbers = load_numbers()
    ref = numbers["kappa_theta0.sphere_circle"]["value"]
    for key in ("quick.kappa_theta0.sphere_circle", "default.kappa_theta0.sphere_circle"):
        assert numbers[key]["value"] == pytest.approx(ref, rel=1e-9), key


def test_the_comparison_fails_on_a_wrong_number():
    """Must fail: a quoted number off by more than half its last digit, of the wrong sign, an unknown key, a marker
    after no number; and the precision follows the digits quoted."""
    numbers = {"c": {"value": -1.0949}, "d": {"value": 2.06e-6}, "n": {"value": 22_400.0}, "p": {"value": 0.0244}}
    assert not disagreements("c = −1.09<!-- n:c --> and 2.1e-6 <!-- n:d --> or 22,000<!-- n:n -->×, 0.024%<!-- n:p -->",
                             numbers)
    assert disagreements("c = −1.10<!-- n:c -->", numbers)
    assert disagreements("c = +1.09<!-- n:c -->", numbers)
    assert disagreements("c = −1.096<!-- n:c -->", numbers)  # more digits quoted, more precision: −1.0949 is not −1.096
    assert disagreements("2.0e-6<!-- n:d -->", numbers) and not disagreements("2e-6<!-- n:d -->", numbers)
    assert disagreements("23,000<!-- n:n -->", numbers)
    assert disagreements("1.09<!-- n:nokey -->", numbers)
    assert disagreements("the value <!-- n:c -->", numbers)
    assert quoted("−1.09") == (-1.09, pytest.approx(0.005)) and quoted("70") == (70.0, 5.0) and quoted("3531")[1] == 0.5
    assert quoted("22,000") == (22000.0, 500.0) and quoted("1.2e-6")[1] == pytest.approx(5e-8)


def _script():
    spec = importlib.util.spec_from_file_location("quoted_numbers", ROOT / "docs" / "quoted_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_closed_form_numbers_recomputed():
    """The closed-form group recomputed now equals the committed JSON (to 1e-9 relative)."""
    numbers = load_numbers()
    fresh = _script().closed_form()
    assert fresh.keys() == {k for k, v in numbers.items() if v["group"] == "closed-form"}
    for key, value in fresh.items():
        assert value == pytest.approx(numbers[key]["value"], rel=1e-9, abs=1e-12), key
