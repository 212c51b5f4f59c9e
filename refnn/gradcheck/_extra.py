"""The complementary checks: the Taylor-remainder test (GC-TAYLOR) and the contract every
backward function must satisfy whatever it computes (GC-CONTRACT).

Along a unit direction v, r(h) = |f(x + h v) - f(x) - h <g, v>| is O(h^2) when g is the
gradient and O(h) otherwise. A backward maps an upstream gradient dY to input gradients: it
must be linear in dY, map 0 to exactly 0, be deterministic, leave dY and the layer's arrays
alone, and return arrays of the expected shapes and dtypes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from refnn.gradcheck._core import (
    EPS64,
    STREAM_CONTRACT,
    STREAM_TAYLOR,
    AnyArray,
    Float64Array,
    GradFunction,
    NonFiniteError,
    Problem,
    ScalarFunction,
    callable_option,
    seed_option,
)
from refnn.gradcheck._numeric import TAYLOR_STEPS, TAYLOR_THRESHOLD, judge_taylor
from refnn.gradcheck._report import ContractCheck, ContractResult, TaylorDirection, TaylorResult


def run_taylor(
    problem: Problem, gradients: Sequence[Float64Array], f0: float, n_directions: int, seed: int
) -> TaylorResult:
    """Sweep ``n_directions`` random unit directions (the checker's own generator).

    Spec: GC-TAYLOR
    """
    if isinstance(n_directions, bool) or not isinstance(n_directions, int) or n_directions < 1:
        raise ValueError(f"n_directions must be an int >= 1, got {n_directions!r}")
    rng = np.random.default_rng([seed, STREAM_TAYLOR])
    scale = max([1.0] + [float(np.max(np.abs(problem.base[k]), initial=0.0)) for k in problem.wrt])
    steps = tuple(scale * s for s in TAYLOR_STEPS)
    directions: list[TaylorDirection] = []
    for _ in range(n_directions):
        raw = [rng.standard_normal(problem.base[k].shape) for k in problem.wrt]
        norm = math.sqrt(math.fsum(float(np.sum(r * r)) for r in raw))
        if norm == 0.0:
            return TaylorResult(True, TAYLOR_THRESHOLD, (), note="no elements to perturb")
        remainders, floors = [], []
        for h in steps:
            replace: dict[int, Float64Array] = {}
            terms: list[float] = []
            for k, g, r in zip(problem.wrt, gradients, raw, strict=True):
                point = problem.rounded(k, problem.base[k] + h * r / norm)
                replace[k] = point
                terms.extend((g * (point - problem.base[k])).reshape(-1).tolist())
            linear = math.fsum(terms)
            try:
                f_step = problem.value(replace, f"at x + {h:.3g} v (Taylor test)")
            except NonFiniteError:
                remainders.append(math.nan)
                floors.append(math.nan)
                continue
            remainders.append(abs(f_step - f0 - linear))
            spread = abs(f_step) + abs(f0) + math.fsum(abs(t) for t in terms)
            floors.append(problem.eps * spread + problem.noise + EPS64 * len(terms) * abs(linear))
        slope, n_fitted, passed, note = judge_taylor(steps, remainders, floors)
        directions.append(
            TaylorDirection(
                steps=steps,
                remainders=tuple(remainders),
                floors=tuple(floors),
                slope=slope,
                n_fitted=n_fitted,
                passed=passed,
                note=note,
            )
        )
    return TaylorResult(
        passed=all(d.passed for d in directions),
        threshold=TAYLOR_THRESHOLD,
        directions=tuple(directions),
    )


def taylor_test(
    f: ScalarFunction,
    grad: GradFunction,
    inputs: Mapping[str, AnyArray],
    *,
    wrt: Sequence[str] | None = None,
    n_directions: int = 3,
    seed: int = 0,
    allow_float32: bool = False,
) -> TaylorResult:
    """Taylor-remainder test of ``grad`` against ``f``: slope ~2 when right, ~1 when wrong.

    Parameters
    ----------
    f : callable
        Scalar function ``f(*inputs)``.
    grad : callable
        ``grad(*inputs)``: one gradient per input in ``wrt``, in that order.
    inputs : mapping of str to ndarray
        Named inputs, passed positionally in mapping order; never modified.
    wrt : sequence of str, optional
        Inputs to perturb (default: all).
    n_directions : int
        Random unit directions to sweep.
    seed : int
        Seed (>= 0) of the checker's own generator (numpy's global state is not used).
    allow_float32 : bool
        Accept float32 inputs.

    Returns
    -------
    TaylorResult
        Slopes per direction; passed when every judged slope >= 1.8 (GC-TAYLOR).

    Spec: GC-TAYLOR
    """
    callable_option("f", f)
    callable_option("grad", grad)
    problem = Problem(f, grad, inputs, wrt, allow_float32)
    f0 = problem.value({}, "at the given inputs")
    gradients = problem.gradients({}, "at the given inputs")
    problem.measure_noise(f0, seed_option(seed))
    return run_taylor(problem, gradients, f0, n_directions, int(seed))


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
        (
            float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
            for a, b in zip(lhs, rhs, strict=True)
        ),
        default=0.0,
    )
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


def _shape(dY_shape: object) -> tuple[int, ...]:
    """``dY_shape`` as a tuple of ints >= 0; TypeError/ValueError naming what came."""
    if not isinstance(dY_shape, tuple | list):
        raise TypeError(
            f"dY_shape must be a tuple of ints, got {dY_shape!r} ({type(dY_shape).__name__})"
        )
    for s in dY_shape:
        if isinstance(s, bool) or not isinstance(s, int | np.integer):
            raise TypeError(f"dY_shape must hold ints, got {s!r} in {dY_shape!r}")
        if s < 0:
            raise ValueError(f"dY_shape must hold ints >= 0, got {s!r} in {dY_shape!r}")
    return tuple(int(s) for s in dY_shape)


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
    callable_option("backward", backward)
    shape = _shape(dY_shape)
    dtype = np.dtype(dY_dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"dY_dtype must be a floating dtype, got {dtype}")
    if inputs_to_watch is not None and not isinstance(inputs_to_watch, Mapping):
        raise TypeError(
            f"inputs_to_watch must be a mapping from names to arrays, got "
            f"{type(inputs_to_watch).__name__}"
        )
    watched = dict(inputs_to_watch or {})
    for name, a in watched.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"inputs_to_watch[{name!r}] must be a numpy array, got {type(a)}")
    snapshots = {name: np.array(a, copy=True) for name, a in watched.items()}
    rng = np.random.default_rng([seed_option(seed), STREAM_CONTRACT])
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
    checks.append(
        ContractCheck(
            "deterministic",
            same,
            "two calls with the same dY agree bit for bit"
            if same
            else "two calls with the same dY differ (state accumulated between calls?)",
        )
    )

    zero = run(np.zeros(shape, dtype=dtype))
    zero_ok = not isinstance(zero, str) and all(bool(np.all(a == 0)) for a in zero)
    largest = 0 if isinstance(zero, str) else _max_abs(zero)
    detail = "backward(0) == 0 exactly" if zero_ok else f"backward(0) is not 0 (max |.| {largest})"
    checks.append(ContractCheck("zero maps to zero", zero_ok, detail))

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
    checks.append(
        ContractCheck(
            "homogeneous",
            gap <= rtol,
            f"max |backward({LINEARITY_SCALE} dY) - {LINEARITY_SCALE} backward(dY)| / max = "
            f"{gap:.2e} (allowed {rtol:.1e})",
        )
    )
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
    checks.append(
        ContractCheck(
            "additive",
            gap <= rtol,
            f"max |backward(dY1 + dY2) - backward(dY1) - backward(dY2)| / max = {gap:.2e} "
            f"(allowed {rtol:.1e})",
        )
    )
    return checks


def _unchanged(
    run: _Runner, watched: Mapping[str, AnyArray], snapshots: Mapping[str, AnyArray]
) -> list[ContractCheck]:
    checks = [
        ContractCheck(
            "dY unchanged",
            not run.mutated_dy,
            "backward modified its dY argument" if run.mutated_dy else "dY left as passed",
        )
    ]
    changed = [name for name, a in watched.items() if not _same_bits(a, snapshots[name])]
    if watched:
        checks.append(
            ContractCheck(
                "watched arrays unchanged",
                not changed,
                f"modified: {changed}" if changed else f"{sorted(watched)} bit-identical",
            )
        )
    return checks
