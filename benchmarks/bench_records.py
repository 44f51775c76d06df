"""What measuring costs on the compiled path: whole runs and per step of srflow's compiled simulator
against a hand-written JAX loop of the same update, side by side in one process, on normalized matrix
factorization (``mf``) at D = 16, 80, 500, 4000. Printed, not asserted.

Run from the repository root: python -m benchmarks.bench_records [--sizes 16 80 500 4000] [--repeats 5]
[--seconds 0.3] [--phi-sizes 16 80 500] [--batch 16] [--batch-big 4] [--before] [--phi-before]
[--batch-before REV] [--phi-before-rev REV] [--lam1-before REV] [--clock wall|cpu] [--stat median|min] [--no-lam1-rows]
[--settle STEPS]

Modes (GD+WD, η = 0.1, ηλ = 1e-3, from the EoS norm above a point of Γ kicked by 1e-3, or with ``--settle STEPS``
from the hand loop's iterate STEPS steps later; ``simulate(..., pairs=False, dense_clock=False)`` on the JAX twin).
The kicked start enters the EoS through a chaotic transient (mf D = 500: λ₁ between 18.3 and 22.3, the top
eigenvector moving by up to 5e-2 between records 10 steps apart, no better predicted by extrapolating the last
records than by the last one: ``python -m benchmarks.bench_hvp --motion STEPS``), in which every λ₁ record needs a
Lanczos; a run of N steps from it measures that transient and the steady state, one from ``--settle`` the steady
state:

* ``hand``: w ← (1 - ηλ)w - η∇L(w) in one jit-compiled ``lax.scan`` (no records);
* ``plain``: srflow with records only at the first and the last step (λ₁ at both: per-run costs);
* ``λ₁ every 10``: a record every 10 steps (λ₁ by the default tracker, ``compiled.track_top``: one Rayleigh HVP per
  record certified by its residual, a full Lanczos when the residual says so);
* ``λ₁ every 10 (before)`` (with ``--lam1-before REV``): the same with ``verification/compiled.py`` as it was at
  git revision REV (``compiled_at``), timed in the same rounds;
* ``λ₁ every 10 (Lanczos)`` (with ``--before``): the same with the method before the tracker
  (``compiled.PREVIOUS_METHOD``: a guarded Lanczos from the extrapolated start at every record), timed in the same
  rounds;
* ``Φ every 100``: also Φ(w̄_t) at every record, every 100 steps: on the device (``verification.device_phi``, one
  compiled pass over the run's records);
* ``Φ every 100 (before)`` (with ``--phi-before``): the same with Φ by the host ``theory.project_to_manifold`` at
  each record (``device_phi.PHI_ON_DEVICE = False``, the method before 2026-12-05), timed in the same rounds;
* ``Φ 100 (device, prev.)`` (with ``--phi-before``): the device pass with the settings of its first version
  (``device_phi.PREVIOUS``: both legs of the flow at rtol 1e-10, no PI step control, RKC only after 400 steps,
  padded records flowed), timed in the same rounds;
* ``Φ every 100 (rev)`` (with ``--phi-before-rev REV``): the same with ``verification/device_phi.py`` as it was at
  git revision REV, imported beside today's (``device_phi_at``; the engine's hook ``compiled.PHI_RECORDS`` points
  to it for the cell's run), timed in the same rounds;
* ``batched``: B runs from kicked copies of w₀ by ``simulate_batch`` (one vmapped run, records at each run's
  first and last step) against the hand loop under ``vmap`` (``jit(vmap(loop))``), N/B steps per run; B =
  ``--batch`` (16) below D = 4000 and ``--batch-big`` (4) from D = 4000 on (at B = 16 a run of D = 4000 has 100
  steps, and its two λ₁ records, ≈ 20 HVPs, weigh as much as 45 of them);
* ``batched (before)`` (with ``--batch-before REV``): the same with ``verification/compiled.py`` as it was at git
  revision REV, imported beside today's (``compiled_at``), timed in the same rounds.

Every cell is compiled (run once) first; then the cells are timed in turn, ``--repeats`` rounds, and the table
shows medians (the machine is shared: interleaving spreads a load burst over all cells), or minima with ``--stat
min`` (the least disturbed round of each cell: at load 8 on 2 cores one device Φ pass at D = 80 took 0.011-0.95 s
over 12 repeats). ``whole``: the median (min) time of a run of N steps; ``per step``: the marginal cost (t(2N) - t(N))/N, which cancels per-run costs (the
first record's cold Lanczos, the host copies, building the Trajectory). N is set per D from a first timing of the
hand loop so that one run lasts about ``--seconds``. The ratios are compared with these targets: whole run vs
hand (≥ 0.8), λ₁ every 10 vs plain (≤ 1.25 at D ≥ 80, ≤ 2 at D = 16), Φ every 100 vs plain (≤ 2 at D ≥ 500,
≤ 5 at D = 16), batched vs hand vmap (≥ 0.9). Each round starts one cell further on; ``paired`` (batched rows): the
median over the rounds of the ratio within a round; ``per run``: the per-run cost, the intercept 2·t(N/B) - t(2N/B) (the
runs' λ₁ records at their first and last step, the host's work), and the hand vmap's. ``--clock cpu`` times the process's CPU time instead of wall
time: on a shared machine wall time charges a cell for the time it waited for a core (at load 4-8 on 2 cores one
code's batched/hand ratio at D = 80 was 0.61 and 0.86 in two wall-time runs; two CPU-time runs differed by ≤ 0.06).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from srflow.verification import compiled, device_phi
from srflow.verification.compiled import simulate_batch
from srflow.verification.simulate import simulate

from .bench_engine import LR, WD, hand_loop, models, start


#: the clock of the timings: ``time.perf_counter`` (wall) or ``time.process_time`` (the CPU time of every thread of
#: this process, set by ``--clock cpu``: on a shared machine it leaves out the time the process waited for a core,
#: which wall time charges to whichever cell was running; the cells here run on one core at a time)
CLOCK = time.perf_counter


def _timed(fn) -> float:
    t0 = CLOCK()
    fn()
    return CLOCK() - t0


def module_at(rev: str, relpath: str = "verification/compiled.py"):
    """The module ``relpath`` (under verification/) as it was at the git revision ``rev``, imported beside the current
    one (as ``srflow.verification._<name>_at_<rev>``, its relative imports resolved against today's package): the
    "before" of a side-by-side table."""
    root = Path(__file__).resolve().parent.parent
    src = subprocess.run(["git", "show", f"{rev}:{relpath}"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    stem = Path(relpath).stem
    name = f"srflow.verification._{stem}_at_{rev.replace('~', '_').replace('^', '_')}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    module.__package__ = "srflow.verification"
    sys.modules[name] = module
    exec(compile(src, f"{rev}:{relpath}", "exec"), module.__dict__)
    return module


def compiled_at(rev: str):
    """``verification/compiled.py`` as it was at the git revision ``rev`` (``module_at``)."""
    return module_at(rev, "verification/compiled.py")


def device_phi_at(rev: str):
    """``verification/device_phi.py`` as it was at the git revision ``rev`` (``module_at``). Importing it sets the
    compiled engine's hook ``compiled.PHI_RECORDS`` to its ``record_phis``: the hook is restored to today's here, and
    the cells of ``--phi-before-rev`` set it for the duration of their run."""
    hook = compiled.PHI_RECORDS
    try:
        return module_at(rev, "verification/device_phi.py")
    finally:
        compiled.PHI_RECORDS = hook


def cells_for(dim: int, seconds: float, phi: bool, batch: int, before: bool = False,
              phi_before: bool = False, batch_before=None, lam_rows: bool = True,
              phi_rev=None, lam1_before=None, settle: int = 0) -> tuple[dict, int, dict]:
    """The timed cells of one D: name -> zero-argument callable; N; notes. ``settle``: every cell starts from the
    hand loop's iterate after that many steps from the kicked start (0: from the kicked start itself)."""
    ref, jm, theta = models(dim)
    w0 = start(ref if ref is not None else jm, theta)
    loop = hand_loop(jm)
    if settle:
        w0 = np.asarray(loop(jnp.asarray(w0), settle))
    w0j = jnp.asarray(w0)
    probe = 5000 if dim < 500 else 500 if dim < 4000 else 20
    loop(w0j, probe).block_until_ready()
    # the least disturbed of three probes (one probe at a load burst set N at D = 4000 to 700 instead of ≈ 2900)
    per = min(_timed(lambda: loop(w0j, probe).block_until_ready()) for _ in range(3)) / probe
    n = int(max(100, min(10**6, round(seconds / per / 100) * 100)))

    def sim(steps, every, track_phi=False, method=None, phi_on_device=True, phi_settings=None, phi_module=None):
        def run():
            saved = compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS
            hook = compiled.PHI_RECORDS
            if phi_module is not None:
                compiled.PHI_RECORDS = phi_module.record_phis
            saved_phi = {name: getattr(device_phi, name) for name in (phi_settings or {})}
            if method is not None:
                compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS = method
            device_phi.PHI_ON_DEVICE = phi_on_device
            for name, value in (phi_settings or {}).items():
                setattr(device_phi, name, value)
            try:
                tr = simulate(jm, w0, LR, steps, wd=WD, every=every, pairs=False, track_phi=track_phi,
                              dense_clock=False)
            finally:
                compiled.WARM_START, compiled.WARM_RTOL, compiled.GUARD_EPS = saved
                compiled.PHI_RECORDS = hook
                device_phi.PHI_ON_DEVICE = True
                for name, value in saved_phi.items():
                    setattr(device_phi, name, value)
            assert not tr.diverged, tr.diverged
        return run

    cells = {
        ("hand", 1): lambda: loop(w0j, n).block_until_ready(),
        ("hand", 2): lambda: loop(w0j, 2 * n).block_until_ready(),
        ("plain", 1): sim(n, n),
        ("plain", 2): sim(2 * n, 2 * n),
    }
    if lam_rows:
        cells[("λ₁ every 10", 1)] = sim(n, 10)
        cells[("λ₁ every 10", 2)] = sim(2 * n, 10)
    if lam1_before is not None:  # the records of verification/compiled.py at another revision, in the same rounds
        def sim_before(steps):
            def run():
                tr = lam1_before.simulate_compiled(jm, w0, LR, steps, wd=WD, every=10, pairs=False, dense_clock=False)
                assert not tr.diverged, tr.diverged
            return run
        cells[("λ₁ every 10 (before)", 1)] = sim_before(n)
        cells[("λ₁ every 10 (before)", 2)] = sim_before(2 * n)
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
            cells[("Φ 100 (device, prev.)", 1)] = sim(200, 100, track_phi=True, phi_settings=device_phi.PREVIOUS)
            cells[("Φ 100 (device, prev.)", 2)] = sim(400, 100, track_phi=True, phi_settings=device_phi.PREVIOUS)
        if phi_rev is not None:
            cells[("Φ every 100 (rev)", 1)] = sim(200, 100, track_phi=True, phi_module=phi_rev)
            cells[("Φ every 100 (rev)", 2)] = sim(400, 100, track_phi=True, phi_module=phi_rev)
            notes["Φ every 100 (rev)"] = f"verification/device_phi.py at {phi_rev.__name__.split('_at_')[-1]}"
    else:
        notes["Φ every 100"] = "not run at this D (--phi-sizes)"
    if batch:
        rng = np.random.default_rng(2)
        w0s = w0 * (1 + 1e-3 * rng.standard_normal((batch, dim)))
        # the hand loop vmapped and compiled as one function (vmap of the jitted loop re-traced the batching at
        # every call: ≈ 0.1-1 ms of Python per call)
        vloop = jax.jit(jax.vmap(loop, in_axes=(0, None)), static_argnums=1)
        ws = jnp.asarray(w0s)
        nb = max(100, n // batch // 100 * 100)
        cells[("hand vmap", 1)] = lambda: jax.block_until_ready(vloop(ws, nb))
        cells[("hand vmap", 2)] = lambda: jax.block_until_ready(vloop(ws, 2 * nb))

        def batched(fn, steps):
            def run():
                runs = fn(jm, w0s, LR, steps, wd=WD, every=steps, pairs=False)
                assert not any(r.diverged for r in runs)
            return run
        cells[("batched", 1)] = batched(simulate_batch, nb)
        cells[("batched", 2)] = batched(simulate_batch, 2 * nb)
        if batch_before is not None:
            cells[("batched (before)", 1)] = batched(batch_before.simulate_batch, nb)
            cells[("batched (before)", 2)] = batched(batch_before.simulate_batch, 2 * nb)
        notes["batch"] = (batch, nb)
    return cells, n, notes


def measure(cells: dict, repeats: int, stat: str = "median") -> tuple[dict, dict]:
    """(the statistic of each cell's times, the times of each round): every cell once per round, each round
    starting one cell further on (so that no cell always runs first after another's load burst)."""
    for fn in cells.values():  # compile
        fn()
    keys = list(cells)
    times = {key: [] for key in cells}
    for r in range(repeats):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            times[key].append(_timed(cells[key]))
    return {key: float(np.median(v) if stat == "median" else np.min(v)) for key, v in times.items()}, times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 80, 500, 4000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="about how long one hand run of N steps lasts")
    parser.add_argument("--phi-sizes", type=int, nargs="*", default=[16, 80, 500],
                        help="sizes at which 'Φ every 100' is run (a device Φ takes ≈ 0.03 s at D = 500, 0.08 s "
                             "at 4000; the host Φ of --phi-before ≈ 1 s at 500)")
    parser.add_argument("--before", action="store_true",
                        help="also time λ₁ every 10 with the guarded Lanczos at every record "
                             "(compiled.PREVIOUS_METHOD, the default before the tracker)")
    parser.add_argument("--phi-before", action="store_true",
                        help="also time Φ every 100 with the host projection of before 2026-12-05 "
                             "(device_phi.PHI_ON_DEVICE = False) and with the device pass's first settings "
                             "(device_phi.PREVIOUS)")
    parser.add_argument("--phi-before-rev", metavar="REV", default=None,
                        help="also time Φ every 100 with verification/device_phi.py of git revision REV, imported "
                             "beside today's, in the same rounds")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="the statistic of the rounds (min: the least disturbed round of each cell, on a busy "
                             "machine)")
    parser.add_argument("--batch", type=int, default=16, help="runs of the batched rows (0: none, at any D)")
    parser.add_argument("--batch-big", type=int, default=4,
                        help="runs of the batched rows at D ≥ 4000 (each run has N/B steps: a large B leaves few "
                             "steps per run, whose two λ₁ records then weigh)")
    parser.add_argument("--batch-before", metavar="REV", default=None,
                        help="also time the batched rows with verification/compiled.py of git revision REV, "
                             "in the same rounds")
    parser.add_argument("--lam1-before", metavar="REV", default=None,
                        help="also time 'λ₁ every 10' with verification/compiled.py of git revision REV, in the same "
                             "rounds")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or the process's CPU time (robust to other jobs on the machine; equal to "
                             "wall time on a quiet machine when the cells use one core)")
    parser.add_argument("--no-lam1-rows", action="store_true", help="leave out the 'λ₁ every 10' rows")
    parser.add_argument("--settle", type=int, default=0, metavar="STEPS",
                        help="start every cell from w after STEPS hand steps from the kicked start: past the EoS "
                             "entry's transient (mf: ≈ 15000 steps at D = 80, 3000-3800 at D = 500 and 4000), whose "
                             "records need a Lanczos each")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    before_module = compiled_at(args.batch_before) if args.batch_before else None
    phi_module = device_phi_at(args.phi_before_rev) if args.phi_before_rev else None
    lam1_module = compiled_at(args.lam1_before) if args.lam1_before else None
    load = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}; jax {jax.__version__}; {args.stat} of {args.repeats} interleaved rounds, {args.clock} "
          "time", flush=True)
    rows = []
    for dim in args.sizes:
        cells, n, notes = cells_for(dim, args.seconds, dim in args.phi_sizes,
                                    (args.batch if dim < 4000 else args.batch_big) if args.batch else 0, args.before,
                                    args.phi_before, before_module, not args.no_lam1_rows, phi_module, lam1_module,
                                    args.settle)
        med, times = measure(cells, args.repeats, args.stat)
        notes["times"] = times
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
                                  ("λ₁ every 10 (before)", n, "plain"), ("λ₁ every 10 (Lanczos)", n, "plain"),
                                  ("plain (Φ steps)", 200, None), ("Φ every 100", 200, "plain (Φ steps)"),
                                  ("Φ every 100 (before)", 200, "plain (Φ steps)"),
                                  ("Φ 100 (device, prev.)", 200, "plain (Φ steps)"),
                                  ("Φ every 100 (rev)", 200, "plain (Φ steps)")):
            if (mode, 1) not in med:
                continue
            whole, per = med[(mode, 1)], step_us(mode, steps)
            vs_hand = f"{(steps / whole) / hand_rate:.2f}" if mode in ("plain", "plain (Φ steps)") else "-"
            vs_whole = f"{whole / med[(base, 1)]:.2f}×" if base and base != mode else "-"
            vs_step = (f"{per / (plain_step if base == 'plain' else step_us(base, steps)):.2f}×"
                       if base and base != mode else "-")
            print(f"{dim:>5} {mode:<21} {steps:>7} {whole:>9.3f} {per:>12.2f} {vs_hand:>11} {vs_whole:>17} {vs_step:>16}")
        for mode in ("hand vmap", "batched", "batched (before)"):
            if (mode, 1) not in med:
                continue
            b, nb = notes["batch"]
            label = f"{mode} B={b}"
            per = 1e6 * (med[(mode, 2)] - med[(mode, 1)]) / nb
            if mode == "hand vmap":
                print(f"{dim:>5} {label:<21} {nb:>7} {med[(mode, 1)]:>9.3f} {per:>12.2f} {'-':>11} {'-':>17} {'-':>16}")
                continue
            ratio = med[("hand vmap", 1)] / med[(mode, 1)]
            step_ratio = ((med[("hand vmap", 2)] - med[("hand vmap", 1)]) / (med[(mode, 2)] - med[(mode, 1)]))
            # the ratio within each round (the two cells ran seconds apart), its median over the rounds
            times = notes["times"]
            paired = float(np.median(np.array(times[("hand vmap", 1)]) / np.array(times[(mode, 1)])))
            # the per-run cost: the intercept 2·t(N/B) - t(2N/B) of the two run lengths (the two λ₁ records of each run,
            # the host's work), against the hand vmap's
            fixed = 1e3 * (2 * med[(mode, 1)] - med[(mode, 2)])
            fixed_hand = 1e3 * (2 * med[("hand vmap", 1)] - med[("hand vmap", 2)])
            print(f"{dim:>5} {label:<21} {nb:>7} {med[(mode, 1)]:>9.3f} {per:>12.2f} "
                  f"{'-':>11} {'hand vmap/batched':>17} "
                  f"{f'{ratio:.2f} (step {step_ratio:.2f}, paired {paired:.2f}; per run {fixed:.1f} ms, hand {fixed_hand:.1f})':>16}")
        for k, v in notes.items():
            if k not in ("batch", "times"):
                print(f"      note: {k}: {v}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
