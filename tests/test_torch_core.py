"""refnn against PyTorch in float64: an oracle written by other people.

Dense, the activations (sigmoid, ReLU, tanh, softmax), the four losses, whole L-layer models and
Adam: forward values and every gradient agree with torch.autograd to 1e-12 relative. PyTorch
puts examples on the first axis; refnn on the last, so arrays are transposed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import (
    Adam,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    Dense,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
    mlp,
)
from refnn.activations import softmax
from refnn.testing.strategies import arrays, binary_labels, class_probabilities, sizes
from refnn.types import FloatArray

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

F = torch.nn.functional
pytestmark = pytest.mark.torch


def _t(a: FloatArray) -> Any:  # a torch.Tensor (torch is imported lazily)
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def _close(ours: FloatArray, theirs: Any, atol: float = 1e-14) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=atol)


def _classes(data: st.DataObject, km: tuple[int, int]) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    k, m = km
    idx = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=m, max_size=m)))
    Y: FloatArray = np.zeros((k, m))
    Y[idx, np.arange(m)] = 1.0
    return Y, idx


def _layer_and_torch(
    layer: Sigmoid | ReLU | Tanh | Softmax, Z: FloatArray, dA: FloatArray, torch_fn: Any
) -> tuple[FloatArray, FloatArray, Any, Any]:
    """refnn's (A, dZ) and torch's (A, dZ) for ``torch_fn`` run with examples first (transposed
    back), backward from the cost Σ A ⊙ dA."""
    A = layer.forward(Z)
    dZ = layer.backward(dA)
    z = _t(Z.T)
    a = torch_fn(z)
    (a * torch.tensor(dA.T)).sum().backward()
    return A, dZ, a.T, z.grad.T


def _loss_and_torch(
    loss: SoftmaxCrossEntropy | CrossEntropy,
    Z: FloatArray,
    Y: FloatArray,
    torch_loss: Any,
    target: Any,
    *,
    log_input: bool = False,
    rel: float,
    abs: float | None = None,
    atol: float = 1e-14,
) -> None:
    """refnn's J and dZ agree with ``torch_loss(Zᵀ or log Zᵀ, target)`` (examples first), mean
    over the examples, and its autograd."""
    J = loss.forward(Z, Y)
    dZ = loss.backward()
    z = _t(Z.T)
    j = torch_loss(torch.log(z) if log_input else z, target, reduction="mean")
    j.backward()
    assert J == pytest.approx(j.item(), rel=rel, abs=abs)
    _close(dZ, z.grad.T, atol=atol)


@st.composite
def km(draw: st.DrawFn, min_k: int = 1) -> tuple[int, int]:
    """(k, m): outputs or classes, and examples."""
    return draw(st.integers(min_k, 6)), draw(sizes())


@pytest.mark.spec("DENSE-FWD", "DENSE-DW", "DENSE-DB", "DENSE-DX")
@settings(max_examples=25)
@given(n_in=sizes(), nm=km(), data=st.data())
def test_dense_matches_torch_linear(n_in: int, nm: tuple[int, int], data: st.DataObject) -> None:
    n_out, m = nm
    layer = Dense(n_in, n_out, rng=np.random.default_rng(0))
    layer.params["b"][...] = data.draw(arrays((n_out, 1)))
    X, U = data.draw(arrays((n_in, m))), data.draw(arrays((n_out, m)))
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
@given(nm=km(), kind=st.sampled_from(["sigmoid", "relu"]), data=st.data())
def test_activations_match_torch(nm: tuple[int, int], kind: str, data: st.DataObject) -> None:
    Z, U = data.draw(arrays(nm, bound=20.0)), data.draw(arrays(nm))
    layer, fn = (Sigmoid(), torch.sigmoid) if kind == "sigmoid" else (ReLU(), torch.relu)
    A, dZ, At, dZt = _layer_and_torch(layer, Z, U, fn)
    _close(A, At)
    _close(dZ, dZt)


@pytest.mark.spec("BCE-COST", "BCE-GRAD", "BCE-LOGITS-COST", "BCE-LOGITS-GRAD")
@settings(max_examples=25)
@given(km=km(), data=st.data())
def test_binary_cross_entropy_matches_torch(km: tuple[int, int], data: st.DataObject) -> None:
    m = km[1]
    A = data.draw(arrays(km, bound=0.49)) + 0.5
    Z, Y = data.draw(arrays(km, bound=16.0)), data.draw(binary_labels(km))
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
@given(dims=st.lists(sizes(), min_size=2, max_size=4), m=sizes(), data=st.data())
def test_l_layer_model_matches_torch(dims: list[int], m: int, data: st.DataObject) -> None:
    model = mlp(dims, rng=np.random.default_rng(0))
    X, Y = data.draw(arrays((dims[0], m))), data.draw(binary_labels((dims[-1], m)))
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


@pytest.mark.spec("SOFTMAX-FWD", "SOFTMAX-BWD")
@settings(max_examples=25)
@given(km=km(), data=st.data())
def test_softmax_matches_torch(km: tuple[int, int], data: st.DataObject) -> None:
    Z, dA = data.draw(arrays(km, bound=300.0)), data.draw(arrays(km))
    A, dZ, a, dz = _layer_and_torch(Softmax(), Z, dA, lambda z: torch.softmax(z, dim=1))
    _close(A, a, atol=1e-15)
    _close(dZ, dz, atol=1e-15)


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD", "CE-COST", "CE-GRAD")
@settings(max_examples=25)
@given(km=km(min_k=2), data=st.data())
def test_cross_entropies_of_class_labels_match_torch(
    km: tuple[int, int], data: st.DataObject
) -> None:
    """The same labels: the fused loss on logits against torch's cross_entropy, CrossEntropy on
    probabilities against torch's nll_loss of their log."""
    Y, idx = _classes(data, km)
    Z = data.draw(arrays(km, bound=150.0))
    loss, target = SoftmaxCrossEntropy(), torch.tensor(idx)
    _loss_and_torch(loss, Z, Y, F.cross_entropy, target, rel=1e-12, abs=1e-15, atol=1e-16)
    A = softmax(data.draw(arrays(km)))
    _loss_and_torch(CrossEntropy(), A, Y, F.nll_loss, target, log_input=True, rel=1e-12)


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@given(km=km(min_k=2), data=st.data())
def test_soft_targets_match_torch_probability_targets(
    km: tuple[int, int], data: st.DataObject
) -> None:
    Z = data.draw(arrays(km, bound=9.0))
    Y = data.draw(class_probabilities(*km))
    loss = SoftmaxCrossEntropy(soft_labels=True)
    _loss_and_torch(loss, Z, Y, F.cross_entropy, torch.tensor(Y.T), rel=1e-12, atol=1e-16)


