"""Conv2D (CONV-*): naive-loop oracle, hand values, im2col/col2im, buffers, init, bad input."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import refnn
from refnn import Conv2D
from refnn.conv import ConvGeometry, col2im, conv_backward, conv_forward, im2col, output_size
from refnn.gradcheck import check_grad
from refnn.types import DTypeLike
from refnn.verify import cases_conv
from refnn.verify.cases import Case
from refnn.verify.problems import layer_problem
from refnn.verify.run import run_case
from tests.oracles.conv import OracleStats, conv_backward_naive, conv_forward_naive, rel_diff
from tests.strategies import normal, seeds

RTOL = 1e-12


@pytest.fixture(scope="module")
def conv_stats() -> Iterator[OracleStats]:
    stats = OracleStats()
    yield stats
    if stats.examples:
        print(
            f"\n[conv oracle] {stats.examples} examples, worst relative difference "
            f"{stats.worst:.3e} ({stats.worst_at})"
        )


@dataclass(frozen=True)
class Geometry:
    C: int
    F: int
    H: int
    W: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    m: int

    def __str__(self) -> str:
        return (
            f"C={self.C} F={self.F} {self.H}x{self.W} k={self.kernel} s={self.stride} "
            f"p={self.padding} m={self.m}"
        )


@st.composite
def geometries(draw: st.DrawFn) -> Geometry:
    """Random channels, sizes, non-square kernels, strides 1..4 (above the kernel too),
    paddings 0..2, batch sizes 1..3; one draw in four takes the kernel equal to the padded input.
    """
    C, F, m = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    if draw(st.integers(0, 3)) == 0:
        kernel = (H + 2 * ph, W + 2 * pw)
    else:
        kernel = (
            draw(st.integers(1, min(5, H + 2 * ph))),
            draw(st.integers(1, min(5, W + 2 * pw))),
        )
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return Geometry(C, F, H, W, kernel, stride, (ph, pw), m)


def _layer(g: Geometry, seed: int, dtype: DTypeLike = np.float64) -> Conv2D:
    layer = Conv2D(
        g.C, g.F, g.kernel, stride=g.stride, padding=g.padding, rng=np.random.default_rng(seed),
        dtype=dtype,
    )  # fmt: skip
    layer.params["b"][...] = normal(seed + 1, g.F, 1)
    return layer


# --- the oracle -----------------------------------------------------------------------------


@pytest.mark.spec("CONV-SIZE", "CONV-COL", "CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
@given(g=geometries(), seed=seeds)
@settings(max_examples=300)
@example(g=Geometry(1, 1, 1, 1, (1, 1), (1, 1), (0, 0), 1), seed=0)
@example(g=Geometry(2, 3, 3, 4, (7, 6), (2, 3), (2, 1), 2), seed=1)  # kernel = padded input
@example(g=Geometry(2, 2, 7, 7, (2, 1), (4, 4), (0, 0), 3), seed=2)  # stride > kernel: gaps
def test_layer_equals_the_naive_loop_oracle(
    conv_stats: OracleStats, g: Geometry, seed: int
) -> None:
    layer = _layer(g, seed)
    X = normal(seed + 2, g.C, g.H, g.W, g.m)
    W, b = layer.params["W"].copy(), layer.params["b"].copy()
    Z = layer.forward(X)
    Z_naive = conv_forward_naive(X, W, b, g.stride, g.padding)
    dZ = normal(seed + 3, *Z.shape)
    dX = layer.backward(dZ)
    dX_naive, dW_naive, db_naive = conv_backward_naive(dZ, X, W, g.stride, g.padding)
    diffs = {
        "Z": rel_diff(Z, Z_naive),
        "dX": rel_diff(dX, dX_naive),
        "dW": rel_diff(layer.grads["W"], dW_naive),
        "db": rel_diff(layer.grads["b"], db_naive),
    }
    conv_stats.record(str(g), diffs)
    assert max(diffs.values()) <= RTOL, diffs


@pytest.mark.spec("CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
def test_oracle_statistics_are_recorded(conv_stats: OracleStats) -> None:
    """Runs after the oracle test in file order; fails if it compared nothing."""
    if conv_stats.examples == 0:
        pytest.skip("the oracle test did not run in this session (deselected)")
    assert conv_stats.examples >= 300
    assert conv_stats.worst <= RTOL


@pytest.mark.spec("CONV-FWD", "CONV-DX")
def test_hand_computed_values() -> None:
    # one 3x3 image, a 2x2 kernel, stride 1, no padding: every output is a 2x2 window sum
    X = np.arange(9.0).reshape(1, 3, 3, 1)  # rows [0 1 2], [3 4 5], [6 7 8]
    W = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    Z, cache = conv_forward(X, W, np.array([[0.5]]))
    # Z[0,0] = 0*1 + 1*2 + 3*3 + 4*4 + 0.5 = 27.5 (a correlation: the kernel is not flipped)
    np.testing.assert_array_equal(Z[0, :, :, 0], [[27.5, 37.5], [57.5, 67.5]])
    grads = conv_backward(np.ones_like(Z), W, cache)
    # dX counts how often each pixel meets each kernel entry: the full correlation of ones
    np.testing.assert_array_equal(
        grads.dX[0, :, :, 0], [[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]
    )
    np.testing.assert_array_equal(grads.dW[0, 0], [[8.0, 12.0], [20.0, 24.0]])
    np.testing.assert_array_equal(grads.db, [[4.0]])


@pytest.mark.spec("CONV-FWD", "CONV-DX")
def test_padding_and_stride_by_hand() -> None:
    # 1 x 2 x 2 image, 3x3 kernel of ones, padding 1, stride 2: output 1x1 = sum of everything
    X = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    Z, cache = conv_forward(
        X, np.ones((1, 1, 3, 3)), np.zeros((1, 1)), stride=(2, 2), padding=(1, 1)
    )
    assert Z.shape == (1, 1, 1, 1) and Z[0, 0, 0, 0] == 10.0
    grads = conv_backward(np.full(Z.shape, 2.0), np.ones((1, 1, 3, 3)), cache)
    np.testing.assert_array_equal(grads.dX, np.full(X.shape, 2.0))


@pytest.mark.spec("CONV-SIZE")
@pytest.mark.parametrize(
    ("size", "k", "s", "p", "expected"),
    [(5, 3, 1, 0, 3), (5, 3, 1, 1, 5), (7, 2, 3, 0, 2), (32, 3, 1, 1, 32), (4, 6, 1, 1, 1),
     (6, 3, 2, 1, 3), (1, 1, 5, 0, 1), (10, 4, 3, 2, 4)],
)  # fmt: skip
def test_output_size_formula(size: int, k: int, s: int, p: int, expected: int) -> None:
    assert output_size(size, k, s, p) == expected
    # the number of window starts 0, s, 2s, ... with start + k <= size + 2p
    assert expected == len(range(0, size + 2 * p - k + 1, s))


# --- im2col / col2im --------------------------------------------------------------------------


@pytest.mark.spec("CONV-COL")
@given(g=geometries(), seed=seeds)
@settings(max_examples=60)
def test_im2col_matches_its_definition_entry_by_entry(g: Geometry, seed: int) -> None:
    X = normal(seed, g.C, g.H, g.W, g.m)
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
@given(g=geometries(), seed=seeds)
@settings(max_examples=60)
def test_col2im_is_the_adjoint_of_im2col(g: Geometry, seed: int) -> None:
    # <im2col(X), D> = <X, col2im(D)> for all X, D: col2im is the transpose of the linear map
    X = normal(seed, g.C, g.H, g.W, g.m)
    geo = ConvGeometry.of(X.shape, g.kernel, g.stride, g.padding)
    D = normal(seed + 1, *geo.col_shape(g.m))
    lhs = float(np.sum(im2col(X, geo) * D))
    rhs = float(np.sum(X * col2im(D, geo, g.m)))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12 * float(np.sum(np.abs(D))))


@pytest.mark.spec("CONV-DX")
def test_pixels_no_window_reads_get_zero_gradient() -> None:
    # 1x1 kernel, stride 2 on a 5x5 image: only even rows and columns are read
    layer = Conv2D(2, 3, 1, stride=2, rng=np.random.default_rng(0))
    X = normal(0, 2, 5, 5, 2)
    Z = layer.forward(X)
    assert Z.shape == (3, 3, 3, 2)
    dX = layer.backward(normal(1, *Z.shape))
    assert np.all(dX[:, 1::2, :, :] == 0) and np.all(dX[:, :, 1::2, :] == 0)
    assert np.all(dX[:, ::2, ::2, :] != 0)


@pytest.mark.spec("CONV-FWD")
def test_each_example_is_convolved_independently() -> None:
    layer = Conv2D(3, 2, (2, 3), stride=(1, 2), padding=1, rng=np.random.default_rng(3))
    X = normal(4, 3, 5, 6, 4)
    Z = layer.forward(X)
    for n in range(4):
        np.testing.assert_array_equal(layer.forward(X[..., n : n + 1])[..., 0], Z[..., n])


# --- buffers, dtype, contiguity, inputs untouched ----------------------------------------------


@pytest.mark.spec("CONV-COL", "CONV-DW", "CONV-DX")
def test_patch_buffer_is_reused_and_backward_uses_the_last_forward() -> None:
    g = Geometry(2, 3, 5, 5, (3, 3), (1, 1), (1, 1), 2)
    layer = _layer(g, 0)
    X1, X2 = normal(1, 2, 5, 5, 2), normal(2, 2, 5, 5, 2)
    layer.forward(X1)
    assert layer._cache is not None
    first = layer._cache.col
    Z2 = layer.forward(X2)
    assert layer._cache.col is first  # same shape: refilled in place
    dZ = normal(3, *Z2.shape)
    dX = layer.backward(dZ)
    dX_n, dW_n, _ = conv_backward_naive(
        dZ, X2, layer.params["W"], g.stride, g.padding
    )  # fmt: skip
    assert rel_diff(dX, dX_n) <= RTOL and rel_diff(layer.grads["W"], dW_n) <= RTOL
    layer.forward(normal(4, 2, 5, 5, 3))  # another batch size: a new buffer
    assert layer._cache.col is not first
    # the returned arrays are fresh: a later call does not change them
    Z_copy, dX_copy = Z2.copy(), dX.copy()
    layer.forward(X1)
    layer.backward(normal(5, *Z2.shape))
    np.testing.assert_array_equal(Z2, Z_copy)
    np.testing.assert_array_equal(dX, dX_copy)


@pytest.mark.spec("CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
def test_float32_end_to_end() -> None:
    g = Geometry(3, 4, 6, 5, (3, 2), (2, 1), (1, 1), 3)
    layer = _layer(g, 0, dtype=np.float32)
    assert layer.params["W"].dtype == np.float32 and layer.params["b"].dtype == np.float32
    X = normal(1, 3, 6, 5, 3).astype(np.float32)
    Z = layer.forward(X)
    assert layer._cache is not None and layer._cache.col.dtype == np.float32
    dZ = normal(2, *Z.shape).astype(np.float32)
    dX = layer.backward(dZ)
    for a in (Z, dX, layer.grads["W"], layer.grads["b"]):
        assert a.dtype == np.float32
    W64, b64 = layer.params["W"].astype(np.float64), layer.params["b"].astype(np.float64)
    X64, dZ64 = X.astype(np.float64), dZ.astype(np.float64)
    assert rel_diff(Z, conv_forward_naive(X64, W64, b64, g.stride, g.padding)) < 1e-5
    dX_n, dW_n, db_n = conv_backward_naive(dZ64, X64, W64, g.stride, g.padding)
    assert rel_diff(dX, dX_n) < 1e-5 and rel_diff(layer.grads["W"], dW_n) < 1e-5
    assert rel_diff(layer.grads["b"], db_n) < 1e-5


@pytest.mark.spec("CONV-FWD", "CONV-DX")
def test_inputs_are_not_modified_and_views_work() -> None:
    layer = Conv2D(2, 2, 3, padding=1, rng=np.random.default_rng(0))
    base = normal(0, 2, 6, 5, 4)
    X = base[:, ::-1, :, ::2]  # a non-contiguous view
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


@pytest.mark.spec("CONV-COL", "CONV-DX")
def test_peak_memory_is_at_most_two_patch_matrices() -> None:
    C, F, H, W, m = 8, 8, 16, 16, 8
    layer = Conv2D(C, F, 3, padding=1, rng=np.random.default_rng(0))
    X = normal(0, C, H, W, m)
    dZ = normal(1, F, H, W, m)
    col_bytes = C * 9 * H * W * m * 8
    others = X.nbytes + dZ.nbytes  # Z, dX and the small dW, db
    tracemalloc.start()
    try:
        layer.forward(X)
        layer.backward(dZ)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 2 * col_bytes + others + 64 * 1024, peak / col_bytes


# --- gradients by finite differences --------------------------------------------------------


@pytest.mark.spec("CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
@pytest.mark.parametrize("case", cases_conv.cases(), ids=lambda c: f"{c.component} {c.config}")
def test_make_check_cases_pass_the_gradient_checker(case: Case) -> None:
    outcome = run_case(case)  # check_grad, the Taylor test and the backward contract
    assert outcome.passed, outcome.error or (outcome.result.format() if outcome.result else "")
    if case.component == "Conv2D":
        assert outcome.result is not None
        assert [a.name for a in outcome.result.arrays] == ["X", "W", "b"]


@pytest.mark.spec("CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
@given(g=geometries(), seed=seeds)
@settings(max_examples=10)
# every window in the padding: J does not depend on X or W, whose gradients are exactly 0
@example(g=Geometry(1, 1, 1, 1, (1, 1), (1, 2), (1, 1), 1), seed=0)
def test_random_configurations_pass_the_gradient_checker(g: Geometry, seed: int) -> None:
    problem = layer_problem(_layer(g, seed), normal(seed, g.C, g.H, g.W, g.m), seed=seed)
    try:
        result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    finally:
        problem.restore()
    result.raise_if_failed()


def test_make_check_covers_the_required_configurations() -> None:
    configs = cases_conv.CONV_CONFIGS
    assert any(s[0] > k[0] for _, _, _, _, k, s, _, _, _ in configs)  # stride > kernel
    assert any(k[0] != k[1] for _, _, _, _, k, _, _, _, _ in configs)  # non-square kernel
    assert any(p[0] > 0 for _, _, _, _, _, _, p, _, _ in configs)  # padding
    assert any(  # kernel equal to the padded input
        k == (H + 2 * p[0], W + 2 * p[1]) and p != (0, 0) for _, _, H, W, k, _, p, _, _ in configs
    )
    assert len(set((s, p) for *_, s, p, _, _ in configs)) >= 4  # several stride/padding pairs


# --- initialisation and configuration ---------------------------------------------------------


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
    b = Conv2D(2, 3, 3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(
        a.params["W"], Conv2D(2, 3, 3, rng=np.random.default_rng(8)).params["W"]
    )
    after = np.random.get_state(legacy=False)
    assert np.array_equal(state["state"]["key"], after["state"]["key"])
    assert state["state"]["pos"] == after["state"]["pos"]


def test_config_is_json_and_rebuilds_the_layer() -> None:
    layer = Conv2D(3, 4, (2, 3), stride=(1, 2), padding=(0, 1), rng=np.random.default_rng(0))
    config = json.loads(json.dumps(layer.config()))
    assert config == {
        "in_channels": 3, "out_channels": 4, "kernel_size": [2, 3], "stride": [1, 2],
        "padding": [0, 1], "dtype": "float64",
    }  # fmt: skip
    rebuilt = Conv2D(**config, rng=np.random.default_rng(1))
    assert rebuilt.config() == layer.config()
    assert "Conv2D(in_channels=3" in repr(layer)
    assert refnn.Conv2D is Conv2D


# --- bad input -------------------------------------------------------------------------------


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
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], error: type, match: str) -> None:
    args: dict[str, object] = {
        "in_channels": 2, "out_channels": 3, "kernel_size": 3, "rng": np.random.default_rng(0),
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(error, match=match):
        Conv2D(**args)  # type: ignore[arg-type]  # deliberately wrong types


def test_bad_inputs_name_expected_and_actual() -> None:
    layer = Conv2D(3, 2, (3, 4), padding=(1, 0), rng=np.random.default_rng(0))
    with pytest.raises(
        ValueError, match=r"C = 3 on axis 0 \(C x H x W x m, examples last\), got 2 \(shape"
    ):
        layer.forward(np.zeros((2, 5, 5, 1)))
    with pytest.raises(
        ValueError, match=r"4 axes \(C x H x W x m, examples last\), got shape \(3, 5, 5\)"
    ):
        layer.forward(np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match=r"4 axes.*got shape \(3, 5, 5, 1, 1\)"):
        layer.forward(np.zeros((3, 5, 5, 1, 1)))
    with pytest.raises(
        ValueError, match=r"kernel \(kh, kw\) = \(3, 4\) is larger than the padded input.*\(3, 3\)"
    ):
        layer.forward(np.zeros((3, 1, 3, 2)))  # H + 2 = 3 fits kh = 3; W = 3 < kw = 4
    with pytest.raises(ValueError, match=r"at least one example"):
        layer.forward(np.zeros((3, 5, 5, 0)))
    with pytest.raises(TypeError, match=r"X must be a numpy array, got list"):
        layer.forward([[[[1.0]]]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"finite"):
        layer.forward(np.full((3, 5, 5, 1), np.nan))
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((2, 5, 2, 1)))
    Z = layer.forward(np.zeros((3, 5, 5, 2)))
    assert Z.shape == (2, 5, 2, 2)
    with pytest.raises(ValueError, match=r"dA must have the output's shape \(2, 5, 2, 2\)"):
        layer.backward(np.zeros((2, 5, 2, 1)))  # no silent broadcast over examples
    with pytest.raises(ValueError, match=r"dA must have the output's shape"):
        layer.backward(np.zeros((2 * 5 * 2 * 2,)))
