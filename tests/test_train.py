"""The training loop: TRAIN-STEP, TRAIN-BATCHES, TRAIN-PREDICT; full-batch, mini-batch and
stochastic gradient descent through ``fit``, and its argument checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import (
    Adam,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    Dense,
    GradientDescent,
    Layer,
    Momentum,
    Sequential,
    Tanh,
    TrainingDivergedError,
    fit,
    mlp,
    predict,
)
from refnn.testing.strategies import arrays, binary_labels, sizes
from refnn.train import History, minibatches
from refnn.types import FloatArray


def _global_state() -> tuple[list[int], int]:
    """numpy's legacy global generator state (key and position), to prove it is never touched."""
    state = np.random.get_state(legacy=False)["state"]
    return [int(x) for x in state["key"]], int(state["pos"])


class Recorder(Layer[Any]):
    """The identity, remembering the columns of every training batch it sees (row 0 = ids)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, None]:
        if training:
            self.batches.append([int(i) for i in X[0]])
        return X, None

    def _backward(
        self, dY: FloatArray, cache: None
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return dY, {}, {}


class CountingGD(GradientDescent):
    """Gradient descent counting its steps."""

    steps = 0

    def step(self, model: Any) -> None:
        self.steps += 1
        super().step(model)


@dataclass(frozen=True)
class Data:
    """X (3, m) whose row 0 holds each example's id, labels Y (1, m)."""

    X: FloatArray
    Y: FloatArray

    @property
    def m(self) -> int:
        return int(self.X.shape[1])


@st.composite
def datasets(draw: st.DrawFn, max_m: int = 12, min_m: int = 1) -> Data:
    m = draw(st.integers(min_m, max_m), label="m")
    X = draw(arrays((3, m)), label="X")
    X[0] = np.arange(m)  # the example's id travels in row 0
    return Data(X, draw(binary_labels((1, m)), label="Y"))


def _fixed(m: int) -> Data:
    X = np.random.default_rng(0).standard_normal((3, m))
    X[0] = np.arange(m)
    return Data(X, (X[1:2] > 0).astype(np.float64))


def _model(recorder: Recorder | None = None) -> Sequential:
    rng = np.random.default_rng(0)
    layers: list[Layer[Any]] = [Dense(3, 4, rng=rng), Tanh(), Dense(4, 1, rng=rng)]
    return Sequential([recorder, *layers] if recorder else layers)


def _train(
    data: Data, batch_size: int | None, rng: np.random.Generator | None, epochs: int = 2
) -> tuple[Sequential, list[float]]:
    model = _model()
    history = fit(
        model,
        BinaryCrossEntropyWithLogits(),
        GradientDescent(0.1),
        data.X,
        data.Y,
        epochs=epochs,
        batch_size=batch_size,
        rng=rng,
    )
    return model, history.cost


def _xor(m: int = 64) -> tuple[FloatArray, FloatArray]:
    X = np.random.default_rng(0).standard_normal((2, m))
    return X, (X[0:1] * X[1:2] > 0).astype(np.float64)  # XOR-like: needs the hidden layer


# --- TRAIN-STEP, TRAIN-BATCHES ----------------------------------------------------------------


@pytest.mark.spec("TRAIN-STEP", "TRAIN-PREDICT")
def test_full_batch_training_learns_xor() -> None:
    X, Y = _xor()
    model = mlp([2, 16, 1], rng=np.random.default_rng(0))
    history = fit(model, BinaryCrossEntropy(), Momentum(0.5, 0.9), X, Y, epochs=400)
    assert history.cost[-1] < 0.25 * history.cost[0]
    assert np.mean(predict(model, X) == Y) >= 0.95


def _fit_batches(
    model: Sequential, data: Data, alpha: float, epochs: int, size: int, rng: np.random.Generator
) -> History:
    """fit with logit BCE and gradient descent at ``alpha`` in mini-batches of ``size``."""
    return fit(
        model,
        BinaryCrossEntropyWithLogits(),
        GradientDescent(alpha),
        data.X,
        data.Y,
        epochs=epochs,
        batch_size=size,
        rng=rng,
    )


