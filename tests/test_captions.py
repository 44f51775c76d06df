"""Captions state what their data show: each claim a caption makes (a slope, "follows", "tracks", "runs ahead", a
rate) is computed by ``figures._claims`` from the arrays the figure plots, and the same caption handed synthetic
arrays where the claim is false says so. Small synthetic data only: no simulation, seconds in all."""

import numpy as np
import pytest

from srflow.figures import _claims

X = np.array([1e-3, 3e-4, 1e-4, 3e-5])


# -- the helpers ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q, holds, words", [(1.0, True, "falls at the theory's order 1"),
                                             (2.0, True, "falls at the theory's order 1"),
                                             (0.5, False, "falls slower than the theory's order 1"),
                                             (0.0, False, "does not fall with ηλ")])
def test_order_claim_follows_the_fitted_slope(q, holds, words):
    """e = 3·x^q: the order p = 1 holds for q ≥ 0.8 (faster is fine), fails below; q = 0 'does not fall'."""
    c = _claims.order(X, 3 * X**q, 1.0, "the error")
    assert c.holds is holds and words in c.text and f"^{q:.2f}" in c.text


@pytest.mark.parametrize("q, holds", [(0.0, True), (0.1, True), (1.0, False), (-0.5, False)])
def test_flat_claim(q, holds):
    c = _claims.flat(X, 2 * X**q, "the naive error")
    assert c.holds is holds and ("does not fall" in c.text) is holds


def test_closer_and_follows_state_either_way():
    assert _claims.closer([1e-4], [1e-2], "a", "b").holds and "100× more" in _claims.closer([1e-4], [1e-2], "a", "b").text
    assert not _claims.closer([1e-2], [1e-4], "a", "b").holds
    obs, pred, alt = np.array([1.0, 0.9]), np.array([1.0, 0.901]), np.array([1.0, 0.8])
    assert _claims.follows(obs, pred, alt, "P", "A").holds
    c = _claims.follows(obs, alt, pred, "P", "A")
    assert c.holds is False and "does not follow P" in c.text


def test_tracks_needs_slope_one_and_no_offset():
    """A norm equal to the prediction times noise tracks it; 20% above it (an offset of log 1.2 = 0.18 > 0.2 × the
    prediction's log-movement log 2) or frozen at its start does not; a prediction that moves less than the noise
    cannot be judged (None)."""
    pred = np.linspace(2.0, 1.0, 50)
    wiggle = 1 + 0.02 * np.sin(np.arange(50))
    assert _claims.tracks(pred * wiggle, pred, "n", "p").holds is True
    assert _claims.tracks(1.2 * pred * wiggle, pred, "n", "p").holds is False
    frozen = _claims.tracks(np.full(50, 1.5) * wiggle, pred, "n", "p")
    assert frozen.holds is False and "does not track" in frozen.text
    assert _claims.tracks(wiggle, np.linspace(1.0, 1.01, 50), "n", "p").holds is None


def test_trend_is_the_least_squares_sign_not_the_ends():
    t = np.arange(10.0)
    assert _claims.trend(t, np.exp(0.1 * t), "y").holds
    assert not _claims.trend(t, np.r_[np.linspace(1.0, 0.5, 9), 1.1], "y").holds  # falls, then jumps above


def test_change_and_rate():
    assert _claims.change([1.0, 2.0], "λ₁").text == "λ₁ rises from 1 to 2 (+100.0%)"
    assert _claims.change([2.0, 1.0], "λ₁").holds is False
    assert _claims.rate(1.0 + 1e-9, 1.0, "decays", 1e-6).holds
    assert not _claims.rate(1.01, 1.0, "decays", 1e-6).holds


# -- fig4: the flow clock's error at order 1, the naive clock's flat ---------------------------------------------
def _fig4_data(flow_q, naive_q):
    from srflow.figures.fig4_convergence import MODELS

    d = {"ladder": X}
    for k in range(len(MODELS)):
        d[f"flow_{k}"], d[f"naive_{k}"] = 0.1 * X**flow_q, 0.05 * X**naive_q
    return d


