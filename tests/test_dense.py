"""Dense layer: equations DENSE-*, INIT-*, against naive loops and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn import Dense
from refnn.dense import DenseCache, dense_backward, dense_forward
from tests.strategies import normal, seeds, sizes


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
@given(n_in=sizes, n_out=sizes, m=sizes, seed=seeds)
def test_dense_matches_naive_loops(n_in: int, n_out: int, m: int, seed: int) -> None:
    X, W, b, dZ = (
        normal(seed + i, *s)
        for i, s in enumerate([(n_in, m), (n_out, n_in), (n_out, 1), (n_out, m)])
    )
    Z, cache = dense_forward(X, W, b)
    np.testing.assert_allclose(Z, naive_forward(X, W, b), rtol=1e-12, atol=1e-12)
    grads = dense_backward(dZ, W, cache)
    dX, dW, db = naive_backward(dZ, X, W)
    np.testing.assert_allclose(grads.dX, dX, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads.dW, dW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads.db, db, rtol=1e-12, atol=1e-12)


@pytest.mark.spec("DENSE-DW", "DENSE-DB", "DENSE-DX")
@given(n_in=sizes, n_out=sizes, m=sizes, seed=seeds, a=st.floats(-3, 3))
def test_dense_backward_is_linear_in_dZ(n_in: int, n_out: int, m: int, seed: int, a: float) -> None:
    X, W, d1, d2 = (
        normal(seed, n_in, m),
        normal(seed + 1, n_out, n_in),
        normal(seed + 2, n_out, m),
        normal(seed + 3, n_out, m),
    )
    cache = DenseCache(X)
    g1, g2, g12 = (
        dense_backward(d1, W, cache),
        dense_backward(d2, W, cache),
        dense_backward(a * d1 + d2, W, cache),
    )
    for name in ("dX", "dW", "db"):
        np.testing.assert_allclose(
            getattr(g12, name), a * getattr(g1, name) + getattr(g2, name), atol=1e-10
        )


@pytest.mark.spec("DENSE-FWD", "DENSE-DW", "DENSE-DB", "DENSE-DX")
@given(n_in=sizes, n_out=sizes, m=sizes, seed=seeds)
def test_dense_layer_shapes_and_grads(n_in: int, n_out: int, m: int, seed: int) -> None:
    layer = Dense(n_in, n_out, rng=np.random.default_rng(seed))
    X = normal(seed, n_in, m)
    X_before = X.copy()
    Z = layer.forward(X)
    assert Z.shape == (n_out, m)
    dX = layer.backward(np.ones((n_out, m)))
    assert dX.shape == X.shape
    assert set(layer.grads) == set(layer.params) == {"W", "b"}
    assert layer.grads["W"].shape == (n_out, n_in) and layer.grads["b"].shape == (n_out, 1)
    np.testing.assert_array_equal(X, X_before)  # the caller's input is untouched


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


@pytest.mark.spec("DENSE-FWD", "DENSE-DW")
def test_float32_layer_computes_in_float32() -> None:
    layer = Dense(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
    assert layer.params["W"].dtype == np.float32
    Z = layer.forward(np.ones((3, 4), dtype=np.float32))
    assert Z.dtype == np.float32
    assert layer.backward(np.ones((2, 4), dtype=np.float32)).dtype == np.float32
    assert layer.grads["W"].dtype == np.float32 and layer.grads["b"].dtype == np.float32
