"""Verdicts on models srflow was not tuned on (issue 18): drawn zoo models, the checks unmutated and with each
prediction wrong by ±1% through the public ``theory`` functions (``verification.zoo_study``).

The default run draws ``N_DEFAULT`` numpy zoo models from ``SEED`` (printed: set ``SRFLOW_ZOO_SEED`` to draw
others; ``srflow verify --quick --models zoo:NAME --seed SEED`` reruns one) and runs the cheap checks; the slow run
takes 30 models through every check the study covers and asserts issue 18's criteria (docs/zoo_baseline.md)."""

import dataclasses
import os

import numpy as np
import pytest

import srflow.theory as th
from srflow.toy_models import make_model
from srflow.toy_models.zoo import zoo_model, zoo_specs
from srflow.verification.session import QUICK, Session
from srflow.verification.zoo_study import MUTATIONS, run_study, study_model, summarize

SEED = int(os.environ.get("SRFLOW_ZOO_SEED", "0"))
N_DEFAULT = 2
#: the cheap checks of the default run (no GD+WD ladder): seconds per model
CHEAP = ("identities", "scale-collapse", "eos-entry")
#: ``srflow verify --quick``'s configuration with a step budget of 2e4 for eos-entry's second, slower run (an
#: ill-conditioned draw needs up to 4e5 steps there: minutes; within 2e4 it is inconclusive, which the test allows)
DEFAULT_RUN = dataclasses.replace(QUICK, extend_steps=20_000)


def _drawn(n, seed):
    specs = zoo_specs(n, seed, families=["rq_sum", "curved"], backends=["np"])
    print(f"zoo seed {seed}: " + ", ".join(s.name for s in specs)
          + f"  (rerun one: srflow verify --quick --models zoo:NAME --seed {seed})")
    return specs


def _judge_rows(rows, where):
    """No FAIL on a drawn model; where the unmutated check passes, each ±1% mutation fails by measurement."""
    for r in rows:
        assert r["status"] not in ("fail", "error"), f"{where}: {r['model']} {r['check']}: {r['status']}: {r['message']}"
        if r["status"] == "pass" and r["check"] in MUTATIONS:
            got = {(m["prediction"], m["factor"]) for m in r["mutations"]}
            assert len(got) == 2 * len(MUTATIONS[r["check"]]), (where, r["check"], got)
            for m in r["mutations"]:
                assert m["fails_by_measurement"], (f"{where}: {r['model']} {r['check']}: {m['prediction']} "
                                                   f"x{m['factor']} not rejected: {m['status']}: {m['message']}")


def test_drawn_zoo_models_pass_the_cheap_checks_and_reject_1_percent_mutations(capsys):
    """On N_DEFAULT numpy zoo models drawn from SEED: identities, scale-collapse and eos-entry give no FAIL, and the
    collapse factor √c, the phase-2 duration and the EoS threshold, each × (1 ± 1%), fail by measurement wherever
    the unmutated check passes."""
    specs = _drawn(N_DEFAULT, SEED)
    rows = []
    for spec in specs:
        rows += study_model(spec.name, SEED, CHEAP, DEFAULT_RUN)
    with capsys.disabled():
        print(f"\n[test_zoo_verdicts] zoo seed {SEED}: " + "; ".join(f"{r['model']} {r['check']} {r['status']}"
                                                                   for r in rows))
    _judge_rows(rows, f"zoo seed {SEED}")
    assert sum(r["status"] == "pass" for r in rows) >= len(specs) * 2, [(r["check"], r["message"]) for r in rows]


def test_memoized_theory_serves_repeated_calls_and_a_mutation_rescales_the_memoized_value():
    """Inside ``memoized_theory`` a repeated call of ``theory.eos_stability`` (and its home module's name) returns the
    first call's value without computing it again; a mutation entered inside the block rescales that value, as it would
    the unmemoized one; on leaving, the original functions are back."""
    import srflow.theory.stability as stability
    from srflow.verification.zoo_study import memoized_theory, mutated

    m = make_model("sphere_circle")
    theta = Session(m, QUICK, 0).theta0
    original, want = th.eos_stability, th.eos_stability(m, theta).rate
    with memoized_theory(("eos_stability",)):
        assert th.eos_stability is stability.eos_stability is not original
        first = th.eos_stability(m, theta)
        assert first.rate == want and th.eos_stability(m, theta.copy()) is first  # keyed by the bytes of θ
        assert th.eos_stability(m, theta, eta_lambda=1e-3).rate_per_step == pytest.approx(want * 1e-3, rel=1e-15)
        with mutated("eos_stability", MUTATIONS["eos-stability"][0][2], 1.01):
            assert th.eos_stability(m, theta).rate == 1.01 * want
            assert stability.eos_stability(m, theta).rate == 1.01 * want
        assert th.eos_stability(m, theta) is first
    assert th.eos_stability is original and stability.eos_stability is original


