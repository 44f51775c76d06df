"""The sharpness-reduction flow on Γ and the clocks that map it to each algorithm's steps.

Canonical flow (docs/theory.md §3):   dζ/ds = -¼ ∇_Γ log λ₁(ζ),  ζ ∈ Γ ⊂ unit sphere,
with s the intrinsic clock (sum of squared angular steps). Along it d log λ₁/ds = -G/4, G = ‖∇_Γ log λ₁‖².

Clocks (steps as a function of s):
* GD+WD at EoS:   2ηλ (t - t₀) = s + log(λ₁(ζ(0))/λ₁(ζ(s)))           ``gdwd_steps``
  equivalently dθ/dτ = -2∇_Γ log λ₁/(4 + G) in τ = ηλ t.
* GD without WD:  s = log(‖w_t‖²/‖w_t₀‖²), until η λ₁(ζ(s))/‖w‖² < 2   ``nowd_norm_sq``, ``nowd_stop``
* normalized GD:  s = η² t                                             ``normalized_gd_steps``
* GD on √L:       dX/dτ = -⅛ ∇_Γ λ₁, τ = η² t, i.e. dτ = 2 ds/λ₁         ``sqrt_gd_steps``
* the naive hypothesis dθ/dτ = -½ ∇_Γ log λ₁ (τ = ηλt): s = 2ηλ(t - t₀)  ``naive_gdwd_steps``
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.interpolate import CubicSpline

from srflow.toy_models._validate import as_vector, positive_int, positive_real, unit

from .manifold import AssumptionViolated, check_on_gap, manifold_point, newton_polish
from .sharpness import check_hyperparameters, sharpness

#: how far a start point may be from Γ (‖∇L(θ₀)‖/λ₁) before the flow refuses it
START_GRAD_RTOL = 1e-6
#: flow times beyond this get a warning: log λ₁ falls at rate G/4 and the checks use s ≲ 1; at s_end = 1e6 one
#: flow took over 10 minutes, and the flow has long reached a stationary point of λ₁ on Γ
S_END_WARN = 100.0

#: the coefficient of the canonical flow dζ/ds = c·∇_Γ log λ₁ (docs/theory.md §3: one step moves Φ by
#: -(δ²/4)∇_Γ log λ₁). The one place it is written: every flow, clock, check and figure reads it from here at
#: call time, so a perturbed value reaches all of them.
CANONICAL_COEF = -0.25


@dataclass(frozen=True, eq=False)
class FlowResult:
    """Samples of the canonical flow: ``s`` (n,), ``theta`` (n, D) on Γ, ``sharpness`` λ₁(θ) (n,),
    ``G`` (n,), ``drift`` = max distance of the integrated state from Γ before re-projection, and the
    dense solution ``sol`` (OdeSolution in s) for evaluation between samples via ``at``."""

    s: np.ndarray
    theta: np.ndarray
    sharpness: np.ndarray
    G: np.ndarray
    drift: float
    sol: object
    model: object

    def at(self, s) -> np.ndarray:
        """ζ(s) for s within [0, s_end] (dense output, re-projected on Γ), shape (len(s), D)."""
        s = np.atleast_1d(np.asarray(s, dtype=np.float64))
        if np.any(s < self.s[0] - 1e-12) or np.any(s > self.s[-1] + 1e-12):
            raise ValueError(f"s: expected values in [{self.s[0]:g}, {self.s[-1]:g}], got [{s.min():g}, {s.max():g}]")
        return np.array([newton_polish(self.model, self.sol(si), iters=1) for si in s])

    def sharpness_at(self, s) -> np.ndarray:
        """λ₁(ζ(s)) between the samples: the cubic Hermite interpolant of log λ₁ with its exact slope
        d log λ₁/ds = ∇_Γ log λ₁ · dζ/ds = -G/4 at each sample (error O(Δs⁴); linear interpolation of λ₁ is off by
        ≈ G·Δs²/8 relative, 1e-5 on ``mf`` with 401 samples -- the size of what eos-equilibrium resolves)."""
        from scipy.interpolate import CubicHermiteSpline

        s = np.asarray(s, dtype=np.float64)
        if np.any(s < self.s[0] - 1e-12) or np.any(s > self.s[-1] + 1e-12):
            raise ValueError(f"s: expected values in [{self.s[0]:g}, {self.s[-1]:g}], got [{s.min():g}, {s.max():g}]")
        slope = CANONICAL_COEF * np.asarray(self.G)  # d log λ₁/ds = -¼G along the canonical flow
        return np.exp(CubicHermiteSpline(self.s, np.log(self.sharpness), slope)(s))

    def to_xarray(self):
        """The samples as an ``xarray.Dataset`` on dimension ``s`` (flow time): ``theta`` (s, component),
        ``sharpness`` λ₁(ζ(s)), ``G``, and ``tau`` = ηλ(t - t₀) of GD+WD at EoS (``gdwd_tau``); ``drift`` in the
        attrs. The dense solution and the model are not included."""
        import xarray as xr

        return xr.Dataset({"theta": (("s", "component"), self.theta), "sharpness": ("s", self.sharpness),
                           "G": ("s", self.G), "tau": ("s", gdwd_tau(self))},
                          coords={"s": self.s}, attrs={"drift": self.drift})


def _field(model, s: float, x: np.ndarray, coef: float, on_gap: str) -> np.ndarray:
    try:
        return coef * manifold_point(model, newton_polish(model, x, iters=1), on_gap=on_gap).grad_log
    except AssumptionViolated as exc:
        raise AssumptionViolated(f"{exc} (flow time s = {s:.4g})") from None


def sharpness_reduction_flow(model, theta0, s_end: float, n_out: int = 201, rtol: float = 1e-9,
                             atol: float = 1e-12, coef: float | None = None, on_gap: str = "raise") -> FlowResult:
    """Integrate dζ/ds = coef·∇_Γ log λ₁(ζ) (default: the canonical ``CANONICAL_COEF`` = -¼) from θ₀ ∈ Γ to
    s = ``s_end``.

    The field is evaluated at the Newton retraction of the state onto Γ, so the integrated state stays
    on Γ up to the solver tolerance; ``drift`` reports how far it strayed. A start point off Γ
    (‖∇L(θ₀)‖ > START_GRAD_RTOL·λ₁) or a top eigenvalue without a gap raises ``AssumptionViolated``
    saying how far / how small.

    >>> import numpy as np; from srflow.toy_models import make_model
    >>> m = make_model("sphere_circle")
    >>> r = sharpness_reduction_flow(m, np.array([np.cos(0.3), np.sin(0.3), 0.0]), s_end=0.5, n_out=3)
    >>> bool(r.sharpness[-1] < r.sharpness[0])
    True
    """
    theta0 = as_vector(theta0, "theta0", model.dim)
    coef = CANONICAL_COEF if coef is None else coef
    positive_real(s_end, "s_end", "a positive flow time (finite)")
    n_out = positive_int(n_out, "n_out", 2)
    positive_real(rtol, "rtol")
    positive_real(atol, "atol")
    check_on_gap(on_gap)
    if s_end > S_END_WARN:
        warnings.warn(f"s_end = {s_end:g} is a long flow time (> {S_END_WARN:g}): the cost grows linearly with it, "
                      "and the flow has usually come to rest at a stationary point of λ₁ long before",
                      stacklevel=2)
    theta0 = unit(theta0, "theta0")
    lam = sharpness(model, theta0)
    off = float(np.linalg.norm(model.grad(theta0))) / max(lam, 1e-300)
    if off > START_GRAD_RTOL:
        raise AssumptionViolated(f"theta0: not on Γ: ‖∇L(θ₀)‖/λ₁ = {off:.3g} > {START_GRAD_RTOL:g}; "
                                 "start from theory.project_to_manifold(model, w).theta")
    theta0 = newton_polish(model, theta0)
    s_grid = np.linspace(0.0, s_end, n_out)
    sol = solve_ivp(lambda s, x: _field(model, s, x, coef, on_gap), (0.0, s_end), theta0, t_eval=s_grid,
                    dense_output=True, rtol=rtol, atol=atol, method="DOP853")
    if sol.status != 0:
        raise AssumptionViolated(f"flow stopped at s = {sol.t[-1]:.4g}: {sol.message}")
    thetas, lams, gs, drift = [], [], [], 0.0
    for x in sol.y.T:
        th = newton_polish(model, x)
        drift = max(drift, float(np.linalg.norm(th - x)))
        mp = manifold_point(model, th, on_gap=on_gap)
        thetas.append(th)
        lams.append(mp.lam1)
        gs.append(mp.G)
    return FlowResult(sol.t, np.array(thetas), np.array(lams), np.array(gs), drift, sol.sol, model)


# -- clocks -------------------------------------------------------------------------------------------
def gdwd_tau(result: FlowResult) -> np.ndarray:
    """τ - τ₀ = ηλ(t - t₀) = ½ [s + log(λ₁(ζ(0))/λ₁(ζ(s)))] for each sample of ``result``."""
    return 0.5 * (result.s + np.log(result.sharpness[0] / result.sharpness))


def gdwd_steps(result: FlowResult, lr: float, wd: float) -> np.ndarray:
    """Steps since the start of EoS for GD+WD: t - t₀ = [s + log(λ₁(ζ(0))/λ₁(ζ(s)))]/(2ηλ)."""
    check_hyperparameters(lr, wd)
    if wd == 0:
        raise ValueError("wd: the GD+WD clock needs λ > 0; for GD without WD use nowd_norm_sq/nowd_stop")
    return gdwd_tau(result) / (lr * wd)


def naive_gdwd_steps(result: FlowResult, lr: float, wd: float) -> np.ndarray:
    """The naive (wrong, G → 0) hypothesis dθ/dτ = -½ ∇_Γ log λ₁: s = 2ηλ(t - t₀), so t - t₀ = s/(2ηλ)."""
    check_hyperparameters(lr, wd)
    if wd == 0:
        raise ValueError("wd: the naive GD+WD clock needs λ > 0")
    return result.s / (2 * lr * wd)


def nowd_norm_sq(result: FlowResult, norm0_sq: float) -> np.ndarray:
    """GD without WD: ‖w‖² = ‖w_t₀‖² e^s along the flow (the clock s = log(‖w_t‖²/‖w_t₀‖²))."""
    return norm0_sq * np.exp(result.s)


def nowd_flow_time(norm_sq, norm0_sq: float) -> np.ndarray:
    """GD without WD: the flow time s = log(‖w_t‖²/‖w_t₀‖²) reached at norm ``norm_sq`` (inverse of
    ``nowd_norm_sq``; each step adds its squared angular step to log‖w‖², docs/theory.md §5)."""
    return np.log(np.asarray(norm_sq, dtype=np.float64) / norm0_sq)


def nowd_stop(result: FlowResult, lr: float, norm0_sq: float) -> float:
    """The flow time s* at which GD without WD stops: η λ₁(ζ(s*)) = 2 ‖w_t₀‖² e^{s*}.

    Returns 0 if EoS does not hold at the start, ``inf`` if it still holds at the end of ``result``.
    """
    check_hyperparameters(lr)
    margin = lr * result.sharpness - 2 * nowd_norm_sq(result, norm0_sq)
    if margin[0] <= 0:
        return 0.0
    if margin[-1] > 0:
        return float("inf")
    i = int(np.argmax(margin <= 0))
    return float(np.interp(0.0, [margin[i], margin[i - 1]], [result.s[i], result.s[i - 1]]))


def nowd_final(result: FlowResult, lr: float, norm0_sq: float) -> float:
    """The flow time at which GD without WD, started with a tiny oscillation, actually comes to rest.

    With u = log(η λ₁(ζ(s))/(2‖w‖²)) (> 0 above the edge of stability) and A the squared angular amplitude
    of the flip along v₁, one step multiplies A by (2e^u - 1)² ≈ e^{4u} and adds ≈ 4A to log‖w‖² = s, while
    d log λ₁ = -(G/4) ds; so dA/dt = 4uA, du/dt = -4(1 + G/4)A, and dA/du = -u/(1 + G/4). Started with
    A ≈ 0 at u₀ > 0, A grows while u > 0 and decays back to 0 at u_f with ∫_{u_f}^{u₀} u du/(1 + G/4) = 0,
    i.e. u_f = -u₀ to leading order in u₀ (exactly when G is constant). The run overshoots the edge of
    stability and comes to rest where η λ₁(ζ(s))/(2‖w_t₀‖² e^s) = 1/r₀, r₀ its value at s = 0: about twice
    ``nowd_stop``'s flow time (docs/theory.md §5). Returns 0 when r₀ ≤ 1, ``inf`` beyond the flow's horizon.
    """
    check_hyperparameters(lr)
    u = np.log(lr * result.sharpness / (2 * nowd_norm_sq(result, norm0_sq)))
    if u[0] <= 0:
        return 0.0
    if u[-1] > -u[0]:
        return float("inf")
    i = int(np.argmax(u <= -u[0]))
    return float(np.interp(-u[0], [u[i], u[i - 1]], [result.s[i], result.s[i - 1]]))


def normalized_gd_steps(result: FlowResult, lr: float) -> np.ndarray:
    """Normalized GD (ALP): dX/dτ = -¼ ∇_Γ log λ₁ with τ = η² t, so t = s/η²."""
    check_hyperparameters(lr)
    return result.s / lr**2


def sqrt_gd_steps(result: FlowResult, lr: float) -> np.ndarray:
    """GD on √L (ALP): dX/dτ = -⅛ ∇_Γ λ₁ = (λ₁/2)·(-¼ ∇_Γ log λ₁), so dτ = 2 ds/λ₁ and
    t = (1/η²) ∫₀^s 2/λ₁(ζ(s')) ds' (trapezoid on the samples of ``result``)."""
    check_hyperparameters(lr)
    # a cubic spline's antiderivative: O(Δs⁴), where the trapezoid's O(Δs²) left a floor of ~1e-6 in s
    integral = CubicSpline(result.s, 2.0 / result.sharpness).antiderivative()
    return (integral(result.s) - integral(result.s[0])) / lr**2


def s_at_steps(result: FlowResult, steps_of_s: np.ndarray, steps) -> np.ndarray:
    """Invert a monotone clock: the flow time s at which ``steps_of_s`` (one clock applied to ``result``)
    equals ``steps``. Steps beyond the flow's horizon raise ValueError."""
    steps = np.asarray(steps, dtype=np.float64)
    if np.any(np.diff(steps_of_s) <= 0):
        raise AssumptionViolated("clock: steps(s) is not increasing along the flow")
    if np.any(steps > steps_of_s[-1] * (1 + 1e-12)) or np.any(steps < 0):
        raise ValueError(f"steps: expected values in [0, {steps_of_s[-1]:.6g}] (the flow's horizon), "
                         f"got up to {np.max(steps):.6g}")
    return invert_clock(steps_of_s, result.s, steps)


def invert_clock(steps_of_s: np.ndarray, s: np.ndarray, steps) -> np.ndarray:
    """s at ``steps`` for a clock sampled as ``steps_of_s`` at flow times ``s``, by a cubic spline in the steps
    (interpolation error O(Δs⁴): the linear interpolation it replaces left an O(Δs²·(log λ₁)'') floor of ~5e-6
    in s at 400 flow samples, the size of the O(ηλ) clock error at ηλ ≈ 1e-5)."""
    return CubicSpline(steps_of_s, s)(np.asarray(steps, dtype=np.float64))
