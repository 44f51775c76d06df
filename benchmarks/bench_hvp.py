"""What one λ₁ record costs at least: a plain GD+WD step, a forward-over-reverse HVP, and the step and the HVP
fused in one JVP of the loss's value and gradient (the compiled simulator's record, ``verification.compiled``), each
in a jit-compiled loop of one process on ``mf`` (benchmarks/bench_engine's models and start); and, with ``--hvps``,
the HVPs the tracker's records take along a run of "λ₁ every 10 steps", by tenths of the run. Printed, not asserted.

Run from the repository root: python -m benchmarks.bench_hvp [--sizes 16 80 500] [--repeats 5] [--hvps STEPS]
[--motion STEPS]

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 80, 500])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hvps", type=int, default=0, metavar="STEPS",
                        help="also count the records' HVPs along a run of STEPS steps at each D")
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
    for dim in args.sizes if args.motion else []:
        print(f"D = {dim}: {'t':>7} {'λ₁':>9} {'last':>9} {'linear':>9} {'quadratic':>9}  (distance to v₁ of the start)")
        for t, lam1, last, lin, quad in motion(dim, args.motion):
            print(f"{'':>8} {t:>7} {lam1:>9.5f} {last:>9.2e} {lin:>9.2e} {quad:>9.2e}")


if __name__ == "__main__":
    main()
