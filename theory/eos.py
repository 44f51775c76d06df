"""The sharpness at the edge of stability to first order in ηλ (docs/theory.md §4b).

GD+WD at EoS oscillates across Γ: the pair average of η λ₁(∇²L(w_t)) over t, t+1 is

.. math:: η⟨λ_1⟩ = 2 + c(θ)\\,ηλ + O((ηλ)^{3/2}),

.. math:: c = -1 + \\frac{⟨∇_Γ G, ∇_Γ \\log λ_1⟩}{(4+G)^2} - \\frac{G}{4+G}
          + \\frac{4}{(4+G)\\,λ_1}\\Big[\\frac{∇^4L[v_1^4]}{3} + \\sum_{j≠1}\\frac{(∇^3L[v_1,v_1,u_j])^2}{λ_1-λ_j}\\Big],

all at θ ∈ Γ (unit norm), (λ_j, u_j) the eigenpairs of ∇²L(θ) (the sum includes the zero eigenvalues of the
radial and tangent directions: 4λ₁ + Gλ₁ of it). Derivation: the exact identity H̄_t d_t = (1 - ηλ)d_t - d_{t+1}
of GD+WD in v = w/√η (d_t = v_t - v_{t+1}, H̄_t the Hessian averaged on the segment) gives the segment
average along the flip; the centre's drift along Γ and its radial shrinking per step, and the slow change of
the amplitude, all predicted by the leading order, fix d_t·d_{t+1}; the endpoint eigenvalues differ from the
segment average by a²(∇⁴L[v₁⁴]/3 + the second-order eigenvalue sum). On L = ½λ₁ sin²φ it gives c = -1, the
exact result of theory/symbolic/eos_period_two.py. The often-quoted threshold 2(1 - ηλ) (c = -2) is off at O(ηλ)
in general: c = -4.4, -1.6 and +3.9 on the default models, each confirmed by simulation to ≈ 1% of c.
"""

from __future__ import annotations

import numpy as np

from srflow.toy_models.validate import positive_real, real, real_array

from . import backend
from .manifold import manifold_point, newton_polish
from .sharpness import check_hyperparameters

#: step of the central differences at unit ‖θ‖: ∇⁴L[v₁⁴] from the exact third derivative, Richardson-extrapolated
#: (truncation ~h⁴·∇⁸L ≈ 1e-14, round-off ~ε/h ≈ 1e-12, relative), and ⟨∇_Γ G, ∇_Γ log λ₁⟩ from G at two
#: retracted points (truncation ~h² ≈ 1e-8 relative; it enters c multiplied by ηλ)
FD_REL_STEP = 1e-4


def fourth_along(model, theta: np.ndarray, v: np.ndarray, h: float = FD_REL_STEP) -> float:
    """∇⁴L(θ)[v, v, v, v]: central differences D(h) of the exact ∇³L(·)[v, v]·v along v, extrapolated
    (4D(h/2) - D(h))/3."""
    def central(step):
        return (model.third(theta + step * v, v, v) - model.third(theta - step * v, v, v)) @ v / (2 * step)

    return float((4 * central(h / 2) - central(h)) / 3)


def grad_G_along_flow(model, mp, h: float = FD_REL_STEP) -> float:
    """⟨∇_Γ G, ∇_Γ log λ₁⟩ at the manifold point ``mp``: the central difference of G between the two points of Γ
    retracted from θ ± (h/√G)·∇_Γ log λ₁ (0 where G = 0)."""
    if mp.G <= 0:
        return 0.0
    step = h / np.sqrt(mp.G)
    g_plus = manifold_point(model, newton_polish(model, mp.theta + step * mp.grad_log)).G
    g_minus = manifold_point(model, newton_polish(model, mp.theta - step * mp.grad_log)).G
    return float((g_plus - g_minus) / (2 * step))


