"""GD+WD against the cluster flow on the designed tie toys (docs/theory.md §4c), printed (not asserted):

* ``track NAME``: flow-tracking (and naive-flow-rejected) on ``toy_models.ties.NAME`` with η = 0.1, ηλ = --ladder (default
  1e-3, 3e-4, 1e-4, 3e-5, 1e-5), τ ≤ --tau, 25 records, seed 0 -- the path and clock errors per rung, the verdicts, δ* and the flow's
  events; ``--on-tie`` starts on the tie (``cross_slide``: y = (0.3, 0.5, ·); ``cross_halt``: at the halt point
  y₀ = 0.1), otherwise at the toy's designed start (a join on the way);
* ``halt``: GD+WD from the halt point of ``cross_halt`` at each ηλ, 300 records: max |y₀ − 0.1| of Φ(w̄_t) and the
  mean of y₀ − 0.1 over the second half (the time average the cluster flow predicts).

* ``audit MODEL``: ``theory.cluster_audit`` (top-k eigenvalues, branch gradients, crossing times and avoided-crossing
  gaps to first order) at the start point ``srflow verify`` draws for a registered model (seed 0), e.g. bn_mlp
  (matrix-free; ~5 min of CPU).

Run from the repository root: python3 -m benchmarks.cluster_toys track cross_slide --on-tie
                              python3 -m benchmarks.cluster_toys halt
                              python3 -m benchmarks.cluster_toys audit bn_mlp --k 6
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from srflow.toy_models.ties import TIE_MODELS, cross_halt
from srflow.verification import checks
from srflow.verification.session import Session, VerifyConfig
from srflow.verification.simulate import eos_start, simulate
from srflow.verification.tracking import gdwd_horizon

ON_TIE = {"cross_slide": [0.3, 0.5, np.sqrt(0.66)], "cross_halt": [0.1, 0.3, np.sqrt(0.9)],
          "triple": [0.25, 0.25 * np.sqrt(3), np.sqrt(0.75)]}
LADDER = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5)


def track(name: str, on_tie: bool, tau: float, ladder=LADDER) -> None:
    kw = {"start": ON_TIE[name]} if on_tie and name in ON_TIE else {}
    session = Session(TIE_MODELS[name](**kw), VerifyConfig(lr=0.1, ladder=tuple(ladder), tau_end=tau, records=25,
                                                           extend_steps=0), 0)
    t = time.perf_counter()
    res = checks.check_flow_tracking(session)
    naive = checks.check_naive_flow_rejected(session)
    flow = session.flow(gdwd_horizon(session))
    print(f"{name} ({'on the tie' if kw else 'designed start'}), τ ≤ {tau:g}: {time.perf_counter() - t:.0f} s")
    print("events:", [(round(e["s"], 6), e["kind"], e["k"]) for e in flow.events], "near ties:", flow.near_ties)
    for key in ("path_errors", "clock_errors"):
        print(f"{key}:", ", ".join(f"{e:.3g}" for e in res.details.get(key, [])))
    print("flow-tracking:", res.status, "--", res.message)
    print("resolving power:", res.resolving_power)
    print("naive-flow-rejected:", naive.status, "--", naive.message)


def halt(ladder) -> None:
    model = cross_halt(start=ON_TIE["cross_halt"])
    rot, theta0 = model.linear, model.minimizer(0)
    for eta_lambda in ladder:
        lr = 0.1
        steps = int(0.3 / eta_lambda)
        tr = simulate(model, eos_start(model, theta0, lr, eta_lambda / lr), lr, steps, wd=eta_lambda / lr,
                      every=(steps // 300) | 1, track_phi=True)
        y0 = (tr.phi @ rot.T)[:, 0] - 0.1
        half = len(y0) // 2
        print(f"ηλ = {eta_lambda:g}: max |y₀ − 0.1| = {np.max(np.abs(y0)):.3g}, mean over the second half "
              f"{np.mean(y0[half:]):+.3g}, its sd {np.std(y0[half:]):.3g}")


def audit(name: str, k: int) -> None:
    from srflow.theory import cluster_audit
    from srflow.toy_models import make_model
    from srflow.verification.session import QUICK

    t = time.perf_counter()
    session = Session(make_model(name, rng=0), QUICK, 0, spec=name)
    theta = session.theta0
    print(f"θ₀ ({time.perf_counter() - t:.0f} s)")
    a = cluster_audit(session.model, theta, k=k)
    np.set_printoptions(precision=4, linewidth=150)
    for f in ("values", "G_simple", "G_cluster", "k_tied", "weights", "gap", "closing", "crossing_s", "coupling",
              "min_gap", "seconds"):
        print(f, getattr(a, f))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("track")
    t.add_argument("name", choices=sorted(TIE_MODELS))
    t.add_argument("--on-tie", action="store_true")
    t.add_argument("--tau", type=float, default=0.3)
    t.add_argument("--ladder", type=float, nargs="+", default=list(LADDER))
    a = sub.add_parser("audit")
    a.add_argument("name")
    a.add_argument("--k", type=int, default=6)
    h = sub.add_parser("halt")
    h.add_argument("--ladder", type=float, nargs="+", default=[1e-3, 1e-4, 3e-5])
    args = ap.parse_args(argv)
    if args.what == "track":
        track(args.name, args.on_tie, args.tau, args.ladder)
    elif args.what == "audit":
        audit(args.name, args.k)
    else:
        halt(args.ladder)


if __name__ == "__main__":
    main()
