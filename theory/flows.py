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

from srflow.toy_models.validate import as_vector, positive_int, positive_real, real, real_array, unit

from .manifold import AssumptionViolated, check_on_gap, manifold_point, newton_polish
from .sharpness import check_hyperparameters, is_dense, sharpness

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
    """Samples of the canonical flow: ``s`` (n,), ``theta`` (n, D) on Γ, ``lam1`` λ₁(θ) (n,),
    ``G`` (n,) = ‖g*‖² (g* = ∇_Γ log λ₁ for a simple λ₁, the minimum-norm element of its generalized gradient on a
    cluster), ``drift`` = max distance of the integrated state from Γ before re-projection, and the
    dense solution ``sol`` (in s) for evaluation between samples via ``at``.

    The cluster flow (docs/theory.md §4c) adds ``cluster_size`` (n,) (the k tied top eigenvalues), ``loaded`` (n,)
    (the rank of the oscillation's covariance), ``edge_gap`` (n,) ((λ_k - λ_{k+1})/λ₁), ``events`` (join, leave,
    halt: dicts with "s", "kind", "k") and ``near_ties`` ((s, relative gap) of near ties that are not ties). At an
    event s appears twice: the left and the right limit (G and the cluster size jump there)."""

    s: np.ndarray
    theta: np.ndarray
    lam1: np.ndarray
    G: np.ndarray
    drift: float
    sol: object
    model: object
    cluster_size: np.ndarray | None = None
    loaded: np.ndarray | None = None
    edge_gap: np.ndarray | None = None
    events: tuple = ()
    near_ties: tuple = ()

    @property
    def halt(self) -> float | None:
        """The flow time at which the flow halts (0 in the generalized gradient), or None."""
        for e in self.events:
            if e["kind"] == "halt":
                return float(e["s"])
        return None

    def at(self, s) -> np.ndarray:
        """ζ(s) for s within [0, s_end] (dense output, re-projected on Γ by one Newton step), shape (len(s), D).
        λ₁, which sets only the Newton step's truncation threshold, is ``sharpness_at(s)`` from the samples (the
        matrix-free step then runs no Lanczos; measured on a D = 4000 mf, half the cost of ``at``)."""
        s = np.atleast_1d(real_array(s, "s"))
        if np.any(s < self.s[0] - 1e-12) or np.any(s > self.s[-1] + 1e-12):
            raise ValueError(f"s: expected values in [{self.s[0]:g}, {self.s[-1]:g}], got [{s.min():g}, {s.max():g}]")
        lam1 = self.sharpness_at(np.clip(s, self.s[0], self.s[-1]))
        return np.array([newton_polish(self.model, self.sol(si), iters=1, lam1=float(li)) for si, li in zip(s, lam1)])

    def sharpness_at(self, s) -> np.ndarray:
        """λ₁(ζ(s)) between the samples: the cubic Hermite interpolant of log λ₁ with its exact slope
        d log λ₁/ds = ∇_Γ log λ₁ · dζ/ds = -G/4 at each sample (error O(Δs⁴); linear interpolation of λ₁ is off by
        ≈ G·Δs²/8 relative, 1e-5 on ``mf`` with 401 samples -- the size of what eos-equilibrium resolves)."""
        from scipy.interpolate import CubicHermiteSpline

        s = np.asarray(s, dtype=np.float64)
        if np.any(s < self.s[0] - 1e-12) or np.any(s > self.s[-1] + 1e-12):
            raise ValueError(f"s: expected values in [{self.s[0]:g}, {self.s[-1]:g}], got [{s.min():g}, {s.max():g}]")
        slope = CANONICAL_COEF * np.asarray(self.G)  # d log λ₁/ds = -¼G along the canonical flow
        log_lam = np.log(self.lam1)
        out = np.empty(s.shape)
        # one interpolant per segment between events of the cluster flow (repeated samples: G jumps there)
        for sl in _segments(self.s):
            x = self.s[sl]
            mask = (s >= x[0] - 1e-12) & (s <= x[-1] + 1e-12)
            if len(x) == 1:
                out[mask] = np.exp(log_lam[sl][0])
            elif mask.any():
                out[mask] = np.exp(CubicHermiteSpline(x, log_lam[sl], slope[sl])(s[mask]))
        return out

    def to_xarray(self):
        """The samples as an ``xarray.Dataset`` on dimension ``s`` (flow time): ``theta`` (s, component),
        ``lam1`` λ₁(ζ(s)), ``G``, and ``tau`` = ηλ(t - t₀) of GD+WD at EoS (``gdwd_tau``); ``drift`` in the
        attrs. The dense solution and the model are not included."""
        import xarray as xr

        data = {"theta": (("s", "component"), self.theta), "lam1": ("s", self.lam1),
                "G": ("s", self.G), "tau": ("s", gdwd_tau(self))}
        if self.cluster_size is not None:
            data["cluster_size"] = ("s", self.cluster_size)
        return xr.Dataset(data, coords={"s": self.s}, attrs={"drift": self.drift})


