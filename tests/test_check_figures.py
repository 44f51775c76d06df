"""The per-check figures show the verdict: error against the small parameter on log axes, the theory's slope p
and the slowest fall the rule accepts (slope p − margin: ``verdicts.judge`` assumes no constant C) drawn from the
first deciding rung, the deciding rungs marked, labelled axes, legends clear of the data and of each other; a
failing result looks like one (its data cross the drawn bound, its title says FAIL); eos-equilibrium shows its
extrapolation to ηλ → 0. Built from synthetic ``CheckResult``s through the public API, and from the series each
``Check`` record declares."""

import numpy as np
import pytest

from srflow.verification import tolerances as tol
from srflow.verification.check_figures import FAIL_COLOR, draw_check, plot_check
from srflow.verification.checks import CHECKS
from srflow.verification.session import CheckResult
from srflow.verification.verdicts import Order, judge

X = np.array([1e-3, 3e-4, 1e-4, 3e-5, 1e-5])
ORDER = Order(p=1.0, param="ηλ")


def _tracking(path, clock, status) -> CheckResult:
    vp, vc = judge(X, path, ORDER), judge(X, clock, ORDER)
    details = {"ladder": list(X), "path_errors": list(path), "clock_errors": list(clock),
               "combined_errors": list(path + 0.1 * X), "path": vp.to_details(), "clock": vc.to_details()}
    return CheckResult("flow-tracking", "synthetic", status, 0.0, {}, "order", vp.shortfall, vp.reason, details)


def _lines(fig, prefix):
    return [line for ax in fig.axes for line in ax.get_lines() if (line.get_gid() or "").startswith(prefix)]


def _bound_at(fig, key, x):
    (bound,) = _lines(fig, f"bound:{key}")
    bx, by = bound.get_data()
    return np.exp(np.interp(np.log(x), np.log(bx), np.log(by)))


def test_a_failing_check_looks_like_one():
    """A path error with a floor (a prediction off by a fixed amount: e = 0.12·ηλ + 2e-4): judged fail, and in
    the figure the data cross the drawn bound (the slowest accepted fall, slope 0.8 from the first deciding rung):
    above it on every smaller rung, those rungs red; the panel's title and the figure's title say FAIL in red."""
    res = _tracking(0.12 * X + 2e-4, 1.0 * X, "fail")
    assert res.details["path"]["status"] == "fail"
    fig = draw_check(res)
    (bound,) = _lines(fig, "bound:path_errors")
    bx, by = bound.get_data()
    assert np.polyfit(np.log(bx), np.log(by), 1)[0] == pytest.approx(1.0 - tol.ORDER_MARGIN, abs=1e-12)
    first = X[min(res.details["path"]["decided"])]
    below = X[X < first]
    data = 0.12 * below + 2e-4
    assert np.all(data > _bound_at(fig, "path_errors", below) * 1.05)  # above the bound, clearly
    (red,) = _lines(fig, "data:path_errors:falls slower than the rule accepts")
    assert red.get_markerfacecolor() == FAIL_COLOR
    np.testing.assert_array_equal(np.sort(red.get_data()[0]), np.sort(below))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("FAIL: slope 0.0") and "(theory 1)" in titles[0]
    assert fig.axes[0].title.get_color() == FAIL_COLOR and "FAIL" in fig._suptitle.get_text()
    assert titles[1].startswith("pass: slope 1.00")


def test_a_passing_check_runs_along_the_theory_below_the_bound():
    """e = 0.12·ηλ: every deciding rung on or below the drawn bound, along the theory's slope line (slope p = 1,
    from the first deciding rung); the filled markers are the rungs ``judge`` says decided (the last three)."""
    res = _tracking(0.12 * X, 1.0 * X, "pass")
    fig = draw_check(res)
    for key, k in (("path_errors", 0.12), ("clock_errors", 1.0)):
        (decided,) = _lines(fig, f"data:{key}:rungs that decided the verdict")
        xs, ys = decided.get_data()
        np.testing.assert_array_equal(np.sort(xs), np.sort(X[[2, 3, 4]]))
        assert np.all(ys <= _bound_at(fig, key, xs) * (1 + 1e-9))
        (slope,) = _lines(fig, f"slope:{key}")
        sx, sy = slope.get_data()
        assert np.polyfit(np.log(sx), np.log(sy), 1)[0] == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(np.interp(np.log(xs), np.log(sx), np.log(sy)), np.log(k * xs), rtol=1e-9)
    assert not _lines(fig, "data:path_errors:falls slower than the rule accepts")


