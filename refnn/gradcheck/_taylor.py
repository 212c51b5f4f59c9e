"""The Taylor-remainder test: a step-size-free check of a gradient (GC-TAYLOR).

Along a unit direction v, r(h) = |f(x + h v) - f(x) - h <g, v>| is O(h^2) when g is the
gradient and O(h) otherwise; the slope of log r against log h tells which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from refnn.gradcheck._problem import Problem
from refnn.gradcheck._report import TaylorDirection, TaylorResult
from refnn.gradcheck._types import (
    EPS64,
    STREAM_TAYLOR,
    AnyArray,
    Float64Array,
    GradFunction,
    ScalarFunction,
)

#: A direction passes when its fitted slope is at least this.
TAYLOR_THRESHOLD = 1.8
#: Step sizes, relative to max(1, max |x|): 13 geometric steps from 1e-1 down to 1e-4.
TAYLOR_STEPS = tuple(10.0 ** (-1.0 - 3.0 * i / 12.0) for i in range(13))
#: A remainder is fitted only when above TAYLOR_MARGIN times its rounding floor.
TAYLOR_MARGIN = 1000.0
#: The slope is fitted over (at most) this many of the smallest steps above the floor.
TAYLOR_FIT_POINTS = 5


def fit_slope(steps: Sequence[float], remainders: Sequence[float]) -> float:
    """Least-squares slope of log r against log h.

    Spec: GC-TAYLOR
    """
    xs = [math.log(h) for h in steps]
    ys = [math.log(r) for r in remainders]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((a - mx) ** 2 for a in xs)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sxx


def sweep(
    problem: Problem,
    gradients: Sequence[Float64Array],
    f_centre: float,
    direction: Sequence[Float64Array],
) -> TaylorDirection:
    """The remainder sweep along one unit direction (one array per checked input).

    Spec: GC-TAYLOR
    """
    scale = max([1.0] + [float(np.max(np.abs(problem.base[k]), initial=0.0)) for k in problem.wrt])
    steps = tuple(scale * s for s in TAYLOR_STEPS)
    remainders: list[float] = []
    floors: list[float] = []
    for h in steps:
        replace: dict[int, Float64Array] = {}
        linear_terms: list[float] = []
        for k, g, v in zip(problem.wrt, gradients, direction, strict=True):
            x = problem.base[k]
            point = problem.rounded(k, x + h * v)
            replace[k] = point
            linear_terms.extend((g * (point - x)).reshape(-1).tolist())
        f_step = problem.value(replace, f"at x + {h:.3g} v (Taylor test)")
        linear = math.fsum(linear_terms)
        remainders.append(abs(f_step - f_centre - linear))
        spread = abs(f_step) + abs(f_centre) + math.fsum(abs(t) for t in linear_terms)
        floors.append(problem.eps * spread + EPS64 * len(linear_terms) * abs(linear))
    usable = [
        (h, r)
        for h, r, fl in zip(steps, remainders, floors, strict=True)
        if r > TAYLOR_MARGIN * fl and r > 0.0
    ]
    fitted = usable[-TAYLOR_FIT_POINTS:]
    slope: float | None = None
    if len(fitted) >= 2:
        slope = fit_slope([h for h, _ in fitted], [r for _, r in fitted])
        passed = slope >= TAYLOR_THRESHOLD
        note = "" if passed else "remainder shrinks like h: the gradient is wrong along v"
    elif not fitted:
        passed = True
        note = "remainder at rounding level for every h: f is linear along v (nothing to fit)"
    else:
        passed = True
        note = "remainder above rounding level at one step only: f nearly linear along v"
    return TaylorDirection(
        steps=steps,
        remainders=tuple(remainders),
        floors=tuple(floors),
        slope=slope,
        n_fitted=len(fitted),
        passed=passed,
        note=note,
    )


def run_taylor(
    problem: Problem,
    gradients: Sequence[Float64Array],
    f_centre: float,
    n_directions: int,
    seed: int,
) -> TaylorResult:
    """Sweep ``n_directions`` random unit directions (the checker's own generator).

    Spec: GC-TAYLOR
    """
    if isinstance(n_directions, bool) or not isinstance(n_directions, int) or n_directions < 1:
        raise ValueError(f"n_directions must be an int >= 1, got {n_directions!r}")
    rng = np.random.default_rng([seed, STREAM_TAYLOR])
    directions: list[TaylorDirection] = []
    for _ in range(n_directions):
        raw = [rng.standard_normal(problem.base[k].shape) for k in problem.wrt]
        norm = math.sqrt(math.fsum(float(np.sum(r * r)) for r in raw))
        if norm == 0.0:
            return TaylorResult(True, TAYLOR_THRESHOLD, (), note="no elements to perturb")
        directions.append(sweep(problem, gradients, f_centre, [r / norm for r in raw]))
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
    """Taylor-remainder test of ``grad`` against ``f``.

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
        Seed of the checker's own generator (numpy's global state is not used).
    allow_float32 : bool
        Accept non-float64 floating inputs.

    Returns
    -------
    TaylorResult
        Slopes per direction; passed when every slope >= ``TAYLOR_THRESHOLD`` (1.8) or the
        remainder stays at rounding level (f linear along the direction).

    Spec: GC-TAYLOR
    """
    problem = Problem.build(f, grad, inputs, wrt, allow_float32)
    f_centre = problem.value({}, "at the given inputs")
    gradients = problem.gradients({}, "at the given inputs")
    return run_taylor(problem, gradients, f_centre, n_directions, seed)
