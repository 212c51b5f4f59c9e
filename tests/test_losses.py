"""Losses: BCE-*, CE-*, SOFTMAX-CE-* against loops, formulas, limits and the gradient checker,
and the bad inputs every loss refuses (NOTE-INPUTS, NOTE-STALE)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refnn.losses
from refnn import (
    Adam,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    Loss,
    MeanSquaredError,
    MulticlassHinge,
    Sequential,
    Softmax,
    SoftmaxCrossEntropy,
    fit,
    mlp,
)
from refnn._validate import FloatRangeError
from refnn.activations import sigmoid, softmax, softmax_backward
from refnn.gradcheck import check_grad
from refnn.losses import (
    WeightedLoss,
    WeightNorm,
    bce_backward,
    bce_cost,
    bce_logits_backward,
    bce_logits_cost,
    ce_backward,
    ce_cost,
    clip_probabilities,
    hinge_terms,
    log_softmax,
    mse_backward,
    mse_cost,
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
from refnn.verify.cases import component_cases
from refnn.verify.problems import Objective, loss_problem, model_problem
from refnn.verify.run import run_case
from tests.oracles.losses_more import (
    hinge_loop,
    mse_loop,
    weighted_bce_logits_loop,
    weighted_softmax_ce_loop,
)
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
    norm = {"weight_norm": "m"} if cls.takes_weights else {}
    assert loss.config() == {"soft_labels": True, "dtype": "float32", **norm}
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


# --- MSE, the multiclass hinge, per-example weights (MSE-*, HINGE-*, LOSS-WEIGHTS) -------------


@st.composite
def shapes_km(draw: st.DrawFn, min_k: int = 1) -> tuple[int, int]:
    """(k, m): outputs or classes and examples, shrinking to the smallest."""
    return draw(st.integers(min_k, 5)), draw(st.integers(1, 5))


@st.composite
def weighted_problems(
    draw: st.DrawFn, categorical: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Logits, labels (one-hot columns or 0/1) and weights >= 0 (some exactly 0), all drawn."""
    k, m = draw(shapes_km(min_k=2 if categorical else 1))
    Z = draw(arrays((k, m), bound=8.0))
    Y = draw(one_hot(k, m) if categorical else binary_labels((k, m)))
    w = draw(hnp.arrays(np.float64, m, elements=st.sampled_from([0.0, 1.0]) | st.floats(0.01, 3.0)))
    return Z, Y, w


WEIGHTED: list[tuple[type[WeightedLoss], Any]] = [
    (BinaryCrossEntropyWithLogits, weighted_bce_logits_loop),
    (SoftmaxCrossEntropy, weighted_softmax_ce_loop),
]


