"""The training loop: TRAIN-STEP, TRAIN-BATCHES, TRAIN-PREDICT."""

from __future__ import annotations

import numpy as np
import pytest

from refnn import (
    Adam,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    GradientDescent,
    Momentum,
    TrainingDivergedError,
    fit,
    mlp,
    predict,
)
from refnn.train import minibatches
from tests.strategies import normal


def _data(seed: int, m: int = 64) -> tuple[np.ndarray, np.ndarray]:
    X = normal(seed, 2, m)
    Y = (X[0:1] * X[1:2] > 0).astype(np.float64)  # XOR-like: needs the hidden layer
    return X, Y


@pytest.mark.spec("TRAIN-STEP", "TRAIN-PREDICT")
def test_full_batch_training_learns_xor() -> None:
    X, Y = _data(0)
    model = mlp([2, 16, 1], rng=np.random.default_rng(0))
    history = fit(model, BinaryCrossEntropy(), Momentum(0.5, 0.9), X, Y, epochs=400)
    assert history.cost[-1] < 0.25 * history.cost[0]
    assert np.mean(predict(model, X) == Y) >= 0.95


@pytest.mark.spec("TRAIN-STEP")
def test_one_epoch_is_one_gradient_step() -> None:
    X, Y = _data(1, m=10)
    a = mlp([2, 3, 1], rng=np.random.default_rng(0))
    b = mlp([2, 3, 1], rng=np.random.default_rng(0))
    history = fit(a, BinaryCrossEntropy(), GradientDescent(0.3), X, Y, epochs=1)
    loss = BinaryCrossEntropy()
    J = loss.forward(b.forward(X), Y)
    b.backward(loss.backward())
    GradientDescent(0.3).step(b)
    assert history.cost == [J]
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)


@pytest.mark.spec("TRAIN-BATCHES")
def test_minibatches_partition_the_examples() -> None:
    batches = list(minibatches(10, 3, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = list(minibatches(10, 3, np.random.default_rng(0)))
    assert all(np.array_equal(x, y) for x, y in zip(batches, again, strict=True))
    assert np.array_equal(np.concatenate(list(minibatches(5, 2, None))), np.arange(5))
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        list(minibatches(5, 0, None))


@pytest.mark.spec("TRAIN-PREDICT")
def test_predict_thresholds_at_one_half() -> None:
    model = mlp([1, 1], rng=np.random.default_rng(0))
    model.layers[0].params["W"][...] = 1.0
    np.testing.assert_array_equal(predict(model, np.array([[-1.0, 0.0, 1.0]])), [[0.0, 1.0, 1.0]])
    X = np.array([[-1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(predict(model, X, threshold=0.7), [[0.0, 0.0, 1.0]])
    # a NaN threshold made every prediction 0 without a word
    with pytest.raises(ValueError, match=r"threshold must be in \[-inf, inf\], got nan"):
        predict(model, X, threshold=float("nan"))
    with pytest.raises(TypeError, match=r"threshold must be a real number, got '0\.5'"):
        predict(model, X, threshold="0.5")  # type: ignore[arg-type]


def test_divergence_names_the_epoch() -> None:
    X, Y = _data(2)
    X = X * 1e3
    model = mlp([2, 8, 1], rng=np.random.default_rng(0), output="linear")

    with pytest.raises(TrainingDivergedError, match=r"diverged at epoch \d+"):
        fit(model, BinaryCrossEntropyWithLogits(), GradientDescent(1e30), X, Y, epochs=50)


def test_fit_argument_errors() -> None:
    X, Y = _data(3, m=8)
    model = mlp([2, 1], rng=np.random.default_rng(0))
    with pytest.raises(
        TypeError, match=r"optimizer must be a refnn Optimizer instance .* got the class Adam"
    ):
        fit(model, BinaryCrossEntropy(), Adam, X, Y, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"loss must be a refnn Loss instance .* got the class"):
        fit(model, BinaryCrossEntropy, GradientDescent(0.1), X, Y, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"model must be a refnn Sequential instance .* got list"):
        fit(list(model.layers), BinaryCrossEntropy(), GradientDescent(0.1), X, Y, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="X must be a numpy array, got list"):
        fit(model, BinaryCrossEntropy(), GradientDescent(0.1), X.tolist(), Y, epochs=1)
    with pytest.raises(ValueError, match="needs rng"):
        fit(model, BinaryCrossEntropy(), GradientDescent(0.1), X, Y, epochs=1, batch_size=2)
    with pytest.raises(ValueError, match="same number of examples, got 8 and 7"):
        fit(model, BinaryCrossEntropy(), GradientDescent(0.1), X, Y[:, :7], epochs=1)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        fit(model, BinaryCrossEntropy(), GradientDescent(0.1), X, Y, epochs=0)
    # m = 0 (was a ZeroDivisionError, or range()'s "arg 3 must not be zero") and no example axis
    for batch_size in (None, 2):
        with pytest.raises(
            ValueError, match=r"at least one example \(m >= 1\), got shape \(2, 0\)"
        ):
            fit(model, BinaryCrossEntropy(), GradientDescent(0.1), X[:, :0], Y[:, :0], epochs=1,
                batch_size=batch_size, rng=np.random.default_rng(0))  # fmt: skip
    with pytest.raises(
        ValueError, match=r"example axis \(the last\), got shapes \(\) and \(1, 8\)"
    ):
        fit(model, BinaryCrossEntropy(), GradientDescent(0.1), np.zeros(()), Y, epochs=1)
