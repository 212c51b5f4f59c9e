"""Properties every backward function must have, whatever it computes (GC-CONTRACT).

A backward maps an upstream gradient dY to input gradients. It must be linear in dY, map 0 to
exactly 0, be deterministic, leave dY and the layer's arrays alone, and return arrays of the
expected shapes and dtypes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from refnn.gradcheck._report import ContractCheck, ContractResult
from refnn.gradcheck._types import EPS64, STREAM_CONTRACT, AnyArray

#: backward(a dY) is compared with a backward(dY) for this a (negative, not a power of two).
LINEARITY_SCALE = -1.5
#: Relative linearity tolerance for float64 outputs (times eps_dtype / eps_float64 otherwise).
LINEARITY_RTOL = 1e-12

Backward = Callable[[AnyArray], Sequence[AnyArray] | AnyArray]


def _as_arrays(out: object) -> tuple[AnyArray, ...] | str:
    """The outputs as a tuple of array copies, or a description of what came instead."""
    items = (out,) if isinstance(out, np.ndarray) else out
    if not isinstance(items, Sequence) or isinstance(items, str):
        return f"backward returned {type(out).__name__}, not an array or a sequence of arrays"
    arrays: list[AnyArray] = []
    for n, item in enumerate(items):
        if not isinstance(item, np.ndarray):
            return f"output {n} is {type(item).__name__}, not a numpy array"
        arrays.append(np.array(item, copy=True))
    return tuple(arrays)


def _same_bits(a: AnyArray, b: AnyArray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _max_abs(arrays: Sequence[AnyArray]) -> float:
    return max((float(np.max(np.abs(a), initial=0.0)) for a in arrays), default=0.0)


def _linear_gap(lhs: Sequence[AnyArray], rhs: Sequence[AnyArray], scale: float) -> float:
    """``max |lhs - rhs| / scale`` over all outputs (0 when everything is 0)."""
    gap = max(
        (float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
         for a, b in zip(lhs, rhs, strict=True)),
        default=0.0,
    )  # fmt: skip
    if scale == 0.0:
        return 0.0 if gap == 0.0 else float("inf")
    return gap / scale


class _Runner:
    """Calls backward on fresh copies and records whether it modified its argument."""

    def __init__(self, backward: Backward) -> None:
        self.backward = backward
        self.mutated_dy = False

    def __call__(self, dy: AnyArray) -> tuple[AnyArray, ...] | str:
        argument = np.array(dy, copy=True)
        out = self.backward(argument)
        arrays = _as_arrays(out)
        if not _same_bits(argument, dy):
            self.mutated_dy = True
        return arrays


def check_backward_contract(
    backward: Backward,
    dY_shape: tuple[int, ...],
    *,
    seed: int = 0,
    expected_shapes: Sequence[tuple[int, ...]] | None = None,
    expected_dtypes: Sequence[npt.DTypeLike] | None = None,
    inputs_to_watch: Mapping[str, AnyArray] | None = None,
    dY_dtype: npt.DTypeLike = np.float64,
) -> ContractResult:
    """Check the contract of a backward function ``backward(dY) -> gradient(s)``.

    Parameters
    ----------
    backward : callable
        ``backward(dY)`` returning an array or a sequence of arrays.
    dY_shape : tuple of int
        Shape of the upstream gradient.
    seed : int
        Seed of the checker's own generator for the random dY (global state untouched).
    expected_shapes, expected_dtypes : sequence, optional
        The shapes and dtypes the outputs must have, in order (count included).
    inputs_to_watch : mapping of str to ndarray, optional
        Arrays (parameters, caches, the forward input) that must be bit-identical afterwards.
    dY_dtype : dtype
        dtype of the upstream gradients passed to ``backward``.

    Returns
    -------
    ContractResult
        One :class:`ContractCheck` per property: returns arrays, shapes, dtypes, finite,
        deterministic, zero maps to zero, homogeneous, additive, dY unchanged, watched arrays
        unchanged.

    Spec: GC-CONTRACT
    """
    dtype = np.dtype(dY_dtype)
    shape = tuple(int(s) for s in dY_shape)
    watched = dict(inputs_to_watch or {})
    snapshots = {name: np.array(a, copy=True) for name, a in watched.items()}
    rng = np.random.default_rng([int(seed), STREAM_CONTRACT])
    dy = rng.standard_normal(shape).astype(dtype)
    run = _Runner(backward)
    checks: list[ContractCheck] = []

    first = run(dy)
    if isinstance(first, str):
        checks.append(ContractCheck("returns arrays", False, first))
        return ContractResult(tuple(checks + _unchanged(run, watched, snapshots)))
    checks.append(ContractCheck("returns arrays", True, f"{len(first)} array(s)"))
    checks.extend(_shapes_and_dtypes(first, expected_shapes, expected_dtypes))
    finite = all(bool(np.all(np.isfinite(a))) for a in first if np.issubdtype(a.dtype, np.inexact))
    checks.append(ContractCheck("finite", finite, "all outputs finite" if finite else "NaN/Inf"))

    second = run(dy)
    same = (
        not isinstance(second, str)
        and len(second) == len(first)
        and all(_same_bits(a, b) for a, b in zip(first, second, strict=True))
    )
    checks.append(ContractCheck(
        "deterministic", same,
        "two calls with the same dY agree bit for bit" if same
        else "two calls with the same dY differ (state accumulated between calls?)",
    ))  # fmt: skip

    zero = run(np.zeros(shape, dtype=dtype))
    zero_ok = not isinstance(zero, str) and all(bool(np.all(a == 0)) for a in zero)
    checks.append(ContractCheck(
        "zero maps to zero", zero_ok,
        "backward(0) == 0 exactly" if zero_ok
        else f"backward(0) is not 0 (max |.| {_max_abs(zero) if not isinstance(zero, str) else 0})",
    ))  # fmt: skip

    checks.extend(_linearity(run, dy, first, rng))
    checks.extend(_unchanged(run, watched, snapshots))
    return ContractResult(tuple(checks))


def _shapes_and_dtypes(
    outputs: tuple[AnyArray, ...],
    expected_shapes: Sequence[tuple[int, ...]] | None,
    expected_dtypes: Sequence[npt.DTypeLike] | None,
) -> list[ContractCheck]:
    checks: list[ContractCheck] = []
    actual_shapes = [tuple(int(s) for s in a.shape) for a in outputs]
    if expected_shapes is not None:
        wanted = [tuple(int(s) for s in e) for e in expected_shapes]
        ok = wanted == actual_shapes
        checks.append(ContractCheck("shapes", ok, f"expected {wanted}, got {actual_shapes}"))
    if expected_dtypes is not None:
        wanted_d = [str(np.dtype(d)) for d in expected_dtypes]
        actual_d = [str(a.dtype) for a in outputs]
        ok = wanted_d == actual_d
        checks.append(ContractCheck("dtypes", ok, f"expected {wanted_d}, got {actual_d}"))
    return checks


def _linearity(
    run: _Runner, dy: AnyArray, base: tuple[AnyArray, ...], rng: np.random.Generator
) -> list[ContractCheck]:
    """Homogeneity and additivity, each to LINEARITY_RTOL relative (scaled per dtype)."""
    out_eps = max(
        [EPS64]
        + [float(np.finfo(a.dtype).eps) for a in base if np.issubdtype(a.dtype, np.floating)]
    )
    rtol = LINEARITY_RTOL * out_eps / EPS64
    checks: list[ContractCheck] = []
    scaled = run((LINEARITY_SCALE * dy.astype(np.float64)).astype(dy.dtype))
    if isinstance(scaled, str) or len(scaled) != len(base):
        return [ContractCheck("homogeneous", False, "backward(a dY) returned different outputs")]
    expected = [LINEARITY_SCALE * b.astype(np.float64) for b in base]
    gap = _linear_gap(scaled, expected, max(_max_abs(scaled), _max_abs(expected)))
    checks.append(ContractCheck(
        "homogeneous", gap <= rtol,
        f"max |backward({LINEARITY_SCALE} dY) - {LINEARITY_SCALE} backward(dY)| / max = "
        f"{gap:.2e} (allowed {rtol:.1e})",
    ))  # fmt: skip
    dy2 = rng.standard_normal(dy.shape).astype(dy.dtype)
    other = run(dy2)
    summed = run((dy.astype(np.float64) + dy2.astype(np.float64)).astype(dy.dtype))
    if (
        isinstance(other, str)
        or isinstance(summed, str)
        or len(other) != len(base)
        or len(summed) != len(base)
    ):
        return [*checks, ContractCheck("additive", False, "backward returned different outputs")]
    expected = [
        a.astype(np.float64) + b.astype(np.float64) for a, b in zip(base, other, strict=True)
    ]
    gap = _linear_gap(summed, expected, max(_max_abs(base), _max_abs(other)))
    checks.append(ContractCheck(
        "additive", gap <= rtol,
        f"max |backward(dY1 + dY2) - backward(dY1) - backward(dY2)| / max = {gap:.2e} "
        f"(allowed {rtol:.1e})",
    ))  # fmt: skip
    return checks


def _unchanged(
    run: _Runner, watched: Mapping[str, AnyArray], snapshots: Mapping[str, AnyArray]
) -> list[ContractCheck]:
    checks = [ContractCheck(
        "dY unchanged", not run.mutated_dy,
        "backward modified its dY argument" if run.mutated_dy else "dY left as passed",
    )]  # fmt: skip
    changed = [name for name, a in watched.items() if not _same_bits(a, snapshots[name])]
    if watched:
        checks.append(ContractCheck(
            "watched arrays unchanged", not changed,
            f"modified: {changed}" if changed else f"{sorted(watched)} bit-identical",
        ))  # fmt: skip
    return checks