def test_fig4_caption_states_the_slopes_it_fits():
    from srflow.figures import fig4_convergence

    right = fig4_convergence.caption(_fig4_data(1.0, 0.0))
    assert "sphere_circle: the flow clock's error falls at the theory's order 1: ∝ (ηλ)^1.00±0.00" in right
    assert "the naive clock's error does not fall: ∝ (ηλ)^0.00" in right
    wrong = fig4_convergence.caption(_fig4_data(0.0, 1.0))
    assert "falls at the theory's order" not in wrong and "the flow clock's error does not fall with ηλ" in wrong
    assert "the naive clock's error falls as ηλ → 0: ∝ (ηλ)^1.00" in wrong
    slow = fig4_convergence.caption(_fig4_data(0.5, 0.0))
    assert "falls slower than the theory's order 1: ∝ (ηλ)^0.50" in slow


# -- fig5 and fig6: the phase-2 decay rate, the equilibrium norm, the entry step ---------------------------------
LR, ETA_LAMBDA = 0.1, 1e-3


def _decaying_norm(t, rate_factor=1.0, on_gamma=200):
    """‖w_t‖²: anything before ``on_gamma``, then (1 - rate_factor·ηλ)^{2(t - on_gamma)}·4."""
    return 4.0 * (1 - rate_factor * ETA_LAMBDA) ** (2.0 * np.maximum(t - on_gamma, 0))


def _fig6_data(rate_factor=1.0, rising=True, entry_off=0.0):
    t = np.arange(1201)
    sharp = 0.6 * (1 - ETA_LAMBDA) ** (-2.0 * np.maximum(t - 200, 0))
    return {"steps": t, "loss": np.where(t <= 200, np.exp(-t / 10.0), 1e-12),
            "eta_sharp": sharp if rising else sharp[::-1], "norm_sq": _decaying_norm(t, rate_factor),
            "on_gamma": 200, "eos": 800, "observed": 799.5 + entry_off, "predicted": 799.5, "eta_lambda": ETA_LAMBDA, "lr": LR}


def test_fig6_caption_states_the_phases_as_measured():
    """The norm's log-rate matches 2 log(1 - ηλ) to round-off and passes; decaying at 1.01·ηλ it is 'not as
    predicted'; ηλ₁ falling is said to fall; an entry 1 step (> 5e-5/(2ηλ) = 0.025) off the prediction is not 'as
    predicted'."""
    from srflow.figures import fig6_phases

    good = fig6_phases.caption(_fig6_data())
    assert "‖w_t‖² decays as (1−ηλ)^(2t) from step 200 to 799 as predicted" in good
    assert "ηλ₁(∇²L(w_t)) rises from 0.6" in good and "EoS begins as predicted (799.50 vs predicted 799.50" in good
    assert "the loss falls from 1 to" in good
    bad = fig6_phases.caption(_fig6_data(rate_factor=1.01, rising=False, entry_off=1.0))
    assert "decays as (1−ηλ)^(2t) from step 200 to 800 not as predicted (measured/predicted − 1 = +1.0e-02" in bad
    assert "ηλ₁(∇²L(w_t)) falls" in bad and "EoS begins not as predicted (800.50 vs predicted 799.50" in bad


def _fig5_data(phase3):
    """fig5 arrays: the norm decays on Γ from step 200, the predicted equilibrium falls from 1.2 to 0.6 over
    phase 3 (entry at step 800), where ``phase3(pred, t)`` gives the norm."""
    t = np.arange(1601)
    phi_steps = np.arange(0, 1601, 50)
    pred = np.interp(phi_steps, [0, 800, 1600], [1.2, 1.2, 0.6])
    norm = _decaying_norm(t)
    in3 = t > 800
    norm[in3] = phase3(np.interp(t[in3], phi_steps, pred), t[in3])
    return {"steps": t, "norm_sq": norm, "phi_steps": phi_steps, "pred": pred, "eos": 800.0, "lr": LR,
            "eta_lambda": ETA_LAMBDA, "on_gamma": 200}


