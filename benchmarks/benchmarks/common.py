"""Sizes, dtypes and input builders shared by the benchmark modules.

Three sizes per layer, small to large. The large ones are the shapes ``benchmarks/compare.py``
judges against its bound and PyTorch: Dense 1024 -> 1024 with m = 512; Conv2D 32 -> 64 channels
on 32 x 32 images, 3 x 3 kernel, padding 1, m = 64 (pooling: on its output); LSTM 64 -> 128,
T = 50, m = 64.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray

DTYPES: list[str] = ["float64", "float32"]
CONV_KERNEL = 3


#: Dense n_in -> n_out on m examples.
DENSE_SIZES: dict[str, tuple[int, int, int]] = {
    "64->64,m=32": (64, 64, 32),
    "256->256,m=128": (256, 256, 128),
    "1024->1024,m=512": (1024, 1024, 512),
}

#: Conv2D (3 x 3, padding 1) C_in -> C_out on H x W images (H = W), m examples.
CONV_SIZES: dict[str, tuple[int, int, int, int]] = {
    "3->8,8x8,m=8": (3, 8, 8, 8),
    "16->32,16x16,m=32": (16, 32, 16, 32),
    "32->64,32x32,m=64": (32, 64, 32, 64),
}

#: LSTM n_in -> n_hidden over T steps of m examples.
LSTM_SIZES: dict[str, tuple[int, int, int, int]] = {
    "8->16,T=10,m=8": (8, 16, 10, 8),
    "32->64,T=20,m=32": (32, 64, 20, 32),
    "64->128,T=50,m=64": (64, 128, 50, 64),
}


def normal(shape: tuple[int, ...], dtype: DTypeLike, seed: int = 0) -> FloatArray:
    """Standard normal array of ``shape`` in ``dtype`` from a seeded Generator."""
    out: FloatArray = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return out


class Timed:
    """asv timing attributes for benchmarks whose large cases take tens to hundreds of ms.

    At most 5 samples or 4 s per benchmark, one round: the whole suite stays a few minutes on
    2 cores, and the median of 3-5 samples is steady enough for the 10 % changes asv flags.
    """

    rounds: ClassVar[int] = 1
    repeat: ClassVar[tuple[int, int, float]] = (3, 5, 4.0)
    warmup_time: ClassVar[float] = 0.1
    sample_time: ClassVar[float] = 0.02
    timeout: ClassVar[float] = 120.0
    params: ClassVar[list[list[Any]]]
    param_names: ClassVar[list[str]]


class _LayerTimings(Timed):
    """Forward, backward, both, and peak memory of a layer, per dtype and size.

    A subclass's ``make`` builds the layer, its input X and the upstream gradient dZ; ``setup``
    runs one forward, so that ``time_backward`` has a cache. The leading underscore keeps asv
    from collecting this base.
    """

    params: ClassVar[list[list[Any]]]
    param_names: ClassVar[list[str]] = ["dtype", "size"]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        raise NotImplementedError

    def setup(self, dtype: DTypeLike, size: str) -> None:
        self.layer, self.X, self.dZ = self.make(dtype, size)
        self.layer.forward(self.X)

    def time_forward(self, dtype: DTypeLike, size: str) -> None:
        self.layer.forward(self.X)

    def time_backward(self, dtype: DTypeLike, size: str) -> None:
        self.layer.backward(self.dZ)

    def time_forward_backward(self, dtype: DTypeLike, size: str) -> None:
        self.layer.forward(self.X)
        self.layer.backward(self.dZ)

    def peakmem_forward_backward(self, dtype: DTypeLike, size: str) -> None:
        self.layer.forward(self.X)
        self.layer.backward(self.dZ)
