"""``make check`` cases for the LSTM: BPTT gradients (dX, dW, db) for T = 1..10."""

from __future__ import annotations

from functools import partial

import numpy as np

from refnn.lstm import LSTM
from refnn.verify.cases import Case
from refnn.verify.problems import Problem, layer_problem

#: The IDs whose derivatives every LSTM case verifies (the forward ones define J).
LSTM_IDS = (
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)

#: (n_in, n_hidden, T, m, seed): every T from 1 to 10, small sizes so the check stays fast.
CONFIGS = (
    (1, 1, 1, 1, 0),
    (3, 2, 1, 4, 1),
    (2, 3, 2, 3, 2),
    (3, 4, 3, 2, 0),
    (1, 2, 4, 3, 1),
    (2, 2, 5, 2, 2),
    (4, 3, 6, 1, 0),
    (2, 3, 7, 2, 1),
    (3, 2, 8, 2, 2),
    (1, 3, 9, 2, 0),
    (2, 2, 10, 3, 1),
    (3, 3, 10, 2, 2),
)


def _lstm(n_in: int, n_hidden: int, T: int, m: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    layer = LSTM(n_in, n_hidden, rng=rng)
    # a random bias (not the init's 0/1 blocks) so every gate's db is checked at a generic point
    layer.params["b"][...] = 0.5 * rng.standard_normal(layer.params["b"].shape)
    X = rng.standard_normal((n_in, T, m))
    return layer_problem(layer, X, seed=seed)


def cases() -> list[Case]:
    """The LSTM over several (n_in, n_hidden, T, m) and seeds, T = 1..10."""
    return [
        Case(
            "LSTM",
            f"n_in={n_in} n_hidden={n_h} T={T} m={m} seed={seed}",
            LSTM_IDS,
            partial(_lstm, n_in, n_h, T, m, seed),
        )
        for n_in, n_h, T, m, seed in CONFIGS
    ]
