"""The checks a user calls: check_grad, check_vjp and numerical_grad."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from refnn.gradcheck._elementwise import check_elementwise
from refnn.gradcheck._fast import FAST_THRESHOLD, fast_result, project
from refnn.gradcheck._numeric import step
from refnn.gradcheck._problem import Problem
from refnn.gradcheck._report import ArrayResult, GradcheckResult
from refnn.gradcheck._taylor import run_taylor
from refnn.gradcheck._types import (
    STREAM_FAST,
    STREAM_VJP,
    AnyArray,
    ArrayFunction,
    Float64Array,
    GradFunction,
    Mode,
    ScalarFunction,
    VjpFunction,
)


def _check_options(mode: object, rtol: float | None, atol: float | None, seed: object) -> None:
    if mode not in ("elementwise", "fast", "auto"):
        raise ValueError(f"mode must be 'elementwise', 'fast' or 'auto', got {mode!r}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and not (np.isfinite(value) and value >= 0.0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if rtol is not None and rtol >= 1.0:
        # |a - n| <= rtol |n| with rtol >= 1 accepts a = 0 for every n: no check at all
        raise ValueError(f"rtol must be < 1, got {rtol!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {seed!r}")


def _check_one(
    problem: Problem,
    j: int,
    g: Float64Array,
    f_centre: float,
    mode: Mode,
    rtol: float,
    atol: float,
    rng: np.random.Generator,
) -> ArrayResult:
    size = int(problem.base[problem.wrt[j]].size)
    use_fast = size > 0 and (mode == "fast" or (mode == "auto" and size > FAST_THRESHOLD))
    if not use_fast:
        return check_elementwise(problem, j, g, f_centre, rtol, atol)
    outcome = project(problem, j, g, f_centre, rtol, atol, rng)
    if outcome.passed:
        return fast_result(problem, j, outcome, rtol, atol)
    worst = outcome.directions[outcome.worst]
    detailed = check_elementwise(problem, j, g, f_centre, rtol, atol)
    if all(d.ok for d in outcome.directions):
        why = "a truncation estimate dominated the bound (a kink near the path?)"
    else:
        why = (
            f"direction {outcome.worst}: numerical {worst.numerical:.6g} vs analytical "
            f"{worst.analytical:.6g}, bound {worst.bound:.2e}"
        )
    note = f"fast mode failed ({why}); the elementwise check decided"
    if detailed.passed:
        note += " and found every element within tolerance (a fast-mode false alarm)"
    return replace(
        detailed,
        fell_back=True,
        n_f_evals=detailed.n_f_evals + outcome.n_f_evals,
        note="; ".join(n for n in (detailed.note, note) if n),
    )


def _require_deterministic(
    problem: Problem, f_centre: float, gradients: Sequence[Float64Array]
) -> None:
    """Evaluate ``f`` and ``grad`` once more at the same point: both must repeat exactly.

    Finite differences of a function that changes from call to call (dropout drawing a new
    mask, a random projection without a fixed seed) measure noise, not a derivative.

    Spec: GC-INPUTS
    """
    again = problem.value({}, "at the given inputs (repeated)")
    if again != f_centre:
        raise ValueError(
            f"f is not deterministic: two calls at the same inputs gave {f_centre!r} and "
            f"{again!r}; fix its randomness (e.g. freeze a dropout mask) before checking"
        )
    for name, g, g2 in zip(
        (problem.names[k] for k in problem.wrt),
        gradients,
        problem.gradients({}, "at the given inputs (repeated)"),
        strict=True,
    ):
        if not np.array_equal(g, g2):
            raise ValueError(
                f"grad is not deterministic: two calls at the same inputs gave different "
                f"gradients for {name!r}"
            )


def check_grad(
    f: ScalarFunction,
    grad: GradFunction,
    inputs: Mapping[str, AnyArray],
    *,
    wrt: Sequence[str] | None = None,
    mode: Mode = "auto",
    allow_float32: bool = False,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    taylor: bool = False,
) -> GradcheckResult:
    """Check analytic gradients of a scalar function against finite differences.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returning a real scalar.
    grad : callable
        ``grad(*inputs)`` returning one array per input in ``wrt``, same order and shapes.
    inputs : mapping of str to ndarray
        Named inputs, passed to ``f`` and ``grad`` positionally in mapping order. They are
        copied; ``f`` and ``grad`` receive read-only copies, never the caller's arrays.
    wrt : sequence of str, optional
        The inputs to check (default all); the others (labels, masks) are held fixed and may
        have any dtype.
    mode : {"auto", "elementwise", "fast"}
        ``elementwise``: every element (4 f evaluations each). ``fast``: random projections
        (GC-PROJ), falling back to elementwise on failure. ``auto``: fast for inputs with more
        than 2000 elements, elementwise otherwise.
    allow_float32 : bool
        Accept non-float64 floating inputs; their step and default tolerances are multiplied
        by ``(eps_dtype / eps_float64) ** (1/3)`` (about 813 for float32).
    seed : int
        Seed of the checker's own generator (projection directions; numpy's global random
        state is neither read nor changed).
    rtol, atol : float, optional
        Tolerances of GC-TOL. Defaults for float64: ``rtol=1e-5``, ``atol=1e-10`` (widened
        per dtype when ``allow_float32``).
    taylor : bool
        Also run :func:`taylor_test` (3 directions) and require it to pass.

    Returns
    -------
    GradcheckResult
        ``.passed``, one :class:`ArrayResult` per checked input, ``.format()``,
        ``.raise_if_failed()``, ``.to_dict()``.

    Raises
    ------
    TypeError
        A checked input is not floating point, or not float64 without ``allow_float32``.
    ValueError
        NaN/Inf in an input, in ``f``'s value or in a gradient; a gradient of the wrong shape
        or count.

    Spec: GC-TOL, GC-INPUTS
    """
    _check_options(mode, rtol, atol, seed)
    problem = Problem.build(f, grad, inputs, wrt, allow_float32)
    f_centre = problem.value({}, "at the given inputs")
    gradients = problem.gradients({}, "at the given inputs")
    _require_deterministic(problem, f_centre, gradients)
    rng = np.random.default_rng([int(seed), STREAM_FAST])
    arrays: list[ArrayResult] = []
    for j, g in enumerate(gradients):
        rtol_j, atol_j = problem.tolerances(problem.wrt[j], rtol, atol)
        arrays.append(_check_one(problem, j, g, f_centre, mode, rtol_j, atol_j, rng))
    taylor_result = run_taylor(problem, gradients, f_centre, 3, int(seed)) if taylor else None
    return GradcheckResult(
        arrays=tuple(arrays),
        seed=int(seed),
        n_f_evals=problem.f_calls,
        n_grad_evals=problem.grad_calls,
        taylor=taylor_result,
    )


def check_vjp(
    f: ArrayFunction,
    vjp: VjpFunction,
    inputs: Mapping[str, AnyArray],
    *,
    wrt: Sequence[str] | None = None,
    mode: Mode = "auto",
    allow_float32: bool = False,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    taylor: bool = False,
) -> GradcheckResult:
    """Check a vector-Jacobian product by scalarizing with a fixed random ``dY``.

    ``phi(*inputs) = sum(dY * f(*inputs))`` (in float64) has gradients ``vjp(dY, *inputs)``;
    ``dY`` is standard normal from the checker's own generator (seed ``seed``), rounded to the
    dtype of ``Y = f(*inputs)``. Everything else is :func:`check_grad` on ``phi``.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returning an array ``Y``.
    vjp : callable
        ``vjp(dY, *inputs)`` returning one gradient per input in ``wrt``.
    inputs, wrt, mode, allow_float32, seed, rtol, atol, taylor
        As in :func:`check_grad`.

    Returns
    -------
    GradcheckResult
        As :func:`check_grad`.

    Spec: GC-VJP
    """
    _check_options(mode, rtol, atol, seed)
    probe = Problem.build(lambda *a: 0.0, None, inputs, wrt, allow_float32)
    y = f(*probe.frozen)
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.floating):
        raise TypeError(f"f must return a floating numpy array, got {type(y).__name__}")
    if not np.all(np.isfinite(y)):
        raise ValueError("f returned NaN or Inf at the given inputs")
    if y.dtype != np.float64 and not allow_float32:
        raise TypeError(
            f"f returns {y.dtype}, so its rounding would be judged as float64 and reported as "
            f"gradient errors; check it with {y.dtype} inputs and allow_float32=True"
        )
    rng = np.random.default_rng([int(seed), STREAM_VJP])
    dy_native: AnyArray = rng.standard_normal(y.shape).astype(y.dtype)
    dy_native.flags.writeable = False
    dy: Float64Array = dy_native.astype(np.float64)

    def phi(*args: AnyArray) -> np.floating[Any]:
        out = f(*args)
        if not isinstance(out, np.ndarray) or out.shape != dy.shape:
            raise ValueError(f"f must return an array of shape {dy.shape} at every point")
        # in f's own precision, so that the checker's rounding estimate is that of f's dtype
        total: np.floating[Any] = out.dtype.type(np.sum(dy * out.astype(np.float64)))
        return total

    def phi_grad(*args: AnyArray) -> Sequence[AnyArray]:
        return vjp(np.array(dy_native, copy=True), *args)

    return check_grad(
        phi, phi_grad, inputs, wrt=wrt, mode=mode, allow_float32=allow_float32, seed=seed,
        rtol=rtol, atol=atol, taylor=taylor,
    )  # fmt: skip


def numerical_grad(
    f: ScalarFunction,
    inputs: Mapping[str, AnyArray],
    *,
    wrt: Sequence[str] | None = None,
    eps: float | None = None,
    allow_float32: bool = False,
) -> dict[str, Float64Array]:
    """Plain central differences ``(f(x + h e_i) - f(x - h e_i)) / 2h``, in float64.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returning a real scalar.
    inputs : mapping of str to ndarray
        Named inputs (never modified).
    wrt : sequence of str, optional
        Inputs to differentiate (default all).
    eps : float, optional
        Base step ``h0``; the step of element ``x`` is ``h0 * max(1, |x|)``. Default ``1e-5``
        (times the dtype widening for non-float64 inputs).
    allow_float32 : bool
        Accept non-float64 floating inputs.

    Returns
    -------
    dict of str to ndarray
        One float64 array per input in ``wrt``, shaped like the input.

    Spec: GC-CENTRAL, GC-STEP
    """
    if eps is not None and not (np.isfinite(eps) and eps > 0.0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    problem = Problem.build(f, None, inputs, wrt, allow_float32)
    problem.value({}, "at the given inputs")
    out: dict[str, Float64Array] = {}
    for k in problem.wrt:
        x = problem.base[k]
        h0 = problem.h0(k) if eps is None else eps
        result: Float64Array = np.zeros(x.shape, dtype=np.float64)
        for i in range(x.size):
            xi = float(x.reshape(-1)[i])
            h = step(xi, h0)
            ends = problem.rounded(k, np.array([xi - h, xi + h], dtype=np.float64))
            values: list[float] = []
            for p in ends:
                moved = x.copy()
                moved.reshape(-1)[i] = p
                values.append(problem.value({k: moved}, f"at {problem.names[k]} element {i}"))
            result.reshape(-1)[i] = (values[1] - values[0]) / float(ends[1] - ends[0])
        out[problem.names[k]] = result
    return out
