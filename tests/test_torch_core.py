"""The dense core against PyTorch in float64: an oracle written by other people.

Dense, Sigmoid, ReLU, binary cross-entropy (both forms) and whole L-layer models: forward values
and every gradient agree with torch.autograd to 1e-12 relative.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import BinaryCrossEntropy, BinaryCrossEntropyWithLogits, Dense, ReLU, Sigmoid, mlp
from refnn.types import FloatArray
from tests.strategies import labels, normal, seeds, sizes

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch


def _t(a: FloatArray) -> Any:  # a torch.Tensor (torch is imported lazily)
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def _close(ours: FloatArray, theirs: Any) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.spec("DENSE-FWD", "DENSE-DW", "DENSE-DB", "DENSE-DX")
@settings(max_examples=25)
@given(n_in=sizes, n_out=sizes, m=sizes, seed=seeds)
def test_dense_matches_torch_linear(n_in: int, n_out: int, m: int, seed: int) -> None:
    layer = Dense(n_in, n_out, rng=np.random.default_rng(seed))
    layer.params["b"][...] = normal(seed + 1, n_out, 1)
    X, U = normal(seed, n_in, m), normal(seed + 2, n_out, m)
    Z = layer.forward(X)
    dX = layer.backward(U)
    Xt, Wt, bt = _t(X.T), _t(layer.params["W"]), _t(layer.params["b"][:, 0])
    Zt = torch.nn.functional.linear(Xt, Wt, bt)  # torch keeps examples first
    (Zt * torch.tensor(U.T)).sum().backward()
    _close(Z, Zt.T)
    _close(dX, Xt.grad.T)
    _close(layer.grads["W"], Wt.grad)
    _close(layer.grads["b"][:, 0], bt.grad)


@pytest.mark.spec("SIGMOID-FWD", "SIGMOID-BWD", "RELU-FWD", "RELU-BWD")
@settings(max_examples=25)
@given(n=sizes, m=sizes, seed=seeds, kind=st.sampled_from(["sigmoid", "relu"]))
def test_activations_match_torch(n: int, m: int, seed: int, kind: str) -> None:
    Z, U = normal(seed, n, m, scale=5.0), normal(seed + 1, n, m)
    layer = Sigmoid() if kind == "sigmoid" else ReLU()
    A = layer.forward(Z)
    dZ = layer.backward(U)
    Zt = _t(Z)
    At = torch.sigmoid(Zt) if kind == "sigmoid" else torch.relu(Zt)
    (At * torch.tensor(U)).sum().backward()
    _close(A, At)
    _close(dZ, Zt.grad)


@pytest.mark.spec("BCE-COST", "BCE-GRAD", "BCE-LOGITS-COST", "BCE-LOGITS-GRAD")
@settings(max_examples=25)
@given(k=sizes, m=sizes, seed=seeds)
def test_binary_cross_entropy_matches_torch(k: int, m: int, seed: int) -> None:
    A = np.random.default_rng(seed).uniform(0.01, 0.99, (k, m))
    Z, Y = normal(seed, k, m, scale=4.0), labels(seed, k, m)
    loss, fused = BinaryCrossEntropy(), BinaryCrossEntropyWithLogits()
    J, J_logits = loss.forward(A, Y), fused.forward(Z, Y)
    At, Zt, Yt = _t(A), _t(Z), torch.tensor(Y)
    # refnn's J sums over the k outputs and averages over the m examples (NOTE-COST)
    Jt = torch.nn.functional.binary_cross_entropy(At, Yt, reduction="sum") / m
    Jt_logits = torch.nn.functional.binary_cross_entropy_with_logits(Zt, Yt, reduction="sum") / m
    (Jt + Jt_logits).backward()
    assert J == pytest.approx(Jt.item(), rel=1e-12)
    assert J_logits == pytest.approx(Jt_logits.item(), rel=1e-12)
    _close(loss.backward(), At.grad)
    _close(fused.backward(), Zt.grad)


@pytest.mark.spec("MODEL-FWD", "MODEL-BWD")
@settings(max_examples=15)
@given(dims=st.lists(sizes, min_size=2, max_size=4), m=sizes, seed=seeds)
def test_l_layer_model_matches_torch(dims: list[int], m: int, seed: int) -> None:
    model = mlp(dims, rng=np.random.default_rng(seed))
    X, Y = normal(seed, dims[0], m), labels(seed, dims[-1], m)
    loss = BinaryCrossEntropy()
    J = loss.forward(model.forward(X), Y)
    dX = model.backward(loss.backward())
    params = [_t(p.value) for p in model.parameters()]
    Xt = _t(X)
    A = Xt
    for i in range(0, len(params), 2):
        A = params[i] @ A + params[i + 1]
        A = torch.relu(A) if i + 2 < len(params) else torch.sigmoid(A)
    Jt = torch.nn.functional.binary_cross_entropy(A, torch.tensor(Y), reduction="sum") / m
    Jt.backward()
    assert J == pytest.approx(Jt.item(), rel=1e-12)
    _close(dX, Xt.grad)
    for p, pt in zip(model.parameters(), params, strict=True):
        _close(p.grad, pt.grad)
