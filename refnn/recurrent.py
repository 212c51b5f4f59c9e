"""Vanilla RNN and GRU layers over sequences X in R^{n_in x T x m}, returning all hidden states
(RNN-*, GRU-*, specs/recurrent.md).

Both start from h_0, zero unless given to ``forward``, and put ∂J/∂h_0 in ``input_grads``, as
the LSTM does (refnn/lstm.py). Like the LSTM: the time steps are a Python loop, examples and
units are vectorized; what the loop reads and writes step by step is kept step-major,
(T, n, m), so that each step's block is contiguous; the recurrence-free parts (the input map for
all steps, dW, db, dX) are single matrix products over all time steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from refnn._validate import check_allocatable, check_rng, positive_int
from refnn.activations import sigmoid, tanh
from refnn.init import init_weights
from refnn.kitspace import Choice, Ints, LayerSpace, Values
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.sequence import STEPS
from refnn.types import DTypeLike, FloatArray

Nonlinearity = Literal["tanh", "relu"]
NONLINEARITIES: tuple[Nonlinearity, ...] = ("tanh", "relu")


def recurrent_init(
    n_in: int, n_hidden: int, gates: int, *, rng: np.random.Generator, dtype: np.dtype[Any]
) -> FloatArray:
    """Initial W (gates n_h, n_in + n_h), each gate block Xavier normal.

    Notes
    -----
    Spec: RNN-INIT, GRU-INIT, INIT-XAVIER

    W_uj ~ N(0, 2 / ((n_in + n_h) + n_h)): fan_in n_in + n_h, fan_out n_h (one gate's units).
    """
    fan_in = n_in + n_hidden
    return init_weights(
        (gates * n_hidden, fan_in), fan_in, n_hidden, rng=rng, scheme="xavier", dtype=dtype
    )


def input_projection(X: FloatArray, W_x: FloatArray, b: FloatArray) -> FloatArray:
    """W_x x_t + b for every t, as a new step-major (T, rows, m) array (one batched product).

    Notes
    -----
    Spec: RNN-FWD, GRU-GATES
    """
    P = np.matmul(W_x, X.transpose(1, 0, 2))
    P += b
    return P


def _time_major(A: FloatArray) -> FloatArray:
    """(T, n, m) step-major -> a new contiguous (n, T, m) array."""
    return A.transpose(1, 0, 2).copy()


# --- vanilla RNN ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RNNCache:
    """X (n_in, T, m) and h0 (n_h, m) as given (never written); H (T, n_h, m) holds h_t at
    [t - 1], step-major."""

    X: FloatArray
    h0: FloatArray
    H: FloatArray
    nonlinearity: Nonlinearity


def rnn_forward(
    X: FloatArray,
    W: FloatArray,
    b: FloatArray,
    h0: FloatArray | None = None,
    *,
    nonlinearity: Nonlinearity = "tanh",
) -> tuple[FloatArray, RNNCache]:
    """Run the vanilla RNN over every time step from h_0.

    Parameters
    ----------
    X : ndarray, shape (n_in, T, m)
    W : ndarray, shape (n_h, n_in + n_h)
        [W_x | W_h].
    b : ndarray, shape (n_h, 1)
    h0 : ndarray, shape (n_h, m), optional
        The initial state; None stands for zeros.
    nonlinearity : {"tanh", "relu"}

    Returns
    -------
    H : ndarray, shape (n_h, T, m)
        A new array, separate from the cache.
    cache : RNNCache

    Notes
    -----
    Spec: RNN-STATE-INIT, RNN-FWD

    a_t = W_x x_t + W_h h_{t-1} + b,  h_t = φ(a_t), φ = tanh or relu.
    """
    n_in, T, m = X.shape
    n = W.shape[0]
    h0 = np.zeros((n, m), dtype=W.dtype) if h0 is None else h0
    W_x, W_h = W[:, :n_in], W[:, n_in:]
    H = input_projection(X, W_x, b)  # a_t, becomes h_t step by step
    for t in range(T):
        a = H[t]
        a += W_h @ (H[t - 1] if t > 0 else h0)
        if nonlinearity == "tanh":
            H[t] = tanh(a)
        else:
            np.maximum(a, 0.0, out=a)
    return _time_major(H), RNNCache(X=X, h0=h0, H=H, nonlinearity=nonlinearity)


def rnn_backward(
    dH: FloatArray, W: FloatArray, cache: RNNCache
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Backpropagation through time: (dX, dW, db, dh0) from dH = ∂J/∂H (n_h, T, m).

    dH already carries the 1/m of the cost (NOTE-COST) and is not modified.

    Notes
    -----
    Spec: RNN-BPTT, RNN-DW, RNN-DB, RNN-DX, RNN-DH0

    da_t = (dH_t + W_h^T da_{t+1}) ⊙ φ'(a_t), then over all steps at once dW_x = Σ da_t x_t^T,
    dW_h = Σ da_t h_{t-1}^T, db = Σ da_t 1_m, dx_t = W_x^T da_t; dh_0 = W_h^T da_1.
    """
    X, H = cache.X, cache.H
    n_in, T, m = X.shape
    n = W.shape[0]
    W_x, W_h = W[:, :n_in], W[:, n_in:]
    dA = np.empty((n, T, m), dtype=W.dtype)
    for t in range(T - 1, -1, -1):
        dh = dH[:, t, :] if t == T - 1 else dH[:, t, :] + W_h.T @ dA[:, t + 1, :]
        h = H[t]
        if cache.nonlinearity == "tanh":
            np.multiply(dh, (1.0 - h) * (1.0 + h), out=dA[:, t, :])
        else:
            np.multiply(dh, h > 0, out=dA[:, t, :])
    dA_flat = dA.reshape(n, T * m)
    dW = np.empty_like(W)
    dW[:, :n_in] = dA_flat @ X.reshape(n_in, T * m).T
    dW[:, n_in:] = dA[:, 0, :] @ cache.h0.T
    if T > 1:
        H_prev = H[:-1].transpose(1, 0, 2).reshape(n, (T - 1) * m)  # h_1..h_{T-1}, one copy
        dW[:, n_in:] += dA_flat[:, m:] @ H_prev.T
    db = dA_flat.sum(axis=1, keepdims=True)
    dX = (W_x.T @ dA_flat).reshape(n_in, T, m)
    dh0 = W_h.T @ dA[:, 0, :]
    return dX, dW, db, dh0


def _sequence_examples(
    ids: tuple[str, ...], state_ids: tuple[str, ...], seeds: int = 0, **kwargs: Any
) -> tuple[Example, ...]:
    """make check's cases of a recurrent layer: T = 1..8 from the zero state, three from a given
    h0 (its gradient checked too), one reused across batch sizes, one in float32; ``seeds``
    shifts every seed (a relu RNN's: seeds at which no case has every unit off)."""
    sizes = ((1, 1, 1, 1, 0), (3, 2, 2, 3, 1), (2, 3, 3, 2, 2), (2, 2, 5, 2, 0), (3, 3, 8, 2, 1))
    configs = tuple((n_in, h, T, m, seed + seeds) for n_in, h, T, m, seed in sizes)
    label = "".join(f" {k}={v}" for k, v in kwargs.items())
    return (
        *(
            Example(
                f"n_in={n_in} n_hidden={h} T={T} m={m} seed={seed}{label}",
                (n_in, T, m),
                (n_in, h),
                kwargs,
                seed=seed,
                specs=ids,
            )
            for n_in, h, T, m, seed in configs
        ),
        *(
            Example(
                f"{n_in}->{h} T={T} m={m} from h0{label}",
                (n_in, T, m),
                (n_in, h),
                kwargs,
                seed=seed,
                inputs={"h0": (h, m)},
                specs=(*ids, *state_ids),
            )
            for n_in, h, T, m, seed in (
                (2, 3, 1, 2, seeds),
                (3, 2, 4, 3, 1 + seeds),
                (2, 3, 7, 2, 2 + seeds),
            )
        ),
        Example(
            f"2x3x2 after a batch of m=3{label}",
            (2, 3, 2),
            (2, 3),
            kwargs,
            after_other_batch=True,
            specs=ids,
        ),
        Example(
            f"n_in=2 n_hidden=3 T=4 m=2{label}",
            (2, 4, 2),
            (2, 3),
            kwargs,
            float32=True,
            specs=ids,
        ),
    )


def _kit_sums(v: Values, gates: int) -> dict[str, int]:
    """TEST-TOL's K: ``gates`` blocks, T steps, sums over n_in + n_hidden + 2 terms (the
    parameters' gradients: m more)."""
    K = gates * v["T"] * (v["n_in"] + v["n_hidden"] + 2)
    keys = ("dW", "db", "db_ih", "db_hh")
    return {"Y": K, "dX": K, "dh0": K, **dict.fromkeys(keys, K * v["m"])}


def _kit_terms(X: FloatArray, dY: FloatArray, ref: Mapping[str, FloatArray]) -> dict[str, Any]:
    """TEST-TOL-TERMS: each quantity's M is the larger of its own magnitude and
    max |dY| T max(1, |X|) max(1, |Y|) (a relu RNN's states are not bounded by 1)."""
    top = max(1.0, float(np.abs(ref["Y"]).max()))
    big = float(np.abs(dY).max(initial=0.0)) * X.shape[1] * max(1.0, float(np.abs(X).max())) * top
    out: dict[str, Any] = {"Y": np.asarray(top)}
    for key, value in ref.items():
        if key.startswith("d"):
            out[key] = np.asarray(max(big, float(np.abs(value).max(initial=0.0))))
    return out


def _torch_recurrent(
    torch: Any, kind: str, config: Mapping[str, Any], X: Any, arrays: Mapping[str, Any]
) -> Any:
    """PyTorch's nn.RNN / nn.GRU on refnn's tensors (mapping in specs/recurrent.md)."""
    n, h = config["n_in"], config["n_hidden"]
    W = arrays["W"]
    if kind == "GRU":
        module = torch.nn.GRU(n, h, dtype=X.dtype)
        b_ih, b_hh = arrays["b_ih"][:, 0], arrays["b_hh"][:, 0]
    else:
        module = torch.nn.RNN(n, h, nonlinearity=config["nonlinearity"], dtype=X.dtype)
        b_ih = arrays["b"][:, 0]
        b_hh = torch.zeros_like(b_ih)
    weights = {
        "weight_ih_l0": W[:, :n],
        "weight_hh_l0": W[:, n:],
        "bias_ih_l0": b_ih,
        "bias_hh_l0": b_hh,
    }
    state = arrays["h0"].T.unsqueeze(0) if "h0" in arrays else None
    Y = torch.func.functional_call(module, weights, (X.permute(1, 2, 0), state))[0]
    return Y.permute(2, 0, 1)  # (T, m, h) -> (h, T, m)


#: The spec IDs make check verifies on every RNN case (the state's with a given h0).
RNN_IDS = ("RNN-FWD", "RNN-BPTT", "RNN-DW", "RNN-DB", "RNN-DX")
RNN_STATE_IDS = ("RNN-STATE-INIT", "RNN-DH0")


@register
class RNN(Layer[RNNCache]):
    """Vanilla (Elman) recurrent layer returning all hidden states H (n_hidden, T, m).

    Parameters
    ----------
    n_in, n_hidden : int
        Input features per step and hidden units.
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG).
    nonlinearity : {"tanh", "relu"}
        φ in h_t = φ(W_x x_t + W_h h_{t-1} + b) (RNN-FWD).
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "W" (n_hidden, n_in + n_hidden) = [W_x | W_h] and "b" (n_hidden, 1). PyTorch's
        ``torch.nn.RNN``: ``weight_ih_l0`` = W[:, :n_in], ``weight_hh_l0`` = W[:, n_in:],
        ``bias_ih_l0 + bias_hh_l0`` = b[:, 0] (specs/recurrent.md).
    input_grads : dict
        "h0" (n_hidden, m) = ∂J/∂h_0 after ``backward`` (RNN-DH0), whether h0 was given or not.

    Notes
    -----
    Spec: RNN-INIT

    X must have shape (n_in, T, m) with T >= 1 (NOTE-AXES); h0, when given, (n_hidden, m),
    validated like X and never modified (RNN-STATE-INIT: zeros otherwise).
    """

    takes = Input(ndim=3, leading=("n_in",), layout="n_in x T x m", nonempty={1: STEPS})
    extra_inputs = {
        "h0": Input(ndim=2, leading=("n_hidden",), layout="n_hidden x m", name="h0"),
    }
    specs = {
        "Y": ("RNN-FWD",),
        "dX": ("RNN-DX", "RNN-BPTT"),
        "dW": ("RNN-DW", "RNN-BPTT"),
        "db": ("RNN-DB", "RNN-BPTT"),
        "dh0": ("RNN-DH0", "RNN-BPTT"),
    }
    keeps = ("X", "h0")
    kit = LayerSpace(
        draws={
            "nonlinearity": Choice(NONLINEARITIES),
            "n_in": Ints(1, 4),
            "n_hidden": Ints(1, 4),
            "T": Ints(1, 6),
            "m": Ints(1, 3),
        },
        input_shape=lambda v: (v["n_in"], v["T"], v["m"]),
        sums=lambda v, s: _kit_sums(v, 1),
        scale="terms",
        terms=lambda v, X, dY, ref: _kit_terms(X, dY, ref),
        bound=2.0,
        param_bound=1.0,
        conventions={"state": ("given", "zero")},  # refnn's given h0, or always zero
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        return _torch_recurrent(torch, "RNN", config, X, arrays)

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        *,
        rng: np.random.Generator,
        nonlinearity: Nonlinearity = "tanh",
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.n_in = positive_int(n_in, "n_in")
        self.n_hidden = positive_int(n_hidden, "n_hidden")
        if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity: Nonlinearity = nonlinearity
        shape = (self.n_hidden, self.n_in + self.n_hidden)
        check_allocatable(shape, self.dtype, "W (n_hidden x (n_in + n_hidden))")
        W = recurrent_init(self.n_in, self.n_hidden, 1, rng=check_rng(rng), dtype=self.dtype)
        self.params = {"W": W, "b": np.zeros((self.n_hidden, 1), dtype=self.dtype)}

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        n, h = config["n_in"], config["n_hidden"]
        return {"W": (h, n + h), "b": (h, 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Every case with tanh, and with relu."""
        return (
            *_sequence_examples(RNN_IDS, RNN_STATE_IDS),
            *_sequence_examples(RNN_IDS, RNN_STATE_IDS, seeds=1, nonlinearity="relu"),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, RNNCache]:
        W, b = self.params["W"], self.params["b"]
        return rnn_forward(X, W, b, inputs.get("h0"), nonlinearity=self.nonlinearity)

    def _backward(
        self, dY: FloatArray, cache: RNNCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        dX, dW, db, dh0 = rnn_backward(dY, self.params["W"], cache)
        return dX, {"W": dW, "b": db}, {"h0": dh0}

    def config(self) -> dict[str, Any]:
        return {
            "n_in": self.n_in,
            "n_hidden": self.n_hidden,
            "nonlinearity": self.nonlinearity,
            **super().config(),
        }


# --- GRU ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GRUCache:
    """What the GRU backward needs: X (n_in, T, m) and h0 (n_h, m) as given (never written);
    step-major H (T, n_h, m) (h_t at [t - 1]), gates (T, 3 n_h, m) holding r, z, n stacked on
    axis 1, and QN (T, n_h, m) holding q^n_t = W_hn h_{t-1} + b_hn."""

    X: FloatArray
    h0: FloatArray
    H: FloatArray
    gates: FloatArray
    QN: FloatArray


def gru_gates(p: FloatArray, q: FloatArray) -> FloatArray:
    """Step t's gates from p_t = W_ih x_t + b_ih (written over with r, z, n) and
    q_t = W_hh h_{t-1} + b_hh (read only); both (3 n_h, m). Returns ``p``.

    Notes
    -----
    Spec: GRU-GATES

    r = σ(p^r + q^r),  z = σ(p^z + q^z),  n = tanh(p^n + r ⊙ q^n): the reset gate multiplies
    the hidden map with its bias, W_hn h_{t-1} + b_hn.
    """
    n = q.shape[0] // 3
    p[: 2 * n] += q[: 2 * n]
    p[: 2 * n] = sigmoid(p[: 2 * n])  # r and z are adjacent blocks
    p[2 * n :] += p[:n] * q[2 * n :]
    p[2 * n :] = tanh(p[2 * n :])
    return p


def gru_hidden(z: FloatArray, n_gate: FloatArray, h_prev: FloatArray, out: FloatArray) -> None:
    """The new hidden state, written into ``out`` (n_h, m).

    Notes
    -----
    Spec: GRU-HIDDEN

    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1} = n_t + z_t ⊙ (h_{t-1} - n_t).
    """
    np.subtract(h_prev, n_gate, out=out)
    out *= z
    out += n_gate


def gru_forward(
    X: FloatArray,
    W: FloatArray,
    b_ih: FloatArray,
    b_hh: FloatArray,
    h0: FloatArray | None = None,
) -> tuple[FloatArray, GRUCache]:
    """Run the GRU over every time step from h_0.

    Parameters
    ----------
    X : ndarray, shape (n_in, T, m)
    W : ndarray, shape (3 n_h, n_in + n_h)
        [W_ih | W_hh], row blocks r, z, n.
    b_ih, b_hh : ndarray, shape (3 n_h, 1)
    h0 : ndarray, shape (n_h, m), optional
        The initial state; None stands for zeros.

    Returns
    -------
    H : ndarray, shape (n_h, T, m)
        A new array, separate from the cache.
    cache : GRUCache

    Notes
    -----
    Spec: GRU-STATE-INIT, GRU-GATES, GRU-HIDDEN
    """
    n_in, T, m = X.shape
    n = W.shape[0] // 3
    h0 = np.zeros((n, m), dtype=W.dtype) if h0 is None else h0
    W_ih, W_hh = W[:, :n_in], W[:, n_in:]
    gates = input_projection(X, W_ih, b_ih)  # p_t, becomes (r, z, n) step by step
    H = np.empty((T, n, m), dtype=W.dtype)
    QN = np.empty_like(H)
    for t in range(T):
        h_prev = H[t - 1] if t > 0 else h0
        q = W_hh @ h_prev
        q += b_hh
        QN[t] = q[2 * n :]
        g = gru_gates(gates[t], q)
        gru_hidden(g[n : 2 * n], g[2 * n :], h_prev, H[t])
    return _time_major(H), GRUCache(X=X, h0=h0, H=H, gates=gates, QN=QN)


def gru_step_grads(
    dh: FloatArray,
    gates: FloatArray,
    qn: FloatArray,
    h_prev: FloatArray,
    dp: FloatArray,
    dqn: FloatArray,
) -> None:
    """Step t's gate gradients, written into ``dp`` (3 n_h, m) and ``dqn`` (n_h, m).

    dh is the total dh_t, gates step t's (r, z, n) stacked, qn = q^n_t, h_prev = h_{t-1}.
    ``dp`` receives [dr^a; dz^a; dn^a] (for W_ih, b_ih, X); ``dqn`` receives dn^a ⊙ r, the n
    block of dq_t (its r and z blocks equal dp's).

    Notes
    -----
    Spec: GRU-BPTT

    dn^a = dh ⊙ (1 - z) ⊙ (1 - n²),  dz^a = dh ⊙ (h_{t-1} - n) ⊙ z(1 - z),
    dr^a = dn^a ⊙ q^n ⊙ r(1 - r),  dq^n = dn^a ⊙ r.
    """
    k = qn.shape[0]
    r, z, n_gate = gates[:k], gates[k : 2 * k], gates[2 * k :]
    dr, dz, dn = dp[:k], dp[k : 2 * k], dp[2 * k :]
    np.multiply(dh, (1.0 - z) * ((1.0 - n_gate) * (1.0 + n_gate)), out=dn)
    np.multiply(dh, (h_prev - n_gate) * (z * (1.0 - z)), out=dz)
    np.multiply(dn, qn * (r * (1.0 - r)), out=dr)
    np.multiply(dn, r, out=dqn)


def gru_backward(
    dH: FloatArray, W: FloatArray, cache: GRUCache
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Backpropagation through time: (dX, dW, db_ih, db_hh, dh0) from dH = ∂J/∂H (n_h, T, m).

    dH already carries the 1/m of the cost (NOTE-COST) and is not modified; dW has W's shape
    ([dW_ih | dW_hh]), db_ih and db_hh (3 n_h, 1), dh0 (n_h, m).

    Notes
    -----
    Spec: GRU-BPTT, GRU-DW, GRU-DB, GRU-DX, GRU-DH0

    From t = T down to 1: dh_t = dH_t + dh^rec_{t+1}, the gate gradients (gru_step_grads), then
    dh^rec_t = dh_t ⊙ z_t + W_hh^T dq_t. After the loop, over all steps at once:
    dW_ih = Σ dp_t x_t^T, dW_hh = Σ dq_t h_{t-1}^T, db_ih = Σ dp_t 1_m, db_hh = Σ dq_t 1_m,
    dx_t = W_ih^T dp_t; dh_0 = dh^rec_1.
    """
    X, H, gates, QN = cache.X, cache.H, cache.gates, cache.QN
    n_in, T, m = X.shape
    n = H.shape[1]
    W_ih, W_hh = W[:, :n_in], W[:, n_in:]
    dP = np.empty((3 * n, T, m), dtype=W.dtype)
    dQ = np.empty((3 * n, T, m), dtype=W.dtype)  # its r, z rows are dP's, copied after the loop
    dq = np.empty((3 * n, m), dtype=W.dtype)
    dh_rec: FloatArray | None = None
    for t in range(T - 1, -1, -1):
        dh = dH[:, t, :] if dh_rec is None else dH[:, t, :] + dh_rec
        h_prev = H[t - 1] if t > 0 else cache.h0
        dp = dP[:, t, :]
        gru_step_grads(dh, gates[t], QN[t], h_prev, dp, dQ[2 * n :, t, :])
        dq[: 2 * n] = dp[: 2 * n]
        dq[2 * n :] = dQ[2 * n :, t, :]
        dh_rec = W_hh.T @ dq
        dh_rec += dh * gates[t, n : 2 * n]
    assert dh_rec is not None  # T >= 1
    dQ[: 2 * n] = dP[: 2 * n]
    dP_flat, dQ_flat = dP.reshape(3 * n, T * m), dQ.reshape(3 * n, T * m)
    dW = np.empty_like(W)
    dW[:, :n_in] = dP_flat @ X.reshape(n_in, T * m).T
    dW[:, n_in:] = dQ[:, 0, :] @ cache.h0.T
    if T > 1:
        H_prev = H[:-1].transpose(1, 0, 2).reshape(n, (T - 1) * m)  # h_1..h_{T-1}, one copy
        dW[:, n_in:] += dQ_flat[:, m:] @ H_prev.T
    db_ih = dP_flat.sum(axis=1, keepdims=True)
    db_hh = dQ_flat.sum(axis=1, keepdims=True)
    dX = (W_ih.T @ dP_flat).reshape(n_in, T, m)
    return dX, dW, db_ih, db_hh, dh_rec


#: The spec IDs make check verifies on every GRU case (the state's with a given h0).
GRU_IDS = ("GRU-GATES", "GRU-HIDDEN", "GRU-BPTT", "GRU-DW", "GRU-DB", "GRU-DX")
GRU_STATE_IDS = ("GRU-STATE-INIT", "GRU-DH0")
#: The GRU's row blocks, for the kit's messages.
GRU_GATES = ("reset gate r", "update gate z", "new gate n")


@register
class GRU(Layer[GRUCache]):
    """Gated recurrent unit with PyTorch's equations, returning all hidden states (n_h, T, m).

    Parameters
    ----------
    n_in, n_hidden : int
        Input features per step and hidden units.
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG).
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "W" (3 n_hidden, n_in + n_hidden) = [W_ih | W_hh], "b_ih" and "b_hh" (3 n_hidden, 1),
        gates stacked reset, update, new (r, z, n) as in PyTorch. ``torch.nn.GRU``:
        ``weight_ih_l0`` = W[:, :n_in], ``weight_hh_l0`` = W[:, n_in:], ``bias_ih_l0`` =
        b_ih[:, 0], ``bias_hh_l0`` = b_hh[:, 0] (specs/recurrent.md). The two biases of the n
        block differ: n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn)) (GRU-GATES).
    input_grads : dict
        "h0" (n_hidden, m) = ∂J/∂h_0 after ``backward`` (GRU-DH0), whether h0 was given or not.

    Notes
    -----
    Spec: GRU-INIT

    X must have shape (n_in, T, m) with T >= 1 (NOTE-AXES); h0, when given, (n_hidden, m),
    validated like X and never modified (GRU-STATE-INIT: zeros otherwise).
    """

    takes = Input(ndim=3, leading=("n_in",), layout="n_in x T x m", nonempty={1: STEPS})
    extra_inputs = {
        "h0": Input(ndim=2, leading=("n_hidden",), layout="n_hidden x m", name="h0"),
    }
    specs = {
        "Y": ("GRU-GATES", "GRU-HIDDEN"),
        "dX": ("GRU-DX", "GRU-BPTT"),
        "dW": ("GRU-DW", "GRU-BPTT"),
        "db_ih": ("GRU-DB", "GRU-BPTT"),
        "db_hh": ("GRU-DB", "GRU-BPTT"),
        "dh0": ("GRU-DH0", "GRU-BPTT"),
    }
    keeps = ("X", "h0")
    kit = LayerSpace(
        draws={"n_in": Ints(1, 4), "n_hidden": Ints(1, 4), "T": Ints(1, 6), "m": Ints(1, 3)},
        input_shape=lambda v: (v["n_in"], v["T"], v["m"]),
        sums=lambda v, s: _kit_sums(v, 3),
        scale="terms",
        terms=lambda v, X, dY, ref: _kit_terms(X, dY, ref),
        bound=2.0,
        param_bound=1.0,
        units={k: GRU_GATES for k in ("W", "b_ih", "b_hh")},
        conventions={"state": ("given", "zero")},  # refnn's given h0, or always zero
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        return _torch_recurrent(torch, "GRU", config, X, arrays)

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        *,
        rng: np.random.Generator,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.n_in = positive_int(n_in, "n_in")
        self.n_hidden = positive_int(n_hidden, "n_hidden")
        shape = (3 * self.n_hidden, self.n_in + self.n_hidden)
        check_allocatable(shape, self.dtype, "W (3 n_hidden x (n_in + n_hidden))")
        W = recurrent_init(self.n_in, self.n_hidden, 3, rng=check_rng(rng), dtype=self.dtype)
        zeros = np.zeros((3 * self.n_hidden, 1), dtype=self.dtype)
        self.params = {"W": W, "b_ih": zeros, "b_hh": zeros.copy()}

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        n, h = config["n_in"], config["n_hidden"]
        return {"W": (3 * h, n + h), "b_ih": (3 * h, 1), "b_hh": (3 * h, 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return _sequence_examples(GRU_IDS, GRU_STATE_IDS)

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, GRUCache]:
        p = self.params
        return gru_forward(X, p["W"], p["b_ih"], p["b_hh"], inputs.get("h0"))

    def _backward(
        self, dY: FloatArray, cache: GRUCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        dX, dW, db_ih, db_hh, dh0 = gru_backward(dY, self.params["W"], cache)
        return dX, {"W": dW, "b_ih": db_ih, "b_hh": db_hh}, {"h0": dh0}

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_hidden": self.n_hidden, **super().config()}
