"""Can the device Φ's flow stop earlier? The stop ‖∇L(x)‖ ≤ GRAD_RTOL·λ₁ of ``verification.device_phi`` against what
the Newton finish after it can repair, measured two ways. Printed, not asserted.

Run from the repository root: python -m benchmarks.bench_phi_stop [--sizes 500 4000] [--models mf bn_linear]
[--stops 1e-9 1e-8 1e-7 3e-7 1e-6 3e-6 1e-5] [--repeats 2]

1. ``stop``: the device pass (``device_phi.device_phi``) over the records of bench_records' Φ run (``mf`` at D, GD+WD
   at η = 0.1, ηλ = 1e-3 from bench_engine's EoS start, steps 0, 100, …, 400) with GRAD_RTOL set to each of
   ``--stops`` (a setting: no new compilation): CPU time per record (mean of ``--repeats`` passes after one
   warm-up), flow gradients per record and ‖Φ_device − Φ_host‖ per record, the host ``theory.project_to_manifold``
   (GRAD_RTOL 1e-9, LSODA/RKC) the reference; ``d`` = ‖w̄ − Φ(w̄)‖.
2. ``newton``: the Newton finish alone, on dense models (``--models``, rng 3): from x = (θ + εu)/‖·‖, θ ∈ Γ and u an
   eigenvector of ∇²L(θ) (eigenvalue λ_u), ``theory.manifold.newton_polish`` (8 steps) against Φ(x)
   (``project_to_manifold``), with its truncation at the default RANK_RTOL·λ₁ and at 1e-2·λ₁, beside the
   prediction N(x) − Φ(x) = −(3/4)ε² P_T∇³L(θ)[u, u]/λ_u (``device_phi``'s module docstring, "The flow's stop").
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from srflow.theory import project_to_manifold
from srflow.theory.gamma import RANK_RTOL
from srflow.theory.manifold import newton_polish, tangent_space
from srflow.toy_models import make_model
from srflow.toy_models.jax_losses import make_jax_model
from srflow.verification import device_phi

from .bench_engine import LR, WD, models, start


def records(dim: int):
    """(numpy model, JAX model, the iterates w_t at t = 0, 100, …, 400 of GD+WD from bench_engine's start)."""
    ref, jm, theta = models(dim)
    grad = jax.jit(jax.grad(jm.jax_loss))
    w, ws = start(jm, theta), []
    for t in range(401):
        if t % 100 == 0:
            ws.append(np.array(w))
        w = (1 - LR * WD) * w - LR * np.asarray(grad(w))
    return ref, jm, np.array(ws)


def stop_table(dim: int, stops, repeats: int) -> None:
    ref, jm, ws = records(dim)
    lam0 = device_phi.device_phi(jm, ws)["lam0"]
    host = np.array([project_to_manifold(ref, w).theta for w in ws])
    saved = device_phi.GRAD_RTOL
    try:
        for grad_rtol in stops:
            device_phi.GRAD_RTOL = grad_rtol
            out = device_phi.device_phi(jm, ws, lam0)
            t0 = time.process_time()
            for _ in range(repeats):
                out = device_phi.device_phi(jm, ws, lam0)
            per_record = (time.process_time() - t0) / repeats / len(ws)
            err = np.linalg.norm(out["theta"] - host, axis=1)
            print(f"D = {dim} GRAD_RTOL {grad_rtol:.0e}: {1e3 * per_record:6.1f} ms/record, flow gradients "
                  f"{out['flow_gradients']}, |Φ - host| {np.array2string(err, precision=2)}"
                  f"{'' if out['reached'].all() else ' (not all reached)'}", flush=True)
    finally:
        device_phi.GRAD_RTOL = saved
    d = np.linalg.norm(ws / np.linalg.norm(ws, axis=1)[:, None] - host, axis=1)
    print(f"D = {dim}: d = {np.array2string(d, formatter={'float_kind': lambda v: f'{v:.2g}'})}")


def newton_table(name: str) -> None:
    ref, jm = make_model(name, rng=3), make_jax_model(name, rng=3)
    theta = project_to_manifold(ref, ref.minimizer(np.random.default_rng(0))).theta
    vals, vecs = np.linalg.eigh(ref.hess(theta))
    basis = tangent_space(ref, theta)
    p_t = basis @ basis.T  # basis: (D, dim Γ), orthonormal columns
    grad = jax.grad(jm.jax_loss)
    pos = np.where(vals > RANK_RTOL * vals[-1])[0]
    for idx in (pos[0], pos[len(pos) // 2], pos[-1]):
        u, lam_u = vecs[:, idx], vals[idx]
        tuu = jax.jvp(lambda y: jax.jvp(grad, (y,), (jnp.asarray(u),))[1], (jnp.asarray(theta),),
                      (jnp.asarray(u),))[1]
        pred = -0.75 * p_t @ np.asarray(tuu) / lam_u
        for eps in (4e-3, 2e-3, 1e-3):
            x = theta + eps * u
            x /= np.linalg.norm(x)
            phi = project_to_manifold(ref, x).theta
            row = []
            for rank_rtol in (RANK_RTOL, 1e-2):
                diff = newton_polish(ref, x, iters=8, rank_rtol=rank_rtol) - phi
                row.append(f"rank_rtol {rank_rtol:.0e}: |N - Φ| {np.linalg.norm(diff):.3e} "
                           f"(cos to the prediction {diff @ pred / np.linalg.norm(diff) / np.linalg.norm(pred):+.4f})")
            print(f"{name} λ_u/λ₁ {lam_u / vals[-1]:.3f} ε {eps:.0e}: predicted {eps**2 * np.linalg.norm(pred):.3e}; "
                  + "; ".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[500, 4000])
    parser.add_argument("--models", nargs="*", default=["mf", "bn_linear"])
    parser.add_argument("--stops", type=float, nargs="*", default=[1e-9, 1e-8, 1e-7, 3e-7, 1e-6, 3e-6, 1e-5])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for name in args.models:
        newton_table(name)
    for dim in args.sizes:
        stop_table(dim, args.stops, args.repeats)


if __name__ == "__main__":
    main()
