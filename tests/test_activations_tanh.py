"""Tanh: TANH-FWD, TANH-BWD as value, derivative and gradient-checker properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn import Tanh
from refnn.activations import tanh, tanh_backward
from refnn.gradcheck import check_grad
from refnn.types import FloatArray
from refnn.verify.problems import layer_problem
from tests.strategies import normal, seeds, sizes

EPS = float(np.finfo(np.float64).eps)
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
arrays = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=5), elements=finite
)
#: Below this |z|, tanh(z) is not rounded to ±1 in float64 (1 - tanh(19) = 6e-17 < eps/2).
UNSATURATED = 18.0


@pytest.mark.spec("TANH-FWD")
@given(Z=arrays)
def test_tanh_is_finite_bounded_odd_and_monotone(Z: np.ndarray) -> None:
    A = tanh(Z)  # warnings are errors: nothing overflows for |z| up to 1e4
    assert A.shape == Z.shape and np.all(np.isfinite(A))
    assert np.all((A >= -1) & (A <= 1))
    np.testing.assert_array_equal(tanh(-Z), -A)
    order = np.argsort(Z, axis=None)
    assert np.all(np.diff(A.ravel()[order]) >= 0)


@pytest.mark.spec("TANH-FWD")
@given(Z=hnp.arrays(np.float64, (3, 4), elements=st.floats(-20, 20)))
def test_tanh_matches_the_defining_formula(Z: np.ndarray) -> None:
    # (e^z - e^-z)/(e^z + e^-z) = (e^{2z} - 1)/(e^{2z} + 1), with expm1 so that small z does not
    # cancel (the textbook form loses 1e-14 relative at z = 2^-8)
    expected = np.array([math.expm1(2 * z) / (math.expm1(2 * z) + 2) for z in Z.flat])
    np.testing.assert_allclose(tanh(Z).ravel(), expected, rtol=1e-14, atol=1e-300)


@pytest.mark.spec("TANH-BWD")
@given(Z=hnp.arrays(np.float64, (3, 4), elements=st.floats(-UNSATURATED, UNSATURATED)))
def test_tanh_derivative_is_one_minus_tanh_squared_in_0_1(Z: np.ndarray) -> None:
    A = tanh(Z)
    deriv = tanh_backward(np.ones_like(Z), A)
    assert np.all((deriv > 0) & (deriv <= 1))
    np.testing.assert_allclose(deriv, 1 - A**2, rtol=0, atol=2 * EPS)
    # sech²(z) = 4 / (e^z + e^-z)², independent of the identity; relative accuracy is limited
    # by the rounding of A near saturation (about eps / (1 - |A|))
    sech2 = 4 / (np.exp(Z) + np.exp(-Z)) ** 2
    tol = 4 * EPS / (1 - np.abs(A))
    assert np.all(np.abs(deriv - sech2) <= tol * sech2)


@pytest.mark.spec("TANH-BWD")
@given(Z=arrays)
def test_tanh_derivative_stays_in_0_1_everywhere(Z: np.ndarray) -> None:
    deriv = tanh_backward(np.ones_like(Z), tanh(Z))
    assert np.all((deriv >= 0) & (deriv <= 1))
    np.testing.assert_array_equal(deriv[np.abs(Z) < UNSATURATED] > 0, True)


@pytest.mark.spec("TANH-BWD")
def test_tanh_derivative_peaks_at_zero_and_scales_the_upstream_gradient() -> None:
    assert tanh_backward(np.ones((1, 1)), tanh(np.zeros((1, 1))))[0, 0] == 1.0
    Z = normal(0, 3, 4)
    dA = normal(1, 3, 4)
    np.testing.assert_allclose(
        tanh_backward(dA, tanh(Z)), dA * tanh_backward(np.ones_like(Z), tanh(Z)), rtol=1e-15
    )
    h = 1e-6  # central difference of tanh itself
    numeric = (tanh(Z + h) - tanh(Z - h)) / (2 * h)
    np.testing.assert_allclose(tanh_backward(np.ones_like(Z), tanh(Z)), numeric, atol=1e-9)


@pytest.mark.spec("TANH-FWD", "TANH-BWD")
@settings(max_examples=25)
@given(n=sizes, m=sizes, seed=seeds, scale=st.floats(0.1, 5.0))
def test_tanh_layer_passes_the_gradient_checker(n: int, m: int, seed: int, scale: float) -> None:
    problem = layer_problem(Tanh(), normal(seed, n, 2, m, scale=scale), seed=seed)
    try:
        result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    finally:
        problem.restore()
    assert result.passed, result.format()


@pytest.mark.spec("TANH-FWD", "TANH-BWD")
def test_tanh_layer_dtype_shape_and_inputs() -> None:
    for dtype in (np.float64, np.float32):
        Z: FloatArray = np.linspace(-3, 3, 24).reshape(2, 3, 4).astype(dtype)
        before = Z.copy()
        layer = Tanh(dtype=dtype)
        A = layer.forward(Z)
        dZ = layer.backward(np.ones_like(A))
        assert A.shape == dZ.shape == Z.shape
        assert A.dtype == dZ.dtype == dtype
        np.testing.assert_array_equal(Z, before)
    assert Tanh(dtype=np.float32).config() == {"dtype": "float32"}
    with pytest.raises(RuntimeError, match="before forward"):
        Tanh().backward(np.ones((1, 1)))
    layer = Tanh()
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(2, 3\), got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
