"""Run 2: a small CNN on the 8 x 8 digits (images 1 x 8 x 8 x m, examples last).

Conv2D(1 -> 16, 3x3, padding 1) - ReLU - Conv2D(16 -> 32, 3x3, padding 1) - ReLU - MaxPool2D(2)
- Flatten - Dense(512, 10), logits into the fused softmax cross-entropy, Adam on mini-batches.
Target: >= 97% test accuracy on the fixed stratified held-out split (20%, seed 0).
"""

from __future__ import annotations

from typing import Any, TextIO

import numpy as np

from demo.data import Split, digits
from demo.training import RunResult, Settings, train_adam
from refnn.activations import ReLU
from refnn.conv import Conv2D
from refnn.dense import Dense
from refnn.flatten import Flatten
from refnn.layer import Layer
from refnn.losses import SoftmaxCrossEntropy
from refnn.model import Sequential
from refnn.pool import MaxPool2D

NAME = "cnn"
FILTERS = (16, 32)
SEED = 0
FULL = Settings(epochs=15, batch_size=32, lr=0.003, target=0.97)
QUICK = Settings(epochs=3, batch_size=32, lr=0.003, limit_train=300, limit_test=100)
#: Layer classes outside refnn's public ones that a saved model of this run holds (none).
EXTRA_LAYERS: tuple[type[Layer[Any]], ...] = ()


def build(shape: tuple[int, int, int], n_classes: int, *, seed: int = SEED) -> Sequential:
    """Conv-ReLU-Conv-ReLU (3x3, same size) - MaxPool(2) - Flatten - Dense (logits)."""
    c, h, w = shape
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Conv2D(c, FILTERS[0], 3, padding=1, rng=rng),
            ReLU(),
            Conv2D(FILTERS[0], FILTERS[1], 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2D(2),
            Flatten(),
            Dense(FILTERS[1] * (h // 2) * (w // 2), n_classes, rng=rng, init="xavier"),
        ]
    )


def run(*, quick: bool, out: TextIO, data: Split | None = None) -> RunResult:
    """Train and report (one progress line per epoch on ``out``)."""
    settings = QUICK if quick else FULL
    data = (data if data is not None else digits("images", seed=SEED)).limit(
        settings.limit_train, settings.limit_test
    )
    c, h, w = (int(s) for s in data.X_train.shape[:3])
    k: int = data.Y_train.shape[0]
    model = build((c, h, w), k)
    n_flat = FILTERS[1] * (h // 2) * (w // 2)
    return train_adam(
        NAME,
        f"Conv2D({c}->{FILTERS[0]}, 3x3, pad 1) - ReLU - Conv2D({FILTERS[0]}->{FILTERS[1]}, "
        f"3x3, pad 1) - ReLU - MaxPool 2x2 - Flatten - Dense({n_flat}, {k}), "
        f"softmax cross-entropy, Adam lr={settings.lr}",
        model,
        SoftmaxCrossEntropy(),
        data,
        settings,
        seed=SEED,
        out=out,
    )