@pytest.mark.spec("TRAIN-STEP", "TRAIN-BATCHES")
@given(data=datasets(max_m=9), B=st.data())
@settings(max_examples=25)
def test_an_epoch_is_the_spec_loop_over_shuffled_batches(data: Data, B: st.DataObject) -> None:
    """Against TRAIN-BATCHES and TRAIN-STEP written out: for each batch of a fresh permutation,
    J_B = loss(model(X_B), Y_B), backward, θ := θ - α dθ; the epoch cost is Σ_B |B| J_B / m."""
    size = B.draw(st.integers(1, data.m + 2), label="batch_size")
    a, b = _model(), _model()
    history = _fit_batches(a, data, 0.3, 2, size, np.random.default_rng(0))
    twin = np.random.default_rng(0)
    loss = BinaryCrossEntropyWithLogits()
    costs = []
    for _ in range(2):
        order = twin.permutation(data.m) if size < data.m else np.arange(data.m)
        total = 0.0
        for start in range(0, data.m, size):
            idx = order[start : start + size]
            J = loss.forward(b.forward(data.X[:, idx]), data.Y[:, idx])
            b.backward(loss.backward())
            GradientDescent(0.3).step(b)
            total += J * len(idx)
        costs.append(total / data.m)
    assert history.cost == pytest.approx(costs, rel=1e-14)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(pa.value, pb.value, rtol=1e-14, atol=1e-16)


