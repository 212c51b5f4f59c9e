"""numpy code following PyTorch's conventions: batch-first Linear (weight out x in, flat bias),
NCHW Conv2d with tuple stride and padding, and a time-major LSTM (T x m x n) with
weight_ih, weight_hh, b_ih, b_hh, gates i, f, g, o, and initial state (h0, c0) of m x h.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def sigmoid(x: Array) -> Array:
    return 1 / (1 + np.exp(-x))


class Linear:
    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        self.weight, self.bias = params["W"], params["b"]

    def forward(self, x: Array) -> Array:
        self.x = x
        return x @ self.weight.T + self.bias

    def backward(self, g: Array) -> tuple[Array, dict[str, Array]]:
        return g @ self.weight, {"W": g.T @ self.x, "b": g.sum(axis=0)}


class LinearExtraKey(Linear):
    """Breach: returns the input's gradient among the parameter gradients too."""

    def backward(self, g: Array) -> tuple[Array, dict[str, Array]]:
        dx, grads = super().backward(g)
        return dx, {**grads, "x": dx}


class LinearComplex(Linear):
    """Breach: a complex Y (an FFT-based product left complex)."""

    def forward(self, x: Array) -> Array:
        return super().forward(x).astype(np.complex128)


class LinearHangs(Linear):
    """Breach: the backward waits forever (a lock never released)."""

    def backward(self, g: Array) -> tuple[Array, dict[str, Array]]:
        threading.Event().wait()
        raise AssertionError("unreachable")


class Conv2d:
    """NCHW, tuple stride and padding; windows gathered with stride tricks."""

    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        self.stride, self.padding = tuple(config["stride"]), tuple(config["padding"])
        self.weight, self.bias = params["W"], params["b"]

    def _windows(self, xp: Array, Ho: int, Wo: int) -> Array:
        _F, C, kh, kw = self.weight.shape
        (sh, sw) = self.stride
        s = xp.strides
        return np.lib.stride_tricks.as_strided(
            xp,
            (xp.shape[0], C, Ho, Wo, kh, kw),
            (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]),
            writeable=False,
        )

    def forward(self, x: Array) -> Array:
        ph, pw = self.padding
        _F, _C, kh, kw = self.weight.shape
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        Ho = (xp.shape[2] - kh) // self.stride[0] + 1
        Wo = (xp.shape[3] - kw) // self.stride[1] + 1
        self.x, self.xp, self.cols = x, xp, self._windows(xp, Ho, Wo)
        out = np.einsum("ncyxij,fcij->nfyx", self.cols, self.weight)
        return out + self.bias[None, :, None, None]

    def backward(self, g: Array) -> tuple[Array, dict[str, Array]]:
        dW = np.einsum("ncyxij,nfyx->fcij", self.cols, g)
        db = g.sum(axis=(0, 2, 3))
        dxp = np.zeros_like(self.xp)
        _F, _C, kh, kw = self.weight.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        contrib = np.einsum("nfyx,fcij->ncyxij", g, self.weight)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i, i + sh * g.shape[2], sh)
                cols = slice(j, j + sw * g.shape[3], sw)
                dxp[:, :, rows, cols] += contrib[:, :, :, :, i, j]
        H, W = self.x.shape[2], self.x.shape[3]
        return dxp[:, :, ph : ph + H, pw : pw + W], {"W": dW, "b": db}


class LSTM:
    """Time-major (T x m x n), h0 and c0 (m x h) given, weight_ih | weight_hh, two biases."""

    output_bug = False

    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        n = config["n_in"]
        self.w_ih, self.w_hh = params["W"][:, :n], params["W"][:, n:]
        self.b_ih, self.b_hh = params["b"][:, 0], np.zeros_like(params["b"][:, 0])

    def forward(self, x: Array, h0: Array | None = None, c0: Array | None = None) -> Array:
        T, m, _ = x.shape
        H = self.w_hh.shape[1]
        h = np.zeros((m, H), dtype=x.dtype) if h0 is None else h0
        c = np.zeros((m, H), dtype=x.dtype) if c0 is None else c0
        self.steps, out = [], np.zeros((T, m, H), dtype=x.dtype)
        for t in range(T):
            gates = x[t] @ self.w_ih.T + self.b_ih + h @ self.w_hh.T + self.b_hh
            i, f = sigmoid(gates[:, :H]), sigmoid(gates[:, H : 2 * H])
            g, o = np.tanh(gates[:, 2 * H : 3 * H]), sigmoid(gates[:, 3 * H :])
            if self.output_bug:
                o = np.tanh(gates[:, 3 * H :])
            c_new = f * c + i * g
            self.steps.append((x[t], h, c, i, f, g, o, c_new))
            h, c = o * np.tanh(c_new), c_new
            out[t] = h
        return out

    def backward(self, dy: Array) -> tuple[Array, dict[str, Array]]:
        T, m, H = dy.shape
        dx = np.zeros((T, m, self.w_ih.shape[1]), dtype=dy.dtype)
        dw_ih, dw_hh = np.zeros_like(self.w_ih), np.zeros_like(self.w_hh)
        db = np.zeros(4 * H, dtype=dy.dtype)
        dh, dc = np.zeros((m, H), dtype=dy.dtype), np.zeros((m, H), dtype=dy.dtype)
        for t in reversed(range(T)):
            xt, h_prev, c_prev, i, f, g, o, c = self.steps[t]
            dh = dh + dy[t]
            tc = np.tanh(c)
            dc = dc + dh * o * (1 - tc**2)
            do = dh * tc * (o * (1 - o))
            dgates = np.hstack(
                [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g**2), do]
            )
            dx[t] = dgates @ self.w_ih
            dw_ih += dgates.T @ xt
            dw_hh += dgates.T @ h_prev
            db += dgates.sum(axis=0)
            dh, dc = dgates @ self.w_hh, dc * f
        grads = {"W": np.hstack([dw_ih, dw_hh]), "b": db[:, None], "h0": dh, "c0": dc}
        return dx, grads


class LSTMTanhOutput(LSTM):
    """Bug: the output gate through tanh instead of the sigmoid (in forward; backward keeps
    the sigmoid's derivative)."""

    output_bug = True


class LSTMZeroState(LSTM):
    """Correct from the zero state only: forward(x) takes no h0, c0; no dh0, dc0."""

    def forward(self, x: Array) -> Array:  # type: ignore[override]
        return super().forward(x)

    def backward(self, dy: Array) -> tuple[Array, dict[str, Array]]:
        dx, grads = super().backward(dy)
        return dx, {"W": grads["W"], "b": grads["b"]}
