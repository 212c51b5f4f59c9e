"""RNN and GRU against torch.nn.RNN and torch.nn.GRU in float64: H and the gradients of
J = Σ U ⊙ H, from a given initial state h0 (its gradient too).

Mapping (specs/recurrent.md): W = [weight_ih_l0 | weight_hh_l0]; the RNN's b = bias_ih_l0 +
bias_hh_l0 (we set bias_hh_l0 = 0), the GRU's b_ih = bias_ih_l0 and b_hh = bias_hh_l0 one to one.
With ``batch_first=True`` torch takes X (m, T, n_in) = X.transpose(2, 1, 0) and h0 (1, m, n_h).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refnn import GRU, RNN
from refnn.types import FloatArray
from tests.oracles.recurrent import RecurrentPoint, recurrent_points

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch

NAMES = ("H", "dX", "dW", "db", "db_hh", "dh0")


def rel_err(actual: FloatArray, expected: FloatArray) -> float:
    """max |actual - expected| / max |expected| (norm-wise: insensitive to tiny entries)."""
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


def torch_run(p: RecurrentPoint, kind: str, zero_state: bool) -> list[FloatArray]:
    """H, dX, dW, db (b_ih), db_hh, dh0 from torch with p's parameters and state."""
    n_in = p.X.shape[0]
    n_h = p.h0.shape[0]
    if kind == "GRU":
        net = torch.nn.GRU(n_in, n_h, batch_first=True, dtype=torch.float64)
    else:
        net = torch.nn.RNN(n_in, n_h, nonlinearity=kind, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(p.W[:, :n_in]))
        net.weight_hh_l0.copy_(torch.from_numpy(p.W[:, n_in:]))
        net.bias_ih_l0.copy_(torch.from_numpy(p.b[:, 0]))
        if kind == "GRU":
            net.bias_hh_l0.copy_(torch.from_numpy(p.b2[:, 0]))
        else:
            net.bias_hh_l0.zero_()

    def leaf(a: FloatArray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(True)

    x = leaf(p.X.T)
    h0 = leaf(np.zeros_like(p.h0).T[None] if zero_state else p.h0.T[None])
    out, _ = net(x, h0)  # (m, T, n_h)
    (out * torch.from_numpy(np.ascontiguousarray(p.dH.T))).sum().backward()
    dW = np.concatenate([net.weight_ih_l0.grad.numpy(), net.weight_hh_l0.grad.numpy()], axis=1)
    return [
        out.detach().numpy().T,
        x.grad.numpy().T,
        dW,
        net.bias_ih_l0.grad.numpy()[:, None],
        net.bias_hh_l0.grad.numpy()[:, None],
        h0.grad.numpy()[0].T,
    ]


def refnn_run(p: RecurrentPoint, kind: str, zero_state: bool) -> list[FloatArray]:
    """The same quantities from refnn's layer (an RNN's db stands for both torch biases')."""
    n_in, n_h = p.X.shape[0], p.h0.shape[0]
    rng = np.random.default_rng(0)
    layer: RNN | GRU
    if kind == "GRU":
        layer = GRU(n_in, n_h, rng=rng)
        layer.params["b_ih"][...], layer.params["b_hh"][...] = p.b, p.b2
    else:
        layer = RNN(n_in, n_h, rng=rng, nonlinearity="relu" if kind == "relu" else "tanh")
        layer.params["b"][...] = p.b
    layer.params["W"][...] = p.W
    H = layer.forward(p.X) if zero_state else layer.forward(p.X, h0=p.h0)
    dX = layer.backward(p.dH)
    g = layer.grads
    db = g["b_ih"] if kind == "GRU" else g["b"]
    db_hh = g["b_hh"] if kind == "GRU" else g["b"]
    return [H, dX, g["W"], db, db_hh, layer.input_grads["h0"]]


def _long(kind: str) -> RecurrentPoint:
    """T = 50 at the layer's own initialisation (zero biases), from the zero state."""
    rng = np.random.default_rng(3)
    gates = 3 if kind == "GRU" else 1
    layer = GRU(4, 5, rng=rng) if kind == "GRU" else RNN(4, 5, rng=rng)
    zero = np.zeros((gates * 5, 1))
    return RecurrentPoint(
        X=2.0 * rng.standard_normal((4, 50, 3)),
        W=layer.params["W"],
        b=zero,
        b2=zero,
        h0=np.zeros((5, 3)),
        dH=rng.standard_normal((5, 50, 3)),
    )


@pytest.mark.spec("GRU-STATE-INIT", "GRU-GATES", "GRU-HIDDEN")
@pytest.mark.spec("GRU-BPTT", "GRU-DW", "GRU-DB", "GRU-DX", "GRU-DH0")
@given(p=recurrent_points(gates=3, max_size=5, max_steps=10), zero_state=st.just(False))
@settings(max_examples=25)
@example(p=_long("GRU"), zero_state=True)  # no drift over many steps
def test_gru_matches_torch_float64(p: RecurrentPoint, zero_state: bool) -> None:
    ours, theirs = refnn_run(p, "GRU", zero_state), torch_run(p, "GRU", zero_state)
    for name, a, b in zip(NAMES, ours, theirs, strict=True):
        assert rel_err(a, b) <= 1e-12, name


@pytest.mark.spec("RNN-STATE-INIT", "RNN-FWD", "RNN-BPTT", "RNN-DW", "RNN-DB", "RNN-DX")
@pytest.mark.spec("RNN-DH0")
@given(
    p=recurrent_points(gates=1, max_size=5, max_steps=10),
    kind=st.sampled_from(["tanh", "relu"]),
)
@settings(max_examples=25)
@example(p=_long("tanh"), kind="tanh")
@example(p=_long("relu"), kind="relu")
def test_rnn_matches_torch_float64(p: RecurrentPoint, kind: str) -> None:
    ours, theirs = refnn_run(p, kind, False), torch_run(p, kind, False)
    for name, a, b in zip(NAMES, ours, theirs, strict=True):
        assert rel_err(a, b) <= 1e-12, name