def test_fig5_caption_says_tracks_only_when_the_norm_follows_the_prediction():
    """A norm equal to the prediction up to a 2% wiggle tracks it; one frozen at its entry value, or 15% above the
    prediction (log 1.15 = 0.14 > 0.2 × the prediction's log-movement log 1.5 over the second half), does not."""
    from srflow.figures import fig5_norm

    wiggle = lambda t: 1 + 0.02 * np.sin(t / 7.0)  # noqa: E731
    good = fig5_norm.caption(_fig5_data(lambda p, t: p * wiggle(t)))
    assert "‖w_t‖² tracks the prediction" in good and "decays as (1−ηλ)^(2t) from step 200 to 800 as predicted" in good
    frozen = fig5_norm.caption(_fig5_data(lambda p, t: 1.2 * wiggle(t)))
    assert "‖w_t‖² does not track the prediction" in frozen
    offset = fig5_norm.caption(_fig5_data(lambda p, t: 1.15 * p * wiggle(t)))
    assert "does not track" in offset and "tracks the prediction (" not in offset


# -- fig2: GD+WD follows the 4/(4+G) flow, GD without WD tracks it on its clock -----------------------------------
def _fig2_data(on_naive=False, error_falls=True, nowd_frozen=False, wd_rising=False):
    """fig2 arrays: the flow's sharpness e^{-τ} on its clock, the naive flow 25% ahead (its τ × 0.8); GD+WD on the
    flow with a relative error 3ηλ·τ (or 1e-3·τ on every rung), or on the naive flow, its first rung reversed in
    time (rising) with ``wd_rising``; GD without WD on ζ(s) up to a 1e-4 wiggle (or frozen at its start)."""
    flow_tau = np.linspace(0, 0.6, 301)
    d = {"ladder": np.array([1e-3, 3e-4, 1e-4]), "flow_tau": flow_tau, "flow_sharp": np.exp(-flow_tau),
         "naive_tau": 0.8 * flow_tau, "tau_end": 0.2, "flow_s": np.linspace(0, 0.6, 301), "nowd_eps": 0.2,
         "nowd_rest": 0.25}
    for k, x in enumerate(d["ladder"]):
        tau = np.linspace(0, 0.2, 21)
        base = np.interp(tau, d["naive_tau" if on_naive else "flow_tau"], d["flow_sharp"])
        d[f"tau_{k}"], d[f"sharp_{k}"] = tau, base * (1 + (3 * x if error_falls else 1e-3) * tau)
    if wd_rising:
        d["sharp_0"] = d["sharp_0"][::-1]
    s = np.linspace(0, 0.2, 80)
    d["nowd_s"] = s
    d["nowd_sharp"] = (np.full(80, 1.0) if nowd_frozen else np.exp(-s)) * (1 + 1e-4 * np.sin(np.arange(80)))
    return d


def test_fig2_caption_follows_the_data():
    from srflow.figures import fig2_sharpness

    good = fig2_sharpness.caption(_fig2_data())
    assert "at ηλ = 0.0001 follows the flow with the 4/(4+G) clock (solid) (within" in good
    assert "its largest relative distance from that flow falls at the theory's order 1: ∝ (ηλ)^1.00" in good
    assert "λ₁(Φ(w̄_t)) tracks λ₁(ζ(s)) of the flow" in good and "at ηλ = 0.001 falls from" in good
    bad = fig2_sharpness.caption(_fig2_data(on_naive=True, error_falls=False, nowd_frozen=True))
    assert "does not follow the flow with the 4/(4+G) clock (solid) better than the naive flow" in bad
    assert "its largest relative distance from that flow does not fall with ηλ" in bad
    assert "λ₁(Φ(w̄_t)) does not track λ₁(ζ(s)) of the flow" in bad
    assert "at ηλ = 0.001 rises from" in fig2_sharpness.caption(_fig2_data(wd_rising=True))


