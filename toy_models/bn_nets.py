"""Scale-invariant batch-normalized networks on real data (scikit-learn's digits), in JAX.

``bn_mlp(rng, **sizes)`` and ``bn_cnn(rng, **sizes)`` return a ``toy_models.jax_models.JaxModel`` whose
parameters w are the hidden layers' weights, flattened in layer order (row-major). The data is the fixed split
of ``toy_models.digits.load_digits_split`` (standardized with the training statistics; ``split_seed`` 0).

Architecture (``bn_mlp``, widths (h₁, ..., h_k); x ∈ R⁶⁴)::

    a₀ = x,   a_l = tanh(BN(W_l a_{l-1})),   f(x) = A a_k,   W_l ∈ R^{h_l × h_{l-1}} trainable, A ∈ R^{10 × h_k} FIXED

``bn_cnn`` (channels (c₁, c₂), 8×8 images): conv 3×3 (c₁, 'SAME', no bias) → BN per channel → tanh → 2×2 average
pool → conv 3×3 (c₂) → BN → tanh → 2×2 average pool → flatten (4·c₂) → f = A a, A ∈ R^{10 × 4c₂} FIXED.

* **BN without affine parameters, full batch**: BN(z)_i = (z_i - μ)/σ per unit (per channel for convolutions,
  over the samples and positions), μ and σ² the mean and population variance over the WHOLE training set, no
  ε. So L is a deterministic smooth function of w (tanh, not ReLU: the theory needs third derivatives). At
  test time the normalization uses the training-set statistics of the same w (the full-batch analogue of
  "running statistics"); ``test_error`` and ``train_error`` use them.
* **Scale invariance**: BN(cz) = BN(z) for c > 0, so each W_l enters only through W_l/‖W_l‖: L(c w) = L(w)
  (jointly, and even block by block). The readout A is FIXED, a seeded Gaussian matrix A_ij ~ N(0, 1/h_k)
  drawn from ``rng`` -- not trained, as in the paper's experiments (a trainable readout would break the
  invariance; normalizing it instead, A/‖A‖ times a scale, adds a parameter block and a scale hyperparameter
  for no benefit to the checks).
* **Loss**: L(w) = (1/2n) Σ_i ‖f(x_i) - s·e_{y_i}‖² (mean squared error to scaled one-hot targets, s =
  ``target_scale``) on ``n_train`` training images. The theory needs a manifold Γ of minimizers reached by
  gradient flow with a Hessian of constant rank on it: with squared error and n_train·10 ≤ D the network
  interpolates, L = 0 exactly on Γ = {w : f(x_i; w) = s·e_{y_i} ∀i} (on the unit sphere: dim Γ = D - 1 -
  10·n_train when the output Jacobian J has full row rank, which ``minimizer`` checks), and ∇²L = JᵀJ/n there.
  The paper trains with cross-entropy, whose infimum is not attained (L > 0 everywhere, minimizers at infinity in
  the logit scale): Γ would not exist as a set of zero-loss points, hence MSE here.
* ``normalized=False``: the same architecture WITHOUT BN (a_l = tanh(W_l a_{l-1}/√h_{l-1}), same fixed A),
  the generalization reference of the figures. It is NOT scale-invariant: its ``scale_invariant`` attribute is
  False, it has no ``minimizer`` (Γ is not defined) and ``srflow verify`` must not be given it (the identities
  of ``srflow check-identities`` fail on it, which the tests use as a negative control).

``minimizer(rng)`` returns a unit-norm point of Γ: GD on the sphere (w ← (w - η∇L)/‖·‖) from a Gaussian start
drawn from ``rng``, then Gauss-Newton steps w ← w - J⁺r (r the residual, J⁺ by LSQR on JVP/VJP: the minimum-norm
correction, which lies in the row space of J, the normal space of Γ) until ‖r‖ ≤ 1e-14·s or it stops
decreasing. It takes ~30 s for the default MLP on 2 shared cores (benchmarks/bench_networks.py), so each result
is cached in memory and on disk (``cache_dir()``: $SRFLOW_CACHE_DIR or ~/.cache/srflow, keyed by the model's
spec, the start seed and this module's source).

>>> m = bn_mlp(widths=(12,), n_train=20, n_test=10)
>>> m.dim, m.name, round(m.loss(2.0 * np.ones(m.dim)) - m.loss(np.ones(m.dim)), 14)
(768, 'bn_mlp', 0.0)
"""

from __future__ import annotations

import copy
import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse.linalg import LinearOperator, lsqr

from .cache import cache_dir  # noqa: F401 -- where the minimizers are cached (re-exported)
from .validate import as_rng, positive_int
from .digits import load_digits_split
from .jax_lsqr import residual_lsqr
from .jax_models import JaxModel

