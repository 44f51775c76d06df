"""What compiling the compiled simulator costs, per record method, side by side in one process: the first
``simulate_compiled`` (compilation included) on ``mf`` at D = 16 (pairs=True, λ₁ at w_t, the midpoint and w_{t+1},
as the checks run it) and the first 3-run ``simulate_batch``, for each method of ``compiled.METHODS`` in turn.
Each method runs on a fresh model object (``_chunk`` is cached per model), after a warm-up run of the simulator on a
smaller ``mf`` (the first compilation of a process is ≈ 2 s slower), in the order given and then reversed. Wall and
process CPU seconds (on a shared machine the CPU time is the steadier of the two).

Run from the repository root: python -m benchmarks.bench_compile [--methods tracked extrapolated] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from srflow.toy_models.jax_losses import make_jax_model
from srflow.verification import compiled
from srflow.verification.compiled import simulate_batch, simulate_compiled

METHODS = {"tracked": compiled.TRACKED_METHOD, "extrapolated": compiled.PREVIOUS_METHOD}


def first_calls(method, seed: int) -> tuple[float, float, float, float]:
    """(wall s, CPU s of the first simulate_compiled; wall s, CPU s of the first 3-run simulate_batch) with
    ``method`` on a fresh mf D=16."""
    jm = make_jax_model("mf", rng=0, sizes={"m": 4, "n": 4, "rank": 2})
    w0 = np.random.default_rng(seed).standard_normal(jm.dim)
    saved = compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS
    compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS = method
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        simulate_compiled(jm, w0, 0.1, 100, wd=0.01, every=10)
        c1, t1 = time.process_time(), time.perf_counter()
        simulate_batch(jm, np.stack([w0, 1.1 * w0, 0.9 * w0]), 0.1, 100, wd=0.01, every=10)
        c2, t2 = time.process_time(), time.perf_counter()
    finally:
        compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS = saved
    return t1 - t0, c1 - c0, t2 - t1, c2 - c1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternately in the given and reversed order")
    args = parser.parse_args(argv)
    small = make_jax_model("mf", rng=0, sizes={"m": 3, "n": 3, "rank": 1})  # warm-up: the process's first compilation
    simulate_compiled(small, np.ones(small.dim), 0.1, 20, wd=0.01, every=10)
    load = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {load[0]:.1f}; jax {jax.__version__}")
    print(f"{'round':>5} {'method':<14} {'simulate_compiled s (CPU s)':>28} {'3-run batch s (CPU s)':>22}")
    seed = 0
    for r in range(args.rounds):
        for name in (args.methods if r % 2 == 0 else args.methods[::-1]):
            seed += 1
            one, one_cpu, batch, batch_cpu = first_calls(METHODS[name], seed)
            print(f"{r:>5} {name:<14} {f'{one:.2f} ({one_cpu:.2f})':>28} {f'{batch:.2f} ({batch_cpu:.2f})':>22}",
                  flush=True)


if __name__ == "__main__":
    main()
