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

#: Eigenvalues counted as zero when |λ| ≤ RANK_RTOL·λ₁ (rank condition at a minimizer).
RANK_RTOL = 1e-8

#: A point counts as a critical point when ‖∇L(θ)‖ ≤ CRITICAL_RTOL·λ₁(∇²L(θ))·‖θ‖ (round-off level).
CRITICAL_RTOL = 1e-10

# -- theorem checks (verification/checks.py, verification/verdicts.py) --------------------------------------------
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
#: The perturbations tried for the resolving power δ*: relative sizes from DELTA_MIN to DELTA_MAX (flows are
#: integrated far enough for a clock slowed by DELTA_MAX; a larger wrong factor is not a question of resolution).
DELTA_MIN = 1e-7
DELTA_MAX = 0.3
#: C of "error ≤ C·x^p" for the GD+WD tracking errors, in units of the flow: the path error at the intrinsic
#: clock is a displacement along Γ, the clock error a flow time. Both are O(ηλ) with constants set by the
#: O(a²) = O(ηλ) terms the leading order drops (a² ≤ ηλ/2; docs/theory.md §4): K ≤ 10 allows the norm's and the
#: amplitude's O(ηλ) corrections (measured: 0.12-0.26 for the path, 1.1-4.9 for the clock) without letting a
#: fixed relative error of the clock (≈ δ·s over s ≈ 0.6) pass at ηλ = 1e-5 for δ ≥ 2e-4.
TRACK_C = 10.0
#: The ALP algorithms: error ≤ C·η^p with η the step (the flip has size δ ∝ η and one step moves Φ by O(δ²)).
ALP_C = 10.0
#: GD without WD: tracking error and rest-point error in units of ε (the only small parameter: the flip lives
#: for O(1/ε) steps and reaches A ≈ u₀ ≈ ε, docs/theory.md §5).
NOWD_C = 10.0
#: ... and for the rest point's relative error, whose O(ε) constant is the next order of u_f = -u₀ (docs/theory.md
#: §5; measured 0.7-1.6 on the default models): 3. A rest point wrong by δ is rejected once δ > 3ε at the
#: smallest ε, so the ladder reaches ε = 0.00625 (48,000 steps) for δ* of a few percent.
NOWD_REST_C = 3.0
#: sqrt-loss-gd: the split C of GD on √L's 2-cycle vs its prediction (docs/theory.md §5b), absolute, averaged over
#: the second half of the smallest-η run. Both are leading order in δ = η√(λ₁/2) ≤ 0.003 on the default ladders; the
#: measured C also carries the O(δ) offsets of Φ's second-order terms in ‖w̄ - Φ‖ (≈ δ·|T|/λ₁ ≤ 0.01). Measured:
#: ≤ 6e-4 on the default models.
SPLIT_ATOL = 0.01
#: naive-flow-rejected: the naive clock's error must be at least this multiple of the flow's.
NAIVE_RATIO = 5.0
#: the naive control has no power where G < this everywhere on the path (the clocks then differ by less than
#: G/4 = 2.5% in speed): its verdict is ``inconclusive``.
NAIVE_MIN_G = 0.1
#: A near tie of the top eigenvalues that is not a tie (an avoided crossing of the cluster flow, relative gap ε) is
#: resolved by GD+WD as two branches only when ε ≫ ηλ: a branch ε below the top decays by ≈ 4ε per step while the
#: flow changes it on the scale of 1/(ηλ) steps. The GD+WD checks need ε > NEAR_TIE_FACTOR·ηλ on every rung.
NEAR_TIE_FACTOR = 10.0
#: eos-equilibrium: η⟨λ₁⟩ → 2(1-ηλ) and ‖w‖² → ηλ₁/(2(1-ηλ)) are leading-order claims, O(ηλ) (order 1 in ηλ).
#: The O(ηλ) term of the threshold is model-dependent and not derived (docs/theory.md §4): the constant is a
#: bound in units of ηλ on the deviation of η⟨λ₁⟩ (measured 0.3-6.6·ηλ on the registered models; a wrong leading
#: term, e.g. +0.01, exceeds 20·ηλ at ηλ = 1e-4 already).
EOS_C = 20.0
#: eos-equilibrium: η⟨λ₁⟩ vs 2 + c(θ)ηλ (c derived, docs/theory.md §4b): what is left is O((ηλ)^{3/2}) -- the a³
#: terms of the expansion, and the sampling error of a pair average over the amplitude's slow breathing. The
#: constant K of |deviation| ≤ K·(ηλ)^{3/2} measured on the default models with 1500 records: ≤ 3.5. A wrong c by
#: a fraction δ is rejected once δ|c|·ηλ > EOS2_C·(ηλ)^{3/2}, i.e. δ* ≈ 5·√(ηλ)/|c| (≈ 1% at ηλ = 1e-5).
EOS2_C = 5.0
#: ... on the rungs whose run spans at least this many periods 2π/√(8ηλ) of the amplitude's breathing (the
#: norm-amplitude oscillation dA/dt = 4uA, du/dt = 2ηλ - 4(1 + G/4)A about its equilibrium has ω² = 8ηλ): a
#: mean over N periods of a sinusoid leaves ≤ 1/(πN) of its amplitude, ≤ 3% for N ≥ 10.
EOS_MIN_PERIODS = 10.0
#: ... plus this many standard errors of the measured mean (block means over breathing periods): at ηλ ≤ 1e-6 the
#: truncation bound falls below the breathing's sampling error (c measured to ±0.006 of 4.1 at ηλ = 1e-6 with 135
#: periods), which is a property of the measurement, not of the prediction.
EOS_SEM_FACTOR = 3.0
#: eos-equilibrium: ⟨‖w̄ - Φ‖²⟩ vs (ηλ/2)·4/(4+G) at the smallest ηλ: window averages of a² "breathe" with the
#: slow norm-amplitude oscillation; 10% relative.
AMPLITUDE_RTOL = 0.1
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
#: the ``on-gamma`` phase marker: ‖∇L(w)‖ ≤ ON_GAMMA_RTOL·λ₁(∇²L(w))·‖w‖ (then the norm recursion is pure decay
#: to relative (2·1e-6)² per step).
ON_GAMMA_RTOL = 1e-6
#: eos-entry: the crossing of λ₁(∇²L(w_t)) = 2(1-ηλ)/η, interpolated in log λ₁ between records (exact for the pure
#: geometric decay on Γ, ``Trajectory.crossing``), vs the prediction from the state at the on-Γ marker. After the
#: marker w̄ is still ≤ ON_GAMMA_RTOL·λ₁/μ from Γ (μ the smallest positive eigenvalue, λ₁/μ ≤ 10 here), which moves
#: λ₁(w̄) by ≤ that × ‖∇log λ₁‖ (≤ 5 here) relative: ≤ 5e-5; the crossing moves by that over 2ηλ steps. The
#: tolerance in steps is ENTRY_LOG_RTOL/(2ηλ): 0.083 step at ηλ = 3e-4.
ENTRY_LOG_RTOL = 5e-5
#: property tests (tests/test_theorems.py): the O(ηλ) coefficient of the equilibrium deviations, bounded by this
#: for randomly drawn instances (measured 0.3-6.6 on the registered models at ηλ ≤ 1e-3).
EOS_COEF_MAX = 10.0
