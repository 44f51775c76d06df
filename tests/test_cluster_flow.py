"""The flow through a cluster of top eigenvalues (docs/theory.md §4c, issue 19): the selection of Σ, the events,
closed forms on the designed tie toys (toy_models/ties.py), the reduction to the simple flow, and GD+WD tracking it."""

import functools

import numpy as np
import pytest

from srflow import theory
import srflow.theory.flows
from srflow.theory import AssumptionViolated, project_to_manifold, sharpness_reduction_flow
from srflow.theory.cluster_flow import cluster_point, select_covariance
from srflow.theory.flows import simple_flow
from srflow.toy_models import make_model
from srflow.toy_models.ties import TIE_MODELS, cross_continue, cross_halt, cross_slide, double_top, triple
from srflow.verification import checks, tracking
from srflow.verification.identities import check_identities, check_minimizer
from srflow.verification.session import Session, VerifyConfig

RHO = 3.0


def y_of(model, theta):
    """The y block (the point of Γ = S²) of θ in the model's own coordinates (undo the rotation)."""
    theta = np.atleast_2d(theta)
    rot = model.linear if model.linear is not None else np.eye(model.dim)
    return (theta @ rot.T)[:, :3]


def great_circle_flow(y_start, y0_of_s_end, rate):
    """On a branch ℓ = rate·y₀ the flow dy/ds = -¼ rate (e₀ - y₀y) runs along the great circle through e₀ and the
    start, with ψ = ∠(y, e₀): dψ/ds = ¼·rate·sin ψ, i.e. tan(ψ/2) = tan(ψ₀/2) e^{rate·s/4}. Returns the flow time
    at which y₀ reaches ``y0_of_s_end``."""
    psi0, psi1 = np.arccos(y_start[0]), np.arccos(y0_of_s_end)
    return 4 / rate * np.log(np.tan(psi1 / 2) / np.tan(psi0 / 2))


def on_circle(y_start, y0):
    """The point with first coordinate y0 on the great circle through e₀ and y_start."""
    rest = np.asarray(y_start[1:]) / np.linalg.norm(y_start[1:])
    return np.concatenate([[y0], np.sqrt(1 - y0**2) * rest])


# -- the models ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TIE_MODELS))
def test_tie_models_have_exact_derivatives_and_start_on_gamma(name):
    m = TIE_MODELS[name]()
    rows = check_identities(m, np.random.default_rng(0), points=2) + check_minimizer(m, m.minimizer(0))
    bad = [(r.identity, r.scaled_error) for r in rows if r.status != "pass"]
    assert not bad


def test_tie_models_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="rho"):
        cross_halt(rho=-1.0)
    with pytest.raises(ValueError, match="start"):
        theory_model = __import__("srflow.toy_models.ties", fromlist=["branch_model"]).branch_model
        theory_model([0.0], [[1.0, 0.0]], start=[0.0, 0.0])


# -- the selection of Σ ------------------------------------------------------------------------------------------
def _diag(*gs):
    gs = np.array(gs, dtype=float)
    k, m = gs.shape
    g = np.zeros((k, k, m))
    g[np.arange(k), np.arange(k)] = gs
    return g


@pytest.mark.parametrize("gs, expected", [
    (([1.0, 0.0], [-2.0, 0.0]), [0.0, 0.0]),                     # 0 between them: halt
    (([1.0, 0.0], [0.0, 1.0]), [0.5, 0.5]),                      # orthogonal, equal: the midpoint (slide)
    (([2.0, 0.0], [1.0, 0.0]), [1.0, 0.0]),                      # same direction: the shorter (continue on it)
    (([1.0, 0.0], [1.0, 2.0]), [1.0, 0.0]),                      # ⟨g₁, g₂⟩ ≥ ‖g₁‖²: g₁ alone
    (([np.cos(a), np.sin(a)] for a in 2 * np.pi * np.arange(3) / 3), [0.0, 0.0]),   # three at 120°: halt
])
def test_the_selection_is_the_minimum_norm_point_of_the_branch_gradients(gs, expected):
    g = _diag(*list(gs))
    P, kkt = select_covariance(g, np.zeros(g.shape[0]))
    gstar = np.einsum("ij,ijm->m", P, g)
    assert np.allclose(gstar, expected, atol=1e-12) and kkt < 1e-12
    assert np.allclose(P, P.T) and abs(np.trace(P) - 1) < 1e-12 and np.linalg.eigvalsh(P)[0] > -1e-12


