"""A stiff gradient flow without matrices: the second-order Runge-Kutta-Chebyshev method (RKC).

Gradient flow ẋ = -∇L(x) near a manifold of minimizers is stiff: its Jacobian -∇²L has eigenvalues from
-λ₁ (fast, the sharpest normal direction) to -μ (μ the smallest positive eigenvalue), and the flow must run for a
time ~ log(1/tol)/μ. An explicit method of fixed stability interval (DOP853: |hλ₁| ≲ 6) needs ~ λ₁/μ·log(1/tol)
steps: 10⁵-10⁶ gradients on the digits MLP (λ₁/μ ≈ 2.7e4). RKC (van der Houwen & Sommeijer 1980; Sommeijer,
Shampine & Verwer 1997) is explicit -- gradient calls only -- with s stages whose stability interval on the
negative real axis grows as β(s) ≈ 0.653 s², so a step h needs only s ≈ √(hρ/0.653) gradients, ρ ≥ λ₁ the
spectral radius: the flow to time T costs ~ √(ρT) gradients instead of ρT.

The scheme (damping ε = 2/13, w₀ = 1 + ε/s², w₁ = T_s'(w₀)/T_s''(w₀), b_j = T_j''(w₀)/T_j'(w₀)² for j ≥ 2,
b₀ = b₁ = b₂; T_j the Chebyshev polynomials of the first kind), with F = -∇L::

    Y₀ = x_n,  Y₁ = Y₀ + μ̃₁ h F(Y₀),                                          μ̃₁ = b₁ w₁
    Y_j = (1 - μ_j - ν_j) Y₀ + μ_j Y_{j-1} + ν_j Y_{j-2} + μ̃_j h F(Y_{j-1}) + γ̃_j h F(Y₀)
    μ_j = 2b_j w₀/b_{j-1},  ν_j = -b_j/b_{j-2},  μ̃_j = 2b_j w₁/b_{j-1},  γ̃_j = -(1 - b_{j-1}T_{j-1}(w₀)) μ̃_j
    x_{n+1} = Y_s

is second order for every s, and its local error is estimated by
E = (12(x_n - x_{n+1}) + 6h(F(x_n) + F(x_{n+1})))/15 (the RKC paper's estimator), held to
‖E/(atol + rtol|x|)‖_rms ≤ 1 with the step factor 0.8·err^(-1/3).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: the damping of the Chebyshev polynomial (RKC's value: a stability interval 0.653 s² with a margin inside it)
DAMPING = 2.0 / 13.0
#: the spectral radius is taken this much above the estimate handed in (the Hessian changes along the flow)
RHO_MARGIN = 1.2
#: RKC's recursion stays well conditioned up to a few hundred stages; beyond, the step is cut instead
MAX_STAGES = 250
#: the spectral radius is re-estimated every this many accepted steps
RHO_EVERY = 25


def _coefficients(s: int):
    """Per stage j = 0..s: (μ_j, ν_j, μ̃_j, γ̃_j) of the damped RKC scheme, and w₁ (see the module docstring)."""
    w0 = 1.0 + DAMPING / s**2
    t = np.zeros(s + 1)
    dt = np.zeros(s + 1)
    ddt = np.zeros(s + 1)
    t[0], t[1], dt[1] = 1.0, w0, 1.0
    for j in range(2, s + 1):
        t[j] = 2 * w0 * t[j - 1] - t[j - 2]
        dt[j] = 2 * t[j - 1] + 2 * w0 * dt[j - 1] - dt[j - 2]
        ddt[j] = 4 * dt[j - 1] + 2 * w0 * ddt[j - 1] - ddt[j - 2]
    w1 = dt[s] / ddt[s]
    b = np.zeros(s + 1)
    b[2:] = ddt[2:] / dt[2:] ** 2
    b[0] = b[1] = b[2]
    mu, nu, mut, gat = (np.zeros(s + 1) for _ in range(4))
    mut[1] = b[1] * w1
    for j in range(2, s + 1):
        mu[j] = 2 * b[j] * w0 / b[j - 1]
        nu[j] = -b[j] / b[j - 2]
        mut[j] = 2 * b[j] * w1 / b[j - 1]
        gat[j] = -(1 - b[j - 1] * t[j - 1]) * mut[j]
    return mu, nu, mut, gat


def stages_for(h: float, rho: float) -> int:
    """The fewest stages whose stability interval β(s) ≈ 0.653 s² covers hρ: s = 1 + ⌈√(1 + 1.54 hρ)⌉ (RKC's
    rule)."""
    return 1 + math.ceil(math.sqrt(1.0 + 1.54 * h * rho))


def rkc_step(f: Callable, x: np.ndarray, fx: np.ndarray, h: float, s: int) -> np.ndarray:
    """One RKC step of size h with s stages from x (fx = f(x))."""
    mu, nu, mut, gat = _coefficients(s)
    y_prev2, y_prev = x, x + mut[1] * h * fx
    for j in range(2, s + 1):
        y = (1 - mu[j] - nu[j]) * x + mu[j] * y_prev + nu[j] * y_prev2 + mut[j] * h * f(y_prev) + gat[j] * h * fx
        y_prev2, y_prev = y_prev, y
    return y_prev


def rkc_integrate(f: Callable, x0: np.ndarray, t_end: float, rho: Callable[[np.ndarray], float], rtol: float,
                  atol: float, stop: Callable[[np.ndarray, np.ndarray], bool] | None = None,
                  max_evals: int = 10_000_000) -> tuple[np.ndarray, float, int]:
    """ẋ = f(x) from x0 for t ∈ [0, t_end] by RKC with error control, stopping early at the first accepted
    step where ``stop(x, f(x))`` holds. ``rho(x)``: an upper estimate of the spectral radius of ∂f/∂x near x
    (taken RHO_MARGIN higher). Returns (x, t reached, number of f evaluations)."""
    x = np.array(x0, dtype=float)
    fx = f(x)
    evals = 1
    t = 0.0
    if stop is not None and stop(x, fx):
        return x, t, evals
    r = RHO_MARGIN * rho(x)
    h = min(t_end, 1.0 / r)  # the explicit-Euler scale; the error control takes it from there
    accepted = 0
    while t < t_end:
        if evals > max_evals:  # also ends a run whose steps keep coming out non-finite
            raise RuntimeError(f"RKC: more than {max_evals} evaluations before t = {t_end:g} (reached t = {t:.3g})")
        h = min(h, t_end - t, (MAX_STAGES**2 - 1) / (1.54 * r))
        s = stages_for(h, r)
        x_new = rkc_step(f, x, fx, h, s)
        f_new = f(x_new)
        evals += s
        if not (np.all(np.isfinite(x_new)) and np.all(np.isfinite(f_new))):
            h *= 0.1
            continue
        est = (12 * (x - x_new) + 6 * h * (fx + f_new)) / 15
        err = float(np.sqrt(np.mean((est / (atol + rtol * np.maximum(np.abs(x), np.abs(x_new)))) ** 2)))
        if err <= 1.0:
            t += h
            x, fx = x_new, f_new
            if stop is not None and stop(x, fx):
                break
            accepted += 1
            if accepted % RHO_EVERY == 0:
                r = RHO_MARGIN * rho(x)
            h *= min(10.0, max(0.1, 0.8 * err ** (-1 / 3))) if err > 0 else 10.0
        else:
            h *= max(0.1, 0.8 * err ** (-1 / 3))
    return x, t, evals