@pytest.mark.parametrize("c0, passes", [(0.004, True), (0.09, False)])
def test_eos_equilibrium_shows_its_extrapolation(c0, passes):
    """eos-equilibrium is judged on c's deviation extrapolated to ηλ → 0: the figure draws it at ηλ = 0 with its
    ±3 s.e. band and the zero line; a band that misses 0 is red and the title says NOT within."""
    from srflow.verification.check_figures import PASS_COLOR

    x = np.array([1e-3, 3e-4, 1e-4, 3e-5])
    d = {"ladder": x, "c_observed": np.array([-1.09, -1.27, -1.21 + c0, -1.205 + c0]), "c_predicted": np.full(4, -1.203),
         "c_standard_error": np.array([0.05, 0.03, 0.01, 0.008]), "judged": np.array([False, False, True, True]),
         "c_deviation_at_zero": c0, "c_deviation_at_zero_se": 0.007}
    fig = draw_check(CheckResult("eos-equilibrium", "m", "pass" if passes else "fail", 2.0, 2.0, "order", 0.3, "", d))
    ax = fig.axes[0]
    (point,) = [c for c in ax.containers if c.lines[0].get_gid() == "extrapolated"] or [None]
    marker = point.lines[0]
    assert marker.get_xdata()[0] == 0.0 and marker.get_ydata()[0] == pytest.approx(c0)
    assert marker.get_color() == (PASS_COLOR if passes else FAIL_COLOR)
    assert ("NOT within" in ax.get_title()) != passes
    assert ax.get_xlabel() and ax.get_ylabel()


def test_judge_names_the_rungs_that_decided():
    """``LadderVerdict.decided``: the last three rungs for a pass (two local exponents and the fit), the last four
    for a floor (three settled local exponents); for an error that had settled at the order and then flattened,
    the rungs where it had settled and the last two."""
    x = np.array([1e-1, 1e-2, 1e-3, 1e-4, 1e-5])
    o = Order(p=1.0, param="x")
    assert judge(x, 0.5 * x, o).decided == (2, 3, 4)
    floor = judge(x, 1e-3 * (1 + 1e-3 * np.arange(5)), o)
    assert floor.status == "fail" and floor.decided == (1, 2, 3, 4)
    flat = judge(x, np.array([0.05, 5e-3, 5e-4, 5e-4 * 10**-0.1, 5e-4 * 10**-0.15]), o)
    assert flat.status == "fail" and flat.decided == (0, 1, 2, 3, 4)  # settled at 1 on rungs 0-2, then flat
    d = judge(x, 0.5 * x, o).to_details()
    assert (d["p"], d["margin"], d["param"], d["status"], d["decided"]) == (1.0, tol.ORDER_MARGIN, "x", "pass",
                                                                              [2, 3, 4])


