"""Every tolerance of the project, by kind of comparison. Errors are reported in units of these.

A comparison passes when scaled = error / (tol · scale) ≤ 1, where ``scale`` is the natural size of the
compared quantity (stated with each check). Values are set from an error analysis, not tuned to pass.
"""

#: Exact identities evaluated in float64 (scale invariance, Euler relations, symmetry): round-off of a
#: few dozen flops per entry, ~1e-15 relative; 1e-12 leaves room for D' ≈ 100 and conditioning.
IDENTITY_RTOL = 1e-12

#: Two exact implementations of the same quantity (closed form vs sympy): the same round-off budget.
EXACT_VS_EXACT_RTOL = 1e-11

#: Matrix-free theory (CG/LSQR on HVPs or JVP/VJP, theory.matrix_free) vs the dense eigendecomposition: the solves
#: stop at relative residual 1e-12-1e-14, and the error of the solution is the residual times the condition number
#: (λ₁/μ ≈ 1e3 on the D = 2048 test MLP): ≤ 1e-9. Measured: 1.7e-13 (∇_Γ log λ₁), 4e-14 (second-order sum).
MATRIX_FREE_RTOL = 1e-9

#: Richardson-extrapolated central differences with step h = FD_STEP·‖w‖: truncation ~h⁴ (≈1e-20, and
#: ≈1e-12 even for a block 100x shorter than w) and round-off ~ε/h ≈ 1e-11, relative; 1e-7 (the usual
#: Hessian tolerance) leaves a wide margin.
FD_STEP = 1e-5
FD_RTOL = 1e-7

#: Eigenvalues counted as zero when |λ| ≤ RANK_RTOL·λ₁ (rank condition at a minimizer): theory's value
#: (``theory.gamma.RANK_RTOL``), so that the identity checks and the kernel theory computes Γ's tangent space from agree.
from srflow.theory.gamma import RANK_RTOL  # noqa: E402,F401 -- one source

#: A point counts as a critical point when ‖∇L(θ)‖ ≤ CRITICAL_RTOL·λ₁(∇²L(θ))·‖θ‖ (round-off level).
CRITICAL_RTOL = 1e-10