def test_summarize_counts_the_mutations_where_the_check_resolves_one_percent():
    """A mutation counts in the second rate only where the unmutated row's δ* of that prediction is ≤ 1%: the no-WD
    rest point with δ* = 0.4% (rejected) and 4.8% (passed) gives 1 of 2 overall and 1 of 1 among the resolved; a
    prediction without a δ* (the no-WD clock) has no second count."""
    def row(delta, status):
        return {"model": f"m{delta}", "check": "no-wd-clock", "status": "pass", "resolving_power": {"rest point": delta},
                "mutations": [{"prediction": "no-WD rest point", "factor": 0.99, "status": status,
                               "fails_by_measurement": status == "fail"},
                              {"prediction": "no-WD clock", "factor": 0.99, "status": "fail", "fails_by_measurement": True}]}
    s = summarize([row(0.004, "fail"), row(0.048, "pass")])
    assert s["mutations"][("no-wd-clock", "no-WD rest point", "-1%")] == (2, 1)
    assert s["resolved"][("no-wd-clock", "no-WD rest point", "-1%")] == (1, 1)
    assert ("no-wd-clock", "no-WD clock", "-1%") not in s["resolved"]


# -- the slaving assumption of the breathing rate κ (docs/theory.md §4d) -------------------------------------------
def test_slaved_shares_add_up_to_the_slaved_term_of_kappa():
    """Σ_j Δκ_j = 2/(3(4 + G))·(-3Σ_j (∇³L[v₁,v₁,u_j])²/(λ_jλ₁)), the slaved part of κ's quartic k."""
    m = make_model("bn_linear")
    theta = Session(m, QUICK, 0).theta0
    sl = th.eos_slaving(m, theta, 1e-4)
    c = th.stability_coefficients(m, theta)
    mp = th.manifold_point(m, theta)
    vals, vecs = np.linalg.eigh(m.hess(mp.theta))
    normal = (vals > 1e-8 * mp.lam1) & (np.arange(len(vals)) < len(vals) - 1)
    t = vecs[:, normal].T @ m.third(mp.theta, mp.v1, mp.v1)
    slaved_k = -3 * np.sum(t**2 / vals[normal]) / mp.lam1
    assert np.isclose(sl.share.sum(), 2 * slaved_k / (3 * (4 + c["G"])), rtol=1e-12)
    # bn_linear at its seed-0 start: every normal mode relaxes faster than the breathing at ηλ = 1e-4 (λ₁/λ_j ≤ 24;
    # at 1e-3 the slowest one has χ = 1.02)
    assert sl.chi.max() < 1 and sl.unslaved == 0.0


def test_a_slow_coupled_mode_is_unslaved_and_an_uncoupled_one_does_not_count():
    """χ_j = √(8ηλ)/r_j, r_j = -log|1 - 2λ_j/λ₁|: on a zoo tanh net with λ₁/μ ≈ 2300 the slowest modes do not follow
    the breathing at ηλ = 1e-4 and carry almost all of κ; on mf a mode with χ ≈ 2 is not coupled (share ≈ 0)."""
    net = zoo_model("lnnet-jax-nomin-d3-h3-n4-s881856848")
    theta = Session(net, QUICK, 0, spec="zoo:lnnet-jax-nomin-d3-h3-n4-s881856848").theta0
    sl = th.eos_slaving(net, theta, 1e-4)
    kappa = th.eos_stability(net, theta).rate
    assert sl.chi.max() > 10 and abs(sl.unslaved) > 0.9 * abs(kappa)
    r = -np.log(np.abs(1 - 2 * sl.lam_j / sl.lam1))
    assert np.allclose(sl.chi, np.sqrt(8e-4) / r)
    mf = make_model("mf")
    sl = th.eos_slaving(mf, Session(mf, QUICK, 0).theta0, 1e-4)
    assert sl.chi.max() > 1 and abs(sl.unslaved) < 1e-12


@pytest.mark.slow
def test_eos_stability_says_assumption_violated_where_the_normal_modes_are_not_slaved():
    """The zoo lnnet whose κ = -2.4e5 is almost all slaved term of modes with χ ≈ 30-100: assumption-violated with the
    share they carry and the measured rates, not a FAIL of κ."""
    from srflow.verification.checks import CHECKS

    name = "lnnet-jax-nomin-d3-h3-n4-s881856848"
    res = CHECKS["eos-stability"](Session(zoo_model(name), QUICK, 0, spec=f"zoo:{name}"))
    assert res.status == "assumption-violated", res.message
    assert "not slaved" in res.message and res.details["chi_max"] > 1