def _field(model, s: float, x: np.ndarray, coef: float, on_gap: str, memo: dict | None = None) -> np.ndarray:
    """The simple flow's field coef·∇_Γ log λ₁ at the Newton retraction of x. ``memo`` (the integration's): λ₁ of the
    last evaluation, passed to ``newton_polish`` as its truncation threshold's λ₁ (the matrix-free step then runs
    no Lanczos of its own; the evaluations of one integration are close: λ₁ changes by O(step))."""
    try:
        lam1 = None if memo is None else memo.get("lam1")
        mp = manifold_point(model, newton_polish(model, x, iters=1, lam1=lam1), on_gap=on_gap)
        if memo is not None:
            memo["lam1"] = mp.lam1
        return coef * mp.grad_log
    except AssumptionViolated as exc:
        raise AssumptionViolated(f"{exc} (flow time s = {s:.4g})", kind=exc.kind, s=s) from None


def sharpness_reduction_flow(model, theta0, s_end: float, n_out: int = 201, rtol: float = 1e-9,
                             atol: float = 1e-12, coef: float | None = None, on_gap: str = "raise",
                             stop_at_join: bool = False, max_evals: int | None = None) -> FlowResult:
    """Integrate dζ/ds = coef·g*(ζ) (default coef: the canonical ``CANONICAL_COEF`` = -¼) from θ₀ ∈ Γ to
    s = ``s_end``; g* = ∇_Γ log λ₁ while λ₁ is simple, and through a cluster of tied top eigenvalues the
    minimum-norm element of the generalized gradient of log λ₁ on Γ (docs/theory.md §4c,
    ``theory.cluster_flow``): branches join and leave the cluster, and the flow halts where 0 is in it.

    The field is evaluated at the Newton retraction of the state onto Γ, so the integrated state stays
    on Γ up to the solver tolerance; ``drift`` reports how far it strayed. A start point off Γ
    (‖∇L(θ₀)‖ > START_GRAD_RTOL·λ₁) raises ``AssumptionViolated`` saying how far, and so does a failure of the
    cluster theory's own assumptions (the rank condition; events that accumulate). Above
    ``theory.sharpness.DENSE_MAX_DIM`` the matrix-free flow is the simple one: a top eigenvalue without a gap raises
    (``on_gap`` = "raise") or warns ("warn"); ``on_gap`` has no effect on the dense cluster flow; ``stop_at_join`` ends it
    at its first join (for callers that need λ₁ simple, such as eos-stability's κ), and ``max_evals`` (dense only) where
    its field has been evaluated that many times (an event of kind "budget": a cost bound). When λ₁ stays
    simple the result is the simple flow's (``simple_flow``), to the last digit.

    >>> import numpy as np; from srflow.toy_models import make_model
    >>> m = make_model("sphere_circle")
    >>> r = sharpness_reduction_flow(m, np.array([np.cos(0.3), np.sin(0.3), 0.0]), s_end=0.5, n_out=3)
    >>> bool(r.lam1[-1] < r.lam1[0])
    True
    """
    theta0, coef = _validated_start(model, theta0, s_end, n_out, rtol, atol, coef, on_gap)
    if not is_dense(model):
        return _simple(model, theta0, s_end, n_out, rtol, atol, coef, on_gap)
    from .cluster_flow import cluster_flow, cluster_point, near_ties

    s, xs, ks, events, pieces = cluster_flow(model, theta0, s_end, n_out, rtol, atol, coef, stop_at_join,
                                                 max_evals)
    thetas, lams, gs, loaded, edge, drift = [], [], [], [], [], 0.0
    for i, (x, k) in enumerate(zip(xs, ks)):
        th = newton_polish(model, x)
        drift = max(drift, float(np.linalg.norm(th - x)))
        if k == 1:
            mp = manifold_point(model, th, on_gap="ignore")
            vals = np.linalg.eigvalsh(model.hess(th))[::-1]
            lam1, G, ld, eg = mp.lam1, mp.G, 1, (vals[0] - vals[1]) / vals[0] if len(vals) > 1 else np.inf
        else:
            cp = cluster_point(model, th, int(k))
            lam1, G, ld, eg = cp.lam1, cp.G, cp.loaded, cp.edge_gap
            if G <= _halt_rtol() * cp.branch_scale and not any(e["kind"] == "halt" for e in events):
                events.append({"s": float(s[i]), "kind": "halt", "k": int(k), "G": G})
        thetas.append(th)
        lams.append(lam1)
        gs.append(G)
        loaded.append(ld)
        edge.append(eg)
    events = sorted(events, key=lambda e: e["s"])
    edge = np.array(edge, dtype=float)
    from .cluster_flow import PiecewiseSolution
    return FlowResult(s, np.array(thetas), np.array(lams), np.array(gs), drift, PiecewiseSolution(pieces), model,
                      np.asarray(ks, dtype=int), np.array(loaded, dtype=int), edge, tuple(events),
                      tuple(near_ties(s, edge, events)))


