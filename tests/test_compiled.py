"""The compiled simulator equals the numpy reference loop, run by run and record by record."""

import functools

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from srflow.toy_models import TOY_MODELS, from_jax, make_model  # noqa: E402
from srflow.toy_models.jax_losses import make_jax_model  # noqa: E402
from srflow.verification.compiled import lanczos_top, simulate_batch, simulate_compiled  # noqa: E402
from srflow.verification.simulate import ALGORITHMS, eos_start, simulate, two_cycle_start  # noqa: E402
from srflow.verification.tolerances import EXACT_VS_EXACT_RTOL  # noqa: E402

FIELDS = ("steps", "loss", "norm_sq", "lam1", "lam1_mid", "lam1_next", "grad_norm", "clock", "clock_steps")


@functools.cache
def twins(name):
    return make_model(name, rng=3), make_jax_model(name, rng=3)


def assert_same_run(a, b, fields=FIELDS):
    """Every record of b equals a's in units of EXACT_VS_EXACT_RTOL × the largest |value| of that record
    along a (two exact implementations and the same update: round-off only)."""
    assert a.diverged == "" and b.diverged == "" and a.monitor == b.monitor
    for f in fields:
        x, y = np.asarray(getattr(a, f), float), np.asarray(getattr(b, f), float)
        assert x.shape == y.shape, f
        assert np.array_equal(np.isnan(x), np.isnan(y)), f
        if np.all(np.isnan(x)):  # pairs=False: not recorded by either
            continue
        scale = EXACT_VS_EXACT_RTOL * max(np.nanmax(np.abs(x)), 1e-300)
        worst = float(np.nanmax(np.abs(x - y), initial=0.0)) / scale
        assert worst <= 1.0, f"{f}: scaled difference {worst:.3g}"


def gdwd_start(model, lr=0.1, wd=0.01):
    return eos_start(model, model.minimizer(np.random.default_rng(0)), lr, wd)


@pytest.mark.parametrize("name", ["mf", "bn_linear", "sphere_circle"])
def test_compiled_gdwd_equals_the_numpy_loop(name):
    """GD+WD at the edge of stability, 400 steps, records every 50 (λ₁ at w_t, the midpoint and w_{t+1}):
    the compiled run on the JAX twin equals the numpy run on the closed-form model."""
    ref, jm = twins(name)
    w0 = gdwd_start(ref)
    a = simulate(ref, w0, 0.1, 400, wd=0.01, every=50)
    b = simulate(jm, w0, 0.1, 400, wd=0.01, every=50)
    assert_same_run(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TOY_MODELS if n not in ("mf", "bn_linear", "sphere_circle")])
def test_compiled_gdwd_equals_the_numpy_loop_on_every_model(name):
    ref, jm = twins(name)
    w0 = gdwd_start(ref)
    assert_same_run(simulate(ref, w0, 0.1, 400, wd=0.01, every=50), simulate(jm, w0, 0.1, 400, wd=0.01, every=50))


def test_phi_records_agree():
    """With track_phi, Φ(w̄_t) and ‖w̄_t - Φ‖² of the compiled run (Φ on the device) equal the numpy run's to
    DEVICE_PHI_ATOL = 1e-9, and λ₁(Φ) equals it up to what the two Φs' difference moves it: |Δλ₁| ≤ ‖∇λ₁‖·‖ΔΦ‖
    (∇λ₁ = ∇³L[v₁, v₁], first order in ‖ΔΦ‖ ≤ 1e-9; a tenth more for the second) + EXACT_VS_EXACT_RTOL·λ₁."""
    from srflow.verification.device_phi import DEVICE_PHI_ATOL

    ref, jm = twins("mf")
    w0 = gdwd_start(ref)
    a = simulate(ref, w0, 0.1, 200, wd=0.01, every=100, track_phi=True, pairs=False)
    b = simulate(jm, w0, 0.1, 200, wd=0.01, every=100, track_phi=True, pairs=False)
    assert_same_run(a, b, FIELDS)
    assert np.max(np.abs(a.phi - b.phi)) <= DEVICE_PHI_ATOL
    assert np.max(np.abs(a.offset_sq - b.offset_sq)) <= DEVICE_PHI_ATOL
    for theta, other, lam1, lam1_b in zip(a.phi, b.phi, a.phi_lam1, b.phi_lam1):
        v1 = np.linalg.eigh(ref.hess(theta))[1][:, -1]
        slope = np.linalg.norm(ref.third(theta, v1, v1))
        bound = 1.1 * slope * np.linalg.norm(theta - other) + EXACT_VS_EXACT_RTOL * lam1
        assert abs(lam1 - lam1_b) <= bound, (lam1 - lam1_b, bound)


@pytest.mark.parametrize("algorithm", ["ngd-sphere", "sqrt", "gd"])
def test_compiled_alp_algorithms_equal_the_numpy_loop(algorithm):
    ref, jm = twins("sphere_circle")
    w0 = two_cycle_start(ref, np.array([np.cos(0.5), np.sin(0.5), 0.0]), 0.05, "ngd-sphere")
    a = simulate(ref, w0, 0.05, 200, algorithm=algorithm, every=40)
    b = simulate(jm, w0, 0.05, 200, algorithm=algorithm, every=40)
    assert_same_run(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", [a for a in ALGORITHMS if a not in ("ngd-sphere", "sqrt", "gd")])
def test_every_compiled_algorithm_equals_the_numpy_loop(algorithm):
    """240 steps: beyond ≈ 280 GD on √L on the sphere reaches L ≈ 0, where √L is not smooth and round-off is
    amplified (the numpy loop itself moves by 1e-3 of max L under a 1e-15 change of w₀ there)."""
    ref, jm = twins("mf")
    w0 = two_cycle_start(ref, ref.minimizer(np.random.default_rng(1)), 0.02, "ngd-sphere")
    kw = {"wd": 0.01} if algorithm == "gdwd" else {}
    assert_same_run(simulate(ref, w0, 0.02, 240, algorithm=algorithm, every=30, **kw),
                    simulate(jm, w0, 0.02, 240, algorithm=algorithm, every=30, **kw))


def test_steps_not_a_multiple_of_every_and_every_one():
    """Records at 0, every, 2·every, ... and at the last step, as in the numpy loop."""
    ref, jm = twins("sphere_circle")
    w0 = gdwd_start(ref)
    for steps, every in ((23, 10), (5, 1)):
        a = simulate(ref, w0, 0.1, steps, wd=0.01, every=every)
        b = simulate(jm, w0, 0.1, steps, wd=0.01, every=every)
        assert list(b.steps) == list(a.steps)
        assert_same_run(a, b)


def test_batch_equals_single_runs():
    """vmap over runs: three runs with different starts and (η, λ) advanced as one array equal the single
    compiled runs."""
    ref, jm = twins("mf")
    lrs, wds = np.array([0.1, 0.05, 0.1]), np.array([0.01, 0.02, 0.003])
    w0s = np.stack([gdwd_start(ref, lr, wd) for lr, wd in zip(lrs, wds)])
    batch = simulate_batch(jm, w0s, lrs, 300, wd=wds, every=60)
    for i, b in enumerate(batch):
        a = simulate_compiled(jm, w0s[i], lrs[i], 300, wd=wds[i], every=60)
        assert (b.lr, b.wd) == (a.lr, a.wd)
        assert_same_run(a, b)


def test_a_batch_of_few_or_many_records_equals_the_numpy_loop_run_by_run():
    """The chunk loops over its used record slots only: a batch with two records per run (2 of 512 slots) and one
    with 516 (two chunks: 512 slots and 4), with the per-step clock, equals the numpy loop run by run (records,
    clock at every step, the last iterate) and the single compiled runs."""
    ref, jm = twins("sphere_circle")
    lrs, wds = np.array([0.1, 0.05]), np.array([0.01, 0.04])
    w0s = np.stack([gdwd_start(ref, lr, wd) for lr, wd in zip(lrs, wds)])
    for steps, every in ((150, 150), (1029, 2)):
        batch = simulate_batch(jm, w0s, lrs, steps, wd=wds, every=every, pairs=False, dense_clock=True)
        for i, b in enumerate(batch):
            a = simulate(ref, w0s[i], lrs[i], steps, wd=wds[i], every=every, pairs=False)
            single = simulate_compiled(jm, w0s[i], lrs[i], steps, wd=wds[i], every=every, pairs=False,
                                       dense_clock=True)
            assert len(b.steps) == (2 if every == steps else 516) and len(b.clock_steps) == steps + 1
            assert_same_run(a, b)
            assert_same_run(single, b)
            assert np.max(np.abs(b.w_last - a.w_last)) <= EXACT_VS_EXACT_RTOL * np.max(np.abs(a.w_last))


def _nan_below(w):
    """A circle-type loss that turns NaN once ‖w‖² < 0.9 (a run that must be reported as diverged)."""
    x = w / jnp.linalg.norm(w)
    value = 0.5 * (1 + 8 * x[0] ** 2) * x[2] ** 2
    return value + 0.0 * jnp.sqrt(w @ w - 0.9)  # NaN in L and ∇L below 0.9


def test_divergence_is_reported_at_the_step_of_the_numpy_loop():
    """The same JAX model run by the numpy loop (engine='numpy') and compiled: the same diverged step, and
    the same records before it."""
    model = from_jax(_nan_below, 3, name="nan_below")
    w0 = np.array([1.0, 0.2, 0.1])
    a = simulate(model, w0, 0.1, 100, wd=0.01, every=1, engine="numpy", pairs=False)
    b = simulate(model, w0, 0.1, 100, wd=0.01, every=1, pairs=False)
    assert a.diverged and b.diverged
    step = lambda msg: int(msg.split("diverged at step ")[1].split(":")[0])  # noqa: E731
    assert step(a.diverged) == step(b.diverged)
    assert list(a.steps) == list(b.steps) and np.allclose(a.norm_sq, b.norm_sq, rtol=1e-13, atol=0)



def test_a_run_that_diverges_between_records_of_a_batch_is_reported_at_the_numpy_loops_step():
    """A failure inside a slot's step loop (stride 7, so between records) is settled after the loop: in a batch of
    two runs that fail at different steps, each reports the numpy loop's step and keeps its records before it, as its
    single compiled run does (the failure of one run does not touch the other)."""
    model = from_jax(_nan_below, 3, name="nan_below")
    w0s = np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.05]])
    batch = simulate_batch(model, w0s, 0.1, 100, wd=0.01, every=7, pairs=False)
    step = lambda msg: int(msg.split("diverged at step ")[1].split(":")[0])  # noqa: E731
    steps = []
    for w0, b in zip(w0s, batch):
        ref = simulate(model, w0, 0.1, 100, wd=0.01, every=7, engine="numpy", pairs=False)
        single = simulate_compiled(model, w0, 0.1, 100, wd=0.01, every=7, pairs=False)
        assert ref.diverged and b.diverged and step(ref.diverged) == step(b.diverged) == step(single.diverged)
        assert step(ref.diverged) % 7 != 0  # between two records
        assert list(ref.steps) == list(b.steps) and np.allclose(ref.norm_sq, b.norm_sq, rtol=1e-13, atol=0)
        assert np.array_equal(b.norm_sq, single.norm_sq) and np.allclose(b.lam1, single.lam1, rtol=1e-12)
        steps.append(step(b.diverged))
    assert steps[0] != steps[1]


