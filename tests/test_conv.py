"""Conv2D (CONV-*, WINO-*): naive-loop oracle on both algorithms, Winograd against the direct
path, the transform identity, hand values, im2col/col2im, memory, init, bad input."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import refnn
import refnn._windows
from refnn import Conv2D, ReLU
from refnn._validate import FloatRangeError
from refnn.conv import (
    ConvCache,
    ConvGeometry,
    col2im,
    conv_backward,
    conv_forward,
    im2col,
    output_size,
)
from refnn.gradcheck import check_grad
from refnn.testing.strategies import ConvShape, arrays, conv_shapes
from refnn.types import DTypeLike, FloatArray
from refnn.verify.problems import layer_problem
from refnn.winograd import (
    F2x2,
    F4x4,
    WinogradTransform,
    release_scratch,
    winograd_backward,
    winograd_forward,
)
from tests.oracles.conv import conv_backward_naive, conv_forward_naive, rel_diff

RTOL = 1e-12
F32_BOUND = 1e-5  # specs/conv.md, Winograd accuracy: float32 against float64, per array
F32_TINY = 1e-30  # and its domain: products of input magnitudes 0 or at least this
TRANSFORMS = pytest.mark.parametrize("transform", [F2x2, F4x4], ids=["F2x2", "F4x4"])

Problem = tuple[ConvShape, FloatArray, FloatArray, FloatArray, FloatArray]


@st.composite
def problems(
    draw: st.DrawFn, shapes: st.SearchStrategy[ConvShape], dtype: Any = np.float64
) -> Problem:
    """A geometry with its arrays X, W, b and an upstream gradient dZ, entries in [-4, 4]."""
    g = draw(shapes)
    H_out, W_out = g.output_hw
    X = draw(arrays(g.input_shape, dtype=dtype))
    W = draw(arrays((g.F, g.C, *g.kernel), dtype=dtype))
    b = draw(arrays((g.F, 1), dtype=dtype))
    dZ = draw(arrays((g.F, H_out, W_out, g.m), dtype=dtype))
    return g, X, W, b, dZ


def _3x3(g: ConvShape) -> ConvShape:
    return dataclasses.replace(g, kernel=(3, 3), stride=(1, 1))


def shapes_3x3(**kwargs: int) -> st.SearchStrategy[ConvShape]:
    """conv_shapes restricted to the Winograd path: 3 x 3 kernels, stride 1."""
    fits = lambda g: g.H + 2 * g.padding[0] >= 3 and g.W + 2 * g.padding[1] >= 3  # noqa: E731
    return conv_shapes(**kwargs).map(_3x3).filter(fits)


def _layer(g: ConvShape, W: FloatArray, b: FloatArray, algorithm: str = "auto") -> Conv2D:
    layer = Conv2D(
        g.C,
        g.F,
        g.kernel,
        stride=g.stride,
        padding=g.padding,
        rng=np.random.default_rng(0),
        dtype=W.dtype,
        algorithm=algorithm,
    )
    layer.params["W"][...] = W
    layer.params["b"][...] = b
    return layer


def _run(layer: Conv2D, X: FloatArray, dZ: FloatArray) -> dict[str, FloatArray]:
    Z = layer.forward(X)
    dX = layer.backward(dZ)
    return {"Z": Z, "dX": dX, "dW": layer.grads["W"], "db": layer.grads["b"]}


def _naive(
    g: ConvShape, X: FloatArray, W: FloatArray, b: FloatArray, dZ: FloatArray
) -> dict[str, FloatArray]:
    dX, dW, db = conv_backward_naive(dZ, X, W, g.stride, g.padding)
    return {"Z": conv_forward_naive(X, W, b, g.stride, g.padding), "dX": dX, "dW": dW, "db": db}


def _gaps(got: dict[str, FloatArray], want: dict[str, FloatArray]) -> dict[str, float]:
    return {k: rel_diff(got[k], want[k]) for k in want}


Reference = Callable[
    [ConvShape, FloatArray, FloatArray, FloatArray, FloatArray], dict[str, FloatArray]
]


def _direct(
    g: ConvShape, X: FloatArray, W: FloatArray, b: FloatArray, dZ: FloatArray
) -> dict[str, FloatArray]:
    """The direct (im2col) path in float64: the reference, itself checked against the loops."""
    X, W, b, dZ = (a.astype(np.float64) for a in (X, W, b, dZ))
    Z, cache = conv_forward(X, W, b, stride=g.stride, padding=g.padding)
    dX, dW, db = conv_backward(dZ, W, cache)
    return {"Z": Z, "dX": dX, "dW": dW, "db": db}


def _term_gaps(
    got: dict[str, FloatArray], p: Problem, reference: Reference = _naive
) -> dict[str, float]:
    """max |got - reference| / max of the reference on arrays holding max |X|, max |W|,
    max |b|, max |dZ| everywhere, per array: the error against the size of the terms (the
    normwise scale of Winograd's bound: its transforms mix all the weights of a tile, so an
    output far smaller than those, as with weights of 1 and 1e-30, has a large error relative
    to itself and a tiny one relative to its terms)."""
    g, X, W, b, dZ = p
    want = reference(*p)
    tops = (np.full(a.shape, np.max(np.abs(a), initial=0.0)) for a in (X, W, b, dZ))
    scale = reference(g, *tops)
    out: dict[str, float] = {}
    for k in want:
        gap = float(np.max(np.abs(got[k].astype(np.float64) - want[k]), initial=0.0))
        top = float(np.max(scale[k], initial=0.0))
        out[k] = gap / top if top > 0 else gap
    return out


def normal(seed: int, *shape: int) -> FloatArray:
    return np.random.default_rng(seed).standard_normal(shape)


def fixed_problem(g: ConvShape, dtype: DTypeLike = np.float64) -> Problem:
    """X, W, b and dZ for g, standard normal from fixed seeds."""
    H_out, W_out = g.output_hw
    shapes = [g.input_shape, (g.F, g.C, *g.kernel), (g.F, 1), (g.F, H_out, W_out, g.m)]
    X, W, b, dZ = (normal(i, *shape).astype(dtype) for i, shape in enumerate(shapes))
    return g, X, W, b, dZ


# --- the naive oracle, on both algorithms --------------------------------------------------------


@pytest.mark.spec("CONV-SIZE", "CONV-COL", "CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
@given(p=problems(conv_shapes()))
@settings(max_examples=150)
def test_direct_path_equals_the_naive_loop_oracle(p: Problem) -> None:
    g, X, W, b, dZ = p
    gaps = _gaps(_run(_layer(g, W, b, "direct"), X, dZ), _naive(*p))
    assert max(gaps.values()) <= RTOL, gaps


def _tiny_weights(X: float, dZ: float) -> Problem:
    """A 1 x 1 image, padding 1: only W's centre (1e-30) meets X; the corner (1) only meets zeros.
    Relative to the output itself Winograd's error is 100% here; relative to its terms, tiny."""
    g = ConvShape(1, 1, 1, 1, (3, 3), (1, 1), (1, 1), 1)
    W = np.full((1, 1, 3, 3), 1e-30)
    W[0, 0, 0, 0] = 1.0
    return g, np.full((1, 1, 1, 1), X), W, np.zeros((1, 1)), np.full((1, 1, 1, 1), dZ)


