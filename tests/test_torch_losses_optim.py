"""MSE, the multiclass hinge, the weighted cross-entropies, RMSprop, AdamW and Nesterov momentum
against PyTorch in float64 (MSELoss, MultiMarginLoss, BCEWithLogitsLoss(weight=),
CrossEntropyLoss(weight=), RMSprop, AdamW, SGD(nesterov=True)): costs and gradients to 1e-12
relative after the documented factors (PyTorch averages over classes or outputs too), and
optimizer trajectories over six steps. PyTorch puts examples first; refnn last."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn import (
    AdamW,
    BinaryCrossEntropyWithLogits,
    Dense,
    MeanSquaredError,
    MulticlassHinge,
    Nesterov,
    Optimizer,
    RMSprop,
    SoftmaxCrossEntropy,
)
from refnn.testing.strategies import arrays, binary_labels, sizes
from refnn.types import FloatArray

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)
F = torch.nn.functional
pytestmark = pytest.mark.torch


def _t(a: FloatArray) -> Any:
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@st.composite
def km(draw: st.DrawFn, min_k: int = 1) -> tuple[int, int]:
    return draw(st.integers(min_k, 6)), draw(sizes())


def _classes(data: st.DataObject, k: int, m: int) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    idx = data.draw(hnp.arrays(np.int64, m, elements=st.integers(0, k - 1)))
    Y: FloatArray = np.zeros((k, m))
    Y[idx, np.arange(m)] = 1.0
    return Y, idx


def _weights(data: st.DataObject, m: int) -> FloatArray:
    w: FloatArray = data.draw(
        hnp.arrays(np.float64, m, elements=st.sampled_from([0.0, 1.0]) | st.floats(0.01, 3.0))
    )
    return w


@pytest.mark.spec("MSE-COST", "MSE-GRAD")
@settings(max_examples=15)
@given(shape=km(), data=st.data())
def test_mse_is_torch_mse_loss_times_k(shape: tuple[int, int], data: st.DataObject) -> None:
    k = shape[0]
    A, Y = data.draw(arrays(shape, bound=20.0)), data.draw(arrays(shape, bound=20.0))
    loss = MeanSquaredError()
    J = loss.forward(A, Y)
    dA = loss.backward()
    a = _t(A.T)
    j = F.mse_loss(a, torch.tensor(Y.T), reduction="mean")  # over all k m elements
    j.backward()
    assert J == pytest.approx(k * j.item(), rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(dA, k * a.grad.numpy().T, rtol=1e-12, atol=1e-300)


@pytest.mark.spec("HINGE-COST", "HINGE-GRAD")
@settings(max_examples=15)
@given(shape=km(min_k=2), data=st.data(), margin=st.sampled_from([1.0, 0.5, 2.0]))
def test_hinge_is_torch_multi_margin_loss_times_k(
    shape: tuple[int, int], data: st.DataObject, margin: float
) -> None:
    k, m = shape
    Y, idx = _classes(data, k, m)
    Z = data.draw(arrays(shape, bound=5.0))
    loss = MulticlassHinge(margin)
    J = loss.forward(Z, Y)
    dZ = loss.backward()
    z = _t(Z.T)
    j = F.multi_margin_loss(z, torch.tensor(idx), margin=margin, reduction="mean")
    j.backward()
    assert J == pytest.approx(k * j.item(), rel=1e-12, abs=1e-15)
    # both take the subgradient 0 at a kink (torch counts a term only if it is > 0)
    np.testing.assert_allclose(dZ, k * z.grad.numpy().T, rtol=1e-12, atol=1e-15)


@pytest.mark.spec("BCE-LOGITS-COST", "BCE-LOGITS-GRAD", "LOSS-WEIGHTS")
@settings(max_examples=15)
@given(shape=km(), data=st.data())
def test_weighted_bce_is_torch_bce_with_logits_weight_times_k(
    shape: tuple[int, int], data: st.DataObject
) -> None:
    k, m = shape
    Z, Y = data.draw(arrays(shape, bound=12.0)), data.draw(binary_labels(shape))
    w = _weights(data, m)
    loss = BinaryCrossEntropyWithLogits()  # weight_norm="m"
    J = loss.forward(Z, Y, weights=w)
    dZ = loss.backward()
    z = _t(Z.T)
    weight = torch.tensor(w[:, None])  # one weight per example (row), broadcast over outputs
    j = F.binary_cross_entropy_with_logits(z, torch.tensor(Y.T), weight=weight, reduction="mean")
    j.backward()
    assert J == pytest.approx(k * j.item(), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(dZ, k * z.grad.numpy().T, rtol=1e-12, atol=1e-16)


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD", "LOSS-WEIGHTS")
@settings(max_examples=15)
@given(shape=km(min_k=2), data=st.data())
def test_class_weights_are_per_example_weights_normalised_by_their_sum(
    shape: tuple[int, int], data: st.DataObject
) -> None:
    k, m = shape
    Y, idx = _classes(data, k, m)
    Z = data.draw(arrays(shape, bound=20.0))
    class_weights = data.draw(hnp.arrays(np.float64, k, elements=st.floats(0.01, 3.0)))
    loss = SoftmaxCrossEntropy(weight_norm="sum")
    J = loss.forward(Z, Y, weights=class_weights[idx])
    dZ = loss.backward()
    z = _t(Z.T)
    j = F.cross_entropy(z, torch.tensor(idx), weight=torch.tensor(class_weights), reduction="mean")
    j.backward()
    assert J == pytest.approx(j.item(), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(dZ, z.grad.numpy().T, rtol=1e-12, atol=1e-16)


def _trajectory(ours: Optimizer, make_torch: Any, data: st.DataObject, steps: int = 6) -> None:
    layer = Dense(4, 3, rng=np.random.default_rng(0))
    layer.params["b"][...] = data.draw(arrays((3, 1)))
    layer.forward(np.ones((4, 1)))
    layer.backward(np.ones((3, 1)))
    theirs = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in layer.params.items()}
    opt_torch = make_torch(list(theirs.values()))
    for step in range(steps):
        for key in layer.params:
            scale = 10.0 ** (step % 3 - 1)
            g = data.draw(arrays(layer.params[key].shape, min_magnitude=0.1)) * scale
            layer.grads[key] = g
            theirs[key].grad = torch.tensor(g.copy())
        ours.step(layer)
        opt_torch.step()
        for key, value in layer.params.items():
            np.testing.assert_allclose(value, theirs[key].detach().numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.spec("OPT-RMSPROP")
@settings(max_examples=15)
@given(
    data=st.data(),
    lr=st.floats(1e-4, 0.5),
    beta=st.floats(0.0, 0.999),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
)
def test_rmsprop_trajectory_matches_torch(
    data: st.DataObject, lr: float, beta: float, eps: float
) -> None:
    make = lambda ps: torch.optim.RMSprop(ps, lr=lr, alpha=beta, eps=eps)  # noqa: E731
    _trajectory(RMSprop(lr, beta, eps), make, data)


@pytest.mark.spec("OPT-ADAMW", "ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@settings(max_examples=15)
@given(
    data=st.data(),
    lr=st.floats(1e-4, 0.5),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.0, 0.9999),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
    wd=st.sampled_from([0.0, 1e-2, 0.3]),
)
def test_adamw_trajectory_matches_torch(
    data: st.DataObject, lr: float, beta1: float, beta2: float, eps: float, wd: float
) -> None:
    make = lambda ps: torch.optim.AdamW(  # noqa: E731
        ps, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=wd
    )
    _trajectory(AdamW(lr, beta1, beta2, eps, weight_decay=wd), make, data)


@pytest.mark.spec("OPT-NESTEROV")
@settings(max_examples=15)
@given(data=st.data(), lr=st.floats(1e-4, 0.5), mu=st.floats(0.01, 0.99))
def test_nesterov_trajectory_matches_torch_sgd_nesterov(
    data: st.DataObject, lr: float, mu: float
) -> None:
    make = lambda ps: torch.optim.SGD(ps, lr=lr, momentum=mu, nesterov=True)  # noqa: E731
    _trajectory(Nesterov(lr, mu), make, data)