def test_a_diverged_run_keeps_its_per_step_clock_up_to_the_failure_as_the_numpy_loop_does():
    """eos-stability measures a breathing that grew until the run diverged up to the divergence: the compiled run
    keeps the per-step clock before the failed step (it was None), equal to the numpy loop's."""
    model = from_jax(_nan_below, 3, name="nan_below")
    w0 = np.array([1.0, 0.2, 0.1])
    a = simulate(model, w0, 0.1, 100, wd=0.01, every=7, engine="numpy", pairs=False)
    b = simulate(model, w0, 0.1, 100, wd=0.01, every=7, pairs=False)
    assert a.diverged and b.diverged and b.clock_steps is not None
    assert len(b.clock_steps) == len(a.clock_steps)
    assert np.allclose(b.clock_steps, a.clock_steps, rtol=1e-12, atol=0)

@pytest.mark.parametrize("spectrum, k", [((-5.0, 1.0, 2.0), 3), ((-9.0, -1.0, 0.5, 3.0, 3.5, 4.0) * 4, 5),
                                         ((-3.0, -2.0, -1.0), 8)])
def test_lanczos_finds_the_largest_algebraic_eigenvalue(spectrum, k):
    """Restarted Lanczos returns λ_max (largest algebraic, not largest |λ|), also when k > D (invariant Krylov
    space) or all eigenvalues are negative; its residual is below the stopping tolerance."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((len(spectrum), len(spectrum))))
    a = jnp.asarray(q @ np.diag(spectrum) @ q.T)
    theta, y, res = jax.jit(lambda v: lanczos_top(lambda u: a @ u, v, k))(jnp.asarray(rng.standard_normal(len(spectrum))))
    assert float(theta) == pytest.approx(max(spectrum), rel=1e-12)
    assert float(res) <= 1e-9 * abs(max(spectrum))


def _exact_clock_step(x, nx):
    """‖nx/‖nx‖ - x/‖x‖‖² of the float64 vectors x, nx in 60-digit arithmetic."""
    import mpmath
    with mpmath.workdps(60):
        xs, ys = [mpmath.mpf(float(v)) for v in x], [mpmath.mpf(float(v)) for v in nx]
        rx, ry = mpmath.sqrt(mpmath.fsum(v * v for v in xs)), mpmath.sqrt(mpmath.fsum(v * v for v in ys))
        return float(mpmath.fsum((b / ry - a / rx) ** 2 for a, b in zip(xs, ys)))


@pytest.mark.parametrize("dim", [16, 500])
def test_the_clock_step_by_its_identity_equals_the_exact_step(dim):
    """The compiled loop's clock step (``compiled._clock_of``: ``clock_step``'s identity from ‖w_k‖², ‖δ‖² and w_k·δ)
    equals ‖w̄_{k+1} - w̄_k‖² of the stored iterates, computed in 60 digits, within its stated error
    8·1e-16·(D + (‖δ‖ + ηλr)/‖τ‖ + ‖δ‖²/‖τ‖²) relative (τ: δ's part ⊥ w_k), on GD+WD steps (δ ⊥ w_k: the
    scale-invariant case) and on steps with a radial part (w_k·δ ≠ 0, an L that is not scale-invariant), of sizes
    ‖δ‖/r = 1e-1 … 1e-7 and past 90°. The direct formula's error grows as 1e-16·r/‖δ‖ (above the bound at 1e-7), and
    the identity without its radial terms (‖τ‖² = ‖δ‖², ρ = ar: right only for w_k·δ = 0) fails on the radial steps."""
    from srflow.verification.compiled import _clock_of, clock_step
    u = np.finfo(float).eps / 2
    rng = np.random.default_rng(dim)
    lr, wd = 0.1, 0.01
    worst, direct_worst, radial_miss = 0.0, 0.0, []
    for size in (1e-1, 1e-3, 1e-5, 1e-7, 3.0):
        for radial in (0.0, 0.5, -2.0):
            x = 3.0 * rng.standard_normal(dim)
            r = np.linalg.norm(x)
            tang = rng.standard_normal(dim)
            tang -= (tang @ x) / (x @ x) * x
            g = size * r / lr * (tang / np.linalg.norm(tang) + radial * x / r)
            nx = (1.0 - lr * wd) * x - lr * g  # the update of GD+WD (``compiled._update``)
            exact = _exact_clock_step(x, nx)
            nn, dd = (float(v) for v in _clock_of(jnp.asarray(x), jnp.asarray(nx), lr, wd))
            delta = (1.0 - lr * wd) * x - nx
            tau = np.linalg.norm(delta - (delta @ x) / (x @ x) * x)
            norm = np.linalg.norm(delta)
            bound = 8 * u * (dim + (norm + lr * wd * r) / tau + norm ** 2 / tau ** 2)
            err = abs(dd - exact) / exact
            assert err <= bound, (size, radial, err, bound)
            assert abs(nn - nx @ nx) <= 8 * u * dim * (nx @ nx)
            worst = max(worst, err / bound)
            d = nx / np.linalg.norm(nx) - x / r
            if size == 1e-7:
                direct_worst = max(direct_worst, abs(d @ d - exact) / exact / bound)
            if radial != 0.0 and size < 1:  # the identity for a scale-invariant L only: ε taken as 0
                a = 1.0 - lr * wd
                qq = float(delta @ delta)
                wrong = float(clock_step(a, r * r, qq, 0.0)[1])
                radial_miss.append(abs(wrong - exact) / exact / bound)
    assert worst <= 1.0 and direct_worst > 1.0, (worst, direct_worst)
    assert min(radial_miss) > 1e3, radial_miss


def test_bad_input_names_the_argument():
    ref, jm = twins("sphere_circle")
    with pytest.raises(TypeError, match="model: the compiled path needs a JAX model"):
        simulate(ref, np.ones(3), 0.1, 5, wd=0.01, engine="jax")
    with pytest.raises(ValueError, match="engine"):
        simulate(ref, np.ones(3), 0.1, 5, engine="fast")
    with pytest.raises(ValueError, match="lr: expected a number or 2 values"):
        simulate_batch(jm, np.ones((2, 3)), [0.1, 0.1, 0.1], 5)
    with pytest.raises(ValueError, match="every: expected a positive integer"):
        simulate_batch(jm, np.ones((2, 3)), 0.1, 5, every=0)
    with pytest.raises(ValueError, match=r"w0s\[0\]: expected shape"):
        simulate_batch(jm, np.ones((2, 4)), 0.1, 5)


def test_kept_iterates_are_the_numpy_loops_iterates():
    """``keep_iterates``: w_t at each record of a batched run is the numpy loop's w_t (its last one, ``w_last``,
    and every record's ‖w_t‖²), for each run of the batch; without the flag nothing is kept. ``w_last`` is the
    final iterate, as in the numpy loop."""
    ref, jm = twins("mf")
    w0 = gdwd_start(ref)
    lrs = np.array([0.1, 0.05])
    runs = simulate_batch(jm, np.stack([w0, 2 * w0]), lrs, 60, wd=0.01 / lrs, every=20, pairs=False,
                          keep_iterates=True)
    for run, lr, start in zip(runs, lrs, (w0, 2 * w0)):
        a = simulate(ref, start, float(lr), 60, wd=0.01 / float(lr), every=20, pairs=False)
        assert run.iterates.shape == (4, ref.dim)
        np.testing.assert_array_equal(run.iterates[0], start)
        scale = EXACT_VS_EXACT_RTOL * np.max(np.abs(a.w_last))
        assert np.max(np.abs(run.iterates[-1] - a.w_last)) <= scale
        np.testing.assert_allclose(np.sum(run.iterates**2, axis=1), a.norm_sq, rtol=EXACT_VS_EXACT_RTOL)
        np.testing.assert_array_equal(run.w_last, run.iterates[-1])
    assert simulate_batch(jm, w0[None], 0.1, 20, wd=0.1, every=10, pairs=False)[0].iterates is None


# -- λ₁ by warm-started Lanczos (verification.compiled.warm_top / lanczos_adaptive) -------------------------------

def _tracker(k, extrapolate=True):
    """warm_top on an explicit symmetric matrix as the compiled chunk runs it (the history of the last two
    vectors, ``next_history``), compiled once per (k, guard, extrapolate)."""
    from srflow.verification.compiled import guard_directions, next_history, warm_top

    @functools.partial(jax.jit, static_argnums=4)
    def track(a, hist, m, t, guard):
        xi = guard_directions(t, a.shape[0])[0]
        theta, y, m1, hvps = warm_top(lambda u: a @ u, hist[0], m, xi, k, probe=t % 4 == 0,
                                      guard_eps=None if guard else 0.0, v_prev=hist[1] if extrapolate else None)
        return theta, next_history(y, hist[0], hvps, k), m1, hvps
    return track


def _run_tracker(mats, guard=True, k=12, extrapolate=True):
    """The records of warm_top along a path of matrices: θ_t and the HVPs each took, from a fixed cold start."""
    track = _tracker(min(k, mats[0].shape[0]), extrapolate)
    v = np.random.default_rng(5).standard_normal(mats[0].shape[0])
    hist, m = jnp.asarray(np.stack([v, v]) / np.linalg.norm(v)), jnp.int32(1)
    out = []
    for t, a in enumerate(mats):
        theta, hist, m, hvps = track(jnp.asarray(a), hist, m, t, guard)
        out.append((float(theta), int(hvps)))
    return np.array(out)


def _rotating_path(dim, records, seed, speed=0.01):
    """A(t) = Q(t) diag(λ(t)) Q(t)ᵀ, Q(t) = exp(tS)Q₀ rotating slowly, λ(t) drifting, with negative eigenvalues of
    larger magnitude than λ₁ (so the largest algebraic eigenvalue is not the largest |λ|), gap ≈ 0.3λ₁."""
    from scipy.linalg import expm

    rng = np.random.default_rng(seed)
    q0, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    s = rng.standard_normal((dim, dim))
    s = speed * (s - s.T)
    spectrum = np.concatenate([[1.0, 0.7], rng.uniform(-0.3, 0.5, dim - 3), [-2.0]])
    drift = rng.uniform(-0.02, 0.02, dim)
    mats = []
    for t in range(records):
        q = expm(t * s) @ q0
        mats.append(q @ np.diag(spectrum + drift * t) @ q.T)
    return mats


@pytest.mark.parametrize("dim", [16, 80])
@pytest.mark.parametrize("extrapolate", [True, False])
def test_warm_records_equal_dense_eigvalsh(dim, extrapolate):
    """Along a slowly rotating path with a negative eigenvalue larger in magnitude than λ₁, every warm-started
    record (from the extrapolated vector 2v - v_prev, and from v alone) equals the largest algebraic eigenvalue of
    the dense eigvalsh within LAM_RTOL (the residual stop WARM_RTOL bounds |θ - λ₁| ≤ ‖r‖²/gap), and the warm
    records take fewer HVPs than the cold first one."""
    from srflow.verification.compiled import LAM_RTOL

    mats = _rotating_path(dim, 25, seed=dim)
    rec = _run_tracker(mats, extrapolate=extrapolate)
    exact = np.array([np.linalg.eigvalsh(a)[-1] for a in mats])
    scaled = np.abs(rec[:, 0] - exact) / (LAM_RTOL * np.abs(exact))
    assert np.all(np.isfinite(rec[:, 0])) and scaled.max() <= 1.0, f"scaled errors {scaled.max():.3g}"
    assert np.mean(rec[1:, 1]) < rec[0, 1], rec[:, 1]


def test_extrapolated_starts_take_fewer_hvps():
    """On a slowly rotating path (one record turns the eigenvectors by ≈ 0.006) the extrapolated start 2v - v_prev
    is O(Δ²) from the new eigenvector where v is O(Δ): after the first records its Lanczos stops earlier than from
    v alone (the point of ``warm_start``), and both records equal the dense eigvalsh within LAM_RTOL."""
    from srflow.verification.compiled import LAM_RTOL

    mats = _rotating_path(16, 40, seed=16, speed=1e-3)
    exact = np.array([np.linalg.eigvalsh(a)[-1] for a in mats])
    new, old = _run_tracker(mats), _run_tracker(mats, extrapolate=False)
    for rec in (new, old):
        assert np.all(np.abs(rec[:, 0] - exact) <= LAM_RTOL * exact), rec[:, 0] - exact
    assert new[10:, 1].mean() < old[10:, 1].mean() - 0.5, (new[:, 1], old[:, 1])


def test_no_extrapolation_after_a_restart_or_a_branch_change():
    """``next_history`` keeps v as the vector to extrapolate from only when y continues it (one cycle, y·v ≥ 1/2);
    after a restart or a branch change the history is (y, y), so ``warm_start`` starts from y itself."""
    from srflow.verification.compiled import next_history, warm_start

    y, v = jnp.array([1.0, 0.0, 0.0]), jnp.array([0.8, 0.6, 0.0])
    np.testing.assert_array_equal(next_history(y, v, 4, 12), np.stack([y, v]))
    for hvps, other in ((13, v), (4, jnp.array([0.0, 1.0, 0.0]))):
        hist = next_history(y, other, hvps, 12)
        np.testing.assert_array_equal(hist, np.stack([y, y]))
        np.testing.assert_array_equal(warm_start(*hist), y)
    np.testing.assert_allclose(warm_start(y, v), 2 * y - v)


def test_compiled_records_equal_the_numpy_loop_on_a_zoo_model():
    """A registered model outside the defaults, λ₁ records every 7 steps (odd: the phases of w_t and w_{t+1}
    swap between records) and every 10, with the midpoint and w_{t+1}: the extrapolated records equal the numpy
    loop's dense eigvalsh to EXACT_VS_EXACT_RTOL (= LAM_RTOL)."""
    from srflow.verification.compiled import LAM_RTOL

    assert LAM_RTOL <= EXACT_VS_EXACT_RTOL
    ref, jm = twins("deep_linear_wn")
    w0 = gdwd_start(ref)
    for every in (7, 10):
        assert_same_run(simulate(ref, w0, 0.1, 210, wd=0.01, every=every),
                        simulate(jm, w0, 0.1, 210, wd=0.01, every=every))


