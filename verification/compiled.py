"""The compiled simulator: the runs of ``verification.simulate`` on a JAX model, compiled with ``jit``, with
the same updates and records (the numpy loop stays the reference; tests/test_compiled.py compares them on the
registered models).

A run is cut into chunks of RECORDS_PER_CALL record slots (fewer when w_t is kept at each record). One chunk
is one compiled call: an outer ``lax.scan`` over the slots, each of which records at w_t (loss, ‖w‖², λ₁ at
w_t, at the midpoint and at w_{t+1}, ‖∇L‖, the clock s_t) and then takes its n steps in a ``lax.fori_loop``
that also accumulates the clock s = Σ‖w̄_{k+1} - w̄_k‖² (each step by ``clock_step``'s identity from ‖w_k‖², ‖δ‖² and
w_k·δ, δ = (w_k - w_{k+1}) - ηλw_k: one reduction, without the cancellation of the direct formula; the numpy loop
keeps the direct one). The records stay on the device, stacked, and come to
the host once per chunk. The step counts n of the slots and which slots are in use are traced arrays, so one
compilation serves every record stride, step count and rung; the dense clock (s_t at every step) goes into a
buffer of fixed length CLOCK_BUF per chunk.

λ₁ is the largest algebraic eigenvalue of ∇²L, tracked from record to record on HVPs (``track_top``, the default,
WARM_START = "tracked"; for λ₁ at the midpoint and at w_{t+1} each phase has its own tracker, and one traced record
serves the three phases in a ``lax.map``): a record is the Rayleigh quotient of the last two
records' eigenvectors extrapolated, 2v - v_prev (``warm_start``), one HVP, accepted when its residual
‖∇²L u - θu‖ ≤ WARM_RTOL·|θ|, which bounds 0 ≤ λ₁ - θ ≤ ‖r‖²/(λ₁ - λ₂) ≤ LAM_RTOL·λ₁ (Kato–Temple) while λ₁
has the gap the theory assumes, GAP_RTOL·λ₁ (a larger gap measured by the guard below is not used: see
``track_fast``); otherwise a Lanczos (``lanczos_adaptive``) from the same start to the same
residual. A second vector follows the top of the rest of the spectrum (two HVPs at the records its schedule
picks), so that a branch overtaking the tracked one (a true crossing, which no Rayleigh quotient of the old
eigenvector sees) is found. With pairs=False the record's HVP and the step's gradient at w_t are one
forward-over-reverse pass (``jax.jvp`` of the loss's value and gradient, or ``jax.linearize`` in a single run: the
record costs the JVP's tangent part, 1.5-1.9 plain steps at D = 16-500, where a separate HVP cost 2.1-2.5;
``benchmarks/bench_hvp.py``); the sums the record reads (its row, the clock, the finiteness tests, the Rayleigh
quotient's) are one reduction, the record's scalars one row write. No D×D matrix,
no ARPACK: the first record starts cold from a fixed random vector.
(The method before, a guarded Lanczos at every record, is ``warm_top``, kept for ``PREVIOUS_METHOD``.)
Φ(w̄_t) (with ``track_phi``) is computed on the device after the run, in one compiled pass over the stacked record
iterates (``verification.device_phi``, through PHI_RECORDS; ``theory.project_to_manifold`` is its reference).

``simulate_batch`` advances B runs of one model (different starts, or different (η, λ), equal step counts)
as one array with ``vmap`` (the steps); a batch's λ₁ records are taken one run after the other
(``jax.custom_batching.sequential_vmap``), so that each Lanczos stops at its own count with unbatched HVPs;
``simulate`` on a JAX model is the batch of one.

A non-finite iterate freezes that run at its last finite point; its records end at the last record before
it, and ``diverged`` names the step, as in the numpy loop (a failure between records is settled at the next record,
from L and ∇L at the last finite point).
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from srflow.theory import check_hyperparameters
from srflow.theory.manifold import GAP_RTOL
from srflow.toy_models.validate import as_vector

from .trajectory import ALGORITHMS, Progress, Trajectory, record_phi

#: Φ of a run's records in one device pass, ``verification.device_phi.record_phis``, which sets it when imported
#: (``verification.simulate`` imports it with this module); None: ``record_phi`` on the host at each record
PHI_RECORDS = None
#: Krylov dimension of one Lanczos cycle (min(D, this)); cycles restart from the Ritz vector
KRYLOV_DIM = 12
#: ``lanczos_top`` stops when ‖∇²L y - θy‖ ≤ LANCZOS_RTOL·|θ|; the Ritz value is then within
#: residual²/gap ≈ 1e-18·θ²/gap of λ₁ (round-off for any gap above 1e-4·θ)
LANCZOS_RTOL = 1e-9
#: the relative error of every λ₁ record of the compiled simulator, from its finest use: eos-equilibrium compares
#: η⟨λ₁⟩ with 2 + c·ηλ, where a record low by b·λ₁ (a Ritz value is never above λ₁, so the error does not average
#: out) moves the measured c by 2b/ηλ; at the default ladder's smallest ηλ = 1e-5 (and 1e-6, a rung added below
#: it) b = 1e-11 moves c by ≤ 2e-6 (2e-5), ≤ 1% (8%) of the finest δ* of c reported (2.6e-4 absolute:
#: sphere_circle, 0.024% of |c| = 1.08) and 1e-4 of the ±3% mutation the check must reject. Equal to
#: EXACT_VS_EXACT_RTOL, so the records still equal the numpy loop's dense eigvalsh at that tolerance (tests).
#: (Before 2026-12-05: 1e-12, below EXACT_VS_EXACT_RTOL with no use that needs it; 1e-11 saves ≈ 1 HVP per record.)
LAM_RTOL = 1e-11
#: the residual at which a record's Lanczos stops: for a Ritz pair (θ, y) with residual r, |θ - λ| ≤ ‖r‖²/gap
#: (gap: the distance of θ to the rest of the spectrum), and the theory assumes λ₁ - λ₂ > GAP_RTOL·λ₁ (the
#: monitors report where it fails), so ‖r‖ ≤ √(LAM_RTOL·GAP_RTOL)·|θ| = 1e-7|θ| gives |θ - λ₁| ≤ LAM_RTOL·λ₁
WARM_RTOL = math.sqrt(LAM_RTOL * GAP_RTOL)
#: the size of the fresh random direction added to each record's warm start. A tracked eigenvector can stay
#: an exact eigenvector of a branch that another one overtakes (a true crossing): no Krylov space of it ever
#: sees the new top. With the random part, the start has a component ≈ GUARD_EPS/√D along the new top
#: eigenvector v₁, and the Ritz pair of the old branch keeps a residual ≈ (GUARD_EPS/√D)(λ₁ - θ), so Lanczos
#: cannot stop on it once λ₁ - θ > WARM_RTOL·√D/GUARD_EPS·θ (≈ 3.2e-3·√D·θ): a record misses a new branch by
#: at most that (tests/test_compiled.py: a true crossing).
#: GUARD_EPS = √10·1e-5 keeps that bound at 3.2e-3·√D·θ, as it was with LAM_RTOL = 1e-12 and GUARD_EPS = 1e-5.
#: Measured on mf (λ₁ every 10 steps at the EoS, extrapolated starts, steady state): 5.0 HVPs per record with
#: 1e-5, 5.3-5.4 with √10·1e-5 at D = 80 and 500 (6.0 from the last record's vector, LAM_RTOL = 1e-12).
GUARD_EPS = math.sqrt(10) * 1e-5
#: how a record is taken: "tracked" (``track_top``: a Rayleigh quotient of the extrapolated start, one HVP, certified
#: by its residual, a full Lanczos only when the residual says so, and a second-branch vector as crossing guard),
#: "extrapolated" (``warm_top``: a guarded Lanczos from the last two records' eigenvectors at every record, the
#: method before the tracker) or "previous" (from the last record's eigenvector, the method before that)
#: The default is "tracked" (since 2026-12-05, late): its record traces three HVPs (the Rayleigh product, the guard's
#: loop ``_guard`` and the Lanczos's ``lanczos_adaptive`` call site), its common record (a Rayleigh record between guard
#: records) is one ``lax.cond`` branch with the one HVP by forward-over-reverse and nothing else, and the phases are one
#: traced record; its chunk compiles as fast as the guarded Lanczos's did (benchmarks/bench_compile.py) and its
#: records cost less (benchmarks/bench_records.py --before). Before, its compiled code cost ≈ 1.8 s more per chunk
#: variant (mf, D = 16: first ``simulate_compiled`` 3.97 s against 2.20 s) and it was opt-in.
WARM_START = "tracked"
#: the tracker (WARM_START, WARM_RTOL, GUARD_EPS), the default
TRACKED_METHOD = ("tracked", WARM_RTOL, GUARD_EPS)
#: the method before the tracker (guarded Lanczos at every record), timed against the default by
#: ``python -m benchmarks.bench_records --before``
PREVIOUS_METHOD = ("extrapolated", WARM_RTOL, GUARD_EPS)
#: at most this many Lanczos cycles per eigenvalue (a warm start needs 1)
MAX_CYCLES = 60
#: record slots per compiled call (a chunk), whose records are copied to the host together: a chunk's host round
#: trip (dispatch, copy, Python) costs ~0.5 ms, 32 records every 10 steps at D = 16 take ~2 ms
RECORDS_PER_CALL = 512
#: with w_t kept at every record (Φ, ``keep_iterates``) a chunk holds at most this many floats of iterates
ITERATE_FLOATS = 2**21
#: the longest recording interval whose clock is kept at every step (see ``simulate_batch``)
DENSE_CLOCK_MAX = 4096
#: the length of a chunk's dense-clock buffer (a chunk holds at most (CLOCK_BUF - 1) // every records)
CLOCK_BUF = 2 * DENSE_CLOCK_MAX


def lanczos_adaptive(matvec, v0, k: int, rtol: float = WARM_RTOL, max_cycles: int = MAX_CYCLES, first_check=1,
                     z0=None, use_z0=True):
    """(θ, y, residual, hvps): the largest algebraic eigenpair of the symmetric operator ``matvec``
    (traceable), and the number of ``matvec`` calls it took. ``z0``: the product A v0 when the caller has it (v0
    then a unit vector): the first step uses it instead of a ``matvec`` call (when ``use_z0``, which may be traced).

    Lanczos with full reorthogonalization from v0, one HVP per step: after j steps T_j = Q_jᵀ A Q_j is
    tridiagonal, its top Ritz pair (θ, s) gives y = Q_j s with the residual ‖A y - θy‖ = β_j|s_j| (no further
    HVP), and the basis stops growing as soon as β_j|s_j| ≤ rtol·|θ|. The residual is first looked at after
    ``first_check`` steps (the eigendecomposition of T_j costs more than an HVP at small D; a warm start passes
    the count of the last record less one). A warm v0 (last record's eigenvector) stops after a few steps; a
    stale one goes on to k steps and then restarts from the Ritz vector (a full restarted Lanczos, residual
    looked at every step) until the residual is below rtol·|θ| or ``max_cycles``. On an invariant Krylov
    subspace (β = 0) the residual is 0 and it stops; unused rows of T are decoupled and set below its Gershgorin
    bound, so they never hold the top Ritz value. The cycles are one ``lax.while_loop`` around one traced cycle
    (the first cycle differs only in traced values), so the operator is traced once per call site.
    """
    dim = v0.shape[0]
    idx = jnp.arange(k)
    use_z0 = (z0 is not None) & jnp.asarray(use_z0)

    def ritz(alpha, beta, j, b):
        """The top Ritz pair of T_{j+1} and its residual b·|s_j|: in closed form for j ≤ 1 (``_ritz2``: a guard's two
        steps, a Lanczos that stops after two; an ``eigh`` of the k×k T costs ≈ 10 µs, 2-3 plain steps at D = 80)."""
        def full():
            low = -(jnp.sum(jnp.abs(alpha)) + 2 * jnp.sum(beta)) - 1.0
            off = jnp.where(idx[:-1] < j, beta[:-1], 0.0)
            t = jnp.diag(jnp.where(idx <= j, alpha, low)) + jnp.diag(off, 1) + jnp.diag(off, -1)
            # T is symmetric by construction, and only its top pair is needed: no symmetrization, no sort (half
            # the cost of ``jnp.linalg.eigh`` at k = 12)
            vecs, vals = lax.linalg.eigh(t, symmetrize_input=False, sort_eigenvalues=False)
            top = jnp.argmax(vals)
            return vals[top], vecs[:, top], b * jnp.abs(vecs[j, top])

        if k < 2:
            return full()

        def small():
            th2, c1, c2 = _ritz2(alpha[0], beta[0], alpha[1])
            first = j == 0
            s = jnp.zeros(k).at[0].set(jnp.where(first, 1.0, c1)).at[1].set(jnp.where(first, 0.0, c2))
            return jnp.where(first, alpha[0], th2), s, b * jnp.abs(jnp.where(first, 1.0, c2))

        return lax.cond(j <= 1, small, full)

    def cycle(v, first, given):
        """One Lanczos cycle from v (``given``: its first product is z0): (θ, y, residual, matvec calls)."""
        def not_done(st):
            return (st[0] < k) & ~st[-1]

        def step(st):
            j, qb, alpha, beta, q, q_prev, b_prev, theta, s, res, _ = st
            qb = qb.at[j].set(q)
            z = matvec(q) if z0 is None else lax.cond(given & (j == 0), lambda: z0, lambda: matvec(q))
            a = q @ z
            z = z - a * q - b_prev * q_prev
            z = z - qb.T @ (qb @ z)
            z = z - qb.T @ (qb @ z)
            b = jnp.linalg.norm(z)
            alpha, beta = alpha.at[j].set(a), beta.at[j].set(b)
            invariant = b <= 1e-13 * (jnp.abs(a) + b_prev + 1e-300)
            look = invariant | (j + 1 >= first) | (j + 1 == k)
            theta, s, res = lax.cond(look, ritz, lambda *_: (theta, s, res), alpha, beta, j, b)
            done = look & (invariant | (res <= rtol * jnp.abs(theta)))
            q_next = jnp.where(invariant, 0.0, z / jnp.where(invariant, 1.0, b))
            return j + 1, qb, alpha, beta, q_next, q, b, theta, s, res, done

        init = (jnp.int32(0), jnp.zeros((k, dim)), jnp.zeros(k), jnp.zeros(k), v / jnp.linalg.norm(v),
                jnp.zeros(dim), jnp.float64(0.0), jnp.float64(0.0), jnp.zeros(k), jnp.float64(jnp.inf),
                jnp.array(False))
        j, qb, *_, theta, s, res, _ = lax.while_loop(not_done, step, init)
        y = qb.T @ s
        return theta, y / jnp.linalg.norm(y), res, j - jnp.where(given, 1, 0)

    def again(state):
        i, theta, _, res, _ = state
        return (i < max_cycles) & ((i == 0) | (res > rtol * jnp.abs(theta)))

    def body(state):
        i, _, y, _, n = state
        first = i == 0
        theta, y, res, j = cycle(y, jnp.where(first, first_check, 1), first & use_z0)
        return i + 1, theta, y, res, n + j

    init = (jnp.int32(0), jnp.float64(0.0), v0, jnp.float64(jnp.inf), jnp.int32(0))
    _, theta, y, res, hvps = lax.while_loop(again, body, init)
    return theta, y, res, hvps


def lanczos_top(matvec, v0, k: int, rtol: float = LANCZOS_RTOL, max_cycles: int = MAX_CYCLES):
    """(θ, y, residual): the largest algebraic eigenpair of the symmetric operator ``matvec`` (traceable), by
    ``lanczos_adaptive`` to the residual ‖A y - θy‖ ≤ rtol·|θ|."""
    theta, y, res, _ = lanczos_adaptive(matvec, v0, k, rtol, max_cycles)
    return theta, y, res


def _step_rule(algorithm: str):
    """(w, L(w), ∇L(w), η, λ) -> w' for one step of ``algorithm`` (the rules of ``verification.simulate``)."""
    def step(w, loss, g, lr, wd):
        if algorithm in ("gdwd", "gd"):
            new = (1.0 - lr * wd) * w - lr * g
        elif algorithm.startswith("ngd"):
            new = w - lr * g / jnp.linalg.norm(g)
        else:
            new = w - lr * g / (2.0 * jnp.sqrt(loss))
        if algorithm.endswith("sphere"):
            new = new / jnp.linalg.norm(new)
        return new
    return step


def _update(algorithm: str, value_and_grad):
    """w -> (w', L(w), ∇L(w)) for one step of ``algorithm`` (``_step_rule``)."""
    rule = _step_rule(algorithm)

    def update(w, lr, wd):
        loss, g = value_and_grad(w)
        return rule(w, loss, g, lr, wd), loss, g
    return update


def _failed_at(t, loss, g, g_zero=None):
    """The step a divergence is reported at, as in the numpy loop: t when L or ∇L is already non-finite at
    w_t (the numpy model raises there), t + 1 when only w_{t+1} is. ``g_zero``: Σᵢ 0·∂ᵢL when the caller has it from a
    reduction of its own (0 when every entry of ∇L is finite, NaN otherwise)."""
    finite = jnp.all(jnp.isfinite(g)) if g_zero is None else jnp.isfinite(g_zero)
    return jnp.where(jnp.isfinite(loss) & finite, t + 1, t)


def clock_step(a, rr, qq, eps):
    """(‖w_{k+1}‖², ‖w̄_{k+1} - w̄_k‖²) (w̄ = w/‖w‖) of a step written w_{k+1} = a·w_k - δ (any a; ``_clock_of``:
    a = 1 - ηλ) from rr = r² = ‖w_k‖², qq = ‖δ‖² and eps = ε = w_k·δ, without the cancellation of the direct formula.
    With δ = βw_k + τ (τ ⊥ w_k, β = ε/r²): w_{k+1} = (a - β)w_k - τ, its part along w̄_k is ρ = (a - β)r = (ar² - ε)/r
    and ‖τ‖² = ‖δ‖² - ε²/r², so N² = ‖w_{k+1}‖² = ρ² + ‖τ‖² (= a²r² - 2aε + ‖δ‖²) and
        ‖w̄_{k+1} - w̄_k‖² = 2 - 2ρ/N = 2‖τ‖²/(N(N + ρ))   (the first form where ρ ≤ 0: a step past 90°).
    For GD+WD on a scale-invariant L, δ = η∇L ⊥ w_k (ε = 0 up to rounding): ‖τ‖² = ‖δ‖², ρ = ar. The direct formula
    ‖w_{k+1}/N - w_k/r‖² subtracts two unit vectors ≈ ‖τ‖/r apart, so rounding at 1e-16 in their entries is a relative
    1e-16·r/‖τ‖ in the clock step; here rr, qq and ε are sums of products (relative error ≲ D·1e-16), ‖τ‖² loses
    a relative 1e-16·‖δ‖²/‖τ‖² (none for a tangential step), and the rest is products and quotients. The error of δ itself
    (``_clock_of``) adds a relative 1e-16·(‖δ‖ + ηλr)/‖τ‖ (tests/test_compiled.py: against 60 digits)."""
    # N² expanded: products and sums only, so that ``_step``'s test of it (read for each of its per-run scalars) fuses
    # with no division or root in it
    nn = a * a * rr - 2.0 * a * eps + qq
    r = jnp.sqrt(rr)
    rho = (a * rr - eps) / r
    tt = jnp.maximum(qq - eps * eps / rr, 0.0)  # (≥ 0 by Cauchy–Schwarz; rounding can take a radial step below)
    n = jnp.sqrt(nn)
    return nn, jnp.where(rho > 0, 2.0 * tt / (n * (n + jnp.where(rho > 0, rho, 0.0))), 2.0 - 2.0 * rho / n)


def _sums(*pairs):
    """Σᵢ xᵢyᵢ over the last axis for each (x, y) in ``pairs``, in one variadic reduction (one kernel)."""
    zero = jnp.zeros((), pairs[0][0].dtype)
    return lax.reduce(tuple(x * y for x, y in pairs), (zero,) * len(pairs),
                      lambda p, q: tuple(u + v for u, v in zip(p, q)), (pairs[0][0].ndim - 1,))


def _clock_delta(x, nx, lr, wd):
    """δ of the step x = w_k -> nx = w_{k+1} written w_{k+1} = (1 - ηλ)w_k - δ: δ = (w_k - w_{k+1}) - ηλ·w_k
    (w_k - w_{k+1} is exact where the two entries are within a factor 2, and ηλ·w_k is small: δ is off by
    ≲ 1e-16·(|δ| + ηλ|w_k|) per entry)."""
    return (x - nx) - (lr * wd) * x


def _clock_of(x, nx, lr, wd):
    """(‖w_{k+1}‖², ‖w̄_{k+1} - w̄_k‖²) of the step x = w_k -> nx = w_{k+1} by ``clock_step``, a = 1 - ηλ and δ
    = ``_clock_delta``, from ‖w_k‖², ‖δ‖² and w_k·δ in one reduction over w_k and w_{k+1}."""
    dl = _clock_delta(x, nx, lr, wd)
    rr, qq, eps = _sums((x, x), (dl, dl), (x, dl))
    return clock_step(1.0 - lr * wd, rr, qq, eps)


def _step(algorithm: str, value_and_grad):
    """(x, st, lr, wd) -> (x', st'): one step of ``algorithm`` in the compiled loop (``_chunk``'s ``body``) with its
    per-run scalars in one array st = (live: 1, or NaN once the run has stopped; the clock s; the steps taken), updated by
    one select (under ``vmap`` each selected per-run array is one more small kernel per step). ‖w_{k+1}‖² and the clock
    step by ``_clock_of``: one reduction over w_k and w_{k+1} (one kernel; the direct formula takes two, with a root
    between). The step is taken when
    0 < ‖w_{k+1}‖² < ∞ (then every entry of w_{k+1} and the clock step, a quotient by N(N + ρ) with N, ρ > 0 or
    2 - 2ρ/N, are finite: the test needs no division or root, which XLA does not fuse into a select that reads it more
    than once);
    else x stays, the count stops and ``live`` becomes NaN, which stops every later step. (δ is not formed as
    a·w_k - w_{k+1}: XLA would share a·w_k with the update and fuse the update differently in a batch than in a single
    run, whose iterates then differ in the last bit.)"""
    update = _update(algorithm, value_and_grad)

    def step(x, st, lr, wd):
        live, s, taken = st[0], st[1], st[2]
        nx = update(x, lr, wd)[0]
        nn, dd = _clock_of(x, nx, lr, wd)
        good = ~jnp.isnan(live) & (nn > 0) & (nn < jnp.inf)  # (‖w_k‖² > 0: the last step was taken)
        st1 = jnp.where(good, jnp.stack([1.0, s + dd, taken + 1.0]), jnp.stack([jnp.nan, s, taken]))
        return jnp.where(jnp.isnan(st1[0]), x, nx), st1

    return step


def guard_directions(t, dim: int, count: int = 1):
    """``count`` fresh random unit directions (rows) for the records of a chunk starting at step t: a function of
    (t, D) only, the same for every run and every call; one PRNG call per chunk."""
    xi = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(0), t), (count, dim), dtype=jnp.float64)
    return xi / jnp.linalg.norm(xi, axis=1, keepdims=True)


