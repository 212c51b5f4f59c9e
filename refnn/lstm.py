"""The LSTM layer over sequences X in R^{n_in x T x m}, returning all hidden states (LSTM-*).

Gates (i, f, g, o) are stacked in one W = [W_x | W_h] acting on [x_t; h_{t-1}] (specs/lstm.md);
the state starts at (h_0, c_0), zero unless given, and backward also returns its gradients.
Time steps are a Python loop; examples and units are vectorized. Inputs and outputs are
(n, T, m) (NOTE-AXES); what the loop reads and writes step by step (gates, c_t, tanh(c_t), h_t)
is kept step-major, (T, n, m), so each step's block is contiguous: element-wise passes over
strided (n, m) views cost a third more here. The recurrence-free parts (W_x x_t + b, dW, db,
dx_t) are single matrix products over all time steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn._validate import check_allocatable, check_rng, float_in, positive_int
from refnn.activations import sigmoid, tanh
from refnn.init import init_weights
from refnn.kitspace import Ints, LayerSpace, Values
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.sequence import STEPS
from refnn.types import DTypeLike, FloatArray

Gates = tuple[FloatArray, FloatArray, FloatArray, FloatArray]


def split_gates(a: FloatArray) -> Gates:
    """The four row blocks (i, f, g, o) of a (4 n_h, ...) array, as views."""
    n = a.shape[0] // 4
    return a[:n], a[n : 2 * n], a[2 * n : 3 * n], a[3 * n :]


@dataclass(frozen=True)
class LSTMCache:
    """What the LSTM backward needs from the forward.

    X (n_in, T, m) and h0, c0 (n_h, m) may be the caller's arrays (never written). The rest is
    step-major: H, C and tanh_C (T, n_h, m) hold h_t, c_t and tanh(c_t) at [t - 1]; gates
    (T, 4 n_h, m) holds i, f, g, o stacked on axis 1 (the same row blocks as W and b).
    """

    X: FloatArray
    h0: FloatArray
    c0: FloatArray
    H: FloatArray
    C: FloatArray
    tanh_C: FloatArray
    gates: FloatArray


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

    Each gate block of W is Xavier normal (fan_in n_in + n_h, fan_out n_h): W_uj ~
    N(0, 2 / (n_in + 2 n_h)); b is zero except the forget block, ``forget_bias``.
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

    X is (n_in, T, m), W_x (4 n_h, n_in) the first n_in columns of W, b (4 n_h, 1). Returns a
    new step-major (T, 4 n_h, m) array P, one batched matrix product over the T steps;
    ``lstm_gates`` completes P[t] in place.

    Notes
    -----
    Spec: LSTM-GATES
    """
    P = np.matmul(W_x, X.transpose(1, 0, 2))
    P += b
    return P


def lstm_gates(a: FloatArray, h_prev: FloatArray, W_h: FloatArray) -> Gates:
    """Complete a step's pre-activations and apply the gate non-linearities, in place.

    ``a`` (4 n_h, m) holds W_x x_t + b on entry; W_h h_{t-1} is added (W_h: the last n_h
    columns of W, h_prev: h_{t-1}, h_0 at the first step), then each block is overwritten with
    its gate. Returns (i, f, g, o), views into ``a``.

    Notes
    -----
    Spec: LSTM-GATES

    a_t = W_x x_t + W_h h_{t-1} + b;  i = σ(a^i), f = σ(a^f), g = tanh(a^g), o = σ(a^o).
    """
    a += W_h @ h_prev
    n = W_h.shape[1]
    a[: 2 * n] = sigmoid(a[: 2 * n])  # i and f are adjacent blocks
    a[2 * n : 3 * n] = tanh(a[2 * n : 3 * n])
    a[3 * n :] = sigmoid(a[3 * n :])
    return split_gates(a)


