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


# -- the real-network figures: their captions are computed from the arrays -----------------------------------
# Synthetic arrays in the layout of each module's ``compute`` (no simulation): a caption must follow its data,
# so the same caption function given data where the comparison goes the other way must say the other thing.
from srflow.figures import fig9_bn_eos, fig10_bn_sharpness, fig11_bn_generalization  # noqa: E402


def _eos_data(levels, rq_levels=None):
    """fig9 arrays: run k's λ₁ rises to levels[k] × its threshold and stays there (odd number of records); its
    curvature along the oscillation RQ likewise to rq_levels[k] (default: levels)."""
    rq_levels = levels if rq_levels is None else rq_levels
    d = {"lrs": np.array([0.05, 0.1, 0.2][:len(levels)]), "eta_lambda": 2e-3, "dim": 100, "ratio": 4.0}
    for k, (lr, level, rq) in enumerate(zip(d["lrs"], levels, rq_levels)):
        thr = 2 * (1 - 2e-3) / lr
        steps = np.arange(0, 1001, 9)
        d[f"steps_{k}"], d[f"threshold_{k}"] = steps, thr
        d[f"sharp_{k}"] = thr * np.minimum(level, 0.25 + steps / 300)
        d[f"rq_{k}"] = thr * np.minimum(rq, 0.25 + steps / 300)
        d[f"loss_{k}"], d[f"train_err_{k}"] = np.full(len(steps), 1e-3), 0.0
    return d


def test_fig9_caption_follows_the_data():
    """At the threshold: the caption reports λ₁/threshold = 1.000 for each η and says λ₁ sits at it for every η;
    one run at 1.5× the threshold: it reports 1.500, says which η sit at it and which above; all above (below):
    'above' ('below'). (The curvature along the oscillation: tests/test_captions.py.)"""
    at = fig9_bn_eos.caption(_eos_data([1.0, 1.0, 1.0]))
    assert "η = 0.05: 1.000" in at and "λ₁ sits at the threshold (within 5%) for every η" in at
    assert "then stays about the" in at
    assert "then stays above the" in fig9_bn_eos.caption(_eos_data([1.2, 1.5, 1.1]))
    assert "then stays below the" in fig9_bn_eos.caption(_eos_data([0.8, 0.9, 0.7]))
    off = fig9_bn_eos.caption(_eos_data([1.0, 1.5, 1.0]))
    assert "η = 0.1: 1.500" in off and "Spread of λ₁/threshold between the η: 0.500" in off
    assert "λ₁ sits at the threshold (within 5%) for η = 0.05, 0.2, above it (by more than 5%) for η = 0.1" in off


def _sharp_data(factor):
    """fig10 arrays: two ηλ whose spherical sharpness decays as 1000·e^{-τ}, the second × ``factor``."""
    d = {"ladder": np.array([4e-3, 2e-3]), "dim": 100, "lr": 0.1, "ratio": 1.5, "tau_end": 2.0, "nowd_eps": 0.2}
    for k in range(2):
        tau = np.linspace(0, 2, 41)
        d[f"tau_{k}"], d[f"sph_{k}"] = tau, 1000 * np.exp(-tau) * (factor if k else 1.0)
        d[f"loss_{k}"], d[f"above_{k}"] = np.full(41, 1e-3), tau >= 0.3
        d[f"rel_{k}"] = np.where(tau >= 0.3, 1.2, 0.5)
    d["nowd_s"], d["nowd_sph"] = np.linspace(0, 0.01, 11), np.linspace(800, 600, 11)
    d["nowd_lam"], d["nowd_loss"], d["nowd_steps"] = np.linspace(24, 19, 11), np.full(11, 1e-3), np.arange(11) * 41
    return d


def test_fig10_caption_follows_the_data():
    """Curves that coincide in τ are reported 0.0% apart, curves 1.2× apart 20.0%; the reduction from the EoS
    entry (τ = 0.3) to τ_end = 2 of record-pair means of 1000·e^{-τ} on a 0.05 grid is 81%, whatever the factor;
    GD without WD from its start (800, ηλ₁ = 2.4) to its last record-pair mean (610, 1.925)."""
    same = fig10_bn_sharpness.caption(_sharp_data(1.0))
    assert "differ by at most 0.0% relative" in same and "(81% lower;" in same and "last quarter: 1.200)" in same
    apart = fig10_bn_sharpness.caption(_sharp_data(1.2))
    assert "differ by at most 20.0% relative" in apart and "(81% lower;" in apart
    assert "from 800 to 610" in same and "goes from 2.400 to 1.925" in same
    d = _sharp_data(1.0)
    d["rel_0"], d["rel_1"] = np.full(41, 1.4), np.full(41, 1.2)  # excess 0.4 at ηλ = 4e-3, 0.2 at 2e-3: ∝ (ηλ)^1
    assert "shrinks with ηλ (least-squares exponent 1.00 in ηλ)" in fig10_bn_sharpness.caption(d)
    d["rel_0"], d["rel_1"] = np.full(41, 1.2), np.full(41, 1.4)
    assert "does not shrink with ηλ (least-squares exponent -1.00" in fig10_bn_sharpness.caption(d)