@pytest.mark.spec("WINO-FWD", "WINO-DW", "WINO-DX", "CONV-DB")
@given(p=problems(shapes_3x3()))
@example(p=_tiny_weights(1.0, 0.0))  # found by CI: Z's gap was 1.0 relative to Z
@example(p=_tiny_weights(0.0, 1.0))  # and dX's
@settings(max_examples=60)
def test_winograd_path_equals_the_naive_loop_oracle(p: Problem) -> None:
    g, X, W, b, dZ = p
    layer = _layer(g, W, b, "auto")  # 3 x 3 at stride 1: "auto" takes the Winograd path
    assert layer.config()["algorithm"] == "winograd"
    gaps = _term_gaps(_run(layer, X, dZ), p)
    assert max(gaps.values()) <= RTOL, gaps


# --- Winograd against the direct path ------------------------------------------------------------


def fast_vs_direct(p: Problem, transform: WinogradTransform) -> dict[str, float]:
    """Gap per array between winograd_* (on p's dtype) and the float64 direct path, against the
    size of the terms (``_term_gaps``)."""
    g, X, W, b, dZ = p
    Z, cache = winograd_forward(X, W, b, padding=g.padding, transform=transform)
    dX, dW, db = winograd_backward(dZ, W, cache)
    got = {"Z": Z, "dX": dX, "dW": dW, "db": db}
    assert all(a.dtype == X.dtype for a in got.values())
    return _term_gaps(got, p, _direct)


@pytest.mark.spec("WINO-FWD", "WINO-DW", "WINO-DX")
@TRANSFORMS
@given(p=problems(shapes_3x3(max_channels=5, max_size=11)))
@settings(max_examples=40)
def test_winograd_agrees_with_direct_in_float64(transform: WinogradTransform, p: Problem) -> None:
    gaps = fast_vs_direct(p, transform)
    assert max(gaps.values()) <= RTOL, gaps


@pytest.mark.spec("WINO-FWD", "WINO-DW", "WINO-DX")
@TRANSFORMS
@given(p=problems(shapes_3x3(max_channels=5, max_size=11), dtype=np.float32))
@settings(max_examples=40)
def test_winograd_agrees_with_direct_in_float32_within_the_documented_bound(
    transform: WinogradTransform, p: Problem
) -> None:
    # the documented domain: hypothesis found X = 1, W = 1.2e-38 (float32's smallest normal),
    # which G's 1/24 makes subnormal: Z's gap was 1.2e-5
    _, X, W, _, dZ = p
    x, w, dz = (float(np.max(np.abs(a), initial=0.0)) for a in (X, W, dZ))
    assume(all(v == 0.0 or v >= F32_TINY for v in (x * w, w * dz, x * dz)))
    gaps = fast_vs_direct(p, transform)
    assert max(gaps.values()) <= F32_BOUND, gaps


@pytest.mark.spec("WINO-FWD", "WINO-DW", "WINO-DX")
@TRANSFORMS
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_winograd_agrees_with_direct_on_a_larger_layer(
    transform: WinogradTransform, dtype: DTypeLike
) -> None:
    # 16 -> 8 channels, 14 x 13 (odd: the last tiles are cut), 10 examples, padding 1
    g = ConvShape(16, 8, 14, 13, (3, 3), (1, 1), (1, 1), 10)
    gaps = fast_vs_direct(fixed_problem(g, dtype), transform)
    assert max(gaps.values()) <= (RTOL if dtype == np.float64 else F32_BOUND), gaps