def _crossing_path(dim, records):
    """Fixed eigenvectors, λ₁ = 1 and a second branch rising from 0.5 through 1 to 1.7: at t ≥ 10 the top
    eigenvalue is on the other branch, whose eigenvector the tracked one never leans towards (a true crossing)."""
    q, _ = np.linalg.qr(np.random.default_rng(9).standard_normal((dim, dim)))
    rest = np.linspace(-3.0, 0.3, dim - 2)
    return [q @ np.diag(np.concatenate([[1.0, 0.5 + 0.05 * t], rest])) @ q.T for t in range(records)], 0.5 + 0.05 * np.arange(records)


def test_warm_records_follow_the_top_eigenvalue_across_a_branch_change():
    """When another branch overtakes λ₁, the records follow the largest eigenvalue: within LAM_RTOL once the new
    branch is above the old one by more than the guard's bound WARM_RTOL·√D/GUARD_EPS (relative), and never
    further from it than that bound."""
    from srflow.verification.compiled import GUARD_EPS, LAM_RTOL, WARM_RTOL

    dim = 16
    mats, branch = _crossing_path(dim, 30)
    rec = _run_tracker(mats)
    exact = np.maximum(1.0, branch)
    bound = WARM_RTOL * np.sqrt(dim) / GUARD_EPS * exact
    err = np.abs(rec[:, 0] - exact)
    assert np.all(err <= np.maximum(bound, LAM_RTOL * exact)), err
    clear = branch - 1.0 > bound
    assert clear.sum() >= 10 and np.all(err[clear] <= LAM_RTOL * exact[clear]), err[clear]