# -- fig3: which clock keeps ζ on Φ(w̄_t), and whether the naive one runs ahead -----------------------------------
def _fig3_data(swap=False):
    """fig3 arrays: the flow's clock s = 1.8τ with distance 1e-4·τ, the naive s = 2τ with distance 1e-2·τ (or the
    two swapped)."""
    tau = np.linspace(0, 0.3, 31)
    near, far, s, s_naive = 1e-4 * tau, 1e-2 * tau, 1.8 * tau, 2 * tau
    if swap:
        near, far, s, s_naive = far, near, s_naive, s
    z = np.zeros((31, 2))
    return {"flow": z, "phi": z, "matched": z, "naive": z, "error": near, "naive_error": far, "tau": tau,
            "eta_lambda": 3e-4, "tau_end": 0.3, "s": s, "s_naive": s_naive}


def test_fig3_caption_follows_the_data():
    from srflow.figures import fig3_trajectory

    good = fig3_trajectory.caption(_fig3_data())
    assert "ζ at the flow's clock stays closer to Φ(w̄_t) (max distance 3.0e-05) than ζ at the naive clock (3.0e-03, " \
           "100× more)" in good
    assert "the naive clock runs ahead of the flow's along the path (s = 0.6 vs 0.54" in good
    bad = fig3_trajectory.caption(_fig3_data(swap=True))
    assert "ζ at the flow's clock does not stay closer to Φ(w̄_t)" in bad
    assert "the naive clock does not run ahead of the flow's" in bad


# -- fig8: each ALP algorithm's distance from its flow, at its check's order -------------------------------------
def _fig8_data(q_ngd, q_sqrt):
    """fig8 arrays: flow sharpness e^{-τ}; algorithm a's run off it by the relative error η^q·τ."""
    lrs = np.array([0.02, 0.01, 0.005])
    tau_f = np.linspace(0, 0.06, 301)
    d = {"lrs": lrs, "flow_sharp": np.exp(-tau_f), "tau_end": 0.05}
    for a, q in enumerate((q_ngd, q_sqrt)):
        d[f"flow_tau_{a}"] = tau_f
        for k, lr in enumerate(lrs):
            tau = np.linspace(0, 0.05, 31)
            d[f"tau_{a}_{k}"], d[f"sharp_{a}_{k}"] = tau, np.exp(-tau) * (1 + lr**q * tau)
    return d


def test_fig8_caption_follows_the_data():
    """η² for normalized GD and η for GD on √L: both 'at the theory's order'; flat errors, or η¹ where η² is
    expected: not."""
    from srflow.figures import fig8_alp

    good = fig8_alp.caption(_fig8_data(2.0, 1.0))
    assert "normalized GD: " in good and "falls at the theory's order 2: ∝ (η)^2.00" in good
    assert "falls at the theory's order 1: ∝ (η)^1.00" in good
    bad = fig8_alp.caption(_fig8_data(1.0, 0.0))
    assert "falls slower than the theory's order 2: ∝ (η)^1.00" in bad and "does not fall with η: ∝ (η)^0.00" in bad
    assert "at the theory's order" not in bad


# -- fig7: generalization with and without WD, stated either way --------------------------------------------------
def _fig7_data(wd_shift, sharp_sign=1.0, seeds=10):
    """fig7 arrays: GD without WD at held-out error 0.2 + seed noise, GD+WD at 0.2 + ``wd_shift`` + the same noise
    (paired); sharpness = 10 + ``sharp_sign``·100·error (rank correlation ±1)."""
    from srflow.figures.fig7_generalization import LOSS_TARGET

    noise = np.linspace(-0.05, 0.05, seeds)
    err = np.vstack([0.2 + noise] + [0.2 + wd_shift + noise + 0.001 * j for j in range(2)])
    return {"eta_lambdas": np.array([0.0, 1e-2, 3e-3]), "tau_end": 1.0, "err": err, "sharp": 10 + sharp_sign * 100 * err,
            "loss": np.full(err.shape, LOSS_TARGET / 2), "finish_steps": np.full(err.shape, 500.0)}