N_CLASSES = 10


# -- the networks, as functions of a list of weight arrays ------------------------------------------------------
def batchnorm(z_train, z_eval, axes):
    """(BN(z_train), BN(z_eval)) with the mean and population std of z_train over ``axes``, no affine, no ε."""
    mu = jnp.mean(z_train, axis=axes, keepdims=True)
    sigma = jnp.sqrt(jnp.mean((z_train - mu) ** 2, axis=axes, keepdims=True))
    return (z_train - mu) / sigma, (z_eval - mu) / sigma


def mlp_outputs(params, x_train, x_eval, normalized=True):
    """(f(x_train), f(x_eval)) before the readout: the last hidden activations, BN statistics from x_train."""
    a, b = x_train, x_eval
    for w in params:
        za, zb = a @ w.T, b @ w.T
        if normalized:
            za, zb = batchnorm(za, zb, axes=(0,))
        else:
            za, zb = za / np.sqrt(w.shape[1]), zb / np.sqrt(w.shape[1])
        a, b = jnp.tanh(za), jnp.tanh(zb)
    return a, b


def _conv(a, kernel):
    return jax.lax.conv_general_dilated(a, kernel, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))


def _pool(a):
    n, c, h, w = a.shape
    return a.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def cnn_outputs(params, x_train, x_eval, normalized=True):
    """The CNN's flattened last activations on x_train and x_eval (images as (n, 64) rows)."""
    a, b = x_train.reshape(-1, 1, 8, 8), x_eval.reshape(-1, 1, 8, 8)
    for k in params:
        za, zb = _conv(a, k), _conv(b, k)
        if normalized:
            za, zb = batchnorm(za, zb, axes=(0, 2, 3))
        else:
            fan_in = k.shape[1] * k.shape[2] * k.shape[3]
            za, zb = za / np.sqrt(fan_in), zb / np.sqrt(fan_in)
        a, b = _pool(jnp.tanh(za)), _pool(jnp.tanh(zb))
    return a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)


_FEATURES = {"bn_mlp": mlp_outputs, "bn_cnn": cnn_outputs}


def _predictions(params, kind, x_train, x_eval, readout, normalized):
    a, b = _FEATURES[kind](params, x_train, x_eval, normalized)
    return a @ readout.T, b @ readout.T


def network_loss(params, kind, x_train, targets, readout, normalized=True):
    """L = (1/2n) Σ_i ‖A a_k(x_i) - t_i‖², t_i = s·e_{y_i} (the module docstring)."""
    out, _ = _predictions(params, kind, x_train, x_train[:1], readout, normalized)
    return 0.5 * jnp.mean(jnp.sum((out - targets) ** 2, axis=1))


def residual(params, kind, x_train, targets, readout, normalized=True):
    """r(w) = (f(x_i) - t_i)/√n, flattened: L = ½‖r‖²."""
    out, _ = _predictions(params, kind, x_train, x_train[:1], readout, normalized)
    return ((out - targets) / np.sqrt(len(targets))).ravel()


# -- the factories ---------------------------------------------------------------------------------------------
def _sizes_tuple(value, name: str, length: int | None = None) -> tuple[int, ...]:
    try:
        out = tuple(value)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of positive integers, got {value!r}") from None
    if not out or (length is not None and len(out) != length):
        raise ValueError(f"{name}: expected {length or 'at least one'} positive integers, got {value!r}")
    return tuple(positive_int(v, name) for v in out)


def _shapes(kind: str, sizes: dict) -> list[tuple[int, ...]]:
    if kind == "bn_mlp":
        widths = (64,) + sizes["widths"]
        return [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]
    c1, c2 = sizes["channels"]
    return [(c1, 1, 3, 3), (c2, c1, 3, 3)]