def lstm_cell(gates: Gates, c_prev: FloatArray) -> FloatArray:
    """The new cell state.

    Notes
    -----
    Spec: LSTM-CELL

    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t.
    """
    i, f, g, _ = gates
    c = i * g
    c += f * c_prev
    return c


def lstm_forward(
    X: FloatArray,
    W: FloatArray,
    b: FloatArray,
    h0: FloatArray | None = None,
    c0: FloatArray | None = None,
) -> tuple[FloatArray, LSTMCache]:
    """Run the LSTM over every time step from the state (h_0, c_0).

    Parameters
    ----------
    X : ndarray, shape (n_in, T, m)
    W : ndarray, shape (4 n_h, n_in + n_h)
    b : ndarray, shape (4 n_h, 1)
    h0, c0 : ndarray, shape (n_h, m), optional
        The initial state; None stands for zeros.

    Returns
    -------
    H : ndarray, shape (n_h, T, m)
        All hidden states; a new array, separate from the cache (writing into it does not
        change what backward uses).
    cache : LSTMCache

    Notes
    -----
    Spec: LSTM-STATE-INIT, LSTM-GATES, LSTM-CELL, LSTM-HIDDEN

    For t = 1..T from (h_0, c_0): gates from [x_t; h_{t-1}] (LSTM-GATES), then
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t (LSTM-CELL), then h_t = o_t ⊙ tanh(c_t) (LSTM-HIDDEN).
    """
    n_in, T, m = X.shape
    n = W.shape[0] // 4
    h0 = np.zeros((n, m), dtype=W.dtype) if h0 is None else h0
    c0 = np.zeros((n, m), dtype=W.dtype) if c0 is None else c0
    W_x, W_h = W[:, :n_in], W[:, n_in:]
    gates = lstm_input_projection(X, W_x, b)  # becomes the gates, step by step
    H = np.empty((T, n, m), dtype=W.dtype)
    C = np.empty_like(H)
    tanh_C = np.empty_like(H)
    for t in range(T):
        step = lstm_gates(gates[t], H[t - 1] if t > 0 else h0, W_h)
        C[t] = lstm_cell(step, C[t - 1] if t > 0 else c0)
        tanh_C[t] = tanh(C[t])
        np.multiply(step[3], tanh_C[t], out=H[t])  # LSTM-HIDDEN
    cache = LSTMCache(X=X, h0=h0, c0=c0, H=H, C=C, tanh_C=tanh_C, gates=gates)
    return H.transpose(1, 0, 2).copy(), cache


def lstm_cell_grad(
    dh: FloatArray, o: FloatArray, tanh_c: FloatArray, dc_next: FloatArray | None
) -> FloatArray:
    """Total gradient of the cell state c_t.

    dh is the total dh_t (LSTM-BPTT-H), o and tanh_c step t's output gate and tanh(c_t),
    dc_next is dc_{t+1} ⊙ f_{t+1} (None at t = T, where dc_{T+1} = 0); all (n_h, m).

    Notes
    -----
    Spec: LSTM-BPTT-C

    dc_t = dh_t ⊙ o_t ⊙ (1 - tanh²(c_t)) + dc_{t+1} ⊙ f_{t+1}.
    """
    dc = dh * o * (1.0 - tanh_c * tanh_c)
    if dc_next is not None:
        dc += dc_next
    return dc


def lstm_gate_grads(
    dh: FloatArray,
    dc: FloatArray,
    gates: Gates,
    tanh_c: FloatArray,
    c_prev: FloatArray,
    out: FloatArray,
) -> None:
    """Gradients of step t's gate pre-activations, written into ``out`` (4 n_h, m).

    dh, dc are the total dh_t and dc_t, gates step t's (i, f, g, o), tanh_c = tanh(c_t),
    c_prev = c_{t-1} (c_0 at the first step), all (n_h, m); ``out`` receives
    da_t = [da^i; da^f; da^g; da^o].

    Notes
    -----
    Spec: LSTM-DGATES

    da^i = dc ⊙ g ⊙ i(1-i),  da^f = dc ⊙ c_{t-1} ⊙ f(1-f),  da^g = dc ⊙ i ⊙ (1-g²),
    da^o = dh ⊙ tanh(c) ⊙ o(1-o).
    """
    i, f, g, o = gates
    da_i, da_f, da_g, da_o = split_gates(out)
    da_i[...] = dc * g * (i * (1.0 - i))
    da_f[...] = dc * c_prev * (f * (1.0 - f))
    da_g[...] = dc * i * (1.0 - g * g)
    da_o[...] = dh * tanh_c * (o * (1.0 - o))


