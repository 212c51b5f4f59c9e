"""MaxPool2D and AvgPool2D (MAXPOOL-*, AVGPOOL-*): naive-loop oracle, ties, bad input, checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import refnn
from refnn import AvgPool2D, MaxPool2D
from refnn.pool import maxpool_backward, maxpool_forward
from refnn.types import FloatArray
from refnn.verify import cases_conv
from refnn.verify.cases import Case
from refnn.verify.run import run_case
from tests.oracles.conv import (
    OracleStats,
    avgpool_backward_naive,
    avgpool_forward_naive,
    maxpool_backward_naive,
    maxpool_forward_naive,
    rel_diff,
)
from tests.strategies import normal, seeds

RTOL = 1e-12


@pytest.fixture(scope="module")
def pool_stats() -> Iterator[OracleStats]:
    stats = OracleStats()
    yield stats
    if stats.examples:
        print(
            f"\n[pool oracle] {stats.examples} examples, worst relative difference "
            f"{stats.worst:.3e} ({stats.worst_at})"
        )


@dataclass(frozen=True)
class PoolGeom:
    C: int
    H: int
    W: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    m: int


@st.composite
def pool_geometries(draw: st.DrawFn) -> PoolGeom:
    """Windows up to the input size, strides 1..4 (overlapping, touching and with gaps)."""
    C, m = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    kernel = (draw(st.integers(1, H)), draw(st.integers(1, W)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return PoolGeom(C, H, W, kernel, stride, m)


def _input(seed: int, g: PoolGeom, ties: bool) -> FloatArray:
    if ties:  # few distinct values: many windows hold several equal maxima
        X: FloatArray = np.random.default_rng(seed).integers(-1, 2, (g.C, g.H, g.W, g.m)) * 1.0
        return X
    return normal(seed, g.C, g.H, g.W, g.m)


@pytest.mark.spec("MAXPOOL-FWD", "MAXPOOL-BWD", "AVGPOOL-FWD", "AVGPOOL-BWD", "CONV-SIZE")
@given(g=pool_geometries(), ties=st.booleans(), seed=seeds)
@settings(max_examples=300)
@example(g=PoolGeom(1, 1, 1, (1, 1), (1, 1), 1), ties=False, seed=0)
@example(g=PoolGeom(2, 7, 8, (2, 3), (4, 4), 2), ties=True, seed=1)  # stride > kernel
@example(g=PoolGeom(1, 5, 5, (5, 5), (1, 1), 1), ties=True, seed=2)  # window = input
def test_layers_equal_the_naive_loop_oracle(
    pool_stats: OracleStats, g: PoolGeom, ties: bool, seed: int
) -> None:
    X = _input(seed, g, ties)
    maxpool, avgpool = MaxPool2D(g.kernel, stride=g.stride), AvgPool2D(g.kernel, stride=g.stride)
    A_max, A_avg = maxpool.forward(X), avgpool.forward(X)
    A_max_naive, _ = maxpool_forward_naive(X, g.kernel, g.stride)
    dA = normal(seed + 1, *A_max.shape)
    dX_max, dX_avg = maxpool.backward(dA), avgpool.backward(dA)
    # max pooling only selects and adds: it must agree exactly (ties go to the same element)
    np.testing.assert_array_equal(A_max, A_max_naive)
    diffs = {
        "max dX": rel_diff(dX_max, maxpool_backward_naive(dA, X, g.kernel, g.stride)),
        "avg A": rel_diff(A_avg, avgpool_forward_naive(X, g.kernel, g.stride)),
        "avg dX": rel_diff(dX_avg, avgpool_backward_naive(dA, X.shape, g.kernel, g.stride)),
    }
    pool_stats.record(f"{g} ties={ties}", diffs)
    assert max(diffs.values()) <= RTOL, diffs


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
def test_large_windows_need_a_wider_arg_max_index() -> None:
    # 16 x 17 = 272 offsets do not fit in uint8: the maximum sits at offset 271 (last)
    X = normal(0, 2, 16, 17, 2)
    X[:, -1, -1, :] = 100.0
    layer = MaxPool2D((16, 17))
    assert np.all(layer.forward(X) == 100.0)
    dX = layer.backward(np.ones((2, 1, 1, 2)))
    assert np.all(dX[:, -1, -1, :] == 1.0) and float(np.sum(dX)) == 4.0
    A, cache = maxpool_forward(X, (16, 17), (16, 17))
    assert cache.argmax.dtype == np.uint16 and np.all(cache.argmax == 271)
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


@pytest.mark.spec("MAXPOOL-FWD", "MAXPOOL-BWD", "AVGPOOL-FWD", "AVGPOOL-BWD")
@pytest.mark.parametrize(
    "case",
    [c for c in cases_conv.cases() if "Pool" in c.component],
    ids=lambda c: f"{c.component} {c.config}",
)
def test_make_check_cases_pass_the_gradient_checker(case: Case) -> None:
    outcome = run_case(case)
    assert outcome.passed, outcome.error or (outcome.result.format() if outcome.result else "")
    if "distinct" in case.config:
        assert outcome.kinks == 0  # the inputs keep every stencil away from a tie
    if "exact ties" in case.config:
        assert outcome.kinks > 0  # the checker met the ties and moved off them


def test_distinct_inputs_are_well_separated() -> None:
    X = cases_conv.distinct_values(0, (2, 4, 4, 2))
    gaps = np.diff(np.sort(X.ravel()))
    assert float(np.min(gaps)) >= 4.0 / X.size * (1 - 1e-12)


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
    layer = cls((3, 2))
    with pytest.raises(ValueError, match=r"window \(kh, kw\) = \(3, 2\) is larger than.*\(2, 5\)"):
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
