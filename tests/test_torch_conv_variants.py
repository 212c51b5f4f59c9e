"""Dilated, grouped, depthwise Conv2D and ConvTranspose2D against PyTorch CPU in float64
(``F.conv2d(dilation=, groups=)``, ``nn.ConvTranspose2d``); skipped without torch.

PyTorch lays images out N x C x H x W; refnn puts examples last, so arrays are transposed with
(3, 0, 1, 2) on the way in and (1, 2, 3, 0) on the way out. Both layers' W and b map onto
PyTorch's weight and bias unchanged (b[:, 0]).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refnn import Conv2D, ConvTranspose2D
from refnn.types import FloatArray
from tests.oracles.conv import rel_diff

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch
RTOL = 1e-12


def _nchw(X: FloatArray) -> Any:
    return torch.tensor(np.ascontiguousarray(X.transpose(3, 0, 1, 2)), requires_grad=True)


def _ours(T: Any) -> FloatArray:
    out: FloatArray = T.detach().numpy().transpose(1, 2, 3, 0)
    return out


#: C, F, H, W, kernel, stride, padding, dilation, groups, m
CONV_VARIANTS = [
    (3, 4, 9, 8, (3, 3), (1, 1), (2, 2), (2, 2), 1, 3),
    (4, 6, 8, 9, (3, 2), (2, 1), (1, 0), (1, 3), 2, 2),
    (6, 6, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 6, 3),  # depthwise
    (4, 8, 7, 7, (5, 5), (2, 2), (2, 2), (1, 1), 4, 2),  # depthwise, multiplier 2
    (2, 2, 5, 5, (2, 2), (1, 1), (2, 2), (4, 4), 2, 2),  # dilated kernel = padded input
]


@pytest.mark.spec("CONV-DILATION", "CONV-GROUPS")
@pytest.mark.parametrize("config", CONV_VARIANTS, ids=str)
def test_dilated_and_grouped_conv2d_match_torch(config: tuple[Any, ...]) -> None:
    C, F, H, W, kernel, stride, padding, dilation, groups, m = config
    rng = np.random.default_rng(0)
    layer = Conv2D(
        C, F, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, rng=rng
    )
    layer.params["b"][...] = rng.standard_normal((F, 1))
    X = rng.standard_normal((C, H, W, m))
    Z = layer.forward(X)
    dZ = rng.standard_normal(Z.shape)
    dX = layer.backward(dZ)
    Xt = _nchw(X)
    Wt = torch.tensor(layer.params["W"], requires_grad=True)
    bt = torch.tensor(layer.params["b"][:, 0], requires_grad=True)
    Zt = torch.nn.functional.conv2d(
        Xt, Wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    Zt.backward(torch.tensor(np.ascontiguousarray(dZ.transpose(3, 0, 1, 2))))
    assert rel_diff(Z, _ours(Zt)) <= RTOL
    assert rel_diff(dX, _ours(Xt.grad)) <= RTOL
    assert rel_diff(layer.grads["W"], Wt.grad.numpy()) <= RTOL
    assert rel_diff(layer.grads["b"], bt.grad.numpy()[:, None]) <= RTOL


#: C_in, C_out, H, W, kernel, stride, padding, output_padding, dilation, groups, m
TRANSPOSE_CONFIGS = [
    (3, 4, 4, 5, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1, 3),
    (2, 3, 3, 3, (4, 2), (3, 1), (0, 1), (2, 0), (1, 2), 1, 2),
    (4, 6, 5, 4, (3, 3), (1, 2), (2, 0), (0, 1), (2, 1), 2, 2),
    (4, 4, 6, 6, (3, 3), (2, 2), (1, 1), (1, 0), (1, 1), 4, 2),  # depthwise
    (1, 2, 1, 1, (2, 3), (1, 1), (0, 0), (0, 1), (1, 2), 1, 1),
]


@pytest.mark.spec("CONVT-SIZE", "CONVT-FWD", "CONVT-DX", "CONVT-DW", "CONVT-DB")
@pytest.mark.parametrize("config", TRANSPOSE_CONFIGS, ids=str)
def test_conv_transpose2d_matches_torch(config: tuple[Any, ...]) -> None:
    C, F, H, W, kernel, stride, padding, out_pad, dilation, groups, m = config
    rng = np.random.default_rng(1)
    layer = ConvTranspose2D(
        C,
        F,
        kernel,
        stride=stride,
        padding=padding,
        output_padding=out_pad,
        dilation=dilation,
        groups=groups,
        rng=rng,
    )
    layer.params["b"][...] = rng.standard_normal((F, 1))
    X = rng.standard_normal((C, H, W, m))
    Y = layer.forward(X)
    dY = rng.standard_normal(Y.shape)
    dX = layer.backward(dY)
    module = torch.nn.ConvTranspose2d(
        C,
        F,
        kernel,
        stride=stride,
        padding=padding,
        output_padding=out_pad,
        dilation=dilation,
        groups=groups,
    ).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.params["W"]))
        module.bias.copy_(torch.tensor(layer.params["b"][:, 0]))
    Xt = _nchw(X)
    Yt = module(Xt)
    Yt.backward(torch.tensor(np.ascontiguousarray(dY.transpose(3, 0, 1, 2))))
    assert Y.shape == _ours(Yt).shape
    assert rel_diff(Y, _ours(Yt)) <= RTOL
    assert rel_diff(dX, _ours(Xt.grad)) <= RTOL
    assert rel_diff(layer.grads["W"], module.weight.grad.numpy()) <= RTOL
    assert rel_diff(layer.grads["b"], module.bias.grad.numpy()[:, None]) <= RTOL
