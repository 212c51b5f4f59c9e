"""BatchNorm, LayerNorm, GroupNorm: forward, backward, both, peak memory; and BatchNorm's time
relative to PyTorch CPU at the shapes ``benchmarks/compare.py`` judges (images 64 x 32 x 32,
m = 64; dense 1024 features, m = 512)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray

from .common import DTYPES, Timed, _LayerTimings, normal

#: X's shape (n or C first, examples last) per size label.
NORM_SIZES: dict[str, tuple[int, ...]] = {
    "16x8x8,m=16": (16, 8, 8, 16),
    "1024,m=512": (1024, 512),
    "64x32x32,m=64": (64, 32, 32, 64),
}


class BatchNormLayer(_LayerTimings):
    """``BatchNorm`` in training (batch statistics, the full backward), as a user calls it."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(NORM_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import BatchNorm

        shape = NORM_SIZES[size]
        return BatchNorm(shape[0], dtype=dtype), normal(shape, dtype, 1), normal(shape, dtype, 2)


class LayerNormLayer(_LayerTimings):
    """``LayerNorm`` over every axis but the examples."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(NORM_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import LayerNorm

        shape = NORM_SIZES[size]
        return LayerNorm(shape[:-1], dtype=dtype), normal(shape, dtype, 1), normal(shape, dtype, 2)


class GroupNormLayer(_LayerTimings):
    """``GroupNorm`` with 8 groups (2 channels per group at 16 channels)."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(NORM_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import GroupNorm

        shape = NORM_SIZES[size]
        layer = GroupNorm(8, shape[0], dtype=dtype)
        return layer, normal(shape, dtype, 1), normal(shape, dtype, 2)


def _best(fn: Any, calls: int = 5) -> float:
    """The fastest of ``calls`` timed calls after one warm-up, in seconds."""
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class BatchNormVsTorch(Timed):
    """refnn's BatchNorm forward + backward time over PyTorch CPU's (BatchNorm2d on images,
    BatchNorm1d on dense X; examples-first copies, default threads): below 1 is faster. Skipped
    without torch."""

    params: ClassVar[list[list[Any]]] = [DTYPES, ["1024,m=512", "64x32x32,m=64"]]
    param_names: ClassVar[list[str]] = ["dtype", "size"]
    unit: ClassVar[str] = "refnn/torch"

    def setup(self, dtype: DTypeLike, size: str) -> None:
        try:
            import torch
        except ImportError as err:
            raise NotImplementedError("PyTorch is not installed") from err
        from refnn import BatchNorm

        shape = NORM_SIZES[size]
        X, dY = normal(shape, dtype, 1), normal(shape, dtype, 2)
        layer = BatchNorm(shape[0], dtype=dtype)
        order = (len(shape) - 1, *range(len(shape) - 1))  # examples first

        def ours() -> None:
            layer.forward(X)
            layer.backward(dY)

        tX = torch.from_numpy(np.ascontiguousarray(X.transpose(order))).requires_grad_()
        tdY = torch.from_numpy(np.ascontiguousarray(dY.transpose(order)))
        cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
        module = cls(shape[0]).to(getattr(torch, str(dtype)))

        def theirs() -> None:
            tX.grad = None
            module(tX).backward(tdY)

        self.ours, self.theirs = ours, theirs

    def track_ratio_to_torch(self, dtype: DTypeLike, size: str) -> float:
        return _best(self.ours) / _best(self.theirs)
