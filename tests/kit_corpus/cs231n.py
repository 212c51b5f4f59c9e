"""CS231n-style layers: functions ``layer_forward(x, ...) -> (out, cache)`` and
``layer_backward(dout, cache) -> (dx, dw, db)``, batch-first (x is N x D, N x C x H x W,
N x T x D), weights as x @ w (D x M), flat biases, one integer stride and pad, an LSTM from
h0 with c0 = 0 and gates stacked i, f, o, g.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import assume

Array = np.ndarray[Any, Any]


def affine_forward(x: Array, w: Array, b: Array) -> tuple[Array, Any]:
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def affine_backward_db_wrong_axis(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """Bug: db sums over the features and is then broadcast (a mean over the wrong axis)."""
    dx, dw, _ = affine_backward(dout, cache)
    return dx, dw, np.full(dout.shape[1], dout.sum(axis=1).mean())


def relu_forward(x: Array) -> tuple[Array, Any]:
    return np.maximum(0, x), x


def relu_backward(dout: Array, cache: Any) -> Array:
    return dout * (cache > 0)


def relu_forward_inplace(x: Array) -> tuple[Array, Any]:
    """Bug: clamps the caller's array in place (and returns it)."""
    cache = x.copy()
    x[x < 0] = 0
    return x, cache


def conv_forward_naive(
    x: Array, w: Array, b: Array, conv_param: dict[str, int]
) -> tuple[Array, Any]:
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, _, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    x, w, _, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    N, F, Ho, Wo = dout.shape
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows = slice(i * stride, i * stride + HH)
                    cols = slice(j * stride, j * stride + WW)
                    dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
                    dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
    dx = dxp[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def conv_backward_stride_one(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """Bug: the backward ignores the stride (windows taken at every position i, j)."""
    x, w, b, conv_param = cache
    return conv_backward_naive(dout, (x, w, b, {**conv_param, "stride": 1}))


def max_pool_forward_naive(x: Array, pool_param: dict[str, int]) -> tuple[Array, Any]:
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // s, 1 + (W - pw) // s
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * s : i * s + ph, j * s : j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout: Array, cache: Any) -> Array:
    """The gradient goes to the first maximum of each window (np.argmax, row-major)."""
    x, p = cache
    ph, pw, s = p["pool_height"], p["pool_width"], p["stride"]
    dx = np.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * s : i * s + ph, j * s : j * s + pw]
                    r, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * s + r, j * s + q] += dout[n, c, i, j]
    return dx


def max_pool_backward_mask(dout: Array, cache: Any) -> Array:
    """Bug (as in public code): every element equal to the window's maximum gets the gradient."""
    x, p = cache
    ph, pw, s = p["pool_height"], p["pool_width"], p["stride"]
    dx = np.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * s : i * s + ph, j * s : j * s + pw]
                    mask = window == window.max()
                    dx[n, c, i * s : i * s + ph, j * s : j * s + pw] += mask * dout[n, c, i, j]
    return dx


def sigmoid(x: Array) -> Array:
    return 1 / (1 + np.exp(-x))


def lstm_forward(x: Array, h0: Array, Wx: Array, Wh: Array, b: Array) -> tuple[Array, Any]:
    """x N x T x D, h0 N x H, gates i, f, o, g; c0 = 0."""
    N, T, _ = x.shape
    H = h0.shape[1]
    h, c = h0, np.zeros_like(h0)
    hs, caches = np.zeros((N, T, H), dtype=x.dtype), []
    for t in range(T):
        a = x[:, t] @ Wx + h @ Wh + b
        i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), sigmoid(a[:, 2 * H : 3 * H])
        g = np.tanh(a[:, 3 * H :])
        c_next = f * c + i * g
        h_next = o * np.tanh(c_next)
        caches.append((x[:, t], h, c, i, f, o, g, c_next))
        h, c = h_next, c_next
        hs[:, t] = h
    return hs, (caches, Wx, Wh)


def lstm_backward(dh: Array, cache: Any, forget_bug: bool = False) -> tuple[Array, ...]:
    caches, Wx, Wh = cache
    N, T, H = dh.shape
    dx = np.zeros((N, T, Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H, dtype=dh.dtype)
    dh_next, dc_next = np.zeros((N, H), dtype=dh.dtype), np.zeros((N, H), dtype=dh.dtype)
    for t in reversed(range(T)):
        xt, h_prev, c_prev, i, f, o, g, c = caches[t]
        dh_t = dh[:, t] + dh_next
        tc = np.tanh(c)
        dc = dc_next + dh_t * o * (1 - tc**2)
        di, df = dc * g, dc * (i if forget_bug else c_prev)
        do, dg = dh_t * tc, dc * i
        da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)])
        dx[:, t] = da @ Wx.T
        dWx += xt.T @ da
        dWh += h_prev.T @ da
        db += da.sum(axis=0)
        dh_next, dc_next = da @ Wh.T, dc * f
    return dx, dh_next, dWx, dWh, db