def test_the_selection_is_basis_free_and_solves_the_sdp_when_the_eigenspace_rotates():
    """A tie of simple branches written in a rotated basis of the cluster (what eigh returns at an exact tie) gives
    the same g*; and for generic (non-commuting) g_ij the SDP's answer beats every other density matrix tried."""
    rng = np.random.default_rng(3)
    g = _diag([1.0, 0.2, 0.0], [-0.3, 1.0, 0.1], [0.1, -0.5, -1.0])
    q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    g_rot = np.einsum("ia,jb,ijm->abm", q, q, g)
    gs = [np.einsum("ij,ijm->m", select_covariance(x, np.zeros(3))[0], x) for x in (g, g_rot)]
    assert np.allclose(gs[0], gs[1], atol=1e-12)
    a = rng.standard_normal((3, 3, 4))
    a = a + a.transpose(1, 0, 2)
    P, kkt = select_covariance(a, np.zeros(3))
    f = lambda X: np.sum(np.einsum("ij,ijm->m", X, a) ** 2)  # noqa: E731
    assert kkt < 1e-8
    for _ in range(2000):
        z = rng.standard_normal((3, 3))
        X = z @ z.T
        assert f(X / np.trace(X)) >= f(P) - 1e-12


# -- flows: the reduction, closed forms, events ---------------------------------------------------------------
@pytest.mark.parametrize("name, theta0", [("sphere_circle", np.array([np.cos(0.5), np.sin(0.5), 0.0])), ("mf", None)])
def test_a_simple_top_eigenvalue_gives_the_simple_flow_to_the_last_digit(name, theta0):
    m = make_model(name)
    theta0 = m.minimizer(np.random.default_rng(0)) if theta0 is None else theta0
    new = sharpness_reduction_flow(m, theta0, 0.4, n_out=21)
    old = simple_flow(m, theta0, 0.4, n_out=21)
    assert not new.events and np.all(new.cluster_size == 1)
    for field in ("s", "theta", "lam1", "G"):
        assert np.array_equal(getattr(new, field), getattr(old, field)), field
    assert np.array_equal(new.at([0.123]), old.at([0.123]))


@functools.cache
def flow_of(name, s_end, **kw):
    m = TIE_MODELS[name](**dict(kw))
    return m, sharpness_reduction_flow(m, m.minimizer(0), s_end, n_out=81)


def test_a_double_top_eigenvalue_on_all_of_gamma():
    """a₁ = a₂ = e^{ρy₀}: the simple flow stops at the tie, the cluster flow is the flow of the common branch."""
    m, r = flow_of("double_top", 0.6)
    with pytest.raises(AssumptionViolated, match="spectral gap"):
        simple_flow(m, m.minimizer(0), 0.6, n_out=5)
    assert np.all(r.cluster_size == 2) and not r.events
    y = y_of(m, r.theta)
    s_ref = [great_circle_flow(y[0], y0, RHO) for y0 in y[1:, 0]]
    assert np.allclose(r.s[1:], s_ref, rtol=0, atol=1e-8)
    assert np.allclose(r.lam1, np.exp(RHO * y[:, 0]), rtol=1e-11)


