"""Closed-form predictions for GD+WD on a scale-invariant loss (docs/theory.md §4).

Symbols: η = ``lr``, λ = ``wd``, λ₁ = ``lam1`` = spherical sharpness λ₁(∇²L(θ)) at θ ∈ Γ (unit norm),
G = ‖∇_Γ log λ₁(θ)‖².

Every function validates its arguments (``toy_models.validate``): a NaN, an infinite or a non-positive sharpness
or norm raises a ValueError naming the argument, so no nonsense number (a negative norm, a zero duration) comes
out of a wrong input.
"""

from __future__ import annotations

import numpy as np

from srflow.toy_models.validate import nonnegative_real, positive_real, positive_values, real, real_array

from .sharpness import check_hyperparameters

#: how ``lam1`` is described in the errors: λ₁ of ∇²L at a point of Γ, positive there (a minimum with a
#: positive curvature along v₁) and finite
SHARPNESS = "a spherical sharpness λ₁(θ) > 0 (finite)"


def eos_lr_sharpness(eta_lambda):
    """η·λ₁(∇²L(w_t)) at the edge of stability: 2(1 - ηλ) (the period-2 flip condition η_eff λ₁(θ) = 2 with
    η_eff = η/((1 - ηλ)‖w‖²) and λ₁(θ) = ‖w‖²λ₁(∇²L(w))). ``eta_lambda`` may be an array; each value in [0, 1).

    >>> eos_lr_sharpness(1e-3)
    1.998
    """
    x = np.asarray(eta_lambda, dtype=float)
    if not np.all(np.isfinite(x) & (x >= 0) & (x < 1)):
        raise ValueError(f"eta_lambda: expected ηλ in [0, 1), got {eta_lambda!r}")
    out = 2.0 * (1.0 - x)
    return float(out) if out.ndim == 0 else out


def eos_threshold(lr: float, wd: float = 0.0) -> float:
    """λ₁(∇²L(w_t)) at the edge of stability: 2(1 - ηλ)/η (``eos_lr_sharpness`` over η)."""
    check_hyperparameters(lr, wd)
    return eos_lr_sharpness(lr * wd) / lr


def eta_eff_sharpness(lr: float, wd: float, lam1):
    """η_eff·λ₁(θ) of an iterate w from λ₁ = λ₁(∇²L(w)) (``lam1``, elementwise for an array): ηλ₁(∇²L(w))/(1 - ηλ),
    since η_eff = η/((1 - ηλ)‖w‖²) (``theory.effective_lr``) and λ₁(θ) = ‖w‖²λ₁(∇²L(w)) (degree -2). It is 2 at the
    edge of stability (``eos_threshold``)."""
    check_hyperparameters(lr, wd)
    lam1 = positive_values(lam1, "lam1", "λ₁(∇²L(w)) > 0 (finite)")
    return lr * lam1 / (1 - lr * wd)


def equilibrium_norm_sq(lr: float, wd: float, lam1: float) -> float:
    """‖w‖² at EoS: η λ₁(θ) / (2(1 - ηλ)) (elementwise for an array of λ₁)."""
    check_hyperparameters(lr, wd)
    lam1 = positive_values(lam1, "lam1", SHARPNESS)
    return lr * lam1 / (2.0 * (1.0 - lr * wd))


def oscillation_amplitude_sq(lr: float, wd: float, G: float = 0.0) -> float:
    """a² = (ηλ/2)·4/(4 + G): the squared amplitude of w̄'s flip along v₁ (to leading order in ηλ).

    From the norm recursion at EoS: d log‖w‖²/dt = -2ηλ + 4a² must equal d log λ₁/dt = -(G/4)·4a².
    """
    check_hyperparameters(lr, wd)
    G = nonnegative_real(G, "G", "G = ‖∇_Γ log λ₁‖² >= 0 (finite)")
    return 0.5 * lr * wd * 4.0 / (4.0 + G)


def collapse_factor(c: float) -> float:
    """The factor between two GD+WD runs with the same ηλ: (cη, λ/c) from √c·w₀ is √c times (η, λ) from w₀, step
    for step (∇L(√c w) = ∇L(w)/√c for a scale-invariant L, so √c w' = (1 - ηλ)√c w - cη∇L(√c w))."""
    if not (np.isfinite(c) and c > 0):
        raise ValueError(f"c: expected a positive finite learning-rate ratio, got {c!r}")
    return float(np.sqrt(c))


