"""The compiled simulator: the runs of ``verification.simulate`` on a JAX model, one ``jit``-compiled
``lax.scan`` per recording interval, with the same updates and records (the numpy loop stays the reference;
tests/test_compiled.py compares them on the registered models).

Each interval is one compiled call: record at w_t (loss, ‖w‖², λ₁ at w_t, at the midpoint and at w_{t+1},
‖∇L‖, the clock s_t), then ``every`` - 1 further steps in a ``lax.scan`` that also accumulates the clock
s = Σ‖w̄_{k+1} - w̄_k‖². λ₁ is the largest algebraic eigenvalue of ∇²L by restarted Lanczos on HVPs
(``lanczos_top``), warm-started from the previous record's top eigenvector: no D×D matrix. Φ(w̄_t) (with
``track_phi``) is computed by ``theory`` at the record points, as in the numpy path.

``simulate_batch`` advances B runs of one model (different starts, or different (η, λ), equal step counts)
as one array with ``vmap``; ``simulate`` on a JAX model is the batch of one.

A non-finite iterate freezes that run at its last finite point; its records end at the last record before
it, and ``diverged`` names the step, as in the numpy loop.
"""

from __future__ import annotations

import time
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from srflow.theory import check_hyperparameters, top_eigenpairs
from srflow.toy_models.validate import as_vector

from .trajectory import ALGORITHMS, Progress, Trajectory, record_phi

#: Krylov dimension of one Lanczos cycle (min(D, this)); cycles restart from the Ritz vector
KRYLOV_DIM = 12
#: Lanczos stops when ‖∇²L y - θy‖ ≤ LANCZOS_RTOL·|θ|; the Ritz value is then within
#: residual²/gap ≈ 1e-18·θ²/gap of λ₁ (round-off for any gap above 1e-4·θ)
LANCZOS_RTOL = 1e-9
#: at most this many Lanczos cycles per eigenvalue (a warm start needs 1-2)
MAX_CYCLES = 60


def lanczos_top(matvec, v0, k: int, rtol: float = LANCZOS_RTOL, max_cycles: int = MAX_CYCLES):
    """(θ, y, residual): the largest algebraic eigenpair of the symmetric operator ``matvec`` (traceable).

    Restarted Lanczos: k steps with full reorthogonalization from v0 give T_k = Qᵀ A Q; its top Ritz pair
    (θ, y = Q s) restarts the next cycle until ‖A y - θy‖ ≤ rtol·|θ|. On an invariant Krylov subspace
    (β = 0) the remaining rows of T are decoupled and set below its Gershgorin bound, so they never hold
    the top Ritz value.
    """
    dim = v0.shape[0]

    def cycle(v):
        def step(j, state):
            q_basis, alpha, beta, q, q_prev, b_prev, alive = state
            q_basis = q_basis.at[j].set(q)
            z = matvec(q)
            a = q @ z
            z = z - a * q - b_prev * q_prev
            z = z - q_basis.T @ (q_basis @ z)
            z = z - q_basis.T @ (q_basis @ z)
            b = jnp.linalg.norm(z)
            nxt = alive & (b > 1e-13 * (jnp.abs(a) + b_prev + 1e-300))
            alpha, beta = alpha.at[j].set(jnp.where(alive, a, 0.0)), beta.at[j].set(jnp.where(nxt, b, 0.0))
            return q_basis, alpha, beta, jnp.where(nxt, z / jnp.where(nxt, b, 1.0), 0.0), q, jnp.where(nxt, b, 0.0), nxt

        q0 = v / jnp.linalg.norm(v)
        init = (jnp.zeros((k, dim)), jnp.zeros(k), jnp.zeros(k), q0, jnp.zeros(dim), 0.0, jnp.array(True))
        q_basis, alpha, beta, *_ = lax.fori_loop(0, k, step, init)
        used = jnp.concatenate([jnp.array([True]), beta[:-1] > 0])
        used = jnp.cumprod(used).astype(bool)
        low = -(jnp.sum(jnp.abs(alpha)) + 2 * jnp.sum(beta)) - 1.0
        t = jnp.diag(jnp.where(used, alpha, low)) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
        vals, vecs = jnp.linalg.eigh(t)
        y = q_basis.T @ vecs[:, -1]
        y = y / jnp.linalg.norm(y)
        theta = vals[-1]
        return theta, y, jnp.linalg.norm(matvec(y) - theta * y)

    def not_done(state):
        i, theta, _, res = state
        return (i < max_cycles) & (res > rtol * jnp.abs(theta))

    def body(state):
        i, _, y, _ = state
        return (i + 1, *cycle(y))

    _, theta, y, res = lax.while_loop(not_done, body, (1, *cycle(v0)))
    return theta, y, res