#: guard directions drawn per chunk (record i of a chunk uses number i mod GUARD_BLOCK)
GUARD_BLOCK = 8
#: the record count at which the Lanczos residual is first looked at is the last record's count, and one less at
#: every PROBE_EVERY-th record (so that it follows a falling count)
PROBE_EVERY = 8


def warm_start(v, v_prev):
    """The start of a record's Lanczos from the last two records' eigenvectors of the same phase (traceable):
    the linear extrapolation 2v - v_prev, or v when there is no usable history (v_prev = v after a cold start, a
    restart or a branch change, see ``next_history``). The eigenvector moves smoothly between records, so the
    extrapolation leaves an O(Δ²) error where v alone leaves O(Δ) (Δ: its change per record)."""
    if v_prev is None:
        return v
    return 2.0 * v - v_prev


def next_history(y, v, hvps, k: int):
    """(y, the previous vector to extrapolate from at the next record): v when y continues v (one Lanczos cycle,
    no restart, and y·v ≥ 1/2: the same branch), else y itself (no extrapolation next time)."""
    keep = (hvps <= k) & (y @ v >= 0.5)
    return jnp.stack([y, jnp.where(keep, v, y)])


def warm_top(matvec, v, m, xi, k: int, probe=False, guard_eps: float | None = None, v_prev=None,
             rtol: float | None = None):
    """One λ₁ record (traceable): (θ, y, m', hvps) = ``lanczos_adaptive`` from ``warm_start(v, v_prev)`` plus
    ``guard_eps`` (default GUARD_EPS) times the unit direction xi, to the residual ``rtol``·|θ| (default
    WARM_RTOL), its residual first looked at after m steps
    (m - 1 when ``probe``; m: the HVPs of the last record); m' is the count to pass to the next record (1 after a
    restart: then every step is looked at). y's sign is that of v (y·v ≥ 0), so that records can be
    extrapolated."""
    eps = GUARD_EPS if guard_eps is None else guard_eps
    start = warm_start(v, v_prev)
    theta, y, _, hvps = lanczos_adaptive(matvec, start + eps * xi, k, WARM_RTOL if rtol is None else rtol,
                                         first_check=jnp.maximum(m - probe, 1))
    y = jnp.where(y @ v < 0, -y, y)
    return theta, y, jnp.where(hvps <= k, hvps, 1).astype(jnp.int32), hvps.astype(jnp.int32)


