"""Embedding against torch.nn.Embedding in float64: Y and the table's gradient, repeated
indices included. torch's ``weight`` (V x d) is refnn's W (d x V) transposed; torch's output
(*X.shape, d) is refnn's Y (d, *X.shape) with the vector axis moved last."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings

from refnn import Embedding
from refnn.types import FloatArray
from tests.test_embedding import lookups

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch


@pytest.mark.spec("EMBED-FWD", "EMBED-DW")
@given(case=lookups())
@settings(max_examples=30)
def test_embedding_matches_torch_float64(
    case: tuple[npt.NDArray[np.int64], FloatArray, FloatArray],
) -> None:
    X, W, dY = case
    layer = Embedding(W.shape[1], W.shape[0], rng=np.random.default_rng(0))
    layer.params["W"][...] = W
    Y = layer.forward(X)
    layer.backward(dY)
    net = torch.nn.Embedding(W.shape[1], W.shape[0], dtype=torch.float64)
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(W.T.copy()))
    out = net(torch.from_numpy(X))  # (*X.shape, d)
    (out * torch.from_numpy(np.moveaxis(dY, 0, -1).copy())).sum().backward()
    np.testing.assert_array_equal(Y, np.moveaxis(out.detach().numpy(), -1, 0))
    expected = net.weight.grad.numpy().T
    err = np.max(np.abs(layer.grads["W"] - expected)) / max(np.max(np.abs(expected)), 1e-300)
    assert err <= 1e-12
