"""Dense layer: forward, backward, forward+backward and peak memory, per dtype and size."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refnn import Dense
from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray

from .common import DENSE_SIZES, DTYPES, _LayerTimings, normal


class DenseLayer(_LayerTimings):
    """``Dense.forward`` / ``Dense.backward`` as a user calls them (input checks included)."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(DENSE_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        n_in, n_out, m = DENSE_SIZES[size]
        layer = Dense(n_in, n_out, rng=np.random.default_rng(0), dtype=dtype)
        return layer, normal((n_in, m), dtype, seed=1), normal((n_out, m), dtype, seed=2)
