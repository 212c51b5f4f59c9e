"""2-D convolution (CONV-*): the dense equation on patches, Z = W col(X) + b.

Images are C x H x W x m (examples last, NOTE-AXES). With that layout the patch matrix of all
examples, col(X) in R^{(C kh kw) x (H_out W_out m)}, is filled by a loop over the kh kw kernel
offsets that copies one strided slice of the input per offset; the forward is one matrix product
whose result reshapes to F x H_out x W_out x m without a transpose; the backward is two more
products and col2im, the same loop over offsets adding row blocks back into strided slices.
There is no Python loop over examples, channels or output positions and no ``np.add.at``.
This is the reference ("direct") path and the default; ``algorithm="winograd"`` selects the
Winograd path of ``refnn.winograd`` for 3 x 3 stride-1 layers (WINO-*), the same equations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from refnn._validate import (
    IntPair,
    as_pair,
    check_allocatable,
    check_groups,
    check_rng,
    positive_int,
)
from refnn._windows import (
    ConvGeometry as ConvGeometry,  # public here too, where the convolution uses it
)
from refnn._windows import (
    channel_blocks,
    fitting,
    reusable,
    scratch,
    valid_span,
)
from refnn._windows import (
    output_size as output_size,  # public here, where CONV-SIZE is used (also by the pools)
)
from refnn.init import init_weights
from refnn.kitspace import Ints, LayerSpace, PairOf, Shapes, Values
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.types import DTypeLike, FloatArray
from refnn.winograd import WinogradCache, winograd_backward, winograd_forward


def im2col(X: FloatArray, geo: ConvGeometry, out: FloatArray | None = None) -> FloatArray:
    """The patch matrix of every example at once.

    Parameters
    ----------
    X : ndarray, shape (C, H, W, m)
    geo : ConvGeometry
    out : ndarray, shape (C kh kw, H_out W_out m), optional
        Written whole if writeable, C-contiguous and of X's dtype (else ValueError).

    Returns
    -------
    col : ndarray, shape (C kh kw, H_out W_out m), C-contiguous

    Notes
    -----
    Spec: CONV-COL, CONV-DILATION

    col[(c, i, j), (y, x, n)] = X_p[c, s_h y + d_h i, s_w x + d_w j, n] (CONV-DILATION; d = 1
    without dilation). One strided-slice copy per kernel offset (i, j) and block of channels
    (``channel_blocks``: each channel, read kh kw times, comes from memory once); the padding
    is never materialised: taps in it are zeroed.
    """
    m: int = X.shape[3]
    shape = geo.col_shape(m)
    col = np.empty(shape, dtype=X.dtype) if out is None else fitting(out, shape, X.dtype, "out")
    blocks = col.reshape(geo.C, geo.kh, geo.kw, geo.H_out, geo.W_out, m)
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    for cs in channel_blocks(geo.C, X[0].nbytes):  # each X[c] is read kh kw times: from cache
        for i in range(geo.kh):
            y0, y1, h0 = valid_span(dh * i, sh, ph, geo.H, geo.H_out)
            for j in range(geo.kw):
                x0, x1, w0 = valid_span(dw * j, sw, pw, geo.W, geo.W_out)
                block = blocks[cs, i, j]
                block[:, y0:y1, x0:x1, :] = X[
                    cs, h0 : h0 + sh * (y1 - y0) : sh, w0 : w0 + sw * (x1 - x0) : sw, :
                ]
                block[:, :y0] = block[:, y1:] = 0
                block[:, y0:y1, :x0] = block[:, y0:y1, x1:] = 0
    return col


def col2im(dcol: FloatArray, geo: ConvGeometry, m: int) -> FloatArray:
    """Add every patch entry back to the input pixel it was copied from (adjoint of im2col).

    Parameters
    ----------
    dcol : ndarray, shape (C kh kw, H_out W_out m)
    geo : ConvGeometry
    m : int
        Number of examples.

    Returns
    -------
    dX : ndarray, shape (C, H, W, m), a new C-contiguous array

    Notes
    -----
    Spec: CONV-DX, CONV-DILATION

    dX_p[c, s_h y + d_h i, s_w x + d_w j, n] += dcol[(c, i, j), (y, x, n)], then the padding is
    dropped; taps in the padding are simply skipped. One strided in-place add per kernel offset
    and block of channels (``channel_blocks``).
    """
    dX = np.zeros((geo.C, geo.H, geo.W, m), dtype=dcol.dtype)
    blocks = dcol.reshape(geo.C, geo.kh, geo.kw, geo.H_out, geo.W_out, m)
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    for cs in channel_blocks(geo.C, dX[0].nbytes):  # each dX[c] gets kh kw adds: in cache
        for i in range(geo.kh):
            y0, y1, h0 = valid_span(dh * i, sh, ph, geo.H, geo.H_out)
            for j in range(geo.kw):
                x0, x1, w0 = valid_span(dw * j, sw, pw, geo.W, geo.W_out)
                rows, cols = slice(h0, h0 + sh * (y1 - y0), sh), slice(w0, w0 + sw * (x1 - x0), sw)
                dX[cs, rows, cols] += blocks[cs, i, j, y0:y1, x0:x1]
    return dX


class ConvGrads(NamedTuple):
    """(dX, dW, db): unpacks as a tuple; the names are kept for callers that use them."""

    dX: FloatArray
    dW: FloatArray
    db: FloatArray


@dataclass(frozen=True)
class ConvCache:
    """What the convolution backward needs: the patch matrix col(X) with a last row of ones
    ((C kh kw + 1) x (H_out W_out m)) and the geometry."""

    col: FloatArray
    geo: ConvGeometry
    m: int
    groups: int = 1

    def output_shape(self, F: int) -> tuple[int, int, int, int]:
        return F, self.geo.H_out, self.geo.W_out, self.m


def conv_forward(
    X: FloatArray,
    W: FloatArray,
    b: FloatArray,
    *,
    stride: IntPair = (1, 1),
    padding: IntPair = (0, 0),
    dilation: IntPair = (1, 1),
    groups: int = 1,
    col: FloatArray | None = None,
) -> tuple[FloatArray, ConvCache]:
    """2-D convolution (cross-correlation) of a batch of images.

    Parameters
    ----------
    X : ndarray, shape (C, H, W, m)
    W : ndarray, shape (F, C / groups, kh, kw)
    b : ndarray, shape (F, 1)
    stride, padding, dilation : (int, int)
    groups : int
        C and F split into ``groups`` equal blocks; block g of the filters sees block g of the
        channels only (CONV-GROUPS; groups = C: depthwise).
    col : ndarray, optional
        Used to hold the patch matrix if ``reusable`` (a writeable C-contiguous array of X's
        dtype, shape (C kh kw + 1, H_out W_out m); else a new one): ``Conv2D`` passes its
        previous cache's, which it drops first (it becomes invalid).

    Returns
    -------
    Z : ndarray, shape (F, H_out, W_out, m)
    cache : ConvCache

    Notes
    -----
    Spec: CONV-FWD, CONV-GROUPS

    Z_mat = W_mat col(X) + b: one matrix product, Z_mat reshaped to F x H_out x W_out x m,
    computed as [W_mat b] [col(X); 1^T]: the bias rides in the product on a row of ones, which
    the cache keeps, so that the backward's dW product yields db as its last column. With
    groups, one product per block (CONV-GROUPS): the rows of col(X) of channel block g are
    contiguous, and Z's block g is W_g col_g(X), then b is added.
    """
    F: int = W.shape[0]
    m: int = X.shape[3]
    geo = ConvGeometry.of(X.shape, (W.shape[2], W.shape[3]), stride, padding, dilation)
    K, N = geo.col_shape(m)
    check_allocatable((K + 1, N), X.dtype, "the patch matrix col(X)")
    if not reusable(col, (K + 1, N), X.dtype):
        col = np.empty((K + 1, N), dtype=X.dtype)
    im2col(X, geo, out=col[:K])
    col[K] = 1
    if groups == 1:
        Z_mat: FloatArray = np.concatenate([W.reshape(F, K), b], axis=1) @ col
    else:
        Z_mat = np.matmul(W.reshape(groups, F // groups, -1), col[:K].reshape(groups, -1, N))
        Z_mat = Z_mat.reshape(F, N)
        Z_mat += b
    return Z_mat.reshape(F, geo.H_out, geo.W_out, m), ConvCache(col, geo, m, groups)


def conv_backward(dZ: FloatArray, W: FloatArray, cache: ConvCache) -> ConvGrads:
    """Chain rule through Z_mat = W_mat col(X) + b.

    Parameters
    ----------
    dZ : ndarray, shape (F, H_out, W_out, m)
        ∂J/∂Z; it already carries the 1/m of the cost (NOTE-COST).
    W : ndarray, shape (F, C / groups, kh, kw)
    cache : ConvCache

    Returns
    -------
    ConvGrads
        (dX, dW, db) of shapes (C, H, W, m), W's, (F, 1); all new arrays.

    Notes
    -----
    Spec: CONV-DW, CONV-DB, CONV-DX, CONV-GROUPS

    dW_mat = dZ_mat col^T,  db = dZ_mat 1,  dcol = W_mat^T dZ_mat,  dX = col2im(dcol).
    [dW_mat db] is one product with the cached [col; 1^T], computed as ([col; 1^T] dZ_mat^T)^T:
    the same numbers, but BLAS handles the long inner dimension (H_out W_out m) much better in
    that orientation (measured 1.5-2x at 32x32x64).
    At most two patch-sized arrays live at once: the cached col and dcol, which lives in the
    calling thread's scratch buffer (``refnn.winograd.release_scratch``): fully written here,
    read only by ``col2im`` below, never returned.
    """
    F: int = W.shape[0]
    dZ_mat = dZ.reshape(F, -1)
    if cache.groups > 1:  # CONV-GROUPS: the same three products, block by block
        g, N = cache.groups, dZ_mat.shape[1]
        col_g = cache.col[:-1].reshape(g, -1, N)
        dZ_g = dZ_mat.reshape(g, F // g, N)
        dW_g = np.matmul(dZ_g, col_g.transpose(0, 2, 1))
        W_gT = W.reshape(g, F // g, -1).transpose(0, 2, 1)
        dcol_g = scratch.take(0, col_g.shape, dZ.dtype)  # a temporary, as the dense path's
        if F == g:  # depthwise, one filter per channel: an outer product per group, whose
            np.multiply(W_gT, dZ_g, out=dcol_g)  # matmul (inner size 1) runs 3.5x slower
        else:
            np.matmul(W_gT, dZ_g, out=dcol_g)
        db_g = dZ_mat.sum(axis=1, keepdims=True)
        dX_g = col2im(dcol_g.reshape(-1, N), cache.geo, cache.m)
        return ConvGrads(dX_g, dW_g.reshape(W.shape), db_g)
    W_mat_T = np.ascontiguousarray(W.reshape(F, -1).T)
    dWb = (cache.col @ dZ_mat.T).T  # [dW_mat db], F x (C kh kw + 1)
    dW: FloatArray = dWb[:, :-1].reshape(W.shape)
    db: FloatArray = np.ascontiguousarray(dWb[:, -1:])
    dcol_shape = (W_mat_T.shape[0], dZ_mat.shape[1])  # a temporary: in this thread's scratch
    dcol = np.matmul(W_mat_T, dZ_mat, out=scratch.take(0, dcol_shape, dZ.dtype))
    return ConvGrads(col2im(dcol, cache.geo, cache.m), dW, db)


ALGORITHMS = ("auto", "direct", "winograd")


#: The spec IDs each path computes, by quantity.
DIRECT_IDS = ("CONV-SIZE", "CONV-COL", "CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
WINO_IDS = ("CONV-SIZE", "WINO-1D", "WINO-FWD", "WINO-DW", "WINO-DX", "CONV-DB")
Pair = tuple[int, int]
#: (C, F, H, W, kernel, stride, padding, m, seed) of make check's direct-path cases: square and
#: non-square kernels, stride 1..3 (stride > kernel included), padding 0..2, a kernel equal to
#: the input and one equal to the padded input (1 x 1 outputs).
CONV_CONFIGS: tuple[tuple[int, int, int, int, Pair, Pair, Pair, int, int], ...] = (
    (2, 3, 5, 5, (3, 3), (1, 1), (0, 0), 2, 0),
    (3, 2, 4, 4, (3, 3), (1, 1), (1, 1), 2, 1),
    (2, 2, 6, 5, (3, 2), (2, 1), (1, 0), 2, 2),
    (1, 2, 7, 7, (2, 2), (3, 3), (0, 0), 3, 0),
    (2, 3, 5, 6, (1, 2), (2, 3), (2, 1), 2, 1),
    (2, 2, 4, 5, (4, 5), (1, 1), (0, 0), 3, 2),
    (1, 2, 3, 2, (5, 4), (1, 1), (1, 1), 2, 0),
    (1, 1, 1, 1, (1, 1), (1, 1), (0, 0), 1, 1),
)
#: (C, F, H, W, kernel, stride, padding, dilation, groups, m, seed) of the direct path's dilated
#: and grouped cases: dilation alone and with stride and padding, groups of two, depthwise
#: (groups = C = F) and depthwise with a channel multiplier of 2, a dilated kernel spanning the
#: whole padded input.
VARIANT_CONFIGS: tuple[tuple[int, int, int, int, Pair, Pair, Pair, Pair, int, int, int], ...] = (
    (2, 3, 6, 6, (3, 3), (1, 1), (0, 0), (2, 2), 1, 2, 0),
    (2, 2, 7, 6, (3, 2), (2, 1), (1, 2), (2, 3), 1, 2, 1),
    (4, 6, 5, 5, (3, 3), (1, 1), (1, 1), (1, 1), 2, 2, 2),
    (3, 3, 5, 4, (3, 3), (1, 2), (1, 1), (1, 1), 3, 2, 0),
    (2, 4, 5, 5, (2, 2), (1, 1), (0, 0), (2, 1), 2, 2, 1),
    (2, 2, 3, 3, (2, 2), (1, 1), (1, 1), (3, 3), 2, 1, 2),
)
#: 3 x 3 stride 1 for the Winograd F(4x4, 3x3) tiles: 2 x 2 tiles with the last ones cut, a 1 x 1
#: output (15 of a tile's 16 outputs dropped), padding 2 on a 4 x 3 image.
WINO_CONFIGS: tuple[tuple[int, int, int, int, Pair, Pair, Pair, int, int], ...] = (
    (2, 3, 5, 6, (3, 3), (1, 1), (1, 1), 2, 1),
    (1, 2, 3, 3, (3, 3), (1, 1), (0, 0), 1, 2),
    (2, 2, 4, 3, (3, 3), (1, 1), (2, 2), 2, 0),
)


def _conv_sums(v: Values, s: Shapes) -> dict[str, int]:
    """TEST-TOL's K of each Conv2D quantity: the length of the sum behind one element."""
    F, C, kh, kw = s["W"]  # C is the channels of one group
    out = s["Y"][1] * s["Y"][2] * s["Y"][3]
    return {"Y": C * kh * kw + 1, "dX": F // v.get("groups", 1) * kh * kw, "dW": out, "db": out}


@register
class Conv2D(Layer[ConvCache | WinogradCache]):
    """2-D convolution layer, params "W" (F, C, kh, kw) and "b" (F, 1).

    Parameters
    ----------
    in_channels, out_channels : int
        C and F.
    kernel_size : int or (int, int)
        kh x kw (an int means square).
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
        Zero padding on each side.
    dilation : int or (int, int), default 1
        Spacing between kernel taps (CONV-DILATION): a kh x kw kernel spans d (k - 1) + 1.
    groups : int, default 1
        Channels and filters split into ``groups`` blocks, block g of the filters seeing block
        g of the channels only (CONV-GROUPS); groups = in_channels is a depthwise convolution.
        Both must be divisible by it. W is then (F, C / groups, kh, kw), as PyTorch's.
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG); He initialisation, fan_in = C kh kw / groups.
    dtype : float64 or float32
    algorithm : {"direct", "winograd", "auto"}, default "direct"
        "direct" is the reference: im2col and three matrix products (CONV-FWD .. CONV-DX).
        "winograd" is F(4x4, 3x3) (WINO-FWD, WINO-DW, WINO-DX), 3 x 3 kernels at stride 1,
        without dilation or groups (refused by name otherwise); "auto" takes it wherever it
        applies. Faster on wide layers, slower on small ones and
        ten times less precise in float32 (README, specs/conv.md).

    Notes
    -----
    Spec: CONV-INIT

    Nothing is kept between calls but the last forward's cache (col(X) or the transformed tiles
    V, never a reference to the input) and the per-thread scratch: Z, dX and the gradients are
    new arrays. A forward drops the previous cache and writes its col or V anew when the shapes
    match (fresh arrays that large cost page faults, and stalls while the kernel assembles huge
    pages), so backward always pairs with the last forward.
    """

    takes = Input(ndim=4, leading=("in_channels",), layout="C x H x W x m")
    specs = {
        "Y": ("CONV-SIZE", "CONV-COL", "CONV-FWD"),
        "dX": ("CONV-DX",),
        "dW": ("CONV-DW",),
        "db": ("CONV-DB",),
    }
    grads_reveal_nonfinite_upstream = True  # db sums every element of dZ (CONV-DB)
    # non-square kernels up to the padded input, strides above the kernel too, paddings 0..2
    kit = LayerSpace(
        draws={
            "in_channels": Ints(1, 4),
            "out_channels": Ints(1, 4),
            "groups": Ints(1, 2),
            "m": Ints(1, 3),
            "H": Ints(1, 6),
            "W": Ints(1, 6),
            "padding": PairOf(Ints(0, 2), Ints(0, 2)),
            "dilation": PairOf(Ints(1, 2), Ints(1, 2)),
            # the dilated kernel fits the padded input: d (k - 1) + 1 <= H + 2 p
            "kernel_size": PairOf(
                Ints(1, lambda v: (v["H"] + 2 * v["padding"][0] - 1) // v["dilation"][0] + 1),
                Ints(1, lambda v: (v["W"] + 2 * v["padding"][1] - 1) // v["dilation"][1] + 1),
            ),
            "stride": PairOf(Ints(1, 4), Ints(1, 4)),
        },
        input_shape=lambda v: (v["in_channels"], v["H"], v["W"], v["m"]),
        sums=lambda v, s: _conv_sums(v, s),
        valid=lambda v: (
            v["in_channels"] % v["groups"] == 0 and v["out_channels"] % v["groups"] == 0
        ),
        # W as refnn's F x C x kh x kw or kh x kw x C x F (TensorFlow, the course notebooks)
        conventions={"weights": ("fchw", "hwcf"), "bias": ("column", "flat")},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        Z = torch.nn.functional.conv2d(
            X.permute(3, 0, 1, 2),
            arrays["W"],
            arrays["b"][:, 0],
            stride=tuple(config["stride"]),
            padding=tuple(config["padding"]),
            dilation=tuple(config.get("dilation", (1, 1))),
            groups=config.get("groups", 1),
        )
        return Z.permute(1, 2, 3, 0)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | IntPair,
        *,
        stride: int | IntPair = 1,
        padding: int | IntPair = 0,
        dilation: int | IntPair = 1,
        groups: int = 1,
        rng: np.random.Generator,
        dtype: DTypeLike = np.float64,
        algorithm: str = "direct",
    ) -> None:
        super().__init__(dtype=dtype)
        (
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        ) = conv_arguments(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        )
        self.algorithm = _algorithm(
            algorithm, self.kernel_size, self.stride, self.dilation, self.groups
        )
        rng = check_rng(rng)
        shape = self.param_shapes(self.config())["W"]
        check_allocatable(shape, self.dtype, "W (out_channels, in_channels / groups, *kernel_size)")
        kh, kw = self.kernel_size
        fan_in, fan_out = shape[1] * kh * kw, self.out_channels // self.groups * kh * kw
        W = init_weights(shape, fan_in, fan_out, rng=rng, scheme="he", dtype=self.dtype)
        self.params = {"W": W, "b": np.zeros((self.out_channels, 1), dtype=self.dtype)}

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        F, C, (kh, kw) = config["out_channels"], config["in_channels"], config["kernel_size"]
        return {"W": (F, C // config.get("groups", 1), kh, kw), "b": (F, 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Every geometry of CONV_CONFIGS (direct) and WINO_CONFIGS (both paths), one reused
        across batch sizes, and one in float32."""
        out: list[Example] = []
        for C, F, H, W, k, s, p, m, seed in (*CONV_CONFIGS, *WINO_CONFIGS):
            fast = k == (3, 3) and s == (1, 1)
            for algorithm in ("winograd", "direct") if fast else ("direct",):
                label = (
                    f"{C}->{F} {H}x{W} k=3x3 p={p[0]},{p[1]} m={m} {algorithm}"
                    if fast
                    else f"{C}->{F} {H}x{W} k={k[0]}x{k[1]} s={s[0]},{s[1]} p={p[0]},{p[1]} m={m}"
                )
                kwargs: dict[str, Any] = {"stride": s, "padding": p, "algorithm": algorithm}
                specs = WINO_IDS if algorithm == "winograd" else DIRECT_IDS
                out.append(Example(label, (C, H, W, m), (C, F, k), kwargs, seed, specs=specs))
        out.append(
            Example(
                "2x5x4x2 after a batch of m=3",
                (2, 5, 4, 2),
                (2, 3, 3),
                {"padding": 1},
                after_other_batch=True,
                specs=DIRECT_IDS,
            )
        )
        out.append(
            Example(
                "2->3 5x5 k=3x3 s=2,1 p=1,0 m=2",
                (2, 5, 5, 2),
                (2, 3, 3),
                {"stride": (2, 1), "padding": (1, 0)},
                float32=True,
                specs=DIRECT_IDS,
            )
        )
        for C, F, H, W, k, s, p, d, g, m, seed in VARIANT_CONFIGS:
            label = (
                f"{C}->{F} {H}x{W} k={k[0]}x{k[1]} s={s[0]},{s[1]} p={p[0]},{p[1]} "
                f"d={d[0]},{d[1]} groups={g} m={m}"
            )
            kwargs = {"stride": s, "padding": p, "dilation": d, "groups": g}
            specs = (*DIRECT_IDS, *(("CONV-DILATION",) if d != (1, 1) else ()))
            specs = (*specs, *(("CONV-GROUPS",) if g > 1 else ()))
            out.append(Example(label, (C, H, W, m), (C, F, k), kwargs, seed, specs=specs))
        return tuple(out)

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, ConvCache | WinogradCache]:
        W, b = self.params["W"], self.params["b"]
        geo = ConvGeometry.of(X.shape, self.kernel_size, self.stride, self.padding, self.dilation)
        Z_shape = (self.out_channels, geo.H_out, geo.W_out, X.shape[3])
        check_allocatable(
            Z_shape, self.dtype, f"Z (out_channels, H_out, W_out, m) for padding {self.padding}"
        )
        old = self._reclaim()  # its arrays may be rewritten: dropped first
        V = old.V if isinstance(old, WinogradCache) else None
        col = old.col if isinstance(old, ConvCache) else None
        del old  # what is not reused is freed before the new cache is made (peak memory)
        if self.algorithm == "winograd":
            return winograd_forward(X, W, b, padding=self.padding, V=V)
        return conv_forward(
            X,
            W,
            b,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            col=col,
        )

    def _backward(
        self, dY: FloatArray, cache: ConvCache | WinogradCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        W = self.params["W"]
        if isinstance(cache, WinogradCache):
            dX, dW, db = winograd_backward(dY, W, cache)
        else:
            dX, dW, db = conv_backward(dY, W, cache)
        return dX, {"W": dW, "b": db}, {}

    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "algorithm": self.algorithm,
            **super().config(),
        }


def conv_arguments(
    in_channels: object,
    out_channels: object,
    kernel_size: object,
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
) -> tuple[int, int, IntPair, IntPair, IntPair, IntPair, int]:
    """A convolution's (or a transposed convolution's) arguments, validated by name: channel
    counts >= 1, kernel, stride and dilation pairs >= 1, padding >= 0, groups dividing both."""
    C, F = positive_int(in_channels, "in_channels"), positive_int(out_channels, "out_channels")
    return (
        C,
        F,
        as_pair(kernel_size, "kernel_size", minimum=1),
        as_pair(stride, "stride", minimum=1),
        as_pair(padding, "padding", minimum=0),
        as_pair(dilation, "dilation", minimum=1),
        check_groups(groups, C, F),
    )


def _algorithm(
    algorithm: object, kernel: IntPair, stride: IntPair, dilation: IntPair, groups: int
) -> str:
    """The algorithm a Conv2D uses: "direct" or "winograd" (ValueError if it cannot apply)."""
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    applies = kernel == (3, 3) and stride == (1, 1) and dilation == (1, 1) and groups == 1
    if algorithm == "winograd" and not applies:
        raise ValueError(
            "algorithm 'winograd' needs kernel_size 3, stride 1, dilation 1 and groups 1, got "
            f"kernel_size {kernel}, stride {stride}, dilation {dilation} and groups {groups} "
            "(use 'direct' or 'auto')"
        )
    if algorithm == "auto":
        return "winograd" if applies else "direct"
    return algorithm
