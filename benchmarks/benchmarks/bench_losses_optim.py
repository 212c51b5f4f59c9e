"""Losses (forward + backward) and optimizer steps, per dtype and size: the shapes
``benchmarks/compare.py`` judges against PyTorch are the large ones (k = 1000 classes, m = 512;
a 1024 x 1024 parameter)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from refnn.types import DTypeLike

from .common import DTYPES, Timed, normal

#: Losses on k x m scores.
LOSS_SIZES: dict[str, tuple[int, int]] = {"10x64": (10, 64), "1000x512": (1000, 512)}
LOSSES: list[str] = ["SoftmaxCrossEntropy", "MulticlassHinge", "MeanSquaredError"]
#: Optimizers on an n x n parameter.
OPTIM_SIZES: dict[str, int] = {"64x64": 64, "1024x1024": 1024}
OPTIMIZERS: list[str] = ["GradientDescent", "Momentum", "Nesterov", "RMSprop", "Adam", "AdamW"]


class LossForwardBackward(Timed):
    """``loss.forward(Z, Y)`` then ``loss.backward()`` as a training step calls them."""

    params: ClassVar[list[list[Any]]] = [LOSSES, DTYPES, list(LOSS_SIZES)]
    param_names: ClassVar[list[str]] = ["loss", "dtype", "size"]

    def setup(self, loss: str, dtype: DTypeLike, size: str) -> None:
        import refnn

        k, m = LOSS_SIZES[size]
        self.Z = normal((k, m), dtype, seed=1)
        idx = np.random.default_rng(2).integers(0, k, m)
        real = loss == "MeanSquaredError"
        self.Y = normal((k, m), dtype, seed=3) if real else np.eye(k, dtype=dtype)[:, idx]
        self.loss = getattr(refnn, loss)(dtype=dtype)

    def time_forward_backward(self, loss: str, dtype: DTypeLike, size: str) -> None:
        self.loss.forward(self.Z, self.Y)
        self.loss.backward()


class OptimizerStep(Timed):
    """One ``optimizer.step(layer)`` on a layer holding one n x n parameter and its gradient."""

    params: ClassVar[list[list[Any]]] = [OPTIMIZERS, DTYPES, list(OPTIM_SIZES)]
    param_names: ClassVar[list[str]] = ["optimizer", "dtype", "size"]

    def setup(self, optimizer: str, dtype: DTypeLike, size: str) -> None:
        import refnn

        n = OPTIM_SIZES[size]
        self.layer = refnn.Dense(n, n, rng=np.random.default_rng(0), dtype=dtype)
        self.layer.params = {"W": normal((n, n), dtype, seed=1)}
        self.layer.grads = {"W": normal((n, n), dtype, seed=2)}
        self.opt = getattr(refnn, optimizer)(1e-3)
        self.opt.step(self.layer)  # the state (moments, velocities) exists before timing

    def time_step(self, optimizer: str, dtype: DTypeLike, size: str) -> None:
        self.opt.step(self.layer)