def test_chi_scales_like_the_square_root_of_eta_lambda_and_the_shares_do_not_depend_on_it():
    """eos-stability finds the rungs below its ladder where slow modes follow the breathing from the slaving at the
    largest rung, χ_j(ηλ) = χ_j(ηλ₀)·√(ηλ/ηλ₀) with unchanged shares Δκ_j: on the zoo curved model whose one slow mode
    (χ = 3.58 at ηλ = 1e-3, Δκ = -4.34 of κ = -3.12) follows for ηλ < 7.8e-5."""
    name = "curved-np-min-h0.54-k3-lc1.88-lg2.11-lr0.33-m2-s1564997911"
    m = zoo_model(name)
    theta = Session(m, QUICK, 0, spec=f"zoo:{name}").theta0
    top = th.eos_slaving(m, theta, 1e-3)
    assert 3 < top.chi.max() < 4 and top.unslaved < -4
    for eta_lambda in (3e-5, 9e-6):
        low = th.eos_slaving(m, theta, eta_lambda)
        assert np.allclose(low.chi, top.chi * np.sqrt(eta_lambda / 1e-3), rtol=1e-12)
        assert np.array_equal(low.share, top.share) and low.unslaved == 0.0


@pytest.mark.slow
def test_eos_stability_judges_slow_modes_on_the_rungs_below_the_ladder_where_they_follow(monkeypatch):
    """The zoo curved model's slow mode carries -4.34 of κ(θ₀) = -3.12 unslaved at ηλ = 1e-3 (χ = 3.58): the check
    judges it at ηλ = 3e-5, 9e-6, 2.7e-6 (4.6e5 steps, 124 s under load) and passes (measured -1.658, -2.410, -2.710 vs
    predicted with the modes' gain Re H_j -1.682, -2.415, -2.711; extrapolated deviation +0.0006 ± 0.0040; without the
    gain the prediction was -2.84, -2.85, -2.85 and the deviation +0.023 ± 0.105); with no budget for those rungs it stays
    assumption-violated and says what they would cost."""
    from srflow.verification.checks import CHECKS
    from srflow.verification.checks import eos_stability as mod

    name = "curved-np-min-h0.54-k3-lc1.88-lg2.11-lr0.33-m2-s1564997911"
    session = Session(zoo_model(name), QUICK, 0, spec=f"zoo:{name}")
    res = CHECKS["eos-stability"](session)
    assert res.status == "pass", res.message
    assert res.details["ladder"][0] < 7.8e-5 and "below the ladder" in res.message
    monkeypatch.setattr(mod, "SLAVING_STEPS", 0)
    res = CHECKS["eos-stability"](Session(zoo_model(name), QUICK, 0, spec=f"zoo:{name}"))
    assert res.status == "assumption-violated" and "not slaved" in res.message and "SLAVING_STEPS" in res.message

# -- the 30-model study (slow) -------------------------------------------------------------------------------------
#: the checks of the 30-model study: those whose cost fits the slow suite (docs/zoo_baseline.md gives the others)
STUDY_CHECKS = ("identities", "scale-collapse", "eos-entry", "flow-tracking", "naive-flow-rejected")


@pytest.mark.slow
def test_thirty_zoo_models(tmp_path):
    """Issue 18's criteria on zoo_specs(30, SEED): no FAIL (where a verdict is not pass, the check says why:
    inconclusive or assumption-violated with its reason), inconclusive ≤ 15% of the verdicts, and each ±1% mutation
    fails by measurement on ≥ 90% of the models where the check passes unmutated."""
    out = tmp_path / "study.jsonl"
    rows = run_study(30, SEED, STUDY_CHECKS, out)
    print(f"zoo seed {SEED}: {len(rows)} verdicts")
    fails = [(r["model"], r["check"], r["message"]) for r in rows if r["status"] in ("fail", "error")]
    assert not fails, fails
    inconclusive = [r for r in rows if r["status"] == "inconclusive"]
    assert len(inconclusive) <= 0.15 * len(rows), [(r["model"], r["check"], r["message"]) for r in inconclusive]
    for (check, pred, sign), (power, failed) in summarize(rows)["mutations"].items():
        assert failed >= 0.9 * power, (check, pred, sign, power, failed)


# -- eos-entry on an ill-conditioned model: phase 2 must outlast phase 1 ------------------------------------------
def test_the_entry_run_is_slowed_to_outlast_phase_one():
    """ηλ = min(entry_eta_lambda, log r/(4N₁)), N₁ = rκ·log(1/ρ)/2: unchanged for a well-conditioned model (κ = 10), slower
    for κ = 914 (the zoo bn model whose phases did not separate at 3e-4), NaN κ keeps the configured value."""
    from srflow.verification.checks.eos_entry import entry_eta_lambda

    x, n1 = entry_eta_lambda(QUICK, 10.0, 1e-6)
    assert x == QUICK.entry_eta_lambda and np.isclose(n1, 5 * 10 * np.log(1e6) / 2)
    x, n1 = entry_eta_lambda(QUICK, 914.0, 1e-8)
    assert np.isclose(x, np.log(5) / (4 * 5 * 914 * np.log(1e8) / 2)) and np.log(5) / (2 * x) >= 2 * n1
    assert entry_eta_lambda(QUICK, float("nan"), 1e-6)[0] == QUICK.entry_eta_lambda