def _gen_data(wd_test, seeds=2):
    """fig11 arrays: 5 conditions (rows of ``conditions()``); the no-WD BN run ends at 20% test error, the
    first WD run at ``wd_test``; the WD runs are flatter (sharpness 100 vs 1000)."""
    rows = fig11_bn_generalization.conditions()
    n, rec = len(rows), 5
    test = np.full((n, seeds, rec), 0.3)
    test[0, :, -1], test[1, :, -1], test[2, :, -1] = 0.20, wd_test, 0.20
    test[3:, :, -1] = 0.25
    sph = np.full((n, seeds, rec), 1000.0)
    sph[1:3] = 100.0
    return {"dim": 100, "n_train": 64, "n_test": 500, "lr": 0.1, "ratio": 4.0, "labels": np.array([r[0] for r in rows]),
            "eta_lambdas": np.array([r[2] for r in rows]), "normalized": np.array([r[1] for r in rows]),
            "steps": np.arange(rec) * 11, "test": test, "train": np.zeros((n, seeds, rec)),
            "loss": np.full((n, seeds, rec), 1e-3), "sharp": sph / 10, "sph": sph, "lr_used": np.full((n, seeds, rec), 0.1)}


def test_fig11_caption_follows_the_data():
    """The comparison with GD without WD is stated either way: WD at 15% vs 20% on every seed is lower by 5 points,
    at 25% higher; one seed gives no interval and no test. (Noisy seeds and the tests: tests/test_captions.py.)"""
    label = fig11_bn_generalization.conditions()[1][0]
    lower = fig11_bn_generalization.caption(_gen_data(0.15))
    assert f"{label} minus BN, GD, paired by seed: -5.0 ± 0.0 points" in lower
    assert f"{label} is lower (the interval excludes 0)" in lower
    assert f"{label} ends flatter (spherical sharpness) than BN, GD on 2 of 2 seeds" in lower
    higher = fig11_bn_generalization.caption(_gen_data(0.25))
    assert f"{label} minus BN, GD, paired by seed: +5.0 ± 0.0 points" in higher and f"{label} is higher" in higher
    assert "on the one seed (no interval, no test)" in fig11_bn_generalization.caption(_gen_data(0.15, seeds=1))


def test_real_network_captions_agree_with_their_quick_arrays(quick_run):
    """The quick run's own arrays, read back from the cache: numbers recomputed here appear in the captions."""
    def load(name):
        with np.load(quick_run / "data" / f"{name}.npz") as f:
            return {k: f[k] for k in f.files}, (quick_run / f"{name}.txt").read_text()

    d, text = load("fig9_bn_eos")
    for k, lr in enumerate(d["lrs"]):
        r = d[f"sharp_{k}"] / float(d[f"threshold_{k}"])
        assert f"η = {lr:g}: {np.mean(r[-max(2, len(r) // 4):]):.3f}" in text
    d, text = load("fig11_bn_generalization")
    for i, label in enumerate(d["labels"]):
        assert f"{label}: test {100 * d['test'][i][:, -1].mean():.1f}%" in text
    d, text = load("fig10_bn_sharpness")
    final = 0.5 * (d["sph_0"][-1] + d["sph_0"][-2])
    assert f"{final:.4g} at τ = {float(d['tau_end']):g}" in text


def test_fig10_flow_sentence_follows_the_data():
    """The flow's part of the caption: quick mode says it is not drawn; a flow whose gap closed says where and by how
    much λ₁ fell (1000 → 600: 40.0%); one that never lost its gap says how far it went; one that failed in its
    first piece says so; λ₁(Φ(w̄_t)) is quoted from its first and last samples."""
    d = _sharp_data(1.0)
    assert "full figure only" in fig10_bn_sharpness.caption(d)
    d.update(flow_s=np.array([0.0, 0.005, 0.01]), flow_lam=np.array([1000.0, 800.0, 600.0]),
             flow_tau=np.array([0.3, 0.4, 0.55]), flow_gap_s=0.01, flow_gap0=0.2,
             phi_tau=np.array([0.3, 0.6]), phi_lam=np.array([1100.0, 650.0]))
    text = fig10_bn_sharpness.caption(d)
    assert "defined up to s = 0.01 (τ = 0.55, ×), where λ₁ (600, 40.0% below the start) meets λ₂" in text
    assert "relative gap (λ₁ - λ₂)/λ₁ = 0.2 there" in text and "from 1100 at τ = 0.3 to 650 at τ = 0.6" in text
    d["flow_gap_s"] = float("nan")
    assert "λ₁ goes to 600 by τ = 0.55 (s = 0.01)." in fig10_bn_sharpness.caption(d)
    d.update(flow_gap_s=0.0, flow_s=np.array([0.0]), flow_lam=np.array([1000.0]), flow_tau=np.array([0.3]))
    assert "loses its gap within the first Δs" in fig10_bn_sharpness.caption(d)


