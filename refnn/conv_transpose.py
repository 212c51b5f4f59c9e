"""Transposed 2-D convolution (CONVT-*): the adjoint of a convolution's input gradient.

A convolution of C_out channels into C_in filters maps an image Y (C_out x H_y x W_y x m) to
X (C_in x H x W x m); its input gradient (CONV-DX) maps X back to Y's shape. ConvTranspose2D's
forward is exactly that map (plus a bias), with the same weight W (C_in, C_out / groups, kh,
kw) laid out as PyTorch's ``nn.ConvTranspose2d``: dcol = W_mat^T X_mat, then col2im. Its
backward is the convolution's forward and weight gradient on the upstream gradient. So
<conv(y), x> = <y, conv_transpose(x)> for every x, y (CONVT-ADJOINT): the kernel is "flipped"
by construction, never by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from refnn._validate import (
    IntPair,
    as_pair,
    check_allocatable,
    check_rng,
)
from refnn._windows import ConvGeometry
from refnn.conv import col2im, conv_arguments, im2col
from refnn.init import init_weights
from refnn.kitspace import Ints, LayerSpace, PairOf
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.types import DTypeLike, FloatArray


def transposed_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """Output length of a transposed convolution along one axis.

    Notes
    -----
    Spec: CONVT-SIZE

    n_y = (n - 1) s - 2 p + d (k - 1) + output_padding + 1: the input size of the convolution
    whose output size (CONV-SIZE) is n; output_padding < max(s, d) picks among the sizes that
    share that n.
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True)
class ConvTransposeCache:
    """The input X (by reference, watched) and the geometry of the adjoint convolution."""

    X: FloatArray
    geo: ConvGeometry
    groups: int


