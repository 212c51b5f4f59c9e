"""The kit's comparison: one quantity of an implementation against refnn's (TEST-TOL).

Every quantity (an output, an input gradient, a parameter gradient, a cost, parameters after
optimizer steps) is compared element-wise with

    |q - q_ref| <= 8 u K M + K tiny

u the unit roundoff of the dtype under test, K the length of the longest sum behind one element
(1 for element-wise maps), M the element's magnitude scale (TEST-TOL-ABS, TEST-TOL-TERMS) and
tiny the smallest normal number (room for underflow). The reference is computed in float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refnn.types import FloatArray

SAFETY = 8.0


class MismatchError(AssertionError):
    """An implementation disagrees with refnn beyond the tolerance of TEST-TOL."""


@dataclass
class Example:
    """What was checked: the component, its configuration and the arrays' shapes (refnn layout)."""

    kind: str
    name: str
    config: Mapping[str, Any]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    layout: str = "batch_last"

    def describe(self) -> str:
        config = ", ".join(f"{k}={_short(v)}" for k, v in self.config.items())
        shapes = ", ".join(f"{k} {v}" for k, v in self.shapes.items())
        where = (
            f" (refnn layout, examples last; you were given {self.layout})" if self.layout else ""
        )
        return f"  configuration: {self.name}({config})\n  shapes{where}: {shapes}"


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"<{value.dtype} array {value.shape}>"
    return repr(value)


def tolerance(dtype: np.dtype[Any], K: int, M: FloatArray | float) -> FloatArray:
    """The bound of TEST-TOL for a sum of length K of terms of magnitude M.

    Notes
    -----
    Spec: TEST-TOL

    tol = 8 u K M + K tiny, u = eps(dtype) / 2, tiny = smallest normal of dtype.
    """
    info = np.finfo(dtype)
    u = float(info.eps) / 2.0
    return SAFETY * u * K * np.asarray(M, dtype=np.float64) + K * float(info.tiny)


def compare(
    example: Example,
    quantity: str,
    spec: str,
    got: object,
    ref: FloatArray,
    *,
    K: int,
    M: FloatArray | float,
    scale_text: str,
    dtype: np.dtype[Any],
) -> None:
    """Raise MismatchError naming the worst element if ``got`` is not within TEST-TOL of ``ref``."""
    head = f"{example.name}: {quantity} disagrees with refnn (spec {spec})\n{example.describe()}\n"
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MismatchError(f"{head}  {quantity} is not a float array: {exc}") from None
    ref = np.asarray(ref, dtype=np.float64)
    if arr.shape != ref.shape:
        raise MismatchError(
            f"{head}  {quantity} has shape {arr.shape} (refnn layout), refnn's has {ref.shape}"
        )
    bound = np.broadcast_to(tolerance(dtype, K, M), ref.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(arr - ref)
        err = np.where(np.isfinite(arr), err, np.inf)
        ratio = np.where(err > bound, err / np.maximum(bound, np.finfo(np.float64).tiny), 0.0)
    if ref.size == 0 or not np.any(ratio > 0):
        return
    worst = np.unravel_index(int(np.argmax(ratio)), ref.shape)
    index = ", ".join(str(int(i)) for i in worst)
    u = float(np.finfo(dtype).eps) / 2
    bad = int(np.count_nonzero(ratio))
    raise MismatchError(
        f"{head}"
        f"  worst element [{index}] of {quantity} (refnn layout): "
        f"implementation {float(arr[worst])!r}, refnn {float(ref[worst])!r}, "
        f"|error| {err[worst]:.3g} > tolerance {bound[worst]:.3g} "
        f"({bad} of {ref.size} elements outside)\n"
        f"  tolerance (TEST-TOL): 8 u K M + K tiny with u = {u:.3g} ({np.dtype(dtype).name}), "
        f"K = {K}, M = {float(np.broadcast_to(np.asarray(M), ref.shape)[worst]):.3g} "
        f"({scale_text})"
    )
