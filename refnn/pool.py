"""Max and average pooling (MAXPOOL-*, AVGPOOL-*) over C x H x W x m images.

Each is a loop over the kh kw window offsets; offset (i, j) sees the strided slice
X[:, i : i + s_h H_out : s_h, j : j + s_w W_out : s_w, :] of every channel, position and example
at once. Where the windows tile the input (stride = kernel, the default) the backward writes each
offset's share straight into its slice of dX; otherwise it adds into zeros in place, which
handles overlapping windows (stride < kernel) and gaps (stride > kernel) with no ``np.add.at``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from refnn._validate import IntPair, as_bool, as_input, as_pair
from refnn.conv import ConvGeometry
from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray


def pool_geometry(shape: tuple[int, ...], kernel: IntPair, stride: IntPair) -> ConvGeometry:
    """The geometry of a pooling window sweep: CONV-SIZE with zero padding.

    Notes
    -----
    Spec: CONV-SIZE

    H_out = floor((H - kh) / s_h) + 1 and W_out likewise; the window must fit (kh <= H, kw <= W).
    """
    return ConvGeometry.of(shape, kernel, stride, (0, 0))


#: ``term(k, out)`` writes window offset k's share of dX, shaped like the output, into ``out``.
Term = Callable[[int, FloatArray], object]


def _window(geo: ConvGeometry, k: int) -> tuple[slice, slice, slice, slice]:
    """Offset k = i kw + j of every window at once: a strided slice of the (unpadded) input."""
    i, j = divmod(k, geo.kw)
    (sh, sw) = geo.stride
    return (
        slice(None),
        slice(i, i + sh * (geo.H_out - 1) + 1, sh),
        slice(j, j + sw * (geo.W_out - 1) + 1, sw),
        slice(None),
    )


@dataclass(frozen=True)
class AvgPoolCache:
    """Average pooling needs only the geometry and the number of examples."""

    geo: ConvGeometry
    m: int


@dataclass(frozen=True)
class MaxPoolCache(AvgPoolCache):
    """Max pooling also keeps, per window offset k = i kw + j, where that offset holds its
    window's first maximum: ``won[k]``, a boolean array shaped like the output."""

    won: npt.NDArray[np.bool_]


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
        Marks the arg-max offset of each window (ties: the first in row-major window order).

    Notes
    -----
    Spec: MAXPOOL-FWD

    A[c, y, x, n] = max_{i, j} X[c, s_h y + i, s_w x + j, n], a running maximum over the
    offsets. Then, offset by offset in row-major order, an offset wins the windows where it
    equals the maximum and no earlier offset has won, so the first maximum wins a tie.
    """
    geo = pool_geometry(X.shape, kernel, stride)
    m: int = X.shape[3]
    K = geo.kh * geo.kw
    A: FloatArray = X[_window(geo, 0)].copy()
    for k in range(1, K):
        np.maximum(A, X[_window(geo, k)], out=A)
    won = np.empty((K, *A.shape), dtype=bool)
    taken = np.zeros(A.shape, dtype=bool)
    for k in range(K - 1):
        np.equal(X[_window(geo, k)], A, out=won[k])
        np.greater(won[k], taken, out=won[k])  # equal to the maximum and not yet taken
        np.logical_or(taken, won[k], out=taken)
    np.logical_not(taken, out=won[K - 1])  # some offset attains the maximum of finite values
    return A, MaxPoolCache(geo, m, won)


def _spread(geo: ConvGeometry, m: int, dtype: np.dtype[Any], term: Term) -> FloatArray:
    """dX from one output-shaped term per window offset: ``term(k, out)`` writes offset k's.

    Where the windows tile the input (stride = kernel) each covered pixel is in exactly one
    window: the terms are written straight into dX's strided slices (no zero fill, no adding).
    Otherwise they are added into zeros, which handles overlapping windows and gaps.
    """
    shape = (geo.C, geo.H, geo.W, m)
    if geo.stride == (geo.kh, geo.kw):
        dX: FloatArray = np.empty(shape, dtype=dtype)
        dX[:, geo.H_out * geo.kh :] = 0  # the rows and columns no window reaches
        dX[:, :, geo.W_out * geo.kw :] = 0
        for k in range(geo.kh * geo.kw):
            term(k, dX[_window(geo, k)])
        return dX
    dX = np.zeros(shape, dtype=dtype)
    part = np.empty((geo.C, geo.H_out, geo.W_out, m), dtype=dtype)
    for k in range(geo.kh * geo.kw):
        term(k, part)
        dX[_window(geo, k)] += part
    return dX


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

    dX[c, s_h y + i*, s_w x + j*, n] += dA[c, y, x, n]: for each offset k, dA masked by the
    windows that offset won goes to that offset's strided slice.
    """
    return _spread(
        cache.geo, cache.m, dA.dtype, lambda k, out: np.multiply(dA, cache.won[k], out=out)
    )


