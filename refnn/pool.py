"""Max and average pooling (MAXPOOL-*, AVGPOOL-*) over C x H x W x m images.

Each is a loop over the kh kw window offsets; offset (i, j) sees the strided slice
X[:, i : i + s_h H_out : s_h, j : j + s_w W_out : s_w, :] of every channel, position and example
at once. Where the windows tile the input (stride = kernel, the default) the backward writes each
offset's share straight into its slice of dX; otherwise it adds into zeros in place, which
handles overlapping windows (stride < kernel) and gaps (stride > kernel) with no ``np.add.at``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from refnn._validate import IntPair, as_pair, refuse_nonfinite
from refnn._windows import ConvGeometry
from refnn.kitspace import Elements, Ints, LayerSpace, PairOf, Values
from refnn.layer import Example, Input, InputKind, Layer
from refnn.registry import register
from refnn.types import DTypeLike, FloatArray


def pool_geometry(shape: tuple[int, ...], kernel: IntPair, stride: IntPair) -> ConvGeometry:
    """The geometry of a pooling window sweep: CONV-SIZE with zero padding.

    Notes
    -----
    Spec: CONV-SIZE

    H_out = floor((H - kh) / s_h) + 1 and W_out likewise; the window must fit (kh <= H, kw <= W).
    """
    return ConvGeometry.of(shape, kernel, stride, (0, 0))


def _window(geo: ConvGeometry, i: int, j: int) -> tuple[slice, slice, slice, slice]:
    """Offset (i, j) of every window at once: a strided slice of the (unpadded) input."""
    (sh, sw) = geo.stride
    return (
        slice(None),
        slice(i, i + sh * (geo.H_out - 1) + 1, sh),
        slice(j, j + sw * (geo.W_out - 1) + 1, sw),
        slice(None),
    )


def _offsets(geo: ConvGeometry) -> list[tuple[int, int]]:
    """The window offsets (i, j) in row-major order."""
    return [(i, j) for i in range(geo.kh) for j in range(geo.kw)]


def _tiles(geo: ConvGeometry) -> bool:
    """Whether the windows tile the input (stride = kernel): no overlap, no gaps between them."""
    return geo.stride == (geo.kh, geo.kw)


def _tiled(X: FloatArray, geo: ConvGeometry) -> FloatArray:
    """The part of X the tiling windows cover, as C x H_out x kh x W_out x kw x m (a view)."""
    C, _, _, m = X.shape
    covered = X[:, : geo.H_out * geo.kh, : geo.W_out * geo.kw]
    return covered.reshape(C, geo.H_out, geo.kh, geo.W_out, geo.kw, m)


@dataclass(frozen=True)
class AvgPoolCache:
    """Average pooling needs only the geometry and the number of examples."""

    geo: ConvGeometry
    m: int


@dataclass(frozen=True)
class MaxPoolCache(AvgPoolCache):
    """Max pooling also marks where each window's first maximum is: ``won[c, y, i, x, j, n]``
    is True when offset (i, j) holds it (C x H_out x kh x W_out x kw x m, boolean)."""

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
    offsets. Then every offset equal to its window's maximum is marked (where windows tile the
    input, in one comparison) and, offset by offset in row-major order, keeps the mark only
    where no earlier offset has won, so the first maximum wins a tie.
    """
    geo = pool_geometry(X.shape, kernel, stride)
    m: int = X.shape[3]
    first, *rest = (X[_window(geo, i, j)] for i, j in _offsets(geo))
    A: FloatArray = np.maximum(first, rest.pop(0)) if rest else first.copy()
    for window in rest:
        np.maximum(A, window, out=A)
    won = np.empty((geo.C, geo.H_out, geo.kh, geo.W_out, geo.kw, m), dtype=bool)
    if _tiles(geo):  # every offset holding the maximum, in one comparison
        np.equal(_tiled(X, geo), A[:, :, None, :, None, :], out=won)
    else:
        for i, j in _offsets(geo):
            np.equal(X[_window(geo, i, j)], A, out=won[:, :, i, :, j])
    (i0, j0), *later = _offsets(geo)
    taken = won[:, :, i0, :, j0].copy()
    for i, j in later:  # ties: an offset wins only where no earlier offset has
        np.greater(won[:, :, i, :, j], taken, out=won[:, :, i, :, j])
        np.logical_or(taken, won[:, :, i, :, j], out=taken)
    return A, MaxPoolCache(geo, m, won)


