"""Argument and input checks shared by all of refnn (NOTE-INPUTS).

Every check raises ``ValueError`` or ``TypeError`` naming what was expected and what came, before
any work is done.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from refnn.types import SUPPORTED_DTYPES, FloatArray

IntPair = tuple[int, int]


def resolve_dtype(dtype: object) -> np.dtype[np.floating[Any]]:
    """Return the numpy dtype for ``dtype``, which must be float64 or float32."""
    candidate: Any = dtype  # any object may come; np.dtype says which are dtypes
    try:
        resolved = np.dtype(candidate)
    except TypeError as err:
        raise TypeError(f"dtype must be float64 or float32, got {dtype!r}") from err
    if resolved not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype must be float64 or float32, got {resolved}")
    out: np.dtype[np.floating[Any]] = resolved
    return out


def as_bool(value: object, name: str) -> bool:
    """Return ``value`` if it is a bool (a numpy bool too); a truthy string or array is refused."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def as_pair(value: object, name: str, *, minimum: int) -> IntPair:
    """Return ``value`` as an (int, int) pair: an int means the same on both axes.

    Only an int or a tuple/list of two ints is a pair (bools, bytes, strings and ranges are not).
    """
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (
            positive_int(value[0], name, minimum=minimum),
            positive_int(value[1], name, minimum=minimum),
        )
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    one = positive_int(value, name, minimum=minimum)
    return one, one


def check_groups(groups: object, in_channels: int, out_channels: int) -> int:
    """``groups`` as an int >= 1 dividing both channel counts (ValueError naming them)."""
    g = positive_int(groups, "groups")
    if in_channels % g or out_channels % g:
        raise ValueError(
            f"groups must divide in_channels and out_channels, got groups={g} for "
            f"in_channels={in_channels} and out_channels={out_channels}"
        )
    return g


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


def check_rng(rng: object) -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator`` (NOTE-RNG), else raise TypeError."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def memory_bytes() -> int:
    """The machine's physical memory in bytes (a generous 2**40 where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**40


def check_allocatable(shape: tuple[int, ...], dtype: np.dtype[Any], name: str) -> None:
    """Refuse an array that cannot be allocated on this machine, before numpy tries.

    Raises ValueError naming ``name``, the shape and its size when the array would need more
    than the physical memory (numpy would raise MemoryError, or "maximum dimension exceeded").
    """
    size = math.prod(shape) * dtype.itemsize
    if size > memory_bytes():
        raise ValueError(
            f"{name} of shape {shape} ({dtype}) needs {size / 2**30:.4g} GiB, more than this "
            f"machine's {memory_bytes() / 2**30:.4g} GiB of memory"
        )


class FloatRangeError(ValueError, FloatingPointError):
    """A result beyond its dtype's range: a ValueError to the caller, and a FloatingPointError
    like numpy's ``errstate(over="raise")``, so ``fit`` reports it as a divergence."""


def refuse_overflow(out: FloatArray, what: str) -> FloatArray:
    """Return ``out`` if it is finite; else the exact result lies beyond its dtype's range.

    Compute ``out`` under ``np.errstate(over="ignore", invalid="ignore")`` from finite inputs,
    then call this: an infinity (or the NaN of inf - inf) means an overflow, reported as a
    ValueError naming ``what`` and the range, never a RuntimeWarning and an inf.
    """
    if not np.all(np.isfinite(out)):
        limit = float(np.finfo(out.dtype).max)
        raise FloatRangeError(
            f"{what} overflows {out.dtype} (|x| <= {limit:.4g}): the inputs are too large "
            "for it to be represented; scale them down"
        )
    return out


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


def _layout_hint(shape: tuple[int, ...], size: int) -> str:
    """Say so when an array looks batch-first: the expected leading size sits on axis 1 or last."""
    if len(shape) >= 2 and size in (shape[1], shape[-1]):
        order = (*range(1, len(shape)), 0)
        return (
            f"; it looks batch-first (examples on axis 0): refnn takes examples on the LAST "
            f"axis, e.g. X.transpose{order}"
        )
    return ""


