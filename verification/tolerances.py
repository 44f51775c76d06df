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
