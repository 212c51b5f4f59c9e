"""A finite-difference gradient checker for any function of numpy arrays: the entry points.

Depends on numpy and the standard library only (nothing else in refnn). See
``specs/gradcheck.md`` for the equations (GC-*) and how a gradient is judged.

>>> import numpy as np
>>> from refnn.gradcheck import check_grad
>>> x = np.array([0.5, -1.0, 2.0])
>>> check_grad(lambda x: float(np.sum(x**3)), lambda x: [3 * x**2], {"x": x}).passed
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from refnn.gradcheck._core import (
    STREAM_FAST,
    STREAM_HVP,
    STREAM_VJP,
    AnyArray,
    ArrayFunction,
    Float64Array,
    GradFunction,
    Mode,
    NonFiniteError,
    Problem,
    ScalarFunction,
    VjpFunction,
    bool_option,
    callable_option,
    check_options,
    eps_option,
    seed_option,
)
from refnn.gradcheck._extra import check_backward_contract, run_taylor, taylor_test
from refnn.gradcheck._judge import check_input, confirm
from refnn.gradcheck._numeric import (
    SAFETY,
    Target,
    base_step,
    central_differences,
    default_tolerances,
)
from refnn.gradcheck._report import (
    ArrayResult,
    ContractCheck,
    ContractResult,
    ElementDetails,
    GradcheckError,
    GradcheckResult,
    KinkCounts,
    TaylorDirection,
    TaylorResult,
)

__all__ = [
    "ArrayResult",
    "ContractCheck",
    "ContractResult",
    "ElementDetails",
    "GradcheckError",
    "GradcheckResult",
    "KinkCounts",
    "TaylorDirection",
    "TaylorResult",
    "check_backward_contract",
    "check_grad",
    "check_hvp",
    "check_vjp",
    "numerical_grad",
    "taylor_test",
]


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
    eps: float | None = None,
    nondet_tol: float = 0.0,
    details: bool = False,
) -> GradcheckResult:
    """Check analytic gradients of a scalar function against finite differences.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returning a real scalar (not a bool). NaN, Inf or an exception at a
        perturbed point marks the edge of f's domain there (GC-KINK); at the given inputs an
        exception propagates.
    grad : callable
        ``grad(*inputs)`` returning one array per input in ``wrt``, same order and shapes.
    inputs : mapping of str to ndarray
        Named inputs, passed positionally in mapping order. ``f`` and ``grad`` receive
        read-only copies, never the caller's arrays. Complex inputs are refused.
    wrt : sequence of str, optional
        The inputs to check (default all); the others are held fixed and may have any dtype.
    mode : {"auto", "elementwise", "fast"}
        ``elementwise``: every element (2 f evaluations each, 4 where ``D(h)`` does not settle
        the verdict, more at kinks), stopping once 10 are wrong (GC-BOUND). ``fast``: random
        projections (GC-PROJ); a failed one is localised by bisection (GC-BISECT). ``auto``:
        fast above 2000 elements, elementwise otherwise.
    allow_float32 : bool
        Accept float32 inputs (step widened by about 813, tolerances rtol=1e-3, atol=1e-7;
        errors from about 0.5% up are resolved). float16 is refused: it cannot resolve a
        derivative. A bool (a string such as "no" is refused, as for ``taylor``, ``details``).
    seed : int
        Seed (>= 0) of the checker's own generator (noise probes, projections, Taylor
        directions); numpy's global random state is neither read nor changed.
    rtol, atol : float, optional
        Tolerances of GC-TOL (defaults per dtype). rtol >= 0.1 is refused; where atol exceeds
        10% of the largest derivative, an element passing only by atol is undecided (GC-FIRM).
    taylor : bool
        Also run :func:`taylor_test` (3 directions) and require it to pass where judged.
    eps : float, optional
        Base step ``h0`` in [1e-12, 0.1) (the step of element x is ``h0 max(1, |x|)``); default
        1e-5 (float64).
    nondet_tol : float
        f and grad may differ by this much between two calls at the same point (PyTorch's
        ``nondet_tol``); it also enters the noise estimate.
    details : bool
        Keep per-element arrays (numerical gradient, errors, bounds, mask of wrong elements)
        in each elementwise :class:`ArrayResult` (``.details``).

    Returns
    -------
    GradcheckResult
        ``.passed``, one :class:`ArrayResult` per checked input, ``.format()``,
        ``.raise_if_failed()``, ``.to_dict()``.

    Raises
    ------
    TypeError
        A non-callable f/grad, a bad option type (a non-bool flag), a complex/float16/non-float
        checked input.
    ValueError
        NaN/Inf in an input or at the given point (or a value too large for a float), a
        gradient of the wrong shape or count, f or grad differing between two calls at the
        given inputs, an out-of-range option. A nondeterminism found later makes the verdict
        inconclusive instead (GC-DETERMINISM).

    Spec: GC-TOL, GC-INPUTS, GC-NOISE, GC-NOISE-BLOCK

    Examples
    --------
    >>> import numpy as np
    >>> from refnn.gradcheck import check_grad
    >>> x = np.random.default_rng(0).standard_normal((3, 4))
    >>> result = check_grad(lambda x: float(np.sum(x**3)), lambda x: [3 * x**2], {"x": x})
    >>> result.passed
    True
    >>> wrong = check_grad(lambda x: float(np.sum(x**3)), lambda x: [2 * x**2], {"x": x})
    >>> wrong.passed, wrong.arrays[0].verdict
    (False, 'WRONG')
    """
    callable_option("f", f)
    callable_option("grad", grad)
    check_options(mode, rtol, atol, seed, eps, nondet_tol)
    taylor = bool_option("taylor", taylor)
    details = bool_option("details", details)
    problem = Problem(f, grad, inputs, wrt, allow_float32, float(nondet_tol))
    f0 = problem.value({}, "at the given inputs")
    gradients = problem.gradients({}, "at the given inputs")
    problem.require_deterministic(f0, gradients)
    limits: dict[int, tuple[float, float]] = {}
    for k, g in zip(problem.wrt, gradients, strict=True):
        r, a = default_tolerances(problem.dtype(k), rtol, atol)
        largest = float(np.max(np.abs(g), initial=0.0))
        limits[k] = (base_step(problem.dtype(k), eps), (a + r * largest) / SAFETY)
    problem.measure_noise(f0, int(seed), limits)
    options = {"rtol": rtol, "atol": atol, "eps": eps, "mode": mode, "details": details}
    rng = np.random.default_rng([int(seed), STREAM_FAST])
    arrays = [check_input(problem, j, g, f0, options, rng) for j, g in enumerate(gradients)]
    taylor_result = run_taylor(problem, gradients, f0, 3, int(seed)) if taylor else None
    arrays = _after_the_fact(problem, f0, arrays)
    return GradcheckResult(
        arrays=tuple(arrays),
        seed=int(seed),
        n_f_evals=problem.f_calls,
        n_grad_evals=problem.grad_calls,
        taylor=taylor_result,
    )


def _after_the_fact(
    problem: Problem, f0: float, arrays: Sequence[ArrayResult]
) -> list[ArrayResult]:
    """f evaluated again at x after the check, the worst wrong element measured again, and
    the exceptions f raised at probe points, as notes and verdicts (GC-DETERMINISM, GC-KINK).

    Spec: GC-DETERMINISM
    """
    why = ""
    again = problem.value({}, "at the given inputs (after the check)")
    if abs(again - f0) > problem.nondet_tol:
        why = (
            f"f is not deterministic: at the given inputs it returned {f0!r} before the check "
            f"and {again!r} after it (nondet_tol={problem.nondet_tol!r}); a noisy f decides nothing"
        )
    for target in problem.targets:
        if why:
            break
        why = confirm(target, f0)
    notes: list[str] = []
    if problem.raised:
        named = ", ".join(f"{name} {count} time(s)" for name, count in problem.raised.items())
        notes.append(f"f raised {named} at perturbed points: treated as outside its domain")
    out: list[ArrayResult] = []
    for a in arrays:
        extra = [*notes, why] if why else notes
        if not extra:
            out.append(a)
            continue
        verdict = "inconclusive" if why and a.verdict != "inconclusive" else a.verdict
        note = "; ".join(n for n in (a.note, *extra) if n)
        out.append(replace(a, verdict=verdict, note=note))
    return out


def _as_outputs(y: object, where: str) -> tuple[AnyArray, ...]:
    items = tuple(y) if isinstance(y, tuple | list) else (y,)
    if not items or not all(
        isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating) for a in items
    ):
        raise TypeError(
            f"f must return a floating numpy array or a tuple of them, got {type(y).__name__} "
            f"{where}"
        )
    return items


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
    eps: float | None = None,
    nondet_tol: float = 0.0,
    details: bool = False,
) -> GradcheckResult:
    """Check a vector-Jacobian product by scalarizing with a fixed random ``dY``.

    ``phi(*inputs) = sum_o sum(dY_o * Y_o)`` (in float64, returned in f's output precision)
    has gradients ``vjp(dY, *inputs)``; ``dY`` (one array per output when ``f`` returns a tuple
    or list, then passed to ``vjp`` as a tuple) is standard normal from the checker's own
    generator, rounded to each output's dtype. Everything else is :func:`check_grad` on phi.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returning an array ``Y`` or a tuple of arrays.
    vjp : callable
        ``vjp(dY, *inputs)`` returning one gradient per input in ``wrt``.
    inputs, wrt, mode, allow_float32, seed, rtol, atol, taylor, eps, nondet_tol, details
        As in :func:`check_grad`.

    Returns
    -------
    GradcheckResult
        As :func:`check_grad`.

    Spec: GC-VJP

    Examples
    --------
    >>> import numpy as np
    >>> from refnn.gradcheck import check_vjp
    >>> x = np.random.default_rng(0).standard_normal((2, 3))
    >>> result = check_vjp(np.tanh, lambda dy, x: [dy * (1 - np.tanh(x) ** 2)], {"x": x})
    >>> result.passed
    True
    """
    callable_option("f", f)
    callable_option("vjp", vjp)
    check_options(mode, rtol, atol, seed, eps, nondet_tol)
    bool_option("taylor", taylor)
    bool_option("details", details)
    probe = Problem(lambda *a: 0.0, None, inputs, wrt, allow_float32)
    y0 = f(*probe.frozen)
    outputs = _as_outputs(y0, "at the given inputs")
    several = not isinstance(y0, np.ndarray)
    if not all(np.all(np.isfinite(y)) for y in outputs):
        raise ValueError("f returned NaN or Inf at the given inputs")
    out_dtype = np.result_type(*outputs)
    if out_dtype != np.float64 and not allow_float32:
        raise TypeError(
            f"f returns {out_dtype}, so its rounding would be judged as float64 and reported as "
            f"gradient errors; check it with {out_dtype} inputs and allow_float32=True"
        )
    rng = np.random.default_rng([seed_option(seed), STREAM_VJP])
    dys = tuple(rng.standard_normal(y.shape).astype(y.dtype) for y in outputs)
    for dy in dys:
        dy.flags.writeable = False
    shapes = [dy.shape for dy in dys]

    def phi(*args: AnyArray) -> np.floating[Any]:
        ys = _as_outputs(f(*args), "at a perturbed point")
        if [y.shape for y in ys] != shapes:
            raise ValueError(f"f must return arrays of shapes {shapes} at every point")
        total = math.fsum(
            float(np.sum(dy.astype(np.float64) * y.astype(np.float64)))
            for dy, y in zip(dys, ys, strict=True)
        )
        return out_dtype.type(total)  # f's own precision

    def phi_grad(*args: AnyArray) -> Sequence[AnyArray]:
        copies = tuple(np.array(dy, copy=True) for dy in dys)
        return vjp(copies if several else copies[0], *args)

    return check_grad(
        phi,
        phi_grad,
        inputs,
        wrt=wrt,
        mode=mode,
        allow_float32=allow_float32,
        seed=seed,
        rtol=rtol,
        atol=atol,
        taylor=taylor,
        eps=eps,
        nondet_tol=nondet_tol,
        details=details,
    )


def check_hvp(
    grad: GradFunction,
    hvp: VjpFunction,
    inputs: Mapping[str, AnyArray],
    *,
    wrt: Sequence[str] | None = None,
    mode: Mode = "auto",
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    eps: float | None = None,
    details: bool = False,
) -> GradcheckResult:
    """Check Hessian-vector products against finite differences of the gradient.

    For a fixed random ``v`` (one array per input in ``wrt``, the checker's own generator),
    ``psi(*inputs) = sum_k <grad_k(*inputs), v_k>`` has gradient ``H v`` (H symmetric), which
    ``hvp(v, *inputs)`` must return, one array per input in ``wrt``. This is
    :func:`check_grad` on psi: the second-order check of PyTorch's ``gradgradcheck`` and JAX's
    ``check_grads(order=2)``.

    Parameters
    ----------
    grad : callable
        ``grad(*inputs)``: the (already checked) gradient, one array per input in ``wrt``.
    hvp : callable
        ``hvp(v, *inputs)`` with ``v`` a tuple of arrays shaped like the ``wrt`` inputs.
    inputs, wrt, mode, seed, rtol, atol, eps, details
        As in :func:`check_grad` (float64 inputs only).

    Returns
    -------
    GradcheckResult
        As :func:`check_grad`.

    Spec: GC-HVP
    """
    callable_option("grad", grad)
    callable_option("hvp", hvp)
    check_options(mode, rtol, atol, seed, eps, 0.0)
    bool_option("details", details)
    probe = Problem(lambda *a: 0.0, grad, inputs, wrt, False)
    rng = np.random.default_rng([seed_option(seed), STREAM_HVP])
    vs = tuple(rng.standard_normal(probe.base[k].shape) for k in probe.wrt)
    for v in vs:
        v.flags.writeable = False

    def psi(*args: AnyArray) -> float:
        gradients = probe.validate_gradients(grad(*args), "(psi = <grad, v>)")
        return math.fsum(float(np.sum(g * v)) for g, v in zip(gradients, vs, strict=True))

    def psi_grad(*args: AnyArray) -> Sequence[AnyArray]:
        return hvp(tuple(np.array(v, copy=True) for v in vs), *args)

    return check_grad(
        psi,
        psi_grad,
        inputs,
        wrt=wrt,
        mode=mode,
        seed=seed,
        rtol=rtol,
        atol=atol,
        eps=eps,
        details=details,
    )


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
    inputs, wrt
        As in :func:`check_grad` (ValueError where f is not finite at ``x +- h``).
    eps : float, optional
        Base step ``h0``; the step of element ``x`` is ``h0 * max(1, |x|)``. Default ``1e-5``
        (times the dtype widening for float32 inputs).
    allow_float32 : bool
        Accept float32 inputs.

    Returns
    -------
    dict of str to ndarray
        One float64 array per input in ``wrt``, shaped like the input.

    Spec: GC-CENTRAL, GC-STEP
    """
    callable_option("f", f)
    if eps is not None:
        eps_option(eps)
    problem = Problem(f, None, inputs, wrt, allow_float32)
    problem.value({}, "at the given inputs")
    out: dict[str, Float64Array] = {}
    for k in problem.wrt:
        x = problem.base[k].reshape(-1)
        t = Target(
            problem, k, x, np.zeros_like(x), base_step(problem.dtype(k), eps), 0.0, 0.0, False
        )
        with np.errstate(all="ignore"):
            d = central_differences(t, t.steps())
        if not np.all(np.isfinite(d)):
            i = int(np.flatnonzero(~np.isfinite(d))[0])
            raise NonFiniteError(f"f is not finite at {problem.names[k]} element {i} +- h")
        out[problem.names[k]] = d.reshape(problem.base[k].shape)
    return out