def _halt_rtol() -> float:
    from .cluster_flow import HALT_RTOL
    return HALT_RTOL


def _validated_start(model, theta0, s_end, n_out, rtol, atol, coef, on_gap):
    theta0 = as_vector(theta0, "theta0", model.dim)
    coef = CANONICAL_COEF if coef is None else real(coef, "coef", "a finite coefficient c of dζ/ds = c·∇_Γ log λ₁")
    positive_real(s_end, "s_end", "a positive flow time (finite)")
    positive_int(n_out, "n_out", 2)
    positive_real(rtol, "rtol")
    positive_real(atol, "atol")
    check_on_gap(on_gap)
    if s_end > S_END_WARN:
        warnings.warn(f"s_end = {s_end:g} is a long flow time (> {S_END_WARN:g}): the cost grows linearly with it, "
                      "and the flow has usually come to rest at a stationary point of λ₁ long before",
                      stacklevel=3)
    theta0 = unit(theta0, "theta0")
    lam1 = sharpness(model, theta0)
    off = float(np.linalg.norm(model.grad(theta0))) / max(lam1, 1e-300)
    if off > START_GRAD_RTOL:
        raise AssumptionViolated(f"theta0: not on Γ: ‖∇L(θ₀)‖/λ₁ = {off:.3g} > {START_GRAD_RTOL:g}; "
                                 "start from theory.project_to_manifold(model, w).theta")
    return newton_polish(model, theta0), coef


def simple_flow(model, theta0, s_end: float, n_out: int = 201, rtol: float = 1e-9, atol: float = 1e-12,
                coef: float | None = None, on_gap: str = "raise") -> FlowResult:
    """The simple flow dζ/ds = coef·∇_Γ log λ₁(ζ) (docs/theory.md §3), which needs a simple λ₁ all along: a gap
    λ₁ - λ₂ ≤ GAP_RTOL·λ₁ raises ``AssumptionViolated`` (``on_gap`` = "raise") or warns ("warn"). The reference
    ``sharpness_reduction_flow`` reproduces where λ₁ stays simple."""
    theta0, coef = _validated_start(model, theta0, s_end, n_out, rtol, atol, coef, on_gap)
    return _simple(model, theta0, s_end, n_out, rtol, atol, coef, on_gap)


#: field evaluations per DOP853 step attempt (``scipy.integrate``): its 11 stages after the first, then f(t + h)
DOP853_EVALS_PER_ATTEMPT = 12


