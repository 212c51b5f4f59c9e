"""Deep-learning-course-style code: channels-last images A_prev (m, n_H, n_W, n_C), conv
weights W (f, f, n_C_prev, n_C) and b (1, 1, 1, n_C), hparameters {"stride", "pad"} (one
integer each), square pooling windows {"f", "stride"}, and a cost with 1e-7 inside the log.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import assume

Array = np.ndarray[Any, Any]


def zero_pad(X: Array, pad: int) -> Array:
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def conv_forward(
    A_prev: Array, W: Array, b: Array, hparameters: dict[str, int]
) -> tuple[Array, Any]:
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f_h, f_w, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = (n_H_prev - f_h + 2 * pad) // stride + 1
    n_W = (n_W_prev - f_w + 2 * pad) // stride + 1
    Z = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vs, hs = h * stride, w * stride
                a_slice = A_prev_pad[i, vs : vs + f_h, hs : hs + f_w, :]
                for c in range(n_C):
                    Z[i, h, w, c] = np.sum(a_slice * W[:, :, :, c]) + b[0, 0, 0, c]
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ: Array, cache: Any) -> tuple[Array, Array, Array]:
    A_prev, W, _, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    f_h, f_w, _, n_C = W.shape
    m, n_H, n_W, _ = dZ.shape
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = np.zeros_like(A_prev_pad)
    dW, db = np.zeros_like(W), np.zeros((1, 1, 1, n_C), dtype=dZ.dtype)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vs, hs = h * stride, w * stride
                a_slice = A_prev_pad[i, vs : vs + f_h, hs : hs + f_w, :]
                for c in range(n_C):
                    dA_prev_pad[i, vs : vs + f_h, hs : hs + f_w, :] += (
                        W[:, :, :, c] * dZ[i, h, w, c]
                    )
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
    H, Wd = A_prev.shape[1], A_prev.shape[2]
    return dA_prev_pad[:, pad : pad + H, pad : pad + Wd, :], dW, db


def create_mask_from_window(x: Array) -> Array:
    """As the course writes it: True wherever x equals its maximum (every tied maximum)."""
    return x == np.max(x)


def pool_forward(A_prev: Array, hparameters: dict[str, int]) -> tuple[Array, Any]:
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H, n_W = 1 + (n_H_prev - f) // stride, 1 + (n_W_prev - f) // stride
    A = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    for h in range(n_H):
        for w in range(n_W):
            vs, hs = h * stride, w * stride
            A[:, h, w, :] = A_prev[:, vs : vs + f, hs : hs + f, :].max(axis=(1, 2))
    return A, (A_prev, hparameters)


def pool_backward(dA: Array, cache: Any, first_only: bool = False) -> Array:
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    dA_prev = np.zeros_like(A_prev)
    m, n_H, n_W, n_C = dA.shape
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    vs, hs = h * stride, w * stride
                    window = A_prev[i, vs : vs + f, hs : hs + f, c]
                    if first_only:  # the fix: one maximum, the first in row-major order
                        mask = np.zeros(window.shape, dtype=bool)
                        mask[np.unravel_index(np.argmax(window), window.shape)] = True
                    else:
                        mask = create_mask_from_window(window)
                    dA_prev[i, vs : vs + f, hs : hs + f, c] += mask * dA[i, h, w, c]
    return dA_prev


def compute_cost(AL: Array, Y: Array) -> float:
    """Binary cross-entropy (1, m) with 1e-7 inside the logs, as notebooks add it."""
    m = Y.shape[1]
    eps = 1e-7
    return float(-np.sum(Y * np.log(AL + eps) + (1 - Y) * np.log(1 - AL + eps)) / m)


# -- adapters ---------------------------------------------------------------------------------


class Conv:
    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        (sh, sw), (ph, pw) = config["stride"], config["padding"]
        assume(sh == sw and ph == pw)
        self.hp = {"stride": sh, "pad": ph}
        self.W, self.b = params["W"], params["b"].reshape(1, 1, 1, -1)

    def forward(self, A_prev: Array) -> Array:
        Z, self.cache = conv_forward(A_prev, self.W, self.b, self.hp)
        return Z

    def backward(self, dZ: Array) -> tuple[Array, dict[str, Array]]:
        dA, dW, db = conv_backward(dZ, self.cache)
        return dA, {"W": dW, "b": db.reshape(-1)}


class MaxPool:
    first_only = False

    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        (kh, kw), (sh, sw) = config["kernel_size"], config["stride"]
        assume(kh == kw and sh == sw)
        self.hp = {"f": kh, "stride": sh}

    def forward(self, A_prev: Array) -> Array:
        A, self.cache = pool_forward(A_prev, self.hp)
        return A

    def backward(self, dA: Array) -> tuple[Array, dict[str, Array]]:
        return pool_backward(dA, self.cache, self.first_only), {}


class MaxPoolFixed(MaxPool):
    first_only = True


class Cost:
    """The course's cost, batch-last (1, m); dAL with the 1/m as refnn's loss has it."""

    def __init__(self, config: dict[str, Any]):
        pass

    def forward(self, AL: Array, Y: Array) -> float:
        self.AL, self.Y = AL, Y
        return compute_cost(AL, Y)

    def backward(self) -> Array:
        AL, Y, m = self.AL, self.Y, self.Y.shape[1]
        return -(Y / AL - (1 - Y) / (1 - AL)) / m