def test_two_branches_with_opposite_gradients_halt_at_their_crossing():
    """ℓ₁ = ρy₀, ℓ₂ = -ρy₀ + 0.6: branch 1 until y₀* = 0.1 (closed form), then g* = 0 and the flow stays."""
    m, r = flow_of("cross_halt", 0.9)
    y_start = y_of(m, r.theta[0])[0]
    s_star = great_circle_flow(y_start, 0.1, RHO)
    kinds = [e["kind"] for e in r.events]
    assert kinds == ["join", "halt"]
    assert abs(r.events[0]["s"] - s_star) < 1e-8 and abs(r.halt - s_star) < 1e-8
    after = r.s >= s_star
    assert np.allclose(y_of(m, r.theta[after]), on_circle(y_start, 0.1), atol=1e-8)
    assert np.all(r.G[after][1:] < 1e-12) and np.all(r.cluster_size[after][1:] == 2) and np.all(r.loaded[after][1:] == 2)
    # the clock: ds/dτ = 2 after the halt (G = 0), 8/(4 + G) before
    tau = theory.gdwd_tau(r)
    i = np.flatnonzero(after)[2]
    assert abs((r.s[-1] - r.s[i]) / (tau[-1] - tau[i]) - 2.0) < 1e-7


def test_a_crossing_branch_that_falls_slower_takes_over():
    """ℓ₂ = ½ρy₀ - 0.3 meets ℓ₁ = ρy₀ at y₀* = -0.2 with g₂ = ½g₁: branch 1 leaves, the flow continues on branch 2
    at half the rate (closed form on both legs)."""
    m, r = flow_of("cross_continue", 1.4)
    y_start = y_of(m, r.theta[0])[0]
    s_star = great_circle_flow(y_start, -0.2, RHO)
    assert [e["kind"] for e in r.events] == ["join", "leave"]
    assert abs(r.events[0]["s"] - s_star) < 1e-8 and r.events[1]["s"] - s_star < 1e-5
    late = r.s > s_star + 1e-3
    y = y_of(m, r.theta[late])
    s_ref = s_star + np.array([great_circle_flow(on_circle(y_start, -0.2), y0, RHO / 2) for y0 in y[:, 0]])
    assert np.allclose(r.s[late], s_ref, atol=1e-7)
    assert np.allclose(r.lam1[late], np.exp(RHO / 2 * y[:, 0] - 0.3), rtol=1e-10)


def test_the_flow_slides_along_a_tie_with_both_branches_loaded():
    """ℓ₁ = ρy₀, ℓ₂ = ρy₁ - 0.6: after the join the two stay tied (ℓ₁ = ℓ₂), both are loaded, and
    d log λ₁/ds = -G/4 with G = ‖g*‖² < min ‖g_i‖² (the min-norm point lies strictly between the gradients)."""
    m, r = flow_of("cross_slide", 1.4)
    assert [e["kind"] for e in r.events] == ["join"]
    late = r.s > r.events[0]["s"] + 1e-3
    y = y_of(m, r.theta[late])
    assert np.max(np.abs(RHO * y[:, 0] - (RHO * y[:, 1] - 0.6))) < 1e-8
    assert np.all(r.loaded[late] == 2)
    branch = RHO**2 * np.minimum(1 - y[:, 0] ** 2, 1 - y[:, 1] ** 2)
    assert np.all(r.G[late] < branch - 0.1)
    dlog = np.gradient(np.log(r.lam1[late]), r.s[late])
    assert np.max(np.abs(dlog[2:-2] + r.G[late][2:-2] / 4)) < 1e-4


def test_three_branches_meet_at_a_triple_point_where_the_flow_halts():
    m, r = flow_of("triple", 1.6)
    assert [(e["kind"], e["k"]) for e in r.events] == [("join", 2), ("join", 3), ("halt", 3)]
    assert np.allclose(y_of(m, r.theta[-1])[0], [0, 0, 1], atol=1e-8)
    assert r.loaded[-1] == 3 and r.G[-1] < 1e-12 and abs(r.lam1[-1] - 1.0) < 1e-8