def failure_reach(evaluated, attempt: tuple[float, int] | None) -> float:
    """How far ahead a DOP853 integration from s = 0 (``scipy.integrate``) may have looked before it failed, from the
    flow times ``evaluated`` at which it evaluated the field, in order, and ``attempt`` = (t, i): the start t of the
    step being attempted when it failed and the index in ``evaluated`` of that step's first evaluation (None: it
    failed outside a step, in the initial step selection or a dense output).

    The horizon s_end enters the steps only by clipping: the initial step selection's probe (to min(h₀, s_end)),
    the first step (to min(100h₀, h₁, s_end)) and each step attempt [t, t + h], accepted or rejected (to t + h ≤
    s_end). A complete attempt evaluates the field at its end t + h; the failed one, the k-th attempt of its step
    (12 evaluations each), began with an evaluation at t + c₁h (c₁ ≈ 0.0526, the first stage node), so it ends at
    t + (s_first - t)/c₁. The reach is the largest of these and of every evaluation; an integration that failed with
    reach < s_end clipped nothing, took exactly the steps that the same integration to any s_end' > reach takes,
    and fails there at the same flow time (``verification.session.Session.flow`` reuses such failures)."""
    from scipy.integrate._ivp.dop853_coefficients import C

    evaluated = [float(x) for x in evaluated]
    reach = max(evaluated, default=0.0)
    if attempt is not None:
        t, i = attempt
        k = (len(evaluated) - 1 - i) // DOP853_EVALS_PER_ATTEMPT  # complete attempts of this step before the failed one
        first = evaluated[i + k * DOP853_EVALS_PER_ATTEMPT]
        reach = max(reach, t + (first - t) / float(C[1]))
    return reach


def _recording_dop853(evaluated: list, state: dict):
    """DOP853 that records (t, index of the next evaluation) in ``state["attempt"]`` while it takes a step (None
    between steps), for ``failure_reach``."""
    from scipy.integrate import DOP853

    class RecordingDOP853(DOP853):
        def _step_impl(self):
            state["attempt"] = (float(self.t), len(evaluated))
            out = super()._step_impl()
            state["attempt"] = None
            return out

    return RecordingDOP853


def _simple(model, theta0, s_end, n_out, rtol, atol, coef, on_gap) -> FlowResult:
    s_grid = np.linspace(0.0, s_end, n_out)
    evaluated, state, memo = [], {"attempt": None}, {}

    def field(s, x):
        evaluated.append(float(s))
        return _field(model, s, x, coef, on_gap, memo if not is_dense(model) else None)

    try:
        sol = solve_ivp(field, (0.0, s_end), theta0, t_eval=s_grid, dense_output=True, rtol=rtol, atol=atol,
                        method=_recording_dop853(evaluated, state))
    except AssumptionViolated as exc:
        exc.reach = failure_reach(evaluated, state["attempt"])
        raise
    if sol.status != 0:
        raise AssumptionViolated(f"flow stopped at s = {sol.t[-1]:.4g}: {sol.message}")
    thetas, lams, gs, drift = [], [], [], 0.0
    for x in sol.y.T:  # λ₁ of the sample before sets the Newton truncation (matrix-free: no Lanczos for it)
        th = newton_polish(model, x, lam1=lams[-1] if lams and not is_dense(model) else None)
        drift = max(drift, float(np.linalg.norm(th - x)))
        mp = manifold_point(model, th, on_gap=on_gap)
        thetas.append(th)
        lams.append(mp.lam1)
        gs.append(mp.G)
    return FlowResult(sol.t, np.array(thetas), np.array(lams), np.array(gs), drift, sol.sol, model,
                      np.ones(len(sol.t), dtype=int))


# -- clocks -------------------------------------------------------------------------------------------
def _flow_result(result) -> FlowResult:
    """``result`` if it has the samples the clocks read (``s``, ``sharpness``: a ``FlowResult`` or a stand-in such
    as ``verification.tracking.ScaledFlow``), else a TypeError naming it."""
    if not (hasattr(result, "s") and hasattr(result, "lam1")):
        raise TypeError(f"result: expected a FlowResult (from sharpness_reduction_flow), got {type(result).__name__}")
    return result


def _norm0_sq(norm0_sq) -> float:
    return positive_real(norm0_sq, "norm0_sq", "the squared norm ‖w_t₀‖² > 0 (finite) where the flow starts")


def gdwd_tau(result: FlowResult) -> np.ndarray:
    """τ - τ₀ = ηλ(t - t₀) = ½ [s + log(λ₁(ζ(0))/λ₁(ζ(s)))] for each sample of ``result``."""
    _flow_result(result)
    return 0.5 * (result.s + np.log(result.lam1[0] / result.lam1))


