"""Dense layer: forward, backward, forward+backward and peak memory, per dtype and size."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refnn import Dense
from refnn.types import DTypeLike, FloatArray

from .common import DENSE_SIZES, DTYPES, _LayerTimings, normal


class DenseLayer(_LayerTimings):
    """``Dense.forward`` / ``Dense.backward`` as a user calls them (input checks included)."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(DENSE_SIZES)]
    param_names: ClassVar[list[str]] = ["dtype", "size"]

    def setup(self, dtype: DTypeLike, size: str) -> None:
        s = DENSE_SIZES[size]
        self.layer = Dense(s.n_in, s.n_out, rng=np.random.default_rng(0), dtype=dtype)
        self.X: FloatArray = normal((s.n_in, s.m), dtype, seed=1)
        self.dZ: FloatArray = normal((s.n_out, s.m), dtype, seed=2)
        self.layer.forward(self.X)
