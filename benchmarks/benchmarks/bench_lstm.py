"""LSTM layer over a whole sequence: forward, backward (through time), both, peak memory."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray

from .common import DTYPES, LSTM_SIZES, _LayerTimings, normal


class LSTMLayer(_LayerTimings):
    """``LSTM.forward`` / ``LSTM.backward`` on n_in x T x m inputs, all hidden states out."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(LSTM_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import LSTM

        n_in, n_hidden, T, m = LSTM_SIZES[size]
        layer = LSTM(n_in, n_hidden, rng=np.random.default_rng(0), dtype=dtype)
        return layer, normal((n_in, T, m), dtype, seed=1), normal((n_hidden, T, m), dtype, seed=2)
