"""What one λ₁ record costs at least: a plain GD+WD step, a forward-over-reverse HVP, and the step and the HVP
fused in one JVP of the loss's value and gradient (the compiled simulator's record, ``verification.compiled``), each
in a jit-compiled loop of one process on ``mf`` (benchmarks/bench_engine's models and start); and, with ``--hvps``,
the HVPs the tracker's records take along a run of "λ₁ every 10 steps", by tenths of the run. Printed, not asserted.

Run from the repository root: python -m benchmarks.bench_hvp [--sizes 16 80 500] [--repeats 5] [--hvps STEPS]
[--motion STEPS] [--chunk]

``--chunk``: the compiled chunk itself in the steady state (after 4 chunks, 20,480 steps from the kicked start: past
its transient, ``--motion``), a chunk of 512 records every 10 steps against the same chunk taking the 5120 steps
with no record between, CPU time, medians of ``--repeats`` interleaved rounds: the record's extra cost in plain steps
with the crossing guard's looks at most GUARD_MAX_WAIT records apart (the default), at every record, at most 32
apart, and never after the first (what the guard costs; the last two are not srflow's settings); and the fused step +
HVP alone inside a step loop (``interleaved``: its vector used as the tracker uses it, CPU time), the floor there.

``--motion STEPS``: how far the top eigenvector v₁(w_t) moves between records 10 steps apart along a run from the
kicked start (dense ``eigh`` of the Hessian at every record, D ≤ 2048), and how far from it the tracker's kinds of
start are: the last record's vector, the linear extrapolation of the last two (``compiled.warm_start``) and the
quadratic one of the last three, by twelfths of the run.

The fused record's marginal cost (fused - step) in plain steps, over the 10 steps of a record, is the floor of
"λ₁ every 10 / plain" before the crossing guard, the record's bookkeeping and the records that need a Lanczos.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from srflow.verification import compiled
from srflow.verification.simulate import simulate

from .bench_engine import LR, WD, models, start


def costs(dim: int, steps: int, repeats: int) -> dict:
    """µs per iteration of: the step, the HVP alone, the step and the HVP fused (medians of ``repeats``)."""
    ref, jm, theta = models(dim)
    w0 = jnp.asarray(start(ref if ref is not None else jm, theta))
    value_and_grad, grad = jax.value_and_grad(jm.jax_loss), jax.grad(jm.jax_loss)
    u = jnp.asarray(np.random.default_rng(0).standard_normal(dim))
    u = u / jnp.linalg.norm(u)
    bodies = {
        "step": lambda w: (1 - LR * WD) * w - LR * value_and_grad(w)[1],
        "HVP": lambda w: w + 1e-30 * jax.jvp(grad, (w,), (u,))[1],
        "step + HVP (one JVP)": lambda w: (lambda p, t: (1 - LR * WD) * w - LR * p[1] + 1e-30 * t[1])(
            *jax.jvp(value_and_grad, (w,), (u,))),
    }
    loops = {k: jax.jit(lambda w, b=b: lax.fori_loop(0, steps, lambda i, x: b(x), w)) for k, b in bodies.items()}
    for f in loops.values():
        f(w0).block_until_ready()
    times = {k: [] for k in loops}
    for _ in range(repeats):
        for k, f in loops.items():
            t0 = time.perf_counter()
            f(w0).block_until_ready()
            times[k].append((time.perf_counter() - t0) / steps * 1e6)
    return {k: float(np.median(v)) for k, v in times.items()}


def interleaved(dim: int, repeats: int, records: int = 512) -> float:
    """The extra cost, in plain steps, of one fused step + HVP per 10 steps inside a step loop (CPU time, medians of
    ``repeats``): a jit loop of [the JVP of the loss's value and gradient at w along u, the step, u ← ∇²L u/‖∇²L u‖,
    9 plain steps] against 10 plain steps, ``records`` times. The floor of a record in its setting (the HVP's vector
    used, as the tracker uses it), without the tracker's test, the guard and the record slot."""
    ref, jm, theta = models(dim)
    w0 = jnp.asarray(start(ref if ref is not None else jm, theta))
    value_and_grad = jax.value_and_grad(jm.jax_loss)
    u0 = jnp.asarray(np.random.default_rng(0).standard_normal(dim))
    u0 = u0 / jnp.linalg.norm(u0)

    def plain(w):
        return (1 - LR * WD) * w - LR * value_and_grad(w)[1]

    def block(carry):
        w, u = carry
        (_, g), (_, z) = jax.jvp(value_and_grad, (w,), (u,))
        w = lax.fori_loop(0, 9, lambda i, x: plain(x), (1 - LR * WD) * w - LR * g)
        return w, z / jnp.linalg.norm(z)

    f_plain = jax.jit(lambda w: lax.fori_loop(0, 10 * records, lambda i, x: plain(x), w))
    f_rec = jax.jit(lambda w: lax.fori_loop(0, records, lambda i, c: block(c), (w, u0)))
    jax.block_until_ready((f_plain(w0), f_rec(w0)))
    tp, tr = [], []
    for _ in range(repeats):
        t0 = time.process_time()
        jax.block_until_ready(f_plain(w0))
        tp.append(time.process_time() - t0)
        t0 = time.process_time()
        jax.block_until_ready(f_rec(w0))
        tr.append(time.process_time() - t0)
    base = float(np.median(tp))
    return (float(np.median(tr)) - base) / records / (base / (10 * records))