#: the state of one phase's λ₁ tracker (``track_top``): rows of the vector part, and fields of the scalar part
TRACK_ROWS = 3  # y_n (the last record's eigenvector), y_{n-1}, g (the second branch's vector)
TRACK_FIELDS = ("m", "mu", "wait", "gap", "since", "valid")
#: records between two looks at the second branch are at most this many (``track_top``: the guard's schedule)
GUARD_MAX_WAIT = 16
#: the guard's schedule assumes the gap λ₁ - λ₂ closes at most this many times as fast as it did between the last
#: two looks (``track_top``)
GUARD_SAFETY = 4.0


def initial_tracks(dim: int, phases: int):
    """(vectors (phases, TRACK_ROWS, D), scalars (phases, len(TRACK_FIELDS))): the λ₁ trackers of a run before
    its first record: fixed random vectors (a function of D only; the first record runs a cold restarted Lanczos
    from row 0, and the second-branch vector g starts from another one), ``m`` = 1 (the residual looked at every
    step), ``valid`` = 0 (no history to extrapolate from), ``wait`` = 0 (the second branch is looked at first)."""
    rng = np.random.default_rng([dim, 1])
    cold, other = rng.standard_normal(dim), rng.standard_normal(dim)
    cold /= np.linalg.norm(cold)
    other -= (other @ cold) * cold
    other = other / np.linalg.norm(other) if dim > 1 else cold
    vs = np.tile(np.stack([cold, cold, other]), (phases, 1, 1))
    ms = np.zeros((phases, len(TRACK_FIELDS)))
    ms[:, TRACK_FIELDS.index("m")] = 1.0
    return vs, ms


