"""LSTM against torch.nn.LSTM in float64: H and the gradients of J = Σ U ⊙ H, from a given state.

Mapping (specs/lstm.md): both stack the gates (i, f, g, o); torch keeps W_ih, W_hh and two biases
and, with ``batch_first=True``, takes input (m, T, n_in) and a state (1, m, n_h). So
W = [W_ih | W_hh], b = b_ih + b_hh (we set b_hh = 0), X (n_in, T, m) -> X.transpose(2, 1, 0) and
h0 (n_h, m) -> h0.T[None].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refnn import LSTM
from refnn.types import FloatArray
from tests.oracles.lstm import LSTMPoint, lstm_points

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch


def rel_err(actual: FloatArray, expected: FloatArray) -> float:
    """max |actual - expected| / max |expected| (norm-wise: insensitive to tiny entries)."""
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


def torch_lstm(p: LSTMPoint) -> list[FloatArray]:
    """H, dX, dW, db, dh0, dc0 from torch.nn.LSTM (batch_first) with p's parameters and state."""
    n_in = p.X.shape[0]
    n_h = p.W.shape[0] // 4
    net = torch.nn.LSTM(n_in, n_h, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(p.W[:, :n_in]))
        net.weight_hh_l0.copy_(torch.from_numpy(p.W[:, n_in:]))
        net.bias_ih_l0.copy_(torch.from_numpy(p.b[:, 0]))
        net.bias_hh_l0.zero_()

    def leaf(a: FloatArray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(True)

    x, h0, c0 = leaf(p.X.T), leaf(p.h0.T[None]), leaf(p.c0.T[None])
    out, _ = net(x, (h0, c0))  # out (m, T, n_h)
    (out * torch.from_numpy(np.ascontiguousarray(p.dH.T))).sum().backward()
    dW = np.concatenate([net.weight_ih_l0.grad.numpy(), net.weight_hh_l0.grad.numpy()], axis=1)
    db_ih, db_hh = net.bias_ih_l0.grad.numpy(), net.bias_hh_l0.grad.numpy()
    assert rel_err(db_ih, db_hh) <= 1e-12  # both biases enter a_t alike (up to rounding)
    return [
        out.detach().numpy().T,
        x.grad.numpy().T,
        dW,
        db_ih[:, None],
        h0.grad.numpy()[0].T,
        c0.grad.numpy()[0].T,
    ]


def refnn_lstm(p: LSTMPoint, *, zero_state: bool = False) -> list[FloatArray]:
    """H, dX, dW, db, dh0, dc0 from refnn.LSTM with p's parameters and state."""
    layer = LSTM(p.X.shape[0], p.W.shape[0] // 4, rng=np.random.default_rng(0))
    layer.params["W"][...], layer.params["b"][...] = p.W, p.b
    H = layer.forward(p.X) if zero_state else layer.forward(p.X, h0=p.h0, c0=p.c0)
    dX = layer.backward(p.dH)
    return [
        H,
        dX,
        layer.grads["W"],
        layer.grads["b"],
        layer.input_grads["h0"],
        layer.input_grads["c0"],
    ]


def _long_sequence_at_default_init() -> LSTMPoint:
    """T = 50 with the 0/1 initial biases and the zero state."""
    rng = np.random.default_rng(3)
    layer = LSTM(4, 5, rng=rng)
    zero = np.zeros((5, 3))
    return LSTMPoint(
        X=2.0 * rng.standard_normal((4, 50, 3)),
        W=layer.params["W"],
        b=layer.params["b"],
        h0=zero,
        c0=zero,
        dH=rng.standard_normal((5, 50, 3)),
    )


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
@given(p=lstm_points(max_size=5, max_steps=10), zero_state=st.just(False))
@settings(max_examples=25)
@example(p=_long_sequence_at_default_init(), zero_state=True)  # no drift over many steps
def test_lstm_matches_torch_float64(p: LSTMPoint, zero_state: bool) -> None:
    """From p's state (every drawn point) and, on the long sequence, with no state given."""
    ours = refnn_lstm(p, zero_state=zero_state)
    for name, a, b in zip(("H", "dX", "dW", "db", "dh0", "dc0"), ours, torch_lstm(p), strict=True):
        assert rel_err(a, b) <= 1e-12, name
