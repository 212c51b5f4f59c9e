"""Naive LSTM oracle, one example and one time step at a time, straight from specs/lstm.md.

Independent of refnn: its own sigmoid (1 / (1 + e^{-a}), fine for the moderate inputs the tests
use), the stacked vector z_t = [x_t; h_{t-1}] multiplied by the whole W (never split into W_x and
W_h), and the backward obtained by pushing dz_t = W^T da_t back through the stack.
"""

from __future__ import annotations

import numpy as np

from refnn.types import FloatArray


def _sigmoid(a: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-a))
    return out


def _one_example(
    x: FloatArray, W: FloatArray, b: FloatArray, dH: FloatArray | None
) -> tuple[FloatArray, FloatArray | None, FloatArray | None, FloatArray | None]:
    """Forward (and backward if dH is given) for one sequence x of shape (n_in, T)."""
    n_in, T = x.shape
    n = W.shape[0] // 4
    h = np.zeros(n)
    c = np.zeros(n)
    hs, cs, zs, gate_list = [], [], [], []
    for t in range(T):
        z = np.concatenate([x[:, t], h])  # [x_t; h_{t-1}]
        a = W @ z + b[:, 0]  # LSTM-GATES
        i, f, g, o = (
            _sigmoid(a[:n]),
            _sigmoid(a[n : 2 * n]),
            np.tanh(a[2 * n : 3 * n]),
            _sigmoid(a[3 * n :]),
        )
        c_prev = c
        c = f * c_prev + i * g  # LSTM-CELL
        h = o * np.tanh(c)  # LSTM-HIDDEN
        zs.append(z)
        gate_list.append((i, f, g, o, c_prev))
        cs.append(c)
        hs.append(h)
    H = np.stack(hs, axis=1)
    if dH is None:
        return H, None, None, None
    dW = np.zeros_like(W)
    db = np.zeros(4 * n)
    dx = np.zeros((n_in, T))
    dh_from_next = np.zeros(n)  # W_h^T da_{t+1}, zero after the last step
    dc_next = np.zeros(n)
    f_next = np.zeros(n)
    for t in reversed(range(T)):
        i, f, g, o, c_prev = gate_list[t]
        c = cs[t]
        dh = dH[:, t] + dh_from_next  # LSTM-BPTT-H
        dc = dh * o * (1 - np.tanh(c) ** 2) + dc_next * f_next  # LSTM-BPTT-C
        da = np.concatenate(  # LSTM-DGATES
            [
                dc * g * i * (1 - i),
                dc * c_prev * f * (1 - f),
                dc * i * (1 - g**2),
                dh * np.tanh(c) * o * (1 - o),
            ]
        )
        dW += np.outer(da, zs[t])  # LSTM-DW
        db += da  # LSTM-DB
        dz = W.T @ da
        dx[:, t] = dz[:n_in]  # LSTM-DX
        dh_from_next = dz[n_in:]
        dc_next, f_next = dc, f
    return H, dx, dW, db[:, None]


def lstm_forward_naive(X: FloatArray, W: FloatArray, b: FloatArray) -> FloatArray:
    """H (n_h, T, m) computed one example at a time."""
    return np.stack([_one_example(X[:, :, k], W, b, None)[0] for k in range(X.shape[2])], axis=2)


def lstm_backward_naive(
    X: FloatArray, W: FloatArray, b: FloatArray, dH: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(dX, dW, db) for upstream dH (n_h, T, m), one example at a time; dW, db summed over them."""
    dX = np.zeros_like(X, dtype=np.float64)
    dW = np.zeros_like(W, dtype=np.float64)
    db = np.zeros_like(b, dtype=np.float64)
    for k in range(X.shape[2]):
        _, dx, dW_k, db_k = _one_example(X[:, :, k], W, b, dH[:, :, k])
        assert dx is not None and dW_k is not None and db_k is not None
        dX[:, :, k] = dx
        dW += dW_k
        db += db_k
    return dX, dW, db