# -- theorem checks (verification/checks/, verification/verdicts.py) ---------------------------------------------
# A convergence check compares errors on a ladder of a small parameter x with the theory's order p (e ≈ K·x^p).
#: The local exponents between successive rungs must agree within this to count as asymptotic. For a series
#: e = K x^p (1 + βx^q) the local exponent over a rung ratio r differs from p by ≈ qβx^q; the errors srflow
#: measures are maxima over a run of smooth functions of τ (the intrinsic-clock path error, the clock error at
#: every step), whose local exponents on the default models agree to 0.01 (docs/theory.md §7). 0.2 is well
#: above that, and well below the 1.0 gap between the order of a right prediction (p = 1) and a wrong one (0).
SETTLE_TOL = 0.2
#: The accepted shortfall of the fitted order below the theory's: the same 0.2, for the same reason; a fitted
#: order of 0.8 for p = 1 (or 1.8 for p = 2) still separates from the order 0 of a fixed relative error.
ORDER_MARGIN = 0.2
#: A local exponent counts as rising (the error still approaching the theory's order: never a fail) when it
#: exceeds the one before by more than this; the local exponents of the measured errors scatter by ≈ 0.01.
RISING_TOL = 0.05
#: Errors at or below this are numerical noise, not data: Φ is computed to ‖∇L‖ ≤ 1e-9·λ₁ (≈ 1e-9·λ₁/μ from Γ,
#: μ the smallest positive eigenvalue; λ₁/μ ≤ 10 on the default models) and the flow to rtol 1e-9.
ERROR_FLOOR = 1e-8
#: A check has no power where the error it would measure at its smallest rung is within this factor of ERROR_FLOOR
#: (e.g. no-wd-clock's tracking on a model whose flow does not move): its verdict is ``inconclusive``, with that reason.
NO_POWER_FACTOR = 10.0
#: The perturbations tried for the resolving power δ*: relative sizes from DELTA_MIN to DELTA_MAX (flows are
#: integrated far enough for a clock slowed by DELTA_MAX; a larger wrong factor is not a question of resolution).
DELTA_MIN = 1e-7
DELTA_MAX = 0.3
#: The constant K = e/x^p has settled when the shortfall of the last local exponent below p is no larger than the
#: one before it or than this: the scatter of local exponents of a smooth error (≈ 0.01 measured) with room, and
#: half of SETTLE_TOL. No bound on K itself is assumed anywhere (it is model-dependent; docs/theory.md §7).
CONSTANT_TOL = 0.1
#: naive-flow-rejected: the naive clock's error must be at least this multiple of the flow's.
NAIVE_RATIO = 5.0
#: the naive control has no power where G < this everywhere on the path (the clocks then differ by less than
#: G/4 = 2.5% in speed): its verdict is ``inconclusive``.
NAIVE_MIN_G = 0.1
#: A near tie of the top eigenvalues that is not a tie (an avoided crossing of the cluster flow, relative gap ε) is
#: resolved by GD+WD as two branches only when ε ≫ ηλ: a branch ε below the top decays by ≈ 4ε per step while the
#: flow changes it on the scale of 1/(ηλ) steps. The GD+WD checks need ε > NEAR_TIE_FACTOR·ηλ on every rung.
NEAR_TIE_FACTOR = 10.0
#: eos-equilibrium: the O(ηλ) coefficient c of η⟨λ₁⟩ = 2 + cηλ is measured on the rungs whose run spans at least
#: this many periods 2π/√(8ηλ) of the amplitude's breathing (``theory.breathing_period``; the
#: norm-amplitude oscillation dA/dt = 4uA, du/dt = 2ηλ - 4(1 + G/4)A about its equilibrium has ω² = 8ηλ): a
#: mean over N periods of a sinusoid leaves ≤ 1/(πN) of its amplitude, ≤ 3% for N ≥ 10.
EOS_MIN_PERIODS = 10.0
#: ... and its deviation from the predicted c, extrapolated to ηλ → 0 (fit α + β√ηλ weighted by the standard errors
#: of means over blocks of one breathing period), must be within this many standard errors of 0: 3 s.e. is a
#: 0.3% two-sided false-alarm rate for a normal estimate.
EOS_SEM_FACTOR = 3.0
#: no-wd-clock: the rest point's signed relative error e(ε) = s_∞/s_pred - 1 = a + bε + cε² + … (the O(ε) and O(ε²)
#: terms are model-dependent and not derived, docs/theory.md §5), fitted by least squares on the rungs and extrapolated
#: to ε → 0 (``extrapolation.extrapolate_polynomial``, degree 2): a must be 0 within this many standard errors -- the
#: fit's residual scatter with the spread of the three-point extrapolations (the O(ε³) terms) added, as for c.
NOWD_REST_SEM_FACTOR = 3.0
#: (The weights: s_∞ and s_pred are flow times known to ERROR_FLOOR, so e(ε) is known to ERROR_FLOOR/s_pred; the
#: truncation, through the residual scatter and the spread, dominates in practice.)
#: no-wd-clock's premise (docs/theory.md §5): the expansion parameter of the rest point in ε is g = β_eff·u₀/(1 + G/4)
#: (u₀ = log(1 + ε); β_eff the flip's amplitude-dependence ``theory.nowd_stabilization``, each normal mode's part
#: weighted by the gain 1/(1 + χ_j) with which it follows the catapult, ``theory.nowd_slaving``): the rest fraction
#: x_f(g) = -1 + 2g/3 - 4g²/9 + … is linear in ε only while |g| is below this (at g = 1 the flow time to rest is
#: 0.797 of the leading order, its linear term says 0.667; at g = 3, 0.653 vs 0: the run then rests near the threshold
#: stop, not at the reflection the O(ε) claim is about)
NOWD_EXPANSION_MAX = 1.0
#: ... and the normal modes that do not follow the catapult on a rung (χ_j = 4u₀/r_j ≥ 1, ``theory.nowd_slaving``)
#: carry a part of β whose effect on the relative rest time, were they slaved (Δβ_j u₀/(3(1 + G/4))), is at most this
#: -- a third of the smallest mutation the check is to reject (0.3%, issue 18): following partly, they move it by a
#: non-power-series amount that the extrapolation in ε cannot remove, so a rung where they could move it by more is not
#: judged (the ladder is continued downwards within ``extend_steps`` until four rungs are)
NOWD_REST_RESOLUTION = 1e-3
#: eos-equilibrium: ⟨‖w̄ - Φ‖²⟩/a² - 1 (a² = (ηλ/2)·4/(4+G)) is extrapolated to ηλ → 0 like c (EOS_SEM_FACTOR s.e.)
#: on the rungs where the slaved normal modes' relative excess a²S (``theory.slaved_offset_coefficient``), which slow
#: modes carry only in part and so no extrapolation in ηλ removes, is at most this: a third of the smallest mutation
#: the check is to reject (0.3%, issue 18), as NOWD_REST_RESOLUTION
AMPLITUDE_RESOLUTION = 1e-3
#: scale-collapse: runs equal in exact arithmetic; round-off only.
COLLAPSE_RTOL = 1e-8
#: scale-collapse on chaotic dynamics: the runs are compared only while a twin of the first run, started 1e-15
#: (relative) away, stays within COLLAPSE_RTOL/CHAOS_MARGIN of it -- beyond, round-off alone separates runs that are
#: equal in exact arithmetic (on the digits MLP at EoS it reaches O(1) within 2000 steps) ...
CHAOS_MARGIN = 10.0
#: ... and the check is inconclusive when that horizon is shorter than this fraction of the run
CHAOS_MIN_FRACTION = 0.1
#: the relative size of the twin's start perturbation (a few units of round-off on ‖w₀‖)
TWIN_RTOL = 1e-15
#: eos-entry: the crossing of λ₁(∇²L(w_t)) = 2(1-ηλ)/η, interpolated in log λ₁ between records (exact for the pure
#: geometric decay on Γ, ``Trajectory.crossing``), vs the prediction from the state at the on-Γ marker, within
#: ENTRY_LOG_RTOL in log λ₁, i.e. ENTRY_LOG_RTOL/(2ηλ) steps (0.083 step at ηλ = 3e-4) ...
ENTRY_LOG_RTOL = 5e-5
#: ... of which the on-Γ marker may use this share: at ‖∇L(w)‖ ≤ ρ·λ₁(∇²L(w))·‖w‖ the unit iterate is ≈ ρκ from Γ
#: (κ = λ₁/μ, μ the slowest rate towards Γ) and λ₁(w̄) is off by ≤ ρκg relative (g = ‖∇ log λ₁‖), so the marker is
#: set at ρ = share·ENTRY_LOG_RTOL/(κg) for the model at hand (``on_gamma_rtol``) ...
ENTRY_MARKER_SHARE = 0.5
#: ... and never above this (then the norm recursion is pure decay to relative (2ρ)² = 4e-12 per step); it is used
#: as it is where κ is not computed (above DENSE_MAX_DIM).
ON_GAMMA_RTOL_MAX = 1e-6


