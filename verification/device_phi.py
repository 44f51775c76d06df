"""Φ(w̄_t) on the device: the records of ``verification.trajectory.record_phi`` for a compiled run, computed in
one compiled, ``vmap``-ped pass over the run's stacked record iterates (``record_phis``). The host
``theory.project_to_manifold`` stays the exact reference (tests/test_device_phi.py compares them).

For each record w (traceable, ``_compiled``):

1. x₀ = w/‖w‖ and λ₁(∇²L(x₀)): from the run's λ₁ record (λ₁(w_t)·‖w_t‖², degree -2), else by Lanczos on HVPs
   (``_start_lam1``): the flow's time scale, and a record with λ₁ ≤ 0 is "not near a minimizer", as on the host.
2. The gradient flow ẋ = -∇L(x) from x₀ by the Dormand-Prince 5(4) pair with proportional-integral step control
   (``_flow``: FSAL, factor 0.9·err^(-(1/5 - 0.75β))·err_prev^β, β = PI_BETA) until its step reaches RKC_SWITCH/λ₁
   (hλ₁ = 2.5, near the end of its real stability interval, 3.3: from there on stability, not accuracy, sets its
   steps), then by RKC (``theory.rkc``'s scheme, ``_rkc_flow``, s stages covering a step of ≈ 0.65s²/λ₁) for the stiff
   tail (the slow normal modes, rate μ), until ‖∇L(x)‖ ≤ GRAD_RTOL·λ₁ or MAX_FLOW_STEPS tried steps. The flow's limit
   carries Φ's second-order drift along Γ (−(δ²/4)∇_Γ log λ₁ for a displacement δv₁, see theory.matrix_free), so the
   flow is integrated, not skipped by a Newton step from x₀. Tolerances per record: rtol = min(FLOW_RTOL,
   FLOW_ERR/d²) (RKC_RTOL_FACTOR times that for RKC), d = ‖x₀ − Φ(x₀)‖: a local error along the normal space decays
   with the flow, only its part along Γ stays, and the drift it perturbs is O(d²) (see FLOW_ERR for the measured
   constants). d is estimated by ‖∇L(x₀)‖/λ₁, and a record whose realized d asks for a tighter rtol is flowed again.
3. Newton steps x ← (x − A⁺∇L)/‖·‖, A = P∇²L(x)P on the sphere's tangent space (P = I − x̂x̂ᵀ), by conjugate
   gradients on HVPs (``_newton``): from ‖∇L‖ ≤ GRAD_RTOL·λ₁ the point is ≈ GRAD_RTOL·λ₁/μ from Γ (μ the
   smallest positive eigenvalue), and Newton's nearest point differs from the flow's limit by O(the square of
   that), as in the host's method (theory.manifold), whose stop and tolerances these are.
4. At θ = Φ(w̄): D ≤ DENSE_MAX_DIM: ∇²L(θ) on the device and ``eigh`` (λ₁ exact, as the host's ``eigvalsh``)
   and the rank condition of ``theory.dense.tangent_space`` (dim ker ∇²L ∩ θ^⊥ from the same rank tolerance and
   SVD rule), so every record is checked on the device; above it, λ₁ and λ₂ by Lanczos (λ₂ on v₁^⊥), for the gap
   test of the host's matrix-free branch at every record. Dense: for all records under one ``vmap`` after the flows
   (which go LANE_FLOATS // D records at a time); matrix-free: in each record's own step of the map, after its
   Newton finish, and not for the padding records (``lax.cond``: 3 of the 8 records of a 5-record call are padding,
   and each of their Lanczos runs cost ≈ 40 plain steps on mf D = 500).

No warm start across records: the flows from w̄_t and w̄_{t+Δ} share nothing a step could reuse (Φ's expansion about
the previous record's Φ is O(|Δ|³) with |Δ| ≈ ‖w̄ − Φ‖ ≈ 0.01 at EoS: 1.5e-7 measured on mf D = 500, far above
DEVICE_PHI_ATOL), and the records are independent lanes of one pass. The cost (mf D = 500, the records of a run
every 100 steps at EoS): 15-38 Dormand-Prince steps (6 gradients each) and 34-160 RKC stages per record, against
46-118 Dormand-Prince steps at the first version's rtol 1e-10 (``PREVIOUS``); one compilation per loss (the flow,
the RKC leg, the Newton CG and the spectrum each hold a copy of the gradient), whose settings are an argument.
Where a record's time goes (2026-12-05, CPU time, 4 records of the benchmark's run, in plain GD+WD steps of the
same D; a gradient inside the flow costs 1.15-1.2 steps): mf D = 500: ≈ 337 per record, the flow ≈ 245 (73%,
160-270 gradients), the two Newton steps ≈ 30 (12-16 CG HVPs), the spectrum ≈ 41 (5-6 HVPs for λ₁, 8 for λ₂),
the rest (∇L(x₀), the call) ≈ 20; D = 4000: ≈ 434, the flow ≈ 390 (170-550 gradients: records up to 0.04 from Γ).
What bounds the flow's count (mf D = 500, the same records): scipy's DOP853 (8th order) takes as many gradients as
RK45 over the same flow time (122-242 against 122-272), a 100× looser rtol moves the work from the Dormand-Prince
leg to the RKC leg (223-496 gradients in all), records batched under ``vmap`` cost 1.4-1.8× more per record than
one at a time (a gradient of 8 records: 58 µs per record against 41 µs alone), and removing the error estimate's
component along f(x) (∂Φ[f] = 0) saved ≤ 25% of the gradients but raised Φ's error ≈ 100× (to 1.2·DEVICE_PHI_ATOL).

The flow's stop (measured 2026-12-05, ``python -m benchmarks.bench_phi_stop``): can the flow stop before ‖∇L‖ ≤
GRAD_RTOL·λ₁ and leave the rest to the finish? Write x = θ + n, θ ∈ Γ, n normal (eigenpairs (λ_i, u_i) of H = ∇²L(θ),
λ_i ≥ μ > 0), T = ∇³L(θ). The flow's limit is Φ(x) = θ + ½∂²Φ[n, n] + O(|n|³), ∂²Φ[n, n] = −Σ_ij P_T T[u_i, u_j]n_i
n_j/(λ_i + λ_j) (docs/theory.md §2). Newton's first step moves along Γ by −P_T T[n, H⁺n] (the pseudo-inverse's
derivative as the kernel turns, P_T T[n] H⁺² Hn), the later ones by O(|n|⁴), so N(x) − Φ(x) = −P_T T[n, H⁺n] + ½Σ_ij P_T
T[u_i, u_j]n_i n_j/(λ_i + λ_j) + O(|n|³); for n = εu: −(3/4)ε² P_T T[u, u]/λ_u = −(3/4)ε²∇_Γ log λ_u
(tests/test_device_phi.py: to 5e-5 relative on mf). In the tail n lies along the slow modes and ε ≈ ‖∇L‖/μ, so a stop at
g leaves ≈ (3/4)(g/μ)²‖∇_Γ log μ‖, and a per-record stop g* would need μ (the RKC leg's decay gives it) and the
curvature of the modes left, a mix with cross terms (one ∇³L evaluation and one tangent projection, a CG solve, per
estimate, and still not a bound). A second condition is the finish's truncation: at distance ε the kernel's eigenvalues
of ∇²L(x) move by O(ε‖T‖); once above RANK_RTOL·λ₁ they are inverted, ∇L's O(ε²) part along Γ is divided by O(ε), and
the finish errs at O(ε) (mf rng 3, ε = 1e-3 along v₁: 5.1e-4, against 1.2e-6 predicted and 1.2e-6 found with the
truncation at 1e-2·λ₁). Measured, per record (CPU time, the benchmark's 5 records, error against the host Φ): mf D =
500: GRAD_RTOL 1e-9 12.2 ms (161-272 gradients, error ≤ 1.4e-11), 1e-8 11.1 ms (same errors), 1e-7 10.3 ms (6e-11), 3e-7
9.9 ms (4.2e-9: fails), 1e-6 9.3 ms (5.4e-6), 1e-5 7.7 ms (9.7e-6); mf D = 4000: 39.0, 36.0, 33.5, 32.3 (4.8e-8: fails),
31.5 (6.3e-7), 28.3 ms (1.6e-5); at 1e-7 bn_linear errs by 3.1e-10 (above DEVICE_PHI_ATOL/4) and mf rng 3 by 1.8e-10, at
1e-6 by 5.9e-8 and 6.8e-6, and GRAD_RTOL = 1e-8 left 2.5e-9 from a start 0.4 off Γ (GRAD_RTOL's comment). So an
admissible stop is at most ≈ 10× today's, worth 8-9% of a record (1e-7: 14-16%); even the stop at 1e-5 with a finish
exact to O(ε³) (Φ's second-order term over the normal modes left: the sum above, matrix-free a linear flow of its own)
would leave 0.63× (D = 500) and 0.73× (D = 4000) of today's record, ≈ 210 and ≈ 315 plain steps, against the ≈ 100 that
"Φ every 100 steps ≤ 2× the plain loop" allows. The part of a record that is not the flow costs ≈ 91 plain steps at D =
500 (≈ 44 at D = 4000), and the flow's bulk at D = 4000 is the Dormand-Prince leg over the faster normal modes at rtol
FLOW_ERR/d² (d up to 0.04: ≈ 500 of that record's 545 gradients), which the stop does not touch. GRAD_RTOL stays the
host's 1e-9. The flow's tolerance is no freer: FLOW_ERR 10× looser (1e-11) makes mf D = 4000's records 18% cheaper (37.9
→ 31.1 ms, errors ≤ 3.6e-11) but bn_linear errs by 9.3e-10 and the zoo rq_sum by 1.1e-9 (the tests' EoS iterates): C
differs 100× between models, and ‖∇_Γ log λ₁‖ (1.5 on mf, 6.4 on bn_linear) does not predict it.

The host (``record_phis``) turns the arrays into the records and the monitor's messages of ``record_phi``
(rank condition, spectral gap, far from Γ, failed projection); a record whose flow did not reach its target in
MAX_FLOW_STEPS, or which is not finite, is recomputed by ``record_phi`` itself (the host reference), so the
records never silently differ.

Tolerance (DEVICE_PHI_ATOL): ‖Φ_device − Φ_host‖ ≤ 1e-9, a tenth of ``tolerances.ERROR_FLOOR`` (1e-8, the noise
floor below which the checks' Φ errors are not data); the host's own agreement with a tight DOP853 flow is 2e-10
(theory.manifold.project_to_manifold). flow-tracking compares Φ(w̄_t) with the flow at O(ηλ): its smallest
measured path error is 1.2e-6 (docs/results.md), > 1000× this.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from srflow.theory.gamma import GAP_RTOL, RANK_RTOL
from srflow.theory.matrix_free import has_residual
from srflow.theory.sharpness import is_dense
from srflow.toy_models.jax_cg import projected_hessian

from . import compiled
from .compiled import KRYLOV_DIM, LANCZOS_RTOL, lanczos_adaptive, lanczos_top
from .trajectory import MAX_OFFSET_SQ, record_phi

#: the flow stops at ‖∇L(x)‖ ≤ GRAD_RTOL·λ₁(x₀), the host's stop (``theory.project_to_manifold``'s grad_rtol): x is
#: then ≈ GRAD_RTOL·λ₁/μ from Γ and the Newton finish leaves O(the square of that). Measured (mf, rng 3, a start
#: 0.4 from Γ, against a DOP853 flow at rtol 1e-12): 1.7e-13 with 1e-9, 2.5e-9 with 1e-8 (the flow at rtol 1e-11
#: instead: 3.5e-10)
GRAD_RTOL = 1e-9
#: the flow's tolerances per record: local error per step ≤ atol + rtol·|x| (componentwise, RMS), atol = 1e-3·rtol,
#: with rtol = min(FLOW_RTOL, FLOW_ERR/d²) for the Dormand-Prince leg (RKC_RTOL_FACTOR times that for the RKC leg),
#: d = ‖x₀ - Φ(x₀)‖ the record's distance from Γ. Why d²: a local error along the normal space decays with the flow
#: (rates λ_i > 0); what stays is its part along Γ, and the drift along Γ that the flow integrates is O(d²) (the
#: second-order term of Φ, docs/theory.md §2), so Φ's error is ≈ C·rtol·d². The constant C is the model's, measured
#: against the host Φ at EoS iterates (d ≈ 0.01-0.02): mf D = 500: 2.1-2.4 (rtol 1e-8 … 1e-6, errors ∝ rtol); mf
#: D = 16: 6 (from 0.33 off Γ: 9); bn_linear: 120 at rtol 1e-7 and 230 at 1.3e-8 (its errors fall as rtol^0.7, not
#: ∝ rtol). FLOW_ERR = 1e-12 keeps C·FLOW_ERR ≤ 2.3e-10 on all of them, a quarter of DEVICE_PHI_ATOL; the rule is not
#: derived for a model with a larger C, which tests/test_device_phi.py's zoo model and the slow suite check. d is first
#: estimated as ‖∇L(x₀)‖/λ₁ (exact for a displacement along v₁, the EoS's; low by up to λ₁/μ for one along the
#: slowest normal mode); a record whose realized d (after the Newton finish) asks for a rtol below half the one used
#: is flowed again at FLOW_ERR/d². FLOW_RTOL caps the rtol near Γ (1e-7, at which mf D = 500's records err by
#: 0.8-2.4e-11; the host's LSODA runs at 1e-10, as did the first device pass, ``PREVIOUS``)
FLOW_RTOL = 1e-7
FLOW_ERR = 1e-12
FLOW_ATOL_FACTOR = 1e-3
#: the RKC leg's rtol over the Dormand-Prince leg's: the tail is the decay of the slow normal modes (the fast ones are
#: gone), whose local errors decay too (mf D = 500: the same Φ, 0.8-2.4e-11, with 1 and 10)
RKC_RTOL_FACTOR = 10.0
#: the proportional-integral step control of Hairer's DOPRI5 (factor 0.9·err^(-(1/5 - 0.75β))·err_prev^β): without
#: it (β = 0) a loose tolerance makes the step oscillate at the stability boundary (rtol 1e-7: 400 tried steps per
#: record on mf D = 500, against 15-25 with β = 0.04)
PI_BETA = 0.04
#: the Dormand-Prince leg hands over to RKC once its step h reaches RKC_SWITCH/λ₁ (its real stability interval ends at
#: hλ₁ ≈ 3.3: from there on its steps are set by stability, not accuracy, and the rest is the stiff tail)
RKC_SWITCH = 2.5
#: tried steps of the device flow (both legs) before a record falls back to the host projection
MAX_FLOW_STEPS = 20000
#: Newton steps at most, each by CG to the relative residual NEWTON_CG_RTOL in at most NEWTON_CG_ITERS iterations
NEWTON_STEPS = 2
NEWTON_CG_RTOL = 1e-6
NEWTON_CG_ITERS = 200
#: False: ``record_phis`` calls the host ``record_phi`` at every record (the method before 2026-12-05; kept for
#: benchmarks/bench_records.py, which times both in one process)
PHI_ON_DEVICE = True
#: the device Φ equals the host reference to this (see the module docstring)
DEVICE_PHI_ATOL = 1e-9
#: records per compiled call: a multiple of this many (padding repeats the last record), at most PHI_FLOATS floats
PHI_BUCKET = 4
PHI_FLOATS = 2**20
#: padding records (copies of the last) are not flowed (False: they are, as in the first version, ``PREVIOUS``)
SKIP_PADDING = True
#: λ₁ at Φ above DENSE_MAX_DIM by Lanczos from w̄ - Φ(w̄) (≈ a·v₁ at the edge of stability), else from a fixed cold
#: vector
WARM_SPECTRUM = True
#: records advanced together under ``vmap``: LANE_FLOATS // D of them (at least 1, at most PHI_BUCKET). At small D
#: a gradient costs its dispatch, not its flops, and lanes share it; at large D lanes cost their flops, and a
#: lane whose flow has finished would idle while the others go on
LANE_FLOATS = 256
#: the residual of λ₂'s Lanczos (the gap test λ₁ - λ₂ ≤ GAP_RTOL·λ₁ above DENSE_MAX_DIM): |θ₂ - λ₂| ≤ ‖r‖²/gap,
#: far below GAP_RTOL·λ₁
GAP_LANCZOS_RTOL = 1e-5

# Dormand-Prince 5(4) (FSAL): row i of _A gives stage i from stages 0..i-1; row 6 is the fifth-order solution x_{n+1}
# (whose stage is f(x_{n+1})); _E the weights of the error estimate (fifth minus embedded fourth order)
_A = np.zeros((7, 7))
_A[1, :1] = [1 / 5]
_A[2, :2] = [3 / 40, 9 / 40]
_A[3, :3] = [44 / 45, -56 / 15, 32 / 9]
_A[4, :4] = [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]
_A[5, :5] = [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]
_A[6, :6] = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]
_E = np.array([35 / 384 - 5179 / 57600, 0.0, 500 / 1113 - 7571 / 16695, 125 / 192 - 393 / 640,
               -2187 / 6784 + 92097 / 339200, 11 / 84 - 187 / 2100, -1 / 40])


def _flow(f, x0, f0, h0, target, rtol=None, atol=None, max_steps=None, h_switch=jnp.inf, beta=None):
    """ẋ = f(x) from x₀ (f₀ = f(x₀)) by Dormand-Prince 5(4) with proportional-integral step control (factor
    0.9·err^(-(1/5 - 0.75β))·err_prev^β in [0.2, 5] after an accepted step, 0.9·err^(-1/5) in [0.2, 1] after a rejected
    one; err_prev ≥ 1e-4) until ‖f(x)‖ ≤ target, ``max_steps`` tried steps or a step h ≥ ``h_switch``: (x, f(x), h,
    accepted steps, tried steps). The stages are a ``fori_loop`` (one copy of f in the compiled code); a non-finite
    trial step is rejected with h/10. ``rtol``, ``atol``, ``max_steps``, ``beta``: FLOW_RTOL,
    FLOW_ATOL_FACTOR·rtol, MAX_FLOW_STEPS, PI_BETA unless given."""
    a_mat, e_vec = jnp.asarray(_A), jnp.asarray(_E)
    rtol = FLOW_RTOL if rtol is None else rtol
    atol = FLOW_ATOL_FACTOR * rtol if atol is None else atol
    max_steps = MAX_FLOW_STEPS if max_steps is None else max_steps
    beta = PI_BETA if beta is None else beta

    def cond(st):
        x, fx, h, acc, tries, _ = st
        return (jnp.linalg.norm(fx) > target) & (tries < max_steps) & (h < h_switch)

    def body(st):
        x, fx, h, acc, tries, err_prev = st

        def stage(i, ks):
            return ks.at[i].set(f(x + h * (a_mat[i] @ ks)))

        ks = lax.fori_loop(1, 7, stage, jnp.zeros((7,) + x.shape).at[0].set(fx))
        x_new, f_new = x + h * (a_mat[6] @ ks), ks[6]
        scale = atol + rtol * jnp.maximum(jnp.abs(x), jnp.abs(x_new))
        err = jnp.sqrt(jnp.mean((h * (e_vec @ ks) / scale) ** 2))
        finite = jnp.all(jnp.isfinite(x_new)) & jnp.all(jnp.isfinite(f_new)) & jnp.isfinite(err)
        ok = finite & (err <= 1.0)
        err = jnp.where(err > 0, err, 1e-10)
        accepted = jnp.clip(0.9 * err ** -(0.2 - 0.75 * beta) * err_prev ** beta, 0.2, 5.0)
        rejected = jnp.clip(0.9 * err ** -0.2, 0.2, 1.0)
        factor = jnp.where(finite, jnp.where(ok, accepted, rejected), 0.1)
        return (jnp.where(ok, x_new, x), jnp.where(ok, f_new, fx), h * factor, acc + ok, tries + 1,
                jnp.where(ok, jnp.maximum(err, 1e-4), err_prev))

    x, fx, h, acc, tries, _ = lax.while_loop(cond, body, (x0, f0, h0, jnp.int32(0), jnp.int32(0), jnp.float64(1e-4)))
    return x, fx, h, acc, tries


#: the damping of RKC's Chebyshev polynomial and its spectral-radius margin, as in ``theory.rkc``
RKC_DAMPING = 2.0 / 13.0
RKC_RHO_MARGIN = 1.2
RKC_MAX_STAGES = 250
#: the Dormand-Prince leg hands over to RKC after this many tried steps: a stiff tail (λ₁/μ ≳ 100, e.g. the networks,
#: λ₁/μ ≈ 2.7e4 on the digits MLP) would take ~ λ₁/μ·log(1/GRAD_RTOL)/3.3 steps of it, RKC ~ their square root in
#: stages (``theory.rkc``, as the host's matrix-free flow does). On mf (λ₁/μ = 22-49) the flow ends within 200 steps:
#: there RKC took more gradients than Dormand-Prince (module docstring), so it is the stiff fallback only
DOPRI_MAX_STEPS = 400


def _rkc_step(f, x, fx, h, s):
    """One step of the damped second-order Runge-Kutta-Chebyshev method with s (traced) stages, the scheme of
    ``theory.rkc`` (its module docstring), the Chebyshev recurrences run alongside the stages."""
    w0 = 1.0 + RKC_DAMPING / s**2

    def cheb(j, st):  # T_j(w0), T_j', T_j'' from j - 1 and j - 2
        t1, t2, d1, d2, dd1, dd2 = st
        return (2 * w0 * t1 - t2, t1, 2 * t1 + 2 * w0 * d1 - d2, d1, 4 * d1 + 2 * w0 * dd1 - dd2, dd1)

    one, zero = jnp.ones_like(w0), jnp.zeros_like(w0)
    ts, _, ds, _, dds, _ = lax.fori_loop(2, s + 1, cheb, (w0, one, one, zero, zero, zero))
    w1 = ds / dds
    b2 = 1.0 / (4.0 * w0**2)  # T₂''/T₂'² = 4/(4w0)²
    y1 = x + b2 * w1 * h * fx

    def stage(j, st):
        y_prev, y_prev2, t1, t2, d1, d2, dd1, dd2, b1, bb2 = st
        tj, _, dj, _, ddj, _ = cheb(j, (t1, t2, d1, d2, dd1, dd2))
        bj = ddj / dj**2
        mu, nu = 2 * bj * w0 / b1, -bj / bb2
        mut = 2 * bj * w1 / b1
        gat = -(1 - b1 * t1) * mut
        y = (1 - mu - nu) * x + mu * y_prev + nu * y_prev2 + mut * h * f(y_prev) + gat * h * fx
        return y, y_prev, tj, t1, dj, d1, ddj, dd1, bj, b1

    init = (y1, x, w0, one, one, zero, zero, zero, b2, b2)
    return lax.fori_loop(2, s + 1, stage, init)[0]


def _rkc_flow(f, x0, f0, h0, rho, target, tries0, rtol, atol, max_steps):
    """ẋ = f(x) from x₀ by RKC (``_rkc_step``) with its error estimate (12(x_n − x_{n+1}) + 6h(f_n + f_{n+1}))/15 at
    FLOW_RTOL/FLOW_ATOL and the step factor 0.8·err^(-1/3) in [0.1, 10], s = 1 + ⌈√(1 + 1.54hρ)⌉ stages for the
    spectral radius ρ, until ‖f(x)‖ ≤ target or ``max_steps`` tried steps in all (``tries0`` before it): (x, f(x),
    tries, evaluations)."""
    h_max = (RKC_MAX_STAGES**2 - 1) / (1.54 * rho)

    def cond(st):
        x, fx, h, tries, evals = st
        return (jnp.linalg.norm(fx) > target) & (tries < max_steps)

    def body(st):
        x, fx, h, tries, evals = st
        h = jnp.minimum(h, h_max)
        s = 1 + jnp.ceil(jnp.sqrt(1.0 + 1.54 * h * rho)).astype(jnp.int32)
        x_new = _rkc_step(f, x, fx, h, s)
        f_new = f(x_new)
        est = (12 * (x - x_new) + 6 * h * (fx + f_new)) / 15
        scale = atol + rtol * jnp.maximum(jnp.abs(x), jnp.abs(x_new))
        err = jnp.sqrt(jnp.mean((est / scale) ** 2))
        finite = jnp.all(jnp.isfinite(x_new)) & jnp.all(jnp.isfinite(f_new)) & jnp.isfinite(err)
        ok = finite & (err <= 1.0)
        factor = jnp.where(finite, jnp.clip(0.8 * jnp.where(err > 0, err, 1e-10) ** (-1 / 3), 0.1, 10.0), 0.1)
        factor = jnp.where(ok, factor, jnp.minimum(factor, 1.0))
        return jnp.where(ok, x_new, x), jnp.where(ok, f_new, fx), h * factor, tries + 1, evals + s

    x, fx, _, tries, evals = lax.while_loop(cond, body, (x0, f0, h0, tries0, jnp.int32(0)))
    return x, fx, tries, evals


def _newton(grad, x, lam1, active=True):
    """Up to NEWTON_STEPS steps x ← (x − A⁺∇L(x))/‖·‖, A = P∇²L(x)P (P = I − x̂x̂ᵀ), A⁺∇L by CG on HVPs from 0 to
    the relative residual NEWTON_CG_RTOL; CG stops where a search direction p has pᵀAp ≤ RANK_RTOL·λ₁‖p‖² (the
    kernel of ∇²L on Γ, which the host's pseudo-inverse drops too). ``active`` False: no CG iteration (a padded
    record, or one not near a minimizer)."""
    def one(x, _):
        g, u, apply = projected_hessian(grad, x)
        b = g - (u @ g) * u
        bb = b @ b

        def cond(st):
            y, r, p, rr, i, stop = st
            return active & (i < NEWTON_CG_ITERS) & ~stop & (rr > (NEWTON_CG_RTOL ** 2) * bb)

        def body(st):
            y, r, p, rr, i, _ = st
            ap = apply(p)
            pap = p @ ap
            flat = pap <= RANK_RTOL * lam1 * (p @ p)
            alpha = jnp.where(flat, 0.0, rr / jnp.where(flat, 1.0, pap))
            y, r = y + alpha * p, r - alpha * ap
            rr_new = r @ r
            p = r + (rr_new / jnp.where(rr > 0, rr, 1.0)) * p
            return y, r, p, rr_new, i + 1, flat

        y, _, _, _, iters, _ = lax.while_loop(cond, body, (jnp.zeros_like(x), b, b, bb, jnp.int32(0),
                                                            jnp.array(False)))
        x = x - y
        return x / jnp.linalg.norm(x), iters

    x, iters = lax.scan(one, x, None, length=NEWTON_STEPS)
    return x, jnp.sum(iters)


def _rank_count(hess, theta):
    """dim(ker ∇²L ∩ θ^⊥) by the rule of ``theory.dense.tangent_space`` (|λ| ≤ RANK_RTOL·max(λ₁, 0) counted as zero,
    the kernel projected off θ̂, its singular values > 1/2 counted), and the smallest |λ| not counted as zero."""
    vals, vecs = jnp.linalg.eigh(hess)
    zero = jnp.abs(vals) <= RANK_RTOL * jnp.maximum(vals[-1], 0.0)
    kernel = vecs * zero[None, :]
    u = theta / jnp.linalg.norm(theta)
    kernel = kernel - jnp.outer(u, u @ kernel)
    sv = jnp.linalg.svd(kernel, compute_uv=False)
    smallest = jnp.min(jnp.where(zero, jnp.inf, jnp.abs(vals)))
    return vals, jnp.sum(sv > 0.5), smallest


def _cold(dim: int):
    """The fixed random unit start of the Lanczos runs here (a function of D only)."""
    v = np.random.default_rng([dim, 2]).standard_normal(dim)
    return jnp.asarray(v / np.linalg.norm(v))


@lru_cache(maxsize=32)
def _start_lam1(jax_loss, dim: int):
    """ws (R, D) -> λ₁(∇²L(w/‖w‖)) of each row by Lanczos (residual 1e-6·λ₁): the flow's time scale and the sign
    test, for records whose λ₁ is not handed in."""
    grad = jax.grad(jax_loss)

    def one(w):
        return lanczos_top(jax.linearize(grad, w / jnp.linalg.norm(w))[1], _cold(dim), min(dim, KRYLOV_DIM), 1e-6)[0]

    return jax.jit(jax.vmap(one))


#: the names of the module's settings, passed to the compiled pass as an array (``_settings``)
SETTINGS = ("GRAD_RTOL", "FLOW_RTOL", "FLOW_ERR", "FLOW_ATOL_FACTOR", "RKC_RTOL_FACTOR", "MAX_FLOW_STEPS",
            "DOPRI_MAX_STEPS", "PI_BETA", "RKC_SWITCH", "WARM_SPECTRUM")
#: the device pass's first settings (commit 12b5112; benchmarks/bench_records.py ``--phi-before`` times it side by
#: side): both legs at the host's LSODA tolerances, step factor err^(-1/5) alone, RKC only after DOPRI_MAX_STEPS tries, λ₁
#: at Φ from the fixed cold vector, padded records flowed like the others
PREVIOUS = {"FLOW_RTOL": 1e-10, "FLOW_ERR": float("inf"), "FLOW_ATOL_FACTOR": 1e-3, "RKC_RTOL_FACTOR": 1.0,
            "PI_BETA": 0.0, "RKC_SWITCH": float("inf"), "WARM_SPECTRUM": False, "SKIP_PADDING": False}


def _settings() -> np.ndarray:
    """The module's settings (SETTINGS) as an array, an argument of the compiled pass (a change, in tests and
    benchmarks, does not compile anew)."""
    return np.array([float(globals()[name]) for name in SETTINGS])


@lru_cache(maxsize=32)
def _compiled(jax_loss, dim: int, dense: bool, lanes: int):
    """The jit-compiled pass of the loss ``jax_loss`` on R^``dim`` over records: (ws (R, D), λ₁(w̄) (R,)) -> dict of
    arrays (R, ...), ``lanes`` records at a time under ``vmap`` (``lax.map``; a lane whose flow has finished idles
    until the others' have). Keyed by the loss, so models that share it (a restated dim Γ) share the compilation;
    its last argument: the values of SETTINGS (``_settings``). A record with ``active`` False (padding) is not
    flowed."""
    grad = jax.grad(jax_loss)
    k = min(dim, KRYLOV_DIM)
    cold = _cold(dim)

    def project(x0, g0, scale, target, flows, rtol, settings):
        """The flow from x₀ at ``rtol`` (both legs) and the Newton finish."""
        _, _, _, atol_factor, rkc_factor, max_steps, dopri_max, beta, switch, _ = settings
        max_steps = max_steps.astype(jnp.int32)
        f = lambda y: -grad(y)  # noqa: E731
        x, fx, h, acc, tries = _flow(f, x0, -g0, 0.1 / scale, target, rtol, atol_factor * rtol,
                                     jnp.minimum(max_steps, dopri_max.astype(jnp.int32)), switch / scale, beta)
        dopri_tries = tries
        x, fx, tries, evals = _rkc_flow(f, x, fx, h, RKC_RHO_MARGIN * scale, target, tries, rkc_factor * rtol,
                                        atol_factor * rkc_factor * rtol, max_steps)
        theta, cg_iters = _newton(grad, x / jnp.linalg.norm(x), scale, flows)
        return theta, jnp.linalg.norm(fx) <= target, acc, tries, evals, cg_iters, dopri_tries

    def one(args, settings):
        w, lam0, active = args
        grad_rtol, rtol_cap, flow_err = settings[0], settings[1], settings[2]

        def rtol_for(d):
            return jnp.minimum(rtol_cap, flow_err / jnp.maximum(d, 1e-30) ** 2)

        x0 = w / jnp.linalg.norm(w)
        g0 = grad(x0)
        flows = (lam0 > 0) & active  # λ₁ ≤ 0: not near a minimizer, reported by the host; no flow
        scale = jnp.where(lam0 > 0, lam0, 1.0)
        target = jnp.where(flows, grad_rtol * scale, jnp.inf)

        def again(st):  # the first pass, and a second one where the realized distance asks for a tighter rtol
            passes, rtol, theta = st[:3]
            return flows & ((passes == 0) | ((passes == 1) & (rtol_for(jnp.linalg.norm(x0 - theta)) < 0.5 * rtol)))

        def body(st):
            passes, rtol, theta, _, acc, tries, evals, cg, dopri = st
            rtol = jnp.where(passes == 0, rtol, rtol_for(jnp.linalg.norm(x0 - theta)))
            out = project(x0, g0, scale, target, flows, rtol, settings)
            counts = [jnp.asarray(c, jnp.int32) for c in out[2:]]
            return (passes + 1, rtol, out[0], out[1], acc + counts[0], tries + counts[1], evals + counts[2],
                    cg + counts[3], dopri + counts[4])

        zero = jnp.int32(0)
        init = (zero, rtol_for(jnp.linalg.norm(g0) / scale), x0, ~flows, zero, zero, zero, zero, zero)
        passes, rtol, theta, reached, acc, tries, evals, cg_iters, dopri = lax.while_loop(again, body, init)
        # gradient evaluations of the flow: 6 per Dormand-Prince try (FSAL), s per RKC step of s stages
        return {"theta": theta, "lam0": lam0, "reached": reached, "flow_steps": acc, "flow_tries": tries,
                "rkc_evals": evals, "cg_iters": cg_iters, "passes": passes, "flow_rtol": rtol,
                "flow_gradients": 6 * dopri + evals}

    def spectrum(theta, w, warm_spectrum):
        g_theta, hvp = jax.linearize(grad, theta)
        out = {"grad_norm": jnp.linalg.norm(g_theta)}
        if dense:
            hess = jax.vmap(hvp)(jnp.eye(dim))
            vals, kdim, smallest = _rank_count(0.5 * (hess + hess.T), theta)
            out.update(lam1=vals[-1], lam2=vals[-2] if dim > 1 else -jnp.inf, kernel_dim=kdim, smallest=smallest)
        else:
            # w̄ - Φ(w̄) ≈ a·v₁ at EoS (docs/theory.md §3): Lanczos from it, off θ
            d = w / jnp.linalg.norm(w) - theta
            d = d - (theta @ d) * theta / (theta @ theta)
            nd = jnp.linalg.norm(d)
            start = jnp.where(warm_spectrum & (nd > 1e-8), d / jnp.where(nd > 0, nd, 1.0), cold)
            lam1, v1, _, hvps = lanczos_adaptive(hvp, start, k, rtol=LANCZOS_RTOL)

            def deflated(v):
                v = v - (v1 @ v) * v1
                hv = hvp(v)
                return hv - (v1 @ hv) * v1

            lam2, _, _, hvps2 = lanczos_adaptive(deflated, cold - (v1 @ cold) * v1, k, rtol=GAP_LANCZOS_RTOL)
            out.update(lam1=lam1, lam2=lam2, kernel_dim=jnp.int32(-1), smallest=jnp.nan, spectrum_hvps=hvps + hvps2)
        return out

    def skipped(theta, w, warm_spectrum):  # a padding record's spectrum (discarded by ``device_phi``)
        nan = jnp.full((), jnp.nan, dtype=theta.dtype)
        return {"grad_norm": nan, "lam1": nan, "lam2": nan, "kernel_dim": jnp.int32(-1), "smallest": nan,
                "spectrum_hvps": jnp.int32(0)}

    def record(args, settings):  # matrix-free: the spectrum in the record's own step, not for padding
        out = one(args, settings)
        w, _, active = args
        out.update(lax.cond(active, spectrum, skipped, out["theta"], w, settings[-1] > 0.5))
        return out

    def run(ws, lam0s, active, settings):
        if not dense:
            # one record per step of the map (lanes = 1 above DENSE_MAX_DIM: no vmap, so that the padding's
            # ``lax.cond`` skips its Lanczos runs instead of computing both branches)
            return lax.map(lambda args: record(args, settings), (ws, lam0s, active),
                           batch_size=None if lanes == 1 else lanes)
        out = lax.map(lambda args: one(args, settings), (ws, lam0s, active), batch_size=lanes)
        # the spectra at Φ of all records under one vmap (a batched eigh: one eigh per step of a lax.map measured
        # 0.04 s per record at D = 80, against 0.012 s for the whole record batched)
        out.update(jax.vmap(spectrum, in_axes=(0, 0, None))(out["theta"], ws, settings[-1] > 0.5))
        return out

    return jax.jit(run)


def _lanes(dim: int) -> int:
    """Records per ``vmap`` lane group: LANE_FLOATS // D, at least 1, as a power of 2 dividing PHI_BUCKET."""
    return 1 << max(0, min(PHI_BUCKET, LANE_FLOATS // dim).bit_length() - 1)


def device_phi(model, ws, lam0=None) -> dict:
    """The device pass over the records ``ws`` (R, D) of a JAX model: a dict of numpy arrays, one row per record
    (theta, lam0, reached, flow_steps, flow_tries, cg_iters, grad_norm, lam1, lam2, kernel_dim, smallest), see the
    module docstring. ``lam0``: λ₁(∇²L(w̄)) of each record when known (the run's λ₁ record times ‖w‖²), else
    computed. Records are padded to a multiple of PHI_BUCKET (one compilation for a range of counts) and passed in
    blocks of at most PHI_FLOATS floats; LANE_FLOATS // D of them (≥ 1) share a ``vmap`` lane group."""
    ws = np.asarray(ws, dtype=np.float64).reshape(-1, model.dim)
    if len(ws) == 0:
        return {}
    if lam0 is None:
        lam0s = np.asarray(_start_lam1(model.jax_loss, model.dim)(ws), dtype=np.float64)
    else:
        lam0s = np.asarray(lam0, dtype=np.float64).reshape(len(ws))
    fn = _compiled(model.jax_loss, model.dim, is_dense(model), _lanes(model.dim))
    settings = _settings()
    block = max(PHI_BUCKET, (PHI_FLOATS // model.dim) // PHI_BUCKET * PHI_BUCKET)
    parts = []
    for lo in range(0, len(ws), block):
        chunk, lam_chunk = ws[lo:lo + block], lam0s[lo:lo + block]
        n = len(chunk)
        size = min(block, -(-n // PHI_BUCKET) * PHI_BUCKET)
        pad = np.repeat(chunk[-1:], size - n, axis=0)
        active = np.arange(size) < n if SKIP_PADDING else np.ones(size, dtype=bool)
        out = jax.device_get(fn(np.concatenate([chunk, pad]),
                                np.concatenate([lam_chunk, np.repeat(lam_chunk[-1:], size - n)]), active, settings))
        parts.append({key: np.asarray(v)[:n] for key, v in out.items()})
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def record_phis(model, steps, ws, rec: dict, monitor: list[str], lam0=None) -> None:
    """``record_phi`` for every record (steps[i], ws[i]) of a run of a JAX model, Φ on the device (``device_phi``):
    appends to ``rec`` ("phi", "phi_lam1", "offset") and ``monitor`` what ``record_phi`` appends, record by record
    (the rank condition on dense models, the spectral gap above DENSE_MAX_DIM, far from Γ, a failed projection). A
    record the device could not finish (flow not at its target in MAX_FLOW_STEPS, or non-finite) is computed by
    ``record_phi`` (the host reference). A model with a least-squares residual (``theory.matrix_free.has_residual``:
    the networks, λ₁/μ ~ 1e4) keeps the host projection at every record: its Newton steps are Gauss-Newton by LSQR
    and its stiff tail RKC at rtol 1e-8, while the device flow (rtol 1e-10 in both legs) had not finished one record
    of bn_mlp (D = 15360, from 0.02 off Γ) after 4 minutes, against ≈ 15 s on the host."""
    if not PHI_ON_DEVICE or has_residual(model):
        for t, w in zip(steps, ws):
            record_phi(model, w, int(t), rec, monitor)
        return
    if len(ws) == 0:
        return
    out = device_phi(model, ws, lam0)
    dense = is_dense(model)
    expected = getattr(model, "manifold_dim", None)
    for i, (t, w) in enumerate(zip(steps, ws)):
        t = int(t)
        theta = out["theta"][i]
        fine = bool(out["reached"][i]) and np.all(np.isfinite(theta)) and np.isfinite(out["lam1"][i])
        if out["lam0"][i] <= 0:  # as theory.dense._start_lam1 / project_matrix_free
            msg = (f"w: ∇²L has no positive eigenvalue at w̄ (λ₁ = {out['lam0'][i]:.3g}); not near a minimizer")
            monitor.append(f"{msg} (step {t})")
            _nan_record(rec, model.dim)
            continue
        if not fine:
            record_phi(model, w, t, rec, monitor)
            continue
        offset = float(np.sum((w / np.linalg.norm(w) - theta) ** 2))
        lam1 = float(out["lam1"][i])
        if dense:
            if expected is not None and int(out["kernel_dim"][i]) != expected:
                smallest = float(out["smallest"][i])
                monitor.append(
                    f"rank condition fails at θ: ker ∇²L ∩ θ^⊥ has dimension {int(out['kernel_dim'][i])}, expected "
                    f"dim Γ = {expected} (rank tolerance {RANK_RTOL:g}·λ₁; smallest nonzero |λ| = "
                    f"{smallest if np.isfinite(smallest) else 0:.3g}) (step {t})")
                _nan_record(rec, model.dim)
                continue
        else:
            gap = lam1 - float(out["lam2"][i]) if model.dim > 1 else np.inf
            if gap <= GAP_RTOL * lam1:
                monitor.append(f"assumption violated: spectral gap {gap:.2g} (λ₁ = {lam1:.3g}) at Φ(w̄) at step {t}")
        if offset > MAX_OFFSET_SQ:
            monitor.append(f"far from Γ: ‖w̄ - Φ(w̄)‖² = {offset:.2g} at step {t}")
        rec["phi"].append(theta)
        rec["phi_lam1"].append(lam1)
        rec["offset"].append(offset)


#: the compiled engine's hook (``compiled.PHI_RECORDS``): set here, so that ``compiled`` does not import this module
compiled.PHI_RECORDS = record_phis


def _nan_record(rec: dict, dim: int) -> None:
    rec["phi"].append(np.full(dim, np.nan))
    rec["phi_lam1"].append(np.nan)
    rec["offset"].append(np.nan)


__all__ = ["device_phi", "record_phis", "DEVICE_PHI_ATOL", "GRAD_RTOL", "FLOW_RTOL", "FLOW_ERR"]
