"""Sigmoid and ReLU: SIGMOID-*, RELU-* as shape and derivative properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn import ReLU, Sigmoid
from refnn.activations import relu, relu_backward, sigmoid, sigmoid_backward

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
arrays = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=5), elements=finite
)


@pytest.mark.spec("SIGMOID-FWD")
@given(Z=arrays)
def test_sigmoid_is_finite_bounded_and_symmetric(Z: np.ndarray) -> None:
    A = sigmoid(Z)  # warnings are errors: no overflow for |z| up to 1e4
    assert A.shape == Z.shape and np.all(np.isfinite(A))
    assert np.all((A >= 0) & (A <= 1))
    np.testing.assert_allclose(sigmoid(-Z), 1 - A, atol=1e-15)
    with np.errstate(over="ignore"):  # the textbook formula, as an oracle where it is accurate
        reference = 1 / (1 + np.exp(-np.clip(Z, -30, 30)))
    mask = np.abs(Z) < 30
    np.testing.assert_allclose(A[mask], reference[mask], rtol=1e-14)


@pytest.mark.spec("SIGMOID-BWD")
@given(Z=hnp.arrays(np.float64, (3, 4), elements=st.floats(-30, 30)))
def test_sigmoid_derivative_identity(Z: np.ndarray) -> None:
    A = sigmoid(Z)
    deriv = sigmoid_backward(np.ones_like(Z), A)
    np.testing.assert_allclose(deriv, A * (1 - A), rtol=1e-15)
    assert np.all((deriv > 0) & (deriv <= 0.25))
    # central difference of σ itself, independent of the identity
    h = 1e-6
    numeric = (sigmoid(Z + h) - sigmoid(Z - h)) / (2 * h)
    np.testing.assert_allclose(deriv, numeric, atol=1e-9)


@pytest.mark.spec("SIGMOID-BWD")
def test_sigmoid_derivative_peaks_at_zero() -> None:
    assert sigmoid_backward(np.ones((1, 1)), sigmoid(np.zeros((1, 1))))[0, 0] == 0.25


@pytest.mark.spec("RELU-FWD", "RELU-BWD")
@given(Z=arrays, seed=st.integers(0, 2**32 - 1))
def test_relu_and_its_derivative(Z: np.ndarray, seed: int) -> None:
    A = relu(Z)
    np.testing.assert_array_equal(A, np.where(Z > 0, Z, 0.0))
    dA = np.random.default_rng(seed).standard_normal(Z.shape)
    dZ = relu_backward(dA, Z)
    slope = relu_backward(np.ones_like(Z), Z)
    assert set(np.unique(slope)) <= {0.0, 1.0}
    np.testing.assert_array_equal(dZ, dA * slope)
    np.testing.assert_array_equal(slope[Z == 0], 0.0)  # the documented choice at the kink


@pytest.mark.spec("SIGMOID-FWD", "SIGMOID-BWD", "RELU-FWD", "RELU-BWD")
@pytest.mark.parametrize("cls", [Sigmoid, ReLU])
def test_layers_keep_shapes_dtype_and_inputs(cls: type[Sigmoid] | type[ReLU]) -> None:
    for dtype in (np.float64, np.float32):
        layer = cls(dtype=dtype)
        Z: np.ndarray[tuple[int, ...], np.dtype[np.floating]] = (
            np.linspace(-3, 3, 24).reshape(2, 3, 4).astype(dtype)
        )
        Z_before = Z.copy()
        A = layer.forward(Z)
        dZ = layer.backward(np.ones_like(A))
        assert A.shape == dZ.shape == Z.shape
        assert A.dtype == dZ.dtype == dtype
        np.testing.assert_array_equal(Z, Z_before)


def test_activation_errors() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        Sigmoid().backward(np.ones((1, 1)))
    layer = ReLU()
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(2, 3\), got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        ReLU().forward(np.array([[np.nan]]))