def on_gamma_rtol(kappa: float, g: float) -> float:
    """ρ of the on-Γ marker for a model with λ₁/μ = ``kappa`` and ‖∇ log λ₁‖ = ``g`` at its start's Γ point:
    min(ON_GAMMA_RTOL_MAX, ENTRY_MARKER_SHARE·ENTRY_LOG_RTOL/(κg)) (ON_GAMMA_RTOL_MAX when κ or g is not known)."""
    if not (kappa > 0 and g > 0 and kappa * g < float("inf")):
        return ON_GAMMA_RTOL_MAX
    return min(ON_GAMMA_RTOL_MAX, ENTRY_MARKER_SHARE * ENTRY_LOG_RTOL / (kappa * g))


#: property tests only (tests/test_theorems.py, two drawn families: sphere_circle with ratio 3-10 and mf): the O(ηλ)
#: coefficients of the equilibrium deviations are bounded by this there (measured 0.3-6.6 at ηλ ≤ 1e-3). No verdict
#: uses it: ``eos-equilibrium`` judges the norm by its order and c by extrapolation (verification/checks/).
EOS_COEF_MAX = 10.0

# -- the ALP checks (normalized-gd, sqrt-loss-gd; docs/theory.md §5b) --------------------------------------------
#: The clock's signed rate deviation d(η) = t_pred(s_T)/T − 1 (the steps the clock predicts for the flow time a run
#: covered, relative to the steps it took) is O(η^p) for the right clock, and α + O(η^p) for a clock wrong by the
#: relative amount α (a mutation × (1 + α) shifts d by exactly α·(1 + d)). It is extrapolated to η → 0
#: on the four smallest rungs as α + βη^p + γη^{2p} (``extrapolation.extrapolate_polynomial`` in η^p, se inflated
#: by the fit's residual and enlarged by the spread of the three-point extrapolations of consecutive rungs: the
#: next orders; ``checks._alp.rate_extrapolation``) and the clock
#: fails when |α| exceeds this many standard errors (the same 3 s.e. as eos-equilibrium's c). The standard error
#: carries the fit's residual and the spread of the three-point extrapolations (the neglected orders), so
#: it scales with how far from asymptotic the rungs are; ALP_FLOW_RTOL is only the weight of a rung.
ALP_EXTRAPOLATION_SIGMAS = 3.0
#: ... each rung's d weighted by its precision: the flow's ODE tolerance (rtol 1e-9, ``theory.flows``) in t_pred,
#: plus the rounding accumulated in s_T over N steps (N·2.2e-16 relative, worst case).
ALP_FLOW_RTOL = 1e-9
