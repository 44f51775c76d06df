"""The JAX twins of the registered models: ``make_jax_model(name)``, with the loss of every registered model
written in ``jax.numpy``.

Each builder takes the numpy reference model (for its data: target, mask, inputs, ...) and the factory's
size keywords, and returns L as a JAX function of the flat vector w, written from the formula in the
factory's docstring (``toy_models.families``, ``toy_models.sympy_model``) -- not from the numpy model's
internals -- so that autodiff of these and the closed-form derivatives check each other
(tests/test_jax_models.py). Losses are ``functools.partial``s of module functions over numpy data, so they
pickle.
"""

from __future__ import annotations

import copy
import inspect
from functools import partial

import jax.numpy as jnp
import numpy as np

from .jax_models import JaxModel
from .registry import REGISTRY, make_model


def _default(name: str, sizes: dict, key: str):
    """A factory keyword: the value given, else the factory's default."""
    return sizes.get(key, inspect.signature(REGISTRY[name]).parameters[key].default)


def factorization(w, m, n, rank, scale, target, weights):
    """½ Σ ω (c U Vᵀ/(‖U‖_F ‖V‖_F) - Y)², w = (vec U, vec V) row-major."""
    u, v = w[: m * rank].reshape(m, rank), w[m * rank:].reshape(n, rank)
    pred = scale * (u @ v.T) / (jnp.linalg.norm(u) * jnp.linalg.norm(v))
    return 0.5 * jnp.sum(weights * (pred - target) ** 2)


def factorization_low_rank(w, m, n, rank, scale, left, sing, right, weight):
    r"""``factorization`` for a full observation (every ω = ``weight``) of a rank-k target Y = P S Qᵀ (``left`` P: m×k,
    ``sing`` S: k, ``right`` Q: n×k, orthonormal columns), in O((m + n)·r·k) instead of O(mn).

    With Ū = U/‖U‖_F = Pα + U_⊥ (α = PᵀŪ, U_⊥ ⊥ P) and V̄ = Qβ + V_⊥ (β = QᵀV̄), c Ū V̄ᵀ - Y splits into four blocks
    that are orthogonal in the Frobenius product (columns in P or P^⊥, rows in Q or Q^⊥):

    .. math:: \|cŪV̄ᵀ - Y\|_F^2 = \|cαβᵀ - S\|_F^2 + c^2\|V_⊥αᵀ\|_F^2 + c^2\|U_⊥βᵀ\|_F^2
              + c^2 \mathrm{tr}(U_⊥ᵀU_⊥ V_⊥ᵀV_⊥),

    each term a sum of squares (the last a trace of a product of two PSD matrices), so the loss stays ≥ 0 and
    small near Γ without cancellation (expanding ‖cŪV̄ᵀ‖² - 2c⟨ŪV̄ᵀ, Y⟩ + ‖Y‖² instead left L(θ) = -3e-22 on Γ
    at m = n = 1000). The same function as ``factorization`` to round-off (tests/test_jax_models.py)."""
    u, v = w[: m * rank].reshape(m, rank), w[m * rank:].reshape(n, rank)
    ub, vb = u / jnp.linalg.norm(u), v / jnp.linalg.norm(v)
    alpha, beta = left.T @ ub, right.T @ vb  # k×r
    u_perp, v_perp = ub - left @ alpha, vb - right @ beta
    core = scale * alpha @ beta.T - jnp.diag(sing)
    total = (jnp.sum(core ** 2) + scale ** 2 * (jnp.sum((v_perp @ alpha.T) ** 2) + jnp.sum((u_perp @ beta.T) ** 2)
                                                + jnp.sum((u_perp.T @ u_perp) * (v_perp.T @ v_perp))))
    return 0.5 * weight * total


def _symmetric(w, n, rank, scale, target, weights):
    """½ Σ ω (c U Uᵀ/‖U‖_F² - Y)², w = vec U."""
    u = w.reshape(n, rank)
    return 0.5 * jnp.sum(weights * (scale * (u @ u.T) / jnp.sum(u * u) - target) ** 2)


def _batchnorm(w, inputs, out, labels):
    """½ mean_i (Σ_k a_k BN(X w_k)_i - y_i)², BN(z) = (z - mean z)/std z (population std, no affine)."""
    z = w.reshape(len(out), inputs.shape[1]) @ inputs.T
    zhat = (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)
    return 0.5 * jnp.mean((out @ zhat - labels) ** 2)


def _deep_linear(w, width, depth, scale, inputs, target):
    """½ mean (c W̄_K ⋯ W̄_1 X - Y)², W̄_l = W_l/‖W_l‖_F, w = layers in order, row-major."""
    prod = inputs
    for layer in w.reshape(depth, width, width):
        prod = layer @ prod / jnp.linalg.norm(layer)
    return 0.5 * jnp.mean((scale * prod - target) ** 2)


def _circle(w, ratio, kappa):
    """f(w/‖w‖), f(x) = ½ (1 + ρ x₀²) Σ_i κ_i x_i²."""
    x = w / jnp.linalg.norm(w)
    return 0.5 * (1.0 + ratio * x[0] ** 2) * jnp.sum(kappa * x * x)


def _rayleigh(w, spectrum, level):
    """½ (wᵀ A w / wᵀ w - μ)², A = diag(spectrum)."""
    return 0.5 * (jnp.sum(spectrum * w * w) / jnp.sum(w * w) - level) ** 2


