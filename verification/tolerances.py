"""Every tolerance of the project, by kind of comparison. Errors are reported in units of these.

A comparison passes when scaled = error / (tol · scale) ≤ 1, where ``scale`` is the natural size of the
compared quantity (stated with each check). Values are set from an error analysis, not tuned to pass.
"""

#: Exact identities evaluated in float64 (scale invariance, Euler relations, symmetry): round-off of a
#: few dozen flops per entry, ~1e-15 relative; 1e-12 leaves room for D' ≈ 100 and conditioning.
IDENTITY_RTOL = 1e-12

#: Two exact implementations of the same quantity (closed form vs sympy): the same round-off budget.
EXACT_VS_EXACT_RTOL = 1e-11

#: Richardson-extrapolated central differences with step h = FD_STEP·‖w‖: truncation ~h⁴ (≈1e-20, and
#: ≈1e-12 even for a block 100x shorter than w) and round-off ~ε/h ≈ 1e-11, relative; 1e-7 (the usual
#: Hessian tolerance) leaves a wide margin.
FD_STEP = 1e-5
FD_RTOL = 1e-7

#: Eigenvalues counted as zero when |λ| ≤ RANK_RTOL·λ₁ (rank condition at a minimizer).
RANK_RTOL = 1e-8

#: A point counts as a critical point when ‖∇L(θ)‖ ≤ CRITICAL_RTOL·λ₁(∇²L(θ))·‖θ‖ (round-off level).
CRITICAL_RTOL = 1e-10

# -- theorem checks (verification/checks.py) -----------------------------------------------------------------
#: flow-tracking: the largest allowed ‖Φ(w̄_t) - ζ(s(t))‖ at the smallest ηλ of the ladder (issue 3's 2e-3).
TRACK_ATOL = 2e-3
#: naive-flow-rejected: the naive clock's error must be at least this multiple of the flow's.
NAIVE_RATIO = 5.0
#: the naive control cannot discriminate where G < this everywhere on the path (the clocks then differ by
#: less than G/4 = 2.5% in speed).
NAIVE_MIN_G = 0.1
#: eos-equilibrium: η⟨λ₁⟩ → 2(1-ηλ) and ‖w‖² → ηλ₁/(2(1-ηλ)) are leading-order claims; their deviations must
#: vanish at least like (ηλ)^EOS_MIN_EXPONENT (two standard errors; expected 1) and be ≤ EOS_ATOL (absolute
#: on η⟨λ₁⟩ ≈ 2, relative on the norm) at the smallest ηλ.
EOS_MIN_EXPONENT = 0.5
EOS_ATOL = 1e-3
#: ... or a deviation already ≤ EOS_COEF_SMALL·ηλ on every rung of the ladder counts as O(ηλ): it is below the
#: size of the correction term, and its fitted exponent then measures sampling noise (seen on a model with
#: a 0.13·ηλ deviation: exponent 0.52 ± 0.27). A wrong leading term (e.g. +0.01) is > 300·ηλ at ηλ = 3e-5.
EOS_COEF_SMALL = 1.0
#: eos-equilibrium: window averages of a² vary ("breathe") by a few percent; 10% relative.
AMPLITUDE_RTOL = 0.1
#: scale-collapse: runs equal in exact arithmetic; round-off only.
COLLAPSE_RTOL = 1e-8
#: the ``on-gamma`` phase marker: ‖∇L(w)‖ ≤ ON_GAMMA_RTOL·λ₁(∇²L(w))·‖w‖ (then the norm recursion is pure decay
#: to relative (2·1e-6)² per step).
ON_GAMMA_RTOL = 1e-6
#: eos-entry: the crossing is seen at the first integer step at or after the predicted real-valued step.
ENTRY_ATOL_STEPS = 1.0
#: no-wd-clock: relative error of where GD without WD comes to rest, at the smallest ε (measured O(ε)).
NOWD_STOP_RTOL = 0.1
#: property tests (tests/test_theorems.py): the O(ηλ) coefficient of the equilibrium deviations, bounded by this
#: for randomly drawn instances. It is model-dependent (second-order a²-terms, docs/theory.md); measured
#: 0.3-6.6 on the registered models at ηλ ≤ 1e-3, so 10 leaves room without hiding a wrong leading term
#: (a wrong constant such as 2/η·(1 ± 0.01) exceeds it by > 30× at ηλ = 3e-5).
EOS_COEF_MAX = 10.0
