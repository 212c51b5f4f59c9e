"""RNN and GRU layers over a whole sequence: forward, backward (through time), both, peak
memory, at the LSTM's sizes."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray

from .common import DTYPES, LSTM_SIZES, _LayerTimings, normal


class GRULayer(_LayerTimings):
    """``GRU.forward`` / ``GRU.backward`` on n_in x T x m inputs, all hidden states out."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(LSTM_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import GRU

        n_in, n_hidden, T, m = LSTM_SIZES[size]
        layer = GRU(n_in, n_hidden, rng=np.random.default_rng(0), dtype=dtype)
        return layer, normal((n_in, T, m), dtype, seed=1), normal((n_hidden, T, m), dtype, seed=2)


class RNNLayer(_LayerTimings):
    """``RNN.forward`` / ``RNN.backward`` (tanh) on n_in x T x m inputs."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(LSTM_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import RNN

        n_in, n_hidden, T, m = LSTM_SIZES[size]
        layer = RNN(n_in, n_hidden, rng=np.random.default_rng(0), dtype=dtype)
        return layer, normal((n_in, T, m), dtype, seed=1), normal((n_hidden, T, m), dtype, seed=2)


class EmbeddingLayer(_LayerTimings):
    """``Embedding.forward`` / ``Embedding.backward`` (lookup, scatter-add) on (T, m) tokens,
    V = 10000, d = 128, at the LSTM's T and m."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(LSTM_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import Embedding

        _, d, T, m = LSTM_SIZES[size]
        layer = Embedding(10000, d, rng=np.random.default_rng(0), dtype=dtype)
        tokens: Any = np.random.default_rng(1).integers(0, 10000, (T, m))
        return layer, tokens, normal((d, T, m), dtype, seed=2)
