"""Check an implementation against refnn (needs the ``testing`` extra: hypothesis).

``check_layer``, ``check_loss`` and ``check_optimizer`` draw configurations and inputs with
hypothesis, compare the implementation under test with refnn on each, and raise
:class:`MismatchError` for the minimal failing example, naming the quantity, its spec ID, the
worst element and the tolerance (specs/testing.md). ``torch_impl`` adapts PyTorch's
counterparts (needs the ``torch`` extra); ``to_batch_first`` and ``to_batch_last`` convert
layouts. ``refnn.testing.strategies`` holds the hypothesis strategies refnn's own tests use.
"""

from refnn.testing._layouts import to_batch_first, to_batch_last
from refnn.testing._tolerance import MismatchError
from refnn.testing.layers import LayerImpl, check_layer
from refnn.testing.losses_optim import LossImpl, OptimizerImpl, check_loss, check_optimizer
from refnn.testing.torch_impl import torch_impl

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
