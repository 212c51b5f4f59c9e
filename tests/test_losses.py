"""Binary cross-entropy and its fused from-logits form: BCE-*."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn import BinaryCrossEntropy, BinaryCrossEntropyWithLogits
from refnn.activations import sigmoid
from refnn.losses import (
    bce_backward,
    bce_cost,
    bce_logits_backward,
    bce_logits_cost,
    clip_probabilities,
)
from tests.strategies import labels, normal, seeds, sizes


def naive_bce(A: np.ndarray, Y: np.ndarray) -> float:
    total = 0.0
    for k in range(A.shape[0]):
        for i in range(A.shape[1]):
            a, y = A[k, i], Y[k, i]
            total += -(y * np.log(a) + (1 - y) * np.log(1 - a))
    return float(total / A.shape[1])


@pytest.mark.spec("BCE-COST")
@given(k=sizes, m=sizes, seed=seeds)
def test_bce_cost_matches_the_loop(k: int, m: int, seed: int) -> None:
    A = np.random.default_rng(seed).uniform(0.01, 0.99, (k, m))
    Y = labels(seed, k, m)
    assert bce_cost(A, Y) == pytest.approx(naive_bce(A, Y), rel=1e-12)


@pytest.mark.spec("BCE-GRAD")
@given(k=sizes, m=sizes, seed=seeds)
def test_bce_gradient_is_the_textbook_formula(k: int, m: int, seed: int) -> None:
    A = np.random.default_rng(seed).uniform(0.01, 0.99, (k, m))
    Y = labels(seed, k, m)
    expected = (-(Y / A) + (1 - Y) / (1 - A)) / m
    np.testing.assert_allclose(bce_backward(A, Y), expected, rtol=1e-12)


@pytest.mark.spec("BCE-GRAD")
@given(Y=hnp.arrays(np.float64, (2, 3), elements=st.floats(0.001, 0.999)))
def test_bce_gradient_zero_where_A_equals_soft_Y(Y: np.ndarray) -> None:
    np.testing.assert_allclose(bce_backward(Y.copy(), Y), 0.0, atol=1e-12)


@pytest.mark.spec("BCE-CLIP", "BCE-COST", "BCE-GRAD")
def test_bce_is_finite_at_saturated_predictions() -> None:
    A = np.array([[0.0, 1.0, 0.0, 1.0]])
    Y = np.array([[0.0, 1.0, 1.0, 0.0]])
    loss = BinaryCrossEntropy()
    J = loss.forward(A, Y)
    dA = loss.backward()
    assert np.isfinite(J) and np.all(np.isfinite(dA))
    # the two wrong, saturated predictions cost -log(eps) each
    assert J == pytest.approx(2 * -np.log(np.finfo(np.float64).eps) / 4, rel=1e-9)
    np.testing.assert_array_equal(clip_probabilities(np.array([0.3, 0.7])), [0.3, 0.7])


@pytest.mark.spec("BCE-LOGITS-COST", "BCE-LOGITS-GRAD")
@given(k=sizes, m=sizes, seed=seeds)
def test_logits_form_equals_sigmoid_then_bce(k: int, m: int, seed: int) -> None:
    Z, Y = normal(seed, k, m, scale=4.0), labels(seed, k, m)
    A = sigmoid(Z)
    assert bce_logits_cost(Z, Y) == pytest.approx(bce_cost(A, Y), rel=1e-10)
    # chain rule: dZ = dA * σ'(Z) = (A - Y)/m
    np.testing.assert_allclose(
        bce_logits_backward(Z, Y), bce_backward(A, Y) * A * (1 - A), rtol=1e-9, atol=1e-15
    )


@pytest.mark.spec("BCE-LOGITS-COST")
def test_logits_form_is_exact_for_huge_logits() -> None:
    Z = np.array([[1e4, -1e4, 800.0]])
    Y = np.array([[0.0, 1.0, 1.0]])
    assert bce_logits_cost(Z, Y) == pytest.approx((1e4 + 1e4 + 0.0) / 3)


def test_loss_input_errors() -> None:
    loss = BinaryCrossEntropy()
    with pytest.raises(ValueError, match=r"labels in \{0, 1\}"):
        loss.forward(np.full((1, 2), 0.5), np.array([[0.0, 0.5]]))
    with pytest.raises(ValueError, match=r"shape \(1, 2\), got \(2, 1\)"):
        loss.forward(np.full((1, 2), 0.5), np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        loss.forward(np.array([[1.5]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="finite"):
        loss.forward(np.array([[np.nan]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="at least one example"):
        loss.forward(np.zeros((1, 0)), np.zeros((1, 0)))
    with pytest.raises(RuntimeError, match="before forward"):
        BinaryCrossEntropyWithLogits().backward()
    soft = BinaryCrossEntropy(soft_labels=True)
    assert np.isfinite(soft.forward(np.full((1, 2), 0.5), np.array([[0.2, 0.9]])))
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]"):
        soft.forward(np.full((1, 1), 0.5), np.array([[1.2]]))


@pytest.mark.spec("BCE-GRAD")
def test_loss_does_not_modify_its_inputs() -> None:
    A = np.array([[0.0, 0.4, 1.0]])
    Y = np.array([[0.0, 1.0, 1.0]])
    A0, Y0 = A.copy(), Y.copy()
    loss = BinaryCrossEntropy()
    loss.forward(A, Y)
    loss.backward()
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(Y, Y0)
