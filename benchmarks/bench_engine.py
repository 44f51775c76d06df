"""Steps per second of srflow's numpy path, its compiled JAX path and a hand-written jit + scan loop of the same
GD+WD update, side by side in one process, on normalized matrix factorization (``mf``) of growing size.

Run from the repository root: python3 -m benchmarks.bench_engine [--sizes 16 80 500 4000 100000] [--budget SECONDS]

Rows: plain (records only at the ends), λ₁ every 10 steps (pairs=False), Φ(w̄) every 100 steps; then B = 16
runs batched with ``vmap`` against the same 16 runs one after the other. Every rate is measured: a run is
repeated with growing step counts until one run lasts ``--budget``/4 seconds, compilation excluded (a warm-up
run first; the first run's time, compilation included, is printed). Per-run costs are included: every run
records λ₁ at its first and last step (the compiled path's first record runs a cold Lanczos).
benchmarks/bench_records.py measures the same runs with interleaved medians, per step and whole. GD+WD at η = 0.1, ηλ = 1e-3, from the EoS norm above a point of Γ.
D = 100000 (m = n = 2500, rank 20) has no numpy model (``mf`` builds a dense D×D permutation) and is built
with ``from_jax`` directly; a cell is '-' when not run, with the reason printed below the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial

# the compile column is a first compilation: JAX's persistent compilation cache (toy_models.jax_models) stays off
# here unless SRFLOW_JAX_CACHE is set (to 1: the time of a rerun, which loads the compiled programs)
os.environ.setdefault("SRFLOW_JAX_CACHE", "0")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from srflow.theory import equilibrium_norm_sq, sharpness  # noqa: E402
from srflow.toy_models import from_jax, make_model  # noqa: E402
from srflow.toy_models.jax_losses import factorization  # noqa: E402
from srflow.toy_models.jax_losses import make_jax_model  # noqa: E402
from srflow.verification.compiled import simulate_batch  # noqa: E402
from srflow.verification.simulate import simulate  # noqa: E402

LR, WD = 0.1, 0.01

#: D -> (m, n, rank) of mf
SIZES = {16: (4, 4, 2), 80: (20, 20, 2), 500: (125, 125, 2), 4000: (1000, 1000, 2), 100000: (2500, 2500, 20)}


def models(dim: int):
    """(numpy model or None, JAX model, θ ∈ Γ) for mf of dimension ``dim``."""
    m, n, rank = SIZES[dim]
    if dim <= 4000:
        ref = make_model("mf", rng=0, m=m, n=n, rank=rank)
        jm = make_jax_model("mf", rng=0, sizes={"m": m, "n": n, "rank": rank})
        return ref, jm, ref.minimizer(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((m, rank)), rng.standard_normal((n, rank))
    target = 1.5 * u @ v.T / (np.linalg.norm(u) * np.linalg.norm(v))
    loss = partial(factorization, m=m, n=n, rank=rank, scale=1.5, target=target, weights=1.0 / (m * n))
    theta = np.concatenate([u.ravel(), v.ravel()])
    return None, from_jax(loss, dim, name="mf"), theta / np.linalg.norm(theta)


def start(model, theta):
    """The EoS norm ‖w‖² = ηλ₁(θ)/(2(1-ηλ)) above θ, kicked by 1e-3 along a random direction."""
    lam1 = sharpness(model, theta)
    kick = np.random.default_rng(1).standard_normal(model.dim)
    w = theta + 1e-3 * kick / np.linalg.norm(kick)
    return np.sqrt(equilibrium_norm_sq(LR, WD, lam1)) * w / np.linalg.norm(w)


def rate(run, budget: float, first: int) -> float:
    """steps/s of ``run(steps)``: after a warm-up run (compilation), steps grown from ``first`` until one run
    lasts budget/4 s. (A marginal rate, the difference of two runs, cancels the per-run costs but was
    dominated by timing noise on a shared machine; per-run costs are included here.)"""
    run(first)
    steps = first
    while True:
        t0 = time.perf_counter()
        run(steps)
        dt = time.perf_counter() - t0
        if dt >= budget / 4 or steps >= 10**7:
            return steps / dt
        steps *= 2 if dt > budget / 40 else 8


def hand_loop(model):
    """The same update, written by hand: w ← (1 - ηλ)w - η∇L(w) in one jit-compiled lax.scan."""
    grad = jax.grad(model.jax_loss)

    @partial(jax.jit, static_argnums=1)
    def run(w, steps):
        return lax.scan(lambda x, _: ((1 - LR * WD) * x - LR * grad(x), None), w, None, length=steps)[0]

    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per measured cell (about)")
    args = parser.parse_args(argv)
    notes, rows, batch_rows = [], [], []
    for dim in args.sizes:
        ref, jm, theta = models(dim)
        w0 = start(ref if ref is not None else jm, theta)
        t0 = time.perf_counter()
        simulate(jm, w0, LR, 10, wd=WD, every=10, pairs=False, dense_clock=False)
        compile_s = time.perf_counter() - t0  # compilation + one 10-step run
        loop = hand_loop(jm)

        modes = {"plain": {"every": None}, "λ₁ every 10": {"every": 10}, "Φ every 100": {"every": 100, "track_phi": True}}
        for mode, kw in modes.items():
            def run(model, steps, kw=kw):
                every = kw["every"] or steps
                tr = simulate(model, w0, LR, steps, wd=WD, every=every, pairs=False, track_phi=kw.get("track_phi", False),
                              dense_clock=False)
                assert not tr.diverged, tr.diverged
            first = (100 if kw["every"] != 100 else 200) if dim < 100000 else 10
            np_rate = None
            if ref is None:
                notes.append(f"D={dim}: no numpy model (mf's permutation matrix would be {dim}² floats)")
            elif dim >= 4000 and mode == "Φ every 100":
                notes.append(f"D={dim} {mode}: numpy path not run (one Φ by the flow costs minutes at this size)")
            else:
                np_rate = rate(lambda s: run(ref, s), args.budget, 10 if dim >= 500 else first)
            jax_rate = None
            if not (dim >= 4000 and mode == "Φ every 100"):
                jax_rate = rate(lambda s: run(jm, s), args.budget, first)
            else:
                notes.append(f"D={dim} {mode}: jax path not run (one matrix-free Φ took ~25 s at D = 4000: the "
                             "DOP853 flow is stiff, λ₁/μ is large)")
            hand_rate = (_hand_rate(loop, jnp.asarray(w0), args.budget, 1000 if dim < 100000 else 20)
                         if mode == "plain" else None)
            rows.append((dim, mode, np_rate, jax_rate, hand_rate, compile_s))
            print(f"measured D={dim} {mode}: numpy {np_rate}, jax {jax_rate}, hand {hand_rate}", file=sys.stderr,
                  flush=True)
        if dim <= 500:
            batch_rows.append((dim, *_batched(jm, w0, args.budget)))
            print(f"measured D={dim} batched: {batch_rows[-1]}", file=sys.stderr, flush=True)
        else:
            notes.append(f"D={dim}: batched not run (at D = 500 a batch is already slower than sequential runs: "
                         "compute-bound on 2 cores)")
    print_table(rows, batch_rows, notes)


def _hand_rate(loop, w0, budget: float, first: int = 1000) -> float:
    """steps/s of the hand loop at a fixed step count (each new count compiles), chosen from a first timing."""
    loop(w0, first).block_until_ready()
    t0 = time.perf_counter()
    loop(w0, first).block_until_ready()
    dt = time.perf_counter() - t0
    steps = int(min(max(first, first * budget / 4 / max(dt, 1e-9)), 10**7))
    if steps == first:
        return first / dt
    loop(w0, steps).block_until_ready()
    t0 = time.perf_counter()
    loop(w0, steps).block_until_ready()
    return steps / (time.perf_counter() - t0)


def _batched(jm, w0, budget: float, size: int = 16):
    """(sequential, batched) run-steps/s of ``size`` plain runs from kicked copies of w0."""
    rng = np.random.default_rng(2)
    w0s = w0 * (1 + 1e-3 * rng.standard_normal((size, len(w0))))
    simulate_batch(jm, w0s, LR, 10, wd=WD, every=10, pairs=False)  # compile

    def seq(steps):
        for w in w0s:
            simulate(jm, w, LR, steps, wd=WD, every=steps, pairs=False, dense_clock=False)

    def bat(steps):
        simulate_batch(jm, w0s, LR, steps, wd=WD, every=steps, pairs=False)

    loop = jax.vmap(hand_loop(jm), in_axes=(0, None))
    ws = jnp.asarray(w0s)

    def hand(steps):
        jax.block_until_ready(loop(ws, steps))

    steps = 2000 if len(w0) < 4000 else 100
    hand(steps)
    t0 = time.perf_counter()
    hand(steps)
    hand_rate = size * steps / (time.perf_counter() - t0)
    return size * rate(seq, budget, 100), size * rate(bat, budget, 100), hand_rate


def _fmt(x) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _ratio(a, b) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}"


def print_table(rows, batch_rows, notes) -> None:
    print(f"\nsteps/s, mf, GD+WD η = {LR}, ηλ = {LR * WD:g}; jax = srflow's compiled path, hand = jit + scan by hand")
    print(f"{'D':>7} {'mode':<13} {'numpy':>10} {'jax':>11} {'hand':>12} {'jax/numpy':>10} {'jax/hand':>9} "
          f"{'vs plain':>9} {'first s':>9}")
    plain = {}
    for dim, mode, np_rate, jax_rate, hand_rate, compile_s in rows:
        if mode == "plain":
            plain[dim] = jax_rate
        cost = "-" if mode == "plain" or jax_rate is None else f"{plain[dim] / jax_rate:.2f}×"
        print(f"{dim:>7} {mode:<13} {_fmt(np_rate):>10} {_fmt(jax_rate):>11} {_fmt(hand_rate):>12} "
              f"{_ratio(jax_rate, np_rate):>10} {_ratio(jax_rate, hand_rate):>9} {cost:>9} {compile_s:>9.1f}")
    if batch_rows:
        print("\nB = 16 plain runs, run-steps/s: srflow's jax path one after the other vs one vmapped batch, and the "
              "hand loop vmapped")
        print(f"{'D':>7} {'sequential':>12} {'batched':>12} {'batched/seq':>12} {'hand vmap':>12} {'hand vmap/seq':>14}")
        for dim, seq, bat, hand in batch_rows:
            print(f"{dim:>7} {seq:>12,.0f} {bat:>12,.0f} {bat / seq:>12.2f} {hand:>12,.0f} {hand / seq:>14.2f}")
    for note in dict.fromkeys(notes):
        print("note:", note)


if __name__ == "__main__":
    main()
