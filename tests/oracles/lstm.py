"""Naive LSTM oracle, one example and one time step at a time, straight from specs/lstm.md.

Independent of refnn: its own sigmoid (1 / (1 + e^{-a}), fine for the moderate inputs the tests
use), the stacked vector z_t = [x_t; h_{t-1}] multiplied by the whole W (never split into W_x and
W_h), and the backward obtained by pushing dz_t = W^T da_t back through the stack, down to
z_1 = [x_1; h_0], whose lower part is dh_0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from refnn.testing.strategies import arrays, sequence_shapes
from refnn.types import FloatArray

Grads = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]


def _sigmoid(a: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-a))


def _one_example(
    x: FloatArray, W: FloatArray, b: FloatArray, h0: FloatArray, c0: FloatArray, dH: FloatArray
) -> tuple[FloatArray, Grads]:
    """H (n_h, T) and (dx, dW, db, dh0, dc0) for one sequence x (n_in, T) from (h0, c0)."""
    n_in, T = x.shape
    n = W.shape[0] // 4
    h, c = h0, c0  # LSTM-STATE-INIT
    hs, cs, zs, gate_list = [], [], [], []
    for t in range(T):
        z = np.concatenate([x[:, t], h])  # [x_t; h_{t-1}]
        a = W @ z + b[:, 0]  # LSTM-GATES
        i, f = _sigmoid(a[:n]), _sigmoid(a[n : 2 * n])
        g, o = np.tanh(a[2 * n : 3 * n]), _sigmoid(a[3 * n :])
        c_prev = c
        c = f * c_prev + i * g  # LSTM-CELL
        h = o * np.tanh(c)  # LSTM-HIDDEN
        zs.append(z)
        gate_list.append((i, f, g, o, c_prev))
        cs.append(c)
        hs.append(h)
    dW = np.zeros_like(W)
    db = np.zeros(4 * n)
    dx = np.zeros((n_in, T))
    dh_from_next = np.zeros(n)  # W_h^T da_{t+1}, zero after the last step
    dc_next = np.zeros(n)
    f_next = np.zeros(n)
    for t in reversed(range(T)):
        i, f, g, o, c_prev = gate_list[t]
        dh = dH[:, t] + dh_from_next  # LSTM-BPTT-H
        dc = dh * o * (1 - np.tanh(cs[t]) ** 2) + dc_next * f_next  # LSTM-BPTT-C
        da = np.concatenate(  # LSTM-DGATES
            [
                dc * g * i * (1 - i),
                dc * c_prev * f * (1 - f),
                dc * i * (1 - g**2),
                dh * np.tanh(cs[t]) * o * (1 - o),
            ]
        )
        dW += np.outer(da, zs[t])  # LSTM-DW
        db += da  # LSTM-DB
        dz = W.T @ da
        dx[:, t] = dz[:n_in]  # LSTM-DX
        dh_from_next = dz[n_in:]
        dc_next, f_next = dc, f
    # after step 1: dh_0 is the h-part of dz_1 (LSTM-DH0), dc_0 = dc_1 f_1 (LSTM-DC0)
    return np.stack(hs, axis=1), (dx, dW, db[:, None], dh_from_next, dc_next * f_next)


def lstm_naive(p: LSTMPoint, *, zero_state: bool = False) -> tuple[FloatArray, Grads]:
    """H (n_h, T, m) and (dX, dW, db, dh0, dc0) at p for upstream p.dH, one example at a time.

    The state is (p.h0, p.c0), or zeros (n_h, m) if zero_state; dW and db are summed over the
    examples.
    """
    X, W, b, dH = p.X, p.W, p.b, p.dH
    n_in, T, m = X.shape
    n = W.shape[0] // 4
    h0 = np.zeros((n, m)) if zero_state else p.h0
    c0 = np.zeros((n, m)) if zero_state else p.c0
    H, dX = np.zeros((n, T, m)), np.zeros((n_in, T, m))
    dW, db = np.zeros_like(W, dtype=np.float64), np.zeros_like(b, dtype=np.float64)
    dh0, dc0 = np.zeros((n, m)), np.zeros((n, m))
    for k in range(m):
        H[:, :, k], (dX[:, :, k], dW_k, db_k, dh0[:, k], dc0[:, k]) = _one_example(
            X[:, :, k], W, b, h0[:, k], c0[:, k], dH[:, :, k]
        )
        dW += dW_k
        db += db_k
    return H, (dX, dW, db, dh0, dc0)


@dataclass(frozen=True)
class LSTMPoint:
    """A generic point for the LSTM's equations: inputs, parameters, state and an upstream dH."""

    X: FloatArray
    W: FloatArray
    b: FloatArray
    h0: FloatArray
    c0: FloatArray
    dH: FloatArray


@st.composite
def lstm_points(
    draw: st.DrawFn, *, max_size: int = 4, max_steps: int = 6, bound: float = 2.0
) -> LSTMPoint:
    """Shapes from ``sequence_shapes`` (shrinking to one unit, one step, one example), every
    array drawn element by element: X, h0, c0 and dH in [-bound, bound], W scaled by
    1/sqrt(n_in + n_h) so the gates are neither linear nor all saturated, b in [-1, 1]."""
    s = draw(sequence_shapes(max_size=max_size, max_steps=max_steps))
    n, fan_in = s.n_hidden, s.n_in + s.n_hidden
    W = draw(arrays((4 * n, fan_in), bound=2.0)) / np.sqrt(fan_in)
    return LSTMPoint(
        X=draw(arrays(s.input_shape, bound=bound)),
        W=W,
        b=draw(arrays((4 * n, 1), bound=1.0)),
        h0=draw(arrays((n, s.m), bound=1.0)),
        c0=draw(arrays((n, s.m), bound=bound)),
        dH=draw(arrays((n, s.T, s.m), bound=bound)),
    )