def test_one_step_moves_phi_by_the_cluster_drift():
    """Φ(w̄') - Φ(w̄) = -(1/λ)P_T ∇³L[x, x] + O(|x|³) for a flip x ↦ -x along any direction of a tied eigenspace
    (docs/theory.md §4c, item 2): the relative remainder falls at least 2x when |x| halves."""
    m = cross_halt(start=[0.1, 0.3, np.sqrt(0.9)])
    cp = cluster_point(m, m.minimizer(0))
    assert cp.k == 2
    x_dir = cp.U @ np.array([np.cos(0.7), np.sin(0.7)])
    rem = []
    for alpha in (4e-3, 2e-3):
        x = alpha * x_dir
        w = cp.theta + x
        w_next = w - (2 / cp.lam1) * m.grad(w)          # κλ = 2: the flip at EoS
        dphi = project_to_manifold(m, w_next).theta - project_to_manifold(m, w).theta
        pred = -cp.tangent @ (cp.tangent.T @ m.third(cp.theta, x, x)) / cp.lam1
        rem.append(np.linalg.norm(dphi - pred) / np.linalg.norm(pred))
    print(rem)
    assert rem[0] < 0.05 and rem[0] / rem[1] > 1.8  # the relative remainder falls at least ∝ |x|


# -- GD+WD tracks the cluster flow -----------------------------------------------------------------------------
FAST = VerifyConfig(lr=0.1, ladder=(1e-3, 3e-4, 1e-4, 3e-5), tau_end=0.1, records=7, extend_steps=0)
FULL = VerifyConfig(lr=0.1, ladder=(1e-3, 3e-4, 1e-4, 3e-5, 1e-5), tau_end=0.3, records=25, extend_steps=0)
TIE_STARTS = {"double_top": {}, "cross_slide": {"start": [0.3, 0.5, np.sqrt(0.66)]}}


@functools.cache
def tracked(name, config):
    session = Session(TIE_MODELS[name](**TIE_STARTS[name]), config, 0)
    return session, checks.check_flow_tracking(session)


@pytest.mark.parametrize("name", list(TIE_STARTS))
def test_gdwd_tracks_the_cluster_flow_at_order_one_fast(name):
    session, res = tracked(name, FAST)
    assert res.status == "pass", res.message
    assert theory.cluster_flow.cluster_size(np.linalg.eigvalsh(session.model.hess(session.theta0))[::-1]) == 2
    assert res.details["cluster_size_max"] == 2
    # the negative control on the same runs: the naive clock s = 2ηλt (G → 0) is rejected through the cluster too
    naive = checks.check_naive_flow_rejected(session)
    assert naive.status == "pass", naive.message


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TIE_STARTS))
def test_gdwd_tracks_the_cluster_flow_at_order_one(name):
    _, res = tracked(name, FULL)
    assert res.status == "pass", res.message
    for key in ("path", "clock"):
        assert abs(res.details[key]["order"] - 1) < 0.1
    assert res.resolving_power["clock rate"] < 3e-3 and res.resolving_power["flow coefficient"] < 3e-3


def _mutated(name, config, monkeypatch, what, factor):
    base, _ = tracked(name, config)
    s = Session(base.model, base.config, base.seed)
    s._cache = {k: v for k, v in base._cache.items() if k != "flows" or what == "clock"}
    if what == "clock":
        monkeypatch.setattr(theory, "gdwd_steps", lambda *a, **k: factor * srflow.theory.flows.gdwd_steps(*a, **k))
    else:
        monkeypatch.setattr(theory.flows, "CANONICAL_COEF", -0.25 * factor)
    return checks.check_flow_tracking(s)


@pytest.mark.parametrize("what", ["clock", "coefficient"])
@pytest.mark.parametrize("factor", [1.01, 0.99])
def test_a_mutated_cluster_flow_fails_fast(monkeypatch, what, factor):
    res = _mutated("cross_slide", FAST, monkeypatch, what, factor)
    assert res.status == "fail", res.message


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TIE_STARTS))
@pytest.mark.parametrize("what", ["clock", "coefficient"])
@pytest.mark.parametrize("factor", [1.01, 0.99, 1.003, 0.997])
def test_a_mutated_cluster_flow_fails(monkeypatch, name, what, factor):
    res = _mutated(name, FULL, monkeypatch, what, factor)
    assert res.status == "fail", res.message