def _update(algorithm: str, value_and_grad):
    """w -> (w', ∇L(w)) for one step of ``algorithm`` (the rules of ``verification.simulate``)."""
    def update(w, lr, wd):
        loss, g = value_and_grad(w)
        if algorithm in ("gdwd", "gd"):
            new = (1.0 - lr * wd) * w - lr * g
        elif algorithm.startswith("ngd"):
            new = w - lr * g / jnp.linalg.norm(g)
        else:
            new = w - lr * g / (2.0 * jnp.sqrt(loss))
        if algorithm.endswith("sphere"):
            new = new / jnp.linalg.norm(new)
        return new, loss, g
    return update


def _failed_at(t, loss, g):
    """The step a divergence is reported at, as in the numpy loop: t when L or ∇L is already non-finite at
    w_t (the numpy model raises there), t + 1 when only w_{t+1} is."""
    return jnp.where(jnp.isfinite(loss) & jnp.all(jnp.isfinite(g)), t + 1, t)


def _unit_step_sq(w, new):
    d = new / jnp.linalg.norm(new) - w / jnp.linalg.norm(w)
    return d @ d


#: the longest recording interval whose clock is kept at every step (see ``simulate_batch``)
DENSE_CLOCK_MAX = 4096


@lru_cache(maxsize=64)
def _interval(model, algorithm: str, pairs: bool, batched: bool, size: int):
    """The compiled interval: record at w_t, then n - 1 more steps (n = 0: record only); n is traced, so one
    compilation serves every interval length. ``batched``: vmapped over runs (a single run compiles ~3×
    faster unbatched). ``size`` (static, ≥ n): the clock s_t of every step of the interval is written into a
    buffer of that length, the dense clock the numpy loop keeps in ``Trajectory.clock_steps``."""
    update = _update(algorithm, jax.value_and_grad(model.jax_loss))
    grad = jax.grad(model.jax_loss)
    k = min(model.dim, KRYLOV_DIM)

    def lam(x, v):
        theta, y, _ = lanczos_top(lambda u: jax.jvp(grad, (x,), (u,))[1], v, k)
        return theta, y

    def one(w, clock, t, fail, v, lr, wd, n):
        new, loss, g = update(w, lr, wd)
        ok = (fail < 0) & jnp.all(jnp.isfinite(new)) & jnp.isfinite(new @ new)
        if pairs:  # λ₁ at w_t, the midpoint and w_{t+1} in one (vmapped) Lanczos, warm from the last v₁
            lams, vs = jax.vmap(lam, in_axes=(0, None))(jnp.stack([w, 0.5 * (w + new), new]), v)
            lam_w, lam_mid, lam_next, v = lams[0], lams[1], lams[2], vs[0]
        else:
            lam_w, v = lam(w, v)
            lam_mid = lam_next = jnp.nan
        rec = (t, loss, w @ w, lam_w, lam_mid, lam_next, jnp.linalg.norm(g), clock, w)
        fail = jnp.where((fail < 0) & ~ok, _failed_at(t, loss, g), fail)
        go = ok & (n > 0)
        w1 = jnp.where(go, new, w)
        clock1 = clock + jnp.where(go, _unit_step_sq(w, new), 0.0)
        buf = jnp.zeros(size).at[0].set(clock)

        def body(i, carry):
            x, s, step, f, b = carry
            b = b.at[i].set(s)
            nx, value, gx = update(x, lr, wd)
            good = (f < 0) & jnp.all(jnp.isfinite(nx)) & jnp.isfinite(nx @ nx)
            return (jnp.where(good, nx, x), s + jnp.where(good, _unit_step_sq(x, nx), 0.0), step + 1,
                    jnp.where((f < 0) & ~good, _failed_at(step, value, gx), f), b)

        w, clock, t, fail, buf = lax.fori_loop(1, jnp.maximum(n, 1), body,
                                               (w1, clock1, t + jnp.minimum(n, 1), fail, buf))
        return (w, clock, t, fail, v), (*rec, buf), ok

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, 0, 0, 0, None)) if batched else one)


def _as_batch(x, name: str, size: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(x, dtype=np.float64), (size,)).copy() if np.ndim(x) == 0 else np.asarray(x, float)
    if arr.shape != (size,):
        raise ValueError(f"{name}: expected a number or {size} values (one per run), got shape {np.shape(x)}")
    return arr


