"""Max and average pooling (MAXPOOL-*, AVGPOOL-*) over C x H x W x m images.

Each is a loop over the kh kw window offsets; offset (i, j) sees the strided slice
X[:, i : i + s_h H_out : s_h, j : j + s_w W_out : s_w, :] of every channel, position and example
at once. The backward adds into the same slices in place, which handles overlapping windows
(stride < kernel) and gaps (stride > kernel) with no ``np.add.at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refnn._validate import IntPair, as_input, as_pair
from refnn.layer import CacheT, Layer
from refnn.types import DTypeLike, FloatArray


@dataclass(frozen=True)
class PoolGeometry:
    """Input C x H x W, window kh x kw, stride, output H_out x W_out (no padding)."""

    C: int
    H: int
    W: int
    kh: int
    kw: int
    stride: IntPair
    H_out: int
    W_out: int

    @classmethod
    def of(cls, shape: tuple[int, ...], kernel: IntPair, stride: IntPair) -> PoolGeometry:
        """The geometry of a C x H x W x m input (ValueError if the window does not fit).

        Notes
        -----
        Spec: CONV-SIZE

        H_out = floor((H - kh) / s_h) + 1 and W_out likewise (CONV-SIZE with p = 0).
        """
        C: int = shape[0]
        H: int = shape[1]
        W: int = shape[2]
        kh, kw = kernel
        if kh > H or kw > W:
            raise ValueError(
                f"pooling window (kh, kw) = {kernel} is larger than the input (H, W) = ({H}, {W})"
            )
        return cls(C, H, W, kh, kw, stride, (H - kh) // stride[0] + 1, (W - kw) // stride[1] + 1)

    def window(self, i: int, j: int) -> tuple[slice, slice, slice, slice]:
        """Index of offset (i, j) of every window: a strided slice of the input."""
        sh, sw = self.stride
        return (
            slice(None),
            slice(i, i + sh * (self.H_out - 1) + 1, sh),
            slice(j, j + sw * (self.W_out - 1) + 1, sw),
            slice(None),
        )


def _index_dtype(n: int) -> np.dtype[Any]:
    """The smallest unsigned integer dtype holding 0..n-1."""
    return np.min_scalar_type(max(n - 1, 0))


@dataclass(frozen=True)
class MaxPoolCache:
    """The arg-max offset k = i kw + j of every window, and the geometry."""

    argmax: npt.NDArray[np.unsignedinteger[Any]]
    geo: PoolGeometry
    m: int


def maxpool_forward(
    X: FloatArray, kernel: IntPair, stride: IntPair
) -> tuple[FloatArray, MaxPoolCache]:
    """Max over each kh x kw window, per channel and example.

    Parameters
    ----------
    X : ndarray, shape (C, H, W, m)
    kernel, stride : (int, int)

    Returns
    -------
    A : ndarray, shape (C, H_out, W_out, m)
    cache : MaxPoolCache
        Holds the arg-max offset of each window (ties: the first in row-major window order).

    Notes
    -----
    Spec: MAXPOOL-FWD

    A[c, y, x, n] = max_{i, j} X[c, s_h y + i, s_w x + j, n]. Offsets are visited in row-major
    order and the running maximum is replaced only by a strictly larger value, so the first
    maximum wins a tie.
    """
    geo = PoolGeometry.of(X.shape, kernel, stride)
    m: int = X.shape[3]
    A: FloatArray = X[geo.window(0, 0)].copy()
    argmax = np.zeros(A.shape, dtype=_index_dtype(geo.kh * geo.kw))
    larger = np.empty(A.shape, dtype=bool)
    for k in range(1, geo.kh * geo.kw):
        S = X[geo.window(*divmod(k, geo.kw))]
        np.greater(S, A, out=larger)
        np.copyto(A, S, where=larger)
        np.copyto(argmax, k, where=larger, casting="unsafe")
    return A, MaxPoolCache(argmax, geo, m)


def maxpool_backward(dA: FloatArray, cache: MaxPoolCache) -> FloatArray:
    """Send each window's gradient to its arg-max.

    Parameters
    ----------
    dA : ndarray, shape (C, H_out, W_out, m)
    cache : MaxPoolCache

    Returns
    -------
    dX : ndarray, shape (C, H, W, m)

    Notes
    -----
    Spec: MAXPOOL-BWD

    dX[c, s_h y + i*, s_w x + j*, n] += dA[c, y, x, n]: for each offset k, the windows whose
    arg-max is k add dA into that offset's strided slice.
    """
    geo = cache.geo
    dX = np.zeros((geo.C, geo.H, geo.W, cache.m), dtype=dA.dtype)
    routed = np.empty_like(dA)
    for k in range(geo.kh * geo.kw):
        hit = cache.argmax == k
        np.multiply(dA, hit, out=routed)
        dX[geo.window(*divmod(k, geo.kw))] += routed
    return dX


@dataclass(frozen=True)
class AvgPoolCache:
    """Average pooling needs only the geometry."""

    geo: PoolGeometry
    m: int


def avgpool_forward(
    X: FloatArray, kernel: IntPair, stride: IntPair
) -> tuple[FloatArray, AvgPoolCache]:
    """Mean over each kh x kw window, per channel and example.

    Notes
    -----
    Spec: AVGPOOL-FWD

    A[c, y, x, n] = (1 / (kh kw)) Σ_{i, j} X[c, s_h y + i, s_w x + j, n]: the window sums are
    accumulated offset by offset in row-major order, then scaled once.
    """
    geo = PoolGeometry.of(X.shape, kernel, stride)
    m: int = X.shape[3]
    A: FloatArray = X[geo.window(0, 0)].copy()
    for k in range(1, geo.kh * geo.kw):
        A += X[geo.window(*divmod(k, geo.kw))]
    A *= X.dtype.type(1.0 / (geo.kh * geo.kw))
    return A, AvgPoolCache(geo, m)


def avgpool_backward(dA: FloatArray, cache: AvgPoolCache) -> FloatArray:
    """Spread each window's gradient evenly over the window.

    Notes
    -----
    Spec: AVGPOOL-BWD

    dX[c, s_h y + i, s_w x + j, n] += dA[c, y, x, n] / (kh kw) for every offset (i, j).
    """
    geo = cache.geo
    dX = np.zeros((geo.C, geo.H, geo.W, cache.m), dtype=dA.dtype)
    share: FloatArray = dA * dA.dtype.type(1.0 / (geo.kh * geo.kw))
    for k in range(geo.kh * geo.kw):
        dX[geo.window(*divmod(k, geo.kw))] += share
    return dX


class _Pool2D(Layer[CacheT]):
    """Shared set-up of the pooling layers: window, stride (default: the window), input checks."""

    def __init__(
        self,
        kernel_size: int | IntPair,
        *,
        stride: int | IntPair | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.kernel_size = as_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else as_pair(stride, "stride", minimum=1)

    def _input(self, X: object) -> FloatArray:
        return as_input(X, "X", ndim=4, dtype=self.dtype, layout="C x H x W x m")

    def config(self) -> dict[str, Any]:
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            **super().config(),
        }


class MaxPool2D(_Pool2D[MaxPoolCache]):
    """Max pooling layer (MAXPOOL-FWD, MAXPOOL-BWD); no parameters.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows).
    dtype : float64 or float32

    Notes
    -----
    Ties inside a window: the first maximum in row-major window order gets the whole gradient
    (as in PyTorch's CPU max_pool2d).
    """

    def __init__(
        self,
        kernel_size: int | IntPair,
        *,
        stride: int | IntPair | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(kernel_size, stride=stride, dtype=dtype)

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        A, cache = maxpool_forward(self._input(X), self.kernel_size, self.stride)
        self._remember(cache)
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        dA = self._check_upstream(dA, cache.argmax.shape)
        return maxpool_backward(dA, cache)


class AvgPool2D(_Pool2D[AvgPoolCache]):
    """Average pooling layer (AVGPOOL-FWD, AVGPOOL-BWD); no parameters.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows).
    dtype : float64 or float32
    """

    def __init__(
        self,
        kernel_size: int | IntPair,
        *,
        stride: int | IntPair | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(kernel_size, stride=stride, dtype=dtype)

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        A, cache = avgpool_forward(self._input(X), self.kernel_size, self.stride)
        self._remember(cache)
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        geo = cache.geo
        dA = self._check_upstream(dA, (geo.C, geo.H_out, geo.W_out, cache.m))
        return avgpool_backward(dA, cache)
