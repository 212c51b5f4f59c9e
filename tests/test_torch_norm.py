"""BatchNorm, LayerNorm, GroupNorm against PyTorch in float64: an oracle written by other people.

Mapping (specs/norm.md): PyTorch puts examples first, so refnn's X (n, ..., m) is PyTorch's
``np.moveaxis(X, -1, 0)``: (m, n) for ``BatchNorm1d`` on dense X, (m, n, T) for ``BatchNorm1d``
on sequences, (m, C, H, W) for ``BatchNorm2d`` and ``GroupNorm``, (m, d_1, ..., d_k) for
``LayerNorm((d_1, ..., d_k))``; weight and bias are γ, β without their trailing 1. BatchNorm's
momentum has the same meaning in both (running = (1 - momentum) running + momentum batch, the
unbiased variance); a training step is compared (output, gradients, running statistics), then
eval mode from the statistics it left.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import BatchNorm, GroupNorm, LayerNorm
from refnn.layer import Layer
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from tests.test_norm import Point, group_points, points

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch
EPS = 1e-5


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """PyTorch's two-thread batch norm measured 200 ms per 4 x 3 call on a loaded 2-core
    machine (0.6 ms on one thread): one thread here, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _first(a: FloatArray) -> Any:
    """refnn's examples-last array as a PyTorch examples-first leaf tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 0))).requires_grad_(True)


def _last(t: Any) -> FloatArray:
    out: FloatArray = np.moveaxis(t.detach().numpy(), 0, -1)
    return out


def _run(module: Any, X: FloatArray, dY: FloatArray) -> list[FloatArray]:
    """Y, dX, dγ, dβ of ``module`` (examples first inside) for J = Σ dY ⊙ Y."""
    module.zero_grad()
    x = _first(X)
    y = module(x)
    (y * torch.from_numpy(np.ascontiguousarray(np.moveaxis(dY, -1, 0)))).sum().backward()
    return [_last(y), _last(x.grad), module.weight.grad.numpy(), module.bias.grad.numpy()]


def _ours(layer: Layer[Any], X: FloatArray, dY: FloatArray, training: bool) -> list[FloatArray]:
    Y = layer.forward(X, training=training)
    dX = layer.backward(dY)
    return [Y, dX, layer.grads["gamma"], layer.grads["beta"]]


def _check(
    ours: list[FloatArray], theirs: list[FloatArray], sets: FloatArray, p: Point, P: int
) -> float:
    """Y, dX, dγ, dβ each to 1e-12 of the sum of its terms' absolute values (``sets``: X with
    one normalisation set per row; |x̂| <= sqrt(N)); returns the worst error / scale."""
    N = sets.shape[1]
    inv_std = float(np.max(1.0 / np.sqrt(sets.var(axis=1) + EPS)))
    g = float(np.max(np.abs(p.gamma)))
    rows = float(np.max(np.abs(p.dY.reshape(P, -1)).sum(axis=1)))
    scales = [
        g * math.sqrt(N) + float(np.max(np.abs(p.beta))),
        g * float(np.max(np.abs(p.dY))) * inv_std * (2 + N),
        rows * math.sqrt(N),
        rows,
    ]
    worst = 0.0
    for name, a, b, scale in zip(("Y", "dX", "dgamma", "dbeta"), ours, theirs, scales, strict=True):
        b = b.reshape(a.shape)
        ratio = float(np.max(np.abs(a - b))) / max(scale, 1e-300)
        assert ratio <= 1e-12, f"{name}: error / scale = {ratio:.3g}"
        worst = max(worst, ratio)
    return worst


def _torch_bn(n: int, ndim: int, momentum: float, p: Point) -> Any:
    cls = torch.nn.BatchNorm2d if ndim == 4 else torch.nn.BatchNorm1d
    module = cls(n, eps=EPS, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(p.gamma[:, 0]))
        module.bias.copy_(torch.from_numpy(p.beta[:, 0]))
    return module


@pytest.mark.spec("BN-FWD", "NORM-STATS", "NORM-AFFINE", "NORM-DX", "NORM-DGAMMA", "NORM-DBETA")
@pytest.mark.spec("BN-RUNNING", "BN-INFER", "BN-INFER-DX")
@given(p=points(lambda s: (s[0], 1), min_set=2), momentum=st.floats(0.0, 1.0), data=st.data())
@settings(max_examples=25)
def test_batch_norm_matches_torch_in_training_its_running_statistics_and_eval_mode(
    p: Point, momentum: float, data: st.DataObject
) -> None:
    n = p.X.shape[0]
    X, dY = p.X, p.dY  # (n, m), (n, T, m) -> BatchNorm1d; (C, H, W, m) -> BatchNorm2d
    layer = BatchNorm(n, momentum=momentum)
    layer.params["gamma"][...], layer.params["beta"][...] = p.gamma, p.beta
    module = _torch_bn(n, X.ndim, momentum, p)
    module.train()
    _check(_ours(layer, X, dY, True), _run(module, X, dY), X.reshape(n, -1), p, n)
    for key in ("running_mean", "running_var"):
        want = getattr(module, key).numpy()
        np.testing.assert_allclose(layer.buffers[key][:, 0], want, rtol=1e-12, atol=1e-14)
    # eval mode from the statistics the step left, on another batch (m = 1 allowed)
    X2 = data.draw(arrays((*X.shape[:-1], data.draw(st.integers(1, 3), label="m"))), label="X2")
    dY2 = data.draw(arrays(X2.shape), label="dY2")
    module.eval()
    theirs_eval = _run(module, X2, dY2)
    ours_eval = _ours(layer, X2, dY2, False)
    s = float(np.max(np.abs(p.gamma) / np.sqrt(layer.buffers["running_var"] + EPS)))
    xhat = float(np.max(np.abs(X2.reshape(n, -1) - layer.buffers["running_mean"])))
    xhat /= float(np.sqrt(np.min(layer.buffers["running_var"]) + EPS))
    rows = float(np.max(np.abs(dY2.reshape(n, -1)).sum(axis=1)))
    scales = [
        s * xhat * math.sqrt(EPS + float(np.max(layer.buffers["running_var"]))) + 4.0,
        s * float(np.max(np.abs(dY2))),
        rows * xhat,
        rows,
    ]
    for a, b, scale in zip(ours_eval, theirs_eval, scales, strict=True):
        assert float(np.max(np.abs(a - b.reshape(a.shape)))) <= 1e-12 * max(scale, 1e-300)


@pytest.mark.spec("LN-FWD", "NORM-STATS", "NORM-AFFINE", "NORM-DX", "NORM-DGAMMA", "NORM-DBETA")
@given(p=points(lambda s: (*s[:-1], 1)))
@settings(max_examples=25)
def test_layer_norm_matches_torch(p: Point) -> None:
    shape = p.X.shape[:-1]
    layer = LayerNorm(shape)
    layer.params["gamma"][...], layer.params["beta"][...] = p.gamma, p.beta
    module = torch.nn.LayerNorm(shape, eps=EPS, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(p.gamma[..., 0]))
        module.bias.copy_(torch.from_numpy(p.beta[..., 0]))
    D = math.prod(shape)
    theirs = _run(module, p.X, p.dY)
    theirs[2], theirs[3] = theirs[2][..., None], theirs[3][..., None]
    _check(_ours(layer, p.X, p.dY, True), theirs, p.X.reshape(D, -1).T, p, D)


@pytest.mark.spec("GN-FWD", "NORM-STATS", "NORM-AFFINE", "NORM-DX", "NORM-DGAMMA", "NORM-DBETA")
@given(gp=group_points())
@settings(max_examples=25)
def test_group_norm_matches_torch(gp: tuple[int, Point]) -> None:
    groups, p = gp
    C, m = p.X.shape[0], p.X.shape[-1]
    layer = GroupNorm(groups, C)
    layer.params["gamma"][...], layer.params["beta"][...] = p.gamma, p.beta
    module = torch.nn.GroupNorm(groups, C, eps=EPS, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(p.gamma[:, 0]))
        module.bias.copy_(torch.from_numpy(p.beta[:, 0]))
    if p.X.size == groups:  # one value per group and m = 1: PyTorch refuses it ("more than 1
        # value per channel"); refnn defines it as for any one-value group: Y = β, dX = 0
        with pytest.raises(ValueError, match="more than 1 value"):
            _run(module, p.X, p.dY)
        np.testing.assert_array_equal(layer.forward(p.X), p.beta.reshape(p.X.shape))
        np.testing.assert_array_equal(layer.backward(p.dY), 0.0)
        return
    sets = p.X.reshape(groups, -1, m).transpose(0, 2, 1).reshape(groups * m, -1)
    _check(_ours(layer, p.X, p.dY, True), _run(module, p.X, p.dY), sets, p, C)