def _breathing(w, quartic, growth, cubic, normal, coupling):
    """f(w/‖w‖), f(x) = exp(γ atan2(x₁, x₀))·(½x₂² + c x₂³ + b x₂⁴ + ½μx₃² + t x₂²x₃)."""
    x = w / jnp.linalg.norm(w)
    p = (0.5 * x[2] ** 2 + cubic * x[2] ** 3 + quartic * x[2] ** 4 + 0.5 * normal * x[3] ** 2
         + coupling * x[2] ** 2 * x[3])
    return jnp.exp(growth * jnp.arctan2(x[1], x[0])) * p


#: ``mf_loss`` writes the loss of a fully observed target with at least this many entries m·n in the factored
#: form ``factorization_low_rank``: the direct form's residual matrix then dominates every call (m = n = 1000, D = 4000:
#: an HVP took 162 ms, 0.63 ms factored, measured 2026-12-05 on 2 busy cores). Smaller sizes keep the direct form.
LOW_RANK_MIN_ENTRIES = 100_000


def mf_loss(ref, **sizes):
    """``factorization`` with ``ref``'s data; ``factorization_low_rank`` for a fully observed target of at least
    LOW_RANK_MIN_ENTRIES entries whose SVD truncated at its rank reproduces it to 1e-13 (relative)."""
    inner = ref.inner
    (rank, n), (m, _) = inner.shapes
    target, weights = np.array(inner.target), np.array(inner.weights)
    if m * n >= LOW_RANK_MIN_ENTRIES and np.ptp(weights) == 0:
        left, sing, right_t = np.linalg.svd(target, full_matrices=False)
        k = int(np.sum(sing > 1e-13 * sing[0]))
        left, sing, right = left[:, :k], sing[:k], right_t[:k].T
        if np.linalg.norm(target - (left * sing) @ right.T) <= 1e-13 * np.linalg.norm(target):
            return partial(factorization_low_rank, m=m, n=n, rank=rank, scale=float(inner.scale), left=left,
                           sing=sing, right=right, weight=float(weights.flat[0]))
    return partial(factorization, m=m, n=n, rank=rank, scale=float(inner.scale), target=target, weights=weights)


def sym_mf_loss(ref, **sizes):
    inner = ref.inner
    (rank, n), _ = inner.shapes
    return partial(_symmetric, n=n, rank=rank, scale=float(inner.scale), target=np.array(inner.target),
                   weights=np.array(inner.weights))


def bn_linear_loss(ref, **sizes):
    (h, samples), = ref.inner.shapes
    d = ref.dim // h
    inputs = np.array(ref.linear[:samples, :d])  # the batch X, centred (BN removes the mean anyway)
    return partial(_batchnorm, inputs=inputs, out=np.array(ref.inner.left[0]), labels=np.array(ref.inner.target[0]))


def deep_linear_loss(ref, **sizes):
    inner = ref.inner
    return partial(_deep_linear, width=inner.shapes[0][0], depth=len(inner.shapes), scale=float(inner.scale),
                   inputs=np.array(inner.right), target=np.array(inner.target))


def circle_loss(ref, **sizes):
    kappa = np.zeros(ref.dim)
    kappa[2:] = np.linspace(1.0, 0.5, ref.dim - 2)
    return partial(_circle, ratio=float(_default("sphere_circle", sizes, "ratio")), kappa=kappa)


def rayleigh_loss(ref, **sizes):
    spectrum = np.array([float(s) for s in _default("sympy_rayleigh", sizes, "spectrum")])
    return partial(_rayleigh, spectrum=spectrum, level=float(_default("sympy_rayleigh", sizes, "level")))


def breathing_loss(ref, **sizes):
    keys = ("quartic", "growth", "cubic", "normal", "coupling")
    return partial(_breathing, **{k: float(_default("breathing", sizes, k)) for k in keys})


#: registered name -> builder(reference_model, **sizes) -> JAX loss of the flat vector
JAX_LOSSES = {
    "mf": mf_loss,
    "mf_completion": mf_loss,
    "sym_mf": sym_mf_loss,
    "bn_linear": bn_linear_loss,
    "deep_linear_wn": deep_linear_loss,
    "sphere_circle": circle_loss,
    "sympy_rayleigh": rayleigh_loss,
    "breathing": breathing_loss,
}


def make_jax_model(name: str, rng=0, sizes: dict | None = None) -> JaxModel:
    """The JAX twin of ``toy_models.make_model(name, rng, **sizes)``: the same data (target, mask, inputs,
    teacher), the same Γ and ``minimizer``, the loss written independently in ``jax.numpy`` (``JAX_LOSSES``)
    and every derivative by autodiff. Pickles by rebuilding from (name, rng, sizes) (a Generator is copied
    before use, so the rebuild draws the same data)."""
    sizes = dict(sizes or {})
    if name not in JAX_LOSSES:
        raise KeyError(f"name: no JAX loss for {name!r}; valid names are {', '.join(JAX_LOSSES)}")
    spec = (make_jax_model, (name, copy.deepcopy(rng), sizes))
    reference = make_model(name, rng=rng, **sizes)
    loss = JAX_LOSSES[name](reference, **sizes)
    return JaxModel(loss, np.zeros(reference.dim), name=reference.name,
                    manifold_dim=getattr(reference, "manifold_dim", None),
                    minimizer_fn=getattr(reference, "minimizer", None),
                    description=f"{getattr(reference, 'description', '')} (JAX autodiff)", _spec=spec)