def gdwd_steps(result: FlowResult, lr: float, wd: float) -> np.ndarray:
    """Steps since the start of EoS for GD+WD: t - t₀ = [s + log(λ₁(ζ(0))/λ₁(ζ(s)))]/(2ηλ)."""
    check_hyperparameters(lr, wd)
    _flow_result(result)
    if wd == 0:
        raise ValueError("wd: the GD+WD clock needs λ > 0; for GD without WD use nowd_norm_sq/nowd_stop")
    return gdwd_tau(result) / (lr * wd)


def naive_gdwd_steps(result: FlowResult, lr: float, wd: float) -> np.ndarray:
    """The naive (wrong, G → 0) hypothesis dθ/dτ = -½ ∇_Γ log λ₁: s = 2ηλ(t - t₀), so t - t₀ = s/(2ηλ)."""
    check_hyperparameters(lr, wd)
    _flow_result(result)
    if wd == 0:
        raise ValueError("wd: the naive GD+WD clock needs λ > 0")
    return result.s / (2 * lr * wd)


def nowd_norm_sq(result: FlowResult, norm0_sq: float) -> np.ndarray:
    """GD without WD: ‖w‖² = ‖w_t₀‖² e^s along the flow (the clock s = log(‖w_t‖²/‖w_t₀‖²))."""
    _flow_result(result)
    return _norm0_sq(norm0_sq) * np.exp(result.s)


def nowd_flow_time(norm_sq, norm0_sq: float) -> np.ndarray:
    """GD without WD: the flow time s = log(‖w_t‖²/‖w_t₀‖²) reached at norm ``norm_sq`` (inverse of
    ``nowd_norm_sq``; each step adds its squared angular step to log‖w‖², docs/theory.md §5)."""
    norm_sq = real_array(norm_sq, "norm_sq")
    if np.any(norm_sq <= 0):
        raise ValueError(f"norm_sq: expected squared norms > 0, got {float(norm_sq[norm_sq <= 0].ravel()[0])!r}")
    return np.log(norm_sq / _norm0_sq(norm0_sq))


def nowd_stop(result: FlowResult, lr: float, norm0_sq: float) -> float:
    """The flow time s* at which GD without WD stops: η λ₁(ζ(s*)) = 2 ‖w_t₀‖² e^{s*}.

    Returns 0 if EoS does not hold at the start, ``inf`` if it still holds at the end of ``result``.
    """
    check_hyperparameters(lr)
    _flow_result(result)
    margin = lr * result.lam1 - 2 * nowd_norm_sq(result, norm0_sq)
    if margin[0] <= 0:
        return 0.0
    if margin[-1] > 0:
        return float("inf")
    i = int(np.argmax(margin <= 0))
    return _root_between(result, lambda s: np.log(lr * result.sharpness_at(s) / (2 * _norm0_sq(norm0_sq))) - s, i)


def nowd_rest_fraction(g: float) -> float:
    """x_f(g) = u_f/u₀ ∈ [-1, 0): where GD without WD comes to rest, as a fraction of its starting excess u₀, when
    the flip's neutral point moves with its squared amplitude A as u_c = βA (docs/theory.md §5), g = βu₀/(1 + G/4).

    From dA/dt = 4(u - βA)A and du/dt = -4(1 + G/4)A: dA/du = -(u - βA)/(1 + G/4), so A e^{-bu} =
    ∫_u^{u₀} u' e^{-bu'} du'/(1 + G/4) (b = β/(1 + G/4)), and A is back at 0 where ∫_{x_f}^1 x e^{-gx} dx = 0, i.e.
    (1 - z)e^z = (1 + g)e^{-g} with z = -g x_f: z = 1 + W(-(1 + g)e^{-1-g}) (Lambert W; the branch W₀ for g > 0, W₋₁
    for g < 0: the other root is z = -g).
    Series: x_f = -1 + 2g/3 - 4g²/9 + 44g³/135 - …; g = 0 is ``nowd_final``'s -1; g → ∞: x_f → -1/g (the run
    rests just past the threshold, u_f = -(1 + G/4)/β). g < 0 (a flip that steepens with amplitude) is allowed
    down to the branch point of the formula (g > -1: beyond, A does not return to 0 in this model)."""
    g = real(g, "g", "a finite g > -1")
    if not g > -1:
        raise ValueError(f"g: expected a finite g > -1 (βu₀/(1 + G/4)), got {g!r}")
    if abs(g) < 1e-3:  # the closed form loses digits to cancellation near g = 0: its series
        return float(-1 + 2 * g / 3 - 4 * g**2 / 9 + 44 * g**3 / 135 - 104 * g**4 / 405)
    from scipy.special import lambertw

    # the other root of (1 - z)e^z = (1 + g)e^{-g} than z = -g: branch 0 for g > 0, branch -1 for -1 < g < 0
    z = 1 + float(np.real(lambertw(-(1 + g) * np.exp(-1 - g), 0 if g > 0 else -1)))
    return float(-z / g)


