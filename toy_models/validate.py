"""Input checks at the public boundary of every package (models, theory, verification): each error names the
argument and what was expected. A TypeError for the wrong kind of value (a string, None, a complex array), a
ValueError for a value of the right kind outside the domain (NaN, a negative sharpness, a wrong shape)."""

from __future__ import annotations

import numpy as np


def as_vector(x, name: str, dim: int) -> np.ndarray:
    """Return ``x`` as a finite float64 vector of shape ``(dim,)`` or raise naming ``name``.

    Real integer and floating inputs are converted to float64; complex, boolean, object and
    string inputs are rejected rather than silently cast.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real float64 array of shape ({dim},), got dtype {arr.dtype}")
    if arr.shape != (dim,):
        raise ValueError(f"{name}: expected shape ({dim},), got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name}: expected finite entries, entry {bad} is {arr[bad]}")
    return arr


def as_matrix(x, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a finite float64 array (of ``shape`` when given) or raise naming ``name``."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a real array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite entries")
    return arr


def frozen_copy(x) -> np.ndarray:
    """A private read-only float64 copy, for the fields of frozen model dataclasses."""
    arr = np.array(x, dtype=np.float64, copy=True)
    arr.setflags(write=False)
    return arr


def as_rng(rng) -> np.random.Generator:
    """Accept a ``np.random.Generator`` or an integer seed; anything else is an error."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng: expected a non-negative integer seed (or a numpy.random.Generator), got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng: expected a numpy.random.Generator or an integer seed, got {type(rng).__name__}")


def positive_int(x, name: str, minimum: int = 1) -> int:
    """Check a size keyword: an integer ``>= minimum``."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {x!r}")
    return int(x)


def unit(x: np.ndarray, name: str) -> np.ndarray:
    """x/‖x‖ for a finite vector, computed as y/‖y‖ with y = x/max|x| so that no square overflows or underflows
    (a vector of 1e300s has a direction); a zero vector raises naming ``name``."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0:
        raise ValueError(f"{name}: expected a nonzero vector (the loss is scale-invariant, its direction is needed)")
    y = x / top
    return y / np.linalg.norm(y)


def real(x, name: str, what: str = "a finite real number") -> float:
    """A real number (not a string, bool or None) that is finite, or an error naming ``name``."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected {what}, got {type(x).__name__} {x!r}")
    if not np.isfinite(x):
        raise ValueError(f"{name}: expected {what}, got {x!r}")
    return float(x)


def positive_real(x, name: str, what: str = "a finite number > 0") -> float:
    """A real number (not a string or bool) that is finite and > 0, or an error naming ``name``."""
    x = real(x, name, what)
    if not x > 0:
        raise ValueError(f"{name}: expected {what}, got {x!r}")
    return x


def positive_values(x, name: str, what: str = "finite values > 0"):
    """A number or a real array whose entries are all finite and > 0 (a float, or a float64 array), or an error
    naming ``name``: for elementwise formulas."""
    if isinstance(x, (np.ndarray, list, tuple)) and np.ndim(x) > 0:
        arr = real_array(x, name)
        if not np.all(arr > 0):
            raise ValueError(f"{name}: expected {what}, got {float(arr[~(arr > 0)].ravel()[0])!r}")
        return arr
    return positive_real(x, name, what)


def nonnegative_real(x, name: str, what: str = "a finite number >= 0") -> float:
    """A real number (not a string or bool) that is finite and >= 0, or an error naming ``name``."""
    x = real(x, name, what)
    if not x >= 0:
        raise ValueError(f"{name}: expected {what}, got {x!r}")
    return x


def real_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` as a finite float64 array (of ``ndim`` dimensions when given, any length) or an error naming ``name``."""
    if x is None:
        raise TypeError(f"{name}: expected a real array, got None")
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-dimensional array, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite entries, got {float(arr[~np.isfinite(arr)].ravel()[0])!r}")
    return arr
