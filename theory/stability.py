"""Linear stability of the edge-of-stability equilibrium of GD+WD (docs/theory.md §4d).

At EoS the iterate flips along v₁ with squared angular amplitude A ≈ a² = 2ηλ/(4 + G), and the excess
q = log(η_eff λ₁(θ)/2) (η_eff = η/((1 - ηλ)‖w‖²)) and A "breathe" about their equilibrium with frequency
√(8ηλ) per step (a Lotka–Volterra centre at leading order, neutral). The envelope ε of the breathing (the relative
amplitude of A, or q/√(ηλ/2)) changes at a rate that is O(ηλ) per step, i.e. O(1) in τ = ηλt:

.. math:: \\frac{d\\log ε}{dτ} = κ(θ) = \\frac{8 + 9G + 2k - 6α^2}{3(4 + G)}
          - \\frac{⟨∇_Γ G, ∇_Γ \\log λ_1⟩}{(4 + G)^2} + O(\\sqrt{ηλ}\\,),

with, at θ ∈ Γ (unit norm), S = λ₁, v₁ its eigenvector, (λ_j, u_j) the eigenpairs of ∇²L(θ) with λ_j > 0, j ≠ 1
(the normal modes; the radial and tangent zero modes are excluded),

* α = ∇³L[v₁, v₁, v₁]/S  (the cubic term along the flip),
* k = (∇⁴L[v₁⁴] + 8S - 3 Σ_j (∇³L[v₁, v₁, u_j])²/λ_j)/S  (the quartic term of L along the great circle through θ
  and v₁, ∇⁴L[v₁⁴] + 8S, with the normal modes slaved to the flip: y_j = -∇³L[v₁,v₁,u_j] φ²/(2λ_j)),
* G = ‖∇_Γ log λ₁‖².

The equilibrium is linearly stable iff κ < 0: 6α² - 2k > 8 + 9G - 3⟨∇_Γ G, ∇_Γ log λ₁⟩/(4 + G). On L = ½S sin²φ
(α = 0, k = -4, G = 0) κ = 0: the breathing is neutral (exactly: the Jacobian of the GD+WD step has determinant -1
on its 2-cycle); on L = 1 - cos φ (k = -1) κ = ½.

Derivation (theory/symbolic/eos_stability.py, `srflow derive eos_stability`): GD+WD in v = w/√η is GD on the sphere with step κ_t = 1/((1 - ηλ)‖v‖²)
followed by κ' = κ/((1 - ηλ)²(1 + κ²‖∇L(v̂)‖²)). Along the flip, in the angle φ from θ towards v₁, the sphere step
is exactly φ' = φ - arctan(κ f'(φ)) with f = L on the great circle; the normal modes are slaved (k above), the
tangent modes drift, moving λ₁(θ) by d log λ₁ = -(κλ₁/2)Gφ² per step. For frozen α, k, G the resulting
two-dimensional map (φ, h = κλ₁) has a 2-cycle; the product of its two Floquet multipliers is the product of the
step Jacobian's determinants on the cycle, which gives the first term of κ; the second is the slow motion of
the equilibrium amplitude 2ηλ/(4 + G(s)) along the flow (dG/ds = -¼⟨∇_Γ G, ∇_Γ log λ₁⟩).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .eos import FD_REL_STEP, fourth_along, grad_G_along_flow
from .manifold import RANK_RTOL, manifold_point

#: κ and the slaving need the whole spectrum of ∇²L(θ) (``numpy.linalg.eigh`` of the D×D Hessian, at every flow
#: sample); above this D (the JAX models' dense-Hessian limit) they are not computed -- a matrix-free κ (the
#: slaved sum Σ_j (∇³L[v₁,v₁,u_j])²/λ_j as one solve on the normal space, the slowest normal modes by Lanczos)
#: is not implemented
STABILITY_MAX_DIM = 2048


def stability_computable(model) -> bool:
    """Whether κ(θ) (``eos_stability``) and the slaving (``eos_slaving``) can be computed for ``model``:
    D ≤ STABILITY_MAX_DIM."""
    return model.dim <= STABILITY_MAX_DIM


@dataclass(frozen=True)
class EosStability:
    """The breathing of the EoS equilibrium at θ: ``rate`` κ = d log ε/dτ (module docstring), its parts, and
    ``stable`` (κ < 0). ``rate_per_step`` = κ·ηλ when ``eta_lambda`` was given, else NaN."""

    rate: float
    stable: bool
    alpha: float
    k: float
    G: float
    dG: float
    lam1: float
    frozen: float
    drift: float
    rate_per_step: float = float("nan")

    @property
    def resolution(self) -> float:
        """The size below which κ is 0 to the precision it is computed: RATE_RTOL × the size of its terms,
        (8 + 9|G| + 2|k| + 6α²)/(3(4 + G)) + |⟨∇_Γ G, ∇_Γ log λ₁⟩|/(4 + G)². A neutral equilibrium (κ ≡ 0, e.g. a
        Rayleigh quotient's isolated minimizer) computes to ±1e-15, whose sign says nothing."""
        G = self.G
        size = (8 + 9 * abs(G) + 2 * abs(self.k) + 6 * self.alpha**2) / (3 * (4 + G)) + abs(self.dG) / (4 + G) ** 2
        return RATE_RTOL * size

    @property
    def unstable(self) -> bool:
        """κ > ``resolution``: the breathing grows (not merely κ > 0 in round-off)."""
        return self.rate > self.resolution


#: the relative accuracy of κ's terms: ∇⁴L[v₁⁴] by Richardson-extrapolated differences (~1e-12) and
#: ⟨∇_Γ G, ∇_Γ log λ₁⟩ by central differences at FD_REL_STEP (truncation ~h² = 1e-8), the coarser of the two
RATE_RTOL = FD_REL_STEP**2


def stability_coefficients(model, theta, h: float = FD_REL_STEP) -> dict:
    """α, k, G and ⟨∇_Γ G, ∇_Γ log λ₁⟩ at θ ∈ Γ (module docstring), from the exact Hessian and third derivative,
    ∇⁴L[v₁⁴] by Richardson-extrapolated central differences of the exact third derivative, and the directional
    derivative of G from two retracted points (as ``theory.eos_sharpness_coefficient``)."""
    mp = manifold_point(model, theta)
    lam1, v1, G = mp.lam1, mp.v1, mp.G
    vals, vecs = np.linalg.eigh(model.hess(mp.theta))
    t11 = model.third(mp.theta, v1, v1)
    normal = (vals > RANK_RTOL * lam1) & (np.arange(len(vals)) < len(vals) - 1)
    slaved = float(np.sum((vecs[:, normal].T @ t11) ** 2 / vals[normal]))
    cubic = float(t11 @ v1)
    quartic = fourth_along(model, mp.theta, v1, h)
    dG = grad_G_along_flow(model, mp, h)
    return {"lam1": lam1, "alpha": cubic / lam1, "k": (quartic + 8 * lam1 - 3 * slaved) / lam1, "G": G, "dG": float(dG)}


def breathing_rate(alpha: float, k: float, G: float, dG: float = 0.0) -> tuple[float, float]:
    """(frozen, drift) parts of κ: (8 + 9G + 2k - 6α²)/(3(4 + G)) and -⟨∇_Γ G, ∇_Γ log λ₁⟩/(4 + G)²."""
    return (8 + 9 * G + 2 * k - 6 * alpha**2) / (3 * (4 + G)), -dG / (4 + G) ** 2


def response_gain(lam_j, lam1: float, eta_lambda: float) -> np.ndarray:
    """Re H_j(ω): the in-phase gain with which normal mode j follows the breathing at ηλ = ``eta_lambda``
    (docs/theory.md §4d, "The slaved modes at finite ηλ"). At η_eff λ₁ = 2 a GD step moves the mode's displacement
    as y_{t+1} = m_j y_t + (1 - m_j) y*_t, m_j = 1 - 2λ_j/λ₁, towards its slaved value y*_t ∝ φ_t²; driven at the
    breathing frequency ω = √(8ηλ) per step it follows with H_j = (1 - m_j)/(e^{iω} - m_j), whose in-phase part

    .. math:: \\mathrm{Re}\\,H_j = \\frac{(1 - m_j)(\\cos ω - m_j)}{1 - 2m_j\\cos ω + m_j^2}
              = \\frac{1}{1 + χ_j^2} + O(ω^2), \\quad χ_j = ω/r_j,\\ r_j = -\\log|m_j|,

    is the factor of the mode's part Δκ_j of κ (its quadrature part shifts the frequency, not the rate). → 1 as
    ηλ → 0 (1 - ω²(1 + m_j)/(2(1 - m_j)²) + O(ω⁴): an O(ηλ) shortfall, χ_j² for a slow mode), → 0 for a mode much
    slower than the breathing (χ_j ≫ 1)."""
    m = 1 - 2 * np.asarray(lam_j, dtype=float) / lam1
    cw = np.cos(np.sqrt(8 * eta_lambda))
    return (1 - m) * (cw - m) / (1 - 2 * m * cw + m**2)


@dataclass(frozen=True)
class Slaving:
    """The normal modes in κ's slaved term at θ and ηλ (``eos_slaving``): eigenvalues ``lam_j`` (λ_j), ``share``
    (Δκ_j, each mode's part of κ), ``chi`` (χ_j = ω/r_j), and ``unslaved`` = Σ Δκ_j over the modes with χ_j ≥ 1.
    ``finite_correction(ηλ)``: Σ_j (Re H_j(ω) - 1)Δκ_j, what the modes' finite response (``response_gain``) adds to
    κ at that ηλ."""

    lam_j: np.ndarray
    share: np.ndarray
    chi: np.ndarray
    lam1: float
    unslaved: float

    def finite_correction(self, eta_lambda: float) -> float:
        """κ(θ; ηλ) - κ(θ) = Σ_j (Re H_j(ω) - 1)·Δκ_j (``response_gain``)."""
        return float(np.sum((response_gain(self.lam_j, self.lam1, eta_lambda) - 1) * self.share))


def eos_slaving(model, theta, eta_lambda: float) -> Slaving:
    """Whether the normal modes are slaved to the flip at ηλ = ``eta_lambda`` (docs/theory.md §4d).

    κ's quartic k holds the normal modes at y_j = -∇³L[v₁,v₁,u_j]φ²/(2λ_j), their response to the flip amplitude φ²
    *at every instant*; mode j's part of κ is

    .. math:: Δκ_j = -\\frac{2\\,(∇^3L[v_1, v_1, u_j])^2}{(4 + G)\\,λ_j λ_1}.

    At η_eff λ₁ = 2 a GD step multiplies a displacement along u_j by 1 - 2λ_j/λ₁, so the mode relaxes at
    r_j = -log|1 - 2λ_j/λ₁| per step, while φ² breathes at ω = √(8ηλ) per step. A first-order relaxation driven at
    ω follows with the in-phase gain r_j²/(r_j² + ω²) = 1 - χ_j² + O(χ_j⁴), χ_j = ω/r_j: for χ_j < 1 the shortfall
    is an O(ηλ) correction (χ_j² = 8ηλ/r_j²) that a linear extrapolation in ηλ removes; for χ_j ≥ 1 the series
    does not converge and the mode does not follow the breathing: its Δκ_j is not in the measured rate at this ηλ.
    ``unslaved`` is the part of κ those modes carry (0 when every mode follows)."""
    mp = manifold_point(model, theta)
    lam1, v1, G = mp.lam1, mp.v1, mp.G
    vals, vecs = np.linalg.eigh(model.hess(mp.theta))
    normal = (vals > RANK_RTOL * lam1) & (np.arange(len(vals)) < len(vals) - 1)
    t11 = model.third(mp.theta, v1, v1)
    lam_j = vals[normal]
    share = -2 * (vecs[:, normal].T @ t11) ** 2 / ((4 + G) * lam_j * lam1)
    rate = -np.log(np.abs(1 - 2 * lam_j / lam1))
    chi = np.sqrt(8 * eta_lambda) / rate
    return Slaving(lam_j, share, chi, float(lam1), float(np.sum(share[chi >= 1])))


@dataclass(frozen=True)
class SlavedOffset:
    """The normal modes' slaved displacement in the squared distance from Γ at θ and ηλ (``slaved_offset``):
    ``following`` = S over the modes that follow the flip (χ_j < 1), ``lagging`` = S over those that do not."""

    following: float
    lagging: float


def slaved_offset(model, theta, eta_lambda: float) -> SlavedOffset:
    """S = Σ_j (∇³L[v₁,v₁,u_j]/(2λ_j))² over the normal modes (λ_j > 0, j ≠ 1) at θ ∈ Γ (unit norm), split by
    whether mode j follows the flip at ηλ = ``eta_lambda`` (a number, or an array: then arrays of its shape) (χ_j = √(8ηλ)/r_j < 1, r_j = -log|1 - 2λ_j/λ₁|, as in
    ``eos_slaving``). The slaved displacement of the normal modes adds to the squared distance from Γ
    (docs/theory.md §4 item 3):

    .. math:: ‖\\bar w - Φ(\\bar w)‖^2 = φ^2 + \\sum_j y_j^2 + O(φ^3), \\qquad
              y_j = -\\frac{∇^3L[v_1,v_1,u_j]\\,φ^2}{2λ_j},

    so that ⟨‖w̄ - Φ(w̄)‖²⟩ = a²(1 + a²S) + O(a³) terms that alternate with the flip's phase, a² =
    ``oscillation_amplitude_sq`` (y_j: the static response of mode j to the flip, as in κ's quartic k). A mode that
    follows the breathing at ω = √(8ηλ) per step also follows its slower mean: a²·``following`` is its share. A slow
    mode (χ_j ≥ 1) reaches y_j only after ~1/r_j steps from the EoS start and lags behind a y_j that moves with θ:
    on a finite run it carries between 0 and a²·``lagging`` -- no power series in ηλ."""
    mp = manifold_point(model, theta)
    vals, vecs = np.linalg.eigh(model.hess(mp.theta))
    normal = (vals > RANK_RTOL * mp.lam1) & (np.arange(len(vals)) < len(vals) - 1)
    t11 = model.third(mp.theta, mp.v1, mp.v1)
    lam_j = vals[normal]
    part = ((vecs[:, normal].T @ t11) / (2 * lam_j)) ** 2
    with np.errstate(divide="ignore"):  # λ_j = λ₁/2 relaxes in one step
        rate = -np.log(np.abs(1 - 2 * lam_j / mp.lam1))
    x = np.asarray(eta_lambda, dtype=float)
    if not (np.all(np.isfinite(x)) and np.all((x > 0) & (x < 1))):
        raise ValueError(f"eta_lambda: expected ηλ in (0, 1), got {eta_lambda!r}")
    lagging = np.sqrt(8 * x)[..., None] >= rate  # χ_j ≥ 1, for each ηλ
    following, lag = np.sum(np.where(lagging, 0.0, part), axis=-1), np.sum(np.where(lagging, part, 0.0), axis=-1)
    if x.ndim == 0:
        return SlavedOffset(float(following), float(lag))
    return SlavedOffset(following, lag)


def eos_stability(model, theta, eta_lambda: float | None = None) -> EosStability:
    """The growth rate κ = d log ε/dτ of the EoS breathing above θ ∈ Γ and whether the equilibrium is stable
    (κ < 0); formula and derivation in the module docstring (docs/theory.md §4d)."""
    c = stability_coefficients(model, theta)
    frozen, drift = breathing_rate(c["alpha"], c["k"], c["G"], c["dG"])
    rate = frozen + drift
    per_step = float("nan")
    if eta_lambda is not None:
        if isinstance(eta_lambda, bool) or not isinstance(eta_lambda, (int, float, np.integer, np.floating)) \
                or not 0 < eta_lambda < 1:
            raise ValueError(f"eta_lambda: expected ηλ in (0, 1), got {eta_lambda!r}")
        per_step = rate * eta_lambda
    return EosStability(rate, rate < 0, c["alpha"], c["k"], c["G"], c["dG"], c["lam1"], frozen, drift, per_step)


def nowd_stabilization(model, theta) -> float:
    """β at θ ∈ Γ: the 2-cycle of the flip with angular amplitude ε (squared amplitude A = ε²) is neutral at
    η_eff λ₁ = h_c = 2 + 2βA + O(A²), with

    .. math:: β = \\frac{3α^2 - k + 8}{6}

    (α, k of ``stability_coefficients``: the cubic term, and the quartic on the great circle with the normal modes
    slaved). Derivation: the exact sphere step φ' = φ - arctan(h g(φ)), g = φ + αφ²/2 + kφ³/6, has the 2-cycle
    φ = -αε²/2 ± ε at h = 2 + (3α² - k + 8)ε²/3 (theory/symbolic/nowd_rest.py). So GD without WD grows its flip at
    d log A/dt = 4(u - βA), u = log(η_eff λ₁/2) (docs/theory.md §5; ``nowd_final``'s ``stabilization``). On
    L = ½S sin²φ (α = 0, k = -4) β = 2: the exact flip needs η_eff λ₁ = 2/cos 2φ."""
    c = stability_coefficients(model, theta)
    return float((3 * c["alpha"] ** 2 - c["k"] + 8) / 6)


@dataclass(frozen=True)
class NowdSlaving:
    """The normal modes in β's slaved term at θ for GD without WD started at η_eff λ₁ = 2(1 + ε)
    (``nowd_slaving``): eigenvalues ``lam_j``, each mode's part ``share`` of β (Δβ_j), ``chi`` (χ_j = 4 log(1 + ε)/r_j),
    and ``unslaved`` = Σ Δβ_j over the modes with χ_j ≥ 1."""

    lam_j: np.ndarray
    share: np.ndarray
    chi: np.ndarray
    lam1: float
    unslaved: float


def nowd_slaving(model, theta, eps: float) -> NowdSlaving:
    """Whether the normal modes follow the no-WD catapult started at η_eff λ₁ = 2(1 + ε) (docs/theory.md §5).

    β (``nowd_stabilization``) holds each normal mode at y_j = -∇³L[v₁,v₁,u_j]A/(2λ_j) at every instant; mode j's
    part of β is

    .. math:: Δβ_j = \\frac{(∇^3L[v_1, v_1, u_j])^2}{2 λ_j λ_1}.

    A GD step near η_eff λ₁ = 2 relaxes a displacement along u_j at r_j = -log|1 - 2λ_j/λ₁| per step, while A
    changes at a rate |d log A/dt| = 4|u - βA| ≤ 4u₀ per step (u₀ = log(1 + ε)). A first-order relaxation following
    a drive that grows at rate σ lags by the factor r_j/(r_j + σ) = 1 - χ_j + O(χ_j²), χ_j = σ/r_j: for χ_j < 1 an
    O(ε) correction to that mode's part (an O(ε²) term of the rest point), for χ_j ≥ 1 the series does not converge
    and the mode does not follow: its Δβ_j is not what the run sees."""
    mp = manifold_point(model, theta)
    lam1, v1 = mp.lam1, mp.v1
    vals, vecs = np.linalg.eigh(model.hess(mp.theta))
    normal = (vals > RANK_RTOL * lam1) & (np.arange(len(vals)) < len(vals) - 1)
    t11 = model.third(mp.theta, v1, v1)
    lam_j = vals[normal]
    share = (vecs[:, normal].T @ t11) ** 2 / (2 * lam_j * lam1)
    with np.errstate(divide="ignore"):  # λ_j = λ₁/2 relaxes in one step: r_j = inf, χ_j = 0
        rate = -np.log(np.abs(1 - 2 * lam_j / lam1))
    chi = 4 * np.log1p(eps) / rate
    return NowdSlaving(lam_j, share, chi, float(lam1), float(np.sum(share[chi >= 1])))

