"""Stochastic and mini-batch gradient descent through ``fit``: TRAIN-BATCHES, TRAIN-STEP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import (
    Adam,
    BinaryCrossEntropyWithLogits,
    Dense,
    GradientDescent,
    Layer,
    Sequential,
    Tanh,
    fit,
)
from refnn.types import FloatArray
from tests.strategies import labels, normal, seeds


def _global_state() -> tuple[list[int], int]:
    """numpy's legacy global generator state (key and position), to prove it is never touched."""
    state = np.random.get_state(legacy=False)["state"]
    return [int(x) for x in state["key"]], int(state["pos"])


class Recorder(Layer[Any]):
    """The identity, remembering the columns of every training batch it sees (row 0 = ids)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        if training:
            self.batches.append([int(i) for i in X[0]])
        return X

    def backward(self, dA: FloatArray) -> FloatArray:
        return dA


def _data(seed: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    X = normal(seed, 3, m)
    X[0] = np.arange(m)  # the example's id travels in row 0
    return X, labels(seed, 1, m)


def _model(seed: int, recorder: Recorder | None = None) -> Sequential:
    rng = np.random.default_rng(seed)
    layers: list[Layer[Any]] = [Dense(3, 4, rng=rng), Tanh(), Dense(4, 1, rng=rng)]
    return Sequential([recorder, *layers] if recorder else layers)


def _train(
    seed: int, m: int, batch_size: int | None, rng: np.random.Generator | None, epochs: int = 2
) -> tuple[Sequential, list[float]]:
    X, Y = _data(seed, m)
    model = _model(seed)
    history = fit(model, BinaryCrossEntropyWithLogits(), GradientDescent(0.1), X, Y,
                  epochs=epochs, batch_size=batch_size, rng=rng)  # fmt: skip
    return model, history.cost


@pytest.mark.spec("TRAIN-BATCHES")
@given(m=st.integers(1, 12), data=st.data(), seed=seeds)
def test_every_example_is_used_once_per_epoch(m: int, data: st.DataObject, seed: int) -> None:
    B = data.draw(st.integers(1, m), label="batch_size")
    X, Y = _data(seed, m)
    recorder = Recorder()
    epochs = 3
    fit(_model(seed, recorder), BinaryCrossEntropyWithLogits(), GradientDescent(0.05), X, Y,
        epochs=epochs, batch_size=B, rng=np.random.default_rng(seed))  # fmt: skip
    per_epoch = -(-m // B)
    assert len(recorder.batches) == epochs * per_epoch
    for e in range(epochs):
        batches = recorder.batches[e * per_epoch : (e + 1) * per_epoch]
        assert [len(b) for b in batches] == [B] * (m // B) + ([m % B] if m % B else [])
        assert sorted(i for b in batches for i in b) == list(range(m))


@pytest.mark.spec("TRAIN-BATCHES")
@given(m=st.integers(2, 12), data=st.data(), seed=seeds)
def test_the_callers_generator_drives_the_shuffle(m: int, data: st.DataObject, seed: int) -> None:
    B = data.draw(st.integers(1, m - 1), label="batch_size")
    X, Y = _data(seed, m)
    recorder = Recorder()
    rng = np.random.default_rng(seed)
    fit(_model(seed, recorder), BinaryCrossEntropyWithLogits(), GradientDescent(0.05), X, Y,
        epochs=3, batch_size=B, rng=rng)  # fmt: skip
    twin = np.random.default_rng(seed)
    expected = [twin.permutation(m).tolist() for _ in range(3)]  # one permutation per epoch
    seen = [i for b in recorder.batches for i in b]
    assert seen == [i for order in expected for i in order]
    # fit drew exactly those permutations from the caller's generator and nothing else
    assert rng.bit_generator.state == twin.bit_generator.state


@pytest.mark.spec("TRAIN-BATCHES", "TRAIN-STEP")
@given(m=st.integers(1, 10), seed=seeds, extra=st.integers(0, 3))
def test_batch_size_m_is_exactly_full_batch(m: int, seed: int, extra: int) -> None:
    rng = np.random.default_rng(seed)
    state = rng.bit_generator.state
    full, full_cost = _train(seed, m, None, None)
    batched, batched_cost = _train(seed, m, m + extra, rng)
    assert batched_cost == full_cost
    for a, b in zip(full.parameters(), batched.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    assert rng.bit_generator.state == state  # no shuffle, so nothing drawn


@pytest.mark.spec("TRAIN-BATCHES", "TRAIN-STEP")
@given(m=st.integers(2, 10), seed=seeds)
def test_same_seed_same_run_other_seed_other_run(m: int, seed: int) -> None:
    a, cost_a = _train(seed, m, 1, np.random.default_rng(seed), epochs=3)
    b, cost_b = _train(seed, m, 1, np.random.default_rng(seed), epochs=3)
    assert cost_a == cost_b
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)
    orders = {tuple(np.random.default_rng(s).permutation(m)) for s in (seed, seed + 1)}
    c, _ = _train(seed, m, 1, np.random.default_rng(seed + 1), epochs=3)
    if len(orders) == 2:  # a different shuffle takes a different path
        assert any(
            not np.array_equal(pa.value, pc.value)
            for pa, pc in zip(a.parameters(), c.parameters(), strict=True)
        )


@pytest.mark.spec("TRAIN-STEP", "TRAIN-BATCHES")
@settings(max_examples=25)
@given(m=st.integers(1, 9), data=st.data(), seed=seeds)
def test_mini_batch_epoch_is_a_hand_written_loop(m: int, data: st.DataObject, seed: int) -> None:
    B = data.draw(st.integers(1, m), label="batch_size")
    X, Y = _data(seed, m)
    a, b = _model(seed), _model(seed)
    history = fit(a, BinaryCrossEntropyWithLogits(), GradientDescent(0.3), X, Y, epochs=2,
                  batch_size=B, rng=np.random.default_rng(seed))  # fmt: skip
    twin = np.random.default_rng(seed)
    loss = BinaryCrossEntropyWithLogits()
    costs = []
    for _ in range(2):
        order = twin.permutation(m) if B < m else np.arange(m)
        total = 0.0
        for start in range(0, m, B):
            idx = order[start : start + B]
            J = loss.forward(b.forward(X[:, idx]), Y[:, idx])  # J_B: a mean over |B| examples
            b.backward(loss.backward())
            GradientDescent(0.3).step(b)
            total += J * len(idx)
        costs.append(total / m)  # the epoch cost weights each batch by its size
    assert history.cost == pytest.approx(costs, rel=1e-14)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(pa.value, pb.value, rtol=1e-14, atol=1e-16)


@pytest.mark.spec("TRAIN-STEP")
def test_stochastic_gradient_descent_steps_once_per_example() -> None:
    X, Y = _data(0, 7)
    model = _model(0)
    opt = Adam(0.01)
    fit(model, BinaryCrossEntropyWithLogits(), opt, X, Y, epochs=3, batch_size=1,
        rng=np.random.default_rng(0))  # fmt: skip
    assert opt.t == 21


@pytest.mark.spec("TRAIN-STEP", "TRAIN-BATCHES")
def test_mini_batch_training_learns_and_leaves_global_state_alone() -> None:
    np.random.seed(7)
    global_state = _global_state()
    X = normal(1, 2, 256)
    Y = (X[0:1] * X[1:2] > 0).astype(np.float64)
    rng = np.random.default_rng(3)
    model = Sequential([Dense(2, 16, rng=rng), Tanh(), Dense(16, 1, rng=rng)])
    history = fit(model, BinaryCrossEntropyWithLogits(), Adam(0.02), X, Y, epochs=80,
                  batch_size=32, rng=rng)  # fmt: skip
    assert history.cost[-1] < 0.35 * history.cost[0]
    accuracy = np.mean((model.forward(X, training=False) > 0) == (Y > 0.5))
    assert accuracy >= 0.95
    assert _global_state() == global_state


def test_mini_batch_arguments() -> None:
    X, Y = _data(0, 6)
    model = _model(0)
    loss, opt = BinaryCrossEntropyWithLogits(), GradientDescent(0.1)
    with pytest.raises(ValueError, match="needs rng"):
        fit(model, loss, opt, X, Y, epochs=1, batch_size=5)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        fit(model, loss, opt, X, Y, epochs=1, batch_size=0, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        fit(model, loss, opt, X, Y, epochs=1, batch_size=2, rng=0)  # type: ignore[arg-type]
