"""What measuring costs on the compiled path: whole runs and per step of srflow's compiled simulator
against a hand-written JAX loop of the same update, side by side in one process, on normalized matrix
factorization (``mf``) at D = 16, 80, 500, 4000. Printed, not asserted.

Run from the repository root: python -m benchmarks.bench_records [--sizes 16 80 500 4000] [--repeats 5]
[--seconds 0.3] [--phi-sizes 16 80 500] [--batch 16] [--before] [--phi-before]

Modes (GD+WD, η = 0.1, ηλ = 1e-3, from the EoS norm above a point of Γ; ``simulate(..., pairs=False,
dense_clock=False)`` on the JAX twin):

* ``hand``: w ← (1 - ηλ)w - η∇L(w) in one jit-compiled ``lax.scan`` (no records);
* ``plain``: srflow with records only at the first and the last step (λ₁ at both: per-run costs);
* ``λ₁ every 10``: a record every 10 steps (λ₁ by the default tracker, ``compiled.track_top``: one Rayleigh HVP per
  record certified by its residual, a full Lanczos when the residual says so);
* ``λ₁ every 10 (Lanczos)`` (with ``--before``): the same with the method before the tracker
  (``compiled.PREVIOUS_METHOD``: a guarded Lanczos from the extrapolated start at every record), timed in the same
  rounds;
* ``Φ every 100``: also Φ(w̄_t) at every record, every 100 steps: on the device (``verification.device_phi``, one
  compiled pass over the run's records);
* ``Φ every 100 (before)`` (with ``--phi-before``): the same with Φ by the host ``theory.project_to_manifold`` at
  each record (``device_phi.PHI_ON_DEVICE = False``, the method before 2026-12-05), timed in the same rounds;
* ``batched``: B runs from kicked copies of w₀ by ``simulate_batch`` (one vmapped run) against the hand loop
  under ``vmap``.

Every cell is compiled (run once) first; then the cells are timed in turn, ``--repeats`` rounds, and the table
shows medians (the machine is shared: interleaving spreads a load burst over all cells), or minima with ``--stat
min`` (the least disturbed round of each cell: at load 8 on 2 cores one device Φ pass at D = 80 took 0.011-0.95 s
over 12 repeats). ``whole``: the median (min) time of a run of N steps; ``per step``: the marginal cost (t(2N) - t(N))/N, which cancels per-run costs (the
first record's cold Lanczos, the host copies, building the Trajectory). N is set per D from a first timing of the
hand loop so that one run lasts about ``--seconds``. The ratios are compared with these targets: whole run vs
hand (≥ 0.8), λ₁ every 10 vs plain (≤ 1.25 at D ≥ 80, ≤ 2 at D = 16), Φ every 100 vs plain (≤ 2 at D ≥ 500,
≤ 5 at D = 16), batched vs hand vmap (≥ 0.9).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from srflow.verification import compiled, device_phi
from srflow.verification.compiled import simulate_batch
from srflow.verification.simulate import simulate

from .bench_engine import LR, WD, hand_loop, models, start


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cells_for(dim: int, seconds: float, phi: bool, batch: int, before: bool = False,
              phi_before: bool = False) -> tuple[dict, int, dict]:
    """The timed cells of one D: name -> zero-argument callable; N; notes."""
    ref, jm, theta = models(dim)
    w0 = start(ref if ref is not None else jm, theta)
    loop = hand_loop(jm)
    w0j = jnp.asarray(w0)
    probe = 5000 if dim < 500 else 500 if dim < 4000 else 20
    loop(w0j, probe).block_until_ready()
    per = _timed(lambda: loop(w0j, probe).block_until_ready()) / probe
    n = int(max(100, min(10**6, round(seconds / per / 100) * 100)))

    def sim(steps, every, track_phi=False, method=None, phi_on_device=True):
        def run():
            saved = compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS
            if method is not None:
                compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS = method
            device_phi.PHI_ON_DEVICE = phi_on_device
            try:
                tr = simulate(jm, w0, LR, steps, wd=WD, every=every, pairs=False, track_phi=track_phi,
                              dense_clock=False)
            finally:
                compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS = saved
                device_phi.PHI_ON_DEVICE = True
            assert not tr.diverged, tr.diverged
        return run

    cells = {
        ("hand", 1): lambda: loop(w0j, n).block_until_ready(),
        ("hand", 2): lambda: loop(w0j, 2 * n).block_until_ready(),
        ("plain", 1): sim(n, n),
        ("plain", 2): sim(2 * n, 2 * n),
        ("λ₁ every 10", 1): sim(n, 10),
        ("λ₁ every 10", 2): sim(2 * n, 10),
    }
    if before:
        cells[("λ₁ every 10 (Lanczos)", 1)] = sim(n, 10, method=compiled.PREVIOUS_METHOD)
        cells[("λ₁ every 10 (Lanczos)", 2)] = sim(2 * n, 10, method=compiled.PREVIOUS_METHOD)
    notes = {}
    if phi:  # 200 and 400 steps, i.e. 3 and 5 projections, against plain runs of as many
        cells[("plain (Φ steps)", 1)] = sim(200, 200)
        cells[("plain (Φ steps)", 2)] = sim(400, 400)
        cells[("Φ every 100", 1)] = sim(200, 100, track_phi=True)
        cells[("Φ every 100", 2)] = sim(400, 100, track_phi=True)
        if phi_before:
            cells[("Φ every 100 (before)", 1)] = sim(200, 100, track_phi=True, phi_on_device=False)
            cells[("Φ every 100 (before)", 2)] = sim(400, 100, track_phi=True, phi_on_device=False)
    else:
        notes["Φ every 100"] = "not run at this D (--phi-sizes)"
    if batch:
        rng = np.random.default_rng(2)
        w0s = w0 * (1 + 1e-3 * rng.standard_normal((batch, dim)))
        vloop = jax.vmap(loop, in_axes=(0, None))
        ws = jnp.asarray(w0s)
        nb = max(100, n // batch // 100 * 100)
        cells[("hand vmap", 1)] = lambda: jax.block_until_ready(vloop(ws, nb))
        cells[("hand vmap", 2)] = lambda: jax.block_until_ready(vloop(ws, 2 * nb))
        cells[("batched", 1)] = lambda: simulate_batch(jm, w0s, LR, nb, wd=WD, every=nb, pairs=False)
        cells[("batched", 2)] = lambda: simulate_batch(jm, w0s, LR, 2 * nb, wd=WD, every=2 * nb, pairs=False)
        notes["batch"] = (batch, nb)
    return cells, n, notes


def measure(cells: dict, repeats: int, stat: str = "median") -> dict:
    for fn in cells.values():  # compile
        fn()
    times = {key: [] for key in cells}
    for _ in range(repeats):
        for key, fn in cells.items():
            times[key].append(_timed(fn))
    return {key: float(np.median(v) if stat == "median" else np.min(v)) for key, v in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 80, 500, 4000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="about how long one hand run of N steps lasts")
    parser.add_argument("--phi-sizes", type=int, nargs="*", default=[16, 80, 500],
                        help="sizes at which 'Φ every 100' is run (one Φ takes seconds at D = 500, ~25 s at 4000)")
    parser.add_argument("--before", action="store_true",
                        help="also time λ₁ every 10 with the guarded Lanczos at every record "
                             "(compiled.PREVIOUS_METHOD, the default before the tracker)")
    parser.add_argument("--phi-before", action="store_true",
                        help="also time Φ every 100 with the host projection of before 2026-12-05 "
                             "(device_phi.PHI_ON_DEVICE = False)")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="the statistic of the rounds (min: the least disturbed round of each cell, on a busy "
                             "machine)")
    parser.add_argument("--batch", type=int, default=16, help="runs of the batched rows (0: none); D ≤ 500 only")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}; jax {jax.__version__}; {args.stat} of {args.repeats} interleaved rounds", flush=True)
    rows = []
    for dim in args.sizes:
        cells, n, notes = cells_for(dim, args.seconds, dim in args.phi_sizes, args.batch if dim <= 500 else 0,
                                    args.before, args.phi_before)
        med = measure(cells, args.repeats, args.stat)
        rows.append((dim, n, med, notes))
        print(f"measured D={dim} (N = {n})", file=sys.stderr, flush=True)
        print_rows(rows[-1:], header=len(rows) == 1)
    print(f"# after: load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def print_rows(rows, header: bool) -> None:
    if header:
        print(f"{'D':>5} {'mode':<21} {'steps':>7} {'whole s':>9} {'per step µs':>12} {'whole/hand':>11} "
              f"{'vs plain (whole)':>17} {'vs plain (step)':>16}")
    for dim, n, med, notes in rows:
        def step_us(mode, steps):
            return 1e6 * (med[(mode, 2)] - med[(mode, 1)]) / steps

        hand_rate = n / med[("hand", 1)]
        plain_step = step_us("plain", n)
        for mode, steps, base in (("hand", n, None), ("plain", n, "plain"), ("λ₁ every 10", n, "plain"),
                                  ("λ₁ every 10 (Lanczos)", n, "plain"),
                                  ("plain (Φ steps)", 200, None), ("Φ every 100", 200, "plain (Φ steps)"),
                                  ("Φ every 100 (before)", 200, "plain (Φ steps)")):
            if (mode, 1) not in med:
                continue
            whole, per = med[(mode, 1)], step_us(mode, steps)
            vs_hand = f"{(steps / whole) / hand_rate:.2f}" if mode in ("plain", "plain (Φ steps)") else "-"
            vs_whole = f"{whole / med[(base, 1)]:.2f}×" if base and base != mode else "-"
            vs_step = (f"{per / (plain_step if base == 'plain' else step_us(base, steps)):.2f}×"
                       if base and base != mode else "-")
            print(f"{dim:>5} {mode:<21} {steps:>7} {whole:>9.3f} {per:>12.2f} {vs_hand:>11} {vs_whole:>17} {vs_step:>16}")
        if ("batched", 1) in med:
            b, nb = notes["batch"]
            ratio = med[("hand vmap", 1)] / med[("batched", 1)]
            step_ratio = ((med[("hand vmap", 2)] - med[("hand vmap", 1)]) / (med[("batched", 2)] - med[("batched", 1)]))
            print(f"{dim:>5} {'batched B=' + str(b):<21} {nb:>7} {med[('batched', 1)]:>9.3f} "
                  f"{1e6 * (med[('batched', 2)] - med[('batched', 1)]) / nb:>12.2f} "
                  f"{'-':>11} {'hand vmap/batched':>17} {f'{ratio:.2f} (step {step_ratio:.2f})':>16}")
        for k, v in notes.items():
            if k != "batch":
                print(f"      note: {k}: {v}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