def _correlate_1d(T: WinogradTransform, d: list[Fraction], g: list[Fraction]) -> list[Fraction]:
    """AT [(G g) * (BT d)] in exact rational arithmetic."""
    Gg = [sum((row[i] * g[i] for i in range(3)), Fraction(0)) for row in T.G]
    Bd = [sum((row[r] * d[r] for r in range(T.alpha)), Fraction(0)) for row in T.BT]
    return [sum((row[a] * Gg[a] * Bd[a] for a in range(T.alpha)), Fraction(0)) for row in T.AT]


def identity_holds(T: WinogradTransform) -> bool:
    """WINO-1D on every pair of basis vectors (the map is bilinear, so that proves it)."""
    for r in range(T.alpha):
        for i in range(3):
            d = [Fraction(int(k == r)) for k in range(T.alpha)]
            g = [Fraction(int(k == i)) for k in range(3)]
            expected = [Fraction(int(r == k + i)) for k in range(T.mo)]
            if _correlate_1d(T, d, g) != expected:
                return False
    return True


@pytest.mark.spec("WINO-1D")
def test_the_transform_matrices_satisfy_the_1d_identity_exactly() -> None:
    assert identity_holds(F2x2) and identity_holds(F4x4)
    assert (F2x2.mo, F2x2.alpha, F4x4.mo, F4x4.alpha) == (2, 4, 4, 6)


def _wrong(T: WinogradTransform, which: str, row: int, col: int) -> WinogradTransform:
    M = [list(r) for r in getattr(T, which)]
    M[row][col] += Fraction(1, 4)
    return dataclasses.replace(T, **{which: tuple(tuple(r) for r in M)})


@pytest.mark.spec("WINO-1D", "WINO-FWD", "WINO-DW", "WINO-DX")
@TRANSFORMS
@pytest.mark.parametrize(
    ("which", "row", "col"), [("BT", 1, 2), ("G", 2, 1), ("AT", 1, 3), ("BT", 3, 3)]
)
def test_a_wrong_transform_matrix_is_caught(
    transform: WinogradTransform, which: str, row: int, col: int
) -> None:
    # the checks above bite: one wrong entry breaks the identity and the agreement with direct
    wrong = _wrong(transform, which, row, col)
    assert not identity_holds(wrong)
    g = ConvShape(2, 3, 5, 6, (3, 3), (1, 1), (1, 1), 2)
    assert max(fast_vs_direct(fixed_problem(g), wrong).values()) > 1e-3
    assert max(fast_vs_direct(fixed_problem(g), transform).values()) <= RTOL


@pytest.mark.spec("WINO-FWD", "WINO-DW")
def test_a_transform_without_a_column_of_ones_in_AT_is_refused_by_name() -> None:
    # the bias and db go through the point whose column of AT is all ones
    assert (F2x2.ones, F4x4.ones) == (1 * 4 + 1, 1 * 6 + 1)
    wrong = _wrong(F4x4, "AT", 2, 1)  # AT[2][1] = 1 + 1/4
    g = ConvShape(2, 3, 5, 6, (3, 3), (1, 1), (1, 1), 2)
    with pytest.raises(ValueError, match=r"AT has no column of ones, got AT = "):
        fast_vs_direct(fixed_problem(g), wrong)


# --- hand values ---------------------------------------------------------------------------------


@pytest.mark.spec("CONV-FWD", "CONV-DX")
def test_hand_computed_values() -> None:
    # one 3x3 image, a 2x2 kernel, stride 1, no padding: every output is a 2x2 window sum
    X = np.arange(9.0).reshape(1, 3, 3, 1)  # rows [0 1 2], [3 4 5], [6 7 8]
    W = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    Z, cache = conv_forward(X, W, np.array([[0.5]]))
    # Z[0,0] = 0*1 + 1*2 + 3*3 + 4*4 + 0.5 = 27.5 (a correlation: the kernel is not flipped)
    np.testing.assert_array_equal(Z[0, :, :, 0], [[27.5, 37.5], [57.5, 67.5]])
    dX, dW, db = conv_backward(np.ones_like(Z), W, cache)
    # dX counts how often each pixel meets each kernel entry: the full correlation of ones
    np.testing.assert_array_equal(
        dX[0, :, :, 0], [[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]
    )
    np.testing.assert_array_equal(dW[0, 0], [[8.0, 12.0], [20.0, 24.0]])
    np.testing.assert_array_equal(db, [[4.0]])


@pytest.mark.spec("WINO-FWD", "WINO-DW", "WINO-DX")
@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
def test_3x3_box_filter_by_hand(algorithm: str) -> None:
    # a 3x3 kernel of ones with padding 1 sums each pixel's neighbourhood (small integers: exact
    # on the direct path; F(4x4, 3x3)'s G holds 1/6 and 1/24, which binary floats round)
    same: Callable[[FloatArray, list[list[float]]], None] = (
        np.testing.assert_array_equal
        if algorithm == "direct"
        else lambda got, want: np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    )
    layer = Conv2D(1, 1, 3, padding=1, rng=np.random.default_rng(0), algorithm=algorithm)
    layer.params["W"][...] = 1.0
    sums = [[8.0, 15.0, 12.0], [21.0, 36.0, 27.0], [20.0, 33.0, 24.0]]
    Z = layer.forward(np.arange(9.0).reshape(1, 3, 3, 1))
    same(Z[0, :, :, 0], sums)
    dX = layer.backward(np.ones_like(Z))
    # each pixel is read by as many windows as it has neighbours (itself included)
    same(dX[0, :, :, 0], [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]])
    same(layer.grads["W"][0, 0], sums)  # dW[i, j] = sum of X_p shifted
    same(layer.grads["b"], [[9.0]])


