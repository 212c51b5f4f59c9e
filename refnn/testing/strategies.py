"""Hypothesis strategies for refnn's layers, public so other projects can reuse them.

Shapes and geometries are composite strategies that shrink towards the smallest layer (one
channel, one example, a 1 x 1 kernel); array contents are drawn element by element with
``hypothesis.extra.numpy`` and bounded as the spec's domain says, so a failure shrinks to a
minimal array rather than a 32-bit seed. Examples are on the last axis (NOTE-AXES).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn.types import FloatArray

IntPair = tuple[int, int]


def _floats(low: float, high: float, dtype: Any) -> st.SearchStrategy[float]:
    """Floats in [low, high] representable in ``dtype`` (bounds rounded inwards)."""
    kind = np.dtype(dtype).type
    lo, hi = kind(low), kind(high)
    lo = lo if lo >= low else np.nextafter(lo, kind(np.inf))
    hi = hi if hi <= high else np.nextafter(hi, kind(-np.inf))
    width = np.dtype(dtype).itemsize * 8
    return st.floats(float(lo), float(hi), width=width, allow_subnormal=False)


def sizes(max_value: int = 6) -> st.SearchStrategy[int]:
    """A positive size (a layer width, a batch size m), shrinking to 1."""
    return st.integers(min_value=1, max_value=max_value)


def arrays(
    shape: int | tuple[int, ...],
    *,
    dtype: Any = np.float64,
    bound: float = 4.0,
    min_magnitude: float = 0.0,
) -> st.SearchStrategy[FloatArray]:
    """Finite float arrays with entries in [-bound, bound], shrinking towards zero.

    ``min_magnitude`` keeps every entry at least that far from 0 (for inputs that must stay off
    a kink, such as a ReLU's); entries are then drawn as sign * magnitude.
    """
    if min_magnitude <= 0.0:
        return hnp.arrays(dtype, shape, elements=_floats(-bound, bound, dtype))
    magnitude = _floats(min_magnitude, bound, dtype)
    signed = st.tuples(st.booleans(), magnitude).map(lambda t: -t[1] if t[0] else t[1])
    return hnp.arrays(dtype, shape, elements=signed)


def probabilities(
    shape: int | tuple[int, ...], *, dtype: Any = np.float64, margin: float = 1e-3
) -> st.SearchStrategy[FloatArray]:
    """Arrays with entries in [margin, 1 - margin] (predictions of a sigmoid)."""
    return hnp.arrays(dtype, shape, elements=_floats(margin, 1.0 - margin, dtype))


def binary_labels(shape: int | tuple[int, ...]) -> st.SearchStrategy[FloatArray]:
    """Hard labels in {0, 1}, as float64."""
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0]))


@st.composite
def one_hot(draw: st.DrawFn, k: int, m: int) -> FloatArray:
    """A k x m matrix whose columns are one-hot (a class index per example)."""
    classes = draw(hnp.arrays(np.int64, m, elements=st.integers(0, k - 1)))
    Y: FloatArray = np.zeros((k, m))
    Y[classes, np.arange(m)] = 1.0
    return Y


@st.composite
def class_probabilities(draw: st.DrawFn, k: int, m: int, *, margin: float = 1e-3) -> FloatArray:
    """A k x m matrix whose columns are probability vectors with entries >= margin / k."""
    raw = draw(hnp.arrays(np.float64, (k, m), elements=st.floats(margin, 1.0)))
    P: FloatArray = raw / raw.sum(axis=0, keepdims=True)
    return P


@dataclass(frozen=True)
class DenseShape:
    """A Dense layer n_in -> n_out on m examples."""

    n_in: int
    n_out: int
    m: int

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.n_in, self.m)


@st.composite
def dense_shapes(draw: st.DrawFn, max_size: int = 6) -> DenseShape:
    """Dense sizes, shrinking to 1 -> 1 on one example."""
    return DenseShape(draw(sizes(max_size)), draw(sizes(max_size)), draw(sizes(max_size)))


@dataclass(frozen=True)
class ConvShape:
    """A Conv2D geometry: C -> F channels on H x W images, kernel, stride, padding, m examples."""

    C: int
    F: int
    H: int
    W: int
    kernel: IntPair
    stride: IntPair
    padding: IntPair
    m: int

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.C, self.H, self.W, self.m)

    @property
    def output_hw(self) -> IntPair:
        """(H_out, W_out) by CONV-SIZE."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        return (self.H + 2 * ph - kh) // sh + 1, (self.W + 2 * pw - kw) // sw + 1

    def __str__(self) -> str:
        return (
            f"C={self.C} F={self.F} {self.H}x{self.W} k={self.kernel} s={self.stride} "
            f"p={self.padding} m={self.m}"
        )


@st.composite
def conv_shapes(
    draw: st.DrawFn, *, max_channels: int = 3, max_size: int = 7, max_stride: int = 4
) -> ConvShape:
    """Channels, image sizes, non-square kernels up to the padded input (the whole padded input
    included), strides up to ``max_stride`` (above the kernel too) and paddings 0..2; shrinks to
    one channel, a 1 x 1 image and kernel, stride 1, no padding and one example.
    """
    C, F, m = draw(sizes(max_channels)), draw(sizes(max_channels)), draw(sizes(3))
    H, W = draw(sizes(max_size)), draw(sizes(max_size))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    kernel = (draw(st.integers(1, H + 2 * ph)), draw(st.integers(1, W + 2 * pw)))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    return ConvShape(C, F, H, W, kernel, stride, (ph, pw), m)


@dataclass(frozen=True)
class PoolShape:
    """A pooling geometry: C channels of H x W, a window, a stride, m examples."""

    C: int
    H: int
    W: int
    kernel: IntPair
    stride: IntPair
    m: int

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.C, self.H, self.W, self.m)

    def __str__(self) -> str:
        return f"C={self.C} {self.H}x{self.W} k={self.kernel} s={self.stride} m={self.m}"


@st.composite
def pool_shapes(draw: st.DrawFn, *, max_size: int = 8, max_stride: int = 4) -> PoolShape:
    """Windows up to the input size, strides overlapping, touching and with gaps."""
    C, m = draw(sizes(3)), draw(sizes(3))
    H, W = draw(sizes(max_size)), draw(sizes(max_size))
    kernel = (draw(st.integers(1, H)), draw(st.integers(1, W)))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    return PoolShape(C, H, W, kernel, stride, m)


@dataclass(frozen=True)
class SequenceShape:
    """An LSTM on n_in x T x m sequences with n_hidden units."""

    n_in: int
    n_hidden: int
    T: int
    m: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.n_in, self.T, self.m)


@st.composite
def sequence_shapes(draw: st.DrawFn, *, max_size: int = 4, max_steps: int = 6) -> SequenceShape:
    """LSTM sizes, shrinking to one input, one unit, one step, one example."""
    return SequenceShape(
        draw(sizes(max_size)), draw(sizes(max_size)), draw(sizes(max_steps)), draw(sizes(3))
    )