def _spread(dA: FloatArray, weight: npt.NDArray[Any], geo: ConvGeometry, m: int) -> FloatArray:
    """dX[c, s_h y + i, s_w x + j, n] += dA[c, y, x, n] weight[c, y, i, x, j, n].

    ``weight`` broadcasts to C x H_out x kh x W_out x kw x m. Where the windows tile the input
    each covered pixel is in exactly one window: one broadcast product writes them all (no
    zero fill, no adding). Otherwise each offset adds into zeros in place, which handles
    overlapping windows and gaps.
    """
    dA6 = dA[:, :, None, :, None, :]
    dX: FloatArray
    if _tiles(geo):
        dX = np.empty((geo.C, geo.H, geo.W, m), dtype=dA.dtype)
        dX[:, geo.H_out * geo.kh :] = 0  # the rows and columns no window reaches
        dX[:, :, geo.W_out * geo.kw :] = 0
        np.multiply(dA6, weight, out=_tiled(dX, geo))
        return dX
    dX = np.zeros((geo.C, geo.H, geo.W, m), dtype=dA.dtype)
    weight = np.broadcast_to(weight, (geo.C, geo.H_out, geo.kh, geo.W_out, geo.kw, m))
    for i, j in _offsets(geo):
        dX[_window(geo, i, j)] += dA * weight[:, :, i, :, j]
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

    dX[c, s_h y + i*, s_w x + j*, n] += dA[c, y, x, n]: dA times the window's arg-max mask.
    """
    return _spread(dA, cache.won, cache.geo, cache.m)


def avgpool_forward(
    X: FloatArray, kernel: IntPair, stride: IntPair
) -> tuple[FloatArray, AvgPoolCache]:
    """Mean over each kh x kw window, per channel and example.

    Notes
    -----
    Spec: AVGPOOL-FWD

    A[c, y, x, n] = Σ_{i, j} X[c, s_h y + i, s_w x + j, n] / (kh kw). Tiling windows are summed
    in one reduction, then scaled; if that sum overflows (values near the top of the float
    range), and always for other windows, each term is scaled before the sum, offset by offset
    in row-major order, so the mean itself never overflows.
    """
    geo = pool_geometry(X.shape, kernel, stride)
    m: int = X.shape[3]
    scale = X.dtype.type(1.0 / (geo.kh * geo.kw))
    if _tiles(geo):
        with np.errstate(over="ignore", invalid="ignore"):
            A: FloatArray = _tiled(X, geo).sum(axis=(2, 4)) * scale
        if np.all(np.isfinite(A)):
            return A, AvgPoolCache(geo, m)
    (i0, j0), *rest = _offsets(geo)
    A = X[_window(geo, i0, j0)] * scale
    for i, j in rest:
        A += X[_window(geo, i, j)] * scale
    return A, AvgPoolCache(geo, m)


def avgpool_backward(dA: FloatArray, cache: AvgPoolCache) -> FloatArray:
    """Spread each window's gradient evenly over the window.

    Notes
    -----
    Spec: AVGPOOL-BWD

    dX[c, s_h y + i, s_w x + j, n] += dA[c, y, x, n] / (kh kw) for every offset (i, j).
    """
    scale = np.asarray(1.0 / (cache.geo.kh * cache.geo.kw), dtype=dA.dtype)
    return _spread(dA, scale, cache.geo, cache.m)


PoolCacheT = TypeVar("PoolCacheT", bound=AvgPoolCache)


Pair = tuple[int, int]
#: (C, H, W, kernel, stride or None, m, seed) of make check's cases: default stride,
#: overlapping windows, gaps, non-square windows.
POOL_CONFIGS: tuple[tuple[int, int, int, Pair, Pair | None, int, int], ...] = (
    (2, 4, 4, (2, 2), None, 2, 0),
    (2, 5, 5, (3, 3), (1, 1), 2, 1),
    (1, 7, 6, (2, 2), (3, 2), 3, 2),
    (3, 5, 4, (2, 3), (1, 1), 2, 0),
)


def _overlap(v: Values) -> int:
    """How many windows one input element can fall in."""
    (kh, kw), (sh, sw) = v["kernel_size"], v["stride"]
    return -(-kh // sh) * -(-kw // sw)


def _pool_space(elements: Elements, sums: Callable[[Values], dict[str, int]]) -> LayerSpace:
    """What the kit draws for a pool: windows up to the input, strides overlapping, touching
    and with gaps."""
    return LayerSpace(
        draws={
            "C": Ints(1, 3),
            "m": Ints(1, 3),
            "H": Ints(1, 6),
            "W": Ints(1, 6),
            "kernel_size": PairOf(Ints(1, lambda v: v["H"]), Ints(1, lambda v: v["W"])),
            "stride": PairOf(Ints(1, 4), Ints(1, 4)),
        },
        input_shape=lambda v: (v["C"], v["H"], v["W"], v["m"]),
        sums=lambda v, s: sums(v),
        scale="upstream" if elements == "ties" else "absolute",
        elements=elements,
    )


class _Pool2D(Layer[PoolCacheT]):
    """A pooling layer: window, stride (default: the window), no parameters, no padding."""

    grads_can_overflow = False  # dX copies or averages dA
    takes = Input(ndim=4, layout="C x H x W x m")
    #: How make check draws the input (max pooling: entries far apart, no ties in a stencil).
    check_input: ClassVar[InputKind] = "normal"

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

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Every geometry of POOL_CONFIGS, one reused across batch sizes, one in float32."""
        x = cls.check_input
        tag = " distinct" if x == "distinct" else ""
        out = [
            Example(
                f"{C}x{H}x{W} k={k[0]}x{k[1]} s="
                + ("default" if s is None else f"{s[0]},{s[1]}")
                + f" m={m}{tag}",
                (C, H, W, m),
                (k,),
                {"stride": s},
                seed,
                x,
            )
            for C, H, W, k, s, m, seed in POOL_CONFIGS
        ]
        out.append(
            Example(
                "2x5x5 k=3x3 s=1,1 m=2" + tag, (2, 5, 5, 2), (3,), {"stride": 1}, x=x, float32=True
            )
        )
        return tuple(out)

    def config(self) -> dict[str, Any]:
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            **super().config(),
        }


