"""Check an implementation against refnn (needs the ``testing`` extra: hypothesis).

``check_layer``, ``check_loss`` and ``check_optimizer`` draw configurations and inputs with
hypothesis, compare the implementation under test with refnn on each, and raise
:class:`MismatchError` for the minimal failing example, naming the quantity, its spec ID, the
worst element and the tolerance (specs/testing.md). ``torch_impl`` adapts PyTorch's
counterparts; ``to_batch_first`` and ``to_batch_last`` convert layouts.
``refnn.testing.strategies`` holds the hypothesis strategies refnn's own tests use.
"""

from refnn.testing._layouts import to_batch_first, to_batch_last
from refnn.testing._tolerance import MismatchError
from refnn.testing.layers import LayerImpl, check_layer

__all__ = [
    "LayerImpl",
    "MismatchError",
    "check_layer",
    "to_batch_first",
    "to_batch_last",
]