def test_a_join_or_a_halt_on_the_path_is_reported_as_the_cluster_theorys_assumption():
    """cross_halt from its designed start: the flow-tracking check names the join and the halt, with the place."""
    session = Session(cross_halt(), VerifyConfig(lr=0.1, ladder=(1e-3, 3e-4, 1e-4), tau_end=1.0, records=5,
                                                 extend_steps=0), 0)
    res = tracking.cluster_caveat(session, session.flow(tracking.gdwd_horizon(session)))
    assert "joins the top cluster at flow time s = 0.6004" in res and "halts at s = 0.6004" in res


def test_near_ties_are_the_smallest_gap_of_each_stretch_that_does_not_close():
    from srflow.theory.cluster_flow import near_ties

    s = np.linspace(0, 1, 11)
    gap = np.array([1e-2, 5e-3, 8e-4, 3e-4, 8e-4, 5e-3, 1e-2, 9e-4, 1e-9, 1e-2, 1e-2])
    assert np.allclose(near_ties(s, gap, [{"s": 0.8, "kind": "join", "k": 2}]), [(0.3, 3e-4)])
    assert np.allclose(near_ties(s, gap, []), [(0.3, 3e-4), (0.7, 9e-4)])


def test_the_checks_name_a_near_tie_below_ten_eta_lambda():
    """A stub flow with a near tie of relative gap 3e-4 at s = 0.2: flagged for a ladder up to ηλ = 1e-3 (3e-4 <
    10·1e-3), not for one up to 1e-5."""
    class Flow:
        s = np.linspace(0, 1, 11)
        lam1 = np.exp(-s)
        events = ()
        near_ties = ((0.2, 3e-4),)

    for ladder, flagged in (((1e-3, 1e-4), True), ((1e-5, 3e-6), False)):
        session = Session(double_top(), VerifyConfig(ladder=ladder, tau_end=0.5), 0)
        msg = tracking.cluster_caveat(session, Flow())
        assert ("near tie that is not a tie at s = 0.2" in msg) == flagged, msg


@pytest.mark.slow
def test_an_avoided_crossing_is_a_near_tie_not_a_join():
    """cross_halt with the branches coupled by κ = 2e-4 (cross_avoided): no join, no halt; the flow settles at the
    avoided crossing with relative gap 2κ/λ₁ (260 s: the flow is stiff there, curvature ∝ 1/gap)."""
    m = TIE_MODELS["cross_avoided"]()
    r = sharpness_reduction_flow(m, m.minimizer(0), 1.0, n_out=101)
    assert not r.events and len(r.near_ties) == 1
    s_nt, gap = r.near_ties[0]
    i = np.argmin(np.abs(r.s - s_nt))
    assert abs(gap - 2 * 2e-4 / r.lam1[i]) < 1e-9


def test_the_audit_tells_a_crossing_from_an_avoided_crossing():
    """cluster_audit to first order: on cross_halt the branches are uncoupled (a true crossing, min gap 0) and the
    crossing is predicted at s ≈ 0.50 (0.600 exactly: the rates change along the path); on cross_avoided (κ = 2e-4)
    the avoided crossing's gap is predicted within a factor 1.5 of 2κ/λ₁ there (2.96e-4)."""
    a = theory.cluster_audit(cross_halt(), cross_halt().minimizer(0), k=2)
    assert a.min_gap[1] < 1e-12 and 0.4 < a.crossing_s[1] < 0.6
    m = TIE_MODELS["cross_avoided"]()
    b = theory.cluster_audit(m, m.minimizer(0), k=2)
    assert 2.96e-4 / 1.5 < b.min_gap[1] < 2.96e-4 * 1.5, b.min_gap


