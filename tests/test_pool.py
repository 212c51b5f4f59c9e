"""MaxPool2D and AvgPool2D (MAXPOOL-*, AVGPOOL-*): naive-loop oracle, ties, overflow, bad input."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refnn
from refnn import AvgPool2D, MaxPool2D
from refnn.pool import maxpool_backward, maxpool_forward
from refnn.testing.strategies import PoolShape, arrays, pool_shapes
from refnn.types import FloatArray
from tests.oracles.conv import (
    avgpool_backward_naive,
    avgpool_forward_naive,
    maxpool_backward_naive,
    maxpool_forward_naive,
    rel_diff,
)

RTOL = 1e-12


def normal(seed: int, *shape: int) -> FloatArray:
    return np.random.default_rng(seed).standard_normal(shape)


@st.composite
def pool_problems(draw: st.DrawFn, ties: bool) -> tuple[PoolShape, FloatArray, FloatArray]:
    """A geometry, an input X (with ``ties``: values in {-1, 0, 1}, so windows hold equal
    maxima) and an upstream gradient dA."""
    g = draw(pool_shapes())
    if ties:
        X = draw(hnp.arrays(np.float64, g.input_shape, elements=st.sampled_from([-1.0, 0.0, 1.0])))
    else:
        X = draw(arrays(g.input_shape))
    (kh, kw), (sh, sw) = g.kernel, g.stride
    dA = draw(arrays((g.C, (g.H - kh) // sh + 1, (g.W - kw) // sw + 1, g.m)))
    return g, X, dA


@pytest.mark.spec("MAXPOOL-FWD", "MAXPOOL-BWD", "AVGPOOL-FWD", "AVGPOOL-BWD", "CONV-SIZE")
@given(data=st.data(), ties=st.booleans())
@settings(max_examples=150)
def test_layers_equal_the_naive_loop_oracle(data: st.DataObject, ties: bool) -> None:
    g, X, dA = data.draw(pool_problems(ties))
    maxpool, avgpool = MaxPool2D(g.kernel, stride=g.stride), AvgPool2D(g.kernel, stride=g.stride)
    A_max, A_avg = maxpool.forward(X), avgpool.forward(X)
    A_max_naive, _ = maxpool_forward_naive(X, g.kernel, g.stride)
    dX_max, dX_avg = maxpool.backward(dA), avgpool.backward(dA)
    # max pooling only selects and adds: it must agree exactly (ties go to the same element)
    np.testing.assert_array_equal(A_max, A_max_naive)
    gaps = {
        "max dX": rel_diff(dX_max, maxpool_backward_naive(dA, X, g.kernel, g.stride)),
        "avg A": rel_diff(A_avg, avgpool_forward_naive(X, g.kernel, g.stride)),
        "avg dX": rel_diff(dX_avg, avgpool_backward_naive(dA, X.shape, g.kernel, g.stride)),
    }
    assert max(gaps.values()) <= RTOL, gaps


@pytest.mark.spec("MAXPOOL-FWD", "MAXPOOL-BWD")
def test_ties_send_the_gradient_to_the_first_maximum_in_row_major_order() -> None:
    # one 2x2 window per example: all equal; tie in the second row; tie on the anti-diagonal
    X = np.zeros((1, 2, 2, 3))
    X[0, :, :, 0] = [[5.0, 5.0], [5.0, 5.0]]
    X[0, :, :, 1] = [[1.0, 0.0], [7.0, 7.0]]
    X[0, :, :, 2] = [[0.0, 3.0], [3.0, 1.0]]
    layer = MaxPool2D(2)
    np.testing.assert_array_equal(layer.forward(X)[0, 0, 0], [5.0, 7.0, 3.0])
    dX = layer.backward(np.array([[[[1.0, 2.0, 3.0]]]]))
    expected = np.zeros_like(X)
    expected[0, 0, 0, 0] = 1.0  # top-left
    expected[0, 1, 0, 1] = 2.0  # (1, 0) before (1, 1)
    expected[0, 0, 1, 2] = 3.0  # (0, 1) before (1, 0)
    np.testing.assert_array_equal(dX, expected)


@pytest.mark.spec("MAXPOOL-BWD", "AVGPOOL-BWD")
def test_overlapping_windows_add_their_gradients() -> None:
    # 1 x 3 row, window 1x2, stride 1: the middle pixel is the max of both windows
    X = np.array([0.0, 9.0, 1.0]).reshape(1, 1, 3, 1)
    maxpool = MaxPool2D((1, 2), stride=1)
    np.testing.assert_array_equal(maxpool.forward(X)[0, 0, :, 0], [9.0, 9.0])
    dX = maxpool.backward(np.array([2.0, 3.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(dX[0, 0, :, 0], [0.0, 5.0, 0.0])
    avgpool = AvgPool2D((1, 2), stride=1)
    np.testing.assert_array_equal(avgpool.forward(X)[0, 0, :, 0], [4.5, 5.0])
    dX = avgpool.backward(np.array([2.0, 3.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(dX[0, 0, :, 0], [1.0, 2.5, 1.5])


@pytest.mark.spec("MAXPOOL-FWD", "MAXPOOL-BWD")
def test_a_large_window_routes_to_its_last_offset() -> None:
    # 16 x 17 = 272 offsets (more than a uint8 index could name): the maximum sits at the last
    X = normal(0, 2, 16, 17, 2)
    X[:, -1, -1, :] = 100.0
    layer = MaxPool2D((16, 17))
    assert np.all(layer.forward(X) == 100.0)
    dX = layer.backward(np.ones((2, 1, 1, 2)))
    assert np.all(dX[:, -1, -1, :] == 1.0) and float(np.sum(dX)) == 4.0
    A, cache = maxpool_forward(X, (16, 17), (16, 17))
    won = cache.won.reshape(2, 16 * 17, 2)  # (C, offsets in row-major order, m)
    assert np.all(won[:, 271]) and not np.any(won[:, :271])
    np.testing.assert_array_equal(maxpool_backward(np.ones_like(A), cache), dX)


@pytest.mark.spec("MAXPOOL-FWD", "AVGPOOL-FWD", "CONV-SIZE")
def test_default_stride_is_the_kernel_and_odd_sizes_drop_the_remainder() -> None:
    X = normal(0, 2, 7, 5, 3)
    assert MaxPool2D(2).forward(X).shape == (2, 3, 2, 3)
    assert AvgPool2D((3, 2)).forward(X).shape == (2, 2, 2, 3)
    assert MaxPool2D(2).stride == (2, 2) and MaxPool2D(3, stride=1).stride == (1, 1)


@pytest.mark.spec("MAXPOOL-FWD", "MAXPOOL-BWD", "AVGPOOL-FWD", "AVGPOOL-BWD")
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_float32_in_float32_out_and_inputs_untouched(cls: type[MaxPool2D | AvgPool2D]) -> None:
    layer = cls(2, stride=1, dtype=np.float32)
    X = normal(0, 2, 4, 4, 2).astype(np.float32)
    X_saved = X.copy()
    A = layer.forward(X)
    dA = normal(1, *A.shape).astype(np.float32)
    dA_saved = dA.copy()
    dX = layer.backward(dA)
    assert A.dtype == np.float32 and dX.dtype == np.float32
    np.testing.assert_array_equal(X, X_saved)
    np.testing.assert_array_equal(dA, dA_saved)
    reference = cls(2, stride=1)
    np.testing.assert_allclose(A, reference.forward(X.astype(np.float64)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dX, reference.backward(dA.astype(np.float64)), rtol=1e-6, atol=1e-6)


@pytest.mark.spec("AVGPOOL-FWD", "AVGPOOL-BWD")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("kernel", "stride"), [(2, None), (3, 1), ((1, 5), 2)])
def test_average_of_values_near_the_top_of_the_range_does_not_overflow(
    dtype: type[np.floating[Any]], kernel: int | tuple[int, int], stride: int | None
) -> None:
    # a sum of the window would overflow to inf (with a RuntimeWarning, an error under pytest)
    top = np.finfo(dtype).max
    X = np.full((2, 5, 6, 3), top, dtype=dtype)
    X[0] *= dtype(-1.0)
    X[1, 0, 0, 0] = dtype(1e308 if dtype == np.float64 else 3e38)
    layer = AvgPool2D(kernel, stride=stride, dtype=dtype)
    A = layer.forward(X)
    assert np.all(np.isfinite(A))
    if kernel == 2:  # scaling by 1/4 is exact: a window of equal values averages to itself
        assert np.all(A[0] == -top) and A[1, -1, -1, -1] == top
    expected = (
        avgpool_forward_naive(X.astype(np.float64) / 16, layer.kernel_size, layer.stride) * 16
    )
    assert rel_diff(A.astype(np.float64), expected) <= (1e-12 if dtype == np.float64 else 1e-6)
    dX = layer.backward(np.full(A.shape, top, dtype=dtype))
    assert np.all(np.isfinite(dX))


def test_config_and_public_names() -> None:
    for cls in (MaxPool2D, AvgPool2D):
        layer = cls((2, 3), stride=(1, 2))
        config = json.loads(json.dumps(layer.config()))
        assert config == {"kernel_size": [2, 3], "stride": [1, 2], "dtype": "float64"}
        assert cls(**config).config() == layer.config()
        assert layer.params == {}
    assert refnn.MaxPool2D is MaxPool2D and refnn.AvgPool2D is AvgPool2D


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_bad_input_names_expected_and_actual(cls: type[MaxPool2D | AvgPool2D]) -> None:
    with pytest.raises(ValueError, match=r"kernel_size must be an int >= 1, got 0"):
        cls(0)
    with pytest.raises(ValueError, match=r"stride must be an int >= 1, got 0"):
        cls(2, stride=0)
    with pytest.raises(TypeError, match=r"kernel_size must be an int >= 1 or a pair.*2\.0"):
        cls(2.0)  # type: ignore[arg-type]  # deliberately wrong
    with pytest.raises(TypeError, match=r"kernel_size must be an int >= 1 or a pair.*b'ab'"):
        cls(b"ab")  # type: ignore[arg-type]  # bytes are ints: not a 97 x 98 window
    with pytest.raises(TypeError, match=r"stride must be an int >= 1, got 1\.5"):
        cls(2, stride=(1, 1.5))  # type: ignore[arg-type]  # deliberately wrong
    with pytest.raises(TypeError, match=r"training must be True or False, got 'no'"):
        cls(2).forward(np.zeros((1, 4, 4, 1)), training="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"C x H x W x m.*got shape \(2, 4\)"):
        cls(2).forward(np.zeros((2, 4)))
    layer = cls((3, 2))
    with pytest.raises(ValueError, match=r"kernel \(kh, kw\) = \(3, 2\) is larger than.*\(2, 5\)"):
        layer.forward(np.zeros((1, 2, 5, 1)))
    with pytest.raises(
        ValueError, match=r"4 axes \(C x H x W x m, examples last\), got shape \(4, 4\)"
    ):
        layer.forward(np.zeros((4, 4)))
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((1, 1, 1, 1)))
    A = layer.forward(np.zeros((2, 6, 4, 3)))
    assert A.shape == (2, 2, 2, 3)
    with pytest.raises(ValueError, match=r"dA must have the output's shape \(2, 2, 2, 3\)"):
        layer.backward(np.zeros((2, 2, 2, 1)))  # no silent broadcast


@pytest.mark.spec("AVGPOOL-FWD")
@pytest.mark.parametrize(
    ("shape", "stride", "where", "partner"),
    [
        ((2, 4, 6, 3), None, (1, 2, 3, 0), (1, 3, 2, 0)),  # windows tile X: read off A
        ((2, 5, 6, 3), None, (1, 4, 3, 0), (1, 4, 2, 0)),  # row 4 is in no window
        ((2, 5, 5, 3), (1, 1), (0, 2, 2, 1), (0, 2, 3, 1)),  # overlapping windows
    ],
)
def test_avgpool_refuses_a_nonfinite_X_wherever_it_is(
    shape: tuple[int, ...],
    stride: tuple[int, int] | None,
    where: tuple[int, ...],
    partner: tuple[int, ...],
) -> None:
    # AvgPool2D reads X's finiteness off its output where the windows tile X; a NaN, an
    # infinity, or +inf and -inf in one window (where, partner), anywhere in X, must still be
    # refused by name.
    layer = AvgPool2D(2, stride=stride)
    X = np.random.default_rng(0).standard_normal(shape)
    layer.forward(X)
    for values in ([np.nan], [np.inf], [-np.inf], [np.inf, -np.inf]):
        bad = X.copy()
        bad[where] = values[0]
        if len(values) == 2:
            bad[partner] = values[1]
        with pytest.raises(ValueError, match=r"X must be finite, got NaN or Inf"):
            layer.forward(bad)