@pytest.mark.spec("CONV-FWD", "CONV-DX")
def test_padding_and_stride_by_hand() -> None:
    # 1 x 2 x 2 image, 3x3 kernel of ones, padding 1, stride 2: output 1x1 = sum of everything
    X = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    Z, cache = conv_forward(
        X, np.ones((1, 1, 3, 3)), np.zeros((1, 1)), stride=(2, 2), padding=(1, 1)
    )
    assert Z.shape == (1, 1, 1, 1) and Z[0, 0, 0, 0] == 10.0
    dX, _, _ = conv_backward(np.full(Z.shape, 2.0), np.ones((1, 1, 3, 3)), cache)
    np.testing.assert_array_equal(dX, np.full(X.shape, 2.0))


@pytest.mark.spec("CONV-SIZE")
@pytest.mark.parametrize(
    ("size", "k", "s", "p", "expected"),
    [
        (5, 3, 1, 0, 3),
        (5, 3, 1, 1, 5),
        (7, 2, 3, 0, 2),
        (32, 3, 1, 1, 32),
        (4, 6, 1, 1, 1),
        (6, 3, 2, 1, 3),
        (1, 1, 5, 0, 1),
        (10, 4, 3, 2, 4),
        (5, 1, 2**63, 0, 1),
    ],
)
def test_output_size_formula(size: int, k: int, s: int, p: int, expected: int) -> None:
    assert output_size(size, k, s, p) == expected
    # the number of window starts 0, s, 2s, ... with start + k <= size + 2p
    assert expected == len(range(0, size + 2 * p - k + 1, s))


# --- im2col / col2im -----------------------------------------------------------------------------


@pytest.mark.spec("CONV-COL")
@given(p=problems(conv_shapes()))
@settings(max_examples=40)
def test_im2col_matches_its_definition_entry_by_entry(p: Problem) -> None:
    g, X, *_ = p
    geo = ConvGeometry.of(X.shape, g.kernel, g.stride, g.padding)
    col = im2col(X, geo)
    assert col.shape == geo.col_shape(g.m) and col.flags.c_contiguous
    Xp = np.pad(X, ((0, 0), (g.padding[0],) * 2, (g.padding[1],) * 2, (0, 0)))
    (kh, kw), (sh, sw) = g.kernel, g.stride
    for (r, q), value in np.ndenumerate(col):
        c, i, j = np.unravel_index(r, (g.C, kh, kw))
        y, x, n = np.unravel_index(q, (geo.H_out, geo.W_out, g.m))
        assert value == Xp[c, sh * y + i, sw * x + j, n]


@pytest.mark.spec("CONV-COL", "CONV-DX")
@given(data=st.data(), p=problems(conv_shapes()))
@settings(max_examples=40)
def test_col2im_is_the_adjoint_of_im2col(data: st.DataObject, p: Problem) -> None:
    # <im2col(X), D> = <X, col2im(D)> for all X, D: col2im is the transpose of the linear map
    g, X, *_ = p
    geo = ConvGeometry.of(X.shape, g.kernel, g.stride, g.padding)
    D = data.draw(arrays(geo.col_shape(g.m)))
    lhs = float(np.sum(im2col(X, geo) * D))
    rhs = float(np.sum(X * col2im(D, geo, g.m)))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12 * float(np.sum(np.abs(D)) * 4 + 1))


@pytest.mark.spec("CONV-DX")
def test_pixels_no_window_reads_get_zero_gradient() -> None:
    # 1x1 kernel, stride 2 on a 5x5 image: only even rows and columns are read
    layer = Conv2D(2, 3, 1, stride=2, rng=np.random.default_rng(0))
    Z = layer.forward(normal(0, 2, 5, 5, 2))
    assert Z.shape == (3, 3, 3, 2)
    dX = layer.backward(normal(1, *Z.shape))
    assert np.all(dX[:, 1::2, :, :] == 0) and np.all(dX[:, :, 1::2, :] == 0)
    assert np.all(dX[:, ::2, ::2, :] != 0)


@pytest.mark.spec("CONV-FWD", "WINO-FWD")
@pytest.mark.parametrize("kernel", [(2, 3), (3, 3)])
def test_each_example_is_convolved_independently(kernel: tuple[int, int]) -> None:
    layer = Conv2D(3, 2, kernel, padding=1, rng=np.random.default_rng(3))
    X = normal(4, 3, 5, 6, 4)
    Z = layer.forward(X)
    for n in range(4):
        single = layer.forward(X[..., n : n + 1])[..., 0]
        assert rel_diff(single, Z[..., n]) <= RTOL


# --- no state between calls, dtype, inputs untouched ---------------------------------------------