@pytest.mark.spec("MSE-COST", "MSE-GRAD")
@settings(max_examples=20)
@given(data=st.data())
def test_mse_matches_the_loop(data: st.DataObject) -> None:
    km = data.draw(shapes_km())
    A, Y = data.draw(arrays(km, bound=50.0)), data.draw(arrays(km, bound=50.0))
    J_loop, dA_loop = mse_loop(A, Y)
    loss = MeanSquaredError()
    assert loss.forward(A, Y) == pytest.approx(J_loop, rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(loss.backward(), dA_loop, rtol=1e-12, atol=0)
    assert mse_cost(A, Y) == loss.forward(A, Y)


@pytest.mark.spec("MSE-COST", "MSE-GRAD")
@settings(max_examples=20)
@given(A=arrays((3, 4)), size=arrays((3, 4), min_magnitude=1e-6), where=binary_labels((3, 4)))
def test_mse_is_zero_only_at_the_targets_and_grows_as_the_square(
    A: FloatArray, size: FloatArray, where: FloatArray
) -> None:
    shift = size * where  # entries 0 or at least 1e-6 away (their squares do not underflow)
    assert mse_cost(A, A.copy()) == 0.0
    np.testing.assert_array_equal(mse_backward(A, A.copy()), 0.0)
    # J(Y + t d) = t² J(Y + d): exactly quadratic in the error, any real targets
    assert mse_cost(A + 2.0 * shift, A) == pytest.approx(4.0 * mse_cost(A + shift, A), rel=1e-12)
    assert (mse_cost(A + shift, A) > 0) == bool(np.any(shift != 0))


@pytest.mark.spec("MSE-COST", "MSE-GRAD")
def test_mse_hand_values_and_float32() -> None:
    A = np.array([[1.0, 2.0], [0.0, -1.0]])
    Y = np.array([[0.0, 2.0], [3.0, 1.0]])  # errors 1, 0, -3, -2: squares 1 + 0 + 9 + 4
    loss = MeanSquaredError()
    assert loss.forward(A, Y) == 7.0
    np.testing.assert_array_equal(loss.backward(), [[1.0, 0.0], [-3.0, -2.0]])
    loss32 = MeanSquaredError(dtype=np.float32)
    assert loss32.forward(A.astype(np.float32), Y) == 7.0
    assert loss32.backward().dtype == np.float32
    assert loss32.config() == {"dtype": "float32"}
    assert MeanSquaredError(**loss32.config()).config() == loss32.config()


@pytest.mark.spec("HINGE-COST", "HINGE-GRAD")
@settings(max_examples=20)
@given(data=st.data(), margin=st.sampled_from([1.0, 0.5, 2.0]))
def test_hinge_matches_the_loop(data: st.DataObject, margin: float) -> None:
    k, m = data.draw(shapes_km())
    Z, Y = data.draw(arrays((k, m), bound=6.0)), data.draw(one_hot(k, m))
    J_loop, dZ_loop = hinge_loop(Z, Y, margin)
    loss = MulticlassHinge(margin)
    assert loss.forward(Z, Y) == pytest.approx(J_loop, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(loss.backward(), dZ_loop, rtol=1e-12, atol=1e-15)


@pytest.mark.spec("HINGE-COST", "HINGE-GRAD")
def test_hinge_hand_values_with_a_kink_and_the_correct_class_adding_nothing() -> None:
    Z = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    Y = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    # example 0 (class 0): 1 + 0.5 - 1 = 0.5 and 1 + 3 - 1 = 3; example 1 (class 2): 1 + 2 = 3
    # and 1 - 1 - 0 = 0, exactly the kink: inactive (the subgradient 0, as PyTorch takes)
    loss = MulticlassHinge()
    assert loss.forward(Z, Y) == (3.5 + 3.0) / 2
    np.testing.assert_array_equal(loss.backward(), [[-1.0, 0.5], [0.5, 0.0], [0.5, -0.5]])
    # the correct class is never counted: a score Δ above every other one costs exactly 0
    assert loss.forward(np.array([[5.0], [4.0], [-3.0]]), np.array([[1.0], [0.0], [0.0]])) == 0.0
    np.testing.assert_array_equal(loss.backward(), 0.0)
    # counting it would add Δ per example: the SVM loss of one class is 0, not Δ
    assert MulticlassHinge(2.0).forward(np.array([[7.0, -1.0]]), np.ones((1, 2))) == 0.0


@pytest.mark.spec("HINGE-GRAD")
@settings(max_examples=20)
@given(data=st.data())
def test_hinge_subgradient_columns_sum_to_zero_and_descend(data: st.DataObject) -> None:
    k, m = data.draw(shapes_km(min_k=2))
    Z, Y = data.draw(arrays((k, m), bound=4.0)), data.draw(one_hot(k, m))
    loss = MulticlassHinge()
    J = loss.forward(Z, Y)
    dZ = loss.backward()
    np.testing.assert_allclose(dZ.sum(axis=0), 0.0, atol=1e-15)  # shifting a column changes nothing
    # a small step against the subgradient never increases a convex piecewise-linear J
    assert loss.forward(Z - 1e-3 * dZ, Y) <= J + 1e-12


@pytest.mark.spec("HINGE-COST", "HINGE-GRAD")
@settings(max_examples=20)
@given(data=st.data())
def test_hinge_passes_the_gradient_checker_away_from_kinks(data: st.DataObject) -> None:
    Z, Y = data.draw(arrays((3, 2), bound=4.0)), data.draw(one_hot(3, 2))
    terms = 1.0 + Z - (Y * Z).sum(axis=0)
    assume(np.all(np.abs(terms[Y == 0]) > 1e-3))
    assert passes(loss_problem(MulticlassHinge(), Z, Y))


@pytest.mark.spec("BCE-LOGITS-COST", "BCE-LOGITS-GRAD", "SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@pytest.mark.spec("LOSS-WEIGHTS")
@pytest.mark.parametrize(("cls", "loop"), WEIGHTED, ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("norm", ["m", "sum"])
@settings(max_examples=20)
@given(data=st.data())
def test_weighted_losses_match_the_loops(
    cls: type[WeightedLoss], loop: Any, norm: WeightNorm, data: st.DataObject
) -> None:
    Z, Y, w = data.draw(weighted_problems(cls.categorical))
    assume(norm == "m" or w.sum() > 0)
    w_before = w.copy()
    loss = cls(weight_norm=norm)
    J_loop, dZ_loop = loop(Z, Y, list(w), norm)
    assert loss.forward(Z, Y, weights=w) == pytest.approx(J_loop, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(loss.backward(), dZ_loop, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(w, w_before)  # nothing the caller passed is modified


@pytest.mark.spec("LOSS-WEIGHTS", "BCE-LOGITS-COST", "SOFTMAX-CE-COST")
@pytest.mark.parametrize("cls", [BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy])
@settings(max_examples=20)
@given(data=st.data(), scale=st.floats(0.01, 100.0))
def test_unit_weights_are_the_plain_loss_and_sum_norm_is_scale_free(
    cls: type[WeightedLoss], data: st.DataObject, scale: float
) -> None:
    Z, Y, w = data.draw(weighted_problems(cls.categorical))
    m = Z.shape[1]
    plain, weighted = cls(), cls()
    J = plain.forward(Z, Y)
    assert weighted.forward(Z, Y, weights=np.ones((1, m))) == pytest.approx(J, rel=1e-14)
    np.testing.assert_allclose(weighted.backward(), plain.backward(), rtol=1e-14, atol=1e-17)
    assume(w.sum() > 0)
    by_sum = cls(weight_norm="sum")
    J_w = by_sum.forward(Z, Y, weights=w)
    assert by_sum.forward(Z, Y, weights=scale * w) == pytest.approx(J_w, rel=1e-13, abs=1e-15)


@pytest.mark.spec("LOSS-WEIGHTS", "SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@settings(max_examples=20)
@given(data=st.data())
def test_a_mask_with_sum_norm_is_the_mean_over_the_kept_examples(data: st.DataObject) -> None:
    Z, Y, _ = data.draw(weighted_problems(True))
    m = Z.shape[1]
    mask = data.draw(hnp.arrays(np.float64, m, elements=st.sampled_from([0.0, 1.0])))
    assume(mask.sum() > 0)
    kept = mask == 1.0
    masked = SoftmaxCrossEntropy(weight_norm="sum")
    J = masked.forward(Z, Y, weights=mask)
    dZ = masked.backward()
    plain = SoftmaxCrossEntropy()
    assert J == pytest.approx(plain.forward(Z[:, kept], Y[:, kept]), rel=1e-13, abs=1e-15)
    np.testing.assert_allclose(dZ[:, kept], plain.backward(), rtol=1e-13, atol=1e-17)
    np.testing.assert_array_equal(dZ[:, ~kept], 0.0)  # padding gets no gradient


@pytest.mark.spec("LOSS-WEIGHTS", "SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@pytest.mark.parametrize("cls", [BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy])
@settings(max_examples=15)
@given(data=st.data(), norm=st.sampled_from(["m", "sum"]))
def test_weighted_losses_pass_the_gradient_checker(
    cls: type[WeightedLoss], data: st.DataObject, norm: WeightNorm
) -> None:
    Z, Y, w = data.draw(weighted_problems(cls.categorical))
    assume(w.sum() > 0)
    assert passes(loss_problem(cls(weight_norm=norm), Z, Y, weights=w))


@pytest.mark.spec("LOSS-WEIGHTS")
def test_weighted_float32_stays_float32() -> None:
    Z = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -2.0]], dtype=np.float32)
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    w = np.array([1.0, 0.0, 2.0])
    for cls in (BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy):
        loss32, loss64 = cls(dtype=np.float32, weight_norm="sum"), cls(weight_norm="sum")
        J32 = loss32.forward(Z, Y, weights=w)
        dZ32 = loss32.backward()
        assert dZ32.dtype == np.float32
        assert J32 == pytest.approx(loss64.forward(Z.astype(np.float64), Y, weights=w), rel=1e-6)
        np.testing.assert_allclose(dZ32, loss64.backward(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "match"),
    [
        (MeanSquaredError, {"Y": np.ones((2, 2))}, ValueError, r"prediction's shape \(2, 3\)"),
        (MeanSquaredError, {"Y": np.full((2, 3), np.nan)}, ValueError, "Y must be finite"),
        (MeanSquaredError, {"Y": [[1.0] * 3] * 2}, TypeError, "Y must be a numpy array, got list"),
        (MeanSquaredError, {"weights": np.ones(3)}, TypeError, "MeanSquaredError takes no weights"),
        (MulticlassHinge, {"Y": np.full((2, 3), 0.5)}, ValueError, r"labels in \{0, 1\}"),
        (MulticlassHinge, {"weights": np.ones(3)}, TypeError, "MulticlassHinge takes no weights"),
        (CrossEntropy, {"weights": np.ones(3)}, TypeError, "CrossEntropy takes no weights"),
        (SoftmaxCrossEntropy, {"weights": np.ones(2)}, ValueError, r"\(m,\) or \(1, m\) = \(3,\)"),
        (SoftmaxCrossEntropy, {"weights": np.ones((3, 1))}, ValueError, r"got \(3, 1\)"),
        (SoftmaxCrossEntropy, {"weights": -np.ones(3)}, ValueError, "weights must be >= 0"),
        (SoftmaxCrossEntropy, {"weights": np.full(3, np.inf)}, ValueError, "weights must be fin"),
        (SoftmaxCrossEntropy, {"weights": [1.0, 1.0, 1.0]}, TypeError, "weights must be a numpy"),
        (
            BinaryCrossEntropyWithLogits,
            {"weights": np.ones(3, dtype=bool)},
            TypeError,
            "weights must hold real numbers",
        ),
    ],
)
def test_new_losses_refuse_bad_input_by_name(
    make: type[Loss], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    A = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    Y = kwargs.pop("Y", np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(error, match=match):
        make().forward(A, Y, **kwargs)


def test_new_loss_constructors_refuse_bad_arguments_by_name() -> None:
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="margin must be"):
            MulticlassHinge(bad)
    with pytest.raises(TypeError, match="margin must be a real number"):
        MulticlassHinge("1")  # type: ignore[arg-type]
    for norm in ("mean", None, "M"):
        with pytest.raises(ValueError, match=r'weight_norm must be "m" or "sum", got'):
            SoftmaxCrossEntropy(weight_norm=norm)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="soft_labels"):
        MeanSquaredError(soft_labels=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match='not all be 0 with weight_norm="sum"'):
        SoftmaxCrossEntropy(weight_norm="sum").forward(
            np.zeros((2, 2)), np.eye(2), weights=np.zeros(2)
        )
    with pytest.raises(ValueError, match="sum of the weights must be finite"):
        BinaryCrossEntropyWithLogits(weight_norm="sum").forward(
            np.zeros((1, 2)), np.ones((1, 2)), weights=np.full(2, 1e308)
        )


@pytest.mark.spec("MSE-COST", "HINGE-COST")
def test_mse_and_hinge_beyond_the_float_range_are_refused_not_inf() -> None:
    with pytest.raises(FloatRangeError, match="squared error J overflows float64"):
        MeanSquaredError().forward(np.full((1, 2), 1e200), np.full((1, 2), -1e200))
    with pytest.raises(FloatRangeError, match="hinge loss J overflows float64"):
        MulticlassHinge().forward(np.array([[-1e308], [1e308]]), np.array([[1.0], [0.0]]))


@pytest.mark.spec("LOSS-WEIGHTS")
def test_weights_modified_after_forward_are_refused() -> None:
    w = np.ones(3)
    loss = SoftmaxCrossEntropy()
    loss.forward(np.zeros((2, 3)), np.eye(2)[:, [0, 1, 0]], weights=w)
    w[1] = 2.0
    with pytest.raises(RuntimeError, match="weights was modified after forward"):
        loss.backward()


def _wrong(name: str) -> tuple[str, Any, Any]:
    """A seeded wrong gradient: (component, attribute to patch, the wrong function)."""
    wrong: dict[str, tuple[str, Any, Any]] = {
        "MSE without the 2": (
            "MeanSquaredError",
            (MeanSquaredError, "_grad"),
            staticmethod(lambda A, Y: (A - Y) / A.shape[-1]),
        ),
        "hinge gradient missing the correct class": (
            "MulticlassHinge",
            (refnn.losses, "hinge_backward"),
            lambda Z, Y, margin=1.0: (hinge_terms(Z, Y, margin)[0] > 0) / Z.shape[-1],
        ),
        "weights ignored in the gradient": (
            "SoftmaxCrossEntropy",
            (SoftmaxCrossEntropy, "_weighted_grad"),
            staticmethod(lambda Z, Y, c: softmax_ce_backward(Z, Y)),
        ),
    }
    return wrong[name]


@pytest.mark.spec("MSE-GRAD", "HINGE-GRAD", "LOSS-WEIGHTS")
@pytest.mark.parametrize(
    "bug",
    [
        "MSE without the 2",
        "hinge gradient missing the correct class",
        "weights ignored in the gradient",
    ],
)
def test_make_check_cases_catch_a_seeded_wrong_gradient(
    bug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug fails exactly its make-check cases: all of the component's cases that exercise
    the wrong code path, and none of the others."""
    component, (owner, attr), bad = _wrong(bug)
    cases = [c for c in component_cases() if c.component.split()[0] == component]
    assert all(run_case(c).passed for c in cases)
    monkeypatch.setattr(owner, attr, bad)
    failed = {c.config for c in cases if not run_case(c).passed}
    exercised = {c.config for c in cases if "weights" in c.config or "weights" not in bug}
    assert failed == exercised


@pytest.mark.spec("MSE-COST", "MSE-GRAD", "HINGE-COST", "HINGE-GRAD", "LOSS-WEIGHTS")
@settings(max_examples=25)
@given(data=st.data(), which=st.sampled_from(["mse", "hinge", "weighted"]))
def test_new_losses_in_float32_agree_with_float64(data: st.DataObject, which: str) -> None:
    k, m = data.draw(shapes_km(min_k=2))
    Z = data.draw(arrays((k, m), dtype=np.float32, bound=8.0))
    kwargs: dict[str, Any] = {}
    if which == "mse":
        make: Any = MeanSquaredError
        Y = data.draw(arrays((k, m), dtype=np.float32, bound=8.0))
    elif which == "hinge":
        make, Y = MulticlassHinge, data.draw(one_hot(k, m))
        terms = 1.0 + Z.astype(np.float64) - (Y * Z).sum(axis=0)
        assume(np.all(np.abs(terms[Y == 0]) > 1e-3))  # float32 rounding may not flip a kink
    else:
        make, Y = SoftmaxCrossEntropy, data.draw(one_hot(k, m))
        kwargs["weights"] = data.draw(hnp.arrays(np.float64, m, elements=st.floats(0.01, 3.0)))
    loss32, loss64 = make(dtype=np.float32), make()
    J32, J64 = loss32.forward(Z, Y, **kwargs), loss64.forward(Z.astype(np.float64), Y, **kwargs)
    dZ32, dZ64 = loss32.backward(), loss64.backward()
    assert dZ32.dtype == np.float32
    scale = float(np.abs(Z).max() + np.abs(Y).max() + 1.0)
    assert J32 == pytest.approx(J64, rel=1e-5, abs=1e-6 * scale * scale * k)
    np.testing.assert_allclose(dZ32, dZ64, rtol=1e-5, atol=1e-6 * scale / m)


@pytest.mark.spec("MSE-COST", "MSE-GRAD", "HINGE-COST", "HINGE-GRAD", "OPT-RMSPROP")
@pytest.mark.spec("OPT-ADAMW", "OPT-NESTEROV")
def test_fit_learns_with_the_new_losses_and_optimizers() -> None:
    """A linear regression (MSE) with each new optimizer, and three separable classes (hinge)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 64))
    Y = np.array([[1.0, -2.0, 0.5]]) @ X + 0.3
    for opt in (refnn.RMSprop(0.01), refnn.AdamW(0.05, weight_decay=1e-3), refnn.Nesterov(0.05)):
        model = Sequential([refnn.Dense(3, 1, rng=np.random.default_rng(1))])
        history = fit(model, MeanSquaredError(), opt, X, Y, epochs=60, batch_size=16, rng=rng)
        assert history.cost[-1] < 0.05 * history.cost[0], type(opt).__name__
    classes = rng.integers(0, 3, 90)
    centres = np.array([[0.0, 4.0, -4.0], [4.0, -3.0, -3.0]])
    Xc = centres[:, classes] + 0.5 * rng.standard_normal((2, 90))
    Yc = np.eye(3)[:, classes]
    model = mlp([2, 8, 3], rng=np.random.default_rng(2), output="linear")
    fit(model, MulticlassHinge(), refnn.Nesterov(0.05), Xc, Yc, epochs=30, batch_size=16, rng=rng)
    assert np.mean(model.forward(Xc, training=False).argmax(axis=0) == classes) >= 0.95


@pytest.mark.spec("HINGE-COST", "HINGE-GRAD")
@settings(max_examples=20)
@given(data=st.data(), T=st.integers(1, 3))
def test_hinge_on_sequences_sums_over_steps_and_averages_over_examples(
    data: st.DataObject, T: int
) -> None:
    """k x T x m: one class per (step, example) column; J sums over the T steps (NOTE-COST)."""
    k, m = data.draw(shapes_km(min_k=2))
    Z = data.draw(arrays((k, T, m), bound=4.0))
    Y = data.draw(one_hot(k, T * m)).reshape(k, T, m)
    loss = MulticlassHinge()
    J = loss.forward(Z, Y)
    J_flat, dZ_flat = hinge_loop(Z.reshape(k, T * m), Y.reshape(k, T * m))
    assert J == pytest.approx(T * J_flat, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(loss.backward().reshape(k, T * m), T * dZ_flat, rtol=1e-12)


@pytest.mark.spec("LOSS-WEIGHTS", "SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@settings(max_examples=20)
@given(data=st.data(), T=st.integers(1, 3), norm=st.sampled_from(["m", "sum"]))
def test_weighted_softmax_ce_on_sequences_is_the_sum_over_steps(
    data: st.DataObject, T: int, norm: WeightNorm
) -> None:
    """k x T x m logits: one weight per example (the last axis), shared by its T steps."""
    k, m = data.draw(shapes_km(min_k=2))
    Z = data.draw(arrays((k, T, m), bound=6.0))
    Y = data.draw(one_hot(k, T * m)).reshape(k, T, m)
    w = data.draw(hnp.arrays(np.float64, m, elements=st.floats(0.01, 3.0)))
    loss = SoftmaxCrossEntropy(weight_norm=norm)
    J = loss.forward(Z, Y, weights=w)
    dZ = loss.backward()
    for t in range(T):
        step = SoftmaxCrossEntropy(weight_norm=norm)
        J -= step.forward(np.ascontiguousarray(Z[:, t]), np.ascontiguousarray(Y[:, t]), weights=w)
        np.testing.assert_allclose(dZ[:, t], step.backward(), rtol=1e-14, atol=1e-17)
    assert J == pytest.approx(0.0, abs=1e-13 * T * (1 + 6.0 * k))
