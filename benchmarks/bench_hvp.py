"""What one λ₁ record costs at least: a plain GD+WD step, a forward-over-reverse HVP, and the step and the HVP
fused in one JVP of the loss's value and gradient (the compiled simulator's record, ``verification.compiled``), each
in a jit-compiled loop of one process on ``mf`` (benchmarks/bench_engine's models and start); and, with ``--hvps``,
the HVPs the tracker's records take along a run of "λ₁ every 10 steps", by tenths of the run. Printed, not asserted.

Run from the repository root: python -m benchmarks.bench_hvp [--sizes 16 80 500] [--repeats 5] [--hvps STEPS]

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 80, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hvps", type=int, default=0, metavar="STEPS",
                        help="also count the records' HVPs along a run of STEPS steps at each D")
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


if __name__ == "__main__":
    main()
