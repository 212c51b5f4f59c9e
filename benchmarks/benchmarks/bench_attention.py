"""Attention: MultiHeadAttention (self-attention) forward, backward, both and peak memory; the
large size is the one ``benchmarks/compare.py`` judges against PyTorch (E = 512, 8 heads of
d = 64, T = 128, m = 32). ScaledDotProductAttention alone (one head over d x T x m) and the
positional encoding at the same T."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray

from .common import DTYPES, Timed, _LayerTimings, normal

#: MultiHeadAttention embed_dim E, heads, T, m.
MHA_SIZES: dict[str, tuple[int, int, int, int]] = {
    "E=32,h=4,T=16,m=8": (32, 4, 16, 8),
    "E=128,h=4,T=64,m=16": (128, 4, 64, 16),
    "E=512,h=8,T=128,m=32": (512, 8, 128, 32),
}


class MultiHeadAttentionLayer(_LayerTimings):
    """``MultiHeadAttention.forward(X)`` / ``backward`` (self-attention) on E x T x m."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(MHA_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import MultiHeadAttention

        E, h, T, m = MHA_SIZES[size]
        layer = MultiHeadAttention(E, h, rng=np.random.default_rng(0), dtype=dtype)
        return layer, normal((E, T, m), dtype, seed=1), normal((E, T, m), dtype, seed=2)


class CausalScaledDotProductAttention(_LayerTimings):
    """``ScaledDotProductAttention(d, causal=True)`` self-attention on d x T x m (one head)."""

    params: ClassVar[list[list[Any]]] = [DTYPES, ["d=64,T=128,m=32"]]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import ScaledDotProductAttention

        layer = ScaledDotProductAttention(64, causal=True, dtype=dtype)
        return layer, normal((64, 128, 32), dtype, seed=1), normal((64, 128, 32), dtype, seed=2)


class PositionalEncodingForward(Timed):
    """``PositionalEncoding(E).forward`` on E x T x m (the table is built on the first call)."""

    params: ClassVar[list[list[Any]]] = [DTYPES]
    param_names: ClassVar[list[str]] = ["dtype"]

    def setup(self, dtype: DTypeLike) -> None:
        from refnn import PositionalEncoding

        self.layer = PositionalEncoding(512, dtype=dtype)
        self.X = normal((512, 128, 32), dtype, seed=1)
        self.layer.forward(self.X)

    def time_forward(self, dtype: DTypeLike) -> None:
        self.layer.forward(self.X)