def test_without_the_guard_a_branch_change_is_missed():
    """Companion (must fail): from a warm vector that is an exact eigenvector of the old branch, Lanczos without the
    random guard direction never leaves that branch: after the crossing its records stay at 1 while λ₁ reaches
    1.7 -- the comparison of the test above would fail."""
    mats, branch = _crossing_path(16, 30)
    for extrapolate in (True, False):
        rec = _run_tracker(mats, guard=False, extrapolate=extrapolate)
        assert np.max(np.maximum(1.0, branch) - rec[:, 0]) >= 0.6


def test_a_stale_eigenvector_triggers_the_full_lanczos():
    """A warm vector whose residual is large (the top eigenvector of a different matrix) is not accepted: Lanczos
    runs past its first cycle (a restart, more than KRYLOV_DIM HVPs) and still returns λ₁ of the dense eigvalsh;
    the stale vector's Rayleigh quotient alone would be wrong by more than 1e-3 relative (so accepting it would fail
    the comparison)."""
    from srflow.verification.compiled import KRYLOV_DIM, LAM_RTOL, lanczos_adaptive

    rng = np.random.default_rng(11)
    dim = 60
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    a = q @ np.diag(np.concatenate([[1.0, 0.98, 0.97], np.linspace(-0.5, 0.95, dim - 3)])) @ q.T
    stale = q[:, 0] + 0.5 * rng.standard_normal(dim) / np.sqrt(dim)  # the top eigenvector of an older matrix
    stale /= np.linalg.norm(stale)
    exact = np.linalg.eigvalsh(a)[-1]
    assert abs(stale @ a @ stale - exact) > 1e-3 * exact
    theta, _, res, hvps = jax.jit(lambda v: lanczos_adaptive(lambda u: jnp.asarray(a) @ u, v, KRYLOV_DIM,
                                                             first_check=KRYLOV_DIM))(jnp.asarray(stale))
    assert int(hvps) > KRYLOV_DIM
    assert abs(float(theta) - exact) <= LAM_RTOL * exact


# -- λ₁ by the tracker (verification.compiled.track_top): one HVP per record, certified by its residual ----------

def _tracked(k):
    """track_top on an explicit symmetric matrix as the compiled chunk runs it, compiled once per k."""
    from srflow.verification.compiled import track_top

    @jax.jit
    def track(a, vs, st):
        return track_top(lambda u: a @ u, vs, st, k)
    return track


def _run_tracked(mats, look=True):
    """θ_t and the HVPs of each record of track_top along a path of matrices, from ``initial_tracks``.
    ``look=False``: the second-branch vector is never looked at (its wait is set beyond the path)."""
    from srflow.verification.compiled import TRACK_FIELDS, initial_tracks

    dim = mats[0].shape[0]
    track = _tracked(min(12, dim))
    vs, st = (jnp.asarray(x[0]) for x in initial_tracks(dim, 1))
    if not look:
        st = st.at[TRACK_FIELDS.index("wait")].set(10.0 * len(mats))
    out = []
    for a in mats:
        theta, vs, st, hvps = track(jnp.asarray(a), vs, st)
        out.append((float(theta), int(hvps)))
    return np.array(out)


@pytest.mark.parametrize("dim", [16, 80])
def test_tracked_records_equal_dense_eigvalsh(dim):
    """Along a slowly rotating path (one record turns the eigenvectors by ≈ 1e-4, as on mf at the EoS) with a
    negative eigenvalue larger in magnitude than λ₁, every tracked record
    equals the largest algebraic eigenvalue of the dense eigvalsh within LAM_RTOL and is never above it (a
    Rayleigh quotient or Ritz value); after the first records most take one HVP (the Rayleigh record)."""
    from srflow.verification.compiled import LAM_RTOL

    mats = _rotating_path(dim, 40, seed=dim, speed=1e-5)
    rec = _run_tracked(mats)
    exact = np.array([np.linalg.eigvalsh(a)[-1] for a in mats])
    scaled = (exact - rec[:, 0]) / (LAM_RTOL * np.abs(exact))
    assert np.all(np.isfinite(rec[:, 0])) and scaled.max() <= 1.0, f"scaled errors {scaled.max():.3g}"
    assert scaled.min() >= -1e-3, f"a record above λ₁: {scaled.min():.3g}·LAM_RTOL"
    assert np.mean(rec[10:, 1] == 1) >= 0.6 and np.mean(rec[10:, 1]) < 2.0, rec[:, 1]


def test_tracked_records_take_a_full_lanczos_where_the_residual_says_so():
    """On the faster rotating path (a record turns the eigenvectors by ≈ 0.06) the extrapolated start's residual is
    above WARM_RTOL: records run the full Lanczos (more than one HVP) and still equal the dense eigvalsh within
    LAM_RTOL; accepting the start's Rayleigh quotient instead would be off by more than LAM_RTOL."""
    from srflow.verification.compiled import LAM_RTOL

    mats = _rotating_path(16, 25, seed=16, speed=0.01)
    rec = _run_tracked(mats)
    exact = np.array([np.linalg.eigvalsh(a)[-1] for a in mats])
    assert np.all(np.abs(rec[:, 0] - exact) <= LAM_RTOL * exact), rec[:, 0] - exact
    assert np.mean(rec[3:, 1] > 1) >= 0.5, rec[:, 1]
    # the Rayleigh quotient of the extrapolated exact eigenvectors alone (what a one-HVP record would report)
    vecs = [np.linalg.eigh(a)[1][:, -1] for a in mats]
    vecs = [v * np.sign(v @ vecs[0]) for v in vecs]
    starts = [2 * vecs[t - 1] - vecs[t - 2] for t in range(2, len(mats))]
    quotients = np.array([u @ a @ u / (u @ u) for u, a in zip(starts, mats[2:])])
    assert np.max((exact[2:] - quotients) / exact[2:]) > 10 * LAM_RTOL


def test_tracked_records_follow_the_top_eigenvalue_across_a_branch_change():
    """A true crossing (fixed eigenvectors, λ = 1 and a second branch rising by 0.05 per record from 0.5 to 1.7):
    the second-branch vector follows the rising branch, its guard looks come more often as the gap closes, and
    every record equals the largest eigenvalue of the dense eigvalsh within LAM_RTOL, before and after the
    crossing (records are never above it)."""
    from srflow.verification.compiled import LAM_RTOL

    mats, branch = _crossing_path(16, 30)
    rec = _run_tracked(mats)
    exact = np.maximum(1.0, branch)
    assert np.all(rec[:, 0] <= exact * (1 + 1e-14)), rec[:, 0] - exact
    assert np.all(exact - rec[:, 0] <= LAM_RTOL * exact), exact - rec[:, 0]
    assert (branch > 1).sum() >= 10


