"""``srflow figures``: every figure in quick mode writes its PNG, PDF, caption and cached arrays, and two runs
give byte-identical files. (Whether theory and simulation agree is the business of the checks, not of the
plotting code.)"""

import json
from pathlib import Path

import numpy as np
import pytest

from srflow.figures import FIGURES, make_figure
from srflow.figures._common import atomic_write, cache_config
from srflow.cli import main


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


# -- the cache (fast: a stand-in figure module) -------------------------------------------------------
class _FakeFigure:
    """A figure module in miniature: counts its computations; its 'source' is a file the test can edit."""

    NAME = "fake"

    def __init__(self, source):
        self.__file__, self.calls = str(source), 0

    def compute(self, quick, seed):
        self.calls += 1
        return {"x": np.arange(5.0) + seed}

    def plot(self, d, fig):
        fig.subplots().plot(d["x"])

    def caption(self, d):
        return f"sum {float(d['x'].sum()):g}"


@pytest.fixture()
def fake(tmp_path):
    src = tmp_path / "fake_module.py"
    src.write_text("# version 1\n")
    return _FakeFigure(src)


def test_cache_is_reused_and_keyed_by_the_module_source(fake, tmp_path):
    out = tmp_path / "out"
    make_figure(fake, out)
    make_figure(fake, out)
    assert fake.calls == 1
    Path(fake.__file__).write_text("# version 2\n")
    make_figure(fake, out)
    assert fake.calls == 2
    assert json.loads((out / "data" / "fake.json").read_text())["code"] == cache_config(fake, False, 0)["code"]


@pytest.mark.parametrize("damage", ["truncate-npz", "corrupt-json"])
def test_a_corrupt_cache_entry_is_recomputed_with_a_warning(fake, tmp_path, damage):
    out = tmp_path / "out"
    make_figure(fake, out)
    npz, cfg = out / "data" / "fake.npz", out / "data" / "fake.json"
    if damage == "truncate-npz":
        npz.write_bytes(npz.read_bytes()[:40])
    else:
        cfg.write_text('{"figure": "fake", ')
    with pytest.warns(RuntimeWarning, match="corrupt.*recomputing"):
        make_figure(fake, out)
    assert fake.calls == 2
    with np.load(npz) as f:  # the recomputed entry is whole again
        assert f["x"].tolist() == [0, 1, 2, 3, 4]
    assert json.loads(cfg.read_text()) == cache_config(fake, False, 0)


def test_writes_are_atomic(tmp_path):
    """A writer that fails midway leaves the previous file intact and no temporary file behind."""
    target = tmp_path / "f.txt"
    atomic_write(target, lambda tmp: Path(tmp).write_text("old"))

    def failing(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_quick_output_goes_to_its_own_folder_by_default(fake, tmp_path, monkeypatch):
    """`srflow figures --quick` without --out writes figures/quick/, never the full-size figures/."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(FIGURES, "fake", fake)
    assert main(["figures", "--quick", "--only", "fake"]) == 0
    assert (tmp_path / "figures" / "quick" / "fake.png").exists()
    assert not (tmp_path / "figures" / "fake.png").exists()
    assert main(["figures", "--only", "fake"]) == 0
    assert (tmp_path / "figures" / "fake.png").exists()