def _ritz2(a1, b1, a2):
    """The top eigenpair of the symmetric 2×2 [[a1, b1], [b1, a2]] in closed form: (θ, c1, c2), c1 ≥ 0."""
    half = 0.5 * (a1 - a2)
    root = jnp.sqrt(half * half + b1 * b1)
    theta = 0.5 * (a1 + a2) + root
    # (c1, c2) ∝ (b1, θ - a1) or (θ - a2, b1), whichever is better conditioned
    x1, x2 = jnp.where(half >= 0, root + half, b1), jnp.where(half >= 0, b1, root - half)
    norm = jnp.sqrt(x1 * x1 + x2 * x2)
    ok = norm > 0
    c1, c2 = jnp.where(ok, x1 / jnp.where(ok, norm, 1.0), 1.0), jnp.where(ok, x2 / jnp.where(ok, norm, 1.0), 0.0)
    sign = jnp.where(c1 < 0, -1.0, 1.0)
    return theta, sign * c1, sign * c2


def track_top(matvec, vs, st, k: int, rtol: float = WARM_RTOL, slow_matvec=None):
    """One λ₁ record by the tracker (traceable): (θ, vs', st', hvps) from the phase's state ``vs`` (rows: y_n,
    y_{n-1}, g) and ``st`` (``TRACK_FIELDS``).

    **Rayleigh record (one HVP).** The start u = 2y_n - y_{n-1} (``warm_start``, normalized; y_n itself without a
    history) and its Rayleigh quotient θ = uᵀ∇²L u with the residual r = ∇²L u - θu. For any unit u and any
    α ≥ λ₂ with α < θ, Kato–Temple gives 0 ≤ λ₁ - θ ≤ ‖r‖²/(θ - α); with λ₁ - λ₂ ≥ GAP_RTOL·λ₁ (the theory's
    assumption; the same bound as the Lanczos stop of ``warm_top``) and ‖r‖ ≤ ``rtol``·|θ| = WARM_RTOL·|θ| (so θ
    is within ‖r‖ of λ₁ and θ - λ₂ ≥ (GAP_RTOL - WARM_RTOL)·λ₁) this is ≤ LAM_RTOL·λ₁ to first order. The record is θ when ‖r‖ ≤ rtol·|θ|, and the vector kept is the shifted power step
    u + r/(θ - μ) = (∇²L - μ)u/(θ - μ), which damps an error along eigenvalue λᵢ by (λᵢ - μ)/(θ - μ): μ is the shift
    that reproduced the correction of the last full Lanczos (below), the centre of the spectrum the start's error
    lies in. (Extrapolating from the uncorrected u would add up the errors of the starts.)
    **Full record.** Otherwise (or without a history) ``lanczos_adaptive`` from u to the same residual, and μ is
    refitted: μ = θ - ‖r‖²/(r·d), d = y/(y·u) - u the Lanczos correction of u (clamped to [min(0, θ/2) - |θ|, θ/2]).
    **The second branch (the crossing guard).** A tracked vector can stay an exact eigenvector of a branch that
    another one overtakes (a true crossing, no coupling): its residual stays 0 and no Rayleigh quotient of it sees
    the new top. So a second vector g ⊥ y follows the top of the rest of the spectrum: at a guard record it takes
    one step of a two-vector Lanczos of (I - uuᵀ)∇²L(I - uuᵀ) from g (two HVPs; the Ritz value θ_g and its
    residual ρ_g), a restarted Lanczos across records that converges to λ₂'s eigenvector as the records go on.
    If θ_g > θ the tracked branch is no longer the top: the full Lanczos starts from g instead of u, gives the new
    λ₁, and the roles swap (g takes the old vector). The gap estimate G = θ - θ_g - ρ_g and the rate c per record at
    which θ - θ_g fell between the last two guard records schedule the next guard record after
    clip(⌊G/(GUARD_SAFETY·c)⌋, 1, GUARD_MAX_WAIT) records (every record while G ≤ 0, e.g. before g has converged).
    What is guaranteed: every record is a Rayleigh quotient or Ritz value, so θ ≤ λ₁ (never above); when θ is on
    the top branch, |θ - λ₁| ≤ LAM_RTOL·λ₁ under the gap assumption (above); a branch already followed by g that
    overtakes λ₁ is found at the first guard record after it rises above θ. Not guaranteed: that g has converged
    to λ₂'s branch (a branch rising from deep in the spectrum is found when g reaches it), and that the gap does
    not close faster than GUARD_SAFETY times the rate measured before (a record may follow the old branch for up to
    GUARD_MAX_WAIT - 1 records after a crossing that comes faster).
    **Compiled form.** ``track_start`` (u), the Rayleigh product z = ∇²L u by ``matvec`` (the chunk: fused with the
    step's gradient, see ``_chunk``), ``track_fast`` (the Rayleigh record and its test) and ``track_slow``; one
    ``lax.cond``: a Rayleigh record between guard records (``fast``) keeps u + r/(θ - μ) and counts down the guard's
    wait, nothing else; every other record (``slow``: a guard record, a cold start, a residual above the bound) runs
    the guard (``_guard``: two steps of P∇²L P from g, when ``look``) and then, unless the Rayleigh record is accepted,
    ``lanczos_adaptive``, on ``slow_matvec()`` when given (the chunk: the linearization of ∇L at x, made on that
    branch only). Three traced HVPs in all; the common record executes one HVP and a few vector operations (at
    D = 16 the record's cost is the count of XLA operations it executes, not its flops)."""
    u = track_direction(vs, st)
    z = matvec(u)
    fast_ok, fast = track_fast(u, z, vs, st, rtol)
    return lax.cond(fast_ok, lambda: fast,
                    lambda: track_slow(matvec if slow_matvec is None else slow_matvec(), u, z, vs, st, k, rtol))


def track_start(vs, st):
    """The unit start u of a tracked record (``track_top``): 2y_n - y_{n-1} normalized (``warm_start``), y_n
    itself without a history."""
    u = track_direction(vs, st)
    return u / jnp.linalg.norm(u)


def track_direction(vs, st):
    """``track_start`` before its normalization (what the records multiply by ∇²L: the product is linear in it, and
    ``track_fast`` normalizes both in its first reduction)."""
    y0, y1 = vs[0], vs[1]
    return jnp.where(st[TRACK_FIELDS.index("valid")] > 0, warm_start(y0, y1), y0)


