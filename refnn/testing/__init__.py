"""Check an implementation against refnn (needs the ``testing`` extra: hypothesis).

``check_layer``, ``check_loss`` and ``check_optimizer`` draw configurations and inputs with
hypothesis, compare the implementation under test with refnn on each, and raise
:class:`MismatchError` for the minimal failing example, naming the quantity, its spec ID, the
worst element and the tolerance (specs/testing.md). ``torch_impl`` adapts PyTorch's
counterparts (needs the ``torch`` extra); ``to_batch_first`` and ``to_batch_last`` convert
layouts. ``refnn.testing.strategies`` holds the hypothesis strategies refnn's own tests use.

The names are imported on first use, so the pytest plugin (``refnn.testing.plugin``) and the
layout helpers work without hypothesis installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from refnn.testing._layouts import to_batch_first, to_batch_last
    from refnn.testing._tolerance import MismatchError
    from refnn.testing.layers import LayerImpl, check_layer
    from refnn.testing.losses_optim import LossImpl, OptimizerImpl, check_loss, check_optimizer
    from refnn.testing.torch_adapters import torch_impl

_WHERE = {
    "to_batch_first": "_layouts",
    "to_batch_last": "_layouts",
    "MismatchError": "_tolerance",
    "LayerImpl": "layers",
    "check_layer": "layers",
    "LossImpl": "losses_optim",
    "OptimizerImpl": "losses_optim",
    "check_loss": "losses_optim",
    "check_optimizer": "losses_optim",
    "torch_impl": "torch_adapters",
}

__all__ = [
    "LayerImpl",
    "LossImpl",
    "MismatchError",
    "OptimizerImpl",
    "check_layer",
    "check_loss",
    "check_optimizer",
    "to_batch_first",
    "to_batch_last",
    "torch_impl",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'refnn.testing' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"refnn.testing.{_WHERE[name]}")
    except ModuleNotFoundError as exc:
        if exc.name != "hypothesis":
            raise
        raise ModuleNotFoundError(
            f"refnn.testing.{name} needs hypothesis, which is not installed: "
            "pip install 'refnn[testing]'",
            name="hypothesis",
        ) from None
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
