"""A zoo of random scale-invariant models: every draw depends only on (seed, model spec).

``zoo_model(spec)`` builds one model from a ``ZooSpec``, from its name (a string that encodes the whole spec,
e.g. ``"rq_sum-np-min-D7-k2-lc2.5-la1-s8817"``), or from an integer seed (``draw_spec(seed)``: the family, the
backend, whether it has a ``minimizer`` and every size and conditioning knob are drawn from the seed).
``zoo_specs(n, seed)`` gives the n specs of ``srflow zoo --n N --seed S``: model i is ``draw_spec((S, i), family=...)``
with the families taken in turn (every family appears once N ≥ 9).
The model's ``name`` is its spec, so a printed name rebuilds it: ``zoo_model(model.name)``.

Families (``FAMILIES``; knobs and ranges in ``draw_spec``):

* ``rq_sum``: f(x) = ½ Σ_j a_j (xᵀA_j x - μ_j)², L(w) = f(w/‖w‖) -- a sum of k Rayleigh-quotient losses; A_j
  random symmetric with eigenvalues spread over ``la`` decades, weights a_j spread over ``lc`` decades,
  μ_j = x*ᵀA_j x* at a random unit x* (so Γ ∋ x* is not empty); Γ = {x on the sphere : xᵀA_j x = μ_j ∀j},
  a curved manifold of dim D - 1 - k; ∇²L(θ) = Σ_j a_j ∇R_j ∇R_jᵀ on Γ (rank k).
* ``curved``: f(x) = ½ q(x) Σ_j κ_j (b_jᵀx - c_j)², q(x) = 1 + ρ(pᵀx)², b_j orthonormal, |c| = ``h`` < 1:
  Γ = {x on the sphere : Bx = c} is a round sphere S^m of radius √(1 - h²) (m = ``m``, e.g. S⁴), curved in
  the unit sphere; λ₁ varies along Γ through q (G grows with ρ = 10^``lr``); κ spread over ``lc`` decades, its
  two largest 10^-``lg`` apart (the spectral gap).
* ``mf`` / ``mfc``: ``toy_models.families.matrix_factorization`` of random size m×n, rank r, scale c, fully
  observed (``mf``) or a random fraction ``obs`` of the entries (``mfc``, completion).
* ``bnc``: ``toy_models.completion.bn_completion`` (BN on the output of a matrix-completion net) of random size;
  Γ is reached by training (no ``minimizer``).
* ``bn``: ``toy_models.families.batchnorm_linear`` (2-layer linear net with batch norm) of random size.
* ``wn``: ``toy_models.families.deep_linear`` (deep linear net with per-layer weight norm) of random size.
* ``bnnet`` / ``lnnet`` (JAX only): ŷ_i = aᵀ tanh(N(W x_i)) on random Gaussian data x_i ∈ R^d, with N batch
  norm over the samples (per hidden unit) or layer norm over the units (per sample), no affine, fixed readout a,
  labels from a random teacher W* of the same architecture, L = ½ mean_i (ŷ_i - y_i)². Γ ∋ W* (zero loss), dim
  D - 1 - n for n samples (n below the number of directions the normalization leaves free).

Backends: ``np`` (closed forms: exact ``hess`` and ``third`` by the chain rule of ``toy_models.normalized``) or
``jax`` (the loss in ``jax.numpy``, every derivative by autodiff through ``toy_models.from_jax``; for mf/bn/wn
the JAX losses of ``toy_models.jax_losses``). ``min``: the model has ``minimizer(rng)`` (a construction, or a
Gauss-Newton projection onto Γ from a perturbed known point); ``nomin``: it has none, and srflow finds θ₀ on Γ by
gradient flow (``theory.project_to_manifold``).

``conditioning(model, theta)`` measures λ₁/μ (μ the smallest nonzero eigenvalue of ∇²L(θ)), G = ‖∇_Γ log λ₁‖²
and the relative spectral gap (λ₁ - λ₂)/λ₁ at a point of Γ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

import numpy as np

from .validate import as_rng
from .completion import BatchNormCompletion
from .families import ManifoldModel, batchnorm_linear, deep_linear, matrix_factorization
from .generic import SmoothFunction
from .normalized import NormalizedModel

#: family -> backends it is built with
FAMILIES = {
    "rq_sum": ("np", "jax"),
    "curved": ("np", "jax"),
    "mf": ("np", "jax"),
    "mfc": ("np", "jax"),
    "bnc": ("np",),
    "bn": ("np", "jax"),
    "wn": ("np", "jax"),
    "bnnet": ("jax",),
    "lnnet": ("jax",),
}
#: families that can only be built without a ``minimizer``
NO_MINIMIZER = ("bnc",)


# -- the spec and its name ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZooSpec:
    """One zoo model: family, backend ("np" | "jax"), whether it has ``minimizer``, its knobs (sorted (key,
    value) pairs, ints or floats with ≤ 3 decimals) and the seed of its random data."""

    family: str
    backend: str
    minimizer: bool
    params: tuple
    seed: int

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family: unknown zoo family {self.family!r}; valid: {', '.join(FAMILIES)}")
        if self.backend not in FAMILIES[self.family]:
            raise ValueError(f"backend: family {self.family!r} is built with {', '.join(FAMILIES[self.family])}, "
                             f"got {self.backend!r}")
        if self.minimizer and self.family in NO_MINIMIZER:
            raise ValueError(f"minimizer: family {self.family!r} has no construction of a minimizer")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "params", tuple(sorted((str(k), _knob(k, v)) for k, v in dict(self.params).items())))

    @property
    def p(self) -> dict:
        return dict(self.params)

    @property
    def name(self) -> str:
        """``family-backend-min|nomin-<key><value>...-s<seed>``: parsed back by ``parse_spec``."""
        knobs = "".join(f"-{k}{_fmt(v)}" for k, v in self.params)
        return f"{self.family}-{self.backend}-{'min' if self.minimizer else 'nomin'}{knobs}-s{self.seed}"


def _knob(key, value):
    if not re.fullmatch(r"[A-Za-z]+", str(key)) or key == "s":
        raise ValueError(f"params: knob names are letters other than 's' (the seed), got {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise ValueError(f"params: knob {key!r} must be a finite number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = round(float(value), 3)
    return int(value) if value == int(value) and abs(value) < 1e15 else value


def _fmt(v) -> str:
    return str(v) if isinstance(v, int) else f"{v:.3f}".rstrip("0").rstrip(".")


_NAME = re.compile(r"(?P<family>[a-z_]+)-(?P<backend>np|jax)-(?P<min>min|nomin)(?P<knobs>(?:-[A-Za-z]+-?[0-9.]+)*)"
                   r"-s(?P<seed>[0-9]+)")


def parse_spec(name: str) -> ZooSpec:
    """The ``ZooSpec`` whose ``name`` is ``name`` (ValueError naming the part that does not parse)."""
    m = _NAME.fullmatch(str(name).strip())
    if m is None:
        raise ValueError(f"spec: expected a zoo model name 'family-np|jax-min|nomin-<knobs>-s<seed>' (e.g. "
                         f"'rq_sum-np-min-D7-k2-la1-lc2.5-s17'), got {name!r}")
    knobs = {}
    for key, value in re.findall(r"-([A-Za-z]+)(-?[0-9.]+)", m["knobs"]):
        knobs[key] = float(value) if "." in value else int(value)
    return ZooSpec(m["family"], m["backend"], m["min"] == "min", tuple(knobs.items()), int(m["seed"]))


# -- drawing specs ------------------------------------------------------------------------------------------
def _u(rng, lo, hi, digits=2) -> float:
    return round(float(rng.uniform(lo, hi)), digits)


def draw_spec(seed, family: str | None = None, backend: str | None = None, minimizer: bool | None = None,
              families=None, backends=None) -> ZooSpec:
    """A random spec from ``np.random.default_rng(seed)`` (``seed`` an int or a tuple of ints); ``family``,
    ``backend``, ``minimizer`` fix those choices; ``families`` restricts the family drawn (default: all of
    ``FAMILIES``, in their order), ``backends`` the backend ("np", "jax"; families built with none of them are
    not drawn). The knobs and their ranges:

    rq_sum: D ∈ [4, 9], k ∈ [1, min(3, D - 2)] quadrics, la ∈ [0, 2] decades of each A_j's spectrum,
            lc ∈ [0, 3] decades of the weights a_j;
    curved: m ∈ [1, 4] (Γ = S^m), k ∈ [1, 3] constraints (D = m + k + 1), h ∈ [0.1, 0.9] (|c|),
            lr ∈ [-1, 1.5] (ρ = 10^lr), lc ∈ [0, 3] decades of κ, lg ∈ [0.3, 2.5]: κ₂ = κ₁(1 - 10^-lg) (k ≥ 2;
            the relative gap of ∇²L on Γ is of that order);
    mf, mfc: m, n ∈ [2, 5], r ∈ [2, min(m, n, 3)] (mfc: [2, 2]), c ∈ [1.2, 3] (scale), mfc: obs ∈ [0.75, 0.95];
    bnc: n ∈ [r + 2, 6] (n×n target), r ∈ [2, 3] factor rank, t ∈ [1, r - 1] target rank (over-parameterized),
         obs ∈ [0.7, 0.9] (the mask is redrawn, or filled, until each row and column has > r observed);
    bn: d ∈ [2, 4] inputs, h ∈ [2, 4] hidden, n ∈ [d + 1, 12] samples;
    wn: w ∈ [2, 3] width, l ∈ [2, 3] depth, n ∈ [w, 6] samples (with n < w the product is constrained only on
        an n-dimensional input space and dim Γ exceeds deep_linear's (K - 1)w² - 1), c ∈ [0.5, 2] (scale);
    bnnet, lnnet: d ∈ [3, 4] (bn) or [2, 4] (ln) inputs, h ∈ [3, 5] hidden, n ∈ [3 (bn) or 2 (ln),
            (bn: h(d-1) - 2; ln: hd - d - 2)] samples (capped at 12).
    The data seed is drawn last, so the same (family, knobs) with another seed is another member.
    """
    rng = np.random.default_rng(seed)
    pool = _family_pool(families, backends)
    fam = family if family is not None else str(rng.choice(pool))
    if fam not in FAMILIES:
        raise ValueError(f"family: unknown zoo family {fam!r}; valid: {', '.join(FAMILIES)}")
    allowed = [b for b in FAMILIES[fam] if backends is None or b in backends]
    back = backend if backend is not None else str(rng.choice(allowed or FAMILIES[fam]))
    has_min = minimizer if minimizer is not None else (fam not in NO_MINIMIZER and bool(rng.random() < 0.6))
    i = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    if fam == "rq_sum":
        d = i(4, 9)
        p = {"D": d, "k": i(1, min(3, d - 2)), "la": _u(rng, 0, 2), "lc": _u(rng, 0, 3)}
    elif fam == "curved":
        p = {"m": i(1, 4), "k": i(1, 3), "h": _u(rng, 0.1, 0.9), "lr": _u(rng, -1, 1.5), "lc": _u(rng, 0, 3),
             "lg": _u(rng, 0.3, 2.5)}
    elif fam in ("mf", "mfc"):
        m, n = i(2, 5), i(2, 5)
        p = {"m": m, "n": n, "r": i(2, min(m, n, 3)) if fam == "mf" else 2, "c": _u(rng, 1.2, 3.0)}
        if fam == "mfc":
            p.update(m=max(m, 3), n=max(n, 3), obs=_u(rng, 0.75, 0.95))
    elif fam == "bnc":
        r = i(2, 3)
        p = {"n": i(r + 2, 6), "r": r, "t": i(1, r - 1), "obs": _u(rng, 0.7, 0.9)}
    elif fam == "bn":
        d = i(2, 4)
        p = {"d": d, "h": i(2, 4), "n": i(d + 1, 12)}
    elif fam == "wn":
        w = i(2, 3)
        p = {"w": w, "l": i(2, 3), "n": i(w, 6), "c": _u(rng, 0.5, 2.0)}
    else:  # bnnet, lnnet
        d, h = i(3, 4) if fam == "bnnet" else i(2, 4), i(3, 5)
        top = h * (d - 1) - 2 if fam == "bnnet" else h * d - d - 2
        low = 3 if fam == "bnnet" else 2  # BN over 2 samples maps every unit to ±1
        p = {"d": d, "h": h, "n": i(low, max(low, min(12, top)))}
    return ZooSpec(fam, back, has_min, tuple(p.items()), int(rng.integers(0, 2**31 - 1)))


def _family_pool(families, backends) -> list[str]:
    """The families to draw from: ``families`` (default all) built with one of ``backends`` (default any)."""
    pool = list(FAMILIES) if families is None else list(families)
    unknown = [f for f in pool if f not in FAMILIES]
    if unknown or not pool:
        raise ValueError(f"families: unknown zoo family {', '.join(unknown) or '(none given)'}; valid: "
                         f"{', '.join(FAMILIES)}")
    bad = [b for b in (backends or ()) if b not in ("np", "jax")]
    if bad:
        raise ValueError(f"backends: unknown backend {', '.join(bad)}; valid: np, jax")
    pool = [f for f in pool if backends is None or set(FAMILIES[f]) & set(backends)]
    if not pool:
        raise ValueError(f"families: none of {', '.join(families or FAMILIES)} is built with {', '.join(backends)}")
    return pool


def zoo_specs(n: int, seed: int = 0, families=None, backends=None) -> list[ZooSpec]:
    """The ``n`` specs of ``srflow zoo --n n --seed seed [--families ...] [--backends ...]``: the families (those
    built with one of ``backends``) taken in turn from a
    start drawn from ``seed`` (so that every family is drawn once ``n`` ≥ their number), spec i =
    ``draw_spec((seed, i), family=pool[(start + i) % len(pool)])``; spec i does not depend on ``n``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive number of models, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    pool = _family_pool(families, backends)
    start = int(np.random.default_rng([int(seed), 2**31]).integers(len(pool)))
    return [draw_spec((int(seed), i), family=pool[(start + i) % len(pool)], backends=backends) for i in range(int(n))]


# -- the model classes (numpy): named by their spec, pickled by rebuilding from it ----------------------------
@dataclass(frozen=True, eq=False)
class ZooModel(NormalizedModel):
    """A numpy zoo model without ``minimizer`` (θ₀ is found by gradient flow)."""

    manifold_dim: int | None = None
    description: str = ""

    def __reduce__(self):
        return (zoo_model, (self.name,))


@dataclass(frozen=True, eq=False)
class ZooManifoldModel(ManifoldModel):
    """A numpy zoo model with ``minimizer(rng)``."""

    def __reduce__(self):
        return (zoo_model, (self.name,))


class ZooCompletion(BatchNormCompletion):
    """``BatchNormCompletion`` named by its zoo spec."""

    def __reduce__(self):
        return (zoo_model, (self.name,))


def _numpy_model(base, spec: ZooSpec, minimizer_fn, manifold_dim, description):
    """``base`` (a NormalizedModel: inner, blocks, linear) as a zoo model named by ``spec``."""
    common = dict(inner=base.inner, block_sizes=base.block_sizes, linear=base.linear, block_names=base.block_names,
                  name=spec.name, manifold_dim=manifold_dim, description=description)
    if spec.minimizer:
        return ZooManifoldModel(minimizer_fn=minimizer_fn, **common)
    return ZooModel(**common)


def _jax_model(loss, dim: int, spec: ZooSpec, minimizer_fn, manifold_dim, description):
    from .jax_models import JaxModel
    return JaxModel(loss, np.zeros(dim), name=spec.name, manifold_dim=manifold_dim,
                    minimizer_fn=minimizer_fn if spec.minimizer else None,
                    description=f"{description} (JAX autodiff)", _spec=(zoo_model, (spec.name,)))


# -- Gauss-Newton onto {r = 0} on the unit sphere -------------------------------------------------------------
def newton_on_sphere(residual, jacobian, x0: np.ndarray, iters: int = 60, rtol: float = 1e-12) -> np.ndarray | None:
    """Gauss-Newton x ← (x - J_T⁺ r(x))/‖·‖ with J_T = J(x)(I - xxᵀ) (minimum-norm step in the sphere's tangent
    space), from x0/‖x0‖, until the step is below 1e-15; the unit point if then ‖r‖ ≤ rtol·(1 + ‖J_T‖), else None."""
    x = np.asarray(x0, dtype=np.float64) / np.linalg.norm(x0)
    for _ in range(iters):
        r, jac = np.asarray(residual(x)), np.asarray(jacobian(x))
        jt = jac - np.outer(jac @ x, x)
        step = np.linalg.lstsq(jt, r, rcond=None)[0]
        x = x - step
        x /= np.linalg.norm(x)
        if np.linalg.norm(step) < 1e-15:
            break
    jac = np.asarray(jacobian(x))
    jt = jac - np.outer(jac @ x, x)
    return x if np.linalg.norm(residual(x)) <= rtol * (1 + np.linalg.norm(jt, 2)) else None


def _projected_minimizer(residual, jacobian, anchor: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """A random point of Γ = {r = 0} near ``anchor`` ∈ Γ: anchor + a random perturbation of size 0.3 (halved on
    a miss, up to 6 times), Newton onto Γ; ``anchor`` itself if every attempt misses."""
    size = 0.3
    for _ in range(6):
        z = g.standard_normal(len(anchor))
        x = newton_on_sphere(residual, jacobian, anchor + size * z / np.linalg.norm(z))
        if x is not None:
            return x
        size /= 2
    return anchor / np.linalg.norm(anchor)


# -- rq_sum -------------------------------------------------------------------------------------------------
def _spread(rng, k: int, decades: float) -> np.ndarray:
    """k values from 1 down to 10^-decades, log-spaced, in random order."""
    return rng.permutation(np.logspace(0.0, -decades, k)) if k > 1 else np.ones(1)


def _gapped(rng, k: int, decades: float, gap: float) -> np.ndarray:
    """k values: 1, 1 - gap, then log-spaced from 1 - gap down to 10^-decades (if lower), in random order."""
    if k == 1:
        return np.ones(1)
    rest = np.logspace(np.log10(1 - gap), -max(decades, -np.log10(1 - gap)), k - 1)
    return rng.permutation(np.concatenate([[1.0], rest]))


def _rq_data(spec: ZooSpec):
    p, rng = spec.p, np.random.default_rng([spec.seed, 1])
    d, k = p["D"], p["k"]
    mats = []
    for _ in range(k):
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        eig = rng.permutation(np.logspace(0.0, p["la"], d)) * rng.choice([-1.0, 1.0], d)
        mats.append((q * eig) @ q.T)
    mats = np.array(mats)
    x_star = rng.standard_normal(d)
    x_star /= np.linalg.norm(x_star)
    levels = np.einsum("i,jik,k->j", x_star, mats, x_star)
    weights = _spread(rng, k, p["lc"])  # in [10^-lc, 1]
    return mats, levels, weights, x_star


def _rq_inner(mats, levels, weights):
    def parts(x):
        ax = mats @ x                      # (k, D): A_j x
        r = ax @ x - levels                # r_j = xᵀA_j x - μ_j
        return ax, r

    def f(x):
        _, r = parts(x)
        return 0.5 * float(np.sum(weights * r * r))

    def grad(x):
        ax, r = parts(x)
        return 2 * (weights * r) @ ax

    def hess(x):
        ax, r = parts(x)
        return 4 * np.einsum("j,ja,jb->ab", weights, ax, ax) + 2 * np.einsum("j,jab->ab", weights * r, mats)

    def hvp(x, a):
        ax, r = parts(x)
        return 4 * (weights * (ax @ a)) @ ax + 2 * (weights * r) @ (mats @ a)

    def third(x, a, b):
        # f_j = ½ a_j r_j², ∇r_j = 2A_j x, ∇²r_j = 2A_j: ∇³f_j[a, b] = a_j(∇²r_j a (∇r_j·b) + (∇r_j·a) ∇²r_j b
        # + (aᵀ∇²r_j b) ∇r_j)
        ax = mats @ x
        aa, ab = mats @ a, mats @ b
        da, db = 2 * ax @ a, 2 * ax @ b
        return weights @ (2 * aa * db[:, None] + 2 * ab * da[:, None] + 2 * (ab @ a)[:, None] * 2 * ax)

    return f, grad, hess, hvp, third


def _rq_jax(w, mats, levels, weights):
    """½ Σ_j a_j (wᵀA_j w/wᵀw - μ_j)²."""
    import jax.numpy as jnp
    q = jnp.einsum("i,jik,k->j", w, mats, w) / jnp.sum(w * w)
    return 0.5 * jnp.sum(weights * (q - levels) ** 2)


def _rq_minimizer(mats, levels, weights, x_star, g):
    sw = np.sqrt(weights)
    residual = lambda x: sw * ((mats @ x) @ x - levels)  # noqa: E731
    jacobian = lambda x: 2 * sw[:, None] * (mats @ x)  # noqa: E731
    return _projected_minimizer(residual, jacobian, x_star, g)


def _rq_sum(spec: ZooSpec):
    mats, levels, weights, x_star = _rq_data(spec)
    d, k = spec.p["D"], spec.p["k"]
    desc = (f"sum of {k} Rayleigh-quotient losses on R^{d}, spectra over {spec.p['la']:g} decades, weights over "
            f"{spec.p['lc']:g} decades; Γ curved, dim {d - 1 - k}")
    minimizer = partial(_rq_minimizer, mats, levels, weights, x_star)
    if spec.backend == "jax":
        return _jax_model(partial(_rq_jax, mats=mats, levels=levels, weights=weights), d, spec, minimizer, d - 1 - k,
                          desc)
    f, grad, hess, hvp, third = _rq_inner(mats, levels, weights)
    base = NormalizedModel(SmoothFunction(d, f, grad, hess, third, hvp), (d,), block_names=("w",))
    return _numpy_model(base, spec, minimizer, d - 1 - k, desc)


# -- curved: Γ a small sphere S^m ----------------------------------------------------------------------------
def _curved_data(spec: ZooSpec):
    p, rng = spec.p, np.random.default_rng([spec.seed, 2])
    m, k = p["m"], p["k"]
    d = m + k + 1
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    b = q[:k]                                           # orthonormal rows b_j
    c = rng.standard_normal(k)
    c *= p["h"] / np.linalg.norm(c)                     # |c| = h < 1: Γ has radius √(1 - h²)
    kappa = _gapped(rng, k, p["lc"], 10.0 ** -p["lg"])
    direction = rng.standard_normal(d)
    direction /= np.linalg.norm(direction)
    return d, b, c, kappa, direction, 10.0 ** p["lr"]


def _curved_inner(d, b, c, kappa, direction, rho):
    def parts(x):
        px = direction @ x
        res = b @ x - c
        q, s = 1.0 + rho * px * px, 0.5 * float(np.sum(kappa * res * res))
        return q, s, 2 * rho * px * direction, b.T @ (kappa * res)

    def hq(v):
        return 2 * rho * (direction @ v) * direction

    def hs(v):
        return b.T @ (kappa * (b @ v))

    def f(x):
        q, s, _, _ = parts(x)
        return q * s

    def grad(x):
        q, s, dq, ds = parts(x)
        return dq * s + q * ds

    def hess(x):
        q, s, dq, ds = parts(x)
        return (2 * rho * s * np.outer(direction, direction) + np.outer(dq, ds) + np.outer(ds, dq)
                + q * (b.T * kappa) @ b)

    def third(x, a, bb):
        # f = q s with q, s quadratic: ∇³f[a, b] = (aᵀ∇²q b) ∇s + ∇²q a (∇s·b) + ∇²q b (∇s·a)
        #                                         + (∇q·a) ∇²s b + (∇q·b) ∇²s a + (aᵀ∇²s b) ∇q
        q, s, dq, ds = parts(x)
        return ((a @ hq(bb)) * ds + hq(a) * (ds @ bb) + hq(bb) * (ds @ a) + (dq @ a) * hs(bb) + (dq @ bb) * hs(a)
                + (a @ hs(bb)) * dq)

    return f, grad, hess, third


def _curved_jax(w, b, c, kappa, direction, rho):
    """½ (1 + ρ(pᵀx)²) Σ_j κ_j (b_jᵀx - c_j)², x = w/‖w‖."""
    import jax.numpy as jnp
    x = w / jnp.linalg.norm(w)
    return 0.5 * (1.0 + rho * (direction @ x) ** 2) * jnp.sum(kappa * (b @ x - c) ** 2)


def _curved_minimizer(b, c, g):
    """x = Bᵀc + √(1 - |c|²) u, u a random unit vector of ker B: a uniform point of the sphere Γ."""
    d = b.shape[1]
    z = g.standard_normal(d)
    z -= b.T @ (b @ z)
    return b.T @ c + np.sqrt(1.0 - c @ c) * z / np.linalg.norm(z)


def _curved(spec: ZooSpec):
    d, b, c, kappa, direction, rho = _curved_data(spec)
    m = spec.p["m"]
    desc = (f"f(w/|w|) on R^{d} with Γ a round S^{m} of radius {np.sqrt(1 - c @ c):.3g} (k = {len(c)} linear "
            f"constraints), sharpness modulated by 1 + {rho:.3g}(p·x)², κ over {spec.p['lc']:g} decades")
    minimizer = partial(_curved_minimizer, b, c)
    if spec.backend == "jax":
        return _jax_model(partial(_curved_jax, b=b, c=c, kappa=kappa, direction=direction, rho=rho), d, spec,
                          minimizer, m, desc)
    f, grad, hess, third = _curved_inner(d, b, c, kappa, direction, rho)
    base = NormalizedModel(SmoothFunction(d, f, grad, hess, third), (d,), block_names=("w",))
    return _numpy_model(base, spec, minimizer, m, desc)


# -- the existing families at random sizes ------------------------------------------------------------------
def _registered(spec: ZooSpec, ref, registry_name: str, sizes: dict):
    """A registered family's model ``ref`` as a zoo model: numpy (same inner, blocks, linear map) or JAX (the loss
    of ``toy_models.jax_losses``, autodiff)."""
    minimizer = getattr(ref, "minimizer_fn", None)
    if spec.backend == "jax":
        from .jax_losses import JAX_LOSSES
        loss = JAX_LOSSES[registry_name](ref, **sizes)
        return _jax_model(loss, ref.dim, spec, minimizer, ref.manifold_dim, ref.description)
    return _numpy_model(ref, spec, minimizer, ref.manifold_dim, ref.description)


def _mf(spec: ZooSpec):
    """``matrix_factorization`` of the spec's sizes; for completion (obs < 1) the draw (seed [spec seed, 3, attempt]; the
    first attempt is [spec seed, 3]) is repeated, up to 20 times, until the Hessian at a minimizer has the rank the
    family declares (D - 1 - manifold_dim, eigenvalues above RANK_RTOL·λ₁): a mask that leaves the completion
    non-unique makes Γ larger than declared (drawn by hypothesis, 2026-12-05: mfc m = 3, n = 4, r = 2, obs 0.75,
    seed 1 had one more zero eigenvalue), and the model would contradict its own manifold_dim."""
    p = spec.p
    sizes = dict(m=p["m"], n=p["n"], rank=p["r"], scale=float(p["c"]), observed=float(p.get("obs", 1.0)))
    for attempt in range(20):
        ref = matrix_factorization(np.random.default_rng([spec.seed, 3] + ([attempt] if attempt else [])), **sizes)
        if sizes["observed"] >= 1.0 or _declared_rank_holds(ref):
            break
    return _registered(spec, ref, "mf", sizes)


def _declared_rank_holds(ref) -> bool:
    """rank ∇²L(θ) = D - 1 - manifold_dim at ``ref``'s minimizer (seeded draw), eigenvalues above RANK_RTOL·λ₁."""
    from srflow.theory.gamma import RANK_RTOL

    theta = ref.minimizer(np.random.default_rng(0))
    eig = np.linalg.eigvalsh(ref.hess(theta))
    return int(np.sum(np.abs(eig) > RANK_RTOL * eig[-1])) == ref.dim - 1 - ref.manifold_dim


def _bn(spec: ZooSpec):
    p = spec.p
    sizes = dict(samples=p["n"], inputs=p["d"], hidden=p["h"])
    return _registered(spec, batchnorm_linear(np.random.default_rng([spec.seed, 4]), **sizes), "bn_linear", sizes)


def _wn(spec: ZooSpec):
    p = spec.p
    sizes = dict(width=p["w"], depth=p["l"], samples=p["n"], scale=float(p["c"]))
    return _registered(spec, deep_linear(np.random.default_rng([spec.seed, 5]), **sizes), "deep_linear_wn", sizes)


def _bnc(spec: ZooSpec):
    """``bn_completion``'s data (a rank-t n×n Gaussian target at unit RMS, a random fraction ``obs`` observed), drawn
    again (up to 100 times, then entries are added at random) until every row and column has more than r observed:
    with fewer,
    gradient flow from a random start can run off to a completion at infinity (seen: r = t = 2, a column with one
    observed entry; L falls like 1/t while λ₁ grows) and Γ is not reached."""
    p = spec.p
    n, r, t = p["n"], p["r"], p["t"]
    for attempt in range(100):  # redrawn (seed [spec seed, 6, attempt]) while a row or column has ≤ r observed
        rng = np.random.default_rng([spec.seed, 6, attempt])
        y = rng.standard_normal((n, t)) @ rng.standard_normal((t, n))
        y /= np.sqrt(np.mean(y**2))
        mask = rng.random((n, n)) < float(p["obs"])
        if min(mask.sum(axis=0).min(), mask.sum(axis=1).min()) > r:
            break
    else:  # then entries are added at random to the last draw's short rows and columns
        for _ in range(2):
            for m in (mask, mask.T):  # rows, then columns (a view: fills mask)
                for row in m:
                    need = r + 1 - int(row.sum())
                    if need > 0:
                        row[rng.choice(np.flatnonzero(~row), size=need, replace=False)] = True
    model = ZooCompletion(y, mask.astype(float), r, name=spec.name)
    model.__dict__["description"] = (f"matrix completion with BN on the output, {n}x{n} target of rank {t}, factors "
                                     f"of rank {r}, {int(mask.sum())} of {n * n} observed")
    return model


# -- tanh networks with batch or layer norm (JAX) ------------------------------------------------------------
def _net_outputs(w, x, readout, h, norm):
    import jax.numpy as jnp
    z = x @ w.reshape(h, x.shape[1]).T                       # (n, h)
    axis = 0 if norm == "bn" else 1                          # BN: over the samples per unit; LN: over the units
    z = z - jnp.mean(z, axis=axis, keepdims=True)
    z = z / jnp.sqrt(jnp.mean(z * z, axis=axis, keepdims=True))
    return jnp.tanh(z) @ readout


def _net_loss(w, x, readout, labels, h, norm):
    """½ mean_i (aᵀ tanh(N(W x_i)) - y_i)², N = BN (over samples) or LN (over units), no affine."""
    import jax.numpy as jnp
    return 0.5 * jnp.mean((_net_outputs(w, x, readout, h, norm) - labels) ** 2)


def _net_minimizer(residual, jacobian, teacher, g):
    return _projected_minimizer(residual, jacobian, teacher, g)


def _net(spec: ZooSpec):
    import jax

    from .jax_models import JaxModel  # noqa: F401 -- enables float64 before any array is made
    p = spec.p
    norm = "bn" if spec.family == "bnnet" else "ln"
    rng = np.random.default_rng([spec.seed, 7])
    d, h, n = p["d"], p["h"], p["n"]
    x = rng.standard_normal((n, d))
    readout = rng.standard_normal(h) / np.sqrt(h)
    teacher = rng.standard_normal(h * d)
    teacher /= np.linalg.norm(teacher)
    labels = np.asarray(_net_outputs(teacher, x, readout, h, norm))
    loss = partial(_net_loss, x=x, readout=readout, labels=labels, h=h, norm=norm)
    out = jax.jit(partial(_net_outputs, x=x, readout=readout, h=h, norm=norm))
    jac = jax.jit(jax.jacfwd(partial(_net_outputs, x=x, readout=readout, h=h, norm=norm)))
    residual = lambda w: (np.asarray(out(w)) - labels) / np.sqrt(n)  # noqa: E731
    jacobian = lambda w: np.asarray(jac(w)) / np.sqrt(n)  # noqa: E731
    gamma = h * d - 1 - n
    desc = (f"tanh net with {'batch' if norm == 'bn' else 'layer'} norm (no affine), {d} inputs, {h} hidden, "
            f"{n} random samples, fixed readout, teacher labels")
    return _jax_model(loss, h * d, spec, partial(_net_minimizer, residual, jacobian, teacher), gamma, desc)


_BUILDERS = {"rq_sum": _rq_sum, "curved": _curved, "mf": _mf, "mfc": _mf, "bnc": _bnc, "bn": _bn, "wn": _wn,
             "bnnet": _net, "lnnet": _net}


#: the prefix that marks a zoo model in ``srflow verify --models`` (``zoo:<name>``)
SPEC_PREFIX = "zoo:"


def is_zoo_spec(text: str) -> bool:
    """Whether ``text`` is ``zoo:<a zoo model name>``."""
    return isinstance(text, str) and text.startswith(SPEC_PREFIX) and _NAME.fullmatch(text[len(SPEC_PREFIX):]) is not None


def zoo_model(spec=None, rng=None):
    """The zoo model of ``spec``: a ``ZooSpec``, its name (str), or an int / tuple seed (``draw_spec(seed)``).
    ``rng`` (the registry's factory keyword: an int seed or a Generator) is used as the seed when ``spec`` is not
    given. The model's ``name`` is its spec's name: ``zoo_model(model.name)`` rebuilds it."""
    if spec is None:
        spec = int(rng.integers(2**31 - 1)) if isinstance(rng, np.random.Generator) else (0 if rng is None else rng)
    if isinstance(spec, str):
        spec = parse_spec(spec)
    elif not isinstance(spec, ZooSpec):
        spec = draw_spec(spec)
    return _BUILDERS[spec.family](spec)


# -- conditioning ------------------------------------------------------------------------------------------
def conditioning(model, theta: np.ndarray) -> dict:
    """At θ ∈ Γ: λ₁, μ (the smallest eigenvalue of ∇²L(θ) above RANK_RTOL·λ₁), λ₁/μ, the relative gap
    (λ₁ - λ₂)/λ₁ and G = ‖∇_Γ log λ₁‖² (``theory.manifold_point``; NaN where the gap closes)."""
    from srflow.theory.manifold import RANK_RTOL, manifold_point

    eig = np.linalg.eigvalsh(model.hess(theta))
    lam1 = float(eig[-1])
    nonzero = eig[np.abs(eig) > RANK_RTOL * lam1]
    mu = float(np.min(nonzero))
    try:
        G = manifold_point(model, theta, on_gap="warn").G
    except Exception:  # noqa: BLE001 -- a failed rank condition leaves G undefined
        G = float("nan")
    gap = float((eig[-1] - eig[-2]) / lam1) if len(eig) > 1 else 1.0
    return {"lam1": lam1, "mu": mu, "lam1_over_mu": lam1 / mu, "gap": gap, "G": float(G),
            "rank": int(len(nonzero))}