def breathing_period(eta_lambda):
    """Steps per period of the slow norm-amplitude oscillation of GD+WD at EoS about its equilibrium:
    2π/√(8ηλ) (docs/theory.md §4b: dA/dt = 4uA, du/dt = 2ηλ - 4(1 + G/4)A linearized has ω² = 8ηλ).
    ``eta_lambda`` may be an array; each value must be in (0, 1)."""
    omega = breathing_frequency(eta_lambda)
    out = 2 * np.pi / omega
    return float(out) if np.ndim(out) == 0 else out


def breathing_frequency(eta_lambda):
    """ω = √(8ηλ) per step: the angular frequency of the slow norm-amplitude oscillation (``breathing_period`` =
    2π/ω). ``eta_lambda`` may be an array; each value must be in (0, 1)."""
    x = np.asarray(eta_lambda, dtype=float)
    if not np.all(np.isfinite(x) & (x > 0) & (x < 1)):
        raise ValueError(f"eta_lambda: expected ηλ in (0, 1), got {eta_lambda!r}")
    out = np.sqrt(8 * x)
    return float(out) if out.ndim == 0 else out


def time_scale_separation(s_gap: float, G: float, eta_lambda):
    """The separation of time scales the cluster flow needs (docs/theory.md §4c, "which assumption fails"): a branch
    meets λ₁ after flow time ``s_gap``, i.e. after Δτ = s_gap·(4 + G)/8 of τ = ηλt (the clock ds/dτ = 8/(4 + G) to
    first order, G = ‖∇_Γ log λ₁‖² at the start), while GD+WD re-equilibrates its oscillation amplitude over one
    breathing period, τ_b = ηλ·2π/√(8ηλ) = 2π√(ηλ/8). Returns (Δτ, τ_b, ηλ_max): τ_b for each ``eta_lambda`` and
    ηλ_max = 8(Δτ/2π)², the largest ηλ with τ_b ≤ Δτ; the cluster's amplitudes can follow its changes only below."""
    if not (np.isfinite(s_gap) and s_gap > 0):
        raise ValueError(f"s_gap: expected a positive flow time, got {s_gap!r}")
    if not (np.isfinite(G) and G >= 0):
        raise ValueError(f"G: expected ‖∇_Γ log λ₁‖² ≥ 0, got {G!r}")
    dtau = s_gap * (4.0 + G) / 8.0
    tau_b = np.asarray(eta_lambda, dtype=float) * breathing_period(eta_lambda)
    return dtau, (float(tau_b) if tau_b.ndim == 0 else tau_b), 8.0 * (dtau / (2 * np.pi)) ** 2


def norm_decay_rate(lr: float, wd: float) -> float:
    """log of the per-step factor of ‖w‖² under GD+WD on Γ (phase 2): 2 log(1 - ηλ).

    With ∇L(w) ⟂ w (scale invariance), ‖w_{t+1}‖² = (1 - ηλ)²‖w_t‖² + η²‖∇L(w_t)‖² exactly; on Γ the gradient
    term vanishes and ‖w_t‖² = (1 - ηλ)^{2t}‖w_0‖². Where ‖∇L(w)‖ ≤ ρ·λ₁(∇²L(w))·‖w‖ and ηλ₁(∇²L(w)) ≤ 2(1 - ηλ)
    (before the edge of stability) the measured log-rate exceeds this by at most 4ρ²."""
    check_hyperparameters(lr, wd)
    return 2.0 * float(np.log1p(-lr * wd))


def phase2_duration(lr: float, wd: float, norm_sq: float, lam1: float) -> float:
    """Steps of pure weight decay from ‖w‖² = ``norm_sq`` on Γ to the EoS norm:
    (1 - ηλ)^{2t} ‖w‖² = ηλ₁/(2(1 - ηλ))  ⇒  t = log(2(1 - ηλ)‖w‖²/(ηλ₁)) / (-2 log(1 - ηλ)),
    ≈ (1/(2ηλ)) log(2‖w‖²/(ηλ₁)) for small ηλ. Zero if the norm is already at or below it."""
    check_hyperparameters(lr, wd)
    if wd == 0:
        raise ValueError("wd: without weight decay the norm never shrinks to the EoS norm (λ > 0 needed)")
    norm_sq = positive_real(norm_sq, "norm_sq", "a squared norm ‖w‖² > 0 (finite)")
    ratio = norm_sq / equilibrium_norm_sq(lr, wd, lam1)
    return max(0.0, float(np.log(ratio) / -norm_decay_rate(lr, wd)))


