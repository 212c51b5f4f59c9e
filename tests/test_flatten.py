"""Flatten (FLATTEN-*): element order, views (no copy), inverse in backward, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnn
from refnn import Flatten
from refnn.flatten import flatten, unflatten
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from tests.oracles.conv import flatten_naive

dims = st.integers(1, 5)


def normal(seed: int, *shape: int) -> FloatArray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.spec("FLATTEN-FWD", "FLATTEN-BWD")
@given(shape=st.tuples(dims, dims, dims, dims), data=st.data())
@settings(max_examples=100)
def test_flatten_equals_the_naive_loop_and_backward_inverts_it(
    shape: tuple[int, int, int, int], data: st.DataObject
) -> None:
    C, H, W, m = shape
    X = data.draw(arrays(shape))
    layer = Flatten()
    A = layer.forward(X)
    np.testing.assert_array_equal(A, flatten_naive(X))
    dA = data.draw(arrays((C * H * W, m)))
    dX = layer.backward(dA)
    assert dX.shape == X.shape
    # backward is the exact inverse permutation of forward's element order
    np.testing.assert_array_equal(flatten_naive(dX), dA)


@pytest.mark.spec("FLATTEN-FWD", "FLATTEN-BWD")
def test_both_directions_are_views_of_contiguous_arrays() -> None:
    X = normal(0, 3, 4, 5, 2)
    layer = Flatten()
    A = layer.forward(X)
    assert A.shape == (60, 2) and np.shares_memory(A, X) and A.base is not None
    dA = normal(1, 60, 2)
    dX = layer.backward(dA)
    assert np.shares_memory(dX, dA)
    assert np.shares_memory(unflatten(dA, (3, 4, 5, 2)), dA)
    assert np.shares_memory(flatten(X), X)


@pytest.mark.spec("FLATTEN-FWD")
def test_non_contiguous_inputs_are_copied_correctly_and_not_modified() -> None:
    base = normal(0, 4, 6, 5, 6)
    X = base[::2, :, ::-1, 1::2]
    saved = X.copy()
    A = Flatten().forward(X)
    np.testing.assert_array_equal(A, flatten_naive(np.ascontiguousarray(X)))
    np.testing.assert_array_equal(X, saved)


@pytest.mark.spec("FLATTEN-FWD", "FLATTEN-BWD")
def test_any_rank_from_two_and_float32() -> None:
    layer = Flatten(dtype=np.float32)
    X = normal(0, 3, 7, 2).astype(np.float32)  # n x T x m
    A = layer.forward(X)
    assert A.shape == (21, 2) and A.dtype == np.float32 and np.shares_memory(A, X)
    assert layer.backward(np.ones((21, 2), dtype=np.float32)).shape == (3, 7, 2)
    assert Flatten().forward(np.ones((4, 3))).shape == (4, 3)


def test_bad_input_and_config() -> None:
    layer = Flatten()
    with pytest.raises(ValueError, match=r"at least 2 axes.*got shape \(5,\)"):
        layer.forward(np.zeros(5))
    with pytest.raises(TypeError, match=r"X must be a numpy array, got list"):
        layer.forward([1.0, 2.0])  # type: ignore[arg-type]  # deliberately wrong
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((4, 1)))
    layer.forward(np.zeros((2, 2, 3, 4)))
    with pytest.raises(ValueError, match=r"dA must have the output's shape \(12, 4\)"):
        layer.backward(np.zeros((12, 1)))  # no silent broadcast
    assert json.loads(json.dumps(layer.config())) == {"dtype": "float64"}
    assert refnn.Flatten is Flatten and layer.params == {}