@register
class MaxPool2D(_Pool2D[MaxPoolCache]):
    """Max pooling layer (MAXPOOL-FWD, MAXPOOL-BWD): ``MaxPool2D(kernel_size, *, stride=None,
    dtype=float64)``; the stride defaults to the window (non-overlapping windows).

    Ties inside a window: the first maximum in row-major window order gets the whole gradient
    (as in PyTorch's CPU max_pool2d).
    """

    specs = {"Y": ("MAXPOOL-FWD",), "dX": ("MAXPOOL-BWD",)}
    can_overflow = False
    # ties drawn (exact zeros, repeated values): the first maximum takes the gradient; code
    # routing a tie to another single maximum declares ties="any" (ties are then not drawn)
    kit = replace(
        _pool_space("ties", lambda v: {"Y": 1, "dX": _overlap(v)}),
        conventions={"ties": ("first", "any")},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        k, s = tuple(config["kernel_size"]), tuple(config["stride"])
        return torch.nn.functional.max_pool2d(X.permute(3, 0, 1, 2), k, s).permute(1, 2, 3, 0)

    check_input = "distinct"

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Also exact ties (GC-KINK moves off them) and a layer reused across batch sizes."""
        return (
            *super().examples(),
            Example(
                "2x4x4 k=2x2 s=1,1 m=2 exact ties", (2, 4, 4, 2), (2,), {"stride": 1}, 3, "ties"
            ),
            Example(
                "2x4x4x2 after a batch of m=3",
                (2, 4, 4, 2),
                (2,),
                x="distinct",
                after_other_batch=True,
            ),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, MaxPoolCache]:
        return maxpool_forward(X, self.kernel_size, self.stride)

    def _backward(
        self, dY: FloatArray, cache: MaxPoolCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return maxpool_backward(dY, cache), {}, {}


@register
class AvgPool2D(_Pool2D[AvgPoolCache]):
    """Average pooling layer (AVGPOOL-FWD, AVGPOOL-BWD): ``AvgPool2D(kernel_size, *,
    stride=None, dtype=float64)``; the stride defaults to the window.

    Where the windows tile X exactly, X's finiteness is read off the output (a window's mean is
    finite only if each of its values is): one pass fewer; elsewhere X is tested as it comes.
    """

    specs = {"Y": ("AVGPOOL-FWD",), "dX": ("AVGPOOL-BWD",)}
    output_reveals_nonfinite_input = True
    kit = _pool_space(
        "normal",
        lambda v: {"Y": v["kernel_size"][0] * v["kernel_size"][1] + 1, "dX": _overlap(v) + 1},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        k, s = tuple(config["kernel_size"]), tuple(config["stride"])
        return torch.nn.functional.avg_pool2d(X.permute(3, 0, 1, 2), k, s).permute(1, 2, 3, 0)

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, AvgPoolCache]:
        A, cache = avgpool_forward(X, self.kernel_size, self.stride)
        g = cache.geo
        if not (_tiles(g) and (g.kh * g.H_out, g.kw * g.W_out) == (g.H, g.W)):
            refuse_nonfinite(X, "X")
        return A, cache

    def _backward(
        self, dY: FloatArray, cache: AvgPoolCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return avgpool_backward(dY, cache), {}, {}
