"""What PyTorch and JAX users expect (eps, nondet_tol, tuple outputs, second order, the full
picture on request) and bad input refused by name (issue 12). GC-INPUTS, GC-TOL, GC-VJP, GC-HVP,
GC-NOISE, GC-PROJ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn.gradcheck import (
    check_backward_contract,
    check_grad,
    check_hvp,
    check_vjp,
    numerical_grad,
    taylor_test,
)
from refnn.gradcheck._core import Problem
from refnn.gradcheck._judge import check_fast
from refnn.gradcheck._numeric import Target

F64 = npt.NDArray[np.float64]
X = np.array([0.3, -1.2, 2.0])


def cube(x: F64) -> float:
    return float(np.sum(x**3))


def cube_grad(x: F64) -> list[F64]:
    return [3 * x**2]


# --- bad input: TypeError/ValueError naming the argument, what was expected and what came ------

ENTRY_POINTS: dict[str, Callable[..., object]] = {
    "check_grad": lambda **kw: check_grad(cube, cube_grad, {"x": X}, **kw),
    "check_vjp": lambda **kw: check_vjp(np.sin, lambda dy, x: [dy * np.cos(x)], {"x": X}, **kw),
    "check_hvp": lambda **kw: check_hvp(cube_grad, lambda v, x: [6 * x * v[0]], {"x": X}, **kw),
    "taylor_test": lambda **kw: taylor_test(cube, cube_grad, {"x": X}, **kw),
    "check_backward_contract": lambda **kw: check_backward_contract(lambda d: [d], (3,), **kw),
}


@pytest.mark.spec("GC-INPUTS")
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize(
    ("seed", "error"), [(-1, ValueError), (1.5, TypeError), ("0", TypeError), (True, TypeError)]
)
def test_bad_seeds_are_refused_by_every_entry_point(entry: str, seed: object, error: type) -> None:
    with pytest.raises(error, match=r"seed must be an int >= 0, got"):
        ENTRY_POINTS[entry](seed=seed)


@pytest.mark.spec("GC-INPUTS", "GC-TOL")
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rtol": "a"}, TypeError, r"rtol must be a real number, got 'a' \(str\)"),
        ({"rtol": 1j}, TypeError, r"rtol must be a real number, got 1j \(complex\)"),
        ({"atol": [1.0]}, TypeError, r"atol must be a real number"),
        ({"rtol": float("nan")}, ValueError, r"rtol must be a finite number >= 0"),
        ({"rtol": 0.99}, ValueError, r"rtol must be < 0\.1, got 0\.99.*100 times too small"),
        ({"atol": -1.0}, ValueError, r"atol must be a finite number >= 0"),
        ({"eps": 0.0}, ValueError, r"eps must be a finite number > 0"),
        ({"eps": 0.5}, ValueError, r"eps \(the base step\) must be < 0\.1"),
        ({"nondet_tol": -1e-9}, ValueError, r"nondet_tol must be a finite number >= 0"),
        ({"mode": "sometimes"}, ValueError, r"mode must be"),
    ],
)
def test_bad_options_are_refused_naming_what_came(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        check_grad(cube, cube_grad, {"x": X}, **kwargs)


@pytest.mark.spec("GC-INPUTS")
def test_bad_functions_and_inputs_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"grad must be callable, got None"):
        check_grad(cube, None, {"x": X})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"vjp must be callable"):
        check_vjp(np.sin, "vjp", {"x": X})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"f must return a real number, got the bool True"):
        check_grad(lambda x: True, cube_grad, {"x": X})
    with pytest.raises(TypeError, match=r"input 'z' is complex \(complex128\).*out of scope"):
        check_grad(cube, cube_grad, {"z": X + 1j})
    with pytest.raises(TypeError, match=r"dtype float16.*float16 cannot resolve a derivative"):
        check_grad(cube, cube_grad, {"x": X.astype(np.float16)}, allow_float32=True)
    with pytest.raises(TypeError, match=r"allow_float32 must be a bool, got 'yes'"):
        check_grad(cube, cube_grad, {"x": X}, allow_float32="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"wrt must be a sequence of input names"):
        check_grad(cube, cube_grad, {"x": X}, wrt=3)  # type: ignore[arg-type]


@pytest.mark.spec("GC-CONTRACT", "GC-INPUTS")
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dY_shape": 5}, TypeError, r"dY_shape must be a tuple of ints, got 5 \(int\)"),
        ({"dY_shape": (2.5,)}, TypeError, r"dY_shape must hold ints, got 2\.5"),
        ({"dY_shape": (2, -1)}, ValueError, r"dY_shape must hold ints >= 0, got -1"),
        ({"inputs_to_watch": [X]}, TypeError, r"inputs_to_watch must be a mapping.*got list"),
        ({"inputs_to_watch": {"W": [1.0]}}, TypeError, r"inputs_to_watch\['W'\] must be a numpy"),
        ({"dY_dtype": np.int64}, TypeError, r"dY_dtype must be a floating dtype, got int64"),
    ],
)
def test_bad_contract_arguments_are_refused(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    arguments: dict[str, Any] = {"dY_shape": (3,), **kwargs}
    with pytest.raises(error, match=message):
        check_backward_contract(lambda d: [d], **arguments)
    with pytest.raises(TypeError, match=r"backward must be callable, got 5"):
        check_backward_contract(5, (3,))  # type: ignore[arg-type]


@pytest.mark.spec("GC-TOL")
def test_an_atol_that_covers_the_gradient_makes_the_verdict_inconclusive() -> None:
    small = check_grad(cube, lambda x: [0.05 * cube_grad(x)[0]], {"x": X}, atol=1e6)
    assert small.arrays[0].verdict == "inconclusive" and not small.passed
    assert "atol=1e+06 exceeds 10% of the largest derivative" in small.arrays[0].note
    assert check_grad(cube, cube_grad, {"x": X}, atol=1e-6).passed  # a sensible atol is fine


# --- what PyTorch and JAX users expect -----------------------------------------------------------


@pytest.mark.spec("GC-STEP", "GC-TOL")
@pytest.mark.parametrize("eps", [1e-3, 1e-6])
def test_a_caller_given_step_is_used(eps: float) -> None:
    result = check_grad(cube, cube_grad, {"x": X}, eps=eps)
    assert result.passed, result.format()
    d = numerical_grad(cube, {"x": X}, eps=eps)["x"]
    np.testing.assert_allclose(d, 3 * X**2 + (eps * np.maximum(1, np.abs(X))) ** 2, rtol=1e-7)
    assert not check_grad(cube, lambda x: [1.001 * cube_grad(x)[0]], {"x": X}, eps=eps).passed


@pytest.mark.spec("GC-INPUTS", "GC-NOISE")
def test_nondet_tol_admits_last_bit_nondeterminism_and_nothing_more() -> None:
    jitter = np.random.default_rng(0)

    def f(x: F64) -> float:
        return cube(x) * (1 + 1e-15 * jitter.standard_normal())

    with pytest.raises(ValueError, match=r"f is not deterministic.*nondet_tol=0\.0"):
        check_grad(f, cube_grad, {"x": X})
    assert check_grad(f, cube_grad, {"x": X}, nondet_tol=1e-13).passed
    assert not check_grad(f, lambda x: [1.01 * cube_grad(x)[0]], {"x": X}, nondet_tol=1e-13).passed


@pytest.mark.spec("GC-VJP")
def test_check_vjp_accepts_tuple_outputs() -> None:
    def f(x: F64, y: F64) -> tuple[F64, F64]:
        return np.sin(x) * y, x**2

    def vjp(dy: tuple[F64, F64], x: F64, y: F64) -> list[F64]:
        d0, d1 = dy
        return [d0 * np.cos(x) * y + 2 * x * d1, d0 * np.sin(x)]

    inputs = {"x": np.array([0.3, -0.8]), "y": np.array([1.5, 2.0])}
    assert check_vjp(f, vjp, inputs).passed

    def forgot_second(dy: tuple[F64, F64], x: F64, y: F64) -> list[F64]:
        return [dy[0] * np.cos(x) * y, dy[0] * np.sin(x)]

    bad = check_vjp(f, forgot_second, inputs)
    assert [a.verdict for a in bad.arrays] == ["WRONG", "ok"]


@pytest.mark.spec("GC-HVP")
def test_check_hvp_passes_a_right_hessian_and_fails_a_wrong_one() -> None:
    A = np.array([[2.0, 0.5], [0.5, 1.0]])

    def grad(x: F64) -> list[F64]:
        return [A @ x + np.cos(x)]

    def hvp(v: tuple[F64], x: F64) -> list[F64]:
        return [A @ v[0] - np.sin(x) * v[0]]

    x = np.array([0.4, -1.1])
    assert check_hvp(grad, hvp, {"x": x}).passed
    assert not check_hvp(grad, lambda v, x: [A.T @ v[0]], {"x": x}).passed  # curvature term lost


@pytest.mark.spec("GC-TOL")
def test_details_give_the_numerical_gradient_errors_and_the_mask_of_wrong_elements() -> None:
    def g_bad(x: F64) -> list[F64]:
        g = cube_grad(x)[0].copy()
        g[[0, 2]] += 0.1
        return [g]

    result = check_grad(cube, g_bad, {"x": X}, details=True)
    d = result.arrays[0].details
    assert d is not None and d.wrong.tolist() == [True, False, True]
    np.testing.assert_allclose(d.numerical, 3 * X**2, rtol=1e-9)
    assert np.all(d.abs_error[d.wrong] > d.bound[d.wrong])
    data = json.loads(json.dumps(result.to_dict()))
    assert data["arrays"][0]["details"]["wrong"] == [True, False, True]
    assert check_grad(cube, cube_grad, {"x": X}).arrays[0].details is None  # only on request


@pytest.mark.spec("GC-PROJ")
@pytest.mark.parametrize("seed", range(5))
def test_projections_catch_one_element_wrong_by_1e_3_among_10_000(seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal(10_000)

    def f(x: F64) -> float:
        return float(np.sum(np.sin(x) * x))

    g = np.cos(x) * x + np.sin(x)
    wrong = g.copy()
    wrong[1234] *= 1 + 1e-3
    problem = Problem(f, None, {"x": x}, None, False)
    f0 = problem.value({})
    problem.measure_noise(f0, seed)
    for claimed, right in ((g, True), (wrong, False)):
        target = Target(problem, 0, x, claimed, 1e-5, 1e-5, 1e-10, False)
        projections = check_fast(target, f0, np.random.default_rng(seed))
        assert all(p.ok for p in projections) == right, projections


@pytest.mark.spec("GC-TOL", "GC-NOISE")
@settings(max_examples=25)
@given(x=hnp.arrays(np.float64, st.integers(2, 300), elements=st.floats(-10.0, 10.0)))
@example(x=np.array([3.0, 3.0]))  # mirrored noise probes measured no noise here: 2 false kinks
@example(x=np.array([5.0, 0.0]))  # probes moved no element at 0: 1 false kink
@example(x=np.array([5.0, 2.0**-7]))  # its own ulps vanished in x_1 - mean: 1 false kink
def test_a_zero_gradient_of_cancelling_terms_passes_at_any_size(x: F64) -> None:
    result = check_grad(lambda x: float(np.sum(x - np.mean(x))), lambda x: [0 * x], {"x": x})
    assert result.passed and result.arrays[0].kinks.found == 0, result.format()


@pytest.mark.spec("GC-KINK")
@given(d=st.floats(1e-8, 9.9e-6), w=st.floats(0.5, 2.0))
def test_a_derivative_from_the_other_side_of_a_near_kink_fails(d: float, w: float) -> None:
    x = np.array([-d, 0.5, -0.5])

    def f(x: F64) -> float:
        return float(w * np.sum(np.maximum(x, 0.0)))

    assert check_grad(f, lambda x: [w * (x > 0)], {"x": x}).passed
    bad = check_grad(f, lambda x: [w * (x > -1e-5)], {"x": x}, details=True)
    assert bad.arrays[0].verdict == "WRONG" and bad.arrays[0].details is not None
    assert bad.arrays[0].details.wrong.tolist() == [True, False, False]


@pytest.mark.spec("GC-KINK")
@given(x0=st.floats(1e-9, 1e-4))
def test_inputs_at_the_edge_of_the_domain_are_judged_not_crashed(x0: float) -> None:
    x = np.array([x0, 1.0])
    result = check_grad(lambda x: float(np.sum(np.log(x))), lambda x: [1 / x], {"x": x})
    assert result.passed, result.format()
    wrong = check_grad(lambda x: float(np.sum(np.log(x))), lambda x: [1.01 / x], {"x": x})
    assert wrong.arrays[0].verdict == "WRONG"