@pytest.mark.spec("CONV-DW", "CONV-DX", "WINO-DW", "WINO-DX")
@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
def test_nothing_returned_or_cached_is_shared_with_the_caller_or_a_later_call(
    algorithm: str,
) -> None:
    layer = Conv2D(2, 3, 3, padding=1, rng=np.random.default_rng(0), algorithm=algorithm)
    X1, X2, dZ = normal(1, 2, 5, 5, 2), normal(2, 2, 5, 5, 2), normal(3, 3, 5, 5, 2)
    Z1 = layer.forward(X1)
    expected = conv_backward_naive(dZ, X1, layer.params["W"], (1, 1), (1, 1))
    X1[...] = 0.0  # the caller reuses its input and the output: the cache holds neither
    Z1[...] = 0.0
    dX1 = layer.backward(dZ)
    assert rel_diff(dX1, expected[0]) <= RTOL and rel_diff(layer.grads["W"], expected[1]) <= RTOL
    saved = [dX1.copy(), layer.grads["W"].copy()]
    layer.forward(X2)  # a later call with the same shapes reuses nothing it returned
    layer.backward(normal(5, 3, 5, 5, 2))
    np.testing.assert_array_equal(dX1, saved[0])
    assert not np.array_equal(layer.grads["W"], saved[1])  # new gradients, the old array kept


@pytest.mark.spec("CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX", "WINO-FWD", "WINO-DW", "WINO-DX")
@pytest.mark.parametrize("algorithm", ["direct", "auto"])
def test_float32_end_to_end(algorithm: str) -> None:
    layer = Conv2D(
        3, 4, 3, padding=1, rng=np.random.default_rng(0), dtype=np.float32, algorithm=algorithm
    )
    assert layer.params["W"].dtype == np.float32 and layer.params["b"].dtype == np.float32
    layer.params["b"][...] = normal(9, 4, 1)
    X = normal(1, 3, 6, 5, 3).astype(np.float32)
    dZ = normal(2, 4, 6, 5, 3).astype(np.float32)
    got = _run(layer, X, dZ)
    assert all(a.dtype == np.float32 for a in got.values())
    W64, b64 = layer.params["W"].astype(np.float64), layer.params["b"].astype(np.float64)
    g = ConvShape(3, 4, 6, 5, (3, 3), (1, 1), (1, 1), 3)
    gaps = _gaps(got, _naive(g, X.astype(np.float64), W64, b64, dZ.astype(np.float64)))
    assert max(gaps.values()) < F32_BOUND, gaps


@pytest.mark.spec("CONV-FWD", "CONV-DX")
@pytest.mark.parametrize("algorithm", ["direct", "auto"])
def test_inputs_are_not_modified_and_views_work(algorithm: str) -> None:
    layer = Conv2D(2, 2, 3, padding=1, rng=np.random.default_rng(0), algorithm=algorithm)
    X = normal(0, 2, 6, 5, 4)[:, ::-1, :, ::2]  # a non-contiguous view
    saved = X.copy()
    Z = layer.forward(X)
    np.testing.assert_array_equal(Z, layer.forward(np.ascontiguousarray(X)))
    dZ = normal(1, *Z.shape)
    dZ_saved = dZ.copy()
    layer.backward(dZ)
    np.testing.assert_array_equal(X, saved)
    np.testing.assert_array_equal(dZ, dZ_saved)
    Xi: np.ndarray[Any, Any] = np.arange(2 * 4 * 4).reshape(2, 4, 4, 1)
    assert layer.forward(Xi).dtype == np.float64  # integers are converted, not refused


def _peak(layer: Conv2D, X: FloatArray, dZ: FloatArray) -> int:
    release_scratch()  # Winograd's scratch buffers count: allocate them within the measure
    tracemalloc.start()
    try:
        layer.forward(X)
        layer.backward(dZ)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.spec("CONV-COL", "CONV-DX", "WINO-FWD", "WINO-DX")
@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
def test_peak_memory_is_at_most_two_patch_matrices(algorithm: str) -> None:
    # the first numpy work in a process allocates lasting internal buffers: warm up with
    # another layer first, so that the figure does not depend on the tests that ran before
    warm = ReLU()
    warm.backward(0 * warm.forward(normal(0, 8, 8)))
    Conv2D(2, 2, 3, rng=np.random.default_rng(0), algorithm=algorithm).forward(
        normal(0, 2, 4, 4, 1)
    )
    C, F, H, W, m = 8, 8, 32, 32, 16
    layer = Conv2D(C, F, 3, padding=1, rng=np.random.default_rng(0), algorithm=algorithm)
    X, dZ = normal(0, C, H, W, m), normal(1, F, H, W, m)
    col_bytes = C * 9 * H * W * m * 8
    outputs = X.nbytes + dZ.nbytes  # Z and dX (dW and db are small)
    peak = _peak(layer, X, dZ)
    # slack: validation temporaries (a bool mask of dZ, fingerprints), 5% of a patch matrix here
    assert peak <= 2.05 * col_bytes + outputs, (peak - outputs) / col_bytes


def _winograd_run(p: Problem) -> list[FloatArray]:
    g, X, W, b, dZ = p
    Z, cache = winograd_forward(X, W, b, padding=g.padding)
    return [Z, *winograd_backward(dZ, W, cache)]


def _direct_run(p: Problem) -> list[FloatArray]:
    g, X, W, b, dZ = p
    Z, cache = conv_forward(X, W, b, stride=g.stride, padding=g.padding)
    return [Z, *conv_backward(dZ, W, cache)]


