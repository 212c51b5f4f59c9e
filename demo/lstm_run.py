"""Run 3: an LSTM sequence classifier on the digits read row by row.

Each 8 x 8 digit is a sequence of T = 8 rows of 8 pixels (X in R^{8 x 8 x m}); an LSTM reads
it, the last hidden state h_T goes to a Dense layer whose 10 logits feed the fused softmax
cross-entropy. ``LastStep`` (H[:, T-1, :]) is refnn.LastStep.
"""

from __future__ import annotations

from typing import Any, TextIO

import numpy as np

from demo.data import Split, digits
from demo.training import RunResult, Settings, train_adam
from refnn.dense import Dense
from refnn.layer import Layer
from refnn.losses import SoftmaxCrossEntropy
from refnn.lstm import LSTM
from refnn.model import Sequential
from refnn.sequence import LastStep

NAME = "lstm"
HIDDEN = 64
SEED = 0
FULL = Settings(epochs=25, batch_size=32, lr=0.01)
QUICK = Settings(epochs=3, batch_size=32, lr=0.01, limit_train=300, limit_test=100)
#: Layer classes outside refnn's public ones that a saved model of this run holds.
EXTRA_LAYERS: tuple[type[Layer[Any]], ...] = ()  # every layer used is public


def build(n_in: int, n_classes: int, *, seed: int = SEED) -> Sequential:
    """LSTM(n_in, 64) -> LastStep -> Dense(64, n_classes) (logits)."""
    rng = np.random.default_rng(seed)
    return Sequential(
        [LSTM(n_in, HIDDEN, rng=rng), LastStep(), Dense(HIDDEN, n_classes, rng=rng, init="xavier")]
    )


def run(*, quick: bool, out: TextIO, data: Split | None = None) -> RunResult:
    """Train and report (one progress line per epoch on ``out``)."""
    settings = QUICK if quick else FULL
    data = (data if data is not None else digits("rows", seed=SEED)).limit(
        settings.limit_train, settings.limit_test
    )
    n_in: int = data.X_train.shape[0]
    k: int = data.Y_train.shape[0]
    return train_adam(
        NAME,
        f"LSTM({n_in}, {HIDDEN}) -> last step -> Dense({HIDDEN}, {k}), "
        f"softmax cross-entropy, Adam lr={settings.lr}",
        build(n_in, k),
        SoftmaxCrossEntropy(),
        data,
        settings,
        seed=SEED,
        out=out,
    )
