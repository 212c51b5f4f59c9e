"""TemporalDense and TemporalSoftmaxCrossEntropy against PyTorch in float64.

TemporalDense on X (n_in, T, m) is ``torch.nn.functional.linear`` on X.transpose(2, 1, 0)
(m, T, n_in) with weight W and bias b[:, 0]. The loss with ``reduction="per_token"`` is
``CrossEntropyLoss(ignore_index=-100)`` (mean over the counted tokens) on logits (m k, ...)
laid out as (m T, k); ``"per_sequence"`` is ``reduction="sum"`` divided by m.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import TemporalDense, TemporalSoftmaxCrossEntropy
from refnn.testing.strategies import arrays, sizes
from refnn.types import FloatArray
from tests.test_temporal import Tokens, tokens

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch


def rel_err(actual: FloatArray, expected: FloatArray) -> float:
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


@pytest.mark.spec("TAFFINE-FWD", "TAFFINE-DW", "TAFFINE-DB", "TAFFINE-DX")
@given(data=st.data())
@settings(max_examples=20)
def test_temporal_dense_matches_torch_linear(data: st.DataObject) -> None:
    n_in, n_out, T, m = (data.draw(sizes(5)) for _ in range(4))
    X = data.draw(arrays((n_in, T, m)), label="X")
    dZ = data.draw(arrays((n_out, T, m)), label="dZ")
    layer = TemporalDense(n_in, n_out, rng=np.random.default_rng(0))
    layer.params["b"][...] = data.draw(arrays((n_out, 1)), label="b")
    Z = layer.forward(X)
    dX = layer.backward(dZ)
    tX = torch.from_numpy(np.ascontiguousarray(X.transpose(2, 1, 0))).requires_grad_(True)
    tW = torch.from_numpy(layer.params["W"].copy()).requires_grad_(True)
    tb = torch.from_numpy(layer.params["b"][:, 0].copy()).requires_grad_(True)
    out = torch.nn.functional.linear(tX, tW, tb)  # (m, T, n_out)
    (out * torch.from_numpy(np.ascontiguousarray(dZ.transpose(2, 1, 0)))).sum().backward()
    pairs = [
        (Z, out.detach().numpy().transpose(2, 1, 0)),
        (dX, tX.grad.numpy().transpose(2, 1, 0)),
        (layer.grads["W"], tW.grad.numpy()),
        (layer.grads["b"], tb.grad.numpy()[:, None]),
    ]
    for ours, theirs in pairs:
        assert rel_err(ours, theirs) <= 1e-12


@pytest.mark.spec("TSCE-COST", "TSCE-GRAD")
@given(p=tokens(), per_token=st.booleans())
@settings(max_examples=30)
def test_loss_matches_torch_cross_entropy_with_ignore_index(p: Tokens, per_token: bool) -> None:
    if per_token and not p.mask.any():
        return  # torch's mean over no token is NaN; refnn's 0 is tested in test_temporal.py
    y = np.where(p.mask, p.y, -100)
    loss = TemporalSoftmaxCrossEntropy(
        ignore_index=-100, reduction="per_token" if per_token else "per_sequence"
    )
    J = loss.forward(p.Z, y)
    dZ = loss.backward()
    k, T, m = p.Z.shape
    logits = torch.from_numpy(np.ascontiguousarray(p.Z.transpose(2, 1, 0).reshape(m * T, k)))
    logits.requires_grad_(True)
    target = torch.from_numpy(np.ascontiguousarray(y.T.reshape(m * T)))
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100, reduction="mean" if per_token else "sum")
    J_torch = ce(logits, target) / (1 if per_token else m)
    J_torch.backward()
    assert J == pytest.approx(float(J_torch.detach()), rel=1e-12, abs=1e-300)
    d_torch = logits.grad.numpy().reshape(m, T, k).transpose(2, 1, 0)
    assert float(np.max(np.abs(dZ - d_torch))) <= 1e-12 * max(
        float(np.max(np.abs(d_torch))), 1e-300
    )