@pytest.mark.parametrize("ladder, holds", [((1e-3, 3e-4, 1e-4), True), ((0.4, 0.3), False)])
def test_a_gap_on_the_matrix_free_flow_names_the_cluster_theorys_time_scales(monkeypatch, ladder, holds):
    """cross_halt treated matrix-free (the simple flow, as on the networks): its gap closes at the crossing,
    s = 0.6004, and the verdict says whether the cluster flow's separation of time scales holds on the ladder:
    Δτ = s(4 + G)/8 against the breathing period 2π√(ηλ/8) (independently: 2π·√(0.3/8) = 1.217 > Δτ ≈ 0.8 > 2π·√(1e-3/8) = 0.070)."""
    import sys

    monkeypatch.setattr(sys.modules["srflow.theory.sharpness"], "DENSE_MAX_DIM", 0)
    session = Session(cross_halt(), VerifyConfig(lr=0.1, ladder=ladder, tau_end=1.0, records=5, extend_steps=0), 0)
    with pytest.raises(theory.AssumptionViolated) as info:
        session.flow(0.9)
    exc = info.value
    assert exc.kind == "gap" and 0.5 < exc.s <= 0.6004, str(exc)   # the monitor fires just before the crossing
    G = session.model_info()["G_theta0"]
    assert f"Δτ = {exc.s * (4 + G) / 8:.3g}" in str(exc)
    assert ("the separation holds for ηλ ≤" in str(exc)) == holds, str(exc)
    assert ("the separation of time scales fails on every rung" in str(exc)) == (not holds), str(exc)
    res = checks.CHECKS["flow-tracking"](session)
    assert res.status == "assumption-violated" and "cluster flow (docs/theory.md §4c)" in res.message


def test_eos_stability_beyond_the_dense_spectrum_is_the_gap_verdict_or_no_power(monkeypatch):
    """Above theory.STABILITY_MAX_DIM κ is not computed (it needs the Hessian's spectrum): eos-stability gives the
    flow's own verdict where the gap closes within its shortest horizon (cross_halt treated matrix-free: the crossing
    at s = 0.6004 < 2τ_min), and `inconclusive` with the reason where it does not (sphere_circle) -- never an error
    (bn_mlp gave "ValueError: a dense Hessian needs D ≤ 2048" before)."""
    import sys

    from srflow.verification.checks.eos_stability import check_eos_stability

    stability = sys.modules["srflow.theory.stability"]
    monkeypatch.setattr(stability, "STABILITY_MAX_DIM", 2)
    monkeypatch.setattr(theory, "STABILITY_MAX_DIM", 2)
    monkeypatch.setattr(stability, "eos_stability", lambda *a, **k: pytest.fail("κ computed above the limit"))
    monkeypatch.setattr(sys.modules["srflow.theory.sharpness"], "DENSE_MAX_DIM", 0)
    config = VerifyConfig(lr=0.1, ladder=(1e-3, 3e-4, 1e-4), tau_end=1.0, records=5, extend_steps=0)
    res = check_eos_stability(Session(cross_halt(), config, 0))
    assert res.status == "assumption-violated" and "spectral gap" in res.message, res.message
    monkeypatch.setattr(sys.modules["srflow.theory.sharpness"], "DENSE_MAX_DIM", 400)
    res = check_eos_stability(Session(make_model("sphere_circle"), config, 0))
    assert res.status == "inconclusive" and "needs the whole spectrum" in res.message
    assert "D ≤ 2 (this model has D = 3)" in res.message, res.message


def test_time_scale_separation_is_the_breathing_period_against_the_crossing_interval():
    dtau, tau_b, x_max = theory.time_scale_separation(0.0011, 46.7, [1e-3, 1e-5])
    assert dtau == pytest.approx(0.0011 * 50.7 / 8)
    assert tau_b == pytest.approx([2 * np.pi * np.sqrt(1e-3 / 8), 2 * np.pi * np.sqrt(1e-5 / 8)])
    assert 2 * np.pi * np.sqrt(x_max / 8) == pytest.approx(dtau)      # at ηλ_max the two times agree
    with pytest.raises(ValueError, match="s_gap"):
        theory.time_scale_separation(0.0, 1.0, 1e-3)