def test_fig7_caption_follows_the_data():
    """WD 0.05 lower on every seed: 'lower ... at every ηλ', a paired difference -0.050 ± 0.000; 0.05 higher:
    'higher'; sharpness rising with error: 'flatter completions generalize better', falling: 'worse'."""
    from srflow.figures import fig7_generalization as f7

    lower = f7.caption(_fig7_data(-0.05))
    assert "GD+WD ends with a lower mean held-out error than GD without WD at every ηλ" in lower
    assert "ηλ = 0.01: -0.050 ± 0.000 (10 seeds)" in lower and "flatter completions generalize better" in lower
    higher = f7.caption(_fig7_data(+0.05, sharp_sign=-1.0))
    assert "GD+WD ends with a higher mean held-out error than GD without WD at every ηλ" in higher
    assert "ηλ = 0.01: +0.050 ± 0.000" in higher and "flatter completions generalize worse" in higher
    apart = f7.caption(_fig7_data(-0.15))
    assert "the 95% intervals separate at ηλ = 0.01, 0.003" in apart


# -- fig9: λ₁ vs the curvature along the oscillation, stated either way ----------------------------------------------
def _eos_data(levels, rq_levels):
    """fig9 arrays: run k's λ₁ rises to levels[k] × its threshold and stays there, its curvature along the
    oscillation RQ to rq_levels[k] × the threshold."""
    d = {"lrs": np.array([0.05, 0.1, 0.2]), "eta_lambda": 2e-3, "dim": 100, "ratio": 4.0}
    for k, (lr, level, rq) in enumerate(zip(d["lrs"], levels, rq_levels)):
        thr = 2 * (1 - 2e-3) / lr
        steps = np.arange(0, 1001, 9)
        d[f"steps_{k}"], d[f"threshold_{k}"] = steps, thr
        d[f"sharp_{k}"], d[f"rq_{k}"] = (thr * np.minimum(x, 0.25 + steps / 300) for x in (level, rq))
        d[f"loss_{k}"], d[f"train_err_{k}"] = np.full(len(steps), 1e-3), 0.0
    return d


def test_fig9_caption_states_where_the_curvature_along_the_oscillation_sits():
    """λ₁ at 1.5× the threshold and RQ at it: the caption says RQ sits at the threshold for every η, λ₁ above it, and
    RQ is closer; RQ at 1.5× and λ₁ at the threshold (data going the other way): RQ sits above, and is not closer
    for any η; RQ at 0.9 for one η only: that η is named below it; the tail means and ranges are printed."""
    from srflow.figures import fig9_bn_eos

    ours = fig9_bn_eos.caption(_eos_data([1.5, 1.5, 1.5], rq_levels=[1.0, 1.0, 1.0]))
    assert "RQ sits at the threshold (within 5%) for every η" in ours
    assert "λ₁ sits above the threshold (by more than 5%) for every η" in ours
    assert "closer to the threshold than λ₁ for every η" in ours
    assert "η = 0.05: 1.500 and 1.000 (RQ range 1.00-1.00; λ₁ first at" in ours
    # λ₁ and RQ ramp together as 0.25 + t/300: λ₁ reaches the threshold at step 225, RQ at the record before (216) is 0.97
    assert "before λ₁ first reaches the threshold RQ is at most 0.97 of it; grey band" in ours
    low = _eos_data([1.5, 1.5, 1.5], rq_levels=[1.0, 1.0, 1.0])
    for k in range(3):
        low[f"rq_{k}"] = np.where(low[f"steps_{k}"] < 300, 0.01 * low[f"threshold_{k}"], low[f"rq_{k}"])
    assert "RQ is at most 0.01 of it (the steps run along low-curvature directions" in fig9_bn_eos.caption(low)
    other = fig9_bn_eos.caption(_eos_data([1.0, 1.0, 1.0], rq_levels=[1.5, 1.5, 1.5]))
    assert "RQ sits above the threshold (by more than 5%) for every η" in other
    assert "λ₁ sits at the threshold (within 5%) for every η" in other
    assert "is not closer to the threshold than λ₁ for any η" in other
    mixed = fig9_bn_eos.caption(_eos_data([1.5, 1.5, 1.5], rq_levels=[1.0, 0.9, 1.0]))
    assert "RQ sits at the threshold (within 5%) for η = 0.05, 0.2, below it (by more than 5%) for η = 0.1" in mixed


