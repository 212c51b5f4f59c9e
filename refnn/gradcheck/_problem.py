"""Validated inputs and counted, side-effect-free calls of ``f`` and ``grad`` (GC-INPUTS).

The caller's arrays are never passed to ``f`` or ``grad``: every call receives read-only copies
in the caller's dtypes, with at most one input replaced by a perturbed copy. Perturbations are
computed in float64 and rounded to the input's dtype; the checker then uses the rounded value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn.gradcheck._numeric import ATOL_FLOAT64, H0_FLOAT64, RTOL_FLOAT64, widening
from refnn.gradcheck._types import EPS64, AnyArray, Float64Array, GradFunction, ScalarFunction


class NonFiniteError(ValueError):
    """``f`` returned NaN or Inf at a perturbed point."""


def _frozen(array: AnyArray) -> AnyArray:
    out: AnyArray = np.array(array, copy=True)
    out.flags.writeable = False
    return out


def resolve_wrt(inputs: Mapping[str, AnyArray], wrt: Sequence[str] | None) -> tuple[str, ...]:
    """Return the checked names (default: all), refusing unknown or repeated names."""
    if isinstance(wrt, str):
        raise TypeError(f"wrt must be a sequence of input names, got the string {wrt!r}")
    names = tuple(inputs) if wrt is None else tuple(wrt)
    if not names:
        raise ValueError("wrt is empty: name at least one input to check")
    for name in names:
        if name not in inputs:
            raise ValueError(f"wrt names {name!r}, which is not an input; inputs: {list(inputs)}")
    if len(set(names)) != len(names):
        raise ValueError(f"wrt names an input twice: {list(names)}")
    return names


def validate_inputs(
    inputs: Mapping[str, AnyArray], wrt: tuple[str, ...], allow_float32: bool
) -> None:
    """Check types, dtypes and finiteness (GC-INPUTS); raise TypeError or ValueError."""
    if not isinstance(inputs, Mapping) or not inputs:
        raise TypeError("inputs must be a non-empty mapping from names to numpy arrays")
    for name, array in inputs.items():
        if not isinstance(array, np.ndarray):
            raise TypeError(f"input {name!r} must be a numpy array, got {type(array).__name__}")
        if name in wrt:
            if not np.issubdtype(array.dtype, np.floating):
                raise TypeError(
                    f"input {name!r} is checked (in wrt) and must hold floats, got dtype "
                    f"{array.dtype}"
                )
            if array.dtype != np.float64 and not allow_float32:
                raise TypeError(
                    f"input {name!r} has dtype {array.dtype}; the gradient checker needs float64 "
                    "(pass x.astype(np.float64), or allow_float32=True for wider tolerances)"
                )
        if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
            raise ValueError(f"input {name!r} contains NaN or Inf")


def as_scalar(value: object, where: str) -> tuple[float, float]:
    """Return ``(float(value), eps of its precision)``; refuse non-scalars and NaN/Inf."""
    eps = EPS64
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"f must return a scalar, got an array of shape {value.shape} {where}")
        value = value.reshape(())[()]
    if isinstance(value, np.generic) and not isinstance(value, np.floating | np.integer):
        raise TypeError(f"f must return a real number, got {value.dtype} {where}")
    if isinstance(value, np.floating):
        eps = max(eps, float(np.finfo(type(value)).eps))
    if isinstance(value, complex) or not isinstance(value, float | int | np.generic):
        raise TypeError(f"f must return a real number, got {type(value).__name__} {where}")
    number = float(value)
    if not np.isfinite(number):
        raise NonFiniteError(f"f returned {number} {where}")
    return number, eps


@dataclass
class Problem:
    """Everything one check needs: the function, the gradient, copies of the inputs."""

    f: ScalarFunction
    grad: GradFunction | None
    names: tuple[str, ...]
    frozen: tuple[AnyArray, ...]
    wrt: tuple[int, ...]
    base: dict[int, Float64Array]
    f_calls: int = 0
    grad_calls: int = 0
    eps: float = EPS64

    @classmethod
    def build(
        cls,
        f: ScalarFunction,
        grad: GradFunction | None,
        inputs: Mapping[str, AnyArray],
        wrt: Sequence[str] | None,
        allow_float32: bool,
    ) -> Problem:
        """Validate ``inputs`` and copy them; the caller's arrays are not kept."""
        checked = resolve_wrt(inputs, wrt) if isinstance(inputs, Mapping) else ()
        validate_inputs(inputs, checked, allow_float32)
        names = tuple(inputs)
        positions = tuple(names.index(name) for name in checked)
        frozen = tuple(_frozen(inputs[name]) for name in names)
        base = {k: np.array(frozen[k], dtype=np.float64, copy=True) for k in positions}
        eps = max([EPS64] + [float(np.finfo(frozen[k].dtype).eps) for k in positions])
        return cls(f=f, grad=grad, names=names, frozen=frozen, wrt=positions, base=base, eps=eps)

    def dtype(self, k: int) -> np.dtype[Any]:
        """The caller's dtype of input ``k``."""
        return self.frozen[k].dtype

    def h0(self, k: int) -> float:
        """Base step of input ``k`` (GC-STEP)."""
        return H0_FLOAT64 * widening(self.frozen[k].dtype)

    def tolerances(self, k: int, rtol: float | None, atol: float | None) -> tuple[float, float]:
        """``(rtol, atol)`` for input ``k``: the caller's, or the defaults widened per dtype."""
        wide = widening(self.frozen[k].dtype)
        return (
            RTOL_FLOAT64 * wide if rtol is None else rtol,
            ATOL_FLOAT64 * wide if atol is None else atol,
        )

    def rounded(self, k: int, x: Float64Array) -> Float64Array:
        """``x`` rounded to input ``k``'s dtype and back to float64 (exact for float64)."""
        out: Float64Array = x.astype(self.dtype(k)).astype(np.float64)
        return out

    def _args(self, replace: Mapping[int, Float64Array]) -> list[AnyArray]:
        args = list(self.frozen)
        for k, x in replace.items():
            args[k] = _frozen(x.astype(self.dtype(k)))
        return args

    def value(self, replace: Mapping[int, Float64Array], where: str = "") -> float:
        """``f`` with the inputs in ``replace`` (position -> float64 values) substituted."""
        self.f_calls += 1
        number, eps = as_scalar(self.f(*self._args(replace)), where)
        self.eps = max(self.eps, eps)
        return number

    def gradients(self, replace: Mapping[int, Float64Array], where: str = "") -> list[Float64Array]:
        """The analytic gradients (one per checked input), validated and in float64."""
        if self.grad is None:
            raise RuntimeError("this check has no analytic gradient")
        self.grad_calls += 1
        out = self.grad(*self._args(replace))
        return self.validate_gradients(out, where)

    def validate_gradients(self, out: object, where: str = "") -> list[Float64Array]:
        """Check count, shapes and finiteness of ``grad``'s output (GC-INPUTS)."""
        checked = [self.names[k] for k in self.wrt]
        if isinstance(out, np.ndarray) or not isinstance(out, Sequence):
            raise TypeError(
                f"grad must return a sequence of arrays, one per input in wrt {checked}, got "
                f"{type(out).__name__} (wrap a single gradient in a tuple)"
            )
        if len(out) != len(self.wrt):
            raise ValueError(
                f"grad returned {len(out)} arrays, expected {len(self.wrt)} (one per input in "
                f"wrt {checked}, in that order)"
            )
        result: list[Float64Array] = []
        for k, g in zip(self.wrt, out, strict=True):
            name = self.names[k]
            if isinstance(g, np.generic):
                g = np.asarray(g)  # numpy ufuncs return scalars for 0-d inputs
            if not isinstance(g, np.ndarray):
                raise TypeError(f"gradient for {name!r} must be a numpy array, got {type(g)}")
            expected: tuple[int, ...] = self.frozen[k].shape
            actual: tuple[int, ...] = g.shape
            if actual != expected:
                raise ValueError(
                    f"gradient for {name!r} has shape {actual}, expected {expected} (the shape "
                    f"of {name!r})"
                )
            if not np.issubdtype(g.dtype, np.floating) and not np.issubdtype(g.dtype, np.integer):
                raise TypeError(f"gradient for {name!r} must be real, got dtype {g.dtype}")
            g64: Float64Array = np.array(g, dtype=np.float64, copy=True)
            if not np.all(np.isfinite(g64)):
                raise ValueError(f"gradient for {name!r} contains NaN or Inf {where}".rstrip())
            result.append(g64)
        return result