def test_a_double_branch_below_a_simple_top_does_not_stop_the_flow():
    """`jax:mf` from the start `srflow verify --deep` drew (seed 0, tests/data/theta0-jax-mf-deep.npy): top
    eigenvalues 0.5662, 0.4869, 0.4869 -- a double eigenvalue below a simple top, by the model's symmetry. The join
    event follows the branch below as one eigenspace; before, it picked a vector of the pair's arbitrary basis,
    fired at s = 0 ("the cluster flow cannot continue from s = 0") and made every flow check assumption-violated."""
    from pathlib import Path

    pytest.importorskip("jax")
    from srflow.verification.verify import build_model

    m = build_model("jax:mf", 0)
    theta0 = np.load(Path(__file__).parent / "data" / "theta0-jax-mf-deep.npy")
    vals = np.linalg.eigvalsh(m.hess(theta0))[::-1]
    assert abs(vals[1] - vals[2]) < 1e-9 * vals[0] and vals[0] - vals[1] > 0.1 * vals[0]
    r = sharpness_reduction_flow(m, theta0, 0.9, n_out=50)   # the horizon of the failing run
    assert r.s[-1] == pytest.approx(0.9) and not r.events


def test_branches_crossing_below_a_simple_top_do_not_stop_the_flow():
    """`mf` from tests/data/theta0-mf-crossing-below.npy (a point of Γ a session drew before one θ₀ per seed): λ₁ = 0.536 stays simple, while below it the simple
    λ₂ (0.3508 at s = 0) falls through the double λ₃ = λ₄ (0.3473, by the model's symmetry) near s = 0.95. Followed
    as "the branch just below the top", the join event lost that branch at the crossing, jumped, and the flow
    stopped ("an event fires where the segment starts": eos-stability on this start was assumption-violated); the
    gap is now the top's eigenvalue minus the highest of the others, which such a crossing does not change."""
    from pathlib import Path

    m = make_model("mf")
    theta0 = np.load(Path(__file__).parent / "data" / "theta0-mf-crossing-below.npy")
    before = np.linalg.eigvalsh(m.hess(theta0))[::-1][:4]
    assert before[1] - before[2] > 1e-3 and abs(before[2] - before[3]) < 1e-9          # simple λ₂ above the pair
    r = sharpness_reduction_flow(m, theta0, 1.0, n_out=11)
    after = np.linalg.eigvalsh(m.hess(r.theta[-1]))[::-1][:4]
    assert abs(after[1] - after[2]) < 1e-9 and after[2] - after[3] > 1e-3              # the pair above the simple
    assert r.s[-1] == pytest.approx(1.0) and not r.events and after[0] - after[1] > 0.2  # λ₁ simple throughout


def test_a_terminal_event_on_a_step_boundary_ends_the_segment_there():
    """A terminal event whose root brentq puts on the end of the previous solver step (zoo model
    bnc-np-nomin-n6-obs0.71-r3-t2-s579362555: a join at s = 1.4154) made solve_ivp with t_eval raise "`ts` must be
    strictly increasing", reported as a tie the flow cannot pass. ``integrate_segment`` stops at the root, with the
    grid points before it read from the dense output."""
    from scipy.integrate import solve_ivp

    from srflow.theory.cluster_flow import integrate_segment

    def f(s, x):
        return -x * (1 + s)

    grid = np.linspace(0.0, 2.0, 11)
    ref = solve_ivp(f, (0.0, 2.0), [1.0], t_eval=grid, dense_output=True, rtol=1e-9, atol=1e-12, method="DOP853")
    steps = ref.sol.ts
    for boundary in steps[1:-1]:
        c = np.nextafter(boundary, np.inf)  # > 0 at the step's end: the event is found in the next step, at its start

        def event(s, x, c=c):
            return c - s
        event.terminal, event.direction = True, -1
        with pytest.raises(ValueError, match="strictly increasing"):  # the scipy behaviour this guards against
            solve_ivp(f, (0.0, 2.0), [1.0], t_eval=grid, dense_output=True, rtol=1e-9, atol=1e-12, method="DOP853",
                      events=[event])
        sol = integrate_segment(f, 0.0, 2.0, np.array([1.0]), grid, 1e-9, 1e-12, [event])
        assert sol.status == 1 and abs(sol.sol.ts[-1] - boundary) <= 4 * np.spacing(boundary)
        assert np.array_equal(sol.t, np.concatenate([grid[grid <= sol.sol.ts[-1]]]))
        # the steps before the event are those without it: the same samples, to the last digit
        assert np.array_equal(sol.y, ref.y[:, :len(sol.t)])
        assert np.array_equal(sol.sol(boundary), ref.sol(boundary))
    # an event at the start: a piece of zero length whose one sample is the start
    def at_start(s, x):
        return 0.5 - s
    at_start.terminal, at_start.direction = True, -1
    sol = integrate_segment(f, 0.5, 2.0, np.array([0.3]), grid, 1e-9, 1e-12, [at_start])
    assert sol.status == 1 and np.array_equal(sol.t, [0.5]) and np.array_equal(sol.y, [[0.3]])
    assert np.array_equal(sol.sol.ts, [0.5, 0.5])


