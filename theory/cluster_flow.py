"""The sharpness-reduction flow through a cluster of top eigenvalues (docs/theory.md §4c), dense.

At θ ∈ Γ let the cluster be the top k eigenvalues of ∇²L(θ) (tied: within CLUSTER_RTOL·λ₁ of λ₁), with
orthonormal eigenvectors U = (u₁ … u_k), and g_ij = P_T ∇³L(θ)[u_i, u_j]/λ₁ ∈ T_θΓ. The oscillation of GD+WD at
EoS has a covariance Σ ⪰ 0 on span U; with P = Σ/tr Σ (P ⪰ 0, tr P = 1, in the basis U)

    dζ/ds = -¼ g*,   g* = Σ_ij P_ij g_ij,
    P = argmin { ½‖Σ_ij P_ij g_ij‖² : P ⪰ 0, tr P = 1 },

i.e. g* is the minimum-norm element of the Clarke subdifferential of log λ₁ on Γ, and the clock is unchanged:
2ηλ(t - t₀) = s + log(λ₁(ζ(0))/λ₁(ζ(s))) with G = ‖g*‖². For k = 1, g* = ∇_Γ log λ₁: the simple flow.

Numerically the selection minimizes ½‖g‖² - ⟨diag(β), P⟩ with β_i = RESTORE·log(λ_i/λ₁) ≤ 0 (in the eigenbasis):
loaded eigenvalues that drifted apart by round-off are pulled back to the tie at the rate RESTORE/4 per unit of s
(their log-split decays like e^{-RESTORE·s/4}); it changes g* by O(RESTORE·split) (≈ 1e-7 at a join).

Events (``cluster_flow``): a branch joins when λ_k - λ_{k+1} falls to JOIN_RTOL·λ₁, one leaves when λ₁ - λ_k
exceeds LEAVE_RTOL·λ₁ (it was not loaded, so it falls faster), and the flow halts where g* = 0 (0 in the
generalized gradient: a local minimum of the maximum). The integration restarts at each join/leave, so the
field is smooth on each segment; the samples at an event appear twice (left and right limits).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from .manifold import RANK_RTOL, AssumptionViolated, manifold_point, newton_polish, tangent_space

#: eigenvalues within CLUSTER_RTOL·λ₁ of λ₁ form the cluster at a start point
CLUSTER_RTOL = 1e-6
#: a branch joins the cluster when its gap to the cluster's lowest falls to JOIN_RTOL·λ₁
JOIN_RTOL = 1e-9
#: a branch leaves the cluster when λ₁ - λ_k exceeds LEAVE_RTOL·λ₁ (hysteresis against chattering)
LEAVE_RTOL = 1e-6
#: rate of the restoring term that keeps the loaded eigenvalues tied against round-off (per unit of s: /4)
RESTORE = 100.0
#: G below this (relative to the largest ‖g_ii‖²) counts as a halt: 0 is in the generalized gradient (after a
#: join the restoring term leaves G ≈ (RESTORE·JOIN_RTOL)² ≈ 1e-14 for s ≲ 4/RESTORE, then it decays)
HALT_RTOL = 1e-10
#: a near tie that is not a tie: a local minimum of the relative gap below the cluster under this (and above
#: 10·JOIN_RTOL) is reported in ``FlowResult.near_ties``
NEAR_TIE_RTOL = 1e-3
#: relative accuracy of the selection's optimality conditions (KKT) below which a warning is issued
KKT_RTOL = 1e-9
#: segments after which the integration gives up (events accumulating)
MAX_SEGMENTS = 200


@dataclass(frozen=True, eq=False)
class ClusterPoint:
    """The cluster at θ ∈ Γ: ``values`` (all eigenvalues of ∇²L(θ), descending), ``k`` (cluster size), ``U``
    (D, k) its eigenvectors, ``tangent`` basis of T_θΓ, ``P`` (k, k) the selected normalized covariance in the basis
    U, ``grad_log`` = g* (the minimum-norm element of the generalized gradient of log λ₁, ambient coordinates),
    ``kkt`` the relative residual of the selection's optimality conditions, ``branch_scale`` = max_i ‖g_ii‖²."""

    theta: np.ndarray
    values: np.ndarray
    k: int
    U: np.ndarray
    tangent: np.ndarray
    P: np.ndarray
    grad_log: np.ndarray
    kkt: float
    branch_scale: float = 1.0

    @property
    def lam1(self) -> float:
        return float(self.values[0])

    @property
    def G(self) -> float:
        """G = ‖g*‖²: d log λ₁/ds = -G/4 along the cluster flow."""
        return float(self.grad_log @ self.grad_log)

    @property
    def loaded(self) -> int:
        """Rank of P: how many directions of the cluster the oscillation loads."""
        w = np.linalg.eigvalsh(self.P)
        return int(np.sum(w > 1e-6))

    @property
    def edge_gap(self) -> float:
        """(λ_k - λ_{k+1})/λ₁: the relative gap below the cluster."""
        return float((self.values[self.k - 1] - self.values[self.k]) / self.values[0]) if len(self.values) > self.k \
            else float("inf")


