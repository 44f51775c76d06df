"""Steps per second of the simulators, printed (not asserted): GD+WD with and without sharpness tracking,
and with Φ tracking, on each default model; plus the cost of one check-sized ladder.

Run from the repository root: python3 -m benchmarks.bench_simulate [--steps N]

Batched evaluation (several (η, λ) or seeds advancing in one array) needs a JAX model: see
benchmarks/bench_engine.py, which measures it with ``verification.compiled.simulate_batch``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from srflow.toy_models import make_model
from srflow.verification.simulate import eos_start, simulate
from srflow.verification.verify import DEFAULT_MODELS


def rate(model, w0, steps, **kw) -> float:
    start = time.perf_counter()
    tr = simulate(model, w0, 0.1, steps, wd=0.01, **kw)
    assert not tr.diverged
    return steps / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    args = parser.parse_args(argv)
    print(f"{'model':<14} {'D':>3} {'plain':>10} {'λ₁ every 10':>12} {'λ₁+pairs every 10':>18} {'Φ every 100':>12}"
          f"   (steps/s, {args.steps} steps, ηλ = 1e-3)")
    for name in DEFAULT_MODELS:
        model = make_model(name)
        w0 = eos_start(model, model.minimizer(np.random.default_rng(0)), 0.1, 0.01)
        cols = [rate(model, w0, args.steps, every=args.steps, pairs=False),
                rate(model, w0, args.steps, every=10, pairs=False),
                rate(model, w0, args.steps, every=10, pairs=True),
                rate(model, w0, args.steps, every=100, track_phi=True, pairs=False)]
        print(f"{name:<14} {model.dim:>3} " + " ".join(f"{c:>{w}.0f}" for c, w in zip(cols, (10, 12, 18, 12))))
    print("batched vs sequential: numpy models run sequentially; for JAX models see benchmarks/bench_engine.py.")


if __name__ == "__main__":
    main()
