"""Sizes, dtypes and input builders shared by the benchmark modules.

Three sizes per layer, small to large. The large ones are the shapes ``benchmarks/compare.py``
judges against the GEMM bound and PyTorch: Dense 1024 -> 1024 with m = 512, and Conv2D
32 -> 64 channels on 32 x 32 images, 3 x 3 kernel, padding 1, m = 64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray

DTYPES: list[str] = ["float64", "float32"]
CONV_KERNEL = 3


@dataclass(frozen=True)
class DenseSize:
    """A Dense layer n_in -> n_out applied to m examples."""

    n_in: int
    n_out: int
    m: int


@dataclass(frozen=True)
class ConvSize:
    """A k x k Conv2D, C_in -> C_out channels, on H x W images, m examples, padding k // 2."""

    c_in: int
    c_out: int
    hw: int
    m: int
    k: int = 3

    @property
    def padding(self) -> int:
        return self.k // 2


DENSE_SIZES: dict[str, DenseSize] = {
    "64->64,m=32": DenseSize(64, 64, 32),
    "256->256,m=128": DenseSize(256, 256, 128),
    "1024->1024,m=512": DenseSize(1024, 1024, 512),
}

CONV_SIZES: dict[str, ConvSize] = {
    "3->8,8x8,m=8": ConvSize(3, 8, 8, 8),
    "16->32,16x16,m=32": ConvSize(16, 32, 16, 32),
    "32->64,32x32,m=64": ConvSize(32, 64, 32, 64),
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
    """Forward, backward, both, and peak memory of ``self.layer`` on ``self.X`` / ``self.dZ``.

    A subclass's ``setup`` builds the layer and its inputs and runs one forward (so that
    ``time_backward`` has a cache). The leading underscore keeps asv from collecting this base.
    """

    layer: Layer[Any]
    X: FloatArray
    dZ: FloatArray

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
