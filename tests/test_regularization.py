"""L2 regularization: L2-COST, L2-GRAD and TRAIN-L2; the strength is ``l2`` as in ``fit``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import (
    LSTM,
    Dense,
    GradientDescent,
    Sequential,
    SoftmaxCrossEntropy,
    Tanh,
    fit,
    mlp,
)
from refnn.activations import softmax
from refnn.gradcheck import check_grad
from refnn.regularization import add_l2_grads, decayed_weights, l2_penalty
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from refnn.verify.problems import Objective, l2_model_problem, model_problem

strengths = st.floats(0.0, 10.0)
seeds = st.sampled_from(range(8))  # model initialisations: a sweep, not a search space


def normal(seed: int, *shape: int) -> FloatArray:
    return np.random.default_rng(seed).standard_normal(shape)


def one_hot(seed: int, k: int, m: int) -> np.ndarray:
    Y = np.zeros((k, m))
    Y[np.random.default_rng(seed).integers(0, k, m), np.arange(m)] = 1.0
    return Y


def _model(seed: int) -> Sequential:
    rng = np.random.default_rng(seed)
    model = Sequential([Dense(3, 4, rng=rng), Tanh(), Dense(4, 2, rng=rng)])
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][...] = normal(seed + 9, *layer.params["b"].shape)
    return model


def _passes(problem: Objective) -> bool:
    try:
        return check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt).passed
    finally:
        problem.restore()


@pytest.mark.spec("L2-COST")
@given(seed=seeds, l2=strengths, m=st.integers(1, 100))
def test_penalty_is_the_sum_of_squared_weights_only(seed: int, l2: float, m: int) -> None:
    model = _model(seed)
    total = 0.0
    for layer in model.layers:
        if "W" in layer.params:
            for w in layer.params["W"].flat:
                total += float(w) ** 2
    assert l2_penalty(model, l2, m) == pytest.approx(l2 / (2 * m) * total, rel=1e-13, abs=0)
    for layer in model.layers:  # biases are not decayed: changing them changes nothing
        if "b" in layer.params:
            layer.params["b"][...] += 100.0
    assert l2_penalty(model, l2, m) == pytest.approx(l2 / (2 * m) * total, rel=1e-13, abs=0)


@pytest.mark.spec("L2-COST")
def test_which_parameters_are_decayed() -> None:
    rng = np.random.default_rng(0)
    model = Sequential([LSTM(2, 3, rng=rng), Tanh(), Dense(3, 1, rng=rng)])
    assert [(type(layer).__name__, key) for layer, key in decayed_weights(model)] == [
        ("LSTM", "W"),
        ("Dense", "W"),
    ]
    single = Dense(2, 2, rng=rng)
    W = single.params["W"]
    assert l2_penalty(single, 4.0, 2) == pytest.approx(float(np.sum(W * W)))
    assert l2_penalty(single, 0.0, 2) == 0.0


@pytest.mark.spec("L2-GRAD")
@given(seed=seeds, l2=strengths, m=st.integers(1, 100))
def test_gradient_adds_lambda_over_m_times_W(seed: int, l2: float, m: int) -> None:
    model = _model(seed)
    model.forward(normal(seed, 3, 5))
    model.backward(normal(seed + 1, 2, 5))
    before = {(id(layer), k): g for layer in model.layers for k, g in layer.grads.items()}
    copies = {key: g.copy() for key, g in before.items()}
    add_l2_grads(model, l2, m)
    for layer in model.layers:
        for k, g in layer.grads.items():
            old = copies[(id(layer), k)]
            if k == "W":
                np.testing.assert_allclose(g, old + l2 / m * layer.params["W"], rtol=1e-15)
            else:
                assert g is before[(id(layer), k)]  # db untouched, not even copied
    for key, g in before.items():  # the previous gradient arrays were not modified
        np.testing.assert_array_equal(g, copies[key])


@pytest.mark.spec("L2-GRAD")
def test_gradient_keeps_the_dtype_and_needs_a_backward() -> None:
    layer = Dense(2, 3, rng=np.random.default_rng(0), dtype=np.float32)
    layer.forward(np.ones((2, 4), dtype=np.float32))
    layer.backward(np.ones((3, 4), dtype=np.float32))
    add_l2_grads(layer, 0.5, 4)
    assert layer.grads["W"].dtype == np.float32
    with pytest.raises(RuntimeError, match="call backward"):
        add_l2_grads(Dense(2, 2, rng=np.random.default_rng(0)), 0.1, 3)


def test_arguments_are_checked() -> None:
    model = _model(0)
    with pytest.raises(ValueError, match=r"l2 must be in \[0.0, inf\), got -0.1"):
        l2_penalty(model, -0.1, 3)
    with pytest.raises(TypeError, match="l2 must be a real number"):
        add_l2_grads(model, "0.1", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="m must be an int >= 1"):
        l2_penalty(model, 0.1, 0)
    with pytest.raises(TypeError, match="must be a Sequential or a Layer"):
        l2_penalty([model], 0.1, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="l2 must be in"):
        fit(
            model,
            SoftmaxCrossEntropy(),
            GradientDescent(0.1),
            normal(0, 3, 4),
            one_hot(0, 2, 4),
            epochs=1,
            l2=-1.0,
        )


# --- gradient checks: the penalised cost as a model problem -----------------------------------


@pytest.mark.spec("L2-COST", "L2-GRAD")
@settings(max_examples=15)
@given(seed=seeds, l2=st.floats(0.01, 10.0), data=st.data())
def test_penalised_model_passes_the_gradient_checker(
    seed: int, l2: float, data: st.DataObject
) -> None:
    m = data.draw(st.integers(1, 4))
    X = data.draw(arrays((3, m)))
    Y = np.eye(2)[:, data.draw(st.lists(st.integers(0, 1), min_size=m, max_size=m))]
    assert _passes(l2_model_problem(_model(seed), SoftmaxCrossEntropy(), X, Y, l2))


def test_the_check_catches_a_missing_weight_decay_gradient() -> None:
    # the cost includes the penalty but the gradient forgets (λ/m) W: the checker must say so
    model = _model(0)
    X, Y = normal(0, 3, 4), one_hot(0, 2, 4)
    base = model_problem(model, SoftmaxCrossEntropy(), X, Y)

    def f(*args: np.ndarray) -> float:
        return base.f(*args) + l2_penalty(model, 2.0, 4)

    broken = Objective(f, base.grad, base.inputs, base.wrt, base.restore)
    result = check_grad(broken.f, broken.grad, broken.inputs, wrt=broken.wrt)
    broken.restore()
    assert not result.passed
    failing = {a.name for a in result.arrays if a.verdict == "WRONG"}
    assert failing == {"0.W", "2.W"}  # only the decayed weights are wrong, not X or the biases


# --- TRAIN-L2 ----------------------------------------------------------------------------------


@pytest.mark.spec("TRAIN-L2", "L2-COST", "L2-GRAD")
@given(seed=seeds, l2=st.floats(0.0, 5.0))
def test_fit_with_l2_is_one_penalised_gradient_step_per_batch(seed: int, l2: float) -> None:
    m, B = 7, 3
    X, Y = normal(seed, 3, m), one_hot(seed, 2, m)
    a, b = _model(seed), _model(seed)
    history = fit(
        a,
        SoftmaxCrossEntropy(),
        GradientDescent(0.2),
        X,
        Y,
        epochs=1,
        batch_size=B,
        rng=np.random.default_rng(seed),
        l2=l2,
    )
    # by hand: m in the penalty is the training set's 7, not the batch size
    order = np.random.default_rng(seed).permutation(m)
    loss, total = SoftmaxCrossEntropy(), 0.0
    for start in range(0, m, B):
        idx = order[start : start + B]
        J = loss.forward(b.forward(X[:, idx]), Y[:, idx])
        b.backward(loss.backward())
        dense = (b.layers[0], b.layers[2])
        J += l2 / (2 * m) * sum(float(np.sum(L.params["W"] ** 2)) for L in dense)
        for L in dense:
            L.grads["W"] = L.grads["W"] + l2 / m * L.params["W"]
        GradientDescent(0.2).step(b)
        total += J * len(idx)
    assert history.cost[0] == pytest.approx(total / m, rel=1e-13)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(pa.value, pb.value, rtol=1e-13, atol=1e-15)


@pytest.mark.spec("TRAIN-L2")
def test_l2_zero_is_plain_training_and_l2_shrinks_the_weights() -> None:
    X = normal(0, 4, 40)
    Y = np.zeros((3, 40))
    Y[(X[0] > 0).astype(int) + (X[1] > 0), np.arange(40)] = 1.0
    runs = {}
    for l2 in (None, 0.0, 5.0):
        model = mlp([4, 8, 3], rng=np.random.default_rng(0), output="linear")
        loss, opt = SoftmaxCrossEntropy(), GradientDescent(0.5)
        if l2 is None:  # the default: no l2 argument at all
            history = fit(model, loss, opt, X, Y, epochs=60)
        else:
            history = fit(model, loss, opt, X, Y, epochs=60, l2=l2)
        norm = sum(float(np.sum(model.layers[i].params["W"] ** 2)) for i in (0, 2))
        runs[l2] = (history.cost, norm, model)
    assert runs[None][0] == runs[0.0][0]
    assert runs[5.0][1] < 0.8 * runs[0.0][1]
    # the reported cost includes the penalty: it is at least the penalty of the final weights
    assert runs[5.0][0][-1] > 5.0 / (2 * 40) * runs[5.0][1] * 0.9
    assert np.all(np.isfinite(softmax(runs[5.0][2].forward(X))))
