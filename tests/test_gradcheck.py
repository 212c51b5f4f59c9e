"""refnn.gradcheck, elementwise mode: correct gradients pass, wrong ones fail, inputs are safe.

GC-CENTRAL, GC-STEP, GC-RICHARDSON, GC-RELERR, GC-TOL, GC-INPUTS.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refnn.gradcheck
from refnn.gradcheck import GradcheckError, GradcheckResult, check_grad, check_vjp, numerical_grad
from refnn.gradcheck._numeric import central, relative_error, step, tolerance, widening

F64 = npt.NDArray[np.float64]
Grads = list[F64]

moderate = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- smooth functions: correct gradients pass, perturbed ones fail ----------------------------


@pytest.mark.spec("GC-TOL", "GC-RICHARDSON")
@settings(max_examples=40)
@given(
    x=hnp.arrays(np.float64, shapes, elements=moderate),
    power=st.integers(1, 4),
    coef=st.floats(-3.0, 3.0, allow_nan=False).filter(lambda c: abs(c) > 0.1),
)
def test_polynomials_and_exp_pass(x: F64, power: int, coef: float) -> None:
    def f(x: F64) -> float:
        return float(np.sum(coef * x**power) + np.sum(np.exp(0.5 * x)))

    def g(x: F64) -> Grads:
        return [coef * power * x ** (power - 1) + 0.5 * np.exp(0.5 * x)]

    result = check_grad(f, g, {"x": x})
    assert result.passed, result.format()


@pytest.mark.spec("GC-TOL")
@settings(max_examples=40)
@given(x=hnp.arrays(np.float64, shapes, elements=moderate), data=st.data())
def test_sums_over_axes_pass_and_the_wrong_axis_fails(x: F64, data: st.DataObject) -> None:
    axis = data.draw(st.integers(0, x.ndim - 1), label="axis")
    w = _rng(x.size).standard_normal(x.sum(axis=axis).shape)

    def f(x: F64) -> float:
        return float(np.sum(w * np.sum(x, axis=axis) ** 2))

    def g(x: F64) -> Grads:
        return [np.broadcast_to(np.expand_dims(2 * w * np.sum(x, axis=axis), axis), x.shape)]

    assert check_grad(f, g, {"x": x}).passed
    # the same gradient computed with the sum over a different axis (where that differs)
    other = (axis + 1) % x.ndim
    if x.ndim > 1 and np.sum(x, axis=axis).shape != np.sum(x, axis=other).shape:
        return
    if x.ndim == 1 or np.allclose(np.sum(x, axis=axis), np.sum(x, axis=other)):
        return

    def g_wrong(x: F64) -> Grads:
        s = np.sum(x, axis=other)
        return [np.broadcast_to(np.expand_dims(2 * w * s, axis), x.shape)]

    assert not check_grad(f, g_wrong, {"x": x}).passed


@pytest.mark.spec("GC-TOL")
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("k", "n", "m"), [(1, 1, 1), (2, 3, 4), (4, 2, 3)])
def test_matmul_composition_passes_and_any_single_corrupted_entry_fails(
    seed: int, k: int, n: int, m: int
) -> None:
    rng = _rng(seed)
    inputs = {"A": rng.standard_normal((k, n)), "B": rng.standard_normal((n, m))}
    C = rng.standard_normal((k, m))

    def f(A: F64, B: F64) -> float:
        return float(np.sum(C * np.sin(A @ B)))

    def g(A: F64, B: F64) -> Grads:
        G = C * np.cos(A @ B)
        return [G @ B.T, A.T @ G]

    assert check_grad(f, g, inputs).passed
    i, j = int(rng.integers(k)), int(rng.integers(n))

    def g_bad(A: F64, B: F64) -> Grads:
        dA, dB = g(A, B)
        dA = dA.copy()
        dA[i, j] += 1e-3 * (1.0 + abs(dA[i, j]))  # 0.1% wrong: far outside rtol 1e-5
        return [dA, dB]

    result = check_grad(f, g_bad, inputs)
    assert not result.passed
    assert result.arrays[0].worst_index == (i, j) and result.arrays[0].n_wrong == 1


# --- the judgement: relative error is reported, the estimate-aware bound decides --------------


@pytest.mark.spec("GC-RELERR")
def test_relative_error_measure() -> None:
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(1.0, -1.0) == 2.0
    assert relative_error(3.0, 2.0) == pytest.approx(1 / 3)
    assert relative_error(0.0, 1e-300) == 1.0


@pytest.mark.spec("GC-RELERR", "GC-TOL")
def test_verdict_uses_the_bound_not_the_relative_error() -> None:
    # derivative 1e-13 missing from the analytic gradient: relative error 1, absolute 1e-13,
    # beside a derivative of 2e-3 (a whole gradient below atol is GC-FIRM's: not decided)
    x = np.array([0.0, 1e-3])

    def f(x: F64) -> float:
        return float(np.sum(x**2) + 1e-13 * np.sum(x))

    result = check_grad(f, lambda x: [2 * x], {"x": x})
    assert result.passed, result.format()
    assert result.arrays[0].max_rel_error == pytest.approx(1.0)


@pytest.mark.spec("GC-TOL")
def test_rtol_and_atol_are_applied() -> None:
    x = np.linspace(0.5, 1.5, 5)

    def g(x: F64) -> Grads:
        return [3 * x**2 * (1 + 5e-5)]  # 5e-5 relative error

    def f(x: F64) -> float:
        return float(np.sum(x**3))

    assert not check_grad(f, g, {"x": x}).passed  # default rtol 1e-5
    assert check_grad(f, g, {"x": x}, rtol=1e-4).passed
    assert check_grad(f, g, {"x": x}, rtol=0.0, atol=1e-3).passed
    with pytest.raises(ValueError, match="rtol"):
        check_grad(f, g, {"x": x}, rtol=-1.0)


@pytest.mark.spec("GC-TOL")
def test_bound_formula() -> None:
    assert tolerance(-2.0, 1e-9, rtol=1e-5, atol=1e-8) == pytest.approx(1e-8 + 2e-5 + 1e-8)


@pytest.mark.spec("GC-RICHARDSON", "GC-CENTRAL")
@settings(max_examples=30)
@given(x=st.floats(-3.0, 3.0, allow_nan=False), h=st.sampled_from([1e-2, 1e-3, 1e-4]))
def test_richardson_is_fourth_order_and_its_estimate_covers_the_error(x: float, h: float) -> None:
    o = (-h, -h / 2, 0.0, h / 2, h)
    e = [float(np.exp(x + t)) for t in o]
    noise = float(np.finfo(np.float64).eps) * max(e)
    est = central(o, e, noise)
    exact = float(np.exp(x))
    coarse = (e[4] - e[0]) / (2 * h)
    # central differences: error h^2 f'''/6; Richardson: O(h^4); T bounds the error of D(h/2)
    assert abs(coarse - exact) == pytest.approx(exact * h**2 / 6, rel=0.05, abs=1e-10)
    assert abs(est.value - exact) <= exact * h**4 + 3 * est.rounding
    assert abs(est.value - exact) <= est.truncation + 3 * est.rounding
    assert est.kink_score <= 8 * est.truncation + 160 * est.rounding


@pytest.mark.spec("GC-CENTRAL", "GC-STEP")
@given(x=hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-50, 50)))
def test_numerical_grad_is_the_plain_central_difference(x: F64) -> None:
    # for x^3 the central difference is exactly 3x^2 + h^2 with h = 1e-5 max(1, |x|)
    got = numerical_grad(lambda x: float(np.sum(x**3)), {"x": x})["x"]
    h = np.array([step(float(v), 1e-5) for v in x])
    np.testing.assert_allclose(got, 3 * x**2 + h**2, rtol=1e-6, atol=1e-6 * (1 + np.max(x**2)))
    coarse = numerical_grad(lambda x: float(np.sum(x**3)), {"x": x}, eps=1e-2)["x"]
    np.testing.assert_allclose(
        coarse,
        3 * x**2 + (1e-2 * np.maximum(1, np.abs(x))) ** 2,
        rtol=1e-6,
        atol=1e-9 * (1 + np.sum(np.abs(x) ** 3)),
    )
    assert got.dtype == np.float64 and got.shape == x.shape


@pytest.mark.spec("GC-STEP")
def test_step_scales_with_x_and_widens_for_float32() -> None:
    assert [step(v, 1e-5) for v in (0.0, 0.5, -4.0)] == [1e-5, 1e-5, 4e-5]
    assert widening(np.dtype(np.float64)) == 1.0
    assert widening(np.dtype(np.float32)) == pytest.approx(812.75, rel=1e-4)


@pytest.mark.spec("GC-STEP", "GC-TOL")
@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e4])
def test_large_and_small_magnitudes_pass_and_a_1_percent_error_fails(scale: float) -> None:
    x = scale * np.array([1.0, -2.0, 3.5])
    c = max(scale, 1.0)  # f varies on the scale max(1, |x|), the scale of the step

    def f(x: F64) -> float:
        return float(np.sum(np.cos(x / c) * x**2))

    def g(x: F64) -> Grads:
        return [-np.sin(x / c) / c * x**2 + 2 * x * np.cos(x / c)]

    result = check_grad(f, g, {"x": x})
    assert result.passed and result.arrays[0].note == "", result.format()
    assert not check_grad(f, lambda x: [1.01 * g(x)[0]], {"x": x}).passed


@pytest.mark.spec("GC-STEP", "GC-KINK")
def test_a_step_too_large_for_the_function_is_shrunk_until_it_resolves_f() -> None:
    # f varies on the scale 1e-6, far below the step 1e-5: every element is loose at h and is
    # re-measured with h/16, h/256, ... where the differences resolve f
    x = 1e-6 * np.array([1.0, -2.0, 3.5])

    def f(x: F64) -> float:
        return float(np.sum(np.cos(x / 1e-6)))

    result = check_grad(f, lambda x: [-np.sin(x / 1e-6) / 1e-6], {"x": x})
    a = result.arrays[0]
    assert result.passed, result.format()
    assert a.kinks.loose == 3 and a.kinks.moved == 3 and a.n_checked == 3
    for wrong in (0.0, 0.5):
        bad = check_grad(f, lambda x, w=wrong: [w * -np.sin(x / 1e-6) / 1e-6], {"x": x})
        assert bad.arrays[0].verdict == "WRONG", bad.format()


# --- inputs are safe: never modified, RNG untouched, bad input refused -----------------------


@pytest.mark.spec("GC-INPUTS")
@settings(max_examples=20)
@given(x=hnp.arrays(np.float64, shapes, elements=moderate))
def test_caller_arrays_and_global_rng_are_untouched(x: F64) -> None:
    labels = np.arange(x.size).reshape(x.shape)
    before = x.copy(), labels.copy()
    np.random.seed(1234)
    state = np.random.get_state(legacy=False)
    result = check_grad(
        lambda x, y: float(np.sum(x**2 * y)),
        lambda x, y: [2 * x * y],
        {"x": x, "y": labels},
        wrt=["x"],
        taylor=True,
    )
    assert result.passed
    assert x.tobytes() == before[0].tobytes() and labels.tobytes() == before[1].tobytes()
    after = np.random.get_state(legacy=False)
    assert json.dumps(state, default=str) == json.dumps(after, default=str)


@pytest.mark.spec("GC-INPUTS")
def test_functions_get_read_only_copies_and_caller_arrays_survive_exceptions() -> None:
    x = np.array([1.0, 2.0, 3.0])
    seen: list[npt.NDArray[Any]] = []

    def f_mutating(x: F64) -> float:
        seen.append(x)
        x *= 2  # refused: read-only copy
        return 0.0

    with pytest.raises(ValueError, match="read-only"):
        check_grad(f_mutating, lambda x: [x], {"x": x})
    assert seen and seen[0] is not x
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])

    calls = [0]

    def f_failing(x: F64) -> float:
        calls[0] += 1
        if calls[0] > 3:
            raise RuntimeError("boom")
        return float(np.sum(x))

    with pytest.raises(RuntimeError, match="boom"):
        check_grad(f_failing, lambda x: [np.ones_like(x)], {"x": x})
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])


@pytest.mark.spec("GC-INPUTS")
@pytest.mark.parametrize("dtype", [np.float32])
def test_float32_is_refused_unless_allowed(dtype: type[np.floating[Any]]) -> None:
    x = np.array([0.3, -0.7, 1.1], dtype=dtype)

    def f(x: npt.NDArray[Any]) -> float:
        return float(np.sum(np.sin(x), dtype=np.float64))

    with pytest.raises(TypeError, match=f"input 'x' has dtype {np.dtype(dtype)}"):
        check_grad(f, lambda x: [np.cos(x)], {"x": x})
    result = check_grad(f, lambda x: [np.cos(x)], {"x": x}, allow_float32=True)
    assert result.passed, result.format()
    assert result.arrays[0].dtype == str(np.dtype(dtype))
    assert result.arrays[0].rtol == 1e-3  # float32 tolerances
    assert not check_grad(f, lambda x: [np.sin(x)], {"x": x}, allow_float32=True).passed


@pytest.mark.spec("GC-INPUTS", "GC-TOL")
def test_float32_function_with_allow_float32() -> None:
    rng = _rng(5)
    W = rng.standard_normal((3, 4)).astype(np.float32)
    X = rng.standard_normal((4, 6)).astype(np.float32)

    def f(W: npt.NDArray[np.float32], X: npt.NDArray[np.float32]) -> np.float32:
        return np.sum(np.tanh(W @ X) ** 2, dtype=np.float32)

    def g(W: npt.NDArray[np.float32], X: npt.NDArray[np.float32]) -> list[npt.NDArray[Any]]:
        A = np.tanh(W @ X)
        dZ = 2 * A * (1 - A) * (1 + A)
        return [dZ @ X.T, W.T @ dZ]

    assert check_grad(f, g, {"W": W, "X": X}, allow_float32=True).passed

    def g_bad(W: npt.NDArray[np.float32], X: npt.NDArray[np.float32]) -> list[npt.NDArray[Any]]:
        dW, dX = g(W, X)
        return [dW, 1.05 * dX]

    assert not check_grad(f, g_bad, {"W": W, "X": X}, allow_float32=True).passed


@pytest.mark.spec("GC-INPUTS")
def test_bad_inputs_are_refused_with_names() -> None:
    x = np.array([1.0, 2.0])

    def f(x: F64) -> float:
        return float(np.sum(x**2))

    def g(x: F64) -> Grads:
        return [2 * x]

    with pytest.raises(TypeError, match=r"input 'x'.*must hold floats.*int64"):
        check_grad(f, g, {"x": np.array([1, 2], dtype=np.int64)})
    with pytest.raises(ValueError, match="input 'x' contains NaN"):
        check_grad(f, g, {"x": np.array([1.0, np.nan])})
    with pytest.raises(ValueError, match="input 'x' contains NaN or Inf"):
        check_grad(f, g, {"x": np.array([np.inf, 1.0])})
    with pytest.raises(ValueError, match="f returned nan"):
        check_grad(lambda x: float("nan"), g, {"x": x})
    with pytest.raises(ValueError, match=r"shape \(2, 1\), expected \(2,\)"):
        check_grad(f, lambda x: [2 * x[:, None]], {"x": x})
    with pytest.raises(ValueError, match="grad returned 2 arrays, expected 1"):
        check_grad(f, lambda x: [2 * x, 2 * x], {"x": x})
    with pytest.raises(TypeError, match="sequence of arrays"):
        check_grad(f, lambda x: 2 * x, {"x": x})
    with pytest.raises(ValueError, match="gradient for 'x' contains NaN"):
        check_grad(f, lambda x: [x * np.nan], {"x": x})
    with pytest.raises(ValueError, match="must return a scalar"):
        check_grad(lambda x: x, g, {"x": x})
    with pytest.raises(ValueError, match="'z', which is not an input"):
        check_grad(f, g, {"x": x}, wrt=["z"])
    with pytest.raises(TypeError, match="numpy array"):
        check_grad(f, g, {"x": [1.0, 2.0]})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="mode"):
        check_grad(f, g, {"x": x}, mode="sometimes")  # type: ignore[arg-type]


@pytest.mark.spec("GC-INPUTS")
def test_inputs_outside_wrt_are_held_fixed_and_may_be_integers() -> None:
    x = np.array([0.5, -1.5, 2.0])
    y = np.array([1, 0, 1])

    def f(x: F64, y: npt.NDArray[np.int64]) -> float:
        return float(np.sum((x - y) ** 2))

    result = check_grad(f, lambda x, y: [2 * (x - y)], {"x": x, "y": y}, wrt=["x"])
    assert result.passed and [a.name for a in result.arrays] == ["x"]


# --- reports ----------------------------------------------------------------------------------


@pytest.mark.spec("GC-TOL")
def test_failure_message_names_input_worst_index_both_values_and_errors() -> None:
    W = np.arange(12.0).reshape(3, 4) / 10

    def f(W: F64) -> float:
        return float(np.sum(W**2))

    def g(W: F64) -> Grads:
        G = 2 * W
        G[1, 2] += 0.5
        return [G]

    result = check_grad(f, g, {"W": W})
    a = result.arrays[0]
    assert (a.verdict, a.worst_index, a.n_wrong) == ("WRONG", (1, 2), 1)
    assert a.numerical == pytest.approx(1.2) and a.analytical == pytest.approx(1.7)
    with pytest.raises(GradcheckError) as info:
        result.raise_if_failed()
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    for piece in (
        "'W'",
        "W[1, 2]",
        repr(a.numerical),
        repr(a.analytical),
        "abs error",
        "rel error",
    ):
        assert piece in message, (piece, message)
    assert len(message) < 1500  # no Jacobian dump
    table = result.format()
    assert "WRONG" in table and "[1,2]" in table and "FAILED" in table


@pytest.mark.spec("GC-TOL")
def test_results_are_frozen_and_serialise_to_json() -> None:
    result = check_grad(lambda x: float(np.sum(x**2)), lambda x: [2 * x], {"x": np.ones((2, 2))})
    assert isinstance(result, GradcheckResult)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["passed"] is True and data["arrays"][0]["shape"] == [2, 2]
    assert data["arrays"][0]["kinks"] == {
        "found": 0,
        "moved": 0,
        "excluded": 0,
        "loose": 0,
        "on_kink": 0,
        "edge": 0,
        "jump": 0,
    }
    with pytest.raises(AttributeError):
        result.arrays[0].verdict = "WRONG"  # type: ignore[misc]
    result.raise_if_failed()  # passes silently


@pytest.mark.spec("GC-TOL")
def test_zero_d_and_empty_inputs() -> None:
    s = np.array(0.7)
    result = check_grad(lambda s: float(np.sin(s)), lambda s: [np.cos(s)], {"s": s})
    assert result.passed and result.arrays[0].shape == ()
    bad = check_grad(lambda s: float(np.sin(s)), lambda s: [np.sin(s)], {"s": s})
    assert not bad.passed and bad.arrays[0].worst_index == ()
    empty = np.zeros((0, 3))
    result = check_grad(lambda e: 1.0, lambda e: [np.zeros_like(e)], {"e": empty})
    assert result.passed and result.arrays[0].n_checked == 0


@pytest.mark.spec("GC-INPUTS")
def test_the_checker_depends_on_numpy_and_the_standard_library_only() -> None:
    package = Path(refnn.gradcheck.__file__).parent
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                if name.startswith("refnn"):
                    assert name.startswith("refnn.gradcheck"), (path.name, name)
                else:
                    assert name.split(".")[0] in allowed, (path.name, name)


@pytest.mark.spec("GC-INPUTS")
def test_a_function_that_changes_between_calls_is_refused() -> None:
    noise = np.random.default_rng(1)  # e.g. a dropout layer drawing a new mask on every call

    def f(x: np.ndarray) -> float:
        return float(np.sum(x * noise.random(x.shape)))

    with pytest.raises(ValueError, match="f is not deterministic"):
        check_grad(f, lambda x: [np.ones_like(x)], {"x": np.ones((2, 2))})
    counter = iter(range(1000))
    with pytest.raises(ValueError, match="grad is not deterministic"):
        check_grad(
            lambda x: float(np.sum(x)),
            lambda x: [np.full_like(x, next(counter))],
            {"x": np.ones(3)},
        )


@pytest.mark.spec("GC-KINK", "GC-TOL")
def test_a_constant_function_with_zero_gradient_passes() -> None:
    # rounding noise alone must not make zero derivatives "loose" (unjudgeable)
    result = check_grad(lambda x: 3.0, lambda x: [np.zeros_like(x)], {"x": np.ones((2, 2))})
    assert result.passed and result.arrays[0].kinks.found == 0, result.format()
    wrong = check_grad(lambda x: 3.0, lambda x: [np.full_like(x, 1e-6)], {"x": np.ones((2, 2))})
    assert not wrong.passed


@pytest.mark.spec("GC-TOL")
def test_a_relative_tolerance_that_accepts_anything_is_refused() -> None:
    with pytest.raises(ValueError, match=r"rtol must be < 0.1, got 1\.0.*zero gradient"):
        check_grad(
            lambda x: float(np.sum(x**2)), lambda x: [np.zeros_like(x)], {"x": np.ones(2)}, rtol=1.0
        )


@pytest.mark.spec("GC-TAYLOR", "GC-KINK")
def test_taylor_is_not_judged_where_the_elementwise_check_found_kinks() -> None:
    # a ReLU at a point with exact zeros (e.g. the output of a previous ReLU): correct gradient
    x = np.maximum(np.random.default_rng(4).standard_normal((4, 6)), 0.0)
    result = check_vjp(
        lambda x: np.maximum(x, 0.0), lambda dy, x: [dy * (x > 0)], {"x": x}, taylor=True
    )
    assert result.arrays[0].kinks.found > 0 and not result.taylor_judged
    assert result.passed, result.format()
    assert "not judged" in result.format() and "moved off it" in result.format()
    # where f is smooth the Taylor test still decides: a wrong gradient fails it
    y = np.random.default_rng(5).standard_normal((3, 3))
    wrong = check_vjp(
        np.tanh, lambda dy, y: [dy * (1 - np.tanh(y) ** 2) * 1.01], {"y": y}, taylor=True
    )
    assert wrong.taylor_judged and not wrong.passed


@pytest.mark.spec("GC-VJP", "GC-INPUTS")
def test_check_vjp_refuses_an_f_that_computes_in_float32_from_float64_inputs() -> None:
    W32 = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)

    def f(X: np.ndarray) -> np.ndarray:
        return W32 @ X.astype(np.float32)

    def vjp(dY: np.ndarray, X: np.ndarray) -> list[np.ndarray]:
        return [W32.T @ dY.astype(np.float32)]

    X = np.random.default_rng(1).standard_normal((3, 4))
    with pytest.raises(TypeError, match=r"f returns float32.*allow_float32=True"):
        check_vjp(f, vjp, {"X": X})
    ok = check_vjp(f, vjp, {"X": X.astype(np.float32)}, allow_float32=True)
    assert ok.passed and ok.arrays[0].kinks.found == 0, ok.format()
