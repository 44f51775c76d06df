"""What the dense and the matrix-free computations on Γ share: the rank and gap tolerances, the records they
return (``Projection``, ``ManifoldPoint``), the error a failed assumption raises, and the gradient flow that
both run towards Γ. It imports nothing from the rest of ``theory``: ``theory.dense`` and ``theory.matrix_free``
build on it without importing each other or ``theory.manifold``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.integrate import ode, solve_ivp

#: eigenvalues with |λ| ≤ RANK_RTOL·λ₁ count as zero when deciding the kernel (rank condition)
RANK_RTOL = 1e-6
#: a top eigenvalue is simple when λ₁ - λ₂ > GAP_RTOL·λ₁
GAP_RTOL = 1e-3
#: the longest flow of Φ's projection, in units of 1/λ₁(∇²L(w̄)) (``flow_budget``): the flow's slowest normal mode
#: decays as e^{-μt}, so reaching ‖∇L‖ ≤ grad_rtol·λ₁ from a distance d takes λ₁t ≈ (λ₁/μ)·ln(d/grad_rtol) (≈ 20λ₁/μ),
#: and 1e8 admits λ₁/μ up to ≈ 5e6 (the stiffest zoo model has 3.2e4). Before 2026-12-05 the budget was an absolute
#: flow time of 1e6, which stopped mf at D = 4000 (λ₁(w̄) ≈ 8e-6) at λ₁t ≈ 8, 9.5e-3 from Φ.
MAX_FLOW_LAM1_TIME = 1e8


def flow_budget(lam1: float, max_time=None) -> float:
    """The flow time of Φ's projection: ``max_time`` when given, else MAX_FLOW_LAM1_TIME/λ₁ (scale-free)."""
    return MAX_FLOW_LAM1_TIME / lam1 if max_time is None else max_time
#: what ``on_gap`` may say when λ₁ has no gap
ON_GAP = ("raise", "warn", "ignore")


def check_on_gap(on_gap) -> None:
    """``on_gap`` is one of ON_GAP, or a ValueError naming it."""
    if on_gap not in ON_GAP:
        raise ValueError(f"on_gap: expected one of {', '.join(map(repr, ON_GAP))}, got {on_gap!r}")


class AssumptionViolated(ValueError):
    """A theory assumption fails at a point (no spectral gap, rank condition, off Γ); the message says
    which, where and by how much. ``kind`` names the assumption for callers that react to it ("gap": λ₁ is not
    simple), ``s`` the flow time where it failed (None when not on a flow), ``reach`` a flow time up to which the
    failed integration may have looked ahead (``theory.flows.simple_flow``: the same flow to any horizon beyond it
    takes the same steps, so it fails at the same ``s``; None when not known)."""

    def __init__(self, message: str, kind: str | None = None, s: float | None = None, reach: float | None = None):
        super().__init__(message)
        self.kind, self.s, self.reach = kind, s, reach

    def __reduce__(self):  # keeps kind, s and reach through pickling (Dask workers)
        return (type(self), (str(self), self.kind, self.s, self.reach))


def gap_violated(gap: float, lam1: float, gap_rtol: float, on_gap: str) -> None:
    """λ₁ - λ₂ = ``gap`` ≤ gap_rtol·λ₁: raise ``AssumptionViolated`` (``on_gap`` = "raise"), warn ("warn"), or
    nothing ("ignore": the caller handles ties itself, as the cluster flow does)."""
    if gap <= gap_rtol * lam1 and on_gap != "ignore":
        msg = f"assumption violated: spectral gap λ₁ - λ₂ = {gap:.3g} (λ₁ = {lam1:.3g}) at θ; ∇λ₁ is undefined"
        if on_gap == "raise":
            raise AssumptionViolated(msg, kind="gap")
        warnings.warn(msg, stacklevel=4)  # the caller of theory.manifold_point


class Diverged(RuntimeError):
    """A model's derivative or a flow's state left float64 (an overflow to inf, or NaN) during a computation; the
    message names the quantity, its size and where (flow time, or the step of a run). The checks report it as a
    divergence (a fail verdict), like a simulation whose iterates blow up."""


def finite(x, what: str, where: str, why: str = "") -> np.ndarray:
    """``x`` as an array if every entry is finite, else ``Diverged`` naming ``what`` (e.g. "∇L(x)"), ``where`` and
    ``why`` (default: the model returns NaN, or overflows float64, there)."""
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].ravel()[0]
        why = why or ("the model returns NaN there" if np.isnan(arr).all() else "the model overflows float64 there")
        raise Diverged(f"{what} is non-finite ({bad}; {int(np.sum(~np.isfinite(arr)))} of {arr.size} entries) {where}: "
                       f"{why}")
    return arr