def softmax_loss(x: Array, y: Array) -> tuple[float, Array]:
    """x N x C scores, y N integer labels: the mean cross-entropy of softmax and dx."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    N = x.shape[0]
    loss = -log_probs[np.arange(N), y].sum() / N
    dx = np.exp(log_probs)
    dx[np.arange(N), y] -= 1
    return float(loss), dx / N


# -- adapters to the kit's protocol, as a CS231n student would write them ----------------------


class Affine:
    def __init__(self, config: dict[str, Any], params: dict[str, Array], bug: bool = False):
        self.w, self.b, self.bug = params["W"], params["b"], bug

    def forward(self, x: Array) -> Array:
        out, self.cache = affine_forward(x, self.w, self.b)
        return out

    def backward(self, dout: Array) -> tuple[Array, dict[str, Array]]:
        back = affine_backward_db_wrong_axis if self.bug else affine_backward
        dx, dw, db = back(dout, self.cache)
        return dx, {"W": dw, "b": db}


class Relu:
    inplace = False

    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        pass

    def forward(self, x: Array) -> Array:
        out, self.cache = (relu_forward_inplace if self.inplace else relu_forward)(x)
        return out

    def backward(self, dout: Array) -> tuple[Array, dict[str, Array]]:
        return relu_backward(dout, self.cache), {}


class ReluInPlace(Relu):
    inplace = True


class Conv:
    """One integer stride and pad: other configurations are skipped with assume()."""

    bug = False

    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        (sh, sw), (ph, pw) = config["stride"], config["padding"]
        assume(sh == sw and ph == pw)
        self.param = {"stride": sh, "pad": ph}
        self.w, self.b = params["W"], params["b"]

    def forward(self, x: Array) -> Array:
        out, self.cache = conv_forward_naive(x, self.w, self.b, self.param)
        return out

    def backward(self, dout: Array) -> tuple[Array, dict[str, Array]]:
        back = conv_backward_stride_one if self.bug else conv_backward_naive
        dx, dw, db = back(dout, self.cache)
        return dx, {"W": dw, "b": db}


class ConvStrideBug(Conv):
    bug = True


class MaxPool:
    bug = False

    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        (kh, kw), (sh, sw) = config["kernel_size"], config["stride"]
        assume(sh == sw)
        self.param = {"pool_height": kh, "pool_width": kw, "stride": sh}

    def forward(self, x: Array) -> Array:
        out, self.cache = max_pool_forward_naive(x, self.param)
        return out

    def backward(self, dout: Array) -> tuple[Array, dict[str, Array]]:
        back = max_pool_backward_mask if self.bug else max_pool_backward_naive
        return back(dout, self.cache), {}


class MaxPoolMask(MaxPool):
    bug = True


class Lstm:
    """Declared: layout batch_first, state h0, gates ifog, weights in_out, bias flat."""

    bug = False

    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        n = config["n_in"]
        self.Wx, self.Wh, self.b = params["W"][:n], params["W"][n:], params["b"]

    def forward(self, x: Array, h0: Array) -> Array:
        hs, self.cache = lstm_forward(x, h0, self.Wx, self.Wh, self.b)
        return hs

    def backward(self, dh: Array) -> tuple[Array, dict[str, Array]]:
        dx, dh0, dWx, dWh, db = lstm_backward(dh, self.cache, forget_bug=self.bug)
        return dx, {"W": np.vstack([dWx, dWh]), "b": db, "h0": dh0}


class LstmForgetBug(Lstm):
    """Bug: the forget gate's gradient uses the input gate i instead of c_{t-1}."""

    bug = True


class SoftmaxLoss:
    """Integer labels only: soft labels are skipped with assume()."""

    def __init__(self, config: dict[str, Any]):
        assume(not config["soft_labels"])

    def forward(self, scores: Array, Y: Array) -> float:
        loss, self.dx = softmax_loss(scores, Y.argmax(axis=1))
        return loss

    def backward(self) -> Array:
        return self.dx
