"""Run 1: an L-layer MLP binary classifier on the breast-cancer data.

mlp([30, 16, 8, 1]): Dense-ReLU, Dense-ReLU, Dense-Sigmoid, He initialisation, binary
cross-entropy, Adam on mini-batches. Features are standardized with the training split's mean
and standard deviation (the test split never enters the fit).
"""

from __future__ import annotations

from typing import TextIO

import numpy as np

from demo.data import Split, breast_cancer
from demo.training import RunResult, Settings, train_adam
from refnn.losses import BinaryCrossEntropy
from refnn.model import Sequential, mlp

NAME = "mlp"
HIDDEN = (16, 8)
SEED = 0
FULL = Settings(epochs=30, batch_size=32, lr=0.003)
QUICK = Settings(epochs=4, batch_size=32, lr=0.003, limit_train=200, limit_test=100)


def build(n_x: int, *, seed: int = SEED) -> Sequential:
    """The model: ``mlp([n_x, 16, 8, 1])`` with a sigmoid output."""
    return mlp([n_x, *HIDDEN, 1], rng=np.random.default_rng(seed))


def run(*, quick: bool, out: TextIO, data: Split | None = None) -> RunResult:
    """Train and report (one progress line per epoch on ``out``)."""
    settings = QUICK if quick else FULL
    data = (data if data is not None else breast_cancer(seed=SEED)).limit(
        settings.limit_train, settings.limit_test
    )
    n_x: int = data.X_train.shape[0]
    dims = "-".join(str(d) for d in (n_x, *HIDDEN, 1))
    return train_adam(
        NAME,
        f"L-layer MLP {dims} (ReLU hidden, sigmoid output), BCE, Adam lr={settings.lr}",
        build(n_x),
        BinaryCrossEntropy(),
        data,
        settings,
        seed=SEED,
        out=out,
    )