def track_fast(u, z, vs, st, rtol: float = WARM_RTOL, sums=None):
    """(accepted, (θ, vs', st', 1)): the Rayleigh record of ``track_top`` from the start direction u (``track_start``
    up to a positive factor: ``track_direction``) and z = ∇²L u: with û = u/‖u‖, θ = ûᵀ∇²L û = uᵀz/uᵀu, accepted when
    there is a history, the record is not a guard record and ‖r‖ ≤ ``rtol``·|θ|, r = ∇²L û - θû = (z - θu)/‖u‖; the
    vector kept is the shifted power step (``_rayleigh_vector``). Two reductions: (uᵀu, uᵀz, uᵀy_n) (``sums``: the
    three when the caller has them from a reduction of its own) and (‖r‖², rᵀy_n, ûᵀr), from which the power step's
    norm and its sign against y_n follow (r is formed explicitly: ‖r‖² as ‖z‖²/uᵀu - θ² would cancel to round-off
    at the bound). Its outputs are computed whether or not it is accepted (``track_slow`` runs otherwise)."""
    f = {name: i for i, name in enumerate(TRACK_FIELDS)}
    y0, g = vs[0], vs[2]
    uu, uz, uy = _sums((u, u), (u, z), (u, y0)) if sums is None else sums
    inv = lax.rsqrt(uu)
    theta = uz / uu
    un = u * inv
    r = z * inv - theta * un
    rr, ry, ur = _sums((r, r), (r, y0), (un, r))
    rho = jnp.sqrt(rr)
    wait, has_hist = st[f["wait"]], st[f["valid"]] > 0
    # the shifted power step u + r/(θ - μ) (``_rayleigh_vector``), its norm from the sums: ‖û + cr‖² = ûᵀû + 2c ûᵀr +
    # c²‖r‖², and its sign such that yᵀy_n ≥ 0
    shift = theta - st[f["mu"]]
    c = jnp.where(shift > 0, 1.0 / jnp.where(shift > 0, shift, 1.0), 0.0)
    scale = lax.rsqrt(uu * inv * inv + 2.0 * c * ur + c * c * rr)
    scale = jnp.where(uy * inv + c * ry < 0, -scale, scale)
    y = (un + c * r) * scale
    # (wait - 1, since + 1) as one addition of a constant vector: one fused operation where two updates were two kernels
    st1 = st + jnp.zeros(len(TRACK_FIELDS)).at[f["wait"]].set(-1.0).at[f["since"]].set(1.0)
    # the bound at the theory's gap GAP_RTOL·λ₁, not at the guard's measured one: a bound √(G/(GAP_RTOL·λ₁)) times
    # looser (tried 2026-12-05, 22% fewer HVPs on mf D = 500 from its kicked start) let records 50-226× LAM_RTOL off
    # through when a branch g does not follow rises between two looks (an independent review's designed paths):
    # the accuracy of a record would rest on the guard's assumptions, which only a crossing's detection should
    accepted = has_hist & (wait > 0) & (rho <= rtol * jnp.abs(theta))
    return accepted, (theta, jnp.stack([y, y0, g]), st1, jnp.int32(1))


def _rayleigh_vector(u, theta, r, mu):
    """The shifted power step u + r/(θ - μ) (normalized) that a Rayleigh record keeps."""
    shift = theta - mu
    y = u + r / jnp.where(shift > 0, shift, jnp.inf)
    return y / jnp.linalg.norm(y)


def guard_start(u, g):
    """The guard's start gd = Pg/‖Pg‖, P = I - ûûᵀ, from the second-branch vector g (û = u/‖u‖)."""
    u = u / jnp.linalg.norm(u)
    gd = g - (g @ u) * u
    return gd / jnp.maximum(jnp.linalg.norm(gd), 1e-300)


def track_slow(mv, u, z, vs, st, k: int, rtol: float = WARM_RTOL):
    """(θ, vs', st', hvps): a record of ``track_top`` that is not an accepted Rayleigh record between guard records
    (a guard record, a cold start, a residual above the bound), on the operator ``mv`` (∇²L at the record's point),
    from the start direction u (``track_direction``: normalized here) and z = mv(u): the guard, then the Rayleigh
    record or a full Lanczos."""
    f = {name: i for i, name in enumerate(TRACK_FIELDS)}
    inv = 1.0 / jnp.linalg.norm(u)
    u, z = u * inv, z * inv
    y0, g = vs[0], vs[2]
    m, mu, wait, gap_prev, since, valid = (st[f[name]] for name in TRACK_FIELDS)
    has_hist = valid > 0
    theta = u @ z
    r = z - theta * u
    rho = jnp.linalg.norm(r)
    look = (wait <= 0) & has_hist  # (not at a cold start: u is not yet an eigenvector to deflate)
    gd = guard_start(u, g)

    # the guard (when ``look``): two Lanczos steps of P∇²L P from g, the Ritz pair (θ_g, g') of span{g, P∇²L g} and
    # its residual ρ_g (``_guard``); else none
    th_g, g1, rho_g, g_hvps = lax.cond(look, lambda: _guard(mv, u, gd),
                                       lambda: (jnp.float64(-jnp.inf), g, jnp.float64(jnp.inf), jnp.int32(0)))
    crossed = look & (th_g > theta)  # a Rayleigh quotient of the rest above θ: the tracked branch is not the top
    ok = has_hist & ~crossed & (rho <= rtol * jnp.abs(theta))
    # the record's Lanczos from u (its first product is z: no further HVP), or from g' after a crossing, none when the
    # Rayleigh record is accepted; the residual first looked at after the count of the last full record less one (an
    # eigendecomposition of T per step costs more than an HVP at small D)
    th, y, _, hvps = lax.cond(
        ok, lambda: (theta, u, jnp.float64(0.0), jnp.int32(0)),
        lambda: lanczos_adaptive(mv, jnp.where(crossed, g1, u), k, rtol, max_cycles=MAX_CYCLES,
                                 first_check=jnp.where(crossed, 2, jnp.maximum(m - 1, 2)), z0=z, use_z0=~crossed))
    y = jnp.where(y @ u < 0, -y, y)
    d = y / jnp.maximum(y @ u, 1e-300) - u
    rd = r @ d
    fit = theta - rho * rho / jnp.where(rd > 0, rd, 1.0)
    new_mu = jnp.where((rd > 0) & ~crossed, jnp.clip(fit, th - 3.0 * jnp.abs(th), th - 0.5 * jnp.abs(th)), mu)
    steps = hvps + jnp.where(crossed, 0, 1)  # Lanczos steps (from u the first one is z: not a matvec call)
    same = has_hist & (steps <= k) & (y @ y0 >= 0.5)  # one cycle, the same branch: keep extrapolating
    count = jnp.where(steps <= k, steps, 1)  # m of the next full record (1 after a restart: look at every step)
    theta1 = jnp.where(ok, theta, th)
    y = jnp.where(ok, _rayleigh_vector(u, theta, r, mu), y)
    mu1 = jnp.where(ok, mu, new_mu)
    hvps = jnp.where(ok, 1, hvps + 1).astype(jnp.int32)
    keep = jnp.where(ok, has_hist, same)
    m1 = jnp.where(ok, m, count.astype(st.dtype))
    y = jnp.where(y @ y0 < 0, -y, y)
    g1 = jnp.where(crossed, u, g1)  # after a crossing the old branch is the second one
    # the rate of closing from θ - θ_g (θ_g also rises while g converges: that only brings the next look closer),
    # the distance from G = θ - θ_g - ρ_g (an unconverged g has a large ρ_g: looked at again at the next record)
    spread = theta1 - th_g
    gap = spread - rho_g
    rate = jnp.maximum(gap_prev - spread, 0.0) / jnp.maximum(since, 1.0)
    steps = jnp.where(rate > 0, gap / jnp.where(rate > 0, GUARD_SAFETY * rate, 1.0), GUARD_MAX_WAIT)
    # a first positive gap (no rate yet): look again after 2 records to measure the rate
    next_wait = jnp.where(gap > 0, jnp.where(gap_prev > 0, jnp.clip(jnp.floor(steps), 1, GUARD_MAX_WAIT), 2.0),
                          1.0)
    wait1 = jnp.where(look, next_wait - 1, wait - 1)
    gap1 = jnp.where(look, spread, gap_prev)
    # measured: a first positive gap, or g not converged)
    since1 = jnp.where(look, 1.0, since + 1)
    # the history: (y, y_n) when y continues y_n, else (y, y) (``warm_start`` then starts from y itself)
    vs1 = jnp.stack([y, jnp.where(keep, y0, y), g1])
    st1 = st.at[f["m"]].set(m1).at[f["mu"]].set(mu1).at[f["wait"]].set(wait1).at[f["gap"]].set(gap1)
    st1 = st1.at[f["since"]].set(since1).at[f["valid"]].set(1.0)
    return theta1, vs1, st1, hvps + g_hvps


