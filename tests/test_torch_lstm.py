"""LSTM against torch.nn.LSTM in float64: H and the gradients of J = Σ U ⊙ H.

Mapping (specs/lstm.md): both stack the gates (i, f, g, o); torch keeps W_ih, W_hh and two biases
and takes input (T, m, n). So W = [W_ih | W_hh], b = b_ih + b_hh (we set b_hh = 0), and
X (n, T, m) -> X.transpose(1, 2, 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refnn import LSTM
from refnn.types import FloatArray
from tests.strategies import normal, seeds, sizes

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch

ALL_IDS = (
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


def _rel_err(actual: FloatArray, expected: FloatArray) -> float:
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


def _torch_lstm(
    X: FloatArray, W: FloatArray, b: FloatArray, U: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """H, dX, dW, db from torch.nn.LSTM with our parameters loaded."""
    n_in = X.shape[0]
    n_h = W.shape[0] // 4
    net = torch.nn.LSTM(n_in, n_h, num_layers=1, bias=True, dtype=torch.float64)
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(W[:, :n_in]))
        net.weight_hh_l0.copy_(torch.from_numpy(W[:, n_in:]))
        net.bias_ih_l0.copy_(torch.from_numpy(b[:, 0]))
        net.bias_hh_l0.zero_()
    x = torch.from_numpy(np.ascontiguousarray(X.transpose(1, 2, 0))).requires_grad_(True)
    out, _ = net(x)  # (T, m, n_h); zero initial state by default
    J = (out * torch.from_numpy(np.ascontiguousarray(U.transpose(1, 2, 0)))).sum()
    J.backward()
    H = out.detach().numpy().transpose(2, 0, 1)
    dX = x.grad.numpy().transpose(2, 0, 1)
    dW = np.concatenate([net.weight_ih_l0.grad.numpy(), net.weight_hh_l0.grad.numpy()], axis=1)
    db_ih, db_hh = net.bias_ih_l0.grad.numpy(), net.bias_hh_l0.grad.numpy()
    assert _rel_err(db_ih, db_hh) <= 1e-12  # both biases enter a_t alike (up to rounding)
    return H, dX, dW, db_ih[:, None]


@pytest.mark.spec(
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
@given(n_in=sizes, n_h=sizes, T=st.integers(1, 10), m=sizes, seed=seeds)
@settings(max_examples=25)
@example(n_in=6, n_h=6, T=10, m=6, seed=0)
def test_lstm_matches_torch_float64(n_in: int, n_h: int, T: int, m: int, seed: int) -> None:
    layer = LSTM(n_in, n_h, rng=np.random.default_rng(seed))
    layer.params["b"][...] = normal(seed + 2, 4 * n_h, 1, scale=0.5)
    X, U = normal(seed, n_in, T, m), normal(seed + 3, n_h, T, m)
    H = layer.forward(X)
    dX = layer.backward(U)
    H_t, dX_t, dW_t, db_t = _torch_lstm(X, layer.params["W"], layer.params["b"], U)
    assert _rel_err(H, H_t) <= 1e-12
    assert _rel_err(dX, dX_t) <= 1e-12
    assert _rel_err(layer.grads["W"], dW_t) <= 1e-12
    assert _rel_err(layer.grads["b"], db_t) <= 1e-12


@pytest.mark.spec("LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
def test_long_sequence_with_default_init_matches_torch() -> None:
    """T = 50 with the 0/1 initial biases: no drift between the two over many steps."""
    layer = LSTM(4, 5, rng=np.random.default_rng(3))
    X, U = normal(0, 4, 50, 3, scale=2.0), normal(1, 5, 50, 3)
    H = layer.forward(X)
    dX = layer.backward(U)
    H_t, dX_t, dW_t, db_t = _torch_lstm(X, layer.params["W"], layer.params["b"], U)
    assert _rel_err(H, H_t) <= 1e-12 and _rel_err(dX, dX_t) <= 1e-12
    assert _rel_err(layer.grads["W"], dW_t) <= 1e-12 and _rel_err(layer.grads["b"], db_t) <= 1e-12
