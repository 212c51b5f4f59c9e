"""The LSTM layer over sequences X in R^{n_in x T x m}, returning all hidden states (LSTM-*).

Gates are stacked in the order input, forget, cell candidate, output (i, f, g, o) in one weight
matrix W = [W_x | W_h] acting on [x_t; h_{t-1}], as in ``specs/lstm.md``. Time steps are a Python
loop (the recurrence is sequential); examples and units are always vectorized.

Layout: every sequence array is C-contiguous with shape (n, T, m), so a step slice ``A[:, t, :]``
is an (n, m) view whose rows are contiguous (BLAS takes it without a copy), and the whole array
reshapes to (n, T*m) without a copy; the parts of the equations that do not depend on the
recurrence (W_x x_t + b, dW_x, dW_h, db, dx_t) are therefore single matrix products over all
time steps at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn._validate import as_input, check_rng, float_in, positive_int
from refnn.activations import sigmoid
from refnn.init import init_weights
from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray


@dataclass(frozen=True)
class LSTMGates:
    """The four gates of one time step, each (n_h, m) (LSTM-GATES)."""

    i: FloatArray
    f: FloatArray
    g: FloatArray
    o: FloatArray


@dataclass(frozen=True)
class LSTMCache:
    """What the LSTM backward needs from the forward; every sequence array is (n, T, m).

    Attributes
    ----------
    X : ndarray, shape (n_in, T, m)
        The input (the caller's array when it was already of the layer's dtype; never written).
    H : ndarray, shape (n_h, T, m)
        Hidden states h_1..h_T (h_0 = 0 is implicit).
    C : ndarray, shape (n_h, T, m)
        Cell states c_1..c_T (c_0 = 0 is implicit).
    tanh_C : ndarray, shape (n_h, T, m)
        tanh(c_t), kept so backward does not recompute it.
    gates : ndarray, shape (4 n_h, T, m)
        i, f, g, o stacked on axis 0 (the same row blocks as W and b).
    """

    X: FloatArray
    H: FloatArray
    C: FloatArray
    tanh_C: FloatArray
    gates: FloatArray

    @property
    def n_hidden(self) -> int:
        """The number of hidden units n_h."""
        n: int = self.H.shape[0]
        return n

    def step(self, t: int) -> LSTMGates:
        """The gates of time step t (0-based), as (n_h, m) views."""
        n = self.n_hidden
        at_t = self.gates[:, t, :]
        return LSTMGates(i=at_t[:n], f=at_t[n : 2 * n], g=at_t[2 * n : 3 * n], o=at_t[3 * n :])


@dataclass(frozen=True)
class LSTMGrads:
    """Gradients of J with respect to the LSTM's input, weights and bias."""

    dX: FloatArray
    dW: FloatArray
    db: FloatArray


def lstm_init(
    n_in: int,
    n_hidden: int,
    *,
    rng: np.random.Generator,
    forget_bias: float,
    dtype: np.dtype[np.floating[Any]],
) -> tuple[FloatArray, FloatArray]:
    """Initial W (4 n_h, n_in + n_h) and b (4 n_h, 1).

    Notes
    -----
    Spec: LSTM-INIT, INIT-XAVIER

    Each gate block of W is Xavier/Glorot normal with fan_in = n_in + n_h and fan_out = n_h,
    i.e. W_uj ~ N(0, 2 / (n_in + 2 n_h)); b is zero except the forget block, set to
    ``forget_bias``.
    """
    fan_in = n_in + n_hidden
    W = init_weights(
        (4 * n_hidden, fan_in), fan_in, n_hidden, rng=rng, scheme="xavier", dtype=dtype
    )
    b = np.zeros((4 * n_hidden, 1), dtype=dtype)
    b[n_hidden : 2 * n_hidden] = forget_bias
    return W, b


