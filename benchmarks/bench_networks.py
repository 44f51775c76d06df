"""Costs of the real networks (toy_models.bn_nets) at their D, printed side by side (not asserted):

* ``minimizer``: one point of Γ (GD on the sphere + Gauss-Newton; from scratch with --cold, else the disk cache
  of toy_models.bn_nets may answer);
* ``grad``: one ∇L through the numpy boundary; ``GD step``: one GD+WD step in the compiled simulator
  (``verification.compiled``, no records: (t(N₂) - t(N₁))/(N₂ - N₁) removes the compilation and the records);
* ``hvp``: one ∇²L v; ``λ₁ (ARPACK)``: ``theory.top_eigenpairs(k=1, method="lanczos")`` from a cold start;
  ``λ₁ (compiled)``: one record of the compiled simulator with λ₁ at w_t only (Lanczos warm-started);
* ``Φ``: ``theory.matrix_free.project_matrix_free`` (gradient flow until ‖∇L‖ ≤ grad_rtol·λ₁ -- DOP853 for the
  sharp transient, then Runge-Kutta-Chebyshev through the slow tail, ``theory.rkc`` -- then Gauss-Newton steps by
  LSQR on the residual's JVP/VJP) from w̄ = θ + a v₁, a = √(ηλ/2) at ηλ = 1e-3 (the EoS offset), θ = the
  minimizer, at grad_rtol = --phi-rtol (default 1e-9, the theory's default).

Run from the repository root: python3 -m benchmarks.bench_networks [--models bn_mlp bn_cnn] [--no-phi] [--phi-rtol 1e-9] [--cold]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def seconds(fn, repeat: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bn_mlp", "bn_cnn"])
    parser.add_argument("--no-phi", action="store_true", help="skip Φ (the slowest column)")
    parser.add_argument("--phi-rtol", type=float, default=1e-9, help="grad_rtol of Φ's flow (default 1e-9)")
    parser.add_argument("--cold", action="store_true", help="compute the minimizers without the disk cache")
    args = parser.parse_args(argv)
    if args.cold:
        os.environ["SRFLOW_CACHE_DIR"] = tempfile.mkdtemp(prefix="srflow-bench-")
    from srflow.theory import top_eigenpairs
    from srflow.theory.matrix_free import project_matrix_free
    from srflow.toy_models import make_model
    from srflow.verification.simulate import simulate

    rows = {}
    for name in args.models:
        model = make_model(name)
        row = {"D": model.dim, "n_train": model.n_train}
        start = time.perf_counter()
        theta = model.minimizer(np.random.default_rng(0))
        row["minimizer s"] = time.perf_counter() - start
        row["L(θ)"] = model.loss(theta)
        row["test error"] = model.test_error(theta)
        v = np.random.default_rng(1).standard_normal(model.dim)
        row["grad ms"] = 1e3 * seconds(lambda: model.grad(theta), 5)
        row["hvp ms"] = 1e3 * seconds(lambda: model.hvp(theta, v), 5)
        start = time.perf_counter()
        eig = top_eigenpairs(model, theta, k=1, method="lanczos")
        row["λ₁ (ARPACK) s"] = time.perf_counter() - start
        row["λ₁"] = float(eig.values[0])
        lr, wd = 1.0 / row["λ₁"], 1e-3 * row["λ₁"]  # η = 1/λ₁: at EoS ‖w‖² ≈ 1/2; ηλ = 1e-3
        w0 = theta + np.sqrt(1e-3 / 2) * eig.vectors[:, 0]
        n1, n2 = 200, 1200
        simulate(model, w0, lr, n1, wd=wd, every=n1, pairs=False)  # compile
        t1 = seconds(lambda: simulate(model, w0, lr, n1, wd=wd, every=n1, pairs=False), 1)
        t2 = seconds(lambda: simulate(model, w0, lr, n2, wd=wd, every=n2, pairs=False), 1)
        row["GD step ms"] = 1e3 * (t2 - t1) / (n2 - n1)
        # 12 records of λ₁ minus the plain run: the cost of one warm-started λ₁ (120 records took ~25 min on the CNN)
        t3 = seconds(lambda: simulate(model, w0, lr, n2, wd=wd, every=n2 // 12, pairs=False), 1)
        row["λ₁ (compiled) ms"] = 1e3 * (t3 - t2) / 12
        if not args.no_phi:
            start = time.perf_counter()
            proj = project_matrix_free(model, w0, grad_rtol=args.phi_rtol)
            row["Φ s"] = time.perf_counter() - start
            row["Φ flow time"] = proj.flow_time
            row["‖Φ - θ‖"] = float(np.linalg.norm(proj.theta - theta))
            row["‖∇L(Φ)‖/λ₁"] = proj.grad_norm / row["λ₁"]
        rows[name] = row
        print(name, {k: (f"{x:.4g}" if isinstance(x, float) else x) for k, x in row.items()}, flush=True)
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    print(f"\n{'':<18}" + "".join(f"{n:>14}" for n in rows))
    for k in keys:
        vals = [rows[n].get(k, float("nan")) for n in rows]
        print(f"{k:<18}" + "".join(f"{x:>14.4g}" if isinstance(x, float) else f"{x:>14}" for x in vals))


if __name__ == "__main__":
    main()