def _guard(mv, u, gd):
    """(θ_g, g', ρ_g, HVPs): the crossing guard of ``track_slow``, two Lanczos steps of P∇²L P (P = I - uuᵀ, ∇²L by
    ``mv``) from the unit gd ⊥ u, written out: q₁ = gd, α₁ = q₁ᵀAq₁, β₁q₂ = Aq₁ - α₁q₁, α₂ = q₂ᵀAq₂, β₂ = ‖Aq₂ - α₂q₂ -
    β₁q₁‖ (each new vector orthogonalized twice against the basis, as ``lanczos_adaptive``), the top Ritz pair (θ_g,
    s) of [[α₁, β₁], [β₁, α₂]] (``_ritz2``), g' = s₁q₁ + s₂q₂ with g'ᵀgd ≥ 0, ρ_g = β₂|s₂|; on an invariant q₁ (β₁ ≈ 0)
    the pair (α₁, q₁) with ρ_g = β₁ after one HVP. The same steps as ``lanczos_adaptive`` from gd with rtol = ∞ and one
    cycle (the guard before 2026-12-05) without its restart loop, step test and k×k eigendecomposition: a loop of two
    passes around one product (``mv`` is traced once), the rest straight-line (round-off aside the same pair)."""
    def op(v):
        pv = v - (u @ v) * u
        av = mv(pv)
        return av - (u @ av) * u

    def step(c):
        """Pass j: the product of the current vector q, its α and β, and the next vector (after pass 0)."""
        j, q, q1, a1, b1, invariant, a2, b2 = c
        z = op(q)
        a = q @ z
        prev = jnp.where(j == 1, q1, 0.0)
        z = z - a * q - jnp.where(j == 1, b1, 0.0) * prev
        for _ in range(2):
            c1, c2 = _sums((prev, z), (q, z))
            z = z - c1 * prev - c2 * q
        b = jnp.linalg.norm(z)
        first = j == 0
        inv = b <= 1e-13 * (jnp.abs(a) + 1e-300)
        q_next = jnp.where(inv, 0.0, z / jnp.where(inv, 1.0, b))
        return (j + 1, jnp.where(first, q_next, q), q1, jnp.where(first, a, a1), jnp.where(first, b, b1),
                jnp.where(first, inv, invariant), jnp.where(first, a2, a), jnp.where(first, b2, b))

    zero = jnp.float64(0.0)
    _, q2, q1, a1, b1, invariant, a2, b2 = lax.while_loop(
        lambda c: (c[0] < 2) & ~c[5], step, (jnp.int32(0), gd, gd, zero, zero, jnp.array(False), zero, zero))
    th2, s1, s2 = _ritz2(a1, b1, a2)
    theta = jnp.where(invariant, a1, th2)
    s1, s2 = jnp.where(invariant, 1.0, s1), jnp.where(invariant, 0.0, s2)
    res = jnp.where(invariant, b1, b2 * jnp.abs(s2))
    y = s1 * q1 + s2 * q2
    y = y / jnp.linalg.norm(y)
    return theta, jnp.where(y @ gd < 0, -y, y), res, jnp.where(invariant, 1, 2).astype(jnp.int32)


