"""Attention against PyTorch in float64: ``F.scaled_dot_product_attention`` and
``nn.MultiheadAttention``, outputs and every gradient, with masks and with PyTorch's drawn dropout
mask reproduced (MHA-TORCH, ATTN-MASK).

Mapping (specs/attention.md): refnn's Q (d, T, m) is torch's (m, T, d) = Q.transpose(2, 1, 0);
nn.MultiheadAttention's query (T, m, E) is X.transpose(1, 2, 0). Boolean masks: refnn and
F.scaled_dot_product_attention take True = may attend, nn.MultiheadAttention's attn_mask takes
True = NOT allowed (pass ~M), its key_padding_mask (m, S) True = padding. Dropout: PyTorch draws
its keep-mask as F.dropout of a (m, [h,] T, S) tensor from its global generator; re-seeding and
calling F.dropout on ones reproduces it, and refnn's keep is that mask transposed to
([h,] T, S, m). Fully masked rows (ATTN-EMPTY-ROW): F.scaled_dot_product_attention and
nn.MultiheadAttention(need_weights=False) give 0 as refnn does (PyTorch 2.13), so every row is
compared; nn.MultiheadAttention with need_weights=True gives NaN there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import MultiHeadAttention, ScaledDotProductAttention
from refnn.attention import causal_mask, mha_params_from_torch, mha_params_to_torch
from refnn.testing.strategies import arrays
from refnn.types import FloatArray

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)
F = torch.nn.functional

pytestmark = pytest.mark.torch

TOL = 1e-12


def rel_err(actual: FloatArray, expected: FloatArray) -> float:
    """max |actual - expected| / max(1, max |expected|)."""
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return float(np.max(np.abs(actual - expected), initial=0.0)) / scale


def _t(a: FloatArray, *order: int) -> Any:
    return torch.tensor(np.ascontiguousarray(a.transpose(*order)), requires_grad=True)


def _np(t: Any, *order: int) -> FloatArray:
    out: FloatArray = t.detach().permute(*order).numpy().copy()
    return out


@st.composite
def sdpa_problems(draw: st.DrawFn) -> dict[str, Any]:
    d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    T, S, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    bits = draw(st.lists(st.booleans(), min_size=T * S * m, max_size=T * S * m))
    return {
        "Q": draw(arrays((d, T, m), bound=2.0)),
        "K": draw(arrays((d, S, m), bound=2.0)),
        "V": draw(arrays((dv, S, m), bound=2.0)),
        "dO": draw(arrays((dv, T, m), bound=2.0)),
        "mask": draw(st.sampled_from([None, "shared", "per example"])),
        "bits": ~np.array(bits).reshape(T, S, m),
        "causal": draw(st.booleans()),
        "scale": draw(st.sampled_from([None, 0.3])),
    }


@pytest.mark.spec(
    "ATTN-SCORES",
    "ATTN-MASK",
    "ATTN-SOFTMAX",
    "ATTN-EMPTY-ROW",
    "ATTN-OUT",
    "ATTN-DQ",
    "ATTN-DK",
    "ATTN-DV",
    "ATTN-DSCORES",
)
@given(pr=sdpa_problems())
@settings(max_examples=20)
def test_scaled_dot_product_attention_matches_torch(pr: dict[str, Any]) -> None:
    T, S, m = pr["bits"].shape
    mask = {None: None, "shared": pr["bits"][:, :, 0].copy(), "per example": pr["bits"]}[pr["mask"]]
    allowed = (
        np.ones((T, S, m), bool)
        if mask is None
        else np.broadcast_to(mask if mask.ndim == 3 else mask[:, :, None], (T, S, m)).copy()
    )
    if pr["causal"]:
        allowed &= causal_mask(T, S)[:, :, None]
    layer = ScaledDotProductAttention(
        pr["Q"].shape[0], pr["V"].shape[0], scale=pr["scale"], causal=pr["causal"]
    )
    Y = layer.forward(pr["Q"], K=pr["K"], V=pr["V"], mask=mask)
    dQ = layer.backward(pr["dO"])
    q, k, v = _t(pr["Q"], 2, 1, 0), _t(pr["K"], 2, 1, 0), _t(pr["V"], 2, 1, 0)
    attn_mask = None
    if mask is not None or pr["causal"]:  # torch: attn_mask and is_causal do not combine
        attn_mask = torch.tensor(np.ascontiguousarray(allowed.transpose(2, 0, 1)))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=pr["scale"])
    ok = allowed.any(axis=1)  # (T, m): rows with a key
    expect = _np(out, 2, 1, 0)
    assert rel_err(Y, expect) < TOL
    assert np.all(Y[:, ~ok] == 0.0) and np.all(expect[:, ~ok] == 0.0)  # ATTN-EMPTY-ROW
    (out * torch.tensor(pr["dO"].transpose(2, 1, 0).copy())).sum().backward()
    for got, t in ((dQ, q), (layer.input_grads["K"], k), (layer.input_grads["V"], v)):
        assert rel_err(got, _np(t.grad, 2, 1, 0)) < TOL


@pytest.mark.spec("ATTN-DROPOUT", "ATTN-DV", "ATTN-DSCORES")
@given(
    Q=arrays((2, 4, 3), bound=2.0),
    K=arrays((2, 5, 3), bound=2.0),
    V=arrays((3, 5, 3), bound=2.0),
    p=st.sampled_from([0.2, 0.5]),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=10)
def test_torchs_dropout_draw_is_reproduced_exactly(
    Q: FloatArray, K: FloatArray, V: FloatArray, p: float, seed: int
) -> None:
    """``seed`` seeds PyTorch's own generator (the run being reproduced), not refnn's data."""
    q, k, v = _t(Q, 2, 1, 0), _t(K, 2, 1, 0), _t(V, 2, 1, 0)
    torch.manual_seed(seed)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    torch.manual_seed(seed)
    keep = F.dropout(torch.ones(3, 4, 5, dtype=torch.float64), p) != 0
    U = np.random.default_rng(1).standard_normal((3, 4, 3))
    (out * torch.tensor(U.transpose(2, 1, 0).copy())).sum().backward()
    layer = ScaledDotProductAttention(2, 3, dropout=p, rng=np.random.default_rng(0))
    layer.freeze_mask(keep.permute(1, 2, 0).numpy().copy())
    Y = layer.forward(Q, K=K, V=V)
    assert rel_err(Y, _np(out, 2, 1, 0)) < TOL
    dQ = layer.backward(U)
    for got, t in ((dQ, q), (layer.input_grads["K"], k), (layer.input_grads["V"], v)):
        assert rel_err(got, _np(t.grad, 2, 1, 0)) < TOL


@st.composite
def mha_problems(draw: st.DrawFn) -> dict[str, Any]:
    h, dh = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    E = h * dh
    T, S, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    bits = draw(st.lists(st.booleans(), min_size=T * S, max_size=T * S))
    pad = draw(st.lists(st.booleans(), min_size=S * m, max_size=S * m))
    return {
        "h": h,
        "X": draw(arrays((E, T, m), bound=2.0)),
        "K": draw(arrays((E, S, m), bound=2.0)),
        "V": draw(arrays((E, S, m), bound=2.0)),
        "dY": draw(arrays((E, T, m), bound=2.0)),
        "self": draw(st.booleans()),
        "mask": draw(st.sampled_from([None, "attn_mask", "key_padding_mask"])),
        "bits": ~np.array(bits).reshape(T, S),
        "pad": np.array(pad).reshape(m, S),  # True = padding (torch's key_padding_mask)
        "dropout": draw(st.sampled_from([0.0, 0.3])),
        "seed": draw(st.integers(0, 2**16)),
    }


@pytest.mark.spec(
    "MHA-TORCH",
    "MHA-INIT",
    "MHA-PROJ",
    "MHA-HEADS",
    "MHA-OUT",
    "MHA-DOUT",
    "MHA-DPROJ",
    "ATTN-MASK",
    "ATTN-DROPOUT",
    "ATTN-SELF",
)
@given(pr=mha_problems())
@settings(max_examples=20)
def test_multi_head_attention_matches_torch(pr: dict[str, Any]) -> None:
    X, h, own = pr["X"], pr["h"], pr["self"]
    E, T, m = X.shape
    Kin, Vin = (X, X) if own else (pr["K"], pr["V"])
    S = Kin.shape[1]
    net = torch.nn.MultiheadAttention(E, h, dropout=pr["dropout"], dtype=torch.float64)
    net.train()
    layer = MultiHeadAttention(E, h, dropout=pr["dropout"], rng=np.random.default_rng(0))
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    mapped = mha_params_from_torch(
        state["in_proj_weight"],
        state["in_proj_bias"],
        state["out_proj.weight"],
        state["out_proj.bias"],
    )
    for key, value in mapped.items():
        layer.params[key][...] = value
    mask: np.ndarray[Any, Any] | None = None
    kwargs: dict[str, Any] = {}
    if pr["mask"] == "attn_mask" and pr["bits"].shape == (T, S):
        mask = pr["bits"]
        kwargs["attn_mask"] = torch.tensor(~mask)  # torch: True = NOT allowed
    elif pr["mask"] == "key_padding_mask" and pr["pad"].shape == (m, S):
        mask = np.broadcast_to(~pr["pad"].T[None], (T, S, m)).copy()
        kwargs["key_padding_mask"] = torch.tensor(pr["pad"])
    x = _t(X, 1, 2, 0)
    kt, vt = (x, x) if own else (_t(Kin, 1, 2, 0), _t(Vin, 1, 2, 0))
    torch.manual_seed(pr["seed"])
    out, _ = net(x, kt, vt, need_weights=False, **kwargs)
    if pr["dropout"]:
        torch.manual_seed(pr["seed"])
        keep = F.dropout(torch.ones(m, h, T, S, dtype=torch.float64), pr["dropout"]) != 0
        layer.freeze_mask(keep.permute(1, 2, 3, 0).numpy().copy())
    inputs = {} if own else {"K": Kin, "V": Vin}
    Y = layer.forward(X, mask=mask, **inputs)
    assert rel_err(Y, _np(out, 2, 0, 1)) < TOL
    (out * torch.tensor(pr["dY"].transpose(1, 2, 0).copy())).sum().backward()
    dX = layer.backward(pr["dY"])
    grads = {k: v.grad.numpy() for k, v in net.named_parameters()}
    mine = mha_params_to_torch(layer.grads)
    for key, value in mine.items():
        assert rel_err(value, grads[key]) < TOL, key
    assert rel_err(dX, _np(x.grad, 2, 0, 1)) < TOL
    if not own:
        assert rel_err(layer.input_grads["K"], _np(kt.grad, 2, 0, 1)) < TOL
        assert rel_err(layer.input_grads["V"], _np(vt.grad, 2, 0, 1)) < TOL


@pytest.mark.spec("MHA-INIT")
def test_initialisation_has_torchs_distribution_bounds() -> None:
    E = 16
    net = torch.nn.MultiheadAttention(E, 4, dtype=torch.float64)
    ours = MultiHeadAttention(E, 4, rng=np.random.default_rng(0))
    bound_in = math.sqrt(6.0 / (4 * E))
    assert float(net.in_proj_weight.detach().abs().max()) <= bound_in
    assert float(np.abs(ours.params["W_in"]).max()) <= bound_in
    for w in (net.out_proj.weight.detach().numpy(), ours.params["W_out"]):
        assert np.abs(w).max() <= 1 / math.sqrt(E)
    assert not net.in_proj_bias.detach().numpy().any() and not ours.params["b_in"].any()