@pytest.mark.spec("CONV-DX", "WINO-FWD", "WINO-DW", "WINO-DX")
@pytest.mark.parametrize("run", [_winograd_run, _direct_run])
def test_scratch_carries_nothing_from_call_to_call(
    run: Callable[[Problem], list[FloatArray]],
) -> None:
    # The scratch buffers outlive a call. Filled with NaN in between, they must change nothing:
    # every element a call reads from them it has written first.
    big = fixed_problem(ConvShape(4, 6, 11, 9, (3, 3), (1, 1), (1, 1), 3))
    small = fixed_problem(ConvShape(2, 3, 5, 6, (3, 3), (1, 1), (2, 0), 2))
    release_scratch()
    want = run(small)
    run(big)  # the buffers grow past what small needs
    for buffer in refnn._windows.scratch.buffers:
        buffer.fill(np.nan)
    got = run(small)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    for buffer in refnn._windows.scratch.buffers:
        buffer.fill(np.nan)
    assert max(fast_vs_direct(small, F4x4).values()) <= RTOL  # and what it computes is right
    assert release_scratch() > 0 and release_scratch() == 0


@pytest.mark.spec("WINO-FWD", "WINO-DW", "WINO-DX")
def test_winograd_calls_in_threads_do_not_share_scratch() -> None:
    problems = [
        fixed_problem(ConvShape(3, 4, 9, 10, (3, 3), (1, 1), (1, 1), n), np.float32) for n in (2, 3)
    ]
    want = [_winograd_run(p) for p in problems]
    with ThreadPoolExecutor(2) as pool:
        for _ in range(5):
            for got, expected in zip(pool.map(_winograd_run, problems), want, strict=True):
                for a, b in zip(got, expected, strict=True):
                    np.testing.assert_array_equal(a, b)


# --- gradients by finite differences -------------------------------------------------------------


@pytest.mark.spec("CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX", "WINO-FWD", "WINO-DW", "WINO-DX")
@given(p=problems(conv_shapes(max_size=5)), algorithm=st.sampled_from(["direct", "auto"]))
@settings(max_examples=10)
def test_random_configurations_pass_the_gradient_checker(p: Problem, algorithm: str) -> None:
    g, X, W, b, _ = p
    layer = _layer(g, W, b, "direct" if g.kernel != (3, 3) or g.stride != (1, 1) else algorithm)
    problem = layer_problem(layer, X)
    try:
        result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    finally:
        problem.restore()
    result.raise_if_failed()


# --- initialisation and configuration ------------------------------------------------------------


@pytest.mark.spec("CONV-INIT")
def test_he_initialisation_uses_fan_in_of_one_output_unit() -> None:
    C, F, kh, kw = 16, 64, 3, 5
    layer = Conv2D(C, F, (kh, kw), rng=np.random.default_rng(0))
    W = layer.params["W"]
    assert W.shape == (F, C, kh, kw)
    assert np.all(layer.params["b"] == 0) and layer.params["b"].shape == (F, 1)
    # 15360 draws: the sample std is within 3% of sqrt(2 / (C kh kw)) with overwhelming probability
    assert float(np.std(W)) == pytest.approx(np.sqrt(2.0 / (C * kh * kw)), rel=0.03)
    assert abs(float(np.mean(W))) < 0.05 * np.sqrt(2.0 / (C * kh * kw))


@pytest.mark.spec("CONV-INIT")
def test_initialisation_comes_only_from_the_generator() -> None:
    state = np.random.get_state(legacy=False)
    a = Conv2D(2, 3, 3, rng=np.random.default_rng(7))
    b = Conv2D(2, 3, 3, rng=np.random.default_rng(7), algorithm="direct")
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(
        a.params["W"], Conv2D(2, 3, 3, rng=np.random.default_rng(8)).params["W"]
    )
    after = np.random.get_state(legacy=False)
    assert np.array_equal(state["state"]["key"], after["state"]["key"])
    assert state["state"]["pos"] == after["state"]["pos"]


