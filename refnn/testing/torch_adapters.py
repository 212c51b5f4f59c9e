"""PyTorch's counterparts of refnn's layers, losses and optimizers, as ``make_impl`` functions.

``torch_impl(name)`` returns what ``check_layer``, ``check_loss`` or ``check_optimizer`` takes
for ``name``. Layers are batch-first (``layout="batch_first"``; ``nn.LSTM(batch_first=True)``),
losses take batch-first A and Y, and every adapter maps refnn's conventions onto PyTorch's
(TEST-TORCH): parameters are copied into the modules, the losses sum and divide by m, SGD's
momentum is given the learning rate α (1 - β). Needs torch (the ``torch`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refnn.types import FloatArray

LAYERS = (
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "Flatten",
    "Sigmoid",
    "ReLU",
    "Tanh",
    "Softmax",
    "LSTM",
    "LastStep",
)
LOSSES = (
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "CrossEntropy",
    "SoftmaxCrossEntropy",
)
OPTIMIZERS = ("GradientDescent", "Momentum", "Adam")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "refnn.testing.torch_adapters needs torch: pip install 'refnn[torch]'"
        ) from exc
    return torch


def _dtype(config: Mapping[str, Any]) -> Any:
    return getattr(_torch(), str(config.get("dtype", "float64")))


def _module(
    name: str, c: Mapping[str, Any], params: Mapping[str, FloatArray]
) -> tuple[Any, dict[str, Any]]:
    """The torch module for refnn layer ``name`` and a map from refnn's keys to its parameters."""
    torch = _torch()
    nn = torch.nn
    simple: dict[str, Callable[[], Any]] = {
        "Flatten": nn.Flatten,
        "Sigmoid": nn.Sigmoid,
        "ReLU": nn.ReLU,
        "Tanh": nn.Tanh,
        "Softmax": lambda: nn.Softmax(dim=1),
        "MaxPool2D": lambda: nn.MaxPool2d(tuple(c["kernel_size"]), tuple(c["stride"])),
        "AvgPool2D": lambda: nn.AvgPool2d(tuple(c["kernel_size"]), tuple(c["stride"])),
        "LastStep": lambda: _LastStep(),
    }
    if name in simple:
        return simple[name](), {}
    dt = _dtype(c)
    with torch.no_grad():
        if name == "Dense":
            module = nn.Linear(c["n_in"], c["n_out"], dtype=dt)
            module.weight.copy_(torch.from_numpy(params["W"]))
            module.bias.copy_(torch.from_numpy(params["b"][:, 0]))
            return module, {"W": module.weight, "b": module.bias}
        if name == "Conv2D":
            module = nn.Conv2d(
                c["in_channels"],
                c["out_channels"],
                tuple(c["kernel_size"]),
                stride=tuple(c["stride"]),
                padding=tuple(c["padding"]),
                dtype=dt,
            )
            module.weight.copy_(torch.from_numpy(params["W"]))
            module.bias.copy_(torch.from_numpy(params["b"][:, 0]))
            return module, {"W": module.weight, "b": module.bias}
        if name == "LSTM":
            n = c["n_in"]
            module = nn.LSTM(n, c["n_hidden"], batch_first=True, dtype=dt)
            W = torch.from_numpy(params["W"])
            module.weight_ih_l0.copy_(W[:, :n])
            module.weight_hh_l0.copy_(W[:, n:])
            module.bias_ih_l0.copy_(torch.from_numpy(params["b"][:, 0]))
            module.bias_hh_l0.zero_()
            return module, {"W": (module.weight_ih_l0, module.weight_hh_l0), "b": module.bias_ih_l0}
    raise ValueError(f"torch_impl has no layer {name!r}; it has {', '.join(LAYERS)}")


class _LastStep:
    def __call__(self, x: Any) -> Any:
        return x[:, -1, :]


class TorchLayer:
    """A torch module behind the kit's layer protocol (TEST-LAYER), batch-first."""

    def __init__(self, name: str, config: Mapping[str, Any], params: Mapping[str, FloatArray]):
        self.module, self.params = _module(name, config, params)
        self.is_lstm = name == "LSTM"
        self.inputs: list[Any] = []
        self.out: Any = None

    def forward(
        self, X: FloatArray, h0: FloatArray | None = None, c0: FloatArray | None = None
    ) -> FloatArray:
        torch = _torch()
        x = torch.tensor(X, requires_grad=True)
        self.inputs = [x]
        if self.is_lstm:
            state = None
            if h0 is not None and c0 is not None:
                h, c = (torch.tensor(s, requires_grad=True) for s in (h0, c0))
                self.inputs += [h, c]
                state = (h.unsqueeze(0), c.unsqueeze(0))
            self.out = self.module(x, state)[0]
        else:
            self.out = self.module(x)
        return np.asarray(self.out.detach().numpy())

    def backward(self, dY: FloatArray) -> tuple[FloatArray, dict[str, FloatArray]]:
        torch = _torch()
        for p in self.module.parameters() if hasattr(self.module, "parameters") else ():
            p.grad = None
        self.out.backward(torch.tensor(dY))
        grads: dict[str, FloatArray] = {}
        for key, p in self.params.items():
            if isinstance(p, tuple):
                grads[key] = np.concatenate([q.grad.numpy() for q in p], axis=1)
            else:
                g = p.grad.numpy()
                grads[key] = g[:, None] if g.ndim == 1 else g
        if len(self.inputs) == 3:
            grads["h0"], grads["c0"] = (s.grad.numpy() for s in self.inputs[1:])
        return np.asarray(self.inputs[0].grad.numpy()), grads


def lstm_takes_state() -> bool:
    """Whether refnn's LSTM.forward takes an initial state (h0, c0)."""
    from refnn import LSTM

    return "h0" in LSTM.extra_inputs


def torch_impl(name: str) -> Callable[..., Any]:
    """A ``make_impl`` for PyTorch's counterpart of refnn's ``name``.

    Layers (batch-first: pass ``layout="batch_first"`` to ``check_layer``): Dense (Linear),
    Conv2D (Conv2d), MaxPool2D, AvgPool2D, Flatten, Sigmoid, ReLU, Tanh, Softmax (dim=1),
    LSTM (batch_first=True; W split into weight_ih and weight_hh, b into bias_ih with a zero
    bias_hh), LastStep (``x[:, -1, :]``). Losses (batch-first A, Y): BCELoss and
    BCEWithLogitsLoss with reduction="sum" divided by m, NLLLoss of log A (soft labels:
    -Σ Y log A / m) for CrossEntropy, CrossEntropyLoss (probability targets) for
    SoftmaxCrossEntropy. Optimizers: SGD, SGD with momentum β and learning rate α (1 - β),
    Adam.

    Notes
    -----
    Spec: TEST-TORCH
    """
    _torch()
    if name in LAYERS:
        return lambda config, params: TorchLayer(name, config, params)
    from refnn.testing import _torch_losses_optim

    return _torch_losses_optim.make(name)