@pytest.mark.spec("TRAIN-BATCHES")
@given(m=sizes(12), B=st.data())
def test_minibatches_partition_the_examples(m: int, B: st.DataObject) -> None:
    size = B.draw(st.integers(1, m + 2), label="batch_size")
    batches = list(minibatches(m, size, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [size] * (m // size) + ([m % size] if m % size else [])
    assert sorted(np.concatenate(batches).tolist()) == list(range(m))
    again = list(minibatches(m, size, np.random.default_rng(0)))
    assert all(np.array_equal(x, y) for x, y in zip(batches, again, strict=True))
    assert np.array_equal(np.concatenate(list(minibatches(m, size, None))), np.arange(m))


@pytest.mark.spec("TRAIN-BATCHES")
@given(data=datasets(), B=st.data())
def test_every_example_is_used_once_per_epoch(data: Data, B: st.DataObject) -> None:
    size = B.draw(st.integers(1, data.m), label="batch_size")
    recorder = Recorder()
    _fit_batches(_model(recorder), data, 0.05, 3, size, np.random.default_rng(0))
    per_epoch = -(-data.m // size)
    assert len(recorder.batches) == 3 * per_epoch
    for e in range(3):
        batches = recorder.batches[e * per_epoch : (e + 1) * per_epoch]
        expected = [size] * (data.m // size) + ([data.m % size] if data.m % size else [])
        assert [len(b) for b in batches] == expected
        assert sorted(i for b in batches for i in b) == list(range(data.m))


@pytest.mark.spec("TRAIN-BATCHES")
@given(data=datasets(min_m=2), B=st.data())
def test_the_callers_generator_drives_the_shuffle(data: Data, B: st.DataObject) -> None:
    size = B.draw(st.integers(1, data.m - 1), label="batch_size")
    recorder, rng = Recorder(), np.random.default_rng(0)
    _fit_batches(_model(recorder), data, 0.05, 3, size, rng)
    twin = np.random.default_rng(0)
    expected = [twin.permutation(data.m).tolist() for _ in range(3)]  # one per epoch
    assert [i for b in recorder.batches for i in b] == [i for order in expected for i in order]
    # fit drew exactly those permutations from the caller's generator and nothing else
    assert rng.bit_generator.state == twin.bit_generator.state


@pytest.mark.spec("TRAIN-BATCHES", "TRAIN-STEP")
@given(data=datasets(max_m=10), extra=st.integers(0, 3))
def test_batch_size_of_m_or_more_is_exactly_full_batch(data: Data, extra: int) -> None:
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    full, full_cost = _train(data, None, None)
    batched, batched_cost = _train(data, data.m + extra, rng)
    assert batched_cost == full_cost
    for a, b in zip(full.parameters(), batched.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    assert rng.bit_generator.state == state  # no shuffle, so nothing drawn


@pytest.mark.spec("TRAIN-BATCHES", "TRAIN-STEP")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_seed_same_run_other_seed_other_run(seed: int) -> None:
    data = _fixed(6)
    a, cost_a = _train(data, 1, np.random.default_rng(seed), epochs=3)
    b, cost_b = _train(data, 1, np.random.default_rng(seed), epochs=3)
    assert cost_a == cost_b
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)
    c, _ = _train(data, 1, np.random.default_rng(seed + 10), epochs=3)  # another shuffle
    assert any(
        not np.array_equal(pa.value, pc.value)
        for pa, pc in zip(a.parameters(), c.parameters(), strict=True)
    )


@pytest.mark.spec("TRAIN-STEP")
def test_stochastic_gradient_descent_steps_once_per_example() -> None:
    data = _fixed(7)
    opt = CountingGD(0.01)
    fit(
        _model(),
        BinaryCrossEntropyWithLogits(),
        opt,
        data.X,
        data.Y,
        epochs=3,
        batch_size=1,
        rng=np.random.default_rng(0),
    )
    assert opt.steps == 21


@pytest.mark.spec("TRAIN-STEP", "TRAIN-BATCHES")
def test_mini_batch_training_learns_and_leaves_global_state_alone() -> None:
    np.random.seed(7)
    global_state = _global_state()
    X, Y = _xor(256)
    rng = np.random.default_rng(3)
    model = Sequential([Dense(2, 16, rng=rng), Tanh(), Dense(16, 1, rng=rng)])
    history = fit(
        model, BinaryCrossEntropyWithLogits(), Adam(0.02), X, Y, epochs=80, batch_size=32, rng=rng
    )
    assert history.cost[-1] < 0.35 * history.cost[0]
    accuracy = np.mean((model.forward(X, training=False) > 0) == (Y > 0.5))
    assert accuracy >= 0.95
    assert _global_state() == global_state


# --- TRAIN-PREDICT --------------------------------------------------------------------------


@pytest.mark.spec("TRAIN-PREDICT")
@given(X=arrays((1, 5)), threshold=st.floats(0.01, 0.99))
def test_predict_is_one_where_the_output_reaches_the_threshold(
    X: FloatArray, threshold: float
) -> None:
    model = mlp([1, 1], rng=np.random.default_rng(0))
    model.layers[0].params["W"][...] = 1.0
    A = model.forward(X, training=False)
    np.testing.assert_array_equal(predict(model, X, threshold=threshold), A >= threshold)
    np.testing.assert_array_equal(predict(model, X), A >= 0.5)
    # at the threshold itself: σ(0) = 0.5 exactly gives 1
    np.testing.assert_array_equal(predict(model, np.zeros((1, 2))), [[1.0, 1.0]])


@pytest.mark.parametrize(
    ("threshold", "error", "message"),
    [
        (np.inf, ValueError, r"threshold must be a finite number, got inf"),
        (-np.inf, ValueError, r"threshold must be a finite number, got -inf"),
        (float("nan"), ValueError, r"threshold must be a finite number, got nan"),
        ("0.5", TypeError, r"threshold must be a real number, got '0\.5'"),
        (True, TypeError, r"threshold must be a real number, got True"),
        (0.5 + 0j, TypeError, r"threshold must be a real number"),
    ],
)
def test_predict_threshold_must_be_a_finite_number(
    threshold: object, error: type, message: str
) -> None:
    """np.inf was refused as "threshold must be in [-inf, inf], got inf"."""
    model = mlp([1, 1], rng=np.random.default_rng(0))
    with pytest.raises(error, match=message):
        predict(model, np.zeros((1, 3)), threshold=threshold)  # type: ignore[arg-type]


def test_predict_of_something_not_a_model_names_it() -> None:
    """Was "AttributeError: 'NoneType' object has no attribute 'forward'"."""
    with pytest.raises(TypeError, match=r"model must be a refnn Sequential instance .* NoneType"):
        predict(None, np.zeros((1, 3)))  # type: ignore[arg-type]


# --- bad arguments --------------------------------------------------------------------------


def test_divergence_names_the_epoch() -> None:
    X, Y = _xor()
    model = mlp([2, 8, 1], rng=np.random.default_rng(0), output="linear")
    with pytest.raises(TrainingDivergedError, match=r"diverged at epoch \d+"):
        fit(model, BinaryCrossEntropyWithLogits(), GradientDescent(1e30), 1e3 * X, Y, epochs=50)


def test_fit_argument_errors() -> None:
    data = _fixed(8)
    X, Y = data.X[1:], data.Y
    model = mlp([2, 1], rng=np.random.default_rng(0))
    bce, gd = BinaryCrossEntropy(), GradientDescent(0.1)
    with pytest.raises(
        TypeError, match=r"optimizer must be a refnn Optimizer instance .* got the class Adam"
    ):
        fit(model, bce, Adam, X, Y, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"loss must be a refnn Loss instance .* got the class"):
        fit(model, BinaryCrossEntropy, gd, X, Y, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"model must be a refnn Sequential instance .* got list"):
        fit(list(model.layers), bce, gd, X, Y, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="X must be a numpy array, got list"):
        fit(model, bce, gd, X.tolist(), Y, epochs=1)
    with pytest.raises(ValueError, match="needs rng"):
        fit(model, bce, gd, X, Y, epochs=1, batch_size=2)
    with pytest.raises(ValueError, match="same number of examples, got 8 and 7"):
        fit(model, bce, gd, X, Y[:, :7], epochs=1)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        fit(model, bce, gd, X, Y, epochs=0)
    with pytest.raises(TypeError, match="epochs must be an int >= 1, got True"):
        fit(model, bce, gd, X, Y, epochs=True)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        fit(model, bce, gd, X, Y, epochs=1, batch_size=0, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        fit(model, bce, gd, X, Y, epochs=1, batch_size=2, rng=0)  # type: ignore[arg-type]
    # m = 0 (was a ZeroDivisionError, or range()'s "arg 3 must not be zero") and no example axis
    for batch_size in (None, 2):
        with pytest.raises(
            ValueError, match=r"at least one example \(m >= 1\), got shape \(2, 0\)"
        ):
            fit(
                model,
                bce,
                gd,
                X[:, :0],
                Y[:, :0],
                epochs=1,
                batch_size=batch_size,
                rng=np.random.default_rng(0),
            )
    with pytest.raises(
        ValueError, match=r"example axis \(the last\), got shapes \(\) and \(1, 8\)"
    ):
        fit(model, bce, gd, np.zeros(()), Y, epochs=1)


def _parameters(model: Sequential) -> list[FloatArray]:
    return [p.copy() for layer in model.layers for p in layer.params.values()]


@pytest.mark.parametrize("on_epoch", ["print", 1, [print]])
def test_a_bad_on_epoch_is_refused_before_training(on_epoch: object) -> None:
    """Was "'str' object is not callable" after a whole epoch had changed the model."""
    data = _fixed(8)
    model = _model()
    before = _parameters(model)
    with pytest.raises(TypeError, match=r"on_epoch must be None or a function .* got"):
        fit(
            model,
            BinaryCrossEntropyWithLogits(),
            GradientDescent(0.1),
            data.X,
            data.Y,
            epochs=1,
            on_epoch=on_epoch,  # type: ignore[arg-type]
        )
    for a, b in zip(_parameters(model), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("X", "Y", "message"),
    [
        (np.ones((3, 8)), np.ones((2, 8)), r"Y must have the prediction's shape \(1, 1\)"),
        (np.ones((3, 8)), np.full((1, 8), np.nan), "Y must be finite"),
        (np.ones((3, 8)), np.ones((1, 8)).astype(str), "Y must hold real numbers"),
        (np.ones((4, 8)), np.ones((1, 8)), r"X must have n_in = 3 on axis 0"),
    ],
)
def test_data_that_does_not_fit_the_model_is_refused_before_anything_is_drawn(
    X: FloatArray, Y: FloatArray, message: str
) -> None:
    """Was refused in the first batch, after the epoch's permutation was drawn from rng."""
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises((ValueError, TypeError), match=message):
        fit(
            _model(),
            BinaryCrossEntropyWithLogits(),
            GradientDescent(0.1),
            X,
            Y,
            epochs=1,
            batch_size=2,
            rng=rng,
        )
    assert rng.bit_generator.state == state
