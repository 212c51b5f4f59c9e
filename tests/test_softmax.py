"""Softmax, categorical cross-entropy and the fused form: SOFTMAX-*, CE-*, SOFTMAX-CE-*."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn import Adam, CrossEntropy, Dense, Sequential, Softmax, SoftmaxCrossEntropy, fit, mlp
from refnn.gradcheck import check_grad
from refnn.softmax import (
    ce_backward,
    ce_cost,
    log_softmax,
    softmax,
    softmax_backward,
    softmax_ce_backward,
    softmax_ce_cost,
)
from refnn.types import FloatArray
from refnn.verify.problems import Problem, layer_problem, loss_problem
from tests.oracles.seeds import cross_entropy_loop, softmax_loop, softmax_vjp_loop
from tests.strategies import normal, seeds, sizes

EPS = float(np.finfo(np.float64).eps)
big = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
logit_arrays = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6), elements=big
)


def one_hot(seed: int, k: int, m: int) -> np.ndarray:
    Y = np.zeros((k, m))
    Y[np.random.default_rng(seed).integers(0, k, m), np.arange(m)] = 1.0
    return Y


def soft_targets(seed: int, k: int, m: int) -> np.ndarray:
    return softmax(normal(seed, k, m))


def passes(problem: Problem) -> bool:
    try:
        result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    finally:
        problem.restore()
    return result.passed


# --- SOFTMAX-FWD -------------------------------------------------------------------------------


@pytest.mark.spec("SOFTMAX-FWD")
@given(Z=logit_arrays)
def test_softmax_columns_are_distributions_even_for_huge_logits(Z: np.ndarray) -> None:
    A = softmax(Z)  # warnings are errors: no overflow for |z| up to 1e4
    assert A.shape == Z.shape and A.dtype == Z.dtype
    assert np.all(np.isfinite(A)) and np.all((A >= 0) & (A <= 1))
    np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=0, atol=Z.shape[0] * EPS)
    # the largest logit of each column gets the largest probability
    top = np.take_along_axis(A, Z.argmax(axis=0)[None], axis=0)[0]
    np.testing.assert_array_equal(top, A.max(axis=0))


@pytest.mark.spec("SOFTMAX-FWD")
@given(Z=logit_arrays, data=st.data())
def test_softmax_is_shift_invariant_per_column(Z: np.ndarray, data: st.DataObject) -> None:
    c = data.draw(hnp.arrays(np.float64, (1, *Z.shape[1:]), elements=big))
    shifted = Z + c
    # Z + c is rounded: each logit moves by at most eps |z + c|, which moves a by <= 2 a eps |.|
    rounding = 4 * EPS * (np.abs(Z).max() + np.abs(c).max() + 1.0)
    np.testing.assert_allclose(softmax(shifted), softmax(Z), rtol=0, atol=rounding)


@pytest.mark.spec("SOFTMAX-FWD")
@given(k=sizes, m=sizes, seed=seeds)
def test_softmax_matches_the_loop(k: int, m: int, seed: int) -> None:
    Z = normal(seed, k, m, scale=5.0)
    np.testing.assert_allclose(softmax(Z), softmax_loop(Z), rtol=1e-13)


@pytest.mark.spec("SOFTMAX-FWD")
def test_softmax_extreme_columns() -> None:
    Z = np.array([[1e4, -1e4, 0.0, 7.0], [-1e4, -1e4, 0.0, 7.0], [0.0, 1e4, 0.0, 7.0]])
    A = softmax(Z)
    np.testing.assert_array_equal(A[:, 0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(A[:, 1], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(A[:, 2:], 1 / 3, rtol=1e-15)
    # a single class is certain whatever its logit
    np.testing.assert_array_equal(softmax(np.array([[-1e4, 0.0, 1e4]])), [[1.0, 1.0, 1.0]])


@pytest.mark.spec("SOFTMAX-FWD", "SOFTMAX-CE-COST")
@given(Z=logit_arrays)
def test_log_softmax_is_log_of_softmax_where_that_is_finite(Z: np.ndarray) -> None:
    L = log_softmax(Z)
    assert np.all(np.isfinite(L)) and np.all(L <= 0)
    A = softmax(Z)
    ok = A > 1e-300
    np.testing.assert_allclose(np.exp(L[ok]), A[ok], rtol=1e-12)


# --- SOFTMAX-BWD -------------------------------------------------------------------------------


@pytest.mark.spec("SOFTMAX-BWD")
@given(k=sizes, m=sizes, seed=seeds)
def test_softmax_backward_is_the_jacobian_product(k: int, m: int, seed: int) -> None:
    A = softmax(normal(seed, k, m, scale=2.0))
    dA = normal(seed + 1, k, m)
    np.testing.assert_allclose(softmax_backward(dA, A), softmax_vjp_loop(dA, A), atol=1e-15)
    # each column of the Jacobian sums to zero: a constant upstream gradient gives dZ = 0
    np.testing.assert_allclose(softmax_backward(np.ones((k, m)), A), 0.0, atol=4 * EPS)


@pytest.mark.spec("SOFTMAX-FWD", "SOFTMAX-BWD")
@settings(max_examples=20)
@given(k=st.integers(2, 6), m=sizes, seed=seeds, rank3=st.booleans())
def test_softmax_layer_passes_the_gradient_checker(k: int, m: int, seed: int, rank3: bool) -> None:
    # k >= 2: with one class softmax is the constant 1, which the checker cannot judge
    # (it reports "inconclusive"); that case is exact below
    shape = (k, 2, m) if rank3 else (k, m)
    assert passes(layer_problem(Softmax(), normal(seed, *shape, scale=2.0), seed=seed))


@pytest.mark.spec("SOFTMAX-FWD", "SOFTMAX-BWD")
@given(m=sizes, seed=seeds)
def test_one_class_softmax_is_constant_with_zero_gradient(m: int, seed: int) -> None:
    layer = Softmax()
    np.testing.assert_array_equal(layer.forward(normal(seed, 1, m, scale=100.0)), 1.0)
    np.testing.assert_array_equal(layer.backward(normal(seed + 1, 1, m)), 0.0)


@pytest.mark.spec("SOFTMAX-FWD", "SOFTMAX-BWD")
def test_softmax_layer_dtype_shape_and_inputs() -> None:
    for dtype in (np.float64, np.float32):
        Z: FloatArray = np.linspace(-50, 50, 24).reshape(4, 2, 3).astype(dtype)
        before = Z.copy()
        layer = Softmax(dtype=dtype)
        A = layer.forward(Z)
        dZ = layer.backward(np.ones_like(A))
        assert A.dtype == dZ.dtype == dtype and A.shape == dZ.shape == Z.shape
        np.testing.assert_array_equal(Z, before)
    assert Softmax(dtype=np.float32).config() == {"dtype": "float32"}
    with pytest.raises(RuntimeError, match="before forward"):
        Softmax().backward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        Softmax().forward(np.array([[np.inf], [0.0]]))


# --- CE-COST, CE-GRAD --------------------------------------------------------------------------


@pytest.mark.spec("CE-COST", "CE-GRAD")
@given(k=sizes, m=sizes, seed=seeds, soft=st.booleans())
def test_cross_entropy_matches_the_loop_and_formula(k: int, m: int, seed: int, soft: bool) -> None:
    A = np.random.default_rng(seed).uniform(0.01, 1.0, (k, m))
    Y = soft_targets(seed, k, m) if soft else one_hot(seed, k, m)
    assert ce_cost(A, Y) == pytest.approx(cross_entropy_loop(A, Y), rel=1e-13)
    np.testing.assert_allclose(ce_backward(A, Y), -Y / A / m, rtol=1e-15)
    loss = CrossEntropy(soft_labels=soft)
    assert loss.forward(A, Y) == ce_cost(A, Y)
    np.testing.assert_array_equal(loss.backward(), ce_backward(A, Y))


@pytest.mark.spec("CE-COST", "CE-GRAD")
def test_cross_entropy_is_zero_at_the_labels_and_finite_at_zero_probability() -> None:
    Y = one_hot(0, 3, 5)
    loss = CrossEntropy()
    assert loss.forward(Y.copy(), Y) == 0.0  # no upper clip: exactly 0
    A = np.array([[0.0, 1.0], [1.0, 0.0]])
    Y2 = np.array([[1.0, 1.0], [0.0, 0.0]])
    J = loss.forward(A, Y2)
    assert J == pytest.approx(-np.log(EPS) / 2, rel=1e-15)  # one example capped at -log δ
    dA = loss.backward()
    assert np.all(np.isfinite(dA))
    assert dA[0, 0] == pytest.approx(-1 / EPS / 2) and dA[0, 1] == -0.5


@pytest.mark.spec("CE-COST", "CE-GRAD")
@settings(max_examples=20)
@given(k=sizes, m=sizes, seed=seeds, soft=st.booleans())
def test_cross_entropy_passes_the_gradient_checker(k: int, m: int, seed: int, soft: bool) -> None:
    A = np.random.default_rng(seed).uniform(0.05, 0.95, (k, m))
    Y = soft_targets(seed, k, m) if soft else one_hot(seed, k, m)
    assert passes(loss_problem(CrossEntropy(soft_labels=soft), A, Y))


# --- SOFTMAX-CE-COST, SOFTMAX-CE-GRAD ----------------------------------------------------------


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD", "CE-COST", "CE-GRAD", "SOFTMAX-BWD")
@given(k=sizes, m=sizes, seed=seeds)
def test_fused_form_equals_softmax_then_cross_entropy(k: int, m: int, seed: int) -> None:
    Z = normal(seed, k, m, scale=3.0)
    Y = one_hot(seed, k, m)
    A = softmax(Z)
    assert softmax_ce_cost(Z, Y) == pytest.approx(ce_cost(A, Y), rel=1e-12, abs=1e-15)
    two_step = softmax_backward(ce_backward(A, Y), A)
    np.testing.assert_allclose(softmax_ce_backward(Z, Y), two_step, atol=1e-15)
    np.testing.assert_allclose(softmax_ce_backward(Z, Y), (A - Y) / m, rtol=1e-15, atol=1e-17)


@pytest.mark.spec("SOFTMAX-CE-COST")
def test_fused_cost_is_exact_where_the_two_step_form_saturates() -> None:
    Z = np.array([[-1e4, 3.0], [0.0, 3.0]])  # example 0: the right class is 1e4 below
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    J = SoftmaxCrossEntropy().forward(Z, Y)
    assert J == pytest.approx((1e4 + np.log(2)) / 2, rel=1e-15)
    assert CrossEntropy().forward(softmax(Z), Y) == pytest.approx((-np.log(EPS) + np.log(2)) / 2)


@pytest.mark.spec("SOFTMAX-CE-GRAD")
@given(k=st.integers(2, 6), m=sizes, seed=seeds, scale=st.floats(0.0, 30.0))
def test_fused_gradient_vanishes_at_soft_targets(k: int, m: int, seed: int, scale: float) -> None:
    # softmax(Z) = Y is reachable only for soft targets: take Y = softmax(Z) itself
    Z = normal(seed, k, m, scale=scale)
    Y = softmax(Z)
    loss = SoftmaxCrossEntropy(soft_labels=True)
    loss.forward(Z, Y)
    np.testing.assert_allclose(loss.backward(), 0.0, atol=2 * EPS / m)
    # and it is the minimum: any other logits cost more (Gibbs' inequality)
    J_min = loss.forward(Z, Y)
    assert loss.forward(Z + normal(seed + 1, k, m), Y) >= J_min - 1e-12


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
@settings(max_examples=20)
@given(k=sizes, m=sizes, seed=seeds, soft=st.booleans())
def test_fused_form_passes_the_gradient_checker(k: int, m: int, seed: int, soft: bool) -> None:
    Y = soft_targets(seed, k, m) if soft else one_hot(seed, k, m)
    problem = loss_problem(SoftmaxCrossEntropy(soft_labels=soft), normal(seed, k, m, scale=3), Y)
    assert passes(problem)


@pytest.mark.spec("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
def test_fused_form_in_float32_stays_float32() -> None:
    Z = normal(0, 4, 6).astype(np.float32)
    Y = one_hot(0, 4, 6).astype(np.float32)
    loss = SoftmaxCrossEntropy(dtype=np.float32)
    J = loss.forward(Z, Y)
    dZ = loss.backward()
    assert dZ.dtype == np.float32
    assert J == pytest.approx(softmax_ce_cost(Z.astype(np.float64), Y.astype(np.float64)), rel=1e-5)


# --- labels and predictions are validated ------------------------------------------------------


@pytest.mark.parametrize(
    ("Y", "match"),
    [
        (np.array([[1.0, 0.0], [0.0, 0.0]]), r"exactly one 1 \(one-hot\); column \(1,\) sums to 0"),
        (np.array([[1.0, 1.0], [1.0, 0.0]]), r"column \(0,\) sums to 2"),
        (np.array([[0.5, 1.0], [0.5, 0.0]]), r"\{0, 1\} \(one-hot columns\)"),
        (np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]), r"prediction's shape \(2, 2\)"),
        (np.array([[1, 0], [0, 1]]).astype(np.complex128), "real numbers"),
    ],
)
def test_bad_hard_labels_are_refused(Y: np.ndarray, match: str) -> None:
    for loss in (CrossEntropy(), SoftmaxCrossEntropy()):
        with pytest.raises((ValueError, TypeError), match=match):
            loss.forward(np.full((2, 2), 0.5), Y)


def test_soft_labels_and_predictions_are_validated() -> None:
    soft = SoftmaxCrossEntropy(soft_labels=True)
    soft.forward(np.zeros((2, 2)), np.array([[0.25, 1.0], [0.75, 0.0]]))  # accepted
    with pytest.raises(ValueError, match=r"must sum to 1; column \(0,\) sums to 0.5"):
        soft.forward(np.zeros((2, 2)), np.array([[0.25, 1.0], [0.25, 0.0]]))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        soft.forward(np.zeros((2, 1)), np.array([[1.5], [-0.5]]))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        CrossEntropy().forward(np.array([[1.2], [-0.2]]), np.array([[1.0], [0.0]]))
    with pytest.raises(ValueError, match=r"class axis and an example axis"):
        CrossEntropy().forward(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    with pytest.raises(RuntimeError, match="before forward"):
        CrossEntropy().backward()
    assert CrossEntropy(soft_labels=True).config() == {"soft_labels": True, "dtype": "float64"}


def test_losses_do_not_modify_their_inputs() -> None:
    Z, Y = normal(3, 3, 4), one_hot(3, 3, 4)
    Z0, Y0 = Z.copy(), Y.copy()
    for loss in (SoftmaxCrossEntropy(), CrossEntropy()):
        loss.forward(softmax(Z) if isinstance(loss, CrossEntropy) else Z, Y)
        loss.backward()
    np.testing.assert_array_equal(Z, Z0)
    np.testing.assert_array_equal(Y, Y0)


# --- in a model --------------------------------------------------------------------------------


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
    accuracy = np.mean(softmax(model.forward(X, training=False)).argmax(axis=0) == classes)
    assert accuracy >= 0.95
    # the same network ending in a Softmax layer with CrossEntropy predicts the same
    two_step = Sequential([*model.layers, Softmax()])
    np.testing.assert_allclose(two_step.forward(X), softmax(model.forward(X)), rtol=1e-15)
    assert isinstance(model.layers[0], Dense)