def test_tracked_records_without_the_second_branch_miss_the_crossing():
    """Companion (must fail): the same path with the second-branch vector never looked at: the Rayleigh records of
    the old branch's eigenvector stay at 1 after the crossing while λ₁ rises (to 1.35, seven records later, when
    the shifted power steps have grown the vector's round-off component along the new branch enough for the
    residual to call a full Lanczos), so the comparison of the test above would fail."""
    mats, branch = _crossing_path(16, 30)
    rec = _run_tracked(mats, look=False)
    assert np.max(np.maximum(1.0, branch) - rec[:, 0]) >= 0.25


def _tie_path(records=45):
    """Hessians of ``ties.cross_continue`` (a Haar-rotated basis, D = 5) at points of Γ along y₀ from 0.5 to
    -0.6: branch 1 (e^{ρy₀}) is on top until the designed tie at y₀ = 2·offset/ρ = -0.2, then branch 2
    (e^{ρy₀/2 + offset}); the branches do not couple (a true crossing)."""
    from srflow.toy_models.ties import cross_continue

    model = cross_continue(rng=3)
    rot = model.linear
    mats, top = [], []
    for y0 in np.linspace(0.5, -0.6, records):
        y = np.array([y0, 0.3, np.sqrt(1 - y0**2 - 0.09)])
        theta = rot.T @ np.concatenate([y, np.zeros(2)])
        mats.append(model.hess(theta))
        top.append(max(np.exp(3.0 * y0), np.exp(1.5 * y0 - 0.3)))
    return mats, np.array(top)


def test_tracked_records_follow_a_designed_tie():
    """On the designed crossing of ``toy_models.ties.cross_continue`` (Hessians along a path of Γ through the tie,
    D = 5) every record equals the dense eigvalsh's largest eigenvalue within LAM_RTOL, on both sides of the tie
    (the top branch changes at y₀ = -0.2, 18 records before the end); without the second-branch looks the
    records stay on branch 1 after the tie (companion)."""
    from srflow.verification.compiled import LAM_RTOL

    mats, top = _tie_path()
    exact = np.array([np.linalg.eigvalsh(a)[-1] for a in mats])
    np.testing.assert_allclose(exact, top, rtol=1e-12)  # the Hessian's branches are the designed ones
    rec = _run_tracked(mats)
    assert np.all(np.abs(rec[:, 0] - exact) <= LAM_RTOL * exact), (rec[:, 0] - exact) / exact
    blind = _run_tracked(mats, look=False)
    assert np.max((exact - blind[:, 0]) / exact) > 0.2


def test_tracked_engine_records_take_about_one_hvp():
    """The compiled engine's λ₁ every 10 steps on mf (D = 16, GD+WD at the EoS): after the first ≈ 10⁴ steps (the
    transient of the start's kick, whose records need the full Lanczos) the records take ≤ 1.3 HVPs on average (one per Rayleigh record, two more at each look at the second branch) and
    equal the dense eigvalsh of the numpy twin within LAM_RTOL."""
    from srflow.verification import compiled

    from srflow.theory import equilibrium_norm_sq, sharpness

    ref, jm = make_model("mf", rng=0, m=4, n=4, rank=2), make_jax_model("mf", rng=0, sizes={"m": 4, "n": 4, "rank": 2})
    theta = ref.minimizer(np.random.default_rng(0))
    kick = np.random.default_rng(1).standard_normal(ref.dim)  # the start of benchmarks/bench_records
    w = theta + 1e-3 * kick / np.linalg.norm(kick)
    w0 = np.sqrt(equilibrium_norm_sq(0.1, 0.01, sharpness(ref, theta))) * w / np.linalg.norm(w)
    fn = compiled._chunk(jm, "gdwd", False, False, False, True, ("tracked", compiled.WARM_RTOL, compiled.GUARD_EPS))
    vs, ms = compiled.initial_tracks(ref.dim, 1)
    slots = compiled._slots(ref.dim, True)
    ns = np.full(slots, 10, dtype=np.int64)
    state = (w0, np.float64(0.0), np.int64(0), np.int64(-1), vs, ms)
    for _ in range(3):  # three chunks: the records of the last, steps 2·10·slots … 3·10·slots
        state, recs, _ = fn(*state, 0.1, 0.01, ns, np.ones(slots, bool), np.int64(10))
    hvps, lam1, ws = (np.asarray(recs[i]) for i in (9, 3, 10))
    assert np.mean(hvps) <= 1.3, np.bincount(hvps)
    exact = np.array([np.linalg.eigvalsh(ref.hess(w))[-1] for w in ws[::16]])
    assert np.all(np.abs(lam1[::16] - exact) <= compiled.LAM_RTOL * exact)