@pytest.mark.slow
def test_an_rk_stage_off_gamma_is_retracted_until_the_rank_condition_is_the_theorys():
    """Zoo model wn-jax-min-c0.72-l2-n5-w2-s936610763: after a join and a leave at s = 0.3817 a trial stage of the
    solver landed 0.055 off the last point (loss 6.7e-8); one Newton step left a tangent eigenvalue at 2e-6·λ₁ and the
    flow stopped with "rank condition fails ... dimension 0" (eos-stability assumption-violated). Retracted fully, the
    flow runs on, on Γ: every sample has a kernel of dimension dim Γ + 1 (radial)."""
    from srflow.toy_models.zoo import zoo_model

    name = "wn-jax-min-c0.72-l2-n5-w2-s936610763"
    m = zoo_model(name)
    theta0 = Session(m, VerifyConfig(ladder=(1e-3, 1e-4)), 0, spec=f"zoo:{name}").theta0
    f = sharpness_reduction_flow(m, theta0, 0.42, n_out=8)
    assert f.s[-1] == 0.42 and any(e["kind"] == "join" and 0.38 < e["s"] < 0.383 for e in f.events)
    assert f.drift < 1e-8
    for th in f.theta:
        vals = np.linalg.eigvalsh(m.hess(th))
        assert int(np.sum(np.abs(vals) <= 1e-6 * vals[-1])) == m.manifold_dim + 1


def test_the_field_off_gamma_is_the_field_at_the_full_retraction_where_one_newton_step_fails_the_rank_condition():
    """The fast equivalent of the test above: points of that model's sphere 0.02-0.08 off θ₀ (a solver stage's
    distance there), where one Newton step leaves the rank condition failing; the field there is the field at the
    POLISH_ITERS-step retraction, on Γ."""
    from srflow.theory import cluster_flow as cf
    from srflow.theory.manifold import newton_polish, tangent_space
    from srflow.toy_models.zoo import zoo_model

    name = "wn-jax-min-c0.72-l2-n5-w2-s936610763"
    m = zoo_model(name)
    theta0 = Session(m, VerifyConfig(ladder=(1e-3, 1e-4)), 0, spec=f"zoo:{name}").theta0
    rng = np.random.default_rng(0)
    tried = 0
    for _ in range(24):
        d = rng.standard_normal(m.dim)
        x = theta0 + rng.uniform(0.02, 0.08) * d / np.linalg.norm(d)
        x /= np.linalg.norm(x)
        try:
            tangent_space(m, newton_polish(m, x, iters=1))
            continue
        except AssumptionViolated:
            pass
        full = newton_polish(m, x, iters=cf.POLISH_ITERS)
        try:
            tangent_space(m, full)
        except AssumptionViolated:  # not retracted within POLISH_ITERS steps: the field says so
            with pytest.raises(AssumptionViolated, match="rank condition"):
                cf._field(m, 0.0, x, -0.25, 1)
            continue
        ref = -0.25 * theory.manifold_point(m, full, on_gap="ignore").grad_log
        assert np.array_equal(cf._field(m, 0.0, x, -0.25, 1), ref)
        assert m.loss(full) < 1e-6 * m.loss(x)
        tried += 1
    assert tried >= 3
