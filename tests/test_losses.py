"""Losses: BCE-*, CE-*, SOFTMAX-CE-* against loops, formulas, limits and the gradient checker,
and the bad inputs every loss refuses (NOTE-INPUTS, NOTE-STALE)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn import (
    Adam,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    Loss,
    Sequential,
    Softmax,
    SoftmaxCrossEntropy,
    fit,
    mlp,
)
from refnn.activations import sigmoid, softmax, softmax_backward
from refnn.gradcheck import check_grad
from refnn.losses import (
    bce_backward,
    bce_cost,
    bce_logits_backward,
    bce_logits_cost,
    ce_backward,
    ce_cost,
    clip_probabilities,
    log_softmax,
    softmax_ce_backward,
    softmax_ce_cost,
)
from refnn.testing.strategies import (
    arrays,
    binary_labels,
    class_probabilities,
    one_hot,
    probabilities,
)
from refnn.types import FloatArray
from refnn.verify.problems import Objective, loss_problem, model_problem
from tests.oracles.softmax import cross_entropy_loop

EPS = float(np.finfo(np.float64).eps)
LOSSES: list[type[Loss]] = [
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    SoftmaxCrossEntropy,
]


def naive_bce(A: FloatArray, Y: FloatArray) -> float:
    total = 0.0
    for k in range(A.shape[0]):
        for i in range(A.shape[1]):
            a, y = A[k, i], Y[k, i]
            total += -(y * np.log(a) + (1 - y) * np.log(1 - a))
    return float(total / A.shape[1])


def passes(problem: Objective) -> bool:
    try:
        return check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt).passed
    finally:
        problem.restore()


def valid_pair(cls: type[Loss]) -> tuple[FloatArray, FloatArray]:
    """A prediction and labels each loss accepts (2 classes x 3 examples)."""
    A = softmax(np.arange(6.0).reshape(2, 3)) if cls is not SoftmaxCrossEntropy else np.ones((2, 3))
    return A, np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


# --- BCE ---------------------------------------------------------------------------------------


@pytest.mark.spec("BCE-COST", "BCE-GRAD")
@given(A=probabilities((3, 4), margin=0.01), Y=binary_labels((3, 4)))
def test_bce_matches_the_loop_and_the_textbook_gradient(A: FloatArray, Y: FloatArray) -> None:
    assert bce_cost(A, Y) == pytest.approx(naive_bce(A, Y), rel=1e-12)
    expected = (-(Y / A) + (1 - Y) / (1 - A)) / 4
    np.testing.assert_allclose(bce_backward(A, Y), expected, rtol=1e-12)


@pytest.mark.spec("BCE-GRAD")
@given(Y=probabilities((2, 3)))
def test_bce_gradient_zero_where_A_equals_soft_Y(Y: FloatArray) -> None:
    np.testing.assert_allclose(bce_backward(Y.copy(), Y), 0.0, atol=1e-12)


@pytest.mark.spec("BCE-CLIP", "BCE-COST", "BCE-GRAD")
def test_bce_is_finite_at_saturated_predictions() -> None:
    A = np.array([[0.0, 1.0, 0.0, 1.0]])
    Y = np.array([[0.0, 1.0, 1.0, 0.0]])
    loss = BinaryCrossEntropy()
    J = loss.forward(A, Y)
    assert np.all(np.isfinite(loss.backward()))
    # the two wrong, saturated predictions cost -log(eps) each
    assert J == pytest.approx(2 * -np.log(EPS) / 4, rel=1e-9)
    np.testing.assert_array_equal(clip_probabilities(np.array([0.3, 0.7])), [0.3, 0.7])


@pytest.mark.spec("BCE-LOGITS-COST", "BCE-LOGITS-GRAD")
@given(Z=arrays((3, 4), bound=12.0), Y=binary_labels((3, 4)))
def test_logits_form_equals_sigmoid_then_bce(Z: FloatArray, Y: FloatArray) -> None:
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
    # terms near the top of the range are divided by m before they are summed
    assert BinaryCrossEntropyWithLogits().forward(np.full((1, 2), 1e308), np.zeros((1, 2))) == 1e308


# --- CE ----------------------------------------------------------------------------------------


@pytest.mark.spec("CE-COST", "CE-GRAD")
@given(data=st.data(), soft=st.booleans())
def test_cross_entropy_matches_the_loop_and_formula(data: st.DataObject, soft: bool) -> None:
    A = data.draw(class_probabilities(4, 3))
    Y = data.draw(class_probabilities(4, 3) if soft else one_hot(4, 3))
    assert ce_cost(A, Y) == pytest.approx(cross_entropy_loop(A, Y), rel=1e-13)
    np.testing.assert_allclose(ce_backward(A, Y), -Y / A / 3, rtol=1e-15)
    loss = CrossEntropy(soft_labels=soft)
    assert loss.forward(A, Y) == ce_cost(A, Y)
    np.testing.assert_array_equal(loss.backward(), ce_backward(A, Y))


@pytest.mark.spec("CE-COST", "CE-GRAD")
def test_cross_entropy_is_zero_at_the_labels_and_finite_at_zero_probability() -> None:
    Y = np.eye(3)
    loss = CrossEntropy()
    assert loss.forward(Y.copy(), Y) == 0.0  # no upper clip: exactly 0
    A = np.array([[0.0, 1.0], [1.0, 0.0]])
    J = loss.forward(A, np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert J == pytest.approx(-np.log(EPS) / 2, rel=1e-15)  # one example capped at -log δ
    dA = loss.backward()
    assert np.all(np.isfinite(dA))
    assert dA[0, 0] == pytest.approx(-1 / EPS / 2) and dA[0, 1] == -0.5


@pytest.mark.spec("CE-COST", "CE-GRAD", "SOFTMAX-FWD", "SOFTMAX-BWD")
@settings(max_examples=20)
@given(data=st.data(), soft=st.booleans())
def test_softmax_then_cross_entropy_passes_the_gradient_checker(
    data: st.DataObject, soft: bool
) -> None:
    # CrossEntropy refuses columns off the simplex, so the checker perturbs logits before it
    Z = data.draw(arrays((3, 2), bound=3.0))
    Y = data.draw(class_probabilities(3, 2) if soft else one_hot(3, 2))
    assert passes(model_problem(Sequential([Softmax()]), CrossEntropy(soft_labels=soft), Z, Y))


# --- SOFTMAX-CE --------------------------------------------------------------------------------


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD", "CE-COST", "CE-GRAD", "SOFTMAX-BWD")
@given(data=st.data())
def test_fused_form_equals_softmax_then_cross_entropy(data: st.DataObject) -> None:
    Z, Y = data.draw(arrays((4, 3), bound=6.0)), data.draw(one_hot(4, 3))
    A = softmax(Z)
    assert softmax_ce_cost(Z, Y) == pytest.approx(ce_cost(A, Y), rel=1e-12, abs=1e-15)
    two_step = softmax_backward(ce_backward(A, Y), A)
    np.testing.assert_allclose(softmax_ce_backward(Z, Y), two_step, atol=1e-15)
    np.testing.assert_allclose(softmax_ce_backward(Z, Y), (A - Y) / 3, rtol=1e-15, atol=1e-17)


@pytest.mark.spec("SOFTMAX-CE-COST")
@given(Z=hnp.arrays(np.float64, (3, 2), elements=st.floats(-1e4, 1e4)))
def test_log_softmax_is_log_of_softmax_where_that_is_finite(Z: FloatArray) -> None:
    L = log_softmax(Z)
    assert np.all(np.isfinite(L)) and np.all(L <= 0)
    A = softmax(Z)
    ok = A > 1e-300
    np.testing.assert_allclose(np.exp(L[ok]), A[ok], rtol=1e-12)


@pytest.mark.spec("SOFTMAX-CE-COST")
def test_fused_cost_is_exact_where_the_two_step_form_saturates() -> None:
    Z = np.array([[-1e4, 3.0], [0.0, 3.0]])  # example 0: the right class is 1e4 below
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert SoftmaxCrossEntropy().forward(Z, Y) == pytest.approx((1e4 + np.log(2)) / 2, rel=1e-15)
    assert CrossEntropy().forward(softmax(Z), Y) == pytest.approx((-np.log(EPS) + np.log(2)) / 2)
    # a spread beyond the float64 range: the right class certain, cost exactly 0, no warning
    assert (
        SoftmaxCrossEntropy().forward(np.array([[1e308], [-1e308]]), np.array([[1.0], [0.0]]))
        == 0.0
    )


@pytest.mark.spec("SOFTMAX-CE-GRAD")
@given(Z=arrays((3, 4), bound=30.0), dZ=arrays((3, 4), min_magnitude=0.1))
def test_fused_gradient_vanishes_at_soft_targets(Z: FloatArray, dZ: FloatArray) -> None:
    # softmax(Z) = Y is reachable only for soft targets: take Y = softmax(Z) itself
    Y = softmax(Z)
    loss = SoftmaxCrossEntropy(soft_labels=True)
    J_min = loss.forward(Z, Y)
    np.testing.assert_allclose(loss.backward(), 0.0, atol=2 * EPS / 4)
    # and it is the minimum: any other logits cost at least as much (Gibbs' inequality)
    assert loss.forward(Z + dZ, Y) >= J_min - 1e-12


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@settings(max_examples=20)
@given(data=st.data(), soft=st.booleans())
def test_fused_form_passes_the_gradient_checker(data: st.DataObject, soft: bool) -> None:
    Z = data.draw(arrays((3, 2), bound=6.0))
    Y = data.draw(class_probabilities(3, 2) if soft else one_hot(3, 2))
    assert passes(loss_problem(SoftmaxCrossEntropy(soft_labels=soft), Z, Y))


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD", "SOFTMAX-FWD")
def test_three_class_problem_is_learned_with_adam_and_mini_batches() -> None:
    rng = np.random.default_rng(0)
    m = 300
    centres = np.array([[0.0, 3.0, -3.0], [3.0, -2.0, -2.0]])
    classes = rng.integers(0, 3, m)
    X = centres[:, classes] + rng.standard_normal((2, m))
    Y = np.zeros((3, m))
    Y[classes, np.arange(m)] = 1.0
    model = mlp([2, 16, 3], rng=np.random.default_rng(1), output="linear")
    history = fit(model, SoftmaxCrossEntropy(), Adam(0.01), X, Y, epochs=30, batch_size=32, rng=rng)
    assert history.cost[-1] < 0.3 * history.cost[0]
    assert np.mean(softmax(model.forward(X, training=False)).argmax(axis=0) == classes) >= 0.95


# --- every loss: dtype, labels, bad input (NOTE-INPUTS, NOTE-STALE) ----------------------------


@pytest.mark.parametrize("cls", LOSSES)
def test_every_loss_keeps_its_dtype_config_and_inputs(cls: type[Loss]) -> None:
    A, Y = valid_pair(cls)
    A32 = A.astype(np.float32)
    before = (A32.copy(), Y.copy())
    loss = cls(soft_labels=True, dtype=np.float32)
    J = loss.forward(A32, Y)
    assert isinstance(J, float) and loss.backward().dtype == np.float32
    np.testing.assert_array_equal(A32, before[0])
    np.testing.assert_array_equal(Y, before[1])
    assert loss.config() == {"soft_labels": True, "dtype": "float32"}
    assert cls(**loss.config()).config() == loss.config()
    with pytest.raises(RuntimeError, match="before forward"):
        cls().backward()


@pytest.mark.parametrize("cls", LOSSES)
@pytest.mark.parametrize("value", ["False", np.array([1, 0]), 1, None, 0.0])
def test_soft_labels_must_be_a_bool(cls: type[Loss], value: object) -> None:
    with pytest.raises(TypeError, match=r"soft_labels must be True or False, got"):
        cls(soft_labels=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", LOSSES)
@pytest.mark.parametrize("change", ["A", "Y"])
def test_backward_refuses_labels_or_predictions_modified_after_forward(
    cls: type[Loss], change: str
) -> None:
    A, Y = valid_pair(cls)
    loss = cls()
    loss.forward(A, Y)
    ({"A": A, "Y": Y}[change])[...] = 0.5
    with pytest.raises(RuntimeError, match=f"{change} was modified after forward"):
        loss.backward()


@pytest.mark.parametrize("cls", LOSSES)
@pytest.mark.parametrize(
    ("Y", "match"),
    [
        (np.array([[1.0, 0.0, np.nan], [0.0, 1.0, 0.0]]), "Y must be finite"),
        (np.array([[True, False, True], [False, True, False]]), "Y must hold real numbers"),
        (np.array([[1, 0, 1], [0, 1, 0]], dtype="m8[s]"), "Y must hold real numbers"),
        (np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]), r"labels in \{0, 1\}"),
        (np.ones((3, 2)), r"prediction's shape \(2, 3\)"),
        ([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], "Y must be a numpy array, got list"),
    ],
)
def test_bad_labels_are_refused(cls: type[Loss], Y: object, match: str) -> None:
    A, _ = valid_pair(cls)
    with pytest.raises((ValueError, TypeError), match=match):
        cls().forward(A, Y)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("Y", "match"),
    [
        (np.array([[1.0, 0.0], [0.0, 0.0]]), r"column \(1,\) sums to 0.0 \(one-hot expected\)"),
        (np.array([[1.0, 1.0], [1.0, 0.0]]), r"column \(0,\) sums to 2"),
    ],
)
def test_categorical_labels_must_be_one_hot(Y: FloatArray, match: str) -> None:
    for loss in (CrossEntropy(), SoftmaxCrossEntropy()):
        with pytest.raises(ValueError, match=match):
            loss.forward(np.full((2, 2), 0.5), Y)
    soft = SoftmaxCrossEntropy(soft_labels=True)
    soft.forward(np.zeros((2, 2)), np.array([[0.25, 1.0], [0.75, 0.0]]))  # accepted
    with pytest.raises(ValueError, match=r"must sum to 1 within .*; column \(0,\) sums to 0.5"):
        soft.forward(np.zeros((2, 2)), np.array([[0.25, 1.0], [0.25, 0.0]]))


@given(scale=st.floats(0.0, 0.98), data=st.data())
def test_cross_entropy_refuses_columns_that_are_not_distributions(
    scale: float, data: st.DataObject
) -> None:
    # probabilities scaled so a column sums to `scale` (0.3 was accepted before)
    A = data.draw(class_probabilities(3, 2)) * scale
    with pytest.raises(ValueError, match=r"each column of A .* must sum to 1 within 0.01"):
        CrossEntropy().forward(A, np.eye(3)[:, :2])


@pytest.mark.parametrize(
    ("cls", "A", "match"),
    [
        (BinaryCrossEntropy, np.array([[1.5]]), r"probabilities in \[0, 1\]"),
        (CrossEntropy, np.array([[1.2], [-0.2]]), r"probabilities in \[0, 1\]"),
        (CrossEntropy, np.array([0.5, 0.5]), "at least 2 axes"),
        (CrossEntropy, np.zeros((0, 3)), r"at least one class \(k >= 1"),
        (SoftmaxCrossEntropy, np.zeros((0, 3)), r"at least one class \(k >= 1"),
        (BinaryCrossEntropy, np.zeros((1, 0)), "at least one example"),
        (CrossEntropy, np.zeros((2, 0)), "at least one example"),
        (BinaryCrossEntropyWithLogits, np.array([[np.inf]]), "A must be finite"),
    ],
)
def test_bad_predictions_are_refused(cls: type[Loss], A: FloatArray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls().forward(A, np.zeros_like(A))


@pytest.mark.parametrize("cls", [BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy])
def test_a_cost_beyond_the_float_range_is_refused_not_inf(cls: type[Loss]) -> None:
    Z = np.array([[-1e308, -1e308], [1e308, 1e308]])
    Y = np.array([[1.0, 1.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"J overflows float64"):
        cls().forward(Z, Y)
