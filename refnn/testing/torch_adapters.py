"""PyTorch's counterparts of refnn's layers, losses and optimizers, as ``make_impl`` functions.

``torch_impl(name)`` returns what ``check_layer``, ``check_loss`` or ``check_optimizer`` takes
for ``name``. What PyTorch computes is each class's own declaration (TEST-SPACE):
``torch_forward`` (a layer), ``torch_cost`` (a loss), ``torch_optimizer`` (an optimizer), each
given the torch module and tensors in refnn's layout and shapes, so autograd's gradients come
back under refnn's names. The adapters here are generic: they take batch-first arrays (layers:
``layout="batch_first"``; losses: batch-first A and Y), convert, run torch in the dtype under
test and return the results (TEST-TORCH). Needs torch (the ``torch`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refnn.layer import Layer
from refnn.losses import Loss
from refnn.optim import Optimizer
from refnn.registry import components
from refnn.testing._layouts import back, convert
from refnn.types import FloatArray


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "refnn.testing.torch_impl needs torch: pip install 'refnn[torch]'"
        ) from exc
    return torch


def _declares(cls: type[Any], method: str, base: type[Any]) -> bool:
    return getattr(cls, method).__func__ is not getattr(base, method).__func__


def torch_layers() -> tuple[str, ...]:
    """The registered layers that declare a PyTorch equivalent (``torch_forward``)."""
    return tuple(n for n, c in components("layer").items() if _declares(c, "torch_forward", Layer))


def torch_losses() -> tuple[str, ...]:
    """The registered losses that declare a PyTorch equivalent (``torch_cost``)."""
    return tuple(n for n, c in components("loss").items() if _declares(c, "torch_cost", Loss))


def torch_optimizers() -> tuple[str, ...]:
    """The registered optimizers that declare a PyTorch equivalent (``torch_optimizer``)."""
    found = components("optimizer").items()
    return tuple(n for n, c in found if _declares(c, "torch_optimizer", Optimizer))


class TorchLayer:
    """A layer's ``torch_forward`` behind the kit's layer protocol (TEST-LAYER), batch-first."""

    def __init__(
        self, cls: type[Layer[Any]], config: Mapping[str, Any], params: Mapping[str, FloatArray]
    ) -> None:
        self.torch = _torch()
        self.cls, self.config = cls, dict(config)
        self.params = {k: np.asarray(v) for k, v in params.items()}
        self.inputs: dict[str, Any] = {}
        self.out: Any = None

    def forward(self, X: FloatArray, **extra: FloatArray) -> FloatArray:
        torch = self.torch
        arrays = {"X": back(X, "batch_first"), **self.params}
        arrays |= {k: back(v, "batch_first") for k, v in extra.items()}
        # integer arrays (token indices) are inputs but not differentiable
        self.inputs = {
            k: torch.tensor(np.ascontiguousarray(v), requires_grad=v.dtype.kind == "f")
            for k, v in arrays.items()
        }
        tensors = dict(self.inputs)
        x = tensors.pop("X")
        self.out = self.cls.torch_forward(torch, self.config, x, **tensors)
        return convert(self.out.detach().numpy(), "batch_first")

    def backward(self, dY: FloatArray) -> tuple[FloatArray, dict[str, FloatArray]]:
        self.out.backward(self.torch.tensor(back(dY, "batch_first")))
        grads = {
            k: t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
            for k, t in self.inputs.items()
        }
        dX = convert(grads.pop("X"), "batch_first")
        out = {k: (g if k in self.params else convert(g, "batch_first")) for k, g in grads.items()}
        return dX, out


class TorchLoss:
    """A loss's ``torch_cost`` behind the kit's loss protocol, batch-first A and Y (m x k)."""

    def __init__(self, cls: type[Loss], config: Mapping[str, Any]) -> None:
        self.torch = _torch()
        self.cls, self.config = cls, dict(config)
        self.a: Any = None
        self.cost: Any = None

    def forward(self, A: FloatArray, Y: FloatArray) -> float:
        torch = self.torch
        self.a = torch.tensor(np.ascontiguousarray(back(A, "batch_first")), requires_grad=True)
        y = torch.tensor(np.ascontiguousarray(back(Y, "batch_first")))
        self.cost = self.cls.torch_cost(torch, self.config, self.a, y)
        return float(self.cost.item())

    def backward(self) -> FloatArray:
        self.cost.backward()
        return convert(self.a.grad.numpy(), "batch_first")


class TorchOptimizer:
    """An optimizer's ``torch_optimizer`` on copies of the parameters."""

    def __init__(
        self, cls: type[Optimizer], config: Mapping[str, Any], params: Mapping[str, FloatArray]
    ) -> None:
        torch = self.torch = _torch()
        self.tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        self.opt = cls.torch_optimizer(torch, config, list(self.tensors.values()))

    def step(self, grads: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        for k, t in self.tensors.items():
            t.grad = self.torch.tensor(grads[k])
        self.opt.step()
        return {k: t.detach().numpy().copy() for k, t in self.tensors.items()}


def torch_impl(name: str) -> Callable[..., Any]:
    """A ``make_impl`` for PyTorch's counterpart of refnn's ``name``.

    Layers are batch-first (pass ``layout="batch_first"`` to ``check_layer``); losses take
    batch-first A and Y. Each class declares its PyTorch equivalent (TEST-SPACE, TEST-TORCH):
    Dense (``F.linear``), Conv2D (``F.conv2d``), MaxPool2D, AvgPool2D, Flatten, Sigmoid, ReLU,
    Tanh, Softmax, LSTM (``nn.LSTM`` with W split into weight_ih and weight_hh, b into bias_ih
    and a zero bias_hh), LastStep; BCELoss, BCEWithLogitsLoss, NLLLoss of log A,
    CrossEntropyLoss (reduction="sum", / m); SGD, SGD with momentum β and learning rate
    α (1 - β), Adam; and whatever was registered since with a ``torch_*`` method.

    Notes
    -----
    Spec: TEST-TORCH
    """
    _torch()
    found: dict[str, Any] = {}
    for kind in ("layer", "loss", "optimizer"):
        found |= components(kind)
    if name in torch_layers():
        layer = found[name]
        return lambda config, params: TorchLayer(layer, config, params)
    if name in torch_losses():
        loss = found[name]
        return lambda config: TorchLoss(loss, config)
    if name in torch_optimizers():
        optimizer = found[name]
        return lambda config, params: TorchOptimizer(optimizer, config, params)
    known = ", ".join((*torch_layers(), *torch_losses(), *torch_optimizers()))
    raise ValueError(f"torch_impl has no counterpart of {name!r}; it has {known}")
