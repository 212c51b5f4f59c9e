"""Softmax, cross-entropy, tanh and Adam against PyTorch in float64.

PyTorch puts examples on the first axis and classes on the second; refnn transposes (classes
first, examples last). Forward values and gradients agree with torch.autograd to 1e-12 relative;
Adam's trajectory agrees with torch.optim.Adam fed the same gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import Adam, CrossEntropy, Dense, Softmax, SoftmaxCrossEntropy, Tanh
from refnn.softmax import softmax
from refnn.types import FloatArray
from tests.strategies import normal, seeds, sizes

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 (the 'torch' extra)"
)

pytestmark = pytest.mark.torch


def _t(a: FloatArray) -> Any:  # a torch.Tensor (torch is imported lazily)
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def _close(ours: FloatArray, theirs: Any, atol: float = 1e-14) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=atol)


def _classes(seed: int, k: int, m: int) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    idx: npt.NDArray[np.int64] = np.random.default_rng(seed).integers(0, k, m)
    Y: FloatArray = np.zeros((k, m))
    Y[idx, np.arange(m)] = 1.0
    return Y, idx


@pytest.mark.spec("SOFTMAX-FWD", "SOFTMAX-BWD")
@settings(max_examples=25)
@given(k=sizes, m=sizes, seed=seeds, scale=st.floats(0.1, 100.0))
def test_softmax_matches_torch(k: int, m: int, seed: int, scale: float) -> None:
    Z = normal(seed, k, m, scale=scale)
    dA = normal(seed + 1, k, m)
    layer = Softmax()
    A = layer.forward(Z)
    dZ = layer.backward(dA)
    z = _t(Z.T)
    a = torch.softmax(z, dim=1)
    (a * torch.tensor(dA.T)).sum().backward()
    _close(A, a.T, atol=1e-15)
    _close(dZ, z.grad.T, atol=1e-15)


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@settings(max_examples=25)
@given(k=st.integers(2, 6), m=sizes, seed=seeds, scale=st.floats(0.1, 50.0))
def test_fused_cross_entropy_matches_torch_cross_entropy(
    k: int, m: int, seed: int, scale: float
) -> None:
    Z = normal(seed, k, m, scale=scale)
    Y, idx = _classes(seed, k, m)
    loss = SoftmaxCrossEntropy()
    J = loss.forward(Z, Y)
    dZ = loss.backward()
    z = _t(Z.T)
    j = torch.nn.functional.cross_entropy(z, torch.tensor(idx), reduction="mean")
    j.backward()
    assert J == pytest.approx(j.item(), rel=1e-12, abs=1e-15)
    _close(dZ, z.grad.T, atol=1e-16)


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@given(k=st.integers(2, 6), m=sizes, seed=seeds)
def test_soft_targets_match_torch_probability_targets(k: int, m: int, seed: int) -> None:
    Z = normal(seed, k, m, scale=3.0)
    Y = softmax(normal(seed + 1, k, m))
    loss = SoftmaxCrossEntropy(soft_labels=True)
    J = loss.forward(Z, Y)
    dZ = loss.backward()
    z = _t(Z.T)
    j = torch.nn.functional.cross_entropy(z, torch.tensor(Y.T), reduction="mean")
    j.backward()
    assert J == pytest.approx(j.item(), rel=1e-12)
    _close(dZ, z.grad.T, atol=1e-16)


@pytest.mark.spec("CE-COST", "CE-GRAD")
@settings(max_examples=25)
@given(k=st.integers(2, 6), m=sizes, seed=seeds)
def test_cross_entropy_of_probabilities_matches_torch_nll_of_log(k: int, m: int, seed: int) -> None:
    A = np.random.default_rng(seed).uniform(0.01, 1.0, (k, m))
    Y, idx = _classes(seed, k, m)
    loss = CrossEntropy()
    J = loss.forward(A, Y)
    dA = loss.backward()
    a = _t(A.T)
    j = torch.nn.functional.nll_loss(torch.log(a), torch.tensor(idx), reduction="mean")
    j.backward()
    assert J == pytest.approx(j.item(), rel=1e-12)
    _close(dA, a.grad.T)


@pytest.mark.spec("TANH-FWD", "TANH-BWD")
@given(n=sizes, m=sizes, seed=seeds, scale=st.floats(0.1, 30.0))
def test_tanh_matches_torch(n: int, m: int, seed: int, scale: float) -> None:
    Z = normal(seed, n, m, scale=scale)
    dA = normal(seed + 1, n, m)
    layer = Tanh()
    A = layer.forward(Z)
    dZ = layer.backward(dA)
    z = _t(Z)
    a = torch.tanh(z)
    (a * torch.tensor(dA)).sum().backward()
    _close(A, a, atol=1e-16)
    # torch's tanh_backward computes 1 - y², refnn (1 - y)(1 + y): equal up to a rounding of y²
    np.testing.assert_allclose(dZ, z.grad.numpy(), rtol=1e-12, atol=4e-16 * np.abs(dA).max())


@pytest.mark.spec("ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@settings(max_examples=20)
@given(
    seed=seeds,
    lr=st.floats(1e-4, 0.5),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.0, 0.9999),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
)
def test_adam_trajectory_matches_torch_optim_adam(
    seed: int, lr: float, beta1: float, beta2: float, eps: float
) -> None:
    layer = Dense(4, 3, rng=np.random.default_rng(seed))
    layer.params["b"][...] = normal(seed + 1, 3, 1)
    layer.forward(np.ones((4, 1)))
    layer.backward(np.ones((3, 1)))
    theirs = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in layer.params.items()}
    opt_torch = torch.optim.Adam(list(theirs.values()), lr=lr, betas=(beta1, beta2), eps=eps)
    ours = Adam(lr, beta1, beta2, eps)
    for step in range(6):
        for i, key in enumerate(layer.params):
            g = normal(seed + 10 * step + i, *layer.params[key].shape, scale=10.0 ** (step % 3 - 1))
            layer.grads[key] = g
            theirs[key].grad = torch.tensor(g.copy())
        ours.step(layer)
        opt_torch.step()
        for key, value in layer.params.items():
            np.testing.assert_allclose(value, theirs[key].detach().numpy(), rtol=1e-11, atol=1e-13)
