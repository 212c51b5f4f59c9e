"""Naive vanilla-RNN and GRU oracles, one example and one time step at a time, straight from
specs/recurrent.md.

Independent of refnn: its own sigmoid and tanh (numpy's), the RNN's stacked vector
[x_t; h_{t-1}] multiplied by the whole W (never split), the GRU's six gate matrices sliced out
one by one (W_ir, W_iz, W_in, W_hr, W_hz, W_hn), and each backward written as reverse-mode
through the forward's scalar operations in the order they were recorded (no factored formula
such as GRU-BPTT's dq is used).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from refnn.testing.strategies import arrays, sequence_shapes
from refnn.types import FloatArray


def _sigmoid(a: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-a))
    return out


@dataclass(frozen=True)
class RecurrentPoint:
    """A generic point: inputs, parameters, initial state and an upstream dH.

    ``W`` is (g n_h, n_in + n_h) with g = 1 (RNN) or 3 (GRU); ``b`` is the RNN's bias (n_h, 1)
    or the GRU's b_ih, ``b2`` the GRU's b_hh (an unused zero array for the RNN).
    """

    X: FloatArray
    W: FloatArray
    b: FloatArray
    b2: FloatArray
    h0: FloatArray
    dH: FloatArray


Grads = tuple[FloatArray, ...]


def _rnn_one(
    x: FloatArray, W: FloatArray, b: FloatArray, h0: FloatArray, dH: FloatArray, relu: bool
) -> tuple[FloatArray, Grads]:
    """H (n_h, T) and (dx, dW, db, dh0) for one sequence x (n_in, T)."""
    n_in, T = x.shape
    n = W.shape[0]
    h = h0
    zs, hs, slopes = [], [], []
    for t in range(T):
        z = np.concatenate([x[:, t], h])
        a = W @ z + b[:, 0]
        h = np.maximum(a, 0.0) if relu else np.tanh(a)
        slopes.append((a > 0).astype(float) if relu else 1.0 - np.tanh(a) ** 2)
        zs.append(z)
        hs.append(h)
    dW, db, dx = np.zeros_like(W), np.zeros(n), np.zeros((n_in, T))
    dh_later = np.zeros(n)
    for t in reversed(range(T)):
        da = (dH[:, t] + dh_later) * slopes[t]
        dW += np.outer(da, zs[t])
        db += da
        dz = W.T @ da
        dx[:, t], dh_later = dz[:n_in], dz[n_in:]
    return np.stack(hs, axis=1), (dx, dW, db[:, None], dh_later)


def _gru_one(
    x: FloatArray,
    W: FloatArray,
    b_ih: FloatArray,
    b_hh: FloatArray,
    h0: FloatArray,
    dH: FloatArray,
) -> tuple[FloatArray, Grads]:
    """H (n_h, T) and (dx, dW, db_ih, db_hh, dh0) for one sequence x (n_in, T)."""
    n_in, T = x.shape
    k = W.shape[0] // 3
    rows = {g: slice(i * k, (i + 1) * k) for i, g in enumerate("rzn")}
    Wi = {g: W[rows[g], :n_in] for g in "rzn"}
    Wh = {g: W[rows[g], n_in:] for g in "rzn"}
    bi = {g: b_ih[rows[g], 0] for g in "rzn"}
    bh = {g: b_hh[rows[g], 0] for g in "rzn"}
    h = h0
    tape = []
    hs = []
    for t in range(T):
        xt = x[:, t]
        r = _sigmoid(Wi["r"] @ xt + bi["r"] + Wh["r"] @ h + bh["r"])
        z = _sigmoid(Wi["z"] @ xt + bi["z"] + Wh["z"] @ h + bh["z"])
        hn = Wh["n"] @ h + bh["n"]
        nn = np.tanh(Wi["n"] @ xt + bi["n"] + r * hn)
        tape.append((xt, h, r, z, hn, nn))
        h = (1.0 - z) * nn + z * h
        hs.append(h)
    dWi = {g: np.zeros_like(Wi[g]) for g in "rzn"}
    dWh = {g: np.zeros_like(Wh[g]) for g in "rzn"}
    dbi = {g: np.zeros(k) for g in "rzn"}
    dbh = {g: np.zeros(k) for g in "rzn"}
    dx = np.zeros((n_in, T))
    dh_later = np.zeros(k)
    for t in reversed(range(T)):
        xt, h_prev, r, z, hn, nn = tape[t]
        dh = dH[:, t] + dh_later
        # h = (1 - z) nn + z h_prev
        d_nn, d_z, d_hprev = dh * (1.0 - z), dh * (h_prev - nn), dh * z
        # nn = tanh(s), s = Wi_n x + bi_n + r hn
        d_s = d_nn * (1.0 - nn**2)
        d_r, d_hn = d_s * hn, d_s * r
        # hn = Wh_n h_prev + bh_n
        dWh["n"] += np.outer(d_hn, h_prev)
        dbh["n"] += d_hn
        d_hprev = d_hprev + Wh["n"].T @ d_hn
        dWi["n"] += np.outer(d_s, xt)
        dbi["n"] += d_s
        dxt = Wi["n"].T @ d_s
        for g, d_out, out in (("r", d_r, r), ("z", d_z, z)):
            d_pre = d_out * out * (1.0 - out)  # out = σ(Wi x + bi + Wh h_prev + bh)
            dWi[g] += np.outer(d_pre, xt)
            dWh[g] += np.outer(d_pre, h_prev)
            dbi[g] += d_pre
            dbh[g] += d_pre
            dxt = dxt + Wi[g].T @ d_pre
            d_hprev = d_hprev + Wh[g].T @ d_pre
        dx[:, t] = dxt
        dh_later = d_hprev
    dW = np.concatenate(
        [np.vstack([dWi[g] for g in "rzn"]), np.vstack([dWh[g] for g in "rzn"])], axis=1
    )
    db_ih = np.concatenate([dbi[g] for g in "rzn"])[:, None]
    db_hh = np.concatenate([dbh[g] for g in "rzn"])[:, None]
    return np.stack(hs, axis=1), (dx, dW, db_ih, db_hh, dh_later)


def _over_examples(
    p: RecurrentPoint, zero_state: bool, one: object, n_grads: int
) -> tuple[FloatArray, Grads]:
    X = p.X
    _, T, m = X.shape
    n = p.h0.shape[0]
    h0 = np.zeros((n, m)) if zero_state else p.h0
    H = np.zeros((n, T, m))
    sums: list[FloatArray] = []
    per_example: list[Grads] = []
    for k in range(m):
        assert callable(one)
        H[:, :, k], grads = one(X[:, :, k], h0[:, k], p.dH[:, :, k])
        per_example.append(grads)
    dX = np.stack([g[0] for g in per_example], axis=2)
    for i in range(1, n_grads - 1):  # the parameters: summed over the examples
        sums.append(sum((g[i] for g in per_example), np.zeros_like(per_example[0][i])))
    dh0 = np.stack([g[-1] for g in per_example], axis=1)
    return H, (dX, *sums, dh0)


def rnn_naive(
    p: RecurrentPoint, *, relu: bool = False, zero_state: bool = False
) -> tuple[FloatArray, Grads]:
    """H (n_h, T, m) and (dX, dW, db, dh0) at p, one example at a time."""

    def one(x: FloatArray, h0: FloatArray, dH: FloatArray) -> tuple[FloatArray, Grads]:
        return _rnn_one(x, p.W, p.b, h0, dH, relu)

    return _over_examples(p, zero_state, one, 4)


def gru_naive(p: RecurrentPoint, *, zero_state: bool = False) -> tuple[FloatArray, Grads]:
    """H (n_h, T, m) and (dX, dW, db_ih, db_hh, dh0) at p, one example at a time."""

    def one(x: FloatArray, h0: FloatArray, dH: FloatArray) -> tuple[FloatArray, Grads]:
        return _gru_one(x, p.W, p.b, p.b2, h0, dH)

    return _over_examples(p, zero_state, one, 5)


@st.composite
def recurrent_points(
    draw: st.DrawFn,
    *,
    gates: int,
    max_size: int = 4,
    max_steps: int = 6,
    bound: float = 2.0,
) -> RecurrentPoint:
    """Shapes from ``sequence_shapes`` (shrinking to one unit, one step, one example), every
    array drawn element by element: X and dH in [-bound, bound], h0 in [-1, 1] (a reachable
    state), W scaled by 1/sqrt(n_in + n_h) so the gates are neither linear nor all saturated,
    biases in [-1, 1]. ``gates``: 1 for the RNN, 3 for the GRU."""
    s = draw(sequence_shapes(max_size=max_size, max_steps=max_steps))
    n, fan_in = s.n_hidden, s.n_in + s.n_hidden
    return RecurrentPoint(
        X=draw(arrays(s.input_shape, bound=bound), label="X"),
        W=draw(arrays((gates * n, fan_in), bound=2.0), label="W") / np.sqrt(fan_in),
        b=draw(arrays((gates * n, 1), bound=1.0), label="b"),
        b2=draw(arrays((gates * n, 1), bound=1.0), label="b2"),
        h0=draw(arrays((n, s.m), bound=1.0), label="h0"),
        dH=draw(arrays((n, s.T, s.m), bound=bound), label="dH"),
    )
