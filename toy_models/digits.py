"""A fixed train/test split of scikit-learn's handwritten digits (1,797 8×8 images, 10 classes, bundled with
scikit-learn: nothing is downloaded).

``load_digits_split(n_train, n_test, seed)``:

* split: ``order = np.random.default_rng(seed).permutation(1797)``; the training set is ``order[:n_train]``,
  the test set ``order[n_train:n_train + n_test]`` (disjoint; the same for every call with the same seed,
  and the first n_train indices do not depend on n_test).
* standardization with the TRAINING statistics, per pixel: x ← (x - μ_j)/σ_j, μ_j and σ_j the mean and
  (population) standard deviation of pixel j over the training images; a pixel constant on the training set
  (σ_j = 0, e.g. the always-blank corners) gets σ_j = 1, so it is 0 on the training set. The test images use
  the same μ, σ.
* ``x``: float64 (n, 64), pixels in row-major order of the 8×8 image; ``y``: int64 labels 0-9.

>>> x_train, y_train, x_test, y_test = load_digits_split(100, 50)
>>> x_train.shape, x_test.shape, x_train.dtype, bool(abs(x_train.mean()) < 1e-12)
((100, 64), (50, 64), dtype('float64'), True)
"""

from __future__ import annotations

import functools

import numpy as np

from .validate import positive_int

#: the number of images in scikit-learn's digits data
N_DIGITS = 1797


@functools.cache
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_digits_split(n_train: int, n_test: int, seed: int = 0):
    """``(x_train, y_train, x_test, y_test)``: the fixed split and standardization of the module docstring.

    ``n_train ≥ 2`` and ``n_test ≥ 1`` with ``n_train + n_test ≤ 1797``, else ``ValueError`` naming the argument.
    """
    n_train, n_test = positive_int(n_train, "n_train"), positive_int(n_test, "n_test")
    if n_train < 2:
        raise ValueError(f"n_train: expected at least 2 training images (statistics need 2), got {n_train}")
    if n_train + n_test > N_DIGITS:
        raise ValueError(f"n_train, n_test: expected n_train + n_test ≤ {N_DIGITS} (the digits data set), "
                         f"got {n_train} + {n_test}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an integer, got {type(seed).__name__} {seed!r}")
    x, y = _raw()
    order = np.random.default_rng(int(seed)).permutation(N_DIGITS)
    train, test = order[:n_train], order[n_train:n_train + n_test]
    mu = x[train].mean(axis=0)
    sigma = x[train].std(axis=0)
    sigma[sigma == 0] = 1.0
    return (x[train] - mu) / sigma, y[train].copy(), (x[test] - mu) / sigma, y[test].copy()