def as_input(
    X: object,
    name: str,
    *,
    dtype: np.dtype[np.floating[Any]],
    ndim: int | None = None,
    min_ndim: int = 1,
    leading: tuple[int | None, ...] = (),
    layout: str = "",
    finite: bool = True,
) -> FloatArray:
    """Validate an input array and return it in ``dtype`` (X itself when no conversion is needed).

    Parameters
    ----------
    X : object
        The array the caller passed; it must hold real numbers (float, int or uint; bool,
        complex, timedelta, datetime and object arrays are refused).
    name : str
        Its name in error messages.
    dtype : numpy.dtype
        The layer's dtype; the input is converted to it.
    ndim : int, optional
        Required rank. Without it, any rank >= ``min_ndim``. The last axis indexes examples
        (NOTE-AXES) and must hold at least one.
    min_ndim : int, default 1
    leading : tuple of (int or None), optional
        Required sizes of the leading axes (None: any size).
    layout : str, optional
        The axes' names for messages, e.g. ``"C x H x W x m"``.
    finite : bool, default True
        False leaves the finiteness test to the caller, who must then call
        ``refuse_nonfinite`` unless its result proves every element finite.
    """
    axes = f"{layout}, examples last" if layout else "examples last"
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(X).__name__}")
    if isinstance(X, np.ma.MaskedArray | np.matrix):
        # a mask would be silently ignored, a matrix multiplies and broadcasts differently
        raise TypeError(f"{name} must be a plain numpy array, got {type(X).__name__}")
    if ndim is not None and X.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} axes ({axes}), got shape {X.shape} with {X.ndim}"
        )
    if X.ndim < min_ndim:
        got = "a 0-d array" if X.ndim == 0 else f"shape {X.shape}"
        plural = "axis" if min_ndim == 1 else "axes"
        raise ValueError(f"{name} must have at least {min_ndim} {plural} ({axes}), got {got}")
    if X.dtype.kind not in "fiu":
        raise TypeError(
            f"{name} must hold real numbers, got dtype {X.dtype} (float or int expected)"
        )
    names = layout.split(" x ") if layout else [f"axis {i}" for i in range(X.ndim)]
    for axis, size in enumerate(leading):
        if size is not None and X.shape[axis] != size:
            hint = _layout_hint(X.shape, size) if axis == 0 else ""
            raise ValueError(
                f"{name} must have {names[axis]} = {size} on axis {axis} ({axes}), "
                f"got {X.shape[axis]} (shape {X.shape}){hint}"
            )
    if X.shape[-1] == 0:
        raise ValueError(f"{name} must hold at least one example (m >= 1), got shape {X.shape}")
    out = to_dtype(X, dtype, name)
    if finite:
        refuse_nonfinite(out, name)
    return out


#: What an input with a class axis must have (Softmax's Z, a categorical loss's A).
CLASSES = "have at least one class (k >= 1 on axis 0, the class axis)"


def check_classes(X: FloatArray, name: str) -> FloatArray:
    """Return X if its class axis (axis 0) holds at least one class, else raise ValueError."""
    if X.shape[0] == 0:
        raise ValueError(f"{name} must {CLASSES}, got shape {X.shape}")
    return X


def refuse_nonfinite(X: npt.NDArray[Any], name: str, hint: str = "") -> None:
    """ValueError naming ``name`` (and ``hint``) if X holds a NaN or an infinity."""
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} must be finite, got NaN or Inf{hint}")


def column_sums_one(name: str, X: FloatArray, tol: float, hint: str = "") -> None:
    """Raise ValueError unless every column of X (summed over axis 0) is 1 within ``tol``."""
    sums = X.sum(axis=0)
    off = np.abs(sums - 1.0) > tol
    if np.any(off):
        first = tuple(int(i) for i in np.argwhere(off)[0])
        raise ValueError(
            f"each column of {name} (axis 0 is the class axis) must sum to 1"
            f"{'' if tol == 0 else f' within {tol:.3g}'}; column {first} sums to {sums[first]}"
            + hint
        )


def check_labels(
    Y: object, shape: tuple[int, ...], dtype: np.dtype[Any], *, soft: bool, columns: bool
) -> FloatArray:
    """Return labels Y as ``dtype`` after checking their shape and values.

    Hard labels must be in {0, 1}, soft ones in [0, 1]. With ``columns`` (categorical losses)
    each column must also be a distribution: exactly one 1 (one-hot) for hard labels, a sum of
    1 within sqrt(eps) of ``dtype`` for soft ones.
    """
    Y_arr = as_input(Y, "Y", ndim=len(shape), dtype=dtype)
    if Y_arr.shape != shape:
        raise ValueError(f"Y must have the prediction's shape {shape}, got {Y_arr.shape}")
    bad = (Y_arr < 0) | (Y_arr > 1) if soft else (Y_arr != 0) & (Y_arr != 1)
    if np.any(bad):
        allowed = "[0, 1]" if soft else "{0, 1}" + (" (one-hot columns)" if columns else "")
        raise ValueError(f"Y must hold labels in {allowed}, got values such as {Y_arr[bad][:3]}")
    if columns:
        tol = float(np.sqrt(np.finfo(dtype).eps)) if soft else 0.0
        hint = "" if soft else " (one-hot expected); pass soft_labels=True for probability targets"
        column_sums_one("Y", Y_arr, tol, hint)
    return Y_arr


def as_list(value: object, name: str, what: str) -> list[Any]:
    """``value`` as a list, refusing what is not a list-like of items (None, a str, one item)."""
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of {what}, got {type(value).__name__}")
    return list(value)


def instance_of(value: object, cls: type, name: str, example: str) -> None:
    """Raise TypeError unless ``value`` is an instance of ``cls`` (a class itself is refused)."""
    if not isinstance(value, cls):
        came = f"the class {value.__name__}" if isinstance(value, type) else type(value).__name__
        raise TypeError(
            f"{name} must be a refnn {cls.__name__} instance such as {example}, got {came}"
        )
