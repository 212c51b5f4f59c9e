"""Activations: SIGMOID-*, RELU-*, TANH-*, SOFTMAX-FWD/BWD as value and derivative properties.

The layer contract (dtype, shape, inputs untouched, stale cache, bad input) is tested for every
layer in tests/test_layers_contract.py; here: the math.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn import Softmax, Tanh
from refnn.activations import (
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from refnn.gradcheck import check_grad
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from refnn.verify.problems import layer_problem
from tests.oracles.softmax import softmax_loop, softmax_vjp_loop

EPS = float(np.finfo(np.float64).eps)
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
any_shape = hnp.array_shapes(min_dims=2, max_dims=4, max_side=5)
wide = hnp.arrays(np.float64, any_shape, elements=finite)
#: Below this |z|, tanh(z) is not rounded to ±1 in float64 (1 - tanh(19) = 6e-17 < eps/2).
UNSATURATED = 18.0


def central_difference(g: object, Z: FloatArray, h: float = 1e-6) -> FloatArray:
    """(g(Z + h) - g(Z - h)) / 2h element by element: an oracle independent of the derivative."""
    assert callable(g)
    out: FloatArray = (g(Z + h) - g(Z - h)) / (2 * h)
    return out


def passes(layer: Tanh | Softmax, X: FloatArray) -> bool:
    problem = layer_problem(layer, X)
    try:
        return check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt).passed
    finally:
        problem.restore()


# --- SIGMOID -----------------------------------------------------------------------------------


@pytest.mark.spec("SIGMOID-FWD")
@given(Z=wide)
def test_sigmoid_is_finite_bounded_and_symmetric(Z: FloatArray) -> None:
    A = sigmoid(Z)  # warnings are errors: no overflow for |z| up to 1e4
    assert A.shape == Z.shape and np.all(np.isfinite(A))
    assert np.all((A >= 0) & (A <= 1))
    np.testing.assert_allclose(sigmoid(-Z), 1 - A, atol=1e-15)
    with np.errstate(over="ignore"):  # the textbook formula, as an oracle where it is accurate
        reference = 1 / (1 + np.exp(-np.clip(Z, -30, 30)))
    mask = np.abs(Z) < 30
    np.testing.assert_allclose(A[mask], reference[mask], rtol=1e-14)


@pytest.mark.spec("SIGMOID-BWD")
@given(Z=arrays((3, 4), bound=30.0), dA=arrays((3, 4)))
def test_sigmoid_derivative_is_the_central_difference(Z: FloatArray, dA: FloatArray) -> None:
    A = sigmoid(Z)
    slope = sigmoid_backward(np.ones_like(Z), A)
    assert np.all((slope > 0) & (slope <= 0.25))
    np.testing.assert_allclose(slope, central_difference(sigmoid, Z), atol=1e-9)
    np.testing.assert_allclose(sigmoid_backward(dA, A), dA * slope, rtol=1e-15)
    assert sigmoid_backward(np.ones((1, 1)), sigmoid(np.zeros((1, 1))))[0, 0] == 0.25


# --- RELU --------------------------------------------------------------------------------------


@pytest.mark.spec("RELU-FWD", "RELU-BWD")
@given(Z=wide, data=st.data())
def test_relu_and_its_derivative(Z: FloatArray, data: st.DataObject) -> None:
    np.testing.assert_array_equal(relu(Z), np.where(Z > 0, Z, 0.0))
    dA = data.draw(arrays(Z.shape))
    np.testing.assert_array_equal(relu_backward(dA, Z), np.where(Z > 0, dA, 0.0))
    np.testing.assert_array_equal(
        relu_backward(np.ones((1, 3)), np.array([[-1.0, 0.0, 2.0]])), [[0, 0, 1]]
    )


# --- TANH --------------------------------------------------------------------------------------


@pytest.mark.spec("TANH-FWD")
@given(Z=wide)
def test_tanh_is_finite_bounded_odd_and_monotone(Z: FloatArray) -> None:
    A = tanh(Z)
    assert A.shape == Z.shape and np.all(np.isfinite(A))
    assert np.all((A >= -1) & (A <= 1))
    np.testing.assert_array_equal(tanh(-Z), -A)
    order = np.argsort(Z, axis=None)
    assert np.all(np.diff(A.ravel()[order]) >= 0)


@pytest.mark.spec("TANH-FWD")
@given(Z=arrays((3, 4), bound=20.0))
def test_tanh_matches_the_defining_formula(Z: FloatArray) -> None:
    # (e^z - e^-z)/(e^z + e^-z) = (e^{2z} - 1)/(e^{2z} + 1), with expm1 so that small z does not
    # cancel (the textbook form loses 1e-14 relative at z = 2^-8)
    expected = np.array([math.expm1(2 * z) / (math.expm1(2 * z) + 2) for z in Z.flat])
    np.testing.assert_allclose(tanh(Z).ravel(), expected, rtol=1e-14, atol=1e-300)


@pytest.mark.spec("TANH-BWD")
@given(Z=arrays((3, 4), bound=UNSATURATED), dA=arrays((3, 4)))
def test_tanh_derivative_is_sech_squared(Z: FloatArray, dA: FloatArray) -> None:
    A = tanh(Z)
    slope = tanh_backward(np.ones_like(Z), A)
    assert np.all((slope > 0) & (slope <= 1))
    # sech²(z) = 4 / (e^z + e^-z)², independent of the identity; relative accuracy is limited
    # by the rounding of A near saturation (about eps / (1 - |A|))
    sech2 = 4 / (np.exp(Z) + np.exp(-Z)) ** 2
    assert np.all(np.abs(slope - sech2) <= 4 * EPS / (1 - np.abs(A)) * sech2)
    np.testing.assert_allclose(slope, central_difference(tanh, Z), atol=1e-9)
    np.testing.assert_allclose(tanh_backward(dA, A), dA * slope, rtol=1e-15)
    assert tanh_backward(np.ones((1, 1)), tanh(np.zeros((1, 1))))[0, 0] == 1.0


@pytest.mark.spec("TANH-BWD")
@given(Z=wide)
def test_tanh_derivative_stays_in_0_1_everywhere(Z: FloatArray) -> None:
    slope = tanh_backward(np.ones_like(Z), tanh(Z))
    assert np.all((slope >= 0) & (slope <= 1))
    np.testing.assert_array_equal(slope[np.abs(Z) < UNSATURATED] > 0, True)


@pytest.mark.spec("TANH-FWD", "TANH-BWD")
@settings(max_examples=20)
@given(X=arrays((2, 3, 2), bound=5.0))
def test_tanh_layer_passes_the_gradient_checker(X: FloatArray) -> None:
    assert passes(Tanh(), X)


#: numpy's long double, where it is wider than float64 (x86-64 Linux: 64-bit mantissa), is the
#: oracle for the stated accuracy of the evaluated formulas.
LONG_DOUBLE = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant


@pytest.mark.skipif(not LONG_DOUBLE, reason="long double is float64 here: no wider oracle")
@pytest.mark.spec("SIGMOID-FWD", "TANH-FWD")
@given(dtype=st.sampled_from([np.float64, np.float32]), data=st.data())
def test_sigmoid_and_tanh_are_within_their_stated_ulps(dtype: type, data: st.DataObject) -> None:
    """σ within 4 ulp and tanh within 3 ulp of the exact value, in both dtypes; where σ falls
    below the smallest normal number (z < -708 in float64), within that number of it."""
    width: Literal[32, 64] = 32 if dtype is np.float32 else 64
    # small |z| (|z| <= 2^-10, where a formula may cancel), the middle, and where e^{-z} overflows
    z = st.floats(-800, 800, width=width) | st.floats(-0.0009765625, 0.0009765625, width=width)
    Z = data.draw(hnp.arrays(dtype, st.integers(1, 20), elements=z))
    exact = Z.astype(np.longdouble)
    tiny = np.finfo(dtype).tiny
    for f, want, ulps in ((sigmoid, 1 / (1 + np.exp(-exact)), 4), (tanh, np.tanh(exact), 3)):
        got = f(Z)
        assert got.dtype == dtype
        err = np.abs(got.astype(np.longdouble) - want)
        normal = np.abs(want) >= tiny
        ulp = np.spacing(np.abs(want[normal]).astype(dtype)).astype(np.longdouble)
        assert np.all(err[normal] <= ulps * ulp), f.__name__
        assert np.all(err[~normal] < tiny), f.__name__


# --- SOFTMAX -----------------------------------------------------------------------------------


@pytest.mark.spec("SOFTMAX-FWD")
@given(
    Z=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6), elements=finite)
)
def test_softmax_columns_are_distributions_even_for_huge_logits(Z: FloatArray) -> None:
    A = softmax(Z)  # warnings are errors: no overflow for |z| up to 1e4
    assert A.shape == Z.shape and A.dtype == Z.dtype
    assert np.all(np.isfinite(A)) and np.all((A >= 0) & (A <= 1))
    np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=0, atol=Z.shape[0] * EPS)
    top = np.take_along_axis(A, Z.argmax(axis=0)[None], axis=0)[0]
    np.testing.assert_array_equal(top, A.max(axis=0))


@pytest.mark.spec("SOFTMAX-FWD")
@given(Z=arrays((4, 3), bound=1e4), c=arrays((1, 3), bound=1e4))
def test_softmax_is_shift_invariant_per_column(Z: FloatArray, c: FloatArray) -> None:
    # Z + c is rounded: each logit moves by at most eps |z + c|, which moves a by <= 2 a eps |.|
    rounding = 4 * EPS * (np.abs(Z).max() + np.abs(c).max() + 1.0)
    np.testing.assert_allclose(softmax(Z + c), softmax(Z), rtol=0, atol=rounding)


@pytest.mark.spec("SOFTMAX-FWD")
@given(Z=arrays((4, 3), bound=20.0))
def test_softmax_matches_the_loop(Z: FloatArray) -> None:
    np.testing.assert_allclose(softmax(Z), softmax_loop(Z), rtol=1e-13)


@pytest.mark.spec("SOFTMAX-FWD")
def test_softmax_extreme_columns() -> None:
    Z = np.array([[1e4, -1e4, 0.0, 7.0], [-1e4, -1e4, 0.0, 7.0], [0.0, 1e4, 0.0, 7.0]])
    A = softmax(Z)
    np.testing.assert_array_equal(A[:, 0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(A[:, 1], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(A[:, 2:], 1 / 3, rtol=1e-15)
    # a single class is certain whatever its logit
    np.testing.assert_array_equal(softmax(np.array([[-1e4, 0.0, 1e4]])), [[1.0, 1.0, 1.0]])
    # logits spread over more than the float64 range: the exact answer, no overflow warning
    np.testing.assert_array_equal(softmax(np.array([[1e308], [-1e308]])), [[1.0], [0.0]])


@pytest.mark.spec("SOFTMAX-BWD")
@given(Z=arrays((4, 3), bound=8.0), dA=arrays((4, 3)))
def test_softmax_backward_is_the_jacobian_product(Z: FloatArray, dA: FloatArray) -> None:
    A = softmax(Z)
    np.testing.assert_allclose(softmax_backward(dA, A), softmax_vjp_loop(dA, A), atol=1e-14)
    # each column of the Jacobian sums to zero: a constant upstream gradient gives dZ = 0
    np.testing.assert_allclose(softmax_backward(np.ones_like(A), A), 0.0, atol=8 * EPS)


@pytest.mark.spec("SOFTMAX-FWD", "SOFTMAX-BWD")
@settings(max_examples=20)
@given(X=st.one_of(arrays((3, 2), bound=6.0), arrays((2, 2, 2), bound=6.0)))
def test_softmax_layer_passes_the_gradient_checker(X: FloatArray) -> None:
    # k >= 2: with one class softmax is the constant 1 (checked exactly below)
    assert passes(Softmax(), X)


@pytest.mark.spec("SOFTMAX-FWD", "SOFTMAX-BWD")
@given(Z=arrays((1, 4), bound=100.0), dA=arrays((1, 4)))
def test_one_class_softmax_is_constant_with_zero_gradient(Z: FloatArray, dA: FloatArray) -> None:
    layer = Softmax()
    np.testing.assert_array_equal(layer.forward(Z), 1.0)
    np.testing.assert_array_equal(layer.backward(dA), 0.0)
