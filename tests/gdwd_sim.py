"""A minimal GD+WD simulation for the theory tests (the full simulators live in verification/)."""

from __future__ import annotations

import numpy as np

from theory import manifold_point, oscillation_amplitude_sq, project_to_manifold


def gdwd_from_eos(model, theta0, lr, wd, tau_end, every=1000, kick="amplitude"):
    """w_{t+1} = (1 - ηλ) w_t - η∇L(w_t) from ‖w₀‖² = ηλ₁/(2(1-ηλ)) (the EoS norm) at θ₀ ∈ Γ, kicked along
    v₁ by the predicted amplitude a = √((ηλ/2)·4/(4+G)) (or by the number ``kick``).

    Returns steps (n,), Φ(w̄_t) (n, D), ‖w_t‖² (n,), and the squared component of w̄_t - Φ(w̄_t) along the
    top eigenvector at Φ, averaged over each recording window (n - 1,).
    """
    mp = manifold_point(model, theta0)
    a = np.sqrt(oscillation_amplitude_sq(lr, wd, mp.G)) if kick == "amplitude" else float(kick)
    w = np.sqrt(lr * mp.lam1 / (2 * (1 - lr * wd))) * (theta0 + a * mp.v1)
    steps, thetas, norms, amp_sq = [], [], [], []
    n_steps = int(round(tau_end / (lr * wd)))
    window, v1 = [], mp.v1
    for t in range(n_steps + 1):
        if t % every == 0:
            theta = project_to_manifold(model, w).theta
            steps.append(t), thetas.append(theta), norms.append(w @ w)
            if window:
                amp_sq.append(np.mean(window))
            window, v1 = [], manifold_point(model, theta).v1
        window.append((w @ v1) ** 2 / (w @ w))
        w = (1 - lr * wd) * w - lr * model.grad(w)
    return np.array(steps), np.array(thetas), np.array(norms), np.array(amp_sq)
