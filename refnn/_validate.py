"""Input checks shared by all layers (NOTE-INPUTS).

Every check raises ``ValueError`` or ``TypeError`` naming what was expected and what came.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refnn._types import SUPPORTED_DTYPES, FloatArray


def resolve_dtype(dtype: Any) -> np.dtype[np.floating[Any]]:
    """Return the numpy dtype for ``dtype``, which must be float64 or float32."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype must be float64 or float32, got {dtype!r}") from err
    if resolved not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype must be float64 or float32, got {resolved}")
    out: np.dtype[np.floating[Any]] = resolved
    return out


def positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def float_in(value: object, name: str, low: float, high: float, *, closed_high: bool) -> float:
    """Return ``value`` as a float in [low, high] (or [low, high) when ``closed_high`` is false)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    upper_ok = number <= high if closed_high else number < high
    if not (low <= number and upper_ok and np.isfinite(number)):
        bracket = "]" if closed_high else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")
    return number


def to_dtype(X: FloatArray, dtype: np.dtype[np.floating[Any]], name: str) -> FloatArray:
    """Return X in ``dtype`` (X itself when it already is).

    A finite value beyond the range of ``dtype`` (a float64 array given to a float32 layer)
    raises ValueError naming the range, instead of a numpy overflow warning and an infinity.
    """
    if X.dtype == dtype:
        return X
    with np.errstate(over="ignore"):
        out: FloatArray = X.astype(dtype)
    if np.any(np.isinf(out) & np.isfinite(X)):
        biggest = float(np.max(np.abs(X[np.isfinite(X)])))
        limit = float(np.finfo(dtype).max)
        raise ValueError(
            f"{name} must be within the range of {dtype} (|x| <= {limit:.4g}), "
            f"got values up to {biggest:.4g}"
        )
    return out


def as_input(
    X: object,
    name: str,
    *,
    ndim: int,
    dtype: np.dtype[np.floating[Any]],
    leading: tuple[int | None, ...] | None = None,
) -> FloatArray:
    """Validate an input array and return it in ``dtype`` (a view when no conversion is needed).

    Parameters
    ----------
    X : object
        The array the caller passed.
    name : str
        Its name in error messages.
    ndim : int
        Required rank; the last axis indexes examples (NOTE-AXES) and must be >= 1.
    dtype : numpy.dtype
        The layer's dtype; float inputs are converted to it, others refused.
    leading : tuple of (int or None), optional
        Required sizes of the leading axes (None: any size).
    """
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(X).__name__}")
    if isinstance(X, np.ma.MaskedArray | np.matrix):
        # a mask would be silently ignored, a matrix multiplies and broadcasts differently
        raise TypeError(f"{name} must be a plain numpy array, got {type(X).__name__}")
    if X.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} axes (examples last), got shape {X.shape} with {X.ndim}"
        )
    if not np.issubdtype(X.dtype, np.floating) and not np.issubdtype(X.dtype, np.integer):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if leading is not None:
        expected = (*tuple("*" if s is None else s for s in leading), "m")
        for axis, size in enumerate(leading):
            if size is not None and X.shape[axis] != size:
                raise ValueError(f"{name} must have shape {expected}, got {X.shape}")
    if X.shape[-1] == 0:
        raise ValueError(f"{name} must hold at least one example (m >= 1), got shape {X.shape}")
    out = to_dtype(X, dtype, name)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite, got NaN or Inf")
    return out


def as_examples(X: object, name: str, *, dtype: np.dtype[np.floating[Any]]) -> FloatArray:
    """Validate an array of any rank >= 1 whose last axis indexes examples (see ``as_input``)."""
    if isinstance(X, np.ndarray) and X.ndim == 0:
        raise ValueError(f"{name} must have at least 1 axis (examples last), got a 0-d array")
    ndim: int = X.ndim if isinstance(X, np.ndarray) else 1
    return as_input(X, name, ndim=ndim, dtype=dtype)