@dataclass(frozen=True, eq=False)
class Projection:
    """Φ(w̄) with diagnostics: ``theta`` (unit), ``grad_norm`` = ‖∇L(θ)‖, ``flow_time`` used, ``distance``
    ‖θ - w̄‖ travelled."""

    theta: np.ndarray
    grad_norm: float
    flow_time: float
    distance: float


@dataclass(frozen=True, eq=False)
class ManifoldPoint:
    """Everything the flows need at θ ∈ Γ: λ₁, v₁, the gap λ₁ - λ₂, the tangent basis (None above
    DENSE_MAX_DIM) and ∇_Γ log λ₁ (``grad_log``), with G = ‖∇_Γ log λ₁‖²."""

    theta: np.ndarray
    lam1: float
    v1: np.ndarray
    gap: float
    tangent: np.ndarray | None
    grad_log: np.ndarray

    @property
    def G(self) -> float:
        return float(self.grad_log @ self.grad_log)


def _guarded_grad(model, start: dict):
    """(t, x) -> ∇L(x) as float64, raising ``Diverged`` (with the flow time, ‖x‖ and ``start["g"]``, the starting
    ‖∇L‖, once set) where x or ∇L(x) is not finite: the field of the gradient flows towards Γ."""
    def grad(t, x):
        def where():  # formatted only for the error (a norm and a format per call cost ~10% of a projection)
            return (f"at flow time {t:.4g} of the gradient flow towards Γ (‖x‖ = {np.linalg.norm(x):.4g}"
                    + (f"; ‖∇L‖ = {start['g']:.3g} at its start)" if start else ")"))
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            finite(x, "diverged: the state x", where(), "the flow's steps overflow float64 (‖∇L‖ too large)")
        g = np.asarray(model.grad(x), dtype=np.float64)
        if not np.isfinite(g).all():
            finite(g, "diverged: ∇L(x)", where())
        return g
    return grad


def flow_to_small_gradient(model, x0: np.ndarray, target: float, max_time: float, method: str, jac=None):
    """Gradient flow ẋ = -∇L(x) from ``x0`` (``method``: "BDF" with the Hessian as ``jac``, or "DOP853" without
    a matrix) until ‖∇L(x)‖ ≤ ``target`` or ``max_time``; returns (x, the flow time used)."""
    start = {}
    grad = _guarded_grad(model, start)

    def small_gradient(t, x):
        return np.linalg.norm(grad(t, x)) - target

    small_gradient.terminal = True
    start["g"] = float(np.linalg.norm(grad(0.0, x0)))
    if start["g"] <= target:
        return x0, 0.0
    sol = solve_ivp(lambda t, x: -grad(t, x), (0.0, max_time), x0, method=method, events=small_gradient,
                    rtol=1e-10, atol=1e-13, **({"jac": jac} if jac is not None else {}))
    if sol.status == -1:
        raise AssumptionViolated(f"w: gradient flow failed: {sol.message}")
    return sol.y[:, -1], float(sol.t[-1])


def flow_steps(model, x0: np.ndarray, max_time: float, first: float):
    """Gradient flow ẋ = -∇L(x) from ``x0`` by LSODA (ODEPACK through ``scipy.integrate.ode``: Adams steps while the
    flow is not stiff, BDF with the Jacobian -∇²L once it is; rtol 1e-10, atol 1e-13) as a generator of
    (t, x(t), ∇L(x(t))) at the flow times t = ``first``·2^k, then ``max_time``: the caller decides when to stop
    (``theory.dense``). One integration throughout (LSODA interpolates to each t; no restart, no event location,
    no Python between its steps). Non-finite states or gradients raise ``Diverged``."""
    failure = []  # a Diverged raised inside LSODA's call of the field: Fortran does not pass it on
    grad = _guarded_grad(model, {})

    def field(t, x):
        try:
            return -grad(t, x)
        except Diverged as err:
            failure.append(err)
            return np.full_like(x, np.nan)

    solver = ode(field, lambda t, x: -np.asarray(model.hess(x), dtype=np.float64))
    solver.set_integrator("lsoda", rtol=1e-10, atol=1e-13, nsteps=10**7)
    solver.set_initial_value(np.asarray(x0, dtype=np.float64), 0.0)
    t = min(first, max_time)
    while True:
        x = np.array(solver.integrate(t))  # ode reuses its state array
        if failure:
            raise failure[0]
        if not solver.successful():
            raise AssumptionViolated(f"w: gradient flow failed: LSODA returned {solver.get_return_code()} at flow "
                                     f"time {solver.t:.4g}")
        yield t, x, grad(t, x)
        if t >= max_time:
            return
        t = min(2 * t, max_time)