def nowd_final(result: FlowResult, lr: float, norm0_sq: float, stabilization: float = 0.0) -> float:
    """The flow time at which GD without WD, started with a tiny oscillation, actually comes to rest.

    With u = log(η λ₁(ζ(s))/(2‖w‖²)) (> 0 above the edge of stability) and A the squared angular amplitude
    of the flip along v₁, one step multiplies A by (2e^u - 1)² ≈ e^{4u} and adds ≈ 4A to log‖w‖² = s, while
    d log λ₁ = -(G/4) ds; so dA/dt = 4uA, du/dt = -4(1 + G/4)A, and dA/du = -u/(1 + G/4). Started with
    A ≈ 0 at u₀ > 0, A grows while u > 0 and decays back to 0 at u_f with ∫_{u_f}^{u₀} u du/(1 + G/4) = 0,
    i.e. u_f = -u₀ to leading order in u₀ (exactly when G is constant). The run overshoots the edge of
    stability and comes to rest where η λ₁(ζ(s))/(2‖w_t₀‖² e^s) = 1/r₀, r₀ its value at s = 0: about twice
    ``nowd_stop``'s flow time (docs/theory.md §5). Returns 0 when r₀ ≤ 1, ``inf`` beyond the flow's horizon.

    ``stabilization`` β (``theory.nowd_stabilization``): the flip of amplitude √A is neutral at u = βA rather than
    0 (its 2-cycle needs η_eff λ₁ = 2 + 4βA), so dA/dt = 4(u - βA)A and the run rests at u_f = x_f(g)·u₀,
    g = βu₀/(1 + G(ζ(0))/4) (``nowd_rest_fraction``): the same leading order as u₀ → 0 (a relative change -g/3 of
    the flow time), all orders in g. β = 0 (the default) is the formula above."""
    check_hyperparameters(lr)
    _flow_result(result)
    stabilization = real(stabilization, "stabilization", "a finite β (theory.nowd_stabilization)")
    u = np.log(lr * result.lam1 / (2 * nowd_norm_sq(result, norm0_sq)))
    if u[0] <= 0:
        return 0.0
    g = stabilization * u[0] / (1 + result.G[0] / 4)
    u_f = nowd_rest_fraction(g) * u[0] if g > -1 else -float("inf")
    if not np.isfinite(u_f) or u[-1] > u_f:
        return float("inf")
    i = int(np.argmax(u <= u_f))
    return _root_between(result, lambda s: np.log(lr * result.sharpness_at(s) / (2 * _norm0_sq(norm0_sq))) - s - u_f, i)


def _root_between(result: FlowResult, fn, i: int) -> float:
    """The root of ``fn`` (decreasing in s) between the flow samples i - 1 and i, on λ₁(ζ(s)) between samples as
    ``FlowResult.sharpness_at`` gives it (the Hermite interpolant with the exact slope -G/4; linear interpolation
    between samples put the no-WD rest point off by 2e-4 relative on a zoo model with G ≈ 26, where the check
    resolves 1e-3)."""
    from scipy.optimize import brentq

    a, b = float(result.s[i - 1]), float(result.s[i])
    fa, fb = float(fn(np.array([a]))[0]), float(fn(np.array([b]))[0])
    if fa == 0:
        return a
    if fb == 0 or fa * fb > 0:  # the samples bracket the root; round-off at an endpoint
        return b
    return float(brentq(lambda s: float(fn(np.array([s]))[0]), a, b, xtol=1e-15, rtol=1e-14))


def normalized_gd_steps(result: FlowResult, lr: float) -> np.ndarray:
    """Normalized GD (ALP): dX/dτ = -¼ ∇_Γ log λ₁ with τ = η² t, so t = s/η²."""
    check_hyperparameters(lr)
    return _flow_result(result).s / lr**2


