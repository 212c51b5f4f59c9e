"""A small CNN end to end: Conv2D -> ReLU -> MaxPool2D -> Flatten -> Dense -> Sigmoid + BCE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refnn import (
    Adam,
    AvgPool2D,
    BinaryCrossEntropy,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    fit,
    load,
    predict,
    save,
)
from refnn.types import DTypeLike, FloatArray
from tests.oracles.conv import (
    conv_forward_naive,
    flatten_naive,
    maxpool_forward_naive,
    rel_diff,
)


def cnn(seed: int, channels: int = 4, dtype: DTypeLike = np.float64) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Conv2D(1, channels, 3, padding=1, rng=rng, dtype=dtype),
            ReLU(dtype=dtype),
            MaxPool2D(2, dtype=dtype),
            Flatten(dtype=dtype),
            Dense(channels * 3 * 3, 1, rng=rng, dtype=dtype),
            Sigmoid(dtype=dtype),
        ]
    )


def bars(m: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """6x6 images holding one vertical (label 1) or horizontal (label 0) bar, plus noise."""
    rng = np.random.default_rng(seed)
    X = 0.1 * rng.standard_normal((1, 6, 6, m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    where = rng.integers(0, 6, m)
    for n in range(m):
        if Y[0, n]:
            X[0, :, where[n], n] += 1.0
        else:
            X[0, where[n], :, n] += 1.0
    return X, Y


@pytest.mark.spec("CONV-FWD", "MAXPOOL-FWD", "FLATTEN-FWD")
def test_forward_equals_the_composition_of_the_oracles() -> None:
    model = cnn(0)
    conv, dense = model.layers[0], model.layers[4]
    X, _ = bars(5, 1)
    Z = conv_forward_naive(X, conv.params["W"], conv.params["b"], (1, 1), (1, 1))
    P, _ = maxpool_forward_naive(np.maximum(Z, 0.0), (2, 2), (2, 2))
    logits = dense.params["W"] @ flatten_naive(P) + dense.params["b"]
    expected = 1.0 / (1.0 + np.exp(-logits))
    assert rel_diff(model.forward(X), expected) <= 1e-12


@pytest.mark.spec("CONV-FWD", "CONV-DW", "CONV-DB", "MAXPOOL-BWD", "FLATTEN-BWD")
def test_training_learns_to_tell_vertical_from_horizontal_bars() -> None:
    X, Y = bars(96, 0)
    model = cnn(0)
    history = fit(model, BinaryCrossEntropy(), Adam(lr=0.02), X, Y, epochs=60)
    assert history.cost[-1] < 0.2 * history.cost[0]
    X_test, Y_test = bars(200, 1)
    accuracy = float(np.mean(predict(model, X_test) == Y_test))
    assert accuracy >= 0.95, accuracy


def test_save_and_load_rebuild_the_cnn(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    model = Sequential(
        [
            Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), rng=rng),
            ReLU(),
            AvgPool2D(2, stride=1),
            MaxPool2D((1, 2)),
            Flatten(),
            Dense(3 * 2 * 2, 1, rng=rng),
            Sigmoid(),
        ]
    )
    X = np.random.default_rng(4).standard_normal((2, 6, 6, 3))
    before = model.forward(X, training=False)
    save(model, tmp_path / "cnn.npz")
    loaded = load(tmp_path / "cnn.npz", expect=model)
    np.testing.assert_array_equal(loaded.forward(X, training=False), before)
    assert [layer.config() for layer in loaded.layers] == [layer.config() for layer in model.layers]


@pytest.mark.spec("CONV-FWD", "MAXPOOL-FWD", "FLATTEN-FWD")
def test_float32_cnn_stays_float32_and_close_to_float64() -> None:
    m32, m64 = cnn(0, dtype=np.float32), cnn(0)
    X, Y = bars(8, 2)
    A32 = m32.forward(X.astype(np.float32))
    assert A32.dtype == np.float32
    np.testing.assert_allclose(A32, m64.forward(X), rtol=1e-5)
    loss = BinaryCrossEntropy()
    loss.forward(A32, Y.astype(np.float32))
    dX = m32.backward(loss.backward())
    assert dX.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in m32.parameters())
