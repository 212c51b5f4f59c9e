"""Dense layer: equations DENSE-*, INIT-*, against naive loops and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn import Dense
from refnn._validate import FloatRangeError
from refnn.dense import dense_backward, dense_forward
from refnn.testing.strategies import DenseShape, arrays, dense_shapes


def naive_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    n_out, n_in = W.shape
    Z = np.zeros((n_out, X.shape[1]))
    for k in range(n_out):
        for i in range(X.shape[1]):
            Z[k, i] = sum(W[k, j] * X[j, i] for j in range(n_in)) + b[k, 0]
    return Z


def naive_backward(
    dZ: np.ndarray, X: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_out, n_in = W.shape
    m = X.shape[1]
    dW = np.zeros_like(W)
    db = np.zeros((n_out, 1))
    dX = np.zeros_like(X)
    for k in range(n_out):
        for j in range(n_in):
            dW[k, j] = sum(dZ[k, i] * X[j, i] for i in range(m))
        db[k, 0] = sum(dZ[k, i] for i in range(m))
    for j in range(n_in):
        for i in range(m):
            dX[j, i] = sum(W[k, j] * dZ[k, i] for k in range(n_out))
    return dX, dW, db


@pytest.mark.spec("DENSE-FWD", "DENSE-DW", "DENSE-DB", "DENSE-DX")
@given(shape=dense_shapes(), data=st.data())
def test_dense_matches_naive_loops(shape: DenseShape, data: st.DataObject) -> None:
    n_in, n_out, m = shape.n_in, shape.n_out, shape.m
    X, W, b, dZ = (data.draw(arrays(s)) for s in [(n_in, m), (n_out, n_in), (n_out, 1), (n_out, m)])
    np.testing.assert_allclose(
        dense_forward(X, W, b), naive_forward(X, W, b), rtol=1e-12, atol=1e-12
    )
    for ours, loop in zip(dense_backward(dZ, W, X), naive_backward(dZ, X, W), strict=True):
        np.testing.assert_allclose(ours, loop, rtol=1e-12, atol=1e-12)


@pytest.mark.spec("DENSE-FWD", "DENSE-DW", "DENSE-DB", "DENSE-DX")
@given(shape=dense_shapes(), data=st.data())
def test_dense_layer_is_the_pure_functions_on_its_own_parameters(
    shape: DenseShape, data: st.DataObject
) -> None:
    layer = Dense(shape.n_in, shape.n_out, rng=np.random.default_rng(0))
    layer.params["b"][...] = data.draw(arrays((shape.n_out, 1)))
    X, dZ = data.draw(arrays(shape.input_shape)), data.draw(arrays((shape.n_out, shape.m)))
    W, b = layer.params["W"], layer.params["b"]
    np.testing.assert_array_equal(layer.forward(X), dense_forward(X, W, b))
    dX, dW, db = dense_backward(dZ, W, X)
    np.testing.assert_array_equal(layer.backward(dZ), dX)
    np.testing.assert_array_equal(layer.grads["W"], dW)
    np.testing.assert_array_equal(layer.grads["b"], db)


@pytest.mark.spec("INIT-HE", "INIT-XAVIER")
@pytest.mark.parametrize(
    ("init", "var"), [("he", lambda i, o: 2 / i), ("xavier", lambda i, o: 2 / (i + o))]
)
def test_init_variance(init: str, var: object) -> None:
    n_in, n_out = 400, 300
    layer = Dense(n_in, n_out, rng=np.random.default_rng(0), init=init)  # type: ignore[arg-type]
    W = layer.params["W"]
    expected = var(n_in, n_out)  # type: ignore[operator]
    # the variance of 120000 normal draws lies within 2% of the truth, overwhelmingly likely
    assert abs(W.var() / expected - 1) < 0.02
    assert abs(W.mean()) < 4 * np.sqrt(expected / W.size)
    np.testing.assert_array_equal(layer.params["b"], 0.0)


@pytest.mark.spec("INIT-HE")
def test_init_uses_only_the_given_generator() -> None:
    state = np.random.get_state()
    a = Dense(3, 4, rng=np.random.default_rng(7)).params["W"]
    b = Dense(3, 4, rng=np.random.default_rng(7)).params["W"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, Dense(3, 4, rng=np.random.default_rng(8)).params["W"])
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1])  # type: ignore[index]


def test_params_are_the_layers_own_arrays() -> None:
    layer = Dense(2, 1, rng=np.random.default_rng(0))
    layer.params["W"][...] = 0.0
    layer.params["b"][...] = 3.0
    np.testing.assert_array_equal(layer.forward(np.ones((2, 4))), 3.0)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (
            np.ones((3, 5)),
            r"n_in = 2 on axis 0 \(n_in x m, examples last\), got 3 \(shape \(3, 5\)\)",
        ),
        (np.ones(2), r"2 axes .* got shape \(2,\)"),
        (np.ones((2, 0)), "at least one example"),
        (np.array([[np.nan], [1.0]]), "finite"),
        (np.array([[np.inf], [1.0]]), "finite"),
        ([[1.0], [2.0]], "numpy array, got list"),
    ],
)
def test_dense_rejects_bad_input(X: object, message: str) -> None:
    layer = Dense(2, 4, rng=np.random.default_rng(0))
    with pytest.raises((ValueError, TypeError), match=message):
        layer.forward(X)  # type: ignore[arg-type]


def test_dense_rejects_bad_construction_and_upstream() -> None:
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        Dense(2, 3, rng=np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_out must be an int >= 1, got 0"):
        Dense(2, 0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="init must be 'he' or 'xavier'"):
        Dense(2, 3, rng=np.random.default_rng(0), init="zeros")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype must be float64 or float32"):
        Dense(2, 3, rng=np.random.default_rng(0), dtype=np.int64)  # type: ignore[arg-type]
    layer = Dense(2, 3, rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((3, 4)))
    layer.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"shape \(3, 4\), got \(4, 3\)"):
        layer.backward(np.ones((4, 3)))
    with pytest.raises(ValueError, match="dA must be finite"):
        layer.backward(np.full((3, 4), np.nan))


@pytest.mark.parametrize(
    ("n_in", "n_out", "match"),
    [
        (2**63, 3, r"W \(n_out x n_in\) of shape \(3, 9223372036854775808\)"),
        (
            10**6,
            10**6,
            r"W \(n_out x n_in\) of shape \(1000000, 1000000\) \(float64\) needs 7451 GiB",
        ),
    ],
)
def test_sizes_beyond_memory_are_refused_before_allocating(
    n_in: int, n_out: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        Dense(n_in, n_out, rng=np.random.default_rng(0))


@pytest.mark.spec("DENSE-FWD", "DENSE-DW", "DENSE-DB", "DENSE-DX", "NOTE-CONTRACT")
@given(big=st.floats(1e155, 1e308), data=st.data())
def test_results_beyond_the_float_range_are_refused_not_inf(
    big: float, data: st.DataObject
) -> None:
    layer = Dense(2, 2, rng=np.random.default_rng(0))
    layer.params["W"][...] = [[1e308, 1e308], [1.0, 1.0]]
    X = np.full((2, 3), big)  # 1e308 * big is beyond the float64 range
    with pytest.raises(FloatRangeError, match=r"Dense.forward: Y \(DENSE-FWD\) overflows float64"):
        layer.forward(X)
    layer.params["W"][...] = data.draw(arrays((2, 2), min_magnitude=0.5))
    layer.forward(np.full((2, 3), 2.0))
    with pytest.raises(FloatRangeError, match=r"Dense.backward: d[XWb] \(DENSE-D[XWB]\) overflows"):
        layer.backward(np.full((2, 3), 1e308))