def avgpool_forward(
    X: FloatArray, kernel: IntPair, stride: IntPair
) -> tuple[FloatArray, AvgPoolCache]:
    """Mean over each kh x kw window, per channel and example.

    Notes
    -----
    Spec: AVGPOOL-FWD

    A[c, y, x, n] = Σ_{i, j} X[c, s_h y + i, s_w x + j, n] / (kh kw): each term is scaled
    before the sum, offset by offset in row-major order, so a mean of values near the top of
    the float range cannot overflow (a sum of them would).
    """
    geo = pool_geometry(X.shape, kernel, stride)
    m: int = X.shape[3]
    scale = X.dtype.type(1.0 / (geo.kh * geo.kw))
    A: FloatArray = X[_window(geo, 0)] * scale
    for k in range(1, geo.kh * geo.kw):
        A += X[_window(geo, k)] * scale
    return A, AvgPoolCache(geo, m)


def avgpool_backward(dA: FloatArray, cache: AvgPoolCache) -> FloatArray:
    """Spread each window's gradient evenly over the window.

    Notes
    -----
    Spec: AVGPOOL-BWD

    dX[c, s_h y + i, s_w x + j, n] += dA[c, y, x, n] / (kh kw) for every offset (i, j).
    """
    scale = dA.dtype.type(1.0 / (cache.geo.kh * cache.geo.kw))
    return _spread(cache.geo, cache.m, dA.dtype, lambda _, out: np.multiply(dA, scale, out=out))


PoolCacheT = TypeVar("PoolCacheT", bound=AvgPoolCache)


class _Pool2D(Layer[PoolCacheT]):
    """A pooling layer: window, stride (default: the window), no parameters, no padding."""

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

    @abstractmethod
    def _pool(self, X: FloatArray) -> tuple[FloatArray, PoolCacheT]: ...

    @abstractmethod
    def _unpool(self, dA: FloatArray, cache: PoolCacheT) -> FloatArray: ...

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        as_bool(training, "training")
        A, cache = self._pool(as_input(X, "X", ndim=4, dtype=self.dtype, layout="C x H x W x m"))
        self._remember(cache)
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        geo = cache.geo
        dA = self._check_upstream(dA, (geo.C, geo.H_out, geo.W_out, cache.m))
        return self._unpool(dA, cache)

    def config(self) -> dict[str, Any]:
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            **super().config(),
        }


class MaxPool2D(_Pool2D[MaxPoolCache]):
    """Max pooling layer (MAXPOOL-FWD, MAXPOOL-BWD): ``MaxPool2D(kernel_size, *, stride=None,
    dtype=float64)``; the stride defaults to the window (non-overlapping windows).

    Ties inside a window: the first maximum in row-major window order gets the whole gradient
    (as in PyTorch's CPU max_pool2d).
    """

    def _pool(self, X: FloatArray) -> tuple[FloatArray, MaxPoolCache]:
        return maxpool_forward(X, self.kernel_size, self.stride)

    def _unpool(self, dA: FloatArray, cache: MaxPoolCache) -> FloatArray:
        return maxpool_backward(dA, cache)


class AvgPool2D(_Pool2D[AvgPoolCache]):
    """Average pooling layer (AVGPOOL-FWD, AVGPOOL-BWD): ``AvgPool2D(kernel_size, *,
    stride=None, dtype=float64)``; the stride defaults to the window.
    """

    def _pool(self, X: FloatArray) -> tuple[FloatArray, AvgPoolCache]:
        return avgpool_forward(X, self.kernel_size, self.stride)

    def _unpool(self, dA: FloatArray, cache: AvgPoolCache) -> FloatArray:
        return avgpool_backward(dA, cache)