def test_axes_labelled_and_legends_clear_of_data_labels_and_each_other():
    """Every panel has both axis labels (the check's ``xlabel``, the series' label from its ``Check`` record);
    each legend lies entirely below its panel's x label, no two legend entries overlap, and the legends of
    neighbouring panels do not overlap."""
    res = _tracking(0.12 * X + 2e-4, 1.0 * X, "fail")
    fig = draw_check(res)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    series = {s.key: s.label for s in CHECKS["flow-tracking"].series}
    boxes = []
    for ax, key in zip(fig.axes, ("path_errors", "clock_errors")):
        assert ax.get_xlabel() == CHECKS["flow-tracking"].xlabel
        assert ax.get_ylabel().replace("\n", " ").startswith(series[key])
        legend = ax.get_legend()
        box = legend.get_window_extent(renderer)
        assert box.y1 <= ax.xaxis.label.get_window_extent(renderer).y0 + 1e-6
        assert box.y1 <= ax.get_window_extent(renderer).y0
        rows = [t.get_window_extent(renderer) for t in legend.get_texts()]
        boxes.append(box)
        for i in range(len(rows)):
            for j in range(i + 1, len(rows)):
                assert rows[i].y1 <= rows[j].y0 + 0.5 or rows[j].y1 <= rows[i].y0 + 0.5
    assert boxes[0].x1 <= boxes[1].x0  # the two panels' legends side by side, not overlapping


@pytest.mark.parametrize("name", [n for n, c in CHECKS.items() if c.series])
def test_every_check_with_series_gets_a_figure_from_its_record(name, tmp_path):
    """For each ``Check`` with ``series``: a result carrying those series (synthetic, falling ∝ x) gets one panel
    per judged or bounded series, labelled from the record (flow-tracking: the PNG is byte-identical when written
    twice)."""
    check = CHECKS[name]
    details = {"ladder": list(X)}
    for s in check.series:
        details[s.key] = list(0.1 * X)
        if s.verdict:
            details[s.verdict] = judge(X, 0.1 * X, ORDER).to_details()
        else:
            details[f"{s.key}_bound"] = list(10 * X)
    res = CheckResult(name, "m", "pass", 0.0, 0.0, 1.0, 0.1, "", details)
    fig = draw_check(res)
    assert len(fig.axes) == len(check.series) and all(ax.get_xlabel() == check.xlabel for ax in fig.axes)
    if name != "flow-tracking":
        return
    first = plot_check(res, tmp_path / "a")
    second = plot_check(res, tmp_path / "b")
    assert (tmp_path / "a" / first.split("/")[1]).read_bytes() == (tmp_path / "b" / second.split("/")[1]).read_bytes()


def test_no_figure_without_a_ladder():
    """A check without series (identities), or a result without a ladder, has no figure."""
    assert draw_check(CheckResult("identities", "m", "pass", 0.0, 0.0, 1.0, 0.0, "", {"x": 1.0})) is None
    assert draw_check(CheckResult("flow-tracking", "m", "error", None, None, None, float("nan"), "boom", {})) is None


@pytest.mark.parametrize("b0, passes", [(0.003, True), (0.06, False)])
def test_eos_stability_shows_its_extrapolation(b0, passes):
    """eos-stability is judged like c: the breathing rate's deviation (measured − predicted) on each rung with ±3
    s.e. and extrapolated to ηλ → 0, drawn at ηλ = 0 with its band (red and "NOT within" where it misses 0), not as
    an order panel titled "not judged"."""
    from srflow.verification.check_figures import PASS_COLOR

    x = np.array([3e-4, 1e-4, 3e-5])
    predicted = np.array([-4.93, -4.78, -4.65])
    d = {"ladder": x, "rate_predicted": predicted, "rate_measured": predicted + np.array([-0.02, -0.007, -0.003]),
         "rate_deviation": np.array([0.02, 0.007, 0.003]), "rate_standard_error": np.array([4e-4, 2e-4, 3e-4]),
         "deviation_at_zero": b0, "deviation_at_zero_se": 0.008}
    fig = draw_check(CheckResult("eos-stability", "m", "pass" if passes else "fail", -4.6, -4.6, "order", 0.1, "", d))
    ax = fig.axes[0]
    (point,) = [c for c in ax.containers if c.lines[0].get_gid() == "extrapolated"]
    assert point.lines[0].get_ydata()[0] == pytest.approx(b0)
    assert point.lines[0].get_color() == (PASS_COLOR if passes else FAIL_COLOR)
    assert ("NOT within" in ax.get_title()) != passes and "not judged" not in ax.get_title()
    assert "breathing rate" in ax.get_ylabel()