def _build(kind: str, rng, n_train: int, n_test: int, target_scale: float, normalized: bool, **arch) -> JaxModel:
    spec = (_rebuild, (kind, copy.deepcopy(rng), dict(n_train=n_train, n_test=n_test, target_scale=target_scale,
                                                      normalized=normalized, **arch)))
    n_train, n_test = positive_int(n_train, "n_train"), positive_int(n_test, "n_test")
    if isinstance(target_scale, bool) or not isinstance(target_scale, (int, float)) or not target_scale > 0:
        raise ValueError(f"target_scale: expected a positive number, got {target_scale!r}")
    if not isinstance(normalized, bool):
        raise TypeError(f"normalized: expected True or False, got {normalized!r}")
    x_train, y_train, x_test, y_test = load_digits_split(n_train, n_test)
    shapes = _shapes(kind, arch)
    features = shapes[-1][0] * (4 if kind == "bn_cnn" else 1)
    readout = as_rng(rng).standard_normal((N_CLASSES, features)) / np.sqrt(features)
    targets = float(target_scale) * np.eye(N_CLASSES)[y_train]
    template = [np.zeros(s) for s in shapes]
    data = dict(kind=kind, x_train=x_train, targets=targets, readout=readout, normalized=normalized)
    loss = partial(network_loss, **data)
    dim = int(sum(np.prod(s) for s in shapes))
    m_eq = N_CLASSES * n_train
    name = kind if normalized else f"{kind}_plain"
    desc = (f"{'BN ' if normalized else 'un-normalized '}{'MLP' if kind == 'bn_mlp' else 'CNN'} on digits, "
            f"{arch}, n_train={n_train}, fixed readout, MSE to {target_scale:g}·one-hot")
    model = JaxModel(loss, template, name=name, manifold_dim=(dim - 1 - m_eq) if normalized else None,
                     minimizer_fn=partial(_minimizer, kind, spec[1]) if normalized else None,
                     description=desc, _spec=spec)
    model.scale_invariant = normalized
    model.n_train, model.n_test = n_train, n_test
    predict = jax.jit(lambda w, xe: _predictions(model._unravel(w), kind, x_train, xe, readout, normalized)[1])

    def error(w, x, y) -> float:
        return float(np.mean(np.argmax(np.asarray(predict(jnp.asarray(model._point(w)), x)), axis=1) != y))

    model.train_error = lambda w: error(w, x_train, y_train)
    model.test_error = lambda w: error(w, x_test, y_test)
    model.train_error.__doc__ = "0-1 classification error on the training split (argmax of f)."
    model.test_error.__doc__ = "0-1 classification error on the test split (BN with the training statistics)."
    model.residual = partial(residual, **data)
    if normalized:  # L = ½‖r‖², L = 0 on Γ: theory.matrix_free uses J for the normal space (protocol item 11)
        res = jax.jit(lambda w: residual(model._unravel(w), **data))
        jvp = jax.jit(lambda w, v: jax.jvp(res, (w,), (v,))[1])
        vjp = jax.jit(lambda w, u: jax.vjp(res, w)[1](u)[0])
        model.residual_vector = lambda w: np.asarray(res(jnp.asarray(model._point(w))))
        model.residual_jvp = lambda w, v: np.asarray(jvp(jnp.asarray(model._point(w)), jnp.asarray(v)))
        model.residual_vjp = lambda w, u: np.asarray(vjp(jnp.asarray(model._point(w)), jnp.asarray(u)))
        solve = residual_lsqr(lambda w: residual(model._unravel(w), **data))

        def lsqr_solve(w, b, atol: float, btol: float, iter_lim: int) -> np.ndarray:
            x, _ = solve(jnp.asarray(model._point(w)), jnp.asarray(b), atol, btol, iter_lim)
            return np.asarray(x)
        model.residual_lsqr = lsqr_solve
    return model


def _rebuild(kind: str, rng, sizes: dict) -> JaxModel:
    return _FACTORIES[kind](rng, **sizes)


def bn_mlp(rng=0, n_train: int = 256, n_test: int = 500, widths=(96, 96), target_scale: float = 1.0,
           normalized: bool = True) -> JaxModel:
    """A BN MLP 64 → widths → (fixed) 10 on digits (module docstring); D = Σ h_l h_{l-1} (15,360 by default)."""
    return _build("bn_mlp", rng, n_train, n_test, target_scale, normalized, widths=_sizes_tuple(widths, "widths"))


def bn_cnn(rng=0, n_train: int = 128, n_test: int = 500, channels=(32, 64), target_scale: float = 1.0,
           normalized: bool = True) -> JaxModel:
    """A small BN CNN (two 3×3 conv layers with BN and pooling, fixed readout; module docstring);
    D = 9c₁ + 9c₁c₂ (18,720 by default). n_train is 128 by default: a CNN step costs ~5x an MLP step."""
    return _build("bn_cnn", rng, n_train, n_test, target_scale, normalized,
                  channels=_sizes_tuple(channels, "channels", length=2))


_FACTORIES = {"bn_mlp": bn_mlp, "bn_cnn": bn_cnn}


# -- a point of Γ -----------------------------------------------------------------------------------------------
#: GD on the sphere before Gauss-Newton: steps (per network) and step size (on the unit sphere λ₁ ≈ 50-70 at the
#: start, so 0.02 < 2/λ₁ is a stable step; 3000 steps bring L to ~1e-3 on the default MLP, 1000 to ~1e-2 on the
#: CNN, whose steps cost 5x more; the backtracking Gauss-Newton steps converge from there)
PRE_STEPS, PRE_LR = {"bn_mlp": 3000, "bn_cnn": 1000}, 0.02
#: Gauss-Newton: at most this many steps; stop when ‖r‖ ≤ GN_TOL·s (round-off) or ‖r‖ stops decreasing. Each
#: step is inexact (LSQR to a relative residual min(0.1, ‖r‖): quadratic convergence with fewer iterations).
GN_STEPS, GN_TOL = 30, 1e-14
#: ... with a backtracking line search: the step is halved up to this many times until ‖r‖ decreases
GN_HALVINGS = 12