@pytest.mark.parametrize(
    ("kernel", "stride", "algorithm", "used"),
    [
        (3, 1, "auto", "winograd"),
        (3, 1, "direct", "direct"),
        (3, 1, "winograd", "winograd"),
        (3, 2, "auto", "direct"),
        ((3, 2), 1, "auto", "direct"),
        (5, 1, "auto", "direct"),
    ],
)
def test_config_records_the_algorithm_and_rebuilds_the_layer(
    kernel: Any, stride: int, algorithm: str, used: str
) -> None:
    layer = Conv2D(
        3,
        4,
        kernel,
        stride=stride,
        padding=(0, 1),
        rng=np.random.default_rng(0),
        algorithm=algorithm,
    )
    config = json.loads(json.dumps(layer.config()))
    k = [kernel] * 2 if isinstance(kernel, int) else list(kernel)
    assert config == {
        "in_channels": 3,
        "out_channels": 4,
        "kernel_size": k,
        "stride": [stride] * 2,
        "padding": [0, 1],
        "dilation": [1, 1],
        "groups": 1,
        "algorithm": used,
        "dtype": "float64",
    }
    rebuilt = Conv2D(**config, rng=np.random.default_rng(1))
    assert rebuilt.config() == layer.config()
    assert "Conv2D(in_channels=3" in repr(layer)
    assert refnn.Conv2D is Conv2D


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_size": 0}, ValueError, r"kernel_size must be an int >= 1, got 0"),
        ({"kernel_size": (3, 0)}, ValueError, r"kernel_size must be an int >= 1, got 0"),
        ({"kernel_size": (1, 2, 3)}, ValueError, r"kernel_size must be an int or a pair"),
        ({"kernel_size": 2.0}, TypeError, r"kernel_size must be an int >= 1 or a pair.*2\.0"),
        ({"kernel_size": (2, 2.5)}, TypeError, r"kernel_size must be an int >= 1, got 2\.5"),
        ({"kernel_size": True}, TypeError, r"kernel_size must be an int"),
        ({"kernel_size": "3"}, TypeError, r"kernel_size must be an int"),
        # bytes are a sequence of ints: b"ab" must not become a 97 x 98 kernel
        ({"kernel_size": b"ab"}, TypeError, r"kernel_size must be an int >= 1 or a pair.*b'ab'"),
        ({"stride": bytearray(b"\x02\x02")}, TypeError, r"stride must be an int >= 1 or a pair"),
        ({"padding": range(2)}, TypeError, r"padding must be an int >= 0 or a pair"),
        ({"stride": 0}, ValueError, r"stride must be an int >= 1, got 0"),
        ({"stride": (1, -1)}, ValueError, r"stride must be an int >= 1, got -1"),
        ({"stride": 1.5}, TypeError, r"stride must be an int >= 1"),
        ({"padding": -1}, ValueError, r"padding must be an int >= 0, got -1"),
        ({"padding": 0.5}, TypeError, r"padding must be an int >= 0"),
        ({"in_channels": 0}, ValueError, r"in_channels must be an int >= 1, got 0"),
        ({"out_channels": 2.0}, TypeError, r"out_channels must be an int >= 1, got 2\.0"),
        ({"rng": 0}, TypeError, r"rng must be a numpy\.random\.Generator"),
        ({"dtype": np.int32}, TypeError, r"dtype must be float64 or float32"),
        (
            {"algorithm": "fast"},
            ValueError,
            r"algorithm must be one of \('auto', 'direct', 'winograd'\), got 'fast'",
        ),
        ({"algorithm": None}, ValueError, r"algorithm must be one of .*got None"),
        (
            {"algorithm": "winograd", "stride": 2},
            ValueError,
            r"'winograd' needs kernel_size 3, stride 1, .*stride \(2, 2\)",
        ),
        (
            {"algorithm": "winograd", "kernel_size": 5},
            ValueError,
            r"'winograd' needs kernel_size 3.*\(5, 5\)",
        ),
        # sizes that cannot be allocated: refused before numpy tries, naming the arguments
        (
            {"kernel_size": 2**63},
            ValueError,
            r"W \(out_channels, in_channels / groups, \*kernel_size\) "
            r"of shape \(3, 2, 9223372036854775808",
        ),
        (
            {"in_channels": 10**6, "out_channels": 10**6},
            ValueError,
            r"W \(out_channels, in_channels / groups, \*kernel_size\) .* GiB, more than",
        ),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], error: type, match: str) -> None:
    args: dict[str, object] = {
        "in_channels": 2,
        "out_channels": 3,
        "kernel_size": 3,
        "rng": np.random.default_rng(0),
    }
    args.update(kwargs)
    with pytest.raises(error, match=match):
        Conv2D(**args)  # type: ignore[arg-type]  # deliberately wrong types


@pytest.mark.parametrize("algorithm", ["direct", "auto"])
def test_sizes_that_cannot_be_allocated_are_refused_in_forward(algorithm: str) -> None:
    layer = Conv2D(2, 3, 3, padding=2**40, rng=np.random.default_rng(0), algorithm=algorithm)
    with pytest.raises(
        ValueError, match=r"Z \(out_channels, H_out, W_out, m\) for padding \(1099511627776, "
    ):
        layer.forward(np.ones((2, 5, 5, 1)))
    # a stride beyond the input is not an allocation: one window, the oracle's answer
    wide = Conv2D(2, 3, 3, stride=2**63, padding=1, rng=np.random.default_rng(0))
    X = normal(0, 2, 5, 5, 2)
    Z = wide.forward(X)
    assert Z.shape == (3, 1, 1, 2)
    assert (
        rel_diff(
            Z, conv_forward_naive(X, wide.params["W"], wide.params["b"], (2**63, 2**63), (1, 1))
        )
        <= RTOL
    )


@pytest.mark.parametrize("algorithm", ["direct", "auto"])
def test_bad_inputs_name_expected_and_actual(algorithm: str) -> None:
    layer = Conv2D(3, 2, (3, 3), padding=(1, 0), rng=np.random.default_rng(0), algorithm=algorithm)
    with pytest.raises(
        ValueError, match=r"C = 3 on axis 0 \(C x H x W x m, examples last\), got 2 \(shape"
    ):
        layer.forward(np.zeros((2, 5, 5, 1)))
    with pytest.raises(
        ValueError,
        match=r"got 5 \(shape \(5, 3, 8, 8\)\); it looks batch-first.*transpose\(1, 2, 3, 0\)",
    ):
        layer.forward(np.zeros((5, 3, 8, 8)))  # N x C x H x W, as PyTorch lays images out
    with pytest.raises(
        ValueError, match=r"4 axes \(C x H x W x m, examples last\), got shape \(3, 5, 5\)"
    ):
        layer.forward(np.zeros((3, 5, 5)))
    with pytest.raises(
        ValueError, match=r"kernel \(kh, kw\) = \(3, 3\) is larger than the padded input.*\(7, 2\)"
    ):
        layer.forward(np.zeros((3, 5, 2, 2)))
    with pytest.raises(ValueError, match=r"at least one example"):
        layer.forward(np.zeros((3, 5, 5, 0)))
    with pytest.raises(TypeError, match=r"X must be a numpy array, got list"):
        layer.forward([[[[1.0]]]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"finite"):
        layer.forward(np.full((3, 5, 5, 1), np.nan))
    with pytest.raises(TypeError, match=r"training must be True or False, got 'no'"):
        layer.forward(np.zeros((3, 5, 5, 1)), training="no")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((2, 5, 3, 1)))
    Z = layer.forward(np.zeros((3, 5, 5, 2)))
    assert Z.shape == (2, 5, 3, 2)
    with pytest.raises(ValueError, match=r"dA must have the output's shape \(2, 5, 3, 2\)"):
        layer.backward(np.zeros((2, 5, 3, 1)))  # no silent broadcast over examples
    with pytest.raises(ValueError, match=r"dA must have the output's shape"):
        layer.backward(np.zeros((2 * 5 * 3 * 2,)))