def phase2_steps(eta_lambda: float, norm_ratio: float) -> float:
    """Steps of pure weight decay that shrink ‖w‖² by the factor ``norm_ratio`` (> 1), to leading order in ηλ:
    (1 - ηλ)^{2t} = 1/ratio  ⇒  t ≈ log(ratio)/(2ηλ). The budget of a phase-2 run (``phase2_duration`` is the
    exact count from a state on Γ)."""
    eta_lambda = positive_real(eta_lambda, "eta_lambda", "ηλ in (0, 1)")
    if not eta_lambda < 1:
        raise ValueError(f"eta_lambda: expected ηλ in (0, 1), got {eta_lambda!r}")
    norm_ratio = positive_real(norm_ratio, "norm_ratio", "a ratio of squared norms > 0 (finite)")
    return float(np.log(norm_ratio) / (2 * eta_lambda))


def eos_entry_step(lr: float, wd: float, norm_sq: float, lam1: float, step_on_gamma: float = 0.0) -> float:
    """The step at which EoS starts: the step where the run reached Γ plus ``phase2_duration``."""
    step_on_gamma = nonnegative_real(step_on_gamma, "step_on_gamma", "a step >= 0 (finite)")
    return step_on_gamma + phase2_duration(lr, wd, norm_sq, lam1)


def nowd_start_norm_sq(lr: float, lam1: float, eps: float) -> float:
    """‖w₀‖² at which GD without WD starts with η_eff λ₁ = 2(1 + ε): η λ₁ / (2(1 + ε)) (η_eff = η/‖w‖²)."""
    check_hyperparameters(lr)
    lam1 = positive_real(lam1, "lam1", SHARPNESS)
    eps = real(eps, "eps", "a finite ε > -1")
    if not eps > -1:
        raise ValueError(f"eps: expected a finite ε > -1, got {eps!r}")
    return lr * lam1 / (2.0 * (1.0 + eps))


def alp_flip_step(lr: float, lam1: float, algorithm: str) -> float:
    """δ, the length of one step along v₁ at the 2-cycle across Γ (docs/theory.md §3): normalized GD steps
    η; GD on √L steps η‖∇√L‖ = η√(λ₁/2) near Γ (√L ≈ √(λ₁/2)|x|). The symmetric cycle is x = ±δ/2."""
    check_hyperparameters(lr)
    lam1 = positive_real(lam1, "lam1", SHARPNESS)
    if not isinstance(algorithm, str):
        raise TypeError(f"algorithm: expected one of ngd, ngd-sphere, sqrt, sqrt-sphere, got {algorithm!r}")
    if algorithm.startswith("ngd"):
        return float(lr)
    if algorithm.startswith("sqrt"):
        return float(lr * np.sqrt(lam1 / 2.0))
    raise ValueError(f"algorithm: expected one of ngd, ngd-sphere, sqrt, sqrt-sphere, got {algorithm!r}")


def sqrt_cycle_split(lam1: float, cubic: float, ratios, lr: float, tau: float) -> float:
    """The split C of GD on √L's 2-cycle across Γ (z₊ = Cδ, z₋ = -(1 - C)δ; docs/theory.md §5b), a time τ = η²t
    after the symmetric start C = ½, reported as max(C, 1 - C):

    dC/dτ = -T/(12δ) (T = ``cubic`` = ∇³L[v₁,v₁,v₁], δ = ``alp_flip_step``) until the first normal mode
    destabilizes the pair, at C*(1 - C*) = r*(1 - r*)/2 with r* the ratio λ_j/λ₁ (``ratios``) of largest r(1 - r):

    C(τ) = min(½ + |T|τ/(12δ), C*),   C* = ½(1 + √(1 - 2r*(1 - r*))).
    """
    check_hyperparameters(lr)
    lam1 = positive_real(lam1, "lam1", SHARPNESS)
    cubic = real(cubic, "cubic", "a finite ∇³L[v₁,v₁,v₁]")
    tau = nonnegative_real(tau, "tau", "a time τ = η²t >= 0 (finite)")
    r = real_array(ratios, "ratios", ndim=1)
    r = r[(r > 0) & (r < 1)]
    c_star = 1.0 if r.size == 0 else 0.5 * (1 + np.sqrt(1 - 2 * np.max(r * (1 - r))))
    delta = alp_flip_step(lr, lam1, "sqrt")
    return float(min(0.5 + abs(cubic) * tau / (12 * delta), c_star))
