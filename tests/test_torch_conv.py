"""Conv2D, MaxPool2D and AvgPool2D against PyTorch CPU in float64 (skipped without torch).

PyTorch lays images out N x C x H x W; refnn puts examples last (C x H x W x m), so arrays are
transposed with (3, 0, 1, 2) on the way in and (1, 2, 3, 0) on the way out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refnn import AvgPool2D, Conv2D, MaxPool2D
from refnn.types import FloatArray
from tests.oracles.conv import rel_diff

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch
RTOL = 1e-12


def normal(seed: int, *shape: int) -> FloatArray:
    return np.random.default_rng(seed).standard_normal(shape)


def to_torch(X: FloatArray, grad: bool = True) -> Any:
    return torch.tensor(np.ascontiguousarray(X.transpose(3, 0, 1, 2)), requires_grad=grad)


def from_torch(T: Any) -> FloatArray:
    out: FloatArray = T.detach().numpy().transpose(1, 2, 3, 0)
    return out


CONV_CONFIGS = [
    # C, F, H, W, kernel, stride, padding, m
    (3, 4, 8, 8, (3, 3), (1, 1), (1, 1), 5),
    (2, 3, 7, 9, (3, 2), (2, 1), (0, 2), 3),
    (1, 2, 9, 9, (2, 2), (3, 3), (0, 0), 4),  # stride > kernel
    (2, 2, 4, 5, (6, 7), (1, 1), (1, 1), 2),  # kernel = padded input
    (4, 3, 6, 6, (1, 1), (2, 2), (1, 1), 2),
    (3, 8, 16, 16, (5, 5), (2, 2), (2, 2), 4),
    (5, 6, 9, 10, (3, 3), (1, 1), (0, 0), 3),  # Winograd (the default for 3x3, stride 1)
    (4, 3, 7, 6, (3, 3), (1, 1), (2, 2), 2),
]


@pytest.mark.spec("CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX", "WINO-FWD", "WINO-DW", "WINO-DX")
@pytest.mark.parametrize("algorithm", ["auto", "direct"])
@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_conv2d_matches_torch_conv2d(config: tuple[Any, ...], algorithm: str) -> None:
    C, F, H, W, kernel, stride, padding, m = config
    layer = Conv2D(
        C,
        F,
        kernel,
        stride=stride,
        padding=padding,
        rng=np.random.default_rng(0),
        algorithm=algorithm,
    )
    layer.params["b"][...] = normal(1, F, 1)
    X = normal(2, C, H, W, m)
    Z = layer.forward(X)
    dZ = normal(3, *Z.shape)
    dX = layer.backward(dZ)

    Xt = to_torch(X)
    Wt = torch.tensor(layer.params["W"], requires_grad=True)
    bt = torch.tensor(layer.params["b"][:, 0], requires_grad=True)
    Zt = torch.nn.functional.conv2d(Xt, Wt, bt, stride=stride, padding=padding)
    Zt.backward(torch.tensor(np.ascontiguousarray(dZ.transpose(3, 0, 1, 2))))
    assert rel_diff(Z, from_torch(Zt)) <= RTOL
    assert rel_diff(dX, from_torch(Xt.grad)) <= RTOL
    assert rel_diff(layer.grads["W"], Wt.grad.numpy()) <= RTOL
    assert rel_diff(layer.grads["b"], bt.grad.numpy()[:, None]) <= RTOL


POOL_CONFIGS = [
    # C, H, W, kernel, stride, m
    (3, 8, 8, (2, 2), (2, 2), 4),
    (2, 7, 9, (3, 3), (1, 1), 3),  # overlapping
    (2, 9, 8, (2, 3), (3, 4), 2),  # gaps
    (1, 5, 5, (5, 5), (1, 1), 3),  # window = input
]


@pytest.mark.spec("MAXPOOL-FWD", "MAXPOOL-BWD", "AVGPOOL-FWD", "AVGPOOL-BWD")
@pytest.mark.parametrize("config", POOL_CONFIGS, ids=str)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pools_match_torch(config: tuple[Any, ...], kind: str) -> None:
    C, H, W, kernel, stride, m = config
    layer = MaxPool2D(kernel, stride=stride) if kind == "max" else AvgPool2D(kernel, stride=stride)
    X = normal(0, C, H, W, m)
    A = layer.forward(X)
    dA = normal(1, *A.shape)
    dX = layer.backward(dA)
    Xt = to_torch(X)
    pool = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    At = pool(Xt, kernel, stride)
    At.backward(torch.tensor(np.ascontiguousarray(dA.transpose(3, 0, 1, 2))))
    assert rel_diff(A, from_torch(At)) <= RTOL
    assert rel_diff(dX, from_torch(Xt.grad)) <= RTOL


@pytest.mark.spec("MAXPOOL-FWD", "MAXPOOL-BWD")
def test_max_pool_ties_follow_torch() -> None:
    # integer inputs: many exact ties; both send the gradient to the first maximum
    X = np.random.default_rng(5).integers(0, 2, (2, 6, 6, 3)).astype(np.float64)
    layer = MaxPool2D(3, stride=1)
    A = layer.forward(X)
    dA = normal(6, *A.shape)
    dX = layer.backward(dA)
    Xt = to_torch(X)
    At = torch.nn.functional.max_pool2d(Xt, 3, 1)
    At.backward(torch.tensor(np.ascontiguousarray(dA.transpose(3, 0, 1, 2))))
    np.testing.assert_array_equal(A, from_torch(At))
    assert rel_diff(dX, from_torch(Xt.grad)) <= RTOL
