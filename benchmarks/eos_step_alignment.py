"""Why λ₁ sits above the EoS threshold on the BN MLP while the curvature along the oscillation sits at it (fig9,
docs/theory.md §9): at the last records of fig9's η = 0.1 run, compare three statistics over the threshold
2(1 - ηλ)/η -- λ₁(∇²L(w_t)), the end-point curvature along the step d_tᵀ∇²L(w_t)d_t/|d_t|², and the segment average
RQ(H̄_t, d_t) (``theory.oscillation_curvature``) -- and the alignment |cos(d_t, v₁)| of the step with the top
eigenvector. λ₁ ≥ the end-point curvature along any direction; the gap between those two is the step's
misalignment with v₁, the gap between the last two the curvature's variation across the segment.

    PYTHONPATH=$PWD python benchmarks/eos_step_alignment.py [--lr 0.1] [--records 6]

(about 40 s on one core: fig9's full run for one η, then one Lanczos solve per record shown.)
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv=None) -> None:
    from srflow.figures import fig9_bn_eos as f9
    from srflow.figures._common import bn_init, bn_net, lam1
    from srflow.theory import eos_threshold, equilibrium_norm_sq, oscillation_curvature, top_eigenpairs
    from srflow.verification.compiled import simulate_batch
    from srflow.verification.simulate import _step  # the simulators' update (one source of truth)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=0.1, help="one of fig9's η (0.05, 0.1, 0.2)")
    p.add_argument("--records", type=int, default=6, help="how many of the last records to show")
    args = p.parse_args(argv)
    k = list(f9.LRS).index(args.lr)
    model = bn_net("bn_mlp", **f9.SIZES[False])
    lr, wd = args.lr, f9.ETA_LAMBDA / args.lr
    steps, every = f9._settings(False)
    u = bn_init(model, 0, k)
    u = u / np.linalg.norm(u)
    w0 = u * np.sqrt(f9.RATIO * equilibrium_norm_sq(lr, wd, lam1(model, u)))
    tr = simulate_batch(model, w0[None], lr, steps, wd=wd, every=every, pairs=False, keep_iterates=True)[0]
    thr = eos_threshold(lr, wd)
    print(f"fig9 run η = {lr:g}, ηλ = {f9.ETA_LAMBDA:g}: statistics over the threshold {thr:.4g}")
    print("step   λ₁    end-point d·Hd/|d|²   RQ(H̄, d)   |cos(d, v₁)|")
    for t, w in zip(tr.steps[-args.records:], tr.iterates[-args.records:]):
        w1 = _step(model, "gdwd", w, model.grad(w), lr, wd)
        w2 = _step(model, "gdwd", w1, model.grad(w1), lr, wd)
        d, d_next = w1 - w, w2 - w1
        pair = top_eigenpairs(model, w, k=1)
        v1 = np.asarray(pair.vectors)[:, 0]
        end = float(d @ model.hvp(w, d) / (d @ d))
        cos = abs(float(v1 @ d)) / (np.linalg.norm(v1) * np.linalg.norm(d))
        print(f"{int(t):5d}  {float(pair.values[0]) / thr:.3f}  {end / thr:.3f}                 "
              f"{oscillation_curvature(d, d_next, lr, wd) / thr:.3f}       {cos:.3f}")


if __name__ == "__main__":
    main()
