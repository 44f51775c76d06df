"""What one projection Φ costs on the dense path, by method, side by side in one process: seconds, gradient /
Hessian / third-derivative calls per projection, the distance to the reference ("bdf") and the error against a
tight flow. Printed, not asserted.

Run from the repository root: python -m benchmarks.bench_phi [--repeats 3] [--models sphere_circle mf ...]

Methods (``theory.project_to_manifold(model, w, method=...)``, ``theory.dense.PHI_METHODS``):

* ``bdf``: the reference (scipy BDF, rtol 1e-10, atol 1e-13, Jacobian -∇²L, until ‖∇L‖ ≤ 1e-9·λ₁, then Newton);
* ``lsoda``: the same flow and stop by LSODA (the default);
* ``expand``: LSODA stopped near Γ, then Φ's second-order expansion (``theory.dense.project_expand``).

Starts: ``far``, a standard normal draw (how ``verification.session`` finds θ₀ on a model without ``minimizer``)
and ``near``, θ + 0.01·ξ/√D at a point θ of Γ (a GD iterate near Γ, what flow-tracking projects every record).
``tight``: the same flow by BDF at rtol 1e-13, atol 1e-16 until ‖∇L‖ ≤ 1e-11·λ₁, then Newton: ``err`` is
|θ - tight|. Times are medians over ``--repeats`` rounds, the methods interleaved within each round (the machine is
shared; the load is printed before and after), wall clock (``s``) and CPU time of this process (``cpu``: less
sensitive to the load). Calls are counted by a wrapper around the model.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.integrate import solve_ivp

from srflow.theory import dense
from srflow.theory.manifold import project_to_manifold
from srflow.toy_models.registry import make_model
from srflow.toy_models.validate import unit
from srflow.toy_models.zoo import conditioning, zoo_model

MODELS = ["sphere_circle", "mf", "mf_D80", "bn_linear", "zoo:bn-np-min-d3-h3-n9-s1734431760",
          "zoo:curved-np-min-h0.54-k3-lc3.5-lg2.11-lr0.33-m2-s1564997911", "zoo:rq_sum-np-min-D7-k2-lc3.5-la1-s8817"]
METHODS = dense.PHI_METHODS


class Counted:
    """``model`` with its calls of grad, hess and third counted."""

    def __init__(self, model):
        self.model, self.dim = model, model.dim
        self.calls = {"grad": 0, "hess": 0, "third": 0}
        if getattr(model, "manifold_dim", None) is not None:
            self.manifold_dim = model.manifold_dim

    def grad(self, x):
        self.calls["grad"] += 1
        return self.model.grad(x)

    def hess(self, x):
        self.calls["hess"] += 1
        return self.model.hess(x)

    def third(self, x, u, v):
        self.calls["third"] += 1
        return self.model.third(x, u, v)

    def hvp(self, x, v):
        return self.model.hvp(x, v)

    def loss(self, x):
        return self.model.loss(x)


def build(name: str):
    """A registry model, ``zoo:<spec>``, or ``mf_D80`` (mf of 20×20, rank 2: D = 80, issue 20's middle size)."""
    if name == "mf_D80":
        return make_model("mf", m=20, n=20, rank=2)
    return zoo_model(name[4:]) if name.startswith("zoo:") else make_model(name)


def tight(model, w) -> np.ndarray:
    """Φ(w/‖w‖) by BDF at rtol 1e-13, atol 1e-16 until ‖∇L‖ ≤ 1e-11·λ₁, then Newton (the error yardstick)."""
    x0 = unit(w, "w")
    target = 1e-11 * float(np.linalg.eigvalsh(model.hess(x0))[-1])
    small = lambda t, x: np.linalg.norm(model.grad(x)) - target  # noqa: E731
    small.terminal = True
    sol = solve_ivp(lambda t, x: -model.grad(x), (0.0, 1e8), x0, method="BDF", events=small, rtol=1e-13,
                    atol=1e-16, jac=lambda t, x: -model.hess(x))
    return dense.newton_polish(model, unit(sol.y[:, -1], "w"))


def starts(model, seed: int = 0) -> dict:
    g = np.random.default_rng(seed)
    far = g.standard_normal(model.dim)
    theta = (model.minimizer(np.random.default_rng(seed + 1)) if hasattr(model, "minimizer")
             else project_to_manifold(model, far, method="bdf").theta)
    return {"far": far, "near": unit(theta + 0.01 * g.standard_normal(model.dim) / np.sqrt(model.dim), "w")}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"# bench_phi: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    header = (f"{'model':44s} {'D':>3s} {'λ₁/μ':>8s} {'start':5s} | "
              + " | ".join(f"{m:>6s}: s    cpu  grad hess 3rd |Δθ|bdf  err" for m in METHODS))
    print(header)
    totals = {m: np.zeros(5) for m in METHODS}
    for name in args.models:
        model = build(name)
        for label, w in starts(model).items():
            ref_tight = tight(model, w)
            times = {m: [] for m in METHODS}
            cpu = {m: [] for m in METHODS}
            out = {}
            for _ in range(args.repeats):
                for m in METHODS:
                    counted = Counted(model)
                    t0, c0 = time.perf_counter(), time.process_time()
                    theta = project_to_manifold(counted, w, method=m).theta
                    times[m].append(time.perf_counter() - t0)
                    cpu[m].append(time.process_time() - c0)
                    out[m] = (theta, counted.calls)
            kappa = conditioning(model, out["bdf"][0])["lam1_over_mu"]
            cells = []
            for m in METHODS:
                theta, calls = out[m]
                sec, csec = float(np.median(times[m])), float(np.median(cpu[m]))
                totals[m] += [sec, csec, calls["grad"], calls["hess"], calls["third"]]
                cells.append(f"{sec:6.3f} {csec:6.3f} {calls['grad']:5d} {calls['hess']:4d} {calls['third']:3d} "
                             f"{np.linalg.norm(theta - out['bdf'][0]):8.1e} {np.linalg.norm(theta - ref_tight):7.1e}")
            print(f"{name:44.44s} {model.dim:3d} {kappa:8.3g} {label:5s} | " + " | ".join(cells), flush=True)
    print("total".ljust(66) + " | " + " | ".join(f"{t[0]:6.3f} {t[1]:6.3f} {int(t[2]):5d} {int(t[3]):4d} {int(t[4]):3d}"
                                                 + " " * 17 for t in totals.values()))
    print(f"# load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