@pytest.mark.slow
def test_eos_entry_separates_the_phases_on_an_ill_conditioned_zoo_model():
    """bn-np-min-d3-h3-n9-s1734431760 (λ₁/μ ≈ 914): at ηλ = 3e-4 GD had not reached Γ when the norm had decayed
    (inconclusive); at the derived ηλ the entry is predicted within tolerance and ±1% of the duration fail."""
    rows = study_model("bn-np-min-d3-h3-n9-s1734431760", 0, ["eos-entry"])
    assert rows[0]["status"] == "pass", rows[0]["message"]
    assert all(m["fails_by_measurement"] for m in rows[0]["mutations"])


# -- the premise of the GD+WD checks: the runs stay O(√ηλ) from Γ ---------------------------------------------------
def test_runs_that_do_not_approach_gamma_as_eta_lambda_falls_are_outside_the_premise():
    """⟨‖w̄ − Φ‖²⟩ ∝ ηλ (the EoS amplitude 2ηλ/(4+G)): no caveat; flat over 1.5 decades (the zoo LN net
    lnnet-jax-nomin-d3-h3-n4-s881856848 measured 2.7e-4, 3.9e-4, 3.4e-4, 3.4e-4 at ηλ = 1e-3 … 3e-5): the caveat,
    with the measured means."""
    from types import SimpleNamespace

    from srflow.verification.tracking import neighbourhood_caveat

    xs = [1e-3, 3e-4, 1e-4, 3e-5]
    rng = np.random.default_rng(0)

    def runs(means):
        return [SimpleNamespace(lr=0.1, wd=x / 0.1, eta_lambda=x, offset_sq=m * (1 + 0.3 * rng.standard_normal(50)) ** 2)
                for x, m in zip(xs, means)]

    assert neighbourhood_caveat(runs([0.4 * x for x in xs])) == ""
    flat = neighbourhood_caveat(runs([2.74e-4, 3.88e-4, 3.45e-4, 3.37e-4]))
    assert flat.startswith("assumption violated") and "does not fall" in flat and "3e-05" in flat
    # half the order (√ηλ) still falls: not this premise's business (the checks judge their own orders)
    assert neighbourhood_caveat(runs([np.sqrt(x) * 1e-2 for x in xs])) == ""


def test_rungs_slower_than_the_slowest_normal_mode_are_outside_the_premise(monkeypatch):
    """ηλ·κ/2 ≥ 1 (κ = λ₁/μ) on a judged rung: the slowest normal mode does not relax faster than the flow moves
    (the zoo's lnnet-jax-min-d3-h3-n4-s914065686, κ = 6.3e4: ηλ·κ/2 = 9.5, 3.2 at 3e-4, 1e-4); sphere_circle: none."""
    from types import SimpleNamespace

    import srflow.verification.tracking as tracking

    session = Session(make_model("sphere_circle"), QUICK, 0)
    assert tracking.separation_caveat(session, QUICK.ladder) == ""
    monkeypatch.setattr(tracking.th, "normal_conditioning", lambda model, theta: (6.3e4, 1.0))
    msg = tracking.separation_caveat(SimpleNamespace(model=None, theta0=None), QUICK.ladder)
    assert msg.startswith("assumption violated: time scales not separated") and "0.0001, 0.0003" in msg
    assert "3e-05" not in msg.split("(ηλ·")[0]  # 3e-5·6.3e4/2 = 0.95 < 1


def test_the_docs_quote_the_zoo_tables_of_the_stored_rows():
    """docs/results.md and docs/theory.md §7 show the tables ``zoo_study.tables`` makes from docs/zoo_expensive.jsonl
    (the rows of the five costlier checks on the 30 zoo models), block for block: rows merged without the tables
    redone (or the reverse) fail here."""
    from pathlib import Path

    from srflow.verification.zoo_study import done_rows, tables

    root = Path(__file__).resolve().parents[1]
    blocks = tables(done_rows(str(root / "docs" / "zoo_expensive.jsonl"))).split("\n\n")
    assert len(blocks) == 3 and all(b.startswith("| ") for b in blocks)
    for doc in ("results.md", "theory.md"):
        text = (root / "docs" / doc).read_text()
        missing = [b.splitlines()[0] for b in blocks if b not in text]
        assert not missing, f"docs/{doc} lacks the table(s) starting {missing}"