def sqrt_gd_steps(result: FlowResult, lr: float) -> np.ndarray:
    """GD on √L (ALP): dX/dτ = -⅛ ∇_Γ λ₁ = (λ₁/2)·(-¼ ∇_Γ log λ₁), so dτ = 2 ds/λ₁ and
    t = (1/η²) ∫₀^s 2/λ₁(ζ(s')) ds' (the antiderivative of a cubic spline through the samples of ``result``:
    O(Δs⁴); a trapezoid's O(Δs²) leaves a floor of ~1e-6 in s)."""
    check_hyperparameters(lr)
    _flow_result(result)
    # a cubic spline's antiderivative: O(Δs⁴) (a trapezoid rule's O(Δs²) would leave a floor of ~1e-6 in s); one
    # spline per segment between events (λ₁ has a kink there)
    out, total = [], 0.0
    for sl in _segments(result.s):
        x, y = result.s[sl], 2.0 / result.lam1[sl]
        if len(x) == 1:
            out.append(np.array([total]))
            continue
        if len(x) == 2:  # two samples: the trapezoid rule
            vals = total + np.array([0.0, 0.5 * (y[0] + y[1]) * (x[1] - x[0])])
        else:
            integral = CubicSpline(x, y).antiderivative()
            vals = total + integral(x) - integral(x[0])
        out.append(vals)
        total = float(vals[-1])
    return np.concatenate(out) / lr**2


def s_at_steps(result: FlowResult, steps_of_s: np.ndarray, steps) -> np.ndarray:
    """Invert a monotone clock: the flow time s at which ``steps_of_s`` (one clock applied to ``result``)
    equals ``steps``. Steps beyond the flow's horizon raise ValueError."""
    _flow_result(result)
    steps = real_array(steps, "steps")
    steps_of_s = real_array(steps_of_s, "steps_of_s", ndim=1)
    if steps_of_s.shape != result.s.shape:
        raise ValueError(f"steps_of_s: expected one value per flow sample, shape {result.s.shape}, got {steps_of_s.shape}")
    d = np.diff(steps_of_s)
    if np.any(d < 0) or np.any((d == 0) & (np.diff(result.s) != 0)):
        raise AssumptionViolated("clock: steps(s) is not increasing along the flow")
    if np.any(steps > steps_of_s[-1] * (1 + 1e-12)) or np.any(steps < 0):
        raise ValueError(f"steps: expected values in [0, {steps_of_s[-1]:.6g}] (the flow's horizon), "
                         f"got up to {np.max(steps):.6g}")
    return invert_clock(steps_of_s, result.s, steps)


def _segments(s: np.ndarray) -> list[slice]:
    """The runs of strictly increasing ``s`` between repeated samples (an event of the cluster flow: its left and
    right limits), as slices."""
    cuts = [0] + [i + 1 for i in np.flatnonzero(np.diff(s) == 0)] + [len(s)]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def invert_clock(steps_of_s: np.ndarray, s: np.ndarray, steps) -> np.ndarray:
    """s at ``steps`` for a clock sampled as ``steps_of_s`` at flow times ``s``, by a cubic spline in the steps
    (interpolation error O(Δs⁴): a linear interpolation leaves an O(Δs²·(log λ₁)'') floor of ~5e-6
    in s at 400 flow samples, the size of the O(ηλ) clock error at ηλ ≈ 1e-5), one spline per segment between
    events of the cluster flow (repeated samples of s), where the clock's rate jumps with G."""
    steps_of_s, s = real_array(steps_of_s, "steps_of_s", ndim=1), real_array(s, "s", ndim=1)
    if steps_of_s.shape != s.shape:
        raise ValueError(f"s: expected the shape of steps_of_s {steps_of_s.shape}, got {s.shape}")
    steps = real_array(steps, "steps")
    segs = _segments(s)
    if len(segs) == 1:
        return CubicSpline(steps_of_s, s)(steps)
    out = np.empty_like(steps)
    bounds = [steps_of_s[sl][-1] for sl in segs]
    which = np.searchsorted(np.array(bounds[:-1]), steps, side="left")
    for j, sl in enumerate(segs):
        mask = which == j
        if not mask.any():
            continue
        x, y = steps_of_s[sl], np.asarray(s)[sl]
        out[mask] = CubicSpline(x, y)(steps[mask]) if len(x) > 2 else np.interp(steps[mask], x, y)
    return out