def cluster_size(values: np.ndarray, rtol: float = CLUSTER_RTOL) -> int:
    """Number of eigenvalues (descending ``values``) within rtol·λ₁ of λ₁."""
    return int(np.sum(values[0] - values <= rtol * abs(values[0])))


def _simplex_qp(K: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """argmin ½pᵀKp - βᵀp over the simplex, exactly: the supports are enumerated (smallest first) and the one
    whose KKT system (K_SS p_S - ν1 = β_S, Σp = 1) gives p ≥ 0 and (Kp - β)_j ≥ ν off S with the least objective
    wins. K is positive semidefinite (a Gram matrix); a singular K_SS is solved by least squares."""
    k = len(beta)
    scale = max(float(np.max(np.abs(np.diag(K)))), float(np.max(np.abs(beta))), 1e-300)
    best, best_obj = None, np.inf
    for size in range(1, k + 1):
        for supp in itertools.combinations(range(k), size):
            s = list(supp)
            a = np.zeros((size + 1, size + 1))
            a[:size, :size] = K[np.ix_(s, s)]
            a[:size, size] = -1.0
            a[size, :size] = 1.0
            rhs = np.concatenate([beta[s], [1.0]])
            sol = np.linalg.lstsq(a, rhs, rcond=1e-13)[0]
            p = np.zeros(k)
            p[s] = sol[:size]
            if np.any(p < -1e-12) or abs(p.sum() - 1) > 1e-9:
                continue
            p = np.clip(p, 0.0, None)
            p /= p.sum()
            grad = K @ p - beta
            nu = float(p @ grad)
            if np.any(grad < nu - 1e-10 * scale):
                continue
            obj = 0.5 * p @ K @ p - beta @ p
            if obj < best_obj - 1e-15 * scale:
                best, best_obj = p, obj
        if best is not None and size >= 1:
            # a smaller support that is optimal is the answer (the objective is convex; ties keep the smaller)
            return best
    raise AssumptionViolated("selection of Σ: no support of the simplex QP satisfies its optimality conditions")


def _project_spectraplex(P: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(0.5 * (P + P.T))
    u = np.sort(w)[::-1]
    css = np.cumsum(u) - 1.0
    idx = np.arange(1, len(u) + 1)
    r = idx[u - css / idx > 0][-1]
    w = np.clip(w - css[r - 1] / r, 0.0, None)
    return (v * w) @ v.T


def _sdp(g: np.ndarray, beta: np.ndarray, iters: int = 3000) -> np.ndarray:
    """argmin ½‖Σ P_ij g_ij‖² - ⟨diag β, P⟩ over P ⪰ 0, tr P = 1: FISTA on the spectraplex, then the exact
    minimizer on the face {V Q Vᵀ} of the FISTA answer's range V (a linear solve), kept when it is feasible."""
    k, _, m = g.shape
    flat = g.reshape(k * k, m)
    lip = max(float(np.linalg.eigvalsh(flat @ flat.T)[-1]), 1e-300)
    B = np.diag(beta)

    def grad(P):
        gs = np.einsum("ij,ijm->m", P, g)
        return np.einsum("ijm,m->ij", g, gs) - B

    P = np.eye(k) / k
    Y, t = P.copy(), 1.0
    for _ in range(iters):
        Pn = _project_spectraplex(Y - grad(Y) / lip)
        tn = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        Y = Pn + ((t - 1) / tn) * (Pn - P)
        P, t = Pn, tn
    w, v = np.linalg.eigh(P)
    V = v[:, w > 1e-7 * w.max()]
    r = V.shape[1]
    # the face: Q symmetric r×r with tr Q = 1; unknowns vec(Q) (all r² entries, symmetric by construction below)
    h = np.einsum("ia,jb,ijm->abm", V, V, g).reshape(r * r, m)
    bb = (V.T @ B @ V).reshape(r * r)
    a = np.zeros((r * r + 1, r * r + 1))
    a[:r * r, :r * r] = h @ h.T
    a[:r * r, r * r] = -np.eye(r).reshape(r * r)
    a[r * r, :r * r] = np.eye(r).reshape(r * r)
    sol = np.linalg.lstsq(a, np.concatenate([bb, [1.0]]), rcond=1e-13)[0]
    Q = sol[:r * r].reshape(r, r)
    Q = 0.5 * (Q + Q.T)
    if np.linalg.eigvalsh(Q)[0] >= -1e-12:
        Pf = V @ Q @ V.T
        f = lambda X: 0.5 * np.sum(np.einsum("ij,ijm->m", X, g) ** 2) - np.sum(B * X)  # noqa: E731
        if f(Pf) <= f(P) + 1e-14 * max(abs(f(P)), 1e-300):
            return Pf
    return P


def select_covariance(g: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, float]:
    """P = argmin ½‖Σ_ij P_ij g_ij‖² - Σ_i β_i P_ii over {P ⪰ 0, tr P = 1} and the relative KKT residual.

    ``g`` (k, k, m): g_ij, symmetric in (i, j); ``beta`` (k,). When the k×k matrices (g_ij·e_r)_ij (one per tangent
    coordinate r) commute -- the cluster is a tie of simple branches, whose eigenvectors diagonalize them all --
    the problem is the QP over the simplex of the branch gradients in their common eigenbasis, solved exactly;
    otherwise (a cluster eigenspace that rotates) the SDP (``_sdp``).
    KKT: with S = (⟨g_ij, g*⟩)_ij - diag β and ν = ⟨S, P⟩, S - νI ⪰ 0 and (S - νI)P = 0."""
    k, _, m = g.shape
    if k == 1:
        return np.ones((1, 1)), 0.0
    scale = max(float(np.max(np.abs(g))), 1e-300)
    # a common eigenbasis: eigenvectors of a fixed generic combination of the coordinate matrices
    coeffs = np.cos(1.0 + 2.3 * np.arange(m)) + 1.5
    W = np.linalg.eigh(np.einsum("ijm,m->ij", g, coeffs) + np.diag(beta) * 1e-3)[1]
    gw = np.einsum("ia,jb,ijm->abm", W, W, g)
    off = gw.copy()
    off[np.arange(k), np.arange(k)] = 0.0
    if np.max(np.abs(off)) <= 1e-10 * scale:
        d = gw[np.arange(k), np.arange(k)]  # (k, m)
        bw = np.einsum("ia,i,ia->a", W, beta, W)
        p = _simplex_qp(d @ d.T, bw)
        P = (W * p) @ W.T
    else:
        P = _sdp(g, beta)
    gs = np.einsum("ij,ijm->m", P, g)
    S = np.einsum("ijm,m->ij", g, gs) - np.diag(beta)
    nu = float(np.sum(S * P))
    s2 = max(scale**2, 1e-300)
    kkt = max(max(0.0, nu - float(np.linalg.eigvalsh(S)[0])), float(np.linalg.norm((S - nu * np.eye(k)) @ P))) / s2
    return P, kkt


def cluster_point(model, theta, k: int | None = None, rank_rtol: float = RANK_RTOL,
                  restore: float = RESTORE) -> ClusterPoint:
    """The cluster at θ ∈ Γ (dense): its size k (default: eigenvalues within CLUSTER_RTOL·λ₁ of λ₁), eigenvectors,
    g_ij = P_T∇³L[u_i, u_j]/λ₁, the selected P (``select_covariance`` with β_i = restore·log(λ_i/λ₁)) and
    g* = Σ P_ij g_ij, the minimum-norm element of the generalized gradient of log λ₁ on Γ."""
    vals, vecs = np.linalg.eigh(model.hess(theta))
    vals, vecs = vals[::-1], vecs[:, ::-1]
    k = cluster_size(vals) if k is None else int(k)
    if not 1 <= k < model.dim:
        raise ValueError(f"k: expected 1 <= k < D = {model.dim}, got {k}")
    basis = tangent_space(model, theta, rank_rtol)
    U = vecs[:, :k]
    g = np.zeros((k, k, basis.shape[1]))
    for i in range(k):
        for j in range(i, k):
            g[i, j] = g[j, i] = basis.T @ model.third(theta, U[:, i], U[:, j]) / vals[0]
    beta = restore * np.log(np.clip(vals[:k] / vals[0], 1e-300, None))
    P, kkt = select_covariance(g, beta)
    grad_log = basis @ np.einsum("ij,ijm->m", P, g)
    scale = float(max(np.sum(g[i, i] ** 2) for i in range(k)))
    return ClusterPoint(np.asarray(theta), vals, k, U, basis, P, grad_log, kkt, scale)


class PiecewiseSolution:
    """Dense output of a flow integrated in segments: ``(s0, s1, OdeSolution)`` each; called at s, the segment
    that contains it (the later one at a boundary)."""

    def __init__(self, pieces):
        self.pieces = list(pieces)

    def __call__(self, s):
        for s0, s1, sol in reversed(self.pieces):
            if s >= s0 - 1e-15:
                return sol(min(max(s, s0), s1))
        s0, s1, sol = self.pieces[0]
        return sol(s0)


def _eigenvalues(model, x) -> np.ndarray:
    return np.linalg.eigvalsh(model.hess(newton_polish(model, x, iters=1)))[::-1]


def _join_event(model, x0: np.ndarray, k: int):
    """The signed gap between the cluster (k) and the branches below it, minus JOIN_RTOL·λ₁, for ``solve_ivp``.

    Sorted eigenvalues only touch at a crossing (λ_k - λ_{k+1} = |difference of the branches|, no sign change for
    the solver to find), so the cluster is followed by continuity of its eigenspace: among the top eigenvectors
    (the top k + 1 and those tied with the (k+1)-th within CLUSTER_RTOL) the k with the largest overlap with the
    previous call's cluster, and the gap is the cluster's lowest eigenvalue minus the highest of the others --
    negative once a branch has crossed into the cluster. At an avoided crossing the eigenvectors turn continuously
    and the gap stays positive (no join). Branches below the cluster may cross one another (e.g. a simple λ₂ meeting
    a double λ₃ = λ₄ of a symmetric model): the highest of them is the gap's other end whichever it is, so such a
    crossing changes nothing (following the branch just below instead lost it there: the event function jumped and
    the flow stopped with "an event fires where the segment starts"). A multiple eigenvalue below the cluster is
    no problem either: only its value enters."""
    vals, vecs = np.linalg.eigh(model.hess(newton_polish(model, x0, iters=1)))
    state = {"cluster": vecs[:, -k:]}

    def join(s, x):
        v, u = np.linalg.eigh(model.hess(newton_polish(model, x, iters=1)))
        v, u = v[::-1], u[:, ::-1]
        m = k + 1  # the top k + 1, and the eigenvalues tied with the (k+1)-th
        while m < len(v) and v[k] - v[m] <= CLUSTER_RTOL * v[0]:
            m += 1
        v, u = v[:m], u[:, :m]
        overlap = np.sum((state["cluster"].T @ u) ** 2, axis=0)  # each eigenvector's weight in the followed cluster
        members = np.sort(np.argsort(overlap, kind="stable")[-k:])
        state["cluster"] = u[:, members]
        others = np.delete(np.arange(m), members)
        return float(np.min(v[members]) - np.max(v[others]) - JOIN_RTOL * v[0])

    join.terminal, join.direction = True, -1
    return join


#: Newton iterations of the retraction when one leaves the rank condition failing (``_field``)
POLISH_ITERS = 8


def _field(model, s, x, coef, k):
    """coef·g* at the Newton retraction of x onto Γ: one Newton step (the simple flow's field, theory.flows), and
    POLISH_ITERS where the rank condition fails after one. An RK stage of a long trial step can land off Γ
    (zoo model wn-jax-min-c0.72-l2-n5-w2-s936610763 at s = 0.3936: a stage 0.055 from the last accepted point, loss
    6.7e-8, ‖∇L‖ = 5.6e-4·λ₁; after one step 1.5e-5·λ₁ and a tangent eigenvalue at 2e-6·λ₁ > RANK_RTOL·λ₁, so the
    kernel looked 0-dimensional; after the full retraction 6.6e-8·λ₁ and the kernel has dim Γ = 3): the rank
    condition at the retracted point is the theory's, a one-step retraction's residual is not."""
    def at(th):
        if k == 1:  # the simple flow's own field (theory.flows): the same numbers when λ₁ stays simple
            return coef * manifold_point(model, th, on_gap="ignore").grad_log
        return coef * cluster_point(model, th, k).grad_log

    try:
        try:
            return at(newton_polish(model, x, iters=1))
        except AssumptionViolated as exc:
            if exc.kind == "gap":
                raise
            return at(newton_polish(model, x, iters=POLISH_ITERS))
    except AssumptionViolated as exc:
        raise AssumptionViolated(f"{exc} (flow time s = {s:.4g})", kind=exc.kind, s=s) from None


def integrate_segment(fun, s_cur: float, s_end: float, x_cur: np.ndarray, grid: np.ndarray, rtol: float,
                      atol: float, events):
    """``solve_ivp`` (DOP853, dense output, terminal ``events``) of dx/ds = fun(s, x) from (s_cur, x_cur) towards
    s_end; ``t``/``y`` are the points of ``grid`` in [s_cur, s_stop] (s_cur first), read from the dense output, and
    ``sol.ts[-1]`` is s_stop (the terminal event's root, or s_end).

    Not solve_ivp's t_eval: with t_eval and dense output, a terminal event whose root brentq locates on the previous
    step's end (to 4 ulp) repeats that time among the dense output's breakpoints and scipy raises "`ts` must be
    strictly increasing or decreasing" (zoo model bnc-np-nomin-n6-obs0.71-r3-t2-s579362555: a join at s = 1.4154, the
    flow reported assumption-violated); without t_eval it drops the repeated step. The grid is read from the same
    interpolant of the same step that t_eval would use (to the last digit: tests/test_cluster_flow.py). An event
    at s_cur leaves a piece of zero length (breakpoints s_cur, s_cur) whose one sample is the start."""
    sol = solve_ivp(fun, (s_cur, s_end), x_cur, dense_output=True, rtol=rtol, atol=atol, method="DOP853",
                    events=events or None)
    if sol.status == -1:
        return sol
    s_stop = float(sol.sol.ts[-1]) if sol.status == 1 else s_end
    t_eval = grid[(grid >= s_cur) & (grid <= s_stop)]
    if not len(t_eval) or t_eval[0] > s_cur:
        t_eval = np.concatenate([[s_cur], t_eval])
    sol.t, sol.y = t_eval, sol.sol(t_eval)
    return sol


def cluster_flow(model, theta0: np.ndarray, s_end: float, n_out: int, rtol: float, atol: float, coef: float,
                 stop_at_join: bool = False, max_evals: int | None = None):
    """dζ/ds = coef·g*(ζ) from θ₀ (on Γ, polished) to ``s_end``, in segments of constant cluster size between
    join/leave events. Returns (s, x, k, events, pieces): the samples (the ``n_out`` grid points plus both
    limits at each event), the cluster size at each sample, the events [{"s", "kind", "k", "values", "G"}] and
    the dense pieces. With ``max_evals`` the integration ends, as at an event of kind "budget" (with "evals"), at the
    flow time its field has been evaluated that many times: a cost bound for callers that can judge a shorter flow
    (on zoo model bnc-np-nomin-n6-obs0.81-r2-t1-s1597298480 the smallest normal eigenvalue halves every ≈ 0.32 of s
    and the steps shrink with it: 12,000 evaluations reached s = 1.31 of 12.85)."""
    vals = np.linalg.eigvalsh(model.hess(theta0))[::-1]
    k = cluster_size(vals)
    grid = np.linspace(0.0, s_end, n_out)
    s_cur, x_cur = 0.0, theta0
    out_s, out_x, out_k, events, pieces = [], [], [], [], []
    n_normal = int(np.sum(vals > RANK_RTOL * vals[0]))
    spent = {"evals": 0, "stop": np.inf}  # field evaluations so far, and the flow time where the budget ran out

    def counted(s, x, kk):
        spent["evals"] += 1
        if max_evals is not None and spent["evals"] >= max_evals and not np.isfinite(spent["stop"]):
            spent["stop"] = float(s)
        return _field(model, s, x, coef, kk)

    def budget(s, x):  # crosses 0 at the flow time where the budget ran out (+inf before: no root)
        return s - spent["stop"] if np.isfinite(spent["stop"]) else -1.0
    budget.terminal, budget.direction = True, 1

    for _ in range(MAX_SEGMENTS):
        evs = [budget] if max_evals is not None else []
        kk = k

        if kk < n_normal:
            join = _join_event(model, x_cur, kk)
            evs.append(join)
        if kk > 1:
            def leave(s, x):
                v = _eigenvalues(model, x)
                return (v[0] - v[kk - 1]) - LEAVE_RTOL * v[0]
            leave.terminal, leave.direction = True, 1
            evs.append(leave)
        try:
            sol = integrate_segment(lambda s, x: counted(s, x, kk), s_cur, s_end, x_cur, grid, rtol, atol, evs)
        except AssumptionViolated:
            raise
        except ValueError as exc:  # scipy's own errors, with where the flow stood
            raise AssumptionViolated(f"the cluster flow cannot continue from s = {s_cur:.4g} with {kk} tied "
                                     f"eigenvalue(s): {exc}") from None
        if sol.status == -1:
            raise AssumptionViolated(f"flow stopped at s = {sol.t[-1] if len(sol.t) else s_cur:.4g}: {sol.message}")
        s_stop = float(sol.sol.ts[-1]) if sol.status == 1 else s_end
        out_s.extend(sol.t)  # a segment's first sample is the right limit at its event
        out_x.extend(sol.y.T)
        out_k.extend([kk] * len(sol.t))
        pieces.append((s_cur, s_stop, sol.sol))
        if sol.status != 1:
            break
        # a terminal event: which one, and the left limit there
        fired = [i for i, te in enumerate(sol.t_events) if len(te)]
        i = fired[0]
        s_e, x_e = float(sol.t_events[i][0]), sol.y_events[i][0]
        out_s.append(s_e)
        out_x.append(x_e)
        out_k.append(kk)
        kind = evs[i].__name__
        if kind == "budget":
            events.append({"s": s_e, "kind": "budget", "k": kk, "evals": spent["evals"], "G": float("nan")})
            break
        v = _eigenvalues(model, x_e)
        k = kk + 1 if kind == "join" else kk - 1
        events.append({"s": s_e, "kind": kind, "k": k, "values": v[:max(k, kk) + 1], "G": float("nan")})
        if stop_at_join and kind == "join":  # the caller needs the flow only while λ₁ is simple
            break
        s_cur, x_cur = s_e, x_e
        if s_cur >= s_end:
            break
    else:
        raise AssumptionViolated(f"cluster flow: more than {MAX_SEGMENTS} join/leave events before s = {s_end:g} "
                                 f"(events accumulate at s ≈ {s_cur:.6g}): the cluster does not settle")
    return np.array(out_s), np.array(out_x), np.array(out_k), events, pieces


def near_ties(s: np.ndarray, edge_gap: np.ndarray, events) -> list[tuple[float, float]]:
    """Local minima of the relative gap below the cluster, (λ_k - λ_{k+1})/λ₁, between 10·JOIN_RTOL and
    NEAR_TIE_RTOL, away from the samples next to an event: near ties that are not ties (avoided crossings), as
    (s, relative gap), one per stretch of samples below NEAR_TIE_RTOL (its smallest). The cluster flow treats them as
    separate branches; GD+WD does only when ηλ ≪ the gap."""
    ev_s = np.array([e["s"] for e in events]) if events else np.array([])
    out: list[tuple[float, float]] = []
    below = (edge_gap < NEAR_TIE_RTOL) & (edge_gap > 10 * JOIN_RTOL)
    i = 0
    while i < len(s):
        if not below[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(s) and below[j + 1]:
            j += 1
        k = i + int(np.argmin(edge_gap[i:j + 1]))
        # a join (or a leave) closes (opens) the gap within the stretch: a tie, not a near tie
        lo, hi = s[max(i - 1, 0)], s[min(j + 1, len(s) - 1)]
        if not (len(ev_s) and np.any((ev_s >= lo - 1e-12) & (ev_s <= hi + 1e-12))):
            out.append((float(s[k]), float(edge_gap[k])))
        i = j + 1
    return out


@dataclass(frozen=True, eq=False)
class ClusterAudit:
    """The cluster theory's assumptions at θ ∈ Γ, to first order along the flow (``cluster_audit``):

    * ``values``: the top k eigenvalues; ``G_simple`` = ‖g₁₁‖² (the simple flow), ``G_cluster`` = ‖g*‖² when the
      top ``k_tied`` (within ``tie_rtol``·λ₁) are treated as tied, with ``weights`` the selected P's eigenvalues;
    * for each j: ``gap`` (λ₁ - λ_j)/λ₁, ``closing`` = ¼(‖g₁₁‖² - ⟨g_jj, g₁₁⟩) = -d gap/ds along the simple flow
      (> 0: the gap closes), ``crossing_s`` = gap/closing (inf when it opens), ``coupling`` = ¼⟨g_1j, g₁₁⟩, the rate at
      which the off-diagonal entry (1, j) of the cluster block (over λ₁) grows along the flow, and ``min_gap`` ≈
      2·|coupling|·crossing_s·e^{G·crossing_s/4}, the gap of the avoided crossing that first order predicts relative
      to λ₁ there (0 for a true crossing: uncoupled branches)."""

    values: np.ndarray
    G_simple: float
    G_cluster: float
    k_tied: int
    weights: np.ndarray
    gap: np.ndarray
    closing: np.ndarray
    crossing_s: np.ndarray
    coupling: np.ndarray
    min_gap: np.ndarray
    seconds: float


def cluster_audit(model, theta, k: int = 4, tie_rtol: float = 0.02) -> ClusterAudit:
    """First-order audit of the top-k eigenvalues at θ ∈ Γ (dense or matrix-free: Lanczos for the eigenpairs,
    ``theory.matrix_free.tangent_project`` for g_ij = P_T∇³L[u_i, u_j]/λ₁). Along the simple flow dζ/ds = -¼g₁₁,
    λ_j/λ₁ changes at rate -¼⟨g_jj - g₁₁, g₁₁⟩ and the cluster block's entry (1, j)/λ₁ at rate -¼⟨g_1j, g₁₁⟩;
    two branches cross where the first closes their gap, and they avoid each other by twice the second's
    accumulation there (``ClusterAudit``). ``tie_rtol``: the relative spread treated as a tie for ``G_cluster``."""
    import time

    from .sharpness import is_dense, top_eigenpairs

    t0 = time.perf_counter()
    theta = np.asarray(theta, dtype=np.float64)
    eig = top_eigenpairs(model, theta, k=k)
    vals, U = eig.values, eig.vectors
    lam1 = float(vals[0])
    if is_dense(model):
        basis = tangent_space(model, theta)

        def proj(v):
            return basis @ (basis.T @ v)
    else:
        from .matrix_free import tangent_project

        def proj(v):
            return tangent_project(model, theta, v, lam1)
    g = np.zeros((k, k, model.dim))
    for i in range(k):
        for j in range(i, k):
            if i == 0 or i == j or vals[0] - vals[j] <= tie_rtol * lam1:
                g[i, j] = g[j, i] = proj(model.third(theta, U[:, i], U[:, j])) / lam1
    g1 = g[0, 0]
    closing = np.array([0.25 * (g1 @ g1 - g[j, j] @ g1) for j in range(k)])   # d(gap_j)/ds along the simple flow
    gap = (lam1 - vals) / lam1
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(closing > 0, gap / closing, np.inf)
    coupling = np.array([0.25 * (g[0, j] @ g1) for j in range(k)])
    # relative to λ₁ at the crossing, λ₁(θ)·e^{-G s/4} to first order
    min_gap = np.where(np.isfinite(cross), 2 * np.abs(coupling) * cross * np.exp(0.25 * (g1 @ g1) * cross), np.nan)
    kt = cluster_size(vals, tie_rtol)
    P, _ = select_covariance(g[:kt, :kt], np.zeros(kt))
    gstar = np.einsum("ij,ijm->m", P, g[:kt, :kt])
    return ClusterAudit(vals, float(g1 @ g1), float(gstar @ gstar), kt, np.linalg.eigvalsh(P)[::-1], gap, closing,
                        cross, coupling, min_gap, time.perf_counter() - t0)