def conv_transpose_forward(
    X: FloatArray, W: FloatArray, b: FloatArray, geo: ConvGeometry, groups: int
) -> FloatArray:
    """Y = conv's input gradient applied to X, plus b.

    Parameters
    ----------
    X : ndarray, shape (C_in, H, W, m)
    W : ndarray, shape (C_in, C_out / groups, kh, kw)
    b : ndarray, shape (C_out, 1)
    geo : ConvGeometry
        Of the adjoint convolution: its input C_out x H_y x W_y, its output H x W.
    groups : int

    Returns
    -------
    Y : ndarray, shape (C_out, H_y, W_y, m)

    Notes
    -----
    Spec: CONVT-FWD, CONVT-ADJOINT

    dcol_g = W_g,mat^T X_g,mat for each group g (W_g,mat: (C_in / g) x (C_out / g kh kw)), then
    Y_p[c, s_h y + d_h i, s_w x + d_w j, n] += dcol[(c, i, j), (y, x, n)] (col2im, CONV-DX),
    Y = Y_p without its padding, plus b_c.
    """
    C_in, m = X.shape[0], X.shape[3]
    N = X.shape[1] * X.shape[2] * m
    W_g = W.reshape(groups, C_in // groups, -1)
    dcol = np.matmul(W_g.transpose(0, 2, 1), X.reshape(groups, C_in // groups, N))
    Y = col2im(dcol.reshape(-1, N), geo, m)
    Y += b.reshape(-1, 1, 1, 1)
    return Y


def conv_transpose_backward(
    dY: FloatArray, W: FloatArray, cache: ConvTransposeCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(dX, dW, db) through Y = col2im(W_mat^T X_mat) + b.

    Notes
    -----
    Spec: CONVT-DX, CONVT-DW, CONVT-DB

    With col(dY) the patch matrix of dY in the adjoint convolution's geometry (CONV-COL):
    dX_g,mat = W_g,mat col_g(dY) (the convolution's forward, CONV-FWD, without bias),
    dW_g,mat = X_g,mat col_g(dY)^T, db_c = Σ_{y, x, n} dY[c, y, x, n].
    """
    X, geo, g = cache.X, cache.geo, cache.groups
    C_in = X.shape[0]
    col = im2col(dY, geo)
    N = col.shape[1]
    col_g = col.reshape(g, -1, N)
    W_g = W.reshape(g, C_in // g, -1)
    dX = np.matmul(W_g, col_g).reshape(X.shape)
    X_g = X.reshape(g, C_in // g, N)
    dW = np.matmul(X_g, col_g.transpose(0, 2, 1)).reshape(W.shape)
    db = dY.reshape(dY.shape[0], -1).sum(axis=1, keepdims=True)
    return dX, dW, db


def _transpose_sums(s: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """TEST-TOL's K of each quantity: the length of the sum behind one element."""
    C_in, C_out_g, kh, kw = s["W"]
    return {
        "Y": C_in * kh * kw + 1,
        "dX": C_out_g * kh * kw,
        "dW": s["X"][1] * s["X"][2] * s["X"][3],
        "db": s["Y"][1] * s["Y"][2] * s["Y"][3],
    }


#: (C_in, C_out, H, W, kernel, stride, padding, output_padding, dilation, groups, m, seed) of
#: make check's cases: stride 1 and 2 with output padding, non-square everything, dilation,
#: groups, a 1 x 1 input.
CONVT_CONFIGS: tuple[
    tuple[int, int, int, int, IntPair, IntPair, IntPair, IntPair, IntPair, int, int, int], ...
] = (
    (2, 3, 3, 3, (3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1, 2, 0),
    (3, 2, 3, 4, (3, 2), (2, 1), (1, 0), (1, 0), (1, 1), 1, 2, 1),
    (2, 2, 2, 3, (2, 3), (2, 3), (0, 1), (1, 2), (1, 1), 1, 2, 2),
    (2, 3, 3, 3, (3, 3), (1, 2), (1, 1), (0, 1), (2, 2), 1, 2, 0),
    (4, 2, 3, 3, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 2, 2, 1),
    (1, 2, 1, 1, (3, 2), (1, 1), (0, 0), (0, 0), (1, 1), 1, 3, 2),
)
CONVT_IDS = ("CONVT-SIZE", "CONVT-FWD", "CONVT-DX", "CONVT-DW", "CONVT-DB")


@register
class ConvTranspose2D(Layer[ConvTransposeCache]):
    """Transposed 2-D convolution layer, params "W" (C_in, C_out / groups, kh, kw) and "b"
    (C_out, 1), the layout of PyTorch's ``nn.ConvTranspose2d`` (its ``weight`` maps onto W
    unchanged, its ``bias`` onto b[:, 0]).

    Parameters
    ----------
    in_channels, out_channels : int
        C_in and C_out.
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
        The padding of the adjoint convolution: it crops the output.
    output_padding : int or (int, int), default 0
        Added to one side of the output (CONVT-SIZE); each below max(stride, dilation).
    dilation : int or (int, int), default 1
    groups : int, default 1
        Dividing both channel counts (CONV-GROUPS).
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG); He initialisation with fan_in =
        C_out kh kw / groups (the fan-in of the adjoint convolution's units: PyTorch's).
    dtype : float64 or float32

    Notes
    -----
    Spec: CONVT-INIT

    X is (C_in, H, W, m); Y is (C_out, H_y, W_y, m) with CONVT-SIZE. The cache is X itself,
    by reference (watched, NOTE-STALE).
    """

    takes = Input(ndim=4, leading=("in_channels",), layout="C x H x W x m")
    specs = {
        "Y": ("CONVT-SIZE", "CONVT-FWD"),
        "dX": ("CONVT-DX",),
        "dW": ("CONVT-DW",),
        "db": ("CONVT-DB",),
    }
    keeps = ("X",)
    grads_reveal_nonfinite_upstream = True  # db sums every element of dY (CONVT-DB)
    # non-square kernels and strides, output padding below the stride, paddings that crop
    kit = LayerSpace(
        draws={
            "in_channels": Ints(1, 3),
            "out_channels": Ints(1, 3),
            "m": Ints(1, 3),
            "H": Ints(1, 4),
            "W": Ints(1, 4),
            "kernel_size": PairOf(Ints(1, 3), Ints(1, 3)),
            "stride": PairOf(Ints(1, 3), Ints(1, 3)),
            "padding": PairOf(Ints(0, 1), Ints(0, 1)),
            "output_padding": PairOf(
                Ints(0, lambda v: v["stride"][0] - 1), Ints(0, lambda v: v["stride"][1] - 1)
            ),
        },
        input_shape=lambda v: (v["in_channels"], v["H"], v["W"], v["m"]),
        sums=lambda v, s: _transpose_sums(s),
        valid=lambda v: all(
            transposed_size(v[n], k, st, p, op, 1) >= 1
            for n, k, st, p, op in zip(
                ("H", "W"),
                v["kernel_size"],
                v["stride"],
                v["padding"],
                v["output_padding"],
                strict=True,
            )
        ),
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        Y = torch.nn.functional.conv_transpose2d(
            X.permute(3, 0, 1, 2),
            arrays["W"],
            arrays["b"][:, 0],
            stride=tuple(config["stride"]),
            padding=tuple(config["padding"]),
            output_padding=tuple(config["output_padding"]),
            groups=config.get("groups", 1),
            dilation=tuple(config.get("dilation", (1, 1))),
        )
        return Y.permute(1, 2, 3, 0)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | IntPair,
        *,
        stride: int | IntPair = 1,
        padding: int | IntPair = 0,
        output_padding: int | IntPair = 0,
        dilation: int | IntPair = 1,
        groups: int = 1,
        rng: np.random.Generator,
        dtype: DTypeLike = np.float64,
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
        self.output_padding = as_pair(output_padding, "output_padding", minimum=0)
        for axis, (op, s, d) in enumerate(
            zip(self.output_padding, self.stride, self.dilation, strict=True)
        ):
            if op >= max(s, d):
                raise ValueError(
                    f"output_padding must be below max(stride, dilation) on each axis, got "
                    f"output_padding {self.output_padding}, stride {self.stride} and dilation "
                    f"{self.dilation} (axis {axis})"
                )
        shape = self.param_shapes(self.config())["W"]
        check_allocatable(shape, self.dtype, "W (in_channels, out_channels / groups, kh, kw)")
        kh, kw = self.kernel_size
        fan_in, fan_out = shape[1] * kh * kw, shape[0] * kh * kw // self.groups
        W = init_weights(shape, fan_in, fan_out, rng=check_rng(rng), scheme="he", dtype=self.dtype)
        self.params = {"W": W, "b": np.zeros((self.out_channels, 1), dtype=self.dtype)}

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        C_in, C_out, (kh, kw) = config["in_channels"], config["out_channels"], config["kernel_size"]
        return {"W": (C_in, C_out // config.get("groups", 1), kh, kw), "b": (C_out, 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Every configuration of CONVT_CONFIGS, and one in float32."""
        out = []
        for C, F, H, W, k, s, p, op, d, g, m, seed in CONVT_CONFIGS:
            label = (
                f"{C}->{F} {H}x{W} k={k[0]}x{k[1]} s={s[0]},{s[1]} p={p[0]},{p[1]} "
                f"op={op[0]},{op[1]} d={d[0]},{d[1]} groups={g} m={m}"
            )
            kwargs = {
                "stride": s,
                "padding": p,
                "output_padding": op,
                "dilation": d,
                "groups": g,
            }
            out.append(Example(label, (C, H, W, m), (C, F, k), kwargs, seed))
        out.append(
            Example(
                "2->3 3x3 k=3x3 s=2,2 p=1,1 m=2",
                (2, 3, 3, 2),
                (2, 3, 3),
                {"stride": 2},
                1,
                float32=True,
            )
        )
        return tuple(out)

    def output_geometry(self, H: int, W: int) -> ConvGeometry:
        """The adjoint convolution's geometry for an H x W input (CONVT-SIZE)."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        (oh, ow), (dh, dw) = self.output_padding, self.dilation
        H_y = transposed_size(H, kh, sh, ph, oh, dh)
        W_y = transposed_size(W, kw, sw, pw, ow, dw)
        if H_y < 1 or W_y < 1:
            raise ValueError(
                f"X of H x W = {H} x {W} gives an empty output ({H_y} x {W_y}) for kernel "
                f"{self.kernel_size}, stride {self.stride}, padding {self.padding}, "
                f"output_padding {self.output_padding} and dilation {self.dilation}"
            )
        shape = (self.out_channels, H_y, W_y)
        geo = ConvGeometry.of(shape, self.kernel_size, self.stride, self.padding, self.dilation)
        # the output padding may add rows that no window of the adjoint convolution needs to
        # reach X's H x W (stride 1, dilation 2, say): its windows are X's positions, no more
        return replace(geo, H_out=H, W_out=W)

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, ConvTransposeCache]:
        geo = self.output_geometry(X.shape[1], X.shape[2])
        check_allocatable(
            (self.out_channels * geo.kh * geo.kw, X.shape[1] * X.shape[2] * X.shape[3]),
            self.dtype,
            "the patch matrix of the output",
        )
        Y = conv_transpose_forward(X, self.params["W"], self.params["b"], geo, self.groups)
        return Y, ConvTransposeCache(X, geo, self.groups)

    def _backward(
        self, dY: FloatArray, cache: ConvTransposeCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        dX, dW, db = conv_transpose_backward(dY, self.params["W"], cache)
        return dX, {"W": dW, "b": db}, {}

    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "output_padding": list(self.output_padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            **super().config(),
        }