def lstm_input_projection(X: FloatArray, W_x: FloatArray, b: FloatArray) -> FloatArray:
    """The recurrence-free part of the gate pre-activations, W_x x_t + b, for every t.

    Parameters
    ----------
    X : ndarray, shape (n_in, T, m)
    W_x : ndarray, shape (4 n_h, n_in)
        The first n_in columns of W.
    b : ndarray, shape (4 n_h, 1)

    Returns
    -------
    P : ndarray, shape (4 n_h, T, m)
        A new C-contiguous array; ``lstm_gates`` adds W_h h_{t-1} to P[:, t, :] in place.

    Notes
    -----
    Spec: LSTM-GATES

    One matrix product over all T*m columns (X reshaped to (n_in, T*m) without a copy when it is
    contiguous).
    """
    n_in, T, m = X.shape
    P: FloatArray = W_x @ X.reshape(n_in, T * m)
    P += b
    out: FloatArray = P.reshape(W_x.shape[0], T, m)
    return out


def lstm_gates(a: FloatArray, h_prev: FloatArray | None, W_h: FloatArray) -> LSTMGates:
    """Complete a step's pre-activations and apply the gate non-linearities, in place.

    Parameters
    ----------
    a : ndarray, shape (4 n_h, m)
        On entry W_x x_t + b (from ``lstm_input_projection``); W_h h_{t-1} is added, then each
        block is overwritten with its gate, so on return ``a`` holds [i; f; g; o].
    h_prev : ndarray, shape (n_h, m), or None
        h_{t-1}; None stands for h_0 = 0.
    W_h : ndarray, shape (4 n_h, n_h)
        The last n_h columns of W.

    Returns
    -------
    LSTMGates
        Views into ``a``.

    Notes
    -----
    Spec: LSTM-GATES

    a_t = W_x x_t + W_h h_{t-1} + b;  i = σ(a^i), f = σ(a^f), g = tanh(a^g), o = σ(a^o).
    """
    if h_prev is not None:
        a += W_h @ h_prev
    n = W_h.shape[1]
    a[: 2 * n] = sigmoid(a[: 2 * n])  # i and f are adjacent blocks
    np.tanh(a[2 * n : 3 * n], out=a[2 * n : 3 * n])
    a[3 * n :] = sigmoid(a[3 * n :])
    return LSTMGates(i=a[:n], f=a[n : 2 * n], g=a[2 * n : 3 * n], o=a[3 * n :])


def lstm_cell(gates: LSTMGates, c_prev: FloatArray | None) -> FloatArray:
    """The new cell state.

    Notes
    -----
    Spec: LSTM-CELL

    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t; c_prev None stands for c_0 = 0.
    """
    c: FloatArray = gates.i * gates.g
    if c_prev is not None:
        c += gates.f * c_prev
    return c


