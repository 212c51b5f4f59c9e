"""PyTorch's losses and optimizers behind the kit's protocols (TEST-LOSS, TEST-OPTIM)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refnn.types import FloatArray


class TorchLoss:
    """A torch loss, batch-first A and Y (m x k), J = (sum of the per-example losses) / m."""

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name, self.soft = name, bool(config.get("soft_labels", False))
        self.a: Any = None

    def forward(self, A: FloatArray, Y: FloatArray) -> float:
        import torch

        nn = torch.nn
        self.a = torch.tensor(A, requires_grad=True)
        y = torch.tensor(Y)
        m = A.shape[0]
        if self.name == "BinaryCrossEntropy":
            total = nn.BCELoss(reduction="sum")(self.a, y)
        elif self.name == "BinaryCrossEntropyWithLogits":
            total = nn.BCEWithLogitsLoss(reduction="sum")(self.a, y)
        elif self.name == "SoftmaxCrossEntropy":
            total = nn.CrossEntropyLoss(reduction="sum")(self.a, y)
        elif self.soft:
            total = -(y * torch.log(self.a)).sum()
        else:
            total = nn.NLLLoss(reduction="sum")(torch.log(self.a), y.argmax(dim=1))
        self.cost = total / m
        return float(self.cost.item())

    def backward(self) -> FloatArray:
        self.cost.backward()
        return np.asarray(self.a.grad.numpy())


class TorchOptimizer:
    """torch.optim.SGD or Adam on copies of the parameters, mapped to refnn's conventions."""

    def __init__(self, name: str, config: Mapping[str, Any], params: Mapping[str, FloatArray]):
        import torch

        self.tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        ps = list(self.tensors.values())
        lr = config["lr"]
        if name == "GradientDescent":
            self.opt: Any = torch.optim.SGD(ps, lr=lr)
        elif name == "Momentum":  # refnn: v = β v + (1 - β) g; torch: b = β b + g
            beta = config["beta"]
            self.opt = torch.optim.SGD(ps, lr=lr * (1.0 - beta), momentum=beta)
        else:
            betas = (config["beta1"], config["beta2"])
            self.opt = torch.optim.Adam(ps, lr=lr, betas=betas, eps=config["eps"])

    def step(self, grads: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        import torch

        for k, t in self.tensors.items():
            t.grad = torch.tensor(grads[k])
        self.opt.step()
        return {k: t.detach().numpy().copy() for k, t in self.tensors.items()}


def make(name: str) -> Callable[..., Any]:
    """The make_impl of a loss or optimizer."""
    from refnn.testing.torch_adapters import LOSSES, OPTIMIZERS

    if name in LOSSES:
        return lambda config: TorchLoss(name, config)
    if name in OPTIMIZERS:
        return lambda config, params: TorchOptimizer(name, config, params)
    from refnn.testing.torch_adapters import LAYERS

    known = ", ".join((*LAYERS, *LOSSES, *OPTIMIZERS))
    raise ValueError(f"torch_impl has no counterpart of {name!r}; it has {known}")