@pytest.mark.spec("CONV-DB")
@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_nonfinite_dA_is_refused_after_the_backward_by_its_sum(
    algorithm: str, dtype: type
) -> None:
    # The backward reads dA's finiteness off db, its sum: any NaN or infinity (also +inf and
    # -inf in one channel) must still be refused by name, and a finite dA whose sum overflows
    # must not be called non-finite (it is refused as the overflow it is).
    layer = Conv2D(
        2, 3, 3, padding=1, rng=np.random.default_rng(0), algorithm=algorithm, dtype=dtype
    )
    X: FloatArray = normal(0, 2, 6, 5, 2).astype(dtype)
    dA: FloatArray = normal(1, 3, 6, 5, 2).astype(dtype)
    for position, values in (
        ((0, 0, 0, 0), [np.nan]),
        ((2, 5, 4, 1), [np.inf]),
        ((1, 3, 2, 0), [np.inf, -np.inf]),
    ):
        bad = dA.copy()
        bad[position] = values[0]
        if len(values) == 2:
            bad[1, 0, 0, 1] = values[1]
        layer.forward(X)
        with pytest.raises(ValueError, match=r"dA must be finite, got NaN or Inf"):
            layer.backward(bad)
    huge = np.full_like(dA, np.finfo(dtype).max / 2)
    layer.forward(X)
    with pytest.raises(FloatRangeError, match=r"overflows") as caught:
        layer.backward(huge)
    assert "must be finite" not in str(caught.value)


@pytest.mark.spec("CONV-FWD", "CONV-DX", "WINO-FWD", "WINO-DX")
@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
def test_a_forward_rewrites_the_previous_cache_whole(algorithm: str) -> None:
    # Conv2D writes a forward's col or V into the previous cache's array when the shapes match.
    # Poisoned with NaN in between, that array must change nothing: every element is rewritten,
    # and backward pairs with the last forward, as for a fresh layer.
    def layer() -> Conv2D:
        return Conv2D(2, 3, 3, padding=1, rng=np.random.default_rng(0), algorithm=algorithm)

    reused, fresh = layer(), layer()
    X1, X2, dZ = normal(0, 2, 6, 5, 3), normal(1, 2, 6, 5, 3), normal(2, 3, 6, 5, 3)
    reused.forward(X1)
    cache = reused._take().cache
    kept = cache.col if isinstance(cache, ConvCache) else cache.V
    kept.fill(np.nan)
    got = [reused.forward(X2), reused.backward(dZ), *reused.grads.values()]
    after = reused._take().cache
    assert (after.col if isinstance(after, ConvCache) else after.V) is kept  # reused
    want = [fresh.forward(X2), fresh.backward(dZ), *fresh.grads.values()]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    reused.forward(normal(3, 2, 6, 5, 4))  # another m: a new array, the old one dropped
    assert reused.backward(normal(4, 3, 6, 5, 4)).shape == (2, 6, 5, 4)


@pytest.mark.spec("CONV-COL", "CONV-FWD", "WINO-FWD")
def test_arrays_given_to_write_into_are_used_only_if_they_fit() -> None:
    # im2col's out is written whole or refused by name; conv_forward's col and
    # winograd_forward's V are used only if writeable, C-contiguous and of the right shape and
    # dtype, and are otherwise left untouched (a reshape of anything else would be a copy, and
    # the result would silently not land in it).
    X, W, b = normal(0, 2, 6, 5, 3), normal(1, 4, 2, 3, 3), normal(2, 4, 1)
    geo = ConvGeometry.of(X.shape, (3, 3), (1, 1), (1, 1))
    K, N = geo.col_shape(3)
    read_only = np.zeros((K, N))
    read_only.flags.writeable = False
    bad_outs: list[FloatArray] = [
        np.zeros((K, N + 1)),
        np.zeros((N, K)).T,
        read_only,
        np.zeros((K, N), np.float32),
    ]
    for out in bad_outs:
        with pytest.raises(ValueError, match=r"out must be a writeable C-contiguous float64"):
            im2col(X, geo, out=out)
    for run, shape, name in (
        (lambda buf: conv_forward(X, W, b, padding=(1, 1), col=buf), (K + 1, N), "col"),
        (lambda buf: winograd_forward(X, W, b, padding=(1, 1), V=buf), (36, 2, 2 * 2 * 3), "V"),
    ):
        want, _ = run(None)
        frozen = np.full(shape, 7.0)
        frozen.flags.writeable = False
        transposed = np.full(shape[::-1], 7.0).T
        for buf in (transposed, np.full(shape, 7.0, np.float32), frozen):
            got, cache = run(buf)
            np.testing.assert_array_equal(got, want)
            assert getattr(cache, name) is not buf and np.all(buf == 7.0)
        fits = np.full(shape, np.nan)
        got, cache = run(fits)
        np.testing.assert_array_equal(got, want)
        assert getattr(cache, name) is fits
