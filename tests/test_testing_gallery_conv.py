"""The gallery for the transposed convolution: a loop implementation written from CONVT-FWD (as
a "stamp the kernel at every input pixel" loop, batch-first N x C x H x W, PyTorch's weight
layout) passes the kit; the usual mistake, a kernel flipped by hand as if the transposed
convolution were a "full convolution with the flipped kernel" of the *forward*, is rejected
with the quantity and its spec ID."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from refnn.testing import MismatchError, check_layer
from refnn.types import FloatArray

Grads = Mapping[str, FloatArray]


class LoopConvTranspose:
    """Y_p[n, c, s y + i, s x + j] += W[f, c, i, j] X[n, f, y, x], cropped by the padding."""

    flip = False

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.W, self.b = params["W"], params["b"]
        self.s, self.p = config["stride"], config["padding"]
        self.op = config["output_padding"]
        self.X: FloatArray = np.zeros((0, 0, 0, 0))

    def kernel(self) -> FloatArray:
        return self.W[:, :, ::-1, ::-1] if self.flip else self.W

    def _padded_shape(self, X: FloatArray) -> tuple[int, int, int, int]:
        _, C_out, kh, kw = self.W.shape
        H = (X.shape[2] - 1) * self.s[0] + kh + self.op[0]
        W = (X.shape[3] - 1) * self.s[1] + kw + self.op[1]
        return X.shape[0], C_out, H, W

    def forward(self, X: FloatArray) -> FloatArray:
        self.X = X
        K = self.kernel()
        _, _, kh, kw = K.shape
        Yp = np.zeros(self._padded_shape(X))
        for n, f, y, x in np.ndindex(X.shape):
            rows = slice(self.s[0] * y, self.s[0] * y + kh)
            cols = slice(self.s[1] * x, self.s[1] * x + kw)
            Yp[n, :, rows, cols] += K[f] * X[n, f, y, x]
        (ph, pw), H, W = self.p, Yp.shape[2], Yp.shape[3]
        return Yp[:, :, ph : H - ph, pw : W - pw] + self.b[:, 0][None, :, None, None]

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        K = self.kernel()
        _, _, kh, kw = K.shape
        (ph, pw) = self.p
        dYp = np.zeros(self._padded_shape(self.X))
        dYp[:, :, ph : ph + dY.shape[2], pw : pw + dY.shape[3]] = dY
        dX, dK = np.zeros_like(self.X), np.zeros_like(K)
        for n, f, y, x in np.ndindex(self.X.shape):
            rows = slice(self.s[0] * y, self.s[0] * y + kh)
            cols = slice(self.s[1] * x, self.s[1] * x + kw)
            dX[n, f, y, x] = np.sum(K[f] * dYp[n, :, rows, cols])
            dK[f] += self.X[n, f, y, x] * dYp[n, :, rows, cols]
        dW = dK[:, :, ::-1, ::-1] if self.flip else dK
        return dX, {"W": dW, "b": dY.sum(axis=(0, 2, 3))[:, None]}


class FlippedConvTranspose(LoopConvTranspose):
    """Wrong: the kernel flipped by hand (the flip is what the adjoint already does)."""

    flip = True


@pytest.mark.spec("TEST-LAYER", "CONVT-FWD", "CONVT-DX", "CONVT-DW", "CONVT-DB")
def test_a_loop_transposed_convolution_passes_and_a_flipped_kernel_is_rejected() -> None:
    check_layer("ConvTranspose2D", LoopConvTranspose, layout="batch_first", max_examples=40)
    with pytest.raises(MismatchError) as info:
        check_layer("ConvTranspose2D", FlippedConvTranspose, layout="batch_first", max_examples=40)
    message = str(info.value)
    assert re.search(r"(Y|dX|dW) disagrees with refnn \(spec CONVT-(FWD|DX|DW)\)", message), message
    assert "kernel_size=[1, 2]" in message or "kernel_size=[2, 1]" in message, message


class GroupedLoopConv:
    """A batch-first grouped, dilated convolution from CONV-GROUPS: filter f of block
    q = f // (F / g) reads the channels of block q, taps d apart."""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.W, self.b = params["W"], params["b"]
        self.s, self.p = config["stride"], config["padding"]
        self.d, self.g = config["dilation"], config["groups"]
        self.Xp: FloatArray = np.zeros((0, 0, 0, 0))

    def block(self, f: int) -> int:
        return f // (self.W.shape[0] // self.g)

    def taps(self, y: int, x: int) -> tuple[slice, slice]:
        _, _, kh, kw = self.W.shape
        (sh, sw), (dh, dw) = self.s, self.d
        return (
            slice(sh * y, sh * y + dh * (kh - 1) + 1, dh),
            slice(sw * x, sw * x + dw * (kw - 1) + 1, dw),
        )

    def forward(self, X: FloatArray) -> FloatArray:
        (ph, pw), (sh, sw), (dh, dw) = self.p, self.s, self.d
        self.Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        F, Cg, kh, kw = self.W.shape
        Ho = (self.Xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
        Wo = (self.Xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
        Y = np.zeros((X.shape[0], F, Ho, Wo))
        for n, f, y, x in np.ndindex(Y.shape):
            q = self.block(f)
            rows, cols = self.taps(y, x)
            Y[n, f, y, x] = np.sum(self.Xp[n, q * Cg : (q + 1) * Cg, rows, cols] * self.W[f])
        return Y + self.b[:, 0][None, :, None, None]

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        Cg = self.W.shape[1]
        dXp, dW = np.zeros_like(self.Xp), np.zeros_like(self.W)
        for n, f, y, x in np.ndindex(dY.shape):
            q = self.block(f)
            rows, cols = self.taps(y, x)
            dXp[n, q * Cg : (q + 1) * Cg, rows, cols] += dY[n, f, y, x] * self.W[f]
            dW[f] += dY[n, f, y, x] * self.Xp[n, q * Cg : (q + 1) * Cg, rows, cols]
        (ph, pw), H, W = self.p, dXp.shape[2], dXp.shape[3]
        dX = dXp[:, :, ph : H - ph, pw : W - pw]
        return dX, {"W": dW, "b": dY.sum(axis=(0, 2, 3))[:, None]}


class MixedGroupsConv(GroupedLoopConv):
    """Wrong: filters assigned to channel blocks round-robin (f % g), mixing the groups."""

    def block(self, f: int) -> int:
        return f % self.g


@pytest.mark.spec("TEST-LAYER", "CONV-GROUPS", "CONV-DILATION")
def test_a_grouped_loop_conv_passes_and_one_mixing_the_groups_is_rejected() -> None:
    check_layer("Conv2D", GroupedLoopConv, layout="batch_first", max_examples=40)
    with pytest.raises(MismatchError) as info:
        check_layer("Conv2D", MixedGroupsConv, layout="batch_first", max_examples=40)
    message = str(info.value)
    assert re.search(r"(Y|dX|dW) disagrees with refnn \(spec CONV-", message), message
    assert "groups=2" in message and "out_channels=4" in message, message
