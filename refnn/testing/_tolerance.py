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
    """What was checked: the component, its configuration and the arrays' shapes (refnn layout),
    with the arrays the implementation was given (in its layout) for a rerunnable snippet."""

    kind: str
    name: str
    config: Mapping[str, Any]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    layout: str = "batch_last"
    given: dict[str, Any] = field(default_factory=dict)
    call: str = ""

    def describe(self) -> str:
        config = ", ".join(f"{k}={_short(v)}" for k, v in self.config.items())
        shapes = ", ".join(f"{k} {v}" for k, v in self.shapes.items())
        where = (
            f" (refnn layout, examples last; you were given {self.layout})" if self.layout else ""
        )
        return f"  configuration: {self.name}({config})\n  shapes{where}: {shapes}"

    def snippet(self) -> str:
        """The minimal example as Python to paste and rerun (small arrays as literals)."""
        if not self.given:
            return ""
        lines = ["  rerun it (the arrays as your implementation was given them):"]
        lines.append("    import numpy as np")
        lines.append(f"    config = {_literal(dict(self.config))}")
        for key, value in self.given.items():
            lines.append(f"    {key} = {_literal(value)}")
        if self.call:
            lines.append(f"    {self.call}")
        return "\n" + "\n".join(lines)


#: Arrays up to this many elements are printed as literals in a snippet.
LITERAL_SIZE = 64


def _literal(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size > LITERAL_SIZE:
            return f"...  # a {value.dtype} array of shape {value.shape}: too large to print"
        if value.dtype == np.bool_:
            return f"np.array({value.tolist()!r})"
        # Python floats print the shortest repr that reads back to the same value (float32 too)
        return f"np.array({value.tolist()!r}, dtype=np.{value.dtype.name})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


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


def _unit(index: tuple[int, ...], rows: int, units: tuple[str, ...]) -> str:
    """Name the row block (an LSTM's gate) of ``index``: "forget gate f, unit 0"."""
    if not units or not index or rows % len(units):
        return ""
    size = rows // len(units)
    return f" ({units[index[0] // size]}, unit {index[0] % size})"


def judge(
    quantity: str,
    got: object,
    ref: FloatArray,
    *,
    K: int,
    M: FloatArray | float,
    scale_text: str,
    dtype: np.dtype[Any],
    allowed: float = 0.0,
    units: tuple[str, ...] = (),
) -> str:
    """What is wrong with ``got`` against ``ref`` within TEST-TOL ("" if nothing).

    ``allowed``: a tolerance the caller accepts, |error| <= allowed max(1, |ref|), used where it
    is above TEST-TOL's bound (never below it).
    """
    try:
        arr = np.asarray(got)
        if arr.dtype.kind == "c":
            return (
                f"  {quantity} is a complex array (dtype {arr.dtype}): a real float array expected"
            )
        if arr.dtype.kind not in "fiub":
            return f"  {quantity} is not a float array (dtype {arr.dtype})"
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        return f"  {quantity} is not a float array: {exc}"
    ref = np.asarray(ref, dtype=np.float64)
    if arr.shape != ref.shape:
        return f"  {quantity} has shape {arr.shape} (refnn layout), refnn's has {ref.shape}"
    bound = np.broadcast_to(tolerance(dtype, K, M), ref.shape)
    if allowed:
        bound = np.maximum(bound, allowed * np.maximum(1.0, np.abs(ref)))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(arr - ref)
        err = np.where(np.isfinite(arr), err, np.inf)
        ratio = np.where(err > bound, err / np.maximum(bound, np.finfo(np.float64).tiny), 0.0)
    if ref.size == 0 or not np.any(ratio > 0):
        return ""
    worst = np.unravel_index(int(np.argmax(ratio)), ref.shape)
    u = float(np.finfo(dtype).eps) / 2
    bad = int(np.count_nonzero(ratio))
    rule = (
        f"  tolerance (TEST-TOL): 8 u K M + K tiny with u = {u:.3g} ({np.dtype(dtype).name}), "
        f"K = {K}, M = {float(np.broadcast_to(np.asarray(M), ref.shape)[worst]):.3g} "
        f"({scale_text})"
        + (f"; or the accepted tolerance {allowed:.3g} max(1, |refnn|)" if allowed else "")
    )
    values = (
        f"implementation {float(arr[worst])!r}, refnn {float(ref[worst])!r}, "
        f"|error| {err[worst]:.3g} > tolerance {bound[worst]:.3g}"
    )
    if ref.ndim == 0:
        return f"  {quantity}: {values}\n{rule}"
    index = ", ".join(str(int(i)) for i in worst)
    rows = ref.shape[0]
    return (
        f"  worst element [{index}]{_unit(tuple(int(i) for i in worst), rows, units)} of "
        f"{quantity} (refnn layout): {values} ({bad} of {ref.size} elements outside)\n{rule}"
    )


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
    allowed: float = 0.0,
) -> None:
    """Raise MismatchError naming the worst element if ``got`` is not within TEST-TOL of ``ref``."""
    text = judge(quantity, got, ref, K=K, M=M, scale_text=scale_text, dtype=dtype, allowed=allowed)
    if text:
        raise MismatchError(
            f"{example.name}: {quantity} disagrees with refnn (spec {spec})\n"
            f"{example.describe()}\n{text}{example.snippet()}"
        )