def record_hvps(dim: int, steps: int) -> np.ndarray:
    """The HVP count of every record of ``simulate(every=10, pairs=False)`` from the benchmark's start."""
    ref, jm, theta = models(dim)
    counts = {}
    original = compiled._trajectory

    def keep(model, algorithm, lr, wd, rec, *args, **kwargs):
        counts["hvps"] = np.asarray(rec[9])
        return original(model, algorithm, lr, wd, rec, *args, **kwargs)

    compiled._trajectory = keep
    try:
        simulate(jm, start(ref if ref is not None else jm, theta), LR, steps, wd=WD, every=10, pairs=False)
    finally:
        compiled._trajectory = original
    return counts["hvps"]


def motion(dim: int, steps: int) -> list[tuple]:
    """(t, λ₁, ‖v_n - v_{n-1}‖, ‖lin - v_n‖, ‖quad - v_n‖) at twelve records of a run of ``steps`` steps from the
    kicked start, records every 10 steps; lin = 2v_{n-1} - v_{n-2}, quad = 3v_{n-1} - 3v_{n-2} + v_{n-3} (normalized;
    v_n the top eigenvector of the dense Hessian at the record's w_t, signs aligned)."""
    from srflow.verification.compiled import simulate_batch
    ref, jm, theta = models(dim)
    tr = simulate_batch(jm, start(ref if ref is not None else jm, theta)[None], LR, steps, wd=WD, every=10,
                        pairs=False, keep_iterates=True)[0]
    hess = jax.jit(jax.hessian(jm.jax_loss))
    lams, vecs = [], []
    for w in tr.iterates:
        e, v = np.linalg.eigh(np.asarray(hess(jnp.asarray(w))))
        v1 = v[:, -1] if not vecs or v[:, -1] @ vecs[-1] >= 0 else -v[:, -1]
        lams.append(e[-1])
        vecs.append(v1)

    def off(a, b):
        return float(np.linalg.norm(a / np.linalg.norm(a) - b))

    rows = []
    for n in range(3, len(vecs), max(1, len(vecs) // 12)):
        v = vecs
        rows.append((int(tr.steps[n]), lams[n], off(v[n - 1], v[n]), off(2 * v[n - 1] - v[n - 2], v[n]),
                     off(3 * v[n - 1] - 3 * v[n - 2] + v[n - 3], v[n])))
    return rows


def chunk_costs(dim: int, repeats: int) -> tuple[float, dict]:
    """(plain step µs, {guard setting: (record's extra cost in plain steps, λ₁ every 10 / plain)}) of the compiled
    chunk (``compiled._chunk``, single run, pairs=False) in the steady state; GUARD_MAX_WAIT is set while each
    variant is traced."""
    ref, jm, theta = models(dim)
    w0 = start(ref if ref is not None else jm, theta)
    slots = compiled._slots(dim, False)
    every = np.full(slots, 10)
    active = np.ones(slots, bool)
    plain = np.zeros(slots, np.int64)
    plain[0] = 10 * slots
    plain_active = np.arange(slots) == 0
    saved = compiled.GUARD_MAX_WAIT
    fns = {}
    try:
        for name, wait in ((f"looks ≤ {saved} apart", saved), ("a look every record", 1),
                           ("looks ≤ 32 apart", 32), ("no looks", 10**9)):
            compiled.GUARD_MAX_WAIT = wait
            fn = compiled._chunk.__wrapped__(jm, "gdwd", False, False, False, False, compiled.TRACKED_METHOD)
            vs, ms = compiled.initial_tracks(dim, 1)
            state = (w0, np.float64(0.0), np.int64(0), np.int64(-1), vs, ms)
            for _ in range(4):
                state, _, _ = fn(*state, LR, WD, every, active, np.int64(10))
            fns[name] = (fn, state)
    finally:
        compiled.GUARD_MAX_WAIT = saved

    def timed(fn, state, ns, act):
        t0 = time.process_time()
        jax.block_until_ready(fn(*state, LR, WD, ns, act, np.int64(10)))
        return time.process_time() - t0

    first = next(iter(fns.values()))
    times = {"plain": []} | {k: [] for k in fns}
    for _ in range(repeats):
        times["plain"].append(timed(*first, plain, plain_active))
        for k, (fn, state) in fns.items():
            times[k].append(timed(fn, state, every, active))
    base = float(np.median(times["plain"]))
    step = base / (10 * slots)
    return step * 1e6, {k: ((float(np.median(v)) - base) / slots / step, float(np.median(v)) / base)
                        for k, v in times.items() if k != "plain"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 80, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hvps", type=int, default=0, metavar="STEPS",
                        help="also count the records' HVPs along a run of STEPS steps at each D")
    parser.add_argument("--chunk", action="store_true",
                        help="also the chunk's record cost in the steady state, with and without the guard's looks")
    parser.add_argument("--motion", type=int, default=0, metavar="STEPS",
                        help="also the top eigenvector's motion between records along a run of STEPS steps")
    args = parser.parse_args(argv)
    print(f"{'D':>5} {'step µs':>9} {'HVP µs':>9} {'fused µs':>9} {'HVP/step':>9} {'record/step':>12} {'floor':>7}")
    for dim in args.sizes:
        c = costs(dim, max(2000, 2_000_000 // (dim + 100)), args.repeats)
        step, hvp, fused = c["step"], c["HVP"], c["step + HVP (one JVP)"]
        record = (fused - step) / step
        print(f"{dim:>5} {step:>9.2f} {hvp:>9.2f} {fused:>9.2f} {hvp / step:>9.2f} {record:>12.2f} "
              f"{1 + record / 10:>6.2f}×", flush=True)
    for dim in args.sizes if args.hvps else []:
        h = record_hvps(dim, args.hvps)
        tenths = [f"{seg.mean():.2f}" for seg in np.array_split(h, 10)]
        print(f"D = {dim}: {h.sum()} HVPs over {len(h)} records; per record by tenths of the run: {' '.join(tenths)}")
    for dim in args.sizes if args.chunk else []:
        step, rows = chunk_costs(dim, args.repeats)
        print(f"D = {dim}: chunk in the steady state, plain step {step:.2f} µs; record's extra cost in plain steps "
              "(λ₁ every 10 / plain):")
        extra = interleaved(dim, args.repeats)
        print(f"{'':>8} {'fused step + HVP alone':<24} {extra:6.2f} ({1 + extra / 10:.3f}×)  (in a step loop, CPU time)")
        for name, (extra, ratio) in rows.items():
            print(f"{'':>8} {name:<24} {extra:6.2f} ({ratio:.3f}×)")
    for dim in args.sizes if args.motion else []:
        print(f"D = {dim}: {'t':>7} {'λ₁':>9} {'last':>9} {'linear':>9} {'quadratic':>9}  (distance to v₁ of the start)")
        for t, lam1, last, lin, quad in motion(dim, args.motion):
            print(f"{'':>8} {t:>7} {lam1:>9.5f} {last:>9.2e} {lin:>9.2e} {quad:>9.2e}")


if __name__ == "__main__":
    main()