def _fig1_data(entries, tails, steps=1200):
    """fig1 arrays: per run, λ₁ at half the threshold 2(1-ηλ)/η until step ``entries[k]`` (None: never), then at
    it; η_eff·λ₁ equal to ``tails[k]`` from the entry on."""
    from srflow.figures.fig1_eos import LRS, ETA_LAMBDA

    d = {"lrs": np.array(LRS), "eta_lambda": ETA_LAMBDA}
    for k, lr in enumerate(LRS):
        t = np.arange(steps + 1)
        threshold = 2 * (1 - ETA_LAMBDA) / lr
        on = np.zeros(steps + 1, bool) if entries[k] is None else t >= entries[k]
        d[f"steps_{k}"] = t
        d[f"raw_{k}"] = np.where(on, threshold, 0.5 * threshold)
        d[f"eff_{k}"] = np.where(on, tails[k], 1.0)
        d[f"sharp_{k}"] = d[f"raw_{k}"][:-1]
    return d


def test_fig1_caption_follows_the_data():
    """'every run settles at 2' only when every run reached 2/η before the last 400 steps and sits within 5% of 2
    at every one of them; a run entering at its last steps, sitting at 1.44, or swinging ±15% about 2 (a mean of 2
    in its catapults) is named as not settled, with its entry step."""
    from srflow.figures import fig1_eos

    good = fig1_eos.caption(_fig1_data([100, 200, 300], [2.0, 2.01, 1.99]))
    assert "every run settles at 2 (within 5% at every one of its last 400 steps)" in good
    assert "η = 0.05 at step 100; η = 0.1 at step 200; η = 0.2 at step 300" in good
    late = fig1_eos.caption(_fig1_data([100, 200, 1190], [2.0, 2.01, 1.44]))
    assert "every run" not in late and "η = 0.2 has not settled by the end of the run" in late
    assert "η = 0.2 reaches the threshold only at step 1190 of 1200" in late
    assert "the runs with η = 0.05, 0.1 settle at 2 (within 5% at every one of their last" in late
    never = fig1_eos.caption(_fig1_data([None, None, None], [1.0, 1.0, 1.0]))
    assert "no run settles at 2" in never and "η = 0.05 not within its 1200 steps" in never
    assert "λ₁(∇²L(w_t)) rises before its entry in all runs" in good
    d = _fig1_data([100, 200, 300], [2.0, 2.0, 2.0])
    t, threshold = d["steps_1"], d["raw_1"][-1]  # run 1 falls from 0.9 to 0.5 of the threshold, then jumps to it
    d["raw_1"] = np.where(t < 200, threshold * (0.9 - 0.4 * t / 200), d["raw_1"])
    assert "λ₁(∇²L(w_t)) does not rise before its entry in the run with η = 0.1" in fig1_eos.caption(d)
    d = _fig1_data([100, 200, 300], [2.0, 2.0, 2.0])
    t = d["steps_2"]
    d["eff_2"] = np.where(t >= 300, 2 + 0.3 * ((t // 50) % 2 - 0.5) * 2, 1.0)  # 1.7 and 2.3 in blocks: mean 2
    swing = fig1_eos.caption(d)
    assert "η = 0.2 has not settled" in swing and "2.000 (range 1.70-2.30)" in swing
    off = fig1_eos.caption(_fig1_data([100, 200, 300], [2.075, 1.927, 1.8]))
    assert "the runs with η = 0.05, 0.1 settle at 2" in off and "η = 0.2 has not settled" in off


def test_panel_letters_clear_long_titles_and_labels():
    """Two panels with a title nearly as wide as the panel and fig2's y label (as long as the axes are high): each
    gets its letter (a, b) at the top left of its area, overlapping neither its title nor its y label; one panel
    gets none; no text stays below MIN_FONT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from srflow.figures._common import MIN_FONT, STYLE, house_style, panel_letters

    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(7.0, 2.6))
        axes = fig.subplots(1, 2)
        for ax in axes:
            ax.plot([0, 1], [0, 1], label="x")
            ax.set_title("a long title that runs across nearly all of its panel")
            ax.set_ylabel("spherical sharpness λ₁(∇²L(Φ(w̄_t)))")
            ax.legend(fontsize=4)
        house_style(fig)
        fig.tight_layout()
        panel_letters(fig)
        renderer = fig.canvas.get_renderer()
        letters = [t for t in fig.texts if t.get_text() in ("a", "b")]
        assert [t.get_text() for t in letters] == ["a", "b"]
        for letter, ax in zip(letters, axes):
            box = letter.get_window_extent(renderer)
            assert not box.overlaps(ax.title.get_window_extent(renderer))
            assert not box.overlaps(ax.yaxis.label.get_window_extent(renderer))
        assert min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text)) >= MIN_FONT
        plt.close(fig)
        single = plt.figure()
        single.subplots()
        panel_letters(single)
        assert not single.texts
        plt.close(single)
