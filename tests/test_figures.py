"""``srflow figures``: every figure in quick mode writes its PNG, PDF, caption and cached arrays, and two runs
give byte-identical files. (Whether theory and simulation agree is the business of the checks, not of the
plotting code.)"""

import json

import pytest

from figures import FIGURES
from verification.cli import main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    assert main(["figures", "--quick", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("name", list(FIGURES))
def test_each_figure_writes_png_pdf_caption_and_data(quick_run, name):
    png, pdf = quick_run / f"{name}.png", quick_run / f"{name}.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert len((quick_run / f"{name}.txt").read_text()) > 80
    assert json.loads((quick_run / "data" / f"{name}.json").read_text())["quick"] is True
    assert (quick_run / "data" / f"{name}.npz").exists()


def _same_files(a, b, names):
    for name in names:
        for ext in ("png", "pdf", "txt"):
            assert (a / f"{name}.{ext}").read_bytes() == (b / f"{name}.{ext}").read_bytes(), f"{name}.{ext}"


def test_a_recomputed_quick_run_is_byte_identical(quick_run, tmp_path):
    names = ["fig3_trajectory", "fig6_phases"]
    assert main(["figures", "--quick", "--recompute", "--only", *names, "--out", str(tmp_path)]) == 0
    _same_files(quick_run, tmp_path, names)


@pytest.mark.slow
def test_every_figure_recomputed_is_byte_identical(quick_run, tmp_path):
    assert main(["figures", "--quick", "--recompute", "--out", str(tmp_path)]) == 0
    _same_files(quick_run, tmp_path, list(FIGURES))


def test_figures_bad_input(tmp_path):
    with pytest.raises(SystemExit, match=r"unknown figure\(s\) nope; valid: fig1_eos"):
        main(["figures", "--only", "nope", "--out", str(tmp_path)])
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match="cannot write to"):
        main(["figures", "--quick", "--out", str(blocker / "x")])