@pytest.mark.spec("TANH-FWD", "TANH-BWD")
@given(nm=km(), data=st.data())
def test_tanh_matches_torch(nm: tuple[int, int], data: st.DataObject) -> None:
    Z, dA = data.draw(arrays(nm, bound=90.0)), data.draw(arrays(nm))
    A, dZ, a, dz = _layer_and_torch(Tanh(), Z, dA, torch.tanh)
    _close(A, a, atol=1e-16)
    # torch's tanh_backward computes 1 - y², refnn (1 - y)(1 + y): equal up to a rounding of y²
    # and to the two y's (refnn's within 3 ulp, TANH-FWD; torch's within 1): |dA| 2|y| 4 ulp
    ulp = float(np.finfo(np.float64).epsneg)  # the spacing of [1/2, 1)
    np.testing.assert_allclose(dZ, dz.numpy(), rtol=1e-12, atol=2 * 4 * ulp * np.abs(dA).max())


@pytest.mark.spec("ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@settings(max_examples=20)
@given(
    data=st.data(),
    lr=st.floats(1e-4, 0.5),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.0, 0.9999),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
)
def test_adam_trajectory_matches_torch_optim_adam(
    data: st.DataObject, lr: float, beta1: float, beta2: float, eps: float
) -> None:
    layer = Dense(4, 3, rng=np.random.default_rng(0))
    layer.params["b"][...] = data.draw(arrays((3, 1)))
    layer.forward(np.ones((4, 1)))
    layer.backward(np.ones((3, 1)))
    theirs = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in layer.params.items()}
    opt_torch = torch.optim.Adam(list(theirs.values()), lr=lr, betas=(beta1, beta2), eps=eps)
    ours = Adam(lr, beta1, beta2, eps)
    for step in range(6):
        for key in layer.params:
            g = data.draw(arrays(layer.params[key].shape, min_magnitude=0.1)) * 10.0 ** (
                step % 3 - 1
            )
            layer.grads[key] = g
            theirs[key].grad = torch.tensor(g.copy())
        ours.step(layer)
        opt_torch.step()
        for key, value in layer.params.items():
            np.testing.assert_allclose(value, theirs[key].detach().numpy(), rtol=1e-11, atol=1e-13)