# -- fig11: paired by seed, with intervals and tests, stated either way -------------------------------------------
def _fig11_data(wd_shift, spread, seeds=10):
    """fig11 arrays: BN GD ends at 20% test error + a seed effect (±5 points, shared by every condition of a seed),
    BN GD+WD (both ηλ) at 20% + ``wd_shift`` + the seed effect + a per-seed ±``spread`` that alternates in sign;
    the networks without normalization at 25% + the seed effect; all at 0% training error."""
    from srflow.figures import fig11_bn_generalization as f11

    rows = f11.conditions()
    n, rec = len(rows), 5
    seed_effect = np.linspace(-0.05, 0.05, seeds)
    jitter = spread * np.where(np.arange(seeds) % 2, 1.0, -1.0) * np.linspace(0.5, 1.5, seeds)
    test = np.full((n, seeds, rec), 0.3)
    test[0, :, -1] = 0.20 + seed_effect
    test[1, :, -1] = test[2, :, -1] = 0.20 + wd_shift + seed_effect + jitter
    test[3:, :, -1] = 0.25 + seed_effect
    sph = np.full((n, seeds, rec), 1000.0)
    sph[1:3] = 100.0
    return {"dim": 100, "n_train": 64, "n_test": 500, "lr": 0.1, "ratio": 4.0, "labels": np.array([r[0] for r in rows]),
            "eta_lambdas": np.array([r[2] for r in rows]), "normalized": np.array([r[1] for r in rows]),
            "steps": np.arange(rec) * 11, "test": test, "train": np.zeros((n, seeds, rec)),
            "loss": np.full((n, seeds, rec), 1e-3), "sharp": sph / 10, "sph": sph, "lr_used": np.full((n, seeds, rec), 0.1)}


def test_fig11_caption_states_paired_differences_with_intervals_and_tests():
    """WD 3 points lower with a ±1-point per-seed jitter on top of a ±5-point seed effect: the paired difference is
    −3.0 ± its interval, lower on 10 of 10 seeds, both tests significant, 'is lower'; 3 points higher: 'is higher';
    no shift with ±3-point jitter: 'no significant difference'. The interval and p-values are recomputed here
    (scipy directly) from the per-seed differences."""
    from scipy.stats import t, ttest_rel, wilcoxon

    from srflow.figures import fig11_bn_generalization as f11

    label = f11.conditions()[1][0]
    d = _fig11_data(-0.03, 0.01)
    diff = 100 * (d["test"][1, :, -1] - d["test"][0, :, -1])
    half = t.ppf(0.975, 9) * diff.std(ddof=1) / np.sqrt(10)
    lower = f11.caption(d)
    assert f"{label} minus BN, GD, paired by seed: {diff.mean():+.1f} ± {half:.1f} points (mean ± 95% CI, 10 seeds)" \
        in lower
    assert "lower on 10 and higher on 0 of them" in lower
    p_t, p_w = ttest_rel(d["test"][1, :, -1], d["test"][0, :, -1]).pvalue, wilcoxon(diff).pvalue
    assert f"paired t p = {p_t:.2g}, Wilcoxon signed-rank p = {p_w:.2g}: {label} is lower" in lower
    assert "every run ends at 0% training error" in lower
    higher = f11.caption(_fig11_data(+0.03, 0.01))
    assert f"{label} is higher (the interval excludes 0)" in higher and "lower on 0 and higher on 10" in higher
    none = f11.caption(_fig11_data(0.0, 0.03))
    start = none.index(f"{label} minus BN, GD")
    verdict = none[start:none.index("(the interval", start)]  # this comparison's sentence up to its verdict
    assert verdict.endswith(": no significant difference ")
    d = _fig11_data(-0.03, 0.01)
    d["train"][2, 3, -1] = 0.02
    assert "not every run ends at 0% training error (largest 2.0%)" in f11.caption(d)