@lru_cache(maxsize=64)
def _slots(dim: int, keep_w: bool) -> int:
    """Record slots of a chunk: RECORDS_PER_CALL, fewer when w_t is kept (≤ ITERATE_FLOATS floats; at least 8)."""
    return max(8, min(RECORDS_PER_CALL, ITERATE_FLOATS // dim)) if keep_w else RECORDS_PER_CALL


@lru_cache(maxsize=64)
def _chunk(model, algorithm: str, pairs: bool, batched: bool, dense: bool, keep_w: bool,
           method: tuple = ("extrapolated", None, None)):
    """The compiled chunk: ``lax.scan`` over ``_slots`` record slots. Slot i (when ``active[i]``) records
    at w_t and takes ``ns[i]`` steps (0: record only). ``ns``/``active`` are traced and shared by the batch, so
    one compilation serves every stride; ``dense``: the clock of every step into a CLOCK_BUF buffer at index
    t - t₀ (t₀: the chunk's first step); ``keep_w``: w_t at each record. ``batched``: vmapped over runs. ``method``:
    (WARM_START, WARM_RTOL, GUARD_EPS), the module's values when ``simulate_batch`` is called."""
    value_and_grad, grad = jax.value_and_grad(model.jax_loss), jax.grad(model.jax_loss)
    update, step, rule = _update(algorithm, value_and_grad), _step(algorithm, value_and_grad), _step_rule(algorithm)
    dim = model.dim
    k = min(dim, KRYLOV_DIM)
    size = CLOCK_BUF if dense else 1
    start, rtol, guard_eps = method

    def top_pair(x, hist, st, xi, probe):
        """λ₁ at x from the phase's tracker state (``initial_tracks``): (θ, hist', st', hvps)."""
        if start == "tracked":
            # the Rayleigh record's one HVP by forward-over-reverse at x (fused with its forward pass); the guard and
            # a full Lanczos by the linearization of ∇L at x, made on that branch only
            return track_top(lambda v: jax.jvp(grad, (x,), (v,))[1], hist, st, k, rtol,
                             slow_matvec=lambda: jax.linearize(grad, x)[1])
        # ∇²L(x)u by the linearization of ∇L at x: its primal part (the forward pass) is computed once per record
        matvec = jax.linearize(grad, x)[1]
        m = st[0].astype(jnp.int32)  # the method before the tracker: warm_top at every record (TRACK_FIELDS "m")
        theta, y, m1, hvps = warm_top(matvec, hist[0], m, xi, k, probe, guard_eps,
                                      v_prev=hist[1] if start == "extrapolated" else None, rtol=rtol)
        return theta, hist.at[:2].set(next_history(y, hist[0], hvps, k)), st.at[0].set(m1), hvps

    def measure(w, new, vs, ms, xi, probe, odd):
        """λ₁ at w_t (and the midpoint, w_{t+1}), each warm from the previous record's vector of the same phase
        of the period-2 oscillation (an odd stride swaps w_t's and w_{t+1}'s), one after the other in a
        ``lax.map`` over the three points (a vmap would run every branch of the Lanczos loop; the map traces and
        compiles the record once, not once per point)."""
        if pairs:
            order = jnp.where(odd, jnp.array([2, 1, 0]), jnp.array([0, 1, 2]))
            points = jnp.stack([w, 0.5 * (w + new), new])
            lams, ys, m1, hvps = lax.map(lambda a: top_pair(a[0], a[1], a[2], xi, probe),
                                         (points, vs[order], ms[order]))
            return lams, ys, m1, jnp.sum(hvps).astype(jnp.int32)
        theta, y, m1, hvps = top_pair(w, vs[0], ms[0], xi, probe)
        return jnp.array([theta, jnp.nan, jnp.nan]), y[None], m1[None], hvps

    def measured(ok, w, new, vs, ms, xi, probe, odd):
        """``measure`` where the run is still finite (else NaN and the history unchanged); under ``vmap`` (a batch)
        one run after the other (``sequential_vmap``): each run's Lanczos stops at its own count and the branches
        stay branches, where a vmapped Lanczos ran every run to the largest count of the batch with batched HVPs
        (D = 500, B = 16: 216 ms for a cold λ₁ of 16 runs, 37 ms one after the other)."""
        return lax.cond(ok, lambda: measure(w, new, vs, ms, xi, probe, odd),
                        lambda: (jnp.full(3, jnp.nan), vs, ms, jnp.int32(0)))

    measured = jax.custom_batching.sequential_vmap(measured)

    # the fused record (pairs=False, the tracker): the Rayleigh product ∇²L(w_t)u and the step's L(w_t), ∇L(w_t) from
    # one forward-over-reverse pass (the primal of the JVP is the gradient the step needs anyway: the record's one
    # HVP costs its tangent part only), the Rayleigh record's test and vector at top level (vectorized over a batch),
    # and only the records that fail it go through ``track_slow``, one run after the other under ``vmap``. A single run
    # (not batched) takes the pass as ``jax.linearize`` and one product of it (as fast as the JVP: mf, D = 80 and 500),
    # and its slow record (the guard's two products, a Lanczos) applies the same linearization: no second forward and
    # backward pass at a look (a batch's slow record, under ``sequential_vmap``, linearizes again)
    fused = start == "tracked" and not pairs

    def slow_record(need, x, u, z, v, st, fast):
        return lax.cond(need, lambda: track_slow(jax.linearize(grad, x)[1], u, z, v, st, k, rtol), lambda: fast)

    slow_record = jax.custom_batching.sequential_vmap(slow_record)

    def fused_record(w, vs, ms, lr, wd):
        """(w_{t+1}, L(w_t), ∇L(w_t), (‖w_t‖², ‖∇L‖², ‖w_{t+1}‖², the clock's step, Σ 0·∂ᵢL), the λ₁ record's (u, z,
        accepted, (θ, vs', ms', hvps), v -> ∇²L(w_t)v or None) before the finiteness test): the step and the tracked
        record from one JVP (a linearization in a single run), and the sums the record reads (the row's, the clock's,
        the finiteness tests' and ``track_fast``'s first three) in one reduction (``_sums``: one kernel where they were
        nine)."""
        u = track_direction(vs[0], ms[0])
        if batched:
            (loss, g), (_, z) = jax.jvp(value_and_grad, (w,), (u,))
            hvp = None
        else:  # the linearization, whose products a slow record (the guard's, a Lanczos's) takes without a new one
            (loss, g), lin = jax.linearize(value_and_grad, w)
            hvp = lambda v: lin(v)[1]  # noqa: E731
            z = hvp(u)
        new = rule(w, loss, g, lr, wd)
        dl = _clock_delta(w, new, lr, wd)
        # (and Σ 0·∂ᵢL: NaN when an entry of ∇L is not finite, ``_failed_at``)
        ww, gg, nn, qq, eps, uu, uz, uy, g_zero = _sums((w, w), (g, g), (new, new), (dl, dl), (w, dl), (u, u), (u, z),
                                                        (u, vs[0][0]), (g, jnp.zeros_like(g)))
        fast_ok, fast = track_fast(u, z, vs[0], ms[0], rtol, sums=(uu, uz, uy))
        return new, loss, g, (ww, gg, nn, clock_step(1.0 - lr * wd, ww, qq, eps)[1], g_zero), (u, z, fast_ok, fast, hvp)

    def run_one(w, clock, t, fail, vs, ms, lr, wd, ns, active, every, xis):
        """One run's chunk (``run`` maps it over a batch)."""
        t0 = t
        odd = every % 2 == 1

        def record(carry, n, i):
            """The slot's record at w_t, then its n steps."""
            w, clock, t, fail, vs, ms, buf = carry
            probe = (t // every) % PROBE_EVERY == PROBE_EVERY - 1
            if fused:
                new, loss, g, (ww, gg, nn, dclock, g_zero), (u, z, fast_ok, fast, hvp) = fused_record(w, vs, ms, lr,
                                                                                                       wd)
            else:
                new, loss, g = update(w, lr, wd)
                ww, gg, nn, dclock, g_zero = w @ w, g @ g, new @ new, _clock_of(w, new, lr, wd)[1], None
            # a failure in the last slot's loop (fail = -2 - k, ``body``) is settled here, where L and ∇L are computed
            # at the run's last finite iterate w_k anyway: k when they are not finite there, k + 1 when only w_{k+1} is
            fail = jnp.where(fail <= -2, _failed_at(-2 - fail, loss, g, g_zero), fail)
            ok = (fail < 0) & jnp.isfinite(nn)  # isfinite(‖w_{t+1}‖²): every entry of w_{t+1} finite
            if fused:
                if batched:
                    theta, v1, s1, hvps = slow_record(ok & ~fast_ok, w, u, z, vs[0], ms[0], fast)
                else:
                    theta, v1, s1, hvps = lax.cond(ok & ~fast_ok, lambda: track_slow(hvp, u, z, vs[0], ms[0], k, rtol),
                                                   lambda: fast)
                lams, vs1, ms1, hvps = (jnp.stack([theta, jnp.nan, jnp.nan]), v1[None], s1[None],
                                        jnp.where(ok, hvps, 0))
                lams = jnp.where(ok, lams, jnp.nan)
            else:
                lams, vs1, ms1, hvps = measured(ok, w, new, vs, ms, xis[i % GUARD_BLOCK], probe, odd)
            vs, ms = jnp.where(ok, vs1, vs), jnp.where(ok, ms1, ms)
            # the row's scalars in one float64 row (one write per record where there were ten; t and the counts are
            # exact as floats below 2^53), split into the record arrays once per chunk
            rec = (jnp.stack([t.astype(jnp.float64), loss, ww, lams[0], lams[1], lams[2], jnp.sqrt(gg), clock,
                              ok.astype(jnp.float64), hvps.astype(jnp.float64)]), w if keep_w else jnp.zeros(0))
            fail = jnp.where((fail < 0) & ~ok, _failed_at(t, loss, g, g_zero), fail)
            go = ok & (n > 0)
            if dense:
                buf = buf.at[t - t0].set(clock, mode="drop")
            w1 = jnp.where(go, new, w)
            clock1 = clock + jnp.where(go, dclock, 0.0)

            def body(i, carry):
                """Step i of the slot, from w_k, k = t + i (``step``): a run whose w_{k+1} is not finite stays at w_k
                and its count of steps taken stops, which dates the failure after the loop (no L or finiteness test of
                ∇L per step). The loop index is read only by the dense clock (each carried or selected per-run scalar
                is one more small kernel per step under ``vmap``)."""
                x, st, b = carry
                if dense:
                    b = b.at[t + i - t0].set(st[1], mode="drop")
                x, st = step(x, st, lr, wd)
                return x, st, b

            # the steps t + 1 … t + n - 1 (w_{t+1} is taken above); n = 0: none, t stays. A run not stepping on (failed,
            # or n = 0) enters with live = NaN, so that no step of the loop is taken
            st1 = jnp.stack([jnp.where(go, 1.0, jnp.nan), clock1, jnp.float64(0.0)])  # ``_step``'s state
            w, st, buf = lax.fori_loop(1, jnp.maximum(n, 1), body, (w1, st1, buf))
            clock, taken = st[1], st[2].astype(t.dtype)
            # the first step of the loop not taken, k = t + 1 + taken, failed (fail = -2 - k, settled at the next record)
            fail = jnp.where((fail == -1) & (taken < jnp.maximum(n, 1) - 1), -2 - (t + 1 + taken), fail)
            t = t + n
            return (w, clock, t, fail, vs, ms, buf), rec

        def slot(i, carry):
            """Slot i: its record into row i of the record buffers, then its steps."""
            state, rows = carry
            state, rec = record(state, ns[i], i)
            return state, tuple(r.at[i].set(x, mode="promise_in_bounds") for r, x in zip(rows, rec))

        # the used slots only (``active`` is a prefix of the slots and shared by the batch, so the loop stays a loop
        # under ``vmap``), where a scan ran every slot, the unused ones through an idle ``lax.cond`` branch. Rows past
        # the used slots keep their fill (t = -1, NaN, ok False) and the host never reads them.
        slots = ns.shape[0]
        fill = jnp.array([-1.0] + [jnp.nan] * 7 + [0.0, 0.0])  # t = -1, NaN, ok False, no HVPs
        rows = (jnp.tile(fill, (slots, 1)), jnp.zeros((slots, dim) if keep_w else (slots, 0)))
        (w, clock, t, fail, vs, ms, buf), (tab, ws) = lax.fori_loop(
            0, jnp.sum(active), slot, ((w, clock, t, fail, vs, ms, jnp.zeros(size)), rows))
        recs = ((tab[:, 0].astype(t.dtype),) + tuple(tab[:, i] for i in range(1, 8))
                + (tab[:, 8] > 0, tab[:, 9].astype(jnp.int32), ws))
        return (w, clock, t, fail, vs, ms), recs, buf

    def run(w, clock, t, fail, vs, ms, lr, wd, ns, active, every):
        """One chunk; the guard directions depend on the chunk's first step only, which every run of a batch shares
        (all runs take the same steps), so they are drawn once, outside the ``vmap``."""
        t_first = t if not batched else t[0]
        xis = guard_directions(t_first, dim, GUARD_BLOCK)
        if batched:
            return jax.vmap(run_one, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None, None, None, None))(
                w, clock, t, fail, vs, ms, lr, wd, ns, active, every, xis)
        return run_one(w, clock, t, fail, vs, ms, lr, wd, ns, active, every, xis)

    return jax.jit(run)


def _as_batch(x, name: str, size: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(x, dtype=np.float64), (size,)).copy() if np.ndim(x) == 0 else np.asarray(x, float)
    if arr.shape != (size,):
        raise ValueError(f"{name}: expected a number or {size} values (one per run), got shape {np.shape(x)}")
    return arr


def _record_plan(steps: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """(the recorded steps 0, every, 2·every, …, steps; the steps taken after each record: the last takes 0)."""
    ts = np.arange(0, steps, every, dtype=np.int64)
    ts = np.append(ts, steps)
    return ts, np.append(np.diff(ts), 0)


#: the length of a piece (``_piece_plan``): even, so that a piece's record sits on the phase of the 2-cycle of the
#: record it follows and the kept records alternate as with the plain plan; two pieces fill a chunk's clock buffer
PIECE = (DENSE_CLOCK_MAX - 2) & ~1


def _piece_plan(ts: np.ndarray, ns: np.ndarray, piece: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The record plan (ts, ns) with every interval longer than ``piece`` steps cut into pieces of ``piece`` steps and
    a shorter last one: (steps, steps after each, a mask of the original records). The extra records give the chunk
    a slot per piece, so that its clock buffer (CLOCK_BUF) holds the clock of every step at any stride."""
    fine, kept = [], []
    for t, n in zip(ts, ns):
        cuts = np.arange(t, t + max(int(n), 1), piece, dtype=np.int64)
        fine.append(cuts)
        kept.append(np.arange(len(cuts)) == 0)
    ts_fine = np.concatenate(fine)
    ns_fine = np.append(np.diff(ts_fine), 0)
    return ts_fine, ns_fine, np.concatenate(kept)


def simulate_batch(model, w0s, lr, steps: int, wd=0.0, algorithm: str = "gdwd", every: int = 100,
                   track_phi: bool = False, quiet: bool = True, label: str = "", pairs: bool = True,
                   dense_clock: bool = False, keep_iterates: bool = False) -> list[Trajectory]:
    """B runs of ``algorithm`` on the JAX model ``model`` advanced together (``vmap``): ``w0s`` (B, D),
    ``lr`` and ``wd`` numbers or (B,) arrays, the same ``steps`` and ``every``. Returns one ``Trajectory``
    per run, equal to ``simulate(model, w0s[i], lr[i], steps, wd[i], ...)`` (see the module docstring);
    ``keep_iterates``: also w_t at every record, in ``Trajectory.iterates`` (records × D). ``dense_clock``: the
    clock at every step (``Trajectory.clock_steps``): for ``every`` ≤ DENSE_CLOCK_MAX, and with ``pairs=False`` at
    any stride (``_piece_plan``: a longer interval is run in pieces whose records are dropped), as the numpy loop
    keeps it."""
    if not hasattr(model, "jax_loss"):
        raise TypeError("model: the compiled path needs a JAX model (toy_models.from_jax), with 'jax_loss'")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: unknown {algorithm!r}; valid are {', '.join(ALGORITHMS)}")
    for name, x in (("steps", steps), ("every", every)):
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1:
            raise ValueError(f"{name}: expected a positive integer, got {x!r}")
    w0s = np.atleast_2d(np.asarray(w0s, dtype=np.float64))
    batch = w0s.shape[0]
    ws = np.stack([as_vector(w, f"w0s[{i}]", model.dim) for i, w in enumerate(w0s)])
    if not np.all(np.any(ws, axis=1)):
        raise ValueError("w0s: expected nonzero vectors (the loss is scale-invariant, w = 0 is undefined)")
    lrs, wds = _as_batch(lr, "lr", batch), _as_batch(wd, "wd", batch)
    for a, b in zip(lrs, wds):
        check_hyperparameters(float(a), float(b))
        if algorithm != "gdwd" and b != 0:
            raise ValueError(f"wd: only 'gdwd' uses weight decay, got wd={b!r} with algorithm={algorithm!r}")
    start = time.perf_counter()
    # the λ₁ trackers of the phases (w_t, midpoint, w_{t+1}): the first record runs a cold Lanczos
    vs, ms = initial_tracks(model.dim, 3 if pairs else 1)
    single = batch == 1  # unbatched: compiles ~3× faster than the vmapped function
    state = ((ws[0], np.float64(0.0), np.int64(0), np.int64(-1), vs, ms) if single else
             (ws, np.zeros(batch), np.zeros(batch, dtype=np.int64), np.full(batch, -1, dtype=np.int64),
              np.tile(vs, (batch, 1, 1, 1)), np.tile(ms, (batch, 1, 1))))
    hyper = (lrs[0], wds[0]) if single else (lrs, wds)
    bar = Progress(steps, label or f"{algorithm} (compiled, batch {batch})", quiet)
    # ``dense_clock``: the clock at every step into a buffer of CLOCK_BUF steps per chunk (so a chunk holds fewer
    # records), only on request and for intervals up to DENSE_CLOCK_MAX steps; otherwise ``clock_steps`` stays
    # unset (checks then read the clock at the records)
    ts, ns = _record_plan(int(steps), int(every))
    kept, stride = None, int(every)
    if dense_clock and not pairs and every > DENSE_CLOCK_MAX:
        ts, ns, kept = _piece_plan(ts, ns, PIECE)
        stride = PIECE
    dense = bool(dense_clock and stride <= DENSE_CLOCK_MAX)
    keep_w = bool(track_phi or keep_iterates)
    fn = _chunk(model, algorithm, pairs, not single, dense, keep_w, (WARM_START, WARM_RTOL, GUARD_EPS))
    slots = _slots(model.dim, keep_w)
    per_call = min(slots, (CLOCK_BUF - 1) // stride) if dense else slots
    chunks, clocks = [], []
    for lo in range(0, len(ts), per_call):
        n_used = min(per_call, len(ts) - lo)
        ns_chunk = np.zeros(slots, dtype=np.int64)
        ns_chunk[:n_used] = ns[lo:lo + n_used]
        active = np.arange(slots) < n_used
        state, recs, buf = fn(*state, *hyper, ns_chunk, active, np.int64(stride))
        recs, buf = jax.device_get((recs, buf))  # the chunk's records: one copy to the host
        recs = [np.asarray(r)[None] if single else np.asarray(r) for r in recs]  # (batch, slots, ...)
        chunks.append([r[:, :n_used] for r in recs])
        clocks.append((np.asarray(buf).reshape(batch, -1), int(ts[lo + n_used - 1] + ns[lo + n_used - 1] - ts[lo])))
        bar.update(int(ts[lo + n_used - 1]))
        if not chunks[-1][8][:, n_used - 1].any():  # every run has failed
            break
    fails = np.asarray(state[3]).reshape(batch).copy()
    w_end = np.asarray(state[0]).reshape(batch, model.dim)
    for i in np.nonzero(fails <= -2)[0]:  # a failure after the last record (the plan ends with one: not expected)
        k = -2 - int(fails[i])
        with np.errstate(all="ignore"):
            loss, g = model.jax_loss(w_end[i]), jax.grad(model.jax_loss)(w_end[i])
        fails[i] = int(_failed_at(k, loss, g))
    seconds = time.perf_counter() - start
    cols = [np.concatenate([c[i] for c in chunks], axis=1) for i in range(len(chunks[0]))]
    if kept is not None:  # the pieces' own records: taken for the per-step clock only
        cols = [c[:, kept[:c.shape[1]]] for c in cols]
    out = []
    for i in range(batch):
        ok = cols[8][i]
        rec = [c[i][ok] for c in cols]
        clock_steps = None
        if dense and fails[i] < 0:  # each chunk's steps t₀ … t₁ - 1, and the last record's own value
            clock_steps = np.concatenate([b[i, :n] for b, n in clocks] + [np.array([rec[7][-1]])])
        elif dense:  # a run that failed at step t: its clock before it, as the numpy engine keeps (clock_steps[:t])
            clock_steps = np.concatenate([b[i, :n] for b, n in clocks])[:int(fails[i])]
        elif every == 1 and fails[i] < 0:
            clock_steps = rec[7]
        out.append(_trajectory(model, algorithm, float(lrs[i]), float(wds[i]), rec, int(fails[i]), track_phi,
                               seconds / batch, clock_steps, w_end[i], keep_iterates))
    return out


def _trajectory(model, algorithm, lr, wd, rec, fail, track_phi, seconds, clock_steps, w_end,
                keep_iterates: bool) -> Trajectory:
    steps, loss, norm_sq, lam1, lam1_mid, lam1_next, gnorm, clock, _, _, ws = rec
    phi_rec, monitor = {"phi": [], "phi_lam1": [], "offset": []}, []
    if track_phi and PHI_RECORDS is not None:  # Φ on the device (λ₁(w̄_t) = λ₁(w_t)·‖w_t‖²: degree -2)
        PHI_RECORDS(model, steps, ws, phi_rec, monitor, lam0=lam1 * norm_sq)
    elif track_phi:
        for t, w in zip(steps, ws):
            record_phi(model, w, int(t), phi_rec, monitor)
    diverged = f"diverged at step {fail}: a non-finite loss, gradient or ‖w‖² (compiled run)" if fail >= 0 else ""
    phi = ({k: np.array(v) for k, v in phi_rec.items()} if track_phi
           else {"phi": None, "phi_lam1": None, "offset": None})
    return Trajectory(algorithm, lr, wd, steps.astype(int), loss, norm_sq, lam1, lam1_mid, lam1_next, gnorm, clock,
                      phi["phi"], phi["phi_lam1"], phi["offset"], diverged, monitor, seconds, clock_steps=clock_steps,
                      iterates=np.array(ws) if keep_iterates else None,
                      w_last=np.array(w_end) if len(steps) and fail < 0 else None)


def simulate_compiled(model, w0, lr: float, steps: int, wd: float = 0.0, algorithm: str = "gdwd", every: int = 100,
                      track_phi: bool = False, quiet: bool = True, label: str = "", pairs: bool = True,
                      dense_clock: bool = False) -> Trajectory:
    """``verification.simulate`` on a JAX model, compiled: the batch of one run."""
    return simulate_batch(model, np.asarray(w0, dtype=np.float64)[None, :], lr, steps, wd=wd, algorithm=algorithm,
                          every=every, track_phi=track_phi, quiet=quiet, label=label, pairs=pairs,
                          dense_clock=dense_clock)[0]