@functools.cache
def _solver(kind: str, spec_key):
    """(model, compiled GD run on the sphere) of one model (by its rebuild spec)."""
    _, seed, sizes = spec_key
    model = _rebuild(kind, seed, dict(sizes))
    grad = jax.grad(model.jax_loss)

    @jax.jit
    def descend(w):
        def step(w, _):
            w = w - PRE_LR * grad(w)
            return w / jnp.linalg.norm(w), None
        return jax.lax.scan(step, w, None, length=PRE_STEPS[kind])[0]

    return model, descend


def _key(spec_args) -> tuple:
    kind, rng, sizes = spec_args
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise TypeError("rng: the minimizer of a network needs the model built from an integer seed "
                        f"(got {type(rng).__name__}) so that it can be cached and rebuilt")
    return kind, (kind, int(rng), tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v)
                                                for k, v in sizes.items())))


def gauss_newton(model, w, tol: float) -> np.ndarray:
    """w ← (w - 2⁻ᵏJ⁺r(w))/‖·‖, k ≥ 0 the first halving that decreases ‖r‖, until ‖r‖ ≤ tol or none does.

    J⁺r by LSQR on JVP/VJP (compiled: ``model.residual_lsqr``): the minimum-norm solution of J δ = r, in the row space of J (the normal space of Γ
    at a zero-loss point)."""
    r = model.residual_vector(w)
    for _ in range(GN_STEPS):
        if np.linalg.norm(r) <= tol:
            break
        forcing = max(min(0.1, float(np.linalg.norm(r))), 1e-15)
        if callable(getattr(model, "residual_lsqr", None)):  # the compiled LSQR (toy_models.jax_lsqr)
            step = model.residual_lsqr(w, r, 0.0, forcing, 20 * r.size)
        else:
            op = LinearOperator((r.size, model.dim), dtype=np.float64,
                                matvec=lambda v: model.residual_jvp(w, np.ravel(v)),
                                rmatvec=lambda u: model.residual_vjp(w, np.ravel(u)))
            step = lsqr(op, r, atol=0.0, btol=forcing, iter_lim=20 * r.size)[0]
        for _ in range(GN_HALVINGS):  # backtracking: far from Γ a full step can overshoot
            w_new = w - step
            w_new /= np.linalg.norm(w_new)
            r_new = model.residual_vector(w_new)
            if np.linalg.norm(r_new) < np.linalg.norm(r):
                break
            step = step / 2
        else:
            break
        w, r = w_new, r_new
    return w


@functools.lru_cache(maxsize=32)
def _minimizer_cached(kind: str, spec_key, seed: int) -> np.ndarray:
    import hashlib
    from pathlib import Path

    folder = cache_dir()
    tag = hashlib.sha256(repr((spec_key, seed, PRE_STEPS[kind], PRE_LR, GN_STEPS, GN_TOL,
                               Path(__file__).read_bytes())).encode()).hexdigest()[:20]
    path = None if folder is None else folder / f"minimizer_{kind}_{tag}.npy"
    model, descend = _solver(kind, spec_key)
    out = None
    if path is not None and path.exists():
        try:
            out = np.load(path)
        except (OSError, ValueError):
            out = None
    if out is None or out.shape != (model.dim,):
        w = np.random.default_rng(seed).standard_normal(model.dim)
        w = np.asarray(descend(jnp.asarray(w / np.linalg.norm(w))))
        out = gauss_newton(model, w, GN_TOL * dict(spec_key[2])["target_scale"])
        if path is not None:
            _save(path, out)
    out = np.array(out)
    out.setflags(write=False)
    return out


def _save(path, w: np.ndarray) -> None:
    """Write ``w`` to ``path`` atomically (a temporary file, then ``os.replace``); a failure only warns."""
    import os
    import tempfile
    import warnings

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npy", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, w)
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"bn_nets: could not cache the minimizer in {path} ({exc})", stacklevel=3)


def _minimizer(kind: str, spec_args, rng) -> np.ndarray:
    """A unit-norm point of Γ from a start drawn from ``rng`` (module docstring)."""
    seed = int(as_rng(rng).integers(2**62))
    return np.array(_minimizer_cached(*_key(spec_args), seed))