def _two_level(gap_rel, phi, dim=6, seed=0):
    """A symmetric matrix with λ₁ = 1, λ₂ = 1 - ``gap_rel`` (the rest below) in a random basis, and the unit vector
    cos φ v₁ + sin φ v₂: the case where Kato–Temple's λ₁ - θ ≤ ‖r‖²/(θ - λ₂) is tight."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    lam = np.concatenate([[1.0, 1.0 - gap_rel], np.linspace(-0.4, 0.9 * (1.0 - gap_rel), dim - 2)])
    a = q @ np.diag(lam) @ q.T
    return a, np.cos(phi) * q[:, 0] + np.sin(phi) * q[:, 1]


@pytest.mark.parametrize("gap_rel", [1e-3, 0.05, 0.42])
def test_a_rayleigh_quotient_at_the_residual_bound_is_within_lam_rtol(gap_rel):
    """A Rayleigh quotient whose residual is WARM_RTOL·|θ| (the tracker's acceptance bound) is within LAM_RTOL·λ₁ of
    λ₁ whenever λ₁ - λ₂ ≥ GAP_RTOL·λ₁ (the theory's assumption): Kato–Temple, tight in the two-level case (to first
    order at the assumed gap 1e-3; the error falls as 1e-3/gap above it)."""
    from srflow.verification.compiled import LAM_RTOL, WARM_RTOL

    phi = WARM_RTOL / gap_rel  # ‖r‖ = gap·sin φ cos φ ≈ gap·φ
    a, u = _two_level(gap_rel, phi)
    theta = u @ a @ u
    assert np.linalg.norm(a @ u - theta * u) <= WARM_RTOL * abs(theta) * (1 + 1e-6)
    # (1 - θ ≈ 1e-11 carries the round-off of θ ≈ 1, 1e-16: 1e-5 of it)
    assert 0.0 <= 1.0 - theta <= LAM_RTOL * (1e-3 / gap_rel) * (1 + 1e-4) + 4e-16, (1.0 - theta) / LAM_RTOL


def test_a_residual_10x_the_bound_lets_through_records_off_by_100_lam_rtol():
    """Companion (must fail): at the assumed gap a Rayleigh quotient with a residual 10× WARM_RTOL·|θ| (what a bound
    at a gap 100× the true one accepts, e.g. a guard's gap estimate of a branch it does not follow) is 100×
    LAM_RTOL below λ₁: the acceptance bound is not loose."""
    from srflow.verification.compiled import LAM_RTOL, WARM_RTOL

    gap_rel = 1e-3
    a, u = _two_level(gap_rel, 10 * WARM_RTOL / gap_rel)
    assert 1.0 - (u @ a @ u) > 50 * LAM_RTOL


def test_the_rayleigh_record_does_not_use_the_guards_gap():
    """``track_fast`` rejects a Rayleigh quotient whose residual is 5× WARM_RTOL·|θ| even where λ₁ - λ₂ = 0.4·λ₁ and
    the guard has measured it (its gap field): a record's accuracy rests on the theory's gap, not on the guard's
    assumptions (a residual bound at the measured gap let records 50-226× LAM_RTOL off through on designed paths
    where a branch the guard does not follow rises between its looks); at 0.5× WARM_RTOL it accepts."""
    from srflow.verification.compiled import TRACK_FIELDS, WARM_RTOL, track_fast

    f = {name: i for i, name in enumerate(TRACK_FIELDS)}
    st = np.zeros(len(TRACK_FIELDS))
    st[[f["m"], f["wait"], f["valid"], f["gap"], f["since"]]] = 2.0, 3.0, 1.0, 0.4, 1.0
    for factor, expected in ((5.0, False), (0.5, True)):
        a, u = _two_level(0.4, factor * WARM_RTOL / 0.4)
        vs = jnp.asarray(np.stack([u, u, np.roll(u, 1)]))
        assert bool(track_fast(jnp.asarray(u), jnp.asarray(a @ u), vs, jnp.asarray(st))[0]) is expected, factor


def _rising_branch_path(records=80, kind="rise", gap=2e-3, dim=8, seed=0):
    """λ₁ = 1 (eigenvector q₀), a branch at 0.5 (q₁) that the second-branch vector g converges to, and a third branch
    (q₂) that rises from -0.5 to 1 - ``gap`` (twice the gap GAP_RTOL·λ₁ the theory assumes): "rise", linearly over
    records 10-40, crossing the 0.5 branch with no coupling (g, an exact eigenvector of it, stays there), the top
    eigenvector turning towards q₂ by 0.003 in proportion; "jump", in one record (40), the top eigenvector turning by
    5e-4; "followed": instead the branch g follows (q₁) jumps from 0.5 to 1 - ``gap`` at record 30, between two
    looks, the top eigenvector turning towards it by 5e-4. The rest of the spectrum in [-0.5, 0.3]."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    lam = np.concatenate([[1.0, 0.5], np.linspace(-0.5, 0.3, dim - 2)])
    mats = []
    for t in range(records):
        x = min(max((t - 10) / 30, 0.0), 1.0) if kind == "rise" else float(t >= (30 if kind == "followed" else 40))
        phi = (0.003 if kind == "rise" else 5e-4) * x
        b = 1 if kind == "followed" else 2  # the branch that rises
        spec = lam.copy()
        spec[b] = lam[b] + x * (1.0 - gap - lam[b])
        qq = q.copy()
        qq[:, 0], qq[:, b] = np.cos(phi) * q[:, 0] + np.sin(phi) * q[:, b], -np.sin(phi) * q[:, 0] + np.cos(phi) * q[:, b]
        mats.append(qq @ np.diag(spec) @ qq.T)
    return mats


@pytest.mark.parametrize("kind", ["rise", "jump", "followed"])
def test_tracked_records_stay_within_lam_rtol_when_a_branch_rises_that_g_does_not_follow(kind):
    """A branch rising from deep in the spectrum to 2e-3 below λ₁ (the theory's gap assumption holds: 2·GAP_RTOL)
    past the branch that g has converged to: every tracked record equals the dense eigvalsh within LAM_RTOL (max error
    ≤ 1e-3·LAM_RTOL on the three paths), because a record is accepted at the theory's gap only (WARM_RTOL·|θ|). With
    the acceptance at the guard's measured gap (tried 2026-12-05, reverted), the records of the rise were up to 226×
    LAM_RTOL low (t = 41-55), of the jump 50× (t = 40-56: the looks at t = 41 measure G ≈ 0.49 from g on the 0.5
    branch), of "followed" 50× (t = 30-40: the look at t = 25 measured G ≈ 0.49, the next is at t = 41) (review29)."""
    from srflow.verification.compiled import LAM_RTOL

    mats = _rising_branch_path(kind=kind)
    rec = _run_tracked(mats)
    exact = np.array([np.linalg.eigvalsh(a)[-1] for a in mats])
    scaled = (exact - rec[:, 0]) / (LAM_RTOL * exact)
    assert scaled.max() <= 1.0, f"max error {scaled.max():.3g}·LAM_RTOL at record {scaled.argmax()}"


def test_the_fused_record_is_track_tops_record_and_its_step_the_loops_update():
    """The chunk's fused record (pairs=False: the Rayleigh product and the step's L, ∇L from one JVP at w_t) equals
    ``track_top`` on ∇²L(w_t) from the same tracker state -- the same θ, the same state and HVP count, one HVP for a
    history (y_n, y_{n-1}) whose extrapolation 2y_n - y_{n-1} is the top eigenvector although y_n and y_{n-1} are 1e-3
    and 2e-3 off it -- and the step it takes is the update of GD+WD, (1 - ηλ)w_t - η∇L(w_t)."""
    from srflow.verification import compiled

    ref, jm = twins("sphere_circle")
    w0 = gdwd_start(ref)
    grad = jax.grad(jm.jax_loss)
    vals, vecs = np.linalg.eigh(ref.hess(w0))  # the numpy twin's closed-form Hessian
    top, off = vecs[:, -1], vecs[:, 0]
    y0, y1 = top + 1e-3 * off, top + 2e-3 * off
    vs, ms = compiled.initial_tracks(jm.dim, 1)
    vs[0] = np.stack([y0 / np.linalg.norm(y0), y1 / np.linalg.norm(y1), vecs[:, -2]])
    f = {name: i for i, name in enumerate(compiled.TRACK_FIELDS)}
    ms[0, [f["valid"], f["wait"], f["since"], f["m"]]] = 1.0, 5.0, 1.0, 2.0
    fn = compiled._chunk(jm, "gdwd", False, False, False, False, compiled.TRACKED_METHOD)
    slots = compiled._slots(jm.dim, False)
    ns, active = np.zeros(slots, dtype=np.int64), np.zeros(slots, bool)
    ns[0], active[0] = 1, True
    (w1, _, _, _, vs1, ms1), recs, _ = fn(w0, np.float64(0.0), np.int64(0), np.int64(-1), vs, ms, 0.1, 0.01, ns,
                                          active, np.int64(10))
    theta, vs_ref, ms_ref, hvps = jax.jit(lambda w, v, s: compiled.track_top(
        lambda u: jax.jvp(grad, (w,), (u,))[1], v, s, min(jm.dim, 12)))(jnp.asarray(w0), vs[0], ms[0])
    assert int(recs[9][0]) == int(hvps) == 1
    np.testing.assert_allclose(float(recs[3][0]), vals[-1], rtol=compiled.LAM_RTOL)
    np.testing.assert_allclose(float(recs[3][0]), float(theta), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(vs1[0]), np.asarray(vs_ref), rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(ms1[0]), np.asarray(ms_ref), rtol=1e-13, atol=0)
    step = (1 - 0.1 * 0.01) * w0 - 0.1 * np.asarray(grad(jnp.asarray(w0)))
    np.testing.assert_allclose(np.asarray(w1), step, rtol=0, atol=1e-15 * np.max(np.abs(w0)))


@pytest.mark.parametrize("batched", [False, True])
def test_a_look_of_the_chunk_is_track_tops_look(batched):
    """A guard record (a look: the tracker's wait is over) of the chunk equals ``track_top``'s on ∇²L(w_t) from the same
    state to round-off -- θ, the vectors (the guard's g' included), the state (the guard's new wait, gap and count)
    and three HVPs (the Rayleigh product and the guard's two): the single run's look takes its products from the
    record's own linearization (``fused_record``), a batch's from a linearization in its slow record; both the
    guard written out (``_guard``)."""
    from srflow.verification import compiled

    ref, jm = twins("mf")
    w0 = gdwd_start(ref)
    grad = jax.grad(jm.jax_loss)
    vals, vecs = np.linalg.eigh(ref.hess(w0))
    top = vecs[:, -1]
    y0, y1 = top + 1e-9 * vecs[:, 0], top + 2e-9 * vecs[:, 0]
    vs, ms = compiled.initial_tracks(jm.dim, 1)
    g = vecs[:, -2] + 0.3 * vecs[:, -4] + 0.2 * vecs[:, 0]  # (λ₂ is double on mf: g not in one eigenspace)
    vs[0] = np.stack([y0 / np.linalg.norm(y0), y1 / np.linalg.norm(y1), g])
    vs[0, 2] /= np.linalg.norm(vs[0, 2])
    f = {name: i for i, name in enumerate(compiled.TRACK_FIELDS)}
    ms[0, [f["valid"], f["wait"], f["since"], f["m"], f["gap"], f["mu"]]] = 1.0, 0.0, 3.0, 2.0, 0.5, 0.3 * vals[-1]
    fn = compiled._chunk(jm, "gdwd", False, batched, False, False, compiled.TRACKED_METHOD)
    slots = compiled._slots(jm.dim, False)
    ns, active = np.zeros(slots, dtype=np.int64), np.zeros(slots, bool)
    ns[0], active[0] = 1, True
    state = (w0, np.float64(0.0), np.int64(0), np.int64(-1), vs, ms)
    hyper = (0.1, 0.01)
    if batched:
        state, hyper = tuple(np.asarray(x)[None] for x in state), (np.array([0.1]), np.array([0.01]))
    (_, _, _, _, vs1, ms1), recs, _ = fn(*state, *hyper, ns, active, np.int64(10))
    vs1, ms1, lam, hvps = (np.asarray(x).reshape(-1) for x in (vs1, ms1, recs[3], recs[9]))
    theta, vs_ref, ms_ref, hvps_ref = jax.jit(lambda w, v, st: compiled.track_top(
        lambda u: jax.jvp(grad, (w,), (u,))[1], v, st, min(jm.dim, 12),
        slow_matvec=lambda: jax.linearize(grad, w)[1]))(jnp.asarray(w0), vs[0], ms[0])
    assert int(hvps[0]) == int(hvps_ref) == 3
    np.testing.assert_allclose(lam[0], vals[-1], rtol=compiled.LAM_RTOL)
    np.testing.assert_allclose(lam[0], float(theta), rtol=1e-14)
    np.testing.assert_allclose(vs1.reshape(3, -1), np.asarray(vs_ref), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ms1, np.asarray(ms_ref), rtol=1e-12, atol=0)
    assert ms1[f["wait"]] != ms[0, f["wait"]] - 1 and ms1[f["since"]] == 1.0  # the guard's schedule was set


def test_a_failed_runs_records_take_no_slow_record(monkeypatch):
    """A run that has failed (``fail`` ≥ 0: its later slots still record, masked) never enters ``track_slow``: with a
    tracker state that calls for it (the guard's wait 0, a look) its records run ``track_slow`` as often as with one
    that does not (wait 5): never; the entries are counted by a host callback in ``track_slow``, single and batched.
    Companion: a finite run with the same states enters it at the look and not otherwise (the counter sees the slow
    record). (Counted by the loss's evaluations before 2026-12-05; the single run's slow record now takes its products
    from the record's own linearization and evaluates no loss.)"""
    from srflow.verification import compiled

    calls = []
    track_slow = compiled.track_slow

    def counted(*args, **kwargs):
        jax.debug.callback(lambda: calls.append(1))
        return track_slow(*args, **kwargs)

    monkeypatch.setattr(compiled, "track_slow", counted)

    def loss(w):
        x = w / jnp.linalg.norm(w)
        return 0.5 * (1 + 8 * x[0] ** 2) * x[2] ** 2

    jm = from_jax(loss, 3, name="counted")
    w0 = np.array([0.1, 0.2, 1.0])
    vecs = np.linalg.eigh(np.asarray(jax.hessian(loss)(jnp.asarray(w0))))[1]
    vs, ms = compiled.initial_tracks(3, 1)
    vs[0] = np.stack([vecs[:, -1], vecs[:, -1], vecs[:, -2]])
    f = {name: i for i, name in enumerate(compiled.TRACK_FIELDS)}
    slots = compiled._slots(3, False)
    ns, active = np.zeros(slots, dtype=np.int64), np.zeros(slots, bool)
    active[:4] = True
    chunks = {b: compiled._chunk.__wrapped__(jm, "gdwd", False, b, False, False, compiled.TRACKED_METHOD)
              for b in (False, True)}

    def entries(fail, wait, batched):
        st = ms.copy()
        st[0, [f["valid"], f["wait"], f["since"], f["m"]]] = 1.0, wait, 1.0, 2.0
        state = (w0, np.float64(0.0), np.int64(0), np.int64(fail), vs, st)
        if batched:
            state = tuple(np.stack([x, x]) for x in state)
        hyper = (np.full(2, 0.1), np.full(2, 0.01)) if batched else (0.1, 0.01)
        calls.clear()
        jax.block_until_ready(chunks[batched](*state, *hyper, ns, active, np.int64(10)))
        jax.effects_barrier()
        return len(calls)

    for batched in (False, True):
        assert entries(5, 0.0, batched) == entries(5, 5.0, batched) == 0, batched
        assert entries(-1, 0.0, batched) > 0 == entries(-1, 5.0, batched), batched


def test_one_compilation_serves_every_stride_and_step_count(caplog):
    """Runs with different strides and step counts (the rungs of a ladder; several chunks when there are more
    records than RECORDS_PER_CALL) reuse the one compiled chunk: XLA compiles nothing after the first run."""
    import logging

    _, jm = twins("sphere_circle")
    w0 = np.array([1.0, 0.3, 0.2])
    simulate(jm, w0, 0.1, 30, wd=0.01, every=10, pairs=False)
    with jax.log_compiles(), caplog.at_level(logging.DEBUG):
        for steps, every in ((50, 7), (200, 20), (33, 33), (3000, 2)):
            simulate(jm, w0, 0.1, steps, wd=0.01, every=every, pairs=False)
    assert not [r.message for r in caplog.records if "Compiling" in r.message and "run" in r.message]


def test_the_compilation_test_sees_a_recompilation(caplog):
    """Companion: a new compiled chunk (another algorithm) is seen by the same log."""
    import logging

    _, jm = twins("sphere_circle")
    with jax.log_compiles(), caplog.at_level(logging.DEBUG):
        simulate(jm, np.array([1.0, 0.3, 0.2]), 0.1, 3, algorithm="gd", every=1, pairs=False)
    assert [r.message for r in caplog.records if "Compiling" in r.message and "run" in r.message]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_guard_is_two_lanczos_steps_of_the_deflated_hessian(seed):
    """``_guard`` (the crossing guard written out) gives the Ritz pair of span{gd, P A gd} (P = I - uuᵀ): its θ_g is
    the top eigenvalue of the 2×2 projection of P A P on that span by numpy (QR and eigvalsh), and it equals
    ``lanczos_adaptive`` from gd with rtol = ∞ and one cycle (the guard before 2026-12-05) in θ_g, g' and ρ_g to
    round-off, with two HVPs; on an invariant start (gd an eigenvector of P A P, its eigenvalue negative or positive)
    the pair is (its eigenvalue, gd) after one HVP."""
    from srflow.verification.compiled import _guard, guard_start, lanczos_adaptive

    rng = np.random.default_rng(seed)
    dim = 10
    b = rng.standard_normal((dim, dim))
    a = (b + b.T) / 2
    u = rng.standard_normal(dim)
    u /= np.linalg.norm(u)
    p = np.eye(dim) - np.outer(u, u)
    gd = np.asarray(guard_start(jnp.asarray(u), jnp.asarray(rng.standard_normal(dim))))
    th, y, res, n = jax.jit(lambda v, g: _guard(lambda x: jnp.asarray(a) @ x, v, g))(u, gd)
    q, _ = np.linalg.qr(np.stack([gd, p @ a @ gd], axis=1))
    dense = np.linalg.eigvalsh(q.T @ p @ a @ p @ q)[-1]
    np.testing.assert_allclose(float(th), dense, rtol=1e-13)
    op = lambda x: jnp.asarray(p @ a @ p) @ x  # noqa: E731
    th0, y0, res0, n0 = lanczos_adaptive(op, jnp.asarray(gd), 6, jnp.inf, max_cycles=1, first_check=2)
    y0 = np.where(np.asarray(y0) @ gd < 0, -1.0, 1.0) * np.asarray(y0)
    assert int(n) == int(n0) == 2
    np.testing.assert_allclose(float(th), float(th0), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(y), y0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(float(res), float(res0), rtol=1e-9)
    assert float(res) > 1e-3  # a generic start: the pair is not an eigenpair yet
    vals, vecs = np.linalg.eigh(p @ a @ p)
    assert vals[0] < 0 < vals[-1]
    for i in (0, dim - 1):  # eigenvectors of P A P with a negative and a positive eigenvalue (⊥ u)
        eig = vecs[:, i]
        th, y, res, n = _guard(lambda x: jnp.asarray(a) @ x, jnp.asarray(u), jnp.asarray(eig))
        assert int(n) == 1 and abs(float(res)) < 1e-12
        np.testing.assert_allclose(float(th), vals[i], rtol=1e-12)
        np.testing.assert_allclose(np.abs(np.asarray(y) @ eig), 1.0, rtol=1e-12)


def test_a_tracked_record_traces_three_hvps():
    """The tracker's compile cost is set by the HVPs it traces (each inlines the model's Hessian-vector product):
    a record of ``track_top`` traces the operator three times (the Rayleigh product, the guard's loop of two passes,
    ``_guard``, and one ``lanczos_adaptive`` call site for the full Lanczos), and a chunk with λ₁ at w_t, the midpoint
    and w_{t+1} traces one record for the three phases. (Before 2026-12-05 a record traced it seven times, three
    records per chunk; then twice, the guard and the full Lanczos sharing one ``lanczos_adaptive`` call site, whose
    loops cost a look ≈ 3 plain steps more on mf at D = 80.)"""
    from srflow.verification.compiled import initial_tracks, track_top

    calls = []

    def matvec(u):
        calls.append(1)
        return 2.0 * u

    vs, st = (jnp.asarray(x[0]) for x in initial_tracks(6, 1))
    jax.make_jaxpr(lambda v, s: track_top(matvec, v, s, 6))(vs, st)
    assert len(calls) == 3, len(calls)


def test_a_chunk_traces_one_record_for_the_three_phases(monkeypatch):
    """Companion: the chunk with λ₁ at w_t, the midpoint and w_{t+1} (pairs) calls ``track_top`` once while it is
    traced (the phases are one ``lax.map``), not once per phase."""
    from srflow.verification import compiled

    records = []
    track_top = compiled.track_top

    def counting(*args, **kwargs):
        records.append(1)
        return track_top(*args, **kwargs)

    monkeypatch.setattr(compiled, "track_top", counting)
    _, jm = twins("sphere_circle")
    fn = compiled._chunk.__wrapped__(jm, "gdwd", True, False, False, False, compiled.TRACKED_METHOD)
    vs, ms = compiled.initial_tracks(jm.dim, 3)
    slots = compiled._slots(jm.dim, False)
    fn.trace(np.array([1.0, 0.3, 0.2]), 0.0, np.int64(0), np.int64(-1), vs, ms, 0.1, 0.01,
             np.zeros(slots, dtype=np.int64), np.zeros(slots, dtype=bool), np.int64(10))
    assert len(records) == 1, len(records)


def _inf_gradient_below(w):
    """A circle-type loss whose ∇L has an infinite entry (∂₀L = ∞) once ‖w‖² < 0.9 while L itself stays finite."""
    @jax.custom_jvp
    def kick(v):
        return jnp.zeros((), v.dtype)

    @kick.defjvp
    def _(primals, tangents):
        (v,), (dv,) = primals, tangents
        return kick(v), jnp.where(v @ v < 0.9, jnp.inf, 0.0) * dv[0]

    x = w / jnp.linalg.norm(w)
    return 0.5 * (1 + 8 * x[0] ** 2) * x[2] ** 2 + kick(w)


def test_an_infinite_gradient_entry_with_a_finite_loss_is_reported_at_the_numpy_loops_step():
    """The fused record tests ∇L(w_t) for finiteness by Σᵢ 0·∂ᵢL (NaN iff an entry is not finite) in its one reduction:
    a gradient with an infinite entry under a finite loss is a divergence at t (the numpy loop's model raises at ∇L),
    not at t + 1 (where w_{t+1} is not finite): every step recorded (the failure at a record) and every 7 (between
    records, settled at the next record), single and batched, equal to the numpy loop."""
    model = from_jax(_inf_gradient_below, 3, name="inf_gradient_below")
    step = lambda msg: int(msg.split("diverged at step ")[1].split(":")[0])  # noqa: E731
    w0s = np.array([[0.97, 0.2, 0.1], [0.2, 0.97, 0.05]])
    for every in (1, 7):
        batch = simulate_batch(model, w0s, 0.1, 60, wd=0.01, every=every, pairs=False)
        for w0, b in zip(w0s, batch):
            ref = simulate(model, w0, 0.1, 60, wd=0.01, every=every, engine="numpy", pairs=False)
            single = simulate_compiled(model, w0, 0.1, 60, wd=0.01, every=every, pairs=False)
            assert "gradient is not finite" in ref.diverged, ref.diverged  # the numpy loop's failure: ∇L(w_t)
            assert step(ref.diverged) == step(single.diverged) == step(b.diverged), (every, ref.diverged, b.diverged)
            assert list(ref.steps) == list(single.steps) == list(b.steps)


def test_the_fused_records_clock_equals_the_numpy_loops_on_the_sphere():
    """The fused record (pairs=False) takes the clock step from its one reduction's sums (``clock_step``): on the
    sphere (ngd-sphere: δ = w_t - w_{t+1} has a radial part, ε = w_t·δ ≠ 0, unlike GD+WD where ε is round-off) its
    records and clock equal the numpy loop's, single and batched."""
    ref, jm = twins("sphere_circle")
    w0 = two_cycle_start(ref, np.array([np.cos(0.5), np.sin(0.5), 0.0]), 0.05, "ngd-sphere")
    a = simulate(ref, w0, 0.05, 200, algorithm="ngd-sphere", every=40, pairs=False)
    assert_same_run(a, simulate(jm, w0, 0.05, 200, algorithm="ngd-sphere", every=40, pairs=False))
    assert_same_run(a, simulate_batch(jm, np.stack([w0, w0]), 0.05, 200, algorithm="ngd-sphere", every=40,
                                      pairs=False, dense_clock=True)[1])
    assert a.clock[-1] > 0.01  # the clock moved: its steps are compared, not zeros


def test_the_rayleigh_record_is_the_same_from_any_positive_multiple_of_its_start():
    """``track_fast`` takes the start unnormalized (``track_direction``: the product ∇²L u is linear in u) and
    normalizes by its sums: from c·u and c·∇²L u (c = 3, 0.25) the record (θ, its test -- the residual of the unit start, here half
    the bound --, the vector kept, the state)
    equals the one from the unit u."""
    from srflow.verification.compiled import TRACK_FIELDS, initial_tracks, track_fast, track_start

    rng = np.random.default_rng(5)
    b = rng.standard_normal((8, 8))
    a = jnp.asarray((b + b.T) / 2 + np.diag(np.linspace(0, 6, 8)))
    vecs = np.linalg.eigh(np.asarray(a))[1]
    vs, st = initial_tracks(8, 1)
    y0 = vecs[:, -1] + 1e-4 * vecs[:, 0]
    y1 = vecs[:, -1] + 3e-4 * vecs[:, 1]
    vs[0, 0], vs[0, 1] = y0 / np.linalg.norm(y0), y1 / np.linalg.norm(y1)
    f = {name: i for i, name in enumerate(TRACK_FIELDS)}
    st[0, [f["valid"], f["wait"], f["mu"]]] = 1.0, 3.0, 1.0
    vs, st = jnp.asarray(vs[0]), jnp.asarray(st[0])
    u = track_start(vs, st)
    rho = np.linalg.norm(np.asarray(a @ u - (u @ a @ u) * u))
    rtol = 2.0 * rho / float(u @ a @ u)  # the test's bound at twice the residual: accepted, with room for round-off only
    ok, (theta, v1, s1, _) = track_fast(u, a @ u, vs, st, rtol=rtol)
    assert bool(ok)
    for c in (3.0, 0.25):
        ok_c, (theta_c, v1_c, s1_c, _) = track_fast(c * u, a @ (c * u), vs, st, rtol=rtol)
        assert bool(ok_c)
        np.testing.assert_allclose(float(theta_c), float(theta), rtol=1e-14)
        np.testing.assert_allclose(np.asarray(v1_c), np.asarray(v1), rtol=0, atol=1e-14)
        np.testing.assert_allclose(np.asarray(s1_c), np.asarray(s1), rtol=0, atol=0)


@pytest.mark.parametrize("algorithm, small", [("gdwd", False), ("sqrt", True)])
def test_the_per_step_clock_at_a_stride_above_dense_clock_max_is_the_numpy_loops(algorithm, small, monkeypatch):
    """pairs=False (the ALP checks' runs): a stride above DENSE_CLOCK_MAX is run in pieces (``_piece_plan``) whose
    records are dropped, so the compiled run keeps the clock of every step as the numpy loop does -- the same records,
    the same per-step clock (the √L check's premise and the clock error are read from it; before, the compiled run
    had none at such strides and the premise went unmeasured). GD+WD at the module's DENSE_CLOCK_MAX; GD on √L with
    it and PIECE set to 64 and 62 (the same plan and chunk, ~1/60 of the steps for the numpy loop)."""
    from srflow.verification import compiled

    if small:
        monkeypatch.setattr(compiled, "DENSE_CLOCK_MAX", 64)
        monkeypatch.setattr(compiled, "PIECE", 62)
    ref, jm = twins("sphere_circle")
    every = compiled.DENSE_CLOCK_MAX + (29 if small else 905)  # odd: pieces of PIECE steps and an odd last one
    steps = 2 * every + 77
    lr, wd = (0.1, 0.01) if algorithm == "gdwd" else (0.02, 0.0)
    w0 = gdwd_start(ref) if algorithm == "gdwd" else two_cycle_start(ref, ref.minimizer(np.random.default_rng(0)),
                                                                     lr, algorithm)
    a = simulate(ref, w0, lr, steps, wd=wd, algorithm=algorithm, every=every, pairs=False)
    b = simulate(jm, w0, lr, steps, wd=wd, algorithm=algorithm, every=every, pairs=False)
    assert list(b.steps) == [0, every, 2 * every, steps] and len(b.clock_steps) == steps + 1
    assert_same_run(a, b)
    assert simulate(jm, w0, lr, steps, wd=wd, algorithm=algorithm, every=every, pairs=False,
                    dense_clock=False).clock_steps is None