def lstm_backward(
    dH: FloatArray, W: FloatArray, cache: LSTMCache
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Backpropagation through time: (dX, dW, db, dh0, dc0) from dH = ∂J/∂H (n_h, T, m).

    dH already carries the 1/m of the cost (NOTE-COST) and is not modified; dX is (n_in, T, m),
    dW and db have the shapes of W and b, dh0 = ∂J/∂h_0 and dc0 = ∂J/∂c_0 are (n_h, m).

    Notes
    -----
    Spec: LSTM-BPTT-H, LSTM-DW, LSTM-DB, LSTM-DX, LSTM-DH0, LSTM-DC0

    From t = T down to 1: dh_t = dH_t + W_h^T da_{t+1}, then dc_t (LSTM-BPTT-C) and da_t
    (LSTM-DGATES). After the loop, over all steps at once: dW_x = Σ_t da_t x_t^T,
    dW_h = Σ_t da_t h_{t-1}^T, db = Σ_t da_t 1_m, dx_t = W_x^T da_t; and the state's
    gradients dh_0 = W_h^T da_1, dc_0 = dc_1 ⊙ f_1.
    """
    X, H, C, tanh_C, gates = cache.X, cache.H, cache.C, cache.tanh_C, cache.gates
    n_in, T, m = X.shape
    n = H.shape[1]
    W_x, W_h = W[:, :n_in], W[:, n_in:]
    dA = np.empty((4 * n, T, m), dtype=W.dtype)
    dc_next: FloatArray | None = None  # dc_{t+1} ⊙ f_{t+1}
    for t in range(T - 1, -1, -1):
        step = split_gates(gates[t])
        dh = dH[:, t, :] if t == T - 1 else dH[:, t, :] + W_h.T @ dA[:, t + 1, :]
        dc = lstm_cell_grad(dh, step[3], tanh_C[t], dc_next)
        lstm_gate_grads(dh, dc, step, tanh_C[t], C[t - 1] if t > 0 else cache.c0, dA[:, t, :])
        dc_next = dc * step[1]
    assert dc_next is not None  # T >= 1
    dA_flat = dA.reshape(4 * n, T * m)
    dW = np.empty_like(W)
    dW[:, :n_in] = dA_flat @ X.reshape(n_in, T * m).T
    dW[:, n_in:] = dA[:, 0, :] @ cache.h0.T
    H_prev = H[:-1].transpose(1, 0, 2).reshape(n, (T - 1) * m)  # h_1..h_{T-1}, one copy
    dW[:, n_in:] += dA_flat[:, m:] @ H_prev.T
    db = dA_flat.sum(axis=1, keepdims=True)
    dX = (W_x.T @ dA_flat).reshape(n_in, T, m)
    dh0 = W_h.T @ dA[:, 0, :]
    return dX, dW, db, dh0, dc_next


#: The spec IDs make check verifies on every LSTM case.
LSTM_IDS = (
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)
#: (n_in, n_hidden, T, m, seed) of make check's cases: every T from 1 to 10, small sizes so
#: the check stays fast.
LSTM_CONFIGS = (
    (1, 1, 1, 1, 0),
    (3, 2, 1, 4, 1),
    (2, 3, 2, 3, 2),
    (3, 4, 3, 2, 0),
    (1, 2, 4, 3, 1),
    (2, 2, 5, 2, 2),
    (4, 3, 6, 1, 0),
    (2, 3, 7, 2, 1),
    (3, 2, 8, 2, 2),
    (1, 3, 9, 2, 0),
    (2, 2, 10, 3, 1),
    (3, 3, 10, 2, 2),
)


#: The LSTM's row blocks of W and b, for messages naming a gate instead of a row.
GATES = ("input gate i", "forget gate f", "cell candidate g", "output gate o")


def _lstm_sums(v: Values) -> dict[str, int]:
    """TEST-TOL's K: 4 gates, T steps, sums over n_in + n_hidden + 2 terms (dW, db: m more)."""
    K = 4 * v["T"] * (v["n_in"] + v["n_hidden"] + 2)
    return {"Y": K, "dX": K, "dW": K * v["m"], "db": K * v["m"], "dh0": K, "dc0": K}


def _lstm_terms(X: FloatArray, dY: FloatArray) -> dict[str, Any]:
    """TEST-TOL-TERMS: h is bounded by 1; a gradient by max |dY| T max(1, max |X|)."""
    big = float(np.abs(dY).max(initial=0.0)) * X.shape[1] * max(1.0, float(np.abs(X).max()))
    keys = ("dX", "dW", "db", "dh0", "dc0")
    return {"Y": np.ones(()), **dict.fromkeys(keys, np.asarray(big))}


@register
class LSTM(Layer[LSTMCache]):
    """Long short-term memory layer returning all hidden states H (n_hidden, T, m).

    Params "W" (4 n_hidden, n_in + n_hidden), acting on [x_t; h_{t-1}], and "b"
    (4 n_hidden, 1), gates stacked (i, f, g, o). The state starts at zero, or at the
    ``h0``, ``c0`` given to ``forward``; after ``backward``, ``input_grads`` holds their
    gradients ``"h0"`` and ``"c0"`` (∂J/∂h0, ∂J/∂c0, LSTM-DH0, LSTM-DC0), whether they were
    given or not.

    Parameters
    ----------
    n_in, n_hidden : int
        Input features per step and hidden units.
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG).
    forget_bias : float
        Initial forget-gate bias in [-1000, 1000] (LSTM-INIT: 1.0 by default).
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "W" (4 n_hidden, n_in + n_hidden) = [W_x | W_h], row blocks i, f, g, o; "b"
        (4 n_hidden, 1), the same row blocks (one bias: PyTorch's b_ih + b_hh).
    grads : dict
        dW and db after ``backward``, keyed "W" and "b".
    input_grads : dict
        "h0" and "c0", each (n_hidden, m), after ``backward``.

    Notes
    -----
    Spec: LSTM-INIT

    X must have shape (n_in, T, m) with T >= 1 and m >= 1 (NOTE-AXES); h0 and c0, when given,
    (n_hidden, m), validated like X and never modified (LSTM-STATE-INIT: zeros otherwise).
    """

    takes = Input(ndim=3, leading=("n_in",), layout="n_in x T x m", nonempty={1: STEPS})
    extra_inputs = {
        name: Input(ndim=2, leading=("n_hidden",), layout="n_hidden x m", name=name)
        for name in ("h0", "c0")
    }
    specs = {
        "Y": ("LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN"),
        "dX": ("LSTM-DX",),
        "dW": ("LSTM-DW",),
        "db": ("LSTM-DB",),
        "dh0": ("LSTM-DH0",),
        "dc0": ("LSTM-DC0",),
    }
    keeps = ("X", "h0", "c0")
    kit = LayerSpace(
        draws={"n_in": Ints(1, 4), "n_hidden": Ints(1, 4), "T": Ints(1, 6), "m": Ints(1, 3)},
        input_shape=lambda v: (v["n_in"], v["T"], v["m"]),
        sums=lambda v, s: _lstm_sums(v),
        scale="terms",
        terms=lambda v, X, dY, ref: _lstm_terms(X, dY),
        bound=2.0,
        param_bound=1.0,
        units={"W": GATES, "b": GATES},
        # the state: refnn's given h0, c0 (with their gradients), or always zero; the order of
        # the gate blocks in W and b (refnn's and PyTorch's i, f, g, o; CS231n's i, f, o, g;
        # TensorFlow's LSTMCell i, g, f, o)
        conventions={
            "state": ("given", "zero", "h0"),
            "gates": ("ifgo", "ifog", "igfo"),
            "weights": ("out_in", "in_out"),
            "bias": ("column", "flat", "row"),
        },
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        n, h = config["n_in"], config["n_hidden"]
        module = torch.nn.LSTM(n, h, dtype=X.dtype)
        W, b = arrays["W"], arrays["b"][:, 0]
        weights = {
            "weight_ih_l0": W[:, :n],
            "weight_hh_l0": W[:, n:],
            "bias_ih_l0": b,
            "bias_hh_l0": torch.zeros_like(b),
        }
        state = None
        if "h0" in arrays:
            state = (arrays["h0"].T.unsqueeze(0), arrays["c0"].T.unsqueeze(0))
        Y = torch.func.functional_call(module, weights, (X.permute(1, 2, 0), state))[0]
        return Y.permute(2, 0, 1)  # (T, m, h) -> (h, T, m)

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
        self.forget_bias = fb = float_in(forget_bias, "forget_bias", -1e3, 1e3, closed_high=True)
        shape = (4 * self.n_hidden, self.n_in + self.n_hidden)
        check_allocatable(shape, self.dtype, "W (4 n_hidden x (n_in + n_hidden))")
        rng = check_rng(rng)
        W, b = lstm_init(self.n_in, self.n_hidden, rng=rng, forget_bias=fb, dtype=self.dtype)
        self.params = {"W": W, "b": b}

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        n, h = config["n_in"], config["n_hidden"]
        return {"W": (4 * h, n + h), "b": (4 * h, 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Every T from 1 to 10 from the zero state; three from a given (h0, c0) (their
        gradients checked too); one reused across batch sizes; one in float32."""
        state = ("LSTM-STATE-INIT", "LSTM-DH0", "LSTM-DC0")
        return (
            *(
                Example(
                    f"n_in={n_in} n_hidden={h} T={T} m={m} seed={seed}",
                    (n_in, T, m),
                    (n_in, h),
                    seed=seed,
                    specs=LSTM_IDS,
                )
                for n_in, h, T, m, seed in LSTM_CONFIGS
            ),
            *(
                Example(
                    f"{n_in}->{h} T={T} m={m} from (h0, c0)",
                    (n_in, T, m),
                    (n_in, h),
                    seed=seed,
                    inputs={"h0": (h, m), "c0": (h, m)},
                    specs=(*LSTM_IDS, *state),
                )
                for n_in, h, T, m, seed in ((2, 3, 1, 2, 0), (3, 2, 5, 3, 1), (2, 3, 10, 2, 2))
            ),
            Example(
                "2x3x2 after a batch of m=3",
                (2, 3, 2),
                (2, 3),
                after_other_batch=True,
                specs=LSTM_IDS,
            ),
            Example("n_in=2 n_hidden=3 T=4 m=2", (2, 4, 2), (2, 3), float32=True, specs=LSTM_IDS),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, LSTMCache]:
        return lstm_forward(X, self.params["W"], self.params["b"], **inputs)

    def _backward(
        self, dY: FloatArray, cache: LSTMCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        dX, dW, db, dh0, dc0 = lstm_backward(dY, self.params["W"], cache)
        return dX, {"W": dW, "b": db}, {"h0": dh0, "c0": dc0}

    def config(self) -> dict[str, Any]:
        return {
            "n_in": self.n_in,
            "n_hidden": self.n_hidden,
            "forget_bias": self.forget_bias,
            **super().config(),
        }
