"""Checks of scale invariance (docs/theory.md §1) and of exact derivatives, on any protocol model.

Each identity maps (model, point) to (error, scale); ``scaled = error/(tol·scale)`` passes when ≤ 1.
``check_identities`` evaluates all of them at random points and keeps the worst point of each; a model
that raises or is not scale-invariant produces a ``fail``/``error`` row naming the point and the size of
the violation, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from srflow.theory.sharpness import is_dense, top_eigenpairs
from srflow.toy_models.protocol import check_model, model_name
from srflow.toy_models.validate import as_rng, as_vector, positive_int

from . import tolerances as tol

_TINY = 1e-300
#: ARPACK iterations for the smallest eigenvalue at a minimizer above DENSE_MAX_DIM (unconverged: the best Ritz
#: value, or NaN, which fails the PSD row with its value shown)
MIN_EIG_MAXITER = 300


@dataclass(frozen=True)
class Probe:
    """A random evaluation point: w, directions u and v (unit), a scaling factor c > 0."""

    w: np.ndarray
    u: np.ndarray
    v: np.ndarray
    c: float


def draw_probe(rng: np.random.Generator, dim: int) -> Probe:
    """w Gaussian, rescaled to a norm drawn in [0.5, 2]; u, v unit Gaussian; c = exp(U[-1.5, 1.5])."""
    w = rng.standard_normal(dim)
    w *= rng.uniform(0.5, 2.0) / np.linalg.norm(w)
    u, v = rng.standard_normal((2, dim))
    return Probe(w, u / np.linalg.norm(u), v / np.linalg.norm(v), float(np.exp(rng.uniform(-1.5, 1.5))))


def _norm(x) -> float:
    return float(np.linalg.norm(x))


def _diff(a, b) -> tuple[float, float]:
    """(‖a - b‖, max(‖a‖, ‖b‖)): the error of a against reference b and its natural scale."""
    return _norm(np.asarray(a) - np.asarray(b)), max(_norm(a), _norm(b))


def hess_norm(m, w) -> float:
    """‖∇²L(w)‖₂: from the dense Hessian when ``theory.sharpness.is_dense(m)``, else the largest-magnitude
    eigenvalue by Lanczos on HVPs (to 1e-6 relative: it is a scale, not a result)."""
    if is_dense(m):
        return float(np.linalg.norm(m.hess(w), 2))
    key = (id(m), hash(np.asarray(w).tobytes()))
    if key not in _NORMS:
        if len(_NORMS) > 64:
            _NORMS.clear()
        op = LinearOperator((m.dim, m.dim), matvec=lambda v: m.hvp(w, np.ravel(v)), dtype=np.float64)
        _NORMS[key] = float(np.max(np.abs(eigsh(op, k=1, which="LM", tol=1e-6, return_eigenvectors=False))))
    return _NORMS[key]


_NORMS: dict = {}  # hess_norm of the matrix-free path, per (model, point): each probe needs it several times


def _hess_apply(m, w, v) -> np.ndarray:
    """∇²L(w) v: ``hess(w) @ v`` for dense models (so a wrong ``hess`` shows), ``hvp`` above DENSE_MAX_DIM."""
    return m.hess(w) @ v if is_dense(m) else m.hvp(w, v)


def _gradient_scale(m, p: Probe) -> float:
    """‖∇²L(w)‖₂‖w‖, an upper bound of ‖∇L(w)‖ (as ∇²L w = -∇L): the size of a gradient near w.

    Used as the scale of gradient comparisons so that they stay meaningful at (near-)critical points,
    where ‖∇L‖ itself is round-off.
    """
    return hess_norm(m, p.w) * _norm(p.w)


def _fd_step(p: Probe) -> float:
    return tol.FD_STEP * _norm(p.w)


def central_difference(f: Callable[[float], np.ndarray], h: float) -> np.ndarray:
    """d/dt f(t) at t = 0 by Richardson-extrapolated central differences: (4 D(h/2) - D(h))/3,
    D(h) = (f(h) - f(-h))/(2h). Truncation O(h⁴) instead of O(h²): the step is relative to ‖w‖, but a
    block-normalized model may have a block much shorter than w, where O(h²) would not be small."""
    d1 = (np.asarray(f(h)) - np.asarray(f(-h))) / (2 * h)
    d2 = (np.asarray(f(h / 2)) - np.asarray(f(-h / 2))) / h
    return (4 * d2 - d1) / 3


# -- the identities ------------------------------------------------------------------------------------
def euler_gradient(m, p: Probe):
    """⟨∇L(w), w⟩ = 0 (scale: ‖∇²L‖‖w‖²)."""
    return abs(float(m.grad(p.w) @ p.w)), _gradient_scale(m, p) * _norm(p.w)


def invariance(m, p: Probe):
    """L(c w) = L(w) (scale: |L(w)| + ‖∇²L‖‖w‖²)."""
    base = m.loss(p.w)
    return abs(m.loss(p.c * p.w) - base), abs(base) + _gradient_scale(m, p) * _norm(p.w)


def grad_degree(m, p: Probe):
    """c ∇L(c w) = ∇L(w) (degree -1; scale: ‖∇²L‖‖w‖)."""
    err, _ = _diff(p.c * m.grad(p.c * p.w), m.grad(p.w))
    return err, _gradient_scale(m, p)


def hess_degree(m, p: Probe):
    """c² ∇²L(c w) = ∇²L(w) (degree -2; above DENSE_MAX_DIM applied to v: c² ∇²L(cw)v = ∇²L(w)v, scale ‖∇²L‖)."""
    if is_dense(m):
        return _diff(p.c**2 * m.hess(p.c * p.w), m.hess(p.w))
    err, _ = _diff(p.c**2 * m.hvp(p.c * p.w, p.v), m.hvp(p.w, p.v))
    return err, hess_norm(m, p.w)


def third_degree(m, p: Probe):
    """c³ ∇³L(c w)[u, v] = ∇³L(w)[u, v] (degree -3)."""
    return _diff(p.c**3 * m.third(p.c * p.w, p.u, p.v), m.third(p.w, p.u, p.v))


def hess_radial(m, p: Probe):
    """∇²L(w) w = -∇L(w) (scale: ‖∇²L‖‖w‖)."""
    return _norm(_hess_apply(m, p.w, p.w) + m.grad(p.w)), _gradient_scale(m, p)


def third_radial(m, p: Probe):
    """∇³L(w)[w, v, ·] = -2 ∇²L(w) v (scale: ‖∇²L‖)."""
    return _norm(m.third(p.w, p.w, p.v) + 2 * _hess_apply(m, p.w, p.v)), 2 * hess_norm(m, p.w)


def hess_symmetric(m, p: Probe):
    """∇²L(w) = ∇²L(w)ᵀ (above DENSE_MAX_DIM: u·∇²L(w)v = v·∇²L(w)u, scale ‖∇²L‖)."""
    if not is_dense(m):
        return abs(float(p.u @ m.hvp(p.w, p.v) - p.v @ m.hvp(p.w, p.u))), hess_norm(m, p.w)
    h = m.hess(p.w)
    return _norm(h - h.T), _norm(h)


def hvp_matches_hess(m, p: Probe):
    """hvp(w, v) = ∇²L(w) v (above DENSE_MAX_DIM, where ``hess`` is not used: hvp is linear in v,
    hvp(w, u + 2v) = hvp(w, u) + 2 hvp(w, v), scale ‖∇²L‖)."""
    if not is_dense(m):
        err, _ = _diff(m.hvp(p.w, p.u + 2 * p.v), m.hvp(p.w, p.u) + 2 * m.hvp(p.w, p.v))
        return err, hess_norm(m, p.w)
    return _diff(m.hvp(p.w, p.v), m.hess(p.w) @ p.v)


def third_symmetric(m, p: Probe):
    """⟨∇³L[u, v], x⟩ is symmetric in (u, v, x): compared over the three cyclic orders, x = w/‖w‖."""
    x = p.w / _norm(p.w)
    vals = [m.third(p.w, p.u, p.v) @ x, m.third(p.w, p.v, x) @ p.u, m.third(p.w, x, p.u) @ p.v]
    scale = _norm(m.third(p.w, p.u, p.v)) + _norm(m.third(p.w, p.v, x)) + _norm(m.third(p.w, x, p.u))
    return max(vals) - min(vals), scale


def fd_gradient(m, p: Probe):
    """∇L(w) = central differences of L, coordinatewise (scale: ‖∇²L‖‖w‖; above DENSE_MAX_DIM along the two
    directions u, v: ⟨∇L, u⟩ and ⟨∇L, v⟩ against the derivatives of L along them)."""
    h = _fd_step(p)
    directions = np.eye(m.dim) if is_dense(m) else np.stack([p.u, p.v])
    fd = np.array([central_difference(lambda t: m.loss(p.w + t * e), h) for e in directions])
    err, scale = _diff(directions @ m.grad(p.w), fd)
    return err, max(scale, _gradient_scale(m, p))


def fd_hessian(m, p: Probe):
    """∇²L(w) = central differences of ∇L, column by column (above DENSE_MAX_DIM: hvp(w, v) against the
    derivative of ∇L along v)."""
    h = _fd_step(p)
    if not is_dense(m):
        return _diff(m.hvp(p.w, p.v), central_difference(lambda t: m.grad(p.w + t * p.v), h))
    fd = np.column_stack([central_difference(lambda t: m.grad(p.w + t * e), h) for e in np.eye(m.dim)])
    return _diff(m.hess(p.w), fd)


def fd_third(m, p: Probe):
    """∇³L(w)[u, v, ·] = central difference of hvp(·, v) along u."""
    h = _fd_step(p)
    fd = central_difference(lambda t: m.hvp(p.w + t * p.u, p.v), h)
    return _diff(m.third(p.w, p.u, p.v), fd)


@dataclass(frozen=True)
class Identity:
    name: str
    fn: Callable[[object, Probe], tuple[float, float]]
    rtol: float
    scale_invariance: bool  # True: holds only for scale-invariant losses

    @property
    def statement(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0]


IDENTITIES: tuple[Identity, ...] = (
    Identity("invariance", invariance, tol.IDENTITY_RTOL, True),
    Identity("euler-grad", euler_gradient, tol.IDENTITY_RTOL, True),
    Identity("grad-degree", grad_degree, tol.IDENTITY_RTOL, True),
    Identity("hess-degree", hess_degree, tol.IDENTITY_RTOL, True),
    Identity("third-degree", third_degree, tol.IDENTITY_RTOL, True),
    Identity("hess-radial", hess_radial, tol.IDENTITY_RTOL, True),
    Identity("third-radial", third_radial, tol.IDENTITY_RTOL, True),
    Identity("hess-symmetric", hess_symmetric, tol.IDENTITY_RTOL, False),
    Identity("hvp-hess", hvp_matches_hess, tol.IDENTITY_RTOL, False),
    Identity("third-symmetric", third_symmetric, tol.IDENTITY_RTOL, False),
    Identity("fd-grad", fd_gradient, tol.FD_RTOL, False),
    Identity("fd-hess", fd_hessian, tol.FD_RTOL, False),
    Identity("fd-third", fd_third, tol.FD_RTOL, False),
)
IDENTITY_NAMES = tuple(i.name for i in IDENTITIES)


@dataclass
class IdentityResult:
    """The worst point of one identity on one model."""

    identity: str
    model: str
    statement: str
    error: float
    scale: float
    rtol: float
    scaled_error: float
    status: str  # "pass" | "fail" | "error"
    point: list[float] = field(default_factory=list)
    message: str = ""


def scaled_error(error: float, scale: float, rtol: float) -> float:
    """error in units of the tolerance: error / (rtol·scale); inf for a non-finite error."""
    if not np.isfinite(error) or not np.isfinite(scale):
        return float("inf")
    return float(error / max(rtol * scale, _TINY))


def evaluate(identity: Identity, model, probe: Probe) -> tuple[float, float, float]:
    """(error, scale, scaled error) of one identity at one probe."""
    err, scale = identity.fn(model, probe)
    return float(err), float(scale), scaled_error(err, scale, identity.rtol)


def check_identities(model, rng: np.random.Generator, points: int = 3, names=None) -> list[IdentityResult]:
    """Evaluate each identity at ``points`` random probes; report the worst probe of each.

    ``rng``: a ``numpy.random.Generator`` or an integer seed (anything else is a TypeError naming it);
    ``names``: identity names (one name may be given as a string). Unknown identity names raise ``ValueError``
    listing the valid ones.
    """
    check_model(model)
    rng = as_rng(rng)
    points = positive_int(points, "points")
    names = IDENTITY_NAMES if names is None else (names,) if isinstance(names, str) else tuple(names)
    unknown = sorted(set(names) - set(IDENTITY_NAMES))
    if unknown:
        raise ValueError(f"names: unknown identities {unknown}; valid are {', '.join(IDENTITY_NAMES)}")
    probes = [draw_probe(rng, model.dim) for _ in range(points)]
    results = []
    for ident in (i for i in IDENTITIES if i.name in names):
        worst = None
        for probe in probes:
            try:
                err, scale, scaled = evaluate(ident, model, probe)
            except Exception as exc:  # a model that raises is reported, not propagated
                worst = (float("nan"), float("nan"), float("inf"), probe, f"{type(exc).__name__}: {exc}")
                break
            if worst is None or not scaled <= worst[2]:
                worst = (err, scale, scaled, probe, "")
        err, scale, scaled, probe, msg = worst
        status = "error" if msg else ("pass" if scaled <= 1.0 else "fail")
        if status == "fail":
            msg = (f"violated by {err:.3g} (scale {scale:.3g}, {scaled:.3g}x the tolerance) at "
                   f"‖w‖ = {_norm(probe.w):.3g}, c = {probe.c:.3g}, w[:3] = {np.array2string(probe.w[:3], precision=4)}")
        results.append(IdentityResult(ident.name, model_name(model), ident.statement, err, scale, ident.rtol,
                                      scaled, status, [float(x) for x in probe.w], msg))
    return results


def check_minimizer(model, theta: np.ndarray) -> list[IdentityResult]:
    """Is ``theta`` a point of Γ? Unit norm, critical, PSD Hessian, and the rank condition
    rank ∇²L(θ) = D - 1 - dim Γ (when the model states ``manifold_dim``).

    Scales: λ₁ = the largest algebraic eigenvalue of ∇²L(θ); eigenvalues with |λ| ≤ RANK_RTOL·λ₁ count
    as zero. Above DENSE_MAX_DIM λ₁ and the smallest eigenvalue come from Lanczos and the rank row is left out
    (it needs the whole spectrum).
    """
    check_model(model)
    theta = as_vector(theta, "theta", model.dim)
    name = model_name(model)
    if is_dense(model):
        eig = np.linalg.eigvalsh(model.hess(theta))
        lam1, lam_min = float(eig[-1]), float(eig[0])
    else:  # Lanczos on HVPs: the largest and the smallest algebraic eigenvalue; the rank is not computed
        eig = None
        lam1 = float(top_eigenpairs(model, theta, k=1, method="lanczos").values[0])
        # shifted by λ₁: ARPACK's tolerance is relative to the eigenvalue, and λ_min ≈ 0 sits in a kernel of
        # dimension ≈ dim Γ; the smallest eigenvalue of ∇²L + λ₁I to 1e-10 relative is λ_min ± 1e-10·λ₁
        op = LinearOperator((model.dim, model.dim), matvec=lambda v: model.hvp(theta, np.ravel(v)) + lam1 * np.ravel(v),
                            dtype=np.float64)
        try:  # capped; a miss is reported
            lam_min = float(eigsh(op, k=1, which="SA", tol=1e-10, maxiter=MIN_EIG_MAXITER,
                                  return_eigenvectors=False)[0]) - lam1
        except ArpackNoConvergence as exc:
            lam_min = float(np.min(exc.eigenvalues)) - lam1 if len(exc.eigenvalues) else float("nan")
    rows = []

    def row(ident, statement, err, scale, rtol, detail=""):
        scaled = scaled_error(err, scale, rtol)
        status = "pass" if scaled <= 1.0 else "fail"
        rows.append(IdentityResult(ident, name, statement, float(err), float(scale), rtol, scaled, status,
                                   [float(x) for x in theta], detail if status == "fail" else ""))

    row("minimizer-unit", "‖θ‖ = 1", abs(_norm(theta) - 1.0), 1.0, tol.IDENTITY_RTOL)
    row("minimizer-critical", "∇L(θ) = 0 (scale: λ₁‖θ‖)", _norm(model.grad(theta)), lam1 * _norm(theta),
        tol.CRITICAL_RTOL, f"‖∇L(θ)‖ = {_norm(model.grad(theta)):.3g}")
    row("minimizer-psd", "∇²L(θ) ⪰ 0 (scale: λ₁)", max(-lam_min, 0.0) + 0.0, lam1, tol.RANK_RTOL,
        f"smallest eigenvalue {lam_min:.3g}")
    gamma = getattr(model, "manifold_dim", None)
    if gamma is not None and eig is not None:
        rank = int(np.sum(np.abs(eig) > tol.RANK_RTOL * lam1))
        expected = model.dim - 1 - gamma
        unresolved = ""
        if 0 < expected <= len(eig) and rank < expected:
            mu = float(np.sort(np.abs(eig))[-expected])
            if mu > 1e3 * np.finfo(float).eps * model.dim * lam1:  # far above round-off: a real, tiny eigenvalue
                unresolved = (f"; the smallest normal eigenvalue {mu:.3g} = {mu / lam1:.2g}·λ₁ is not zero but below "
                              f"srflow's rank tolerance RANK_RTOL·λ₁ ({tol.RANK_RTOL:g}·λ₁): the model is more "
                              "ill-conditioned than srflow resolves Γ's tangent space for")
        row("minimizer-rank", f"rank ∇²L(θ) = D - 1 - dim Γ = {expected}", abs(rank - expected), 1.0, 0.5,
            f"rank {rank}, expected {expected} (dim Γ = {gamma}); eigenvalues {np.array2string(eig, precision=3)}"
            + unresolved)
    return rows