def lstm_hidden(o: FloatArray, c: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The new hidden state, and tanh(c_t) for the backward.

    Notes
    -----
    Spec: LSTM-HIDDEN

    h_t = o_t ⊙ tanh(c_t).
    """
    tanh_c: FloatArray = np.tanh(c)
    h: FloatArray = o * tanh_c
    return h, tanh_c


def lstm_forward(X: FloatArray, W: FloatArray, b: FloatArray) -> tuple[FloatArray, LSTMCache]:
    """Run the LSTM over every time step from the zero state.

    Parameters
    ----------
    X : ndarray, shape (n_in, T, m)
    W : ndarray, shape (4 n_h, n_in + n_h)
    b : ndarray, shape (4 n_h, 1)

    Returns
    -------
    H : ndarray, shape (n_h, T, m)
        All hidden states; a new array, separate from the cache (writing into it does not
        change what backward uses).
    cache : LSTMCache

    Notes
    -----
    Spec: LSTM-GATES, LSTM-CELL, LSTM-HIDDEN

    For t = 1..T from h_0 = c_0 = 0: gates from [x_t; h_{t-1}], then c_t, then h_t.
    """
    n_in, T, m = X.shape
    n = W.shape[0] // 4
    W_x, W_h = W[:, :n_in], W[:, n_in:]
    gates = lstm_input_projection(X, W_x, b)  # becomes the gates, step by step
    H = np.empty((n, T, m), dtype=W.dtype)
    C = np.empty_like(H)
    tanh_C = np.empty_like(H)
    for t in range(T):
        h_prev = H[:, t - 1, :] if t > 0 else None
        c_prev = C[:, t - 1, :] if t > 0 else None
        step = lstm_gates(gates[:, t, :], h_prev, W_h)
        C[:, t, :] = lstm_cell(step, c_prev)
        H[:, t, :], tanh_C[:, t, :] = lstm_hidden(step.o, C[:, t, :])
    return H.copy(), LSTMCache(X=X, H=H, C=C, tanh_C=tanh_C, gates=gates)


def lstm_cell_grad(
    dh: FloatArray,
    gates: LSTMGates,
    tanh_c: FloatArray,
    dc_next: FloatArray | None,
    f_next: FloatArray | None,
) -> FloatArray:
    """Total gradient of the cell state c_t.

    Parameters
    ----------
    dh : ndarray, shape (n_h, m)
        The total dh_t (LSTM-BPTT-H).
    gates : LSTMGates
        Step t's gates.
    tanh_c : ndarray, shape (n_h, m)
        tanh(c_t).
    dc_next, f_next : ndarray, shape (n_h, m), or None
        dc_{t+1} and f_{t+1}; None at t = T, where dc_{T+1} = 0.

    Notes
    -----
    Spec: LSTM-BPTT-C

    dc_t = dh_t ⊙ o_t ⊙ (1 - tanh²(c_t)) + dc_{t+1} ⊙ f_{t+1}.
    """
    dc: FloatArray = dh * gates.o * (1.0 - tanh_c * tanh_c)
    if dc_next is not None and f_next is not None:
        dc += dc_next * f_next
    return dc


def lstm_gate_grads(
    dh: FloatArray,
    dc: FloatArray,
    gates: LSTMGates,
    tanh_c: FloatArray,
    c_prev: FloatArray | None,
    out: FloatArray,
) -> None:
    """Gradients of step t's gate pre-activations, written into ``out`` (4 n_h, m).

    Parameters
    ----------
    dh, dc : ndarray, shape (n_h, m)
        The total dh_t and dc_t.
    gates : LSTMGates
    tanh_c : ndarray, shape (n_h, m)
    c_prev : ndarray, shape (n_h, m), or None
        c_{t-1}; None stands for c_0 = 0 (then da^f_t = 0).
    out : ndarray, shape (4 n_h, m)
        Receives da_t = [da^i; da^f; da^g; da^o].

    Notes
    -----
    Spec: LSTM-DGATES

    da^i = dc ⊙ g ⊙ i(1-i),  da^f = dc ⊙ c_{t-1} ⊙ f(1-f),  da^g = dc ⊙ i ⊙ (1-g²),
    da^o = dh ⊙ tanh(c) ⊙ o(1-o).
    """
    n = dh.shape[0]
    i, f, g, o = gates.i, gates.f, gates.g, gates.o
    out[:n] = dc * g * (i * (1.0 - i))
    if c_prev is None:
        out[n : 2 * n] = 0.0
    else:
        out[n : 2 * n] = dc * c_prev * (f * (1.0 - f))
    out[2 * n : 3 * n] = dc * i * (1.0 - g * g)
    out[3 * n :] = dh * tanh_c * (o * (1.0 - o))


def lstm_backward(dH: FloatArray, W: FloatArray, cache: LSTMCache) -> LSTMGrads:
    """Backpropagation through time.

    Parameters
    ----------
    dH : ndarray, shape (n_h, T, m)
        ∂J/∂H; it already carries the 1/m of the cost (NOTE-COST). Not modified.
    W : ndarray, shape (4 n_h, n_in + n_h)
    cache : LSTMCache

    Returns
    -------
    LSTMGrads
        dX (n_in, T, m), dW (4 n_h, n_in + n_h), db (4 n_h, 1).

    Notes
    -----
    Spec: LSTM-BPTT-H, LSTM-DW, LSTM-DB, LSTM-DX

    From t = T down to 1: dh_t = dH_t + W_h^T da_{t+1}, then dc_t (LSTM-BPTT-C) and da_t
    (LSTM-DGATES). After the loop, over all steps at once: dW_x = Σ_t da_t x_t^T,
    dW_h = Σ_t da_t h_{t-1}^T, db = Σ_t da_t 1_m, dx_t = W_x^T da_t.
    """
    X, H, C, tanh_C = cache.X, cache.H, cache.C, cache.tanh_C
    n_in, T, m = X.shape
    n = cache.n_hidden
    W_x, W_h = W[:, :n_in], W[:, n_in:]
    dA = np.empty((4 * n, T, m), dtype=W.dtype)
    dc_next: FloatArray | None = None
    f_next: FloatArray | None = None
    for t in range(T - 1, -1, -1):
        gates = cache.step(t)
        dh: FloatArray = dH[:, t, :] if t == T - 1 else dH[:, t, :] + W_h.T @ dA[:, t + 1, :]
        dc = lstm_cell_grad(dh, gates, tanh_C[:, t, :], dc_next, f_next)
        c_prev = C[:, t - 1, :] if t > 0 else None
        lstm_gate_grads(dh, dc, gates, tanh_C[:, t, :], c_prev, dA[:, t, :])
        dc_next, f_next = dc, gates.f
    dA_flat = dA.reshape(4 * n, T * m)
    dW = np.empty_like(W)
    dW[:, :n_in] = dA_flat @ X.reshape(n_in, T * m).T
    dW[:, n_in:] = dA[:, 1:, :].reshape(4 * n, (T - 1) * m) @ H[:, :-1, :].reshape(n, (T - 1) * m).T
    db: FloatArray = dA_flat.sum(axis=1, keepdims=True)
    dX: FloatArray = (W_x.T @ dA_flat).reshape(n_in, T, m)
    return LSTMGrads(dX=dX, dW=dW, db=db)


class LSTM(Layer[LSTMCache]):
    """Long short-term memory layer returning all hidden states H (n_hidden, T, m).

    Params "W" (4 n_hidden, n_in + n_hidden), acting on [x_t; h_{t-1}], and "b"
    (4 n_hidden, 1), gates stacked (i, f, g, o); the state starts at h_0 = c_0 = 0.

    Parameters
    ----------
    n_in, n_hidden : int
        Input features per step and hidden units.
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG).
    forget_bias : float
        Initial forget-gate bias (LSTM-INIT: 1.0 by default, 0.0 for all-zero biases).
    dtype : float64 or float32

    Notes
    -----
    Spec: LSTM-INIT

    X must have shape (n_in, T, m) with T >= 1 and m >= 1 (NOTE-AXES).
    """

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        *,
        rng: np.random.Generator,
        forget_bias: float = 1.0,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.n_in = positive_int(n_in, "n_in")
        self.n_hidden = positive_int(n_hidden, "n_hidden")
        self.forget_bias = float_in(forget_bias, "forget_bias", -1e3, 1e3, closed_high=True)
        W, b = lstm_init(
            self.n_in,
            self.n_hidden,
            rng=check_rng(rng),
            forget_bias=self.forget_bias,
            dtype=self.dtype,
        )
        self.params = {"W": W, "b": b}

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        X = as_input(X, "X", ndim=3, dtype=self.dtype, leading=(self.n_in,), layout="n_in x T x m")
        if X.shape[1] == 0:
            raise ValueError(f"X must hold at least one time step (T >= 1), got shape {X.shape}")
        H, cache = lstm_forward(X, self.params["W"], self.params["b"])
        self._remember(cache, X=X)
        return H

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        dH = self._check_upstream(dA, cache.H.shape)
        grads = lstm_backward(dH, self.params["W"], cache)
        self.grads = {"W": grads.dW, "b": grads.db}
        return grads.dX

    def config(self) -> dict[str, Any]:
        return {
            "n_in": self.n_in,
            "n_hidden": self.n_hidden,
            "forget_bias": self.forget_bias,
            **super().config(),
        }
