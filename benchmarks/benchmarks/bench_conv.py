"""Conv2D forward/backward, pooling, and a whole small CNN training step, per dtype and size.

The conv and pooling layers are imported when a benchmark is set up (not at module level):
benchmarking a commit that predates them (``make bench-compare``) then fails only these
benchmarks instead of the discovery of the whole suite.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refnn import BinaryCrossEntropyWithLogits, Dense, GradientDescent, ReLU, Sequential
from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray

from .common import CONV_KERNEL, CONV_SIZES, DTYPES, Timed, _LayerTimings, normal


class Conv2DLayer(_LayerTimings):
    """``Conv2D.forward`` / ``Conv2D.backward``: 3 x 3 kernel, padding 1, stride 1, the direct
    (im2col) algorithm, the default."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(CONV_SIZES)]
    algorithm: ClassVar[str] = "direct"

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import Conv2D

        c_in, c_out, hw, m = CONV_SIZES[size]
        rng = np.random.default_rng(0)
        layer = Conv2D(
            c_in, c_out, CONV_KERNEL, padding=1, rng=rng, dtype=dtype, algorithm=self.algorithm
        )
        return (
            layer,
            normal((c_in, hw, hw, m), dtype, seed=1),
            normal((c_out, hw, hw, m), dtype, seed=2),
        )


class Conv2DWinogradLayer(Conv2DLayer):
    """The same layers on the Winograd F(4x4, 3x3) path (``algorithm="winograd"``)."""

    algorithm = "winograd"


class DepthwiseConv2DLayer(_LayerTimings):
    """A 3 x 3 depthwise ``Conv2D`` (groups = channels, CONV-GROUPS), padding 1, on the conv
    sizes' output channels."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(CONV_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import Conv2D

        _, c, hw, m = CONV_SIZES[size]
        layer = Conv2D(c, c, 3, padding=1, groups=c, rng=np.random.default_rng(0), dtype=dtype)
        return layer, normal((c, hw, hw, m), dtype, seed=1), normal((c, hw, hw, m), dtype, seed=2)


class ConvTranspose2DLayer(_LayerTimings):
    """A 4 x 4 stride-2 ``ConvTranspose2D``, padding 1 (a 2x upsampling): the conv sizes'
    channels in reverse, on half the image."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(CONV_SIZES)]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        from refnn import ConvTranspose2D

        c_out, c_in, hw, m = CONV_SIZES[size]
        layer = ConvTranspose2D(
            c_in, c_out, 4, stride=2, padding=1, rng=np.random.default_rng(0), dtype=dtype
        )
        half = hw // 2
        return (
            layer,
            normal((c_in, half, half, m), dtype, seed=1),
            normal((c_out, 2 * half, 2 * half, m), dtype, seed=2),
        )


class _Pool2DTimings(_LayerTimings):
    """A 2 x 2 pooling layer, stride 2, on the conv outputs' shapes (C_out x H x W x m)."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(CONV_SIZES)]
    layer_name: ClassVar[str]

    def make(self, dtype: DTypeLike, size: str) -> tuple[Layer[Any], FloatArray, FloatArray]:
        import refnn

        _, c, hw, m = CONV_SIZES[size]
        layer: Layer[Any] = getattr(refnn, self.layer_name)(2, dtype=dtype)
        return (
            layer,
            normal((c, hw, hw, m), dtype, seed=1),
            normal((c, hw // 2, hw // 2, m), dtype, seed=2),
        )


class MaxPool2DLayer(_Pool2DTimings):
    """``MaxPool2D(2)``: forward, backward, both, peak memory."""

    layer_name = "MaxPool2D"


class AvgPool2DLayer(_Pool2DTimings):
    """``AvgPool2D(2)``: forward, backward, both, peak memory."""

    layer_name = "AvgPool2D"


#: A small CNN on C x H x W images: conv-relu-pool twice, flatten, one logit.
CNN_SIZES: dict[str, tuple[int, int, int]] = {
    "3x16x16,m=16": (3, 16, 16),
    "3x32x32,m=64": (3, 32, 64),
}


class CNNTrainingStep(Timed):
    """One gradient-descent step: forward, loss, backward, parameter update.

    Conv2D(3->8) - ReLU - MaxPool2D(2) - Conv2D(8->16) - ReLU - MaxPool2D(2) - Flatten -
    Dense(-> 1), binary cross-entropy from logits.
    """

    params: ClassVar[list[list[Any]]] = [DTYPES, list(CNN_SIZES)]
    param_names: ClassVar[list[str]] = ["dtype", "size"]

    def setup(self, dtype: DTypeLike, size: str) -> None:
        from refnn import Conv2D, Flatten, MaxPool2D

        c, hw, m = CNN_SIZES[size]
        rng = np.random.default_rng(0)
        self.model = Sequential(
            [
                Conv2D(c, 8, CONV_KERNEL, padding=1, rng=rng, dtype=dtype),
                ReLU(dtype=dtype),
                MaxPool2D(2, dtype=dtype),
                Conv2D(8, 16, CONV_KERNEL, padding=1, rng=rng, dtype=dtype),
                ReLU(dtype=dtype),
                MaxPool2D(2, dtype=dtype),
                Flatten(dtype=dtype),
                Dense(16 * (hw // 4) ** 2, 1, rng=rng, dtype=dtype),
            ]
        )
        self.loss = BinaryCrossEntropyWithLogits(dtype=dtype)
        self.optimizer = GradientDescent(lr=0.01)
        self.X: FloatArray = normal((c, hw, hw, m), dtype, seed=1)
        self.Y: FloatArray = (np.random.default_rng(2).random((1, m)) < 0.5).astype(dtype)

    def _step(self) -> None:
        self.loss.forward(self.model.forward(self.X), self.Y)
        self.model.backward(self.loss.backward())
        self.optimizer.step(self.model)

    def time_step(self, dtype: DTypeLike, size: str) -> None:
        self._step()

    def peakmem_step(self, dtype: DTypeLike, size: str) -> None:
        self._step()