def eos_sharpness_coefficient(model, theta, h: float = FD_REL_STEP) -> float:
    """c(θ) of η⟨λ₁(∇²L(w_t))⟩ = 2 + c·ηλ (module docstring), from the exact Hessian and third derivative at θ
    and central differences for ∇⁴L[v₁⁴] and ⟨∇_Γ G, ∇_Γ log λ₁⟩. Dense: one eigendecomposition of ∇²L(θ); above DENSE_MAX_DIM the sum over the
    other eigenpairs is one CG solve (``theory.matrix_free.second_order_sum``)."""
    positive_real(h, "h", "a finite-difference step > 0 (relative to ‖θ‖ = 1)")
    mp = manifold_point(model, theta)
    lam1, v1, G = mp.lam1, mp.v1, mp.G
    second_order = backend.for_model(model).second_order_sum(model, mp.theta, lam1, v1, model.third(mp.theta, v1, v1))
    quartic = fourth_along(model, mp.theta, v1, h)
    dG = grad_G_along_flow(model, mp, h)
    return float(-1.0 + dG / (4 + G) ** 2 - G / (4 + G) + 4.0 / ((4 + G) * lam1) * (quartic / 3 + second_order))


def eos_sharpness(model, theta, lr: float, wd: float, coefficient: float | None = None) -> float:
    """The predicted pair average ⟨λ₁(∇²L(w_t))⟩ at EoS above θ ∈ Γ: (2 + c(θ)·ηλ)/η, with c =
    ``coefficient`` when given (already computed at θ) or ``eos_sharpness_coefficient(model, θ)``."""
    check_hyperparameters(lr, wd)
    c = eos_sharpness_coefficient(model, theta) if coefficient is None else real(coefficient, "coefficient")
    return (2.0 + c * lr * wd) / lr


def oscillation_curvature(d_t, d_next, lr: float, wd: float) -> float:
    """The curvature along the oscillation: the Rayleigh quotient RQ(H̄_t, d_t) = d_tᵀH̄_t d_t/|d_t|² of the Hessian
    averaged on the segment of one step, H̄_t = ∫₀¹ ∇²L(w_t + σd_t) dσ, from two consecutive steps of GD+WD
    (w_{t+1} = (1 - ηλ)w_t - η∇L(w_t), ``verification.simulate``) alone:

    .. math:: \\mathrm{RQ}(\\bar H_t, d_t) = \\frac{(1 - ηλ) - d_t·d_{t+1}/|d_t|^2}{η},
              \\qquad d_t = w_{t+1} - w_t,\\ d_{t+1} = w_{t+2} - w_{t+1}.

    Exact, with no expansion: subtracting two updates gives d_{t+1} = (1 - ηλ)d_t - η(∇L(w_{t+1}) - ∇L(w_t)), and
    ∇L(w_{t+1}) - ∇L(w_t) = H̄_t d_t (the fundamental theorem of calculus along the segment); the dot product with
    d_t/|d_t|² gives the formula (docs/theory.md §4b step 1, in v = w/√η, where the 1/η is absorbed).

    Read against the edge-of-stability threshold 2(1 - ηλ)/η (``eos_threshold``), as λ₁(∇²L(w_t)) is:
    η·RQ/(2(1 - ηλ)) = 1 is "at the threshold". An exact flip w_{t+2} = w_t (d_{t+1} = -d_t) gives η·RQ = 2 - ηλ,
    i.e. η·RQ/(2(1 - ηλ)) = 1 + ηλ/(2(1 - ηλ)) (1.001 at ηλ = 2e-3); at the EoS equilibrium the slow growth α of
    the flip and the centre's drift move it by further O(ηλ) terms (η·RQ = 2 - ηλ + α - ηλG/4, docs/theory.md §4b
    step 2). Unlike λ₁ at an end point of the flip, RQ averages the curvature over the segment the iterate
    actually crosses, so it has no ±a∇³L[v₁,v₁,v₁] term alternating between the two phases."""
    check_hyperparameters(lr, wd)
    d_t, d_next = real_array(d_t, "d_t", ndim=1), real_array(d_next, "d_next", ndim=1)
    if d_t.shape != d_next.shape:
        raise ValueError(f"d_next: expected the shape of d_t {d_t.shape}, got {d_next.shape}")
    dd = float(d_t @ d_t)
    if not dd > 0:
        raise ValueError("d_t: expected a nonzero step w_{t+1} - w_t (the quotient along a zero step is undefined)")
    return float(((1.0 - lr * wd) - float(d_t @ d_next) / dd) / lr)