def simulate_batch(model, w0s, lr, steps: int, wd=0.0, algorithm: str = "gdwd", every: int = 100,
                   track_phi: bool = False, quiet: bool = True, label: str = "", pairs: bool = True,
                   dense_clock: bool = False, keep_iterates: bool = False) -> list[Trajectory]:
    """B runs of ``algorithm`` on the JAX model ``model`` advanced together (``vmap``): ``w0s`` (B, D),
    ``lr`` and ``wd`` numbers or (B,) arrays, the same ``steps`` and ``every``. Returns one ``Trajectory``
    per run, equal to ``simulate(model, w0s[i], lr[i], steps, wd[i], ...)`` (see the module docstring);
    ``keep_iterates``: also w_t at every record, in ``Trajectory.iterates`` (records × D)."""
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
    # the first Lanczos warm start: v₁(∇²L(w₀)) from theory (dense eigh, or ARPACK above DENSE_MAX_DIM)
    warm = top_eigenpairs(model, ws[0], k=1).vectors[:, 0]
    single = batch == 1  # unbatched: compiles ~3× faster than the vmapped function
    state = (ws[0], np.float64(0.0), np.int64(0), np.int64(-1), warm) if single else (ws, np.zeros(batch), np.zeros(batch, dtype=np.int64),
                                                       np.full(batch, -1), np.tile(warm, (batch, 1)))
    hyper = (lrs[0], wds[0]) if single else (lrs, wds)
    records = [[] for _ in range(batch)]
    bar = Progress(steps, label or f"{algorithm} (compiled, batch {batch})", quiet)
    # ``dense_clock``: the clock at every step, which needs the interval length as a static size (one compilation
    # per ``every``), so only on request and for intervals up to DENSE_CLOCK_MAX steps; otherwise one compilation
    # serves every interval length and ``clock_steps`` stays unset (checks then read the clock at the records)
    size = int(every) if dense_clock and every <= DENSE_CLOCK_MAX else 1
    fn, t = _interval(model, algorithm, pairs, not single, size), 0
    while True:
        n = min(every, steps - t)
        state, rec, ok = fn(*state, *hyper, np.int64(n))
        rec = [np.asarray(r)[None] if single else np.asarray(r) for r in rec]
        ok = np.asarray(ok).reshape(batch)
        for i in range(batch):
            if ok[i]:
                records[i].append([r[i] for r in rec])
        t += n
        bar.update(t)
        if n == 0 or not ok.any():
            break
    fails = np.asarray(state[3]).reshape(batch)
    seconds = time.perf_counter() - start
    return [_trajectory(model, algorithm, float(lrs[i]), float(wds[i]), records[i], int(fails[i]), track_phi,
                        seconds / batch, dense_clock=size > 1 or every == 1, keep_iterates=keep_iterates)
            for i in range(batch)]


def _trajectory(model, algorithm, lr, wd, records, fail, track_phi, seconds, dense_clock: bool = True,
                keep_iterates: bool = False) -> Trajectory:
    cols = list(zip(*records)) if records else [[]] * 10
    steps, loss, norm_sq, lam, lam_mid, lam_next, gnorm, clock, ws, bufs = (np.array(c) for c in cols)
    # the clock at every step: each interval's buffer up to the next record, then the last record's own value
    clock_steps = (np.concatenate([b[:n] for b, n in zip(bufs[:-1], np.diff(steps))] + [bufs[-1][:1]])
                   if len(steps) and fail < 0 and dense_clock else None)
    phi_rec, monitor = {"phi": [], "phi_sharp": [], "offset": []}, []
    if track_phi:
        for t, w in zip(steps, ws):
            record_phi(model, w, int(t), phi_rec, monitor)
    diverged = f"diverged at step {fail}: a non-finite loss, gradient or ‖w‖² (compiled run)" if fail >= 0 else ""
    phi = {k: np.array(v) for k, v in phi_rec.items()} if track_phi else {"phi": None, "phi_sharp": None, "offset": None}
    return Trajectory(algorithm, lr, wd, steps.astype(int), loss, norm_sq, lam, lam_mid, lam_next, gnorm, clock,
                      phi["phi"], phi["phi_sharp"], phi["offset"], diverged, monitor, seconds, clock_steps=clock_steps,
                      iterates=np.array(ws) if keep_iterates else None,
                      w_last=np.array(ws[-1]) if len(ws) and fail < 0 else None)


def simulate_compiled(model, w0, lr: float, steps: int, wd: float = 0.0, algorithm: str = "gdwd", every: int = 100,
                      track_phi: bool = False, quiet: bool = True, label: str = "", pairs: bool = True,
                      dense_clock: bool = False) -> Trajectory:
    """``verification.simulate`` on a JAX model, compiled: the batch of one run."""
    return simulate_batch(model, np.asarray(w0, dtype=np.float64)[None, :], lr, steps, wd=wd, algorithm=algorithm,
                          every=every, track_phi=track_phi, quiet=quiet, label=label, pairs=pairs,
                          dense_clock=dense_clock)[0]
