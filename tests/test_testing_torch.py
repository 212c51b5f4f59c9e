"""Every torch_impl passes the kit: PyTorch checked by refnn (TEST-TORCH), in float64 and float32.

Skipped, with the reason, when torch is not installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (pip install 'refnn[torch]')")

from refnn.testing import check_layer, check_loss, check_optimizer, torch_impl
from refnn.testing.torch_adapters import torch_layers, torch_losses, torch_optimizers

LAYERS, LOSSES, OPTIMIZERS = torch_layers(), torch_losses(), torch_optimizers()

pytestmark = pytest.mark.torch
DTYPES = [np.float64, np.float32]


@pytest.mark.spec("TEST-TORCH")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LAYERS)
def test_every_torch_layer_passes(name: str, dtype: Any) -> None:
    check_layer(name, torch_impl(name), layout="batch_first", dtype=dtype, max_examples=10)


@pytest.mark.spec("TEST-TORCH")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LOSSES)
def test_every_torch_loss_passes(name: str, dtype: Any) -> None:
    check_loss(name, torch_impl(name), layout="batch_first", dtype=dtype, max_examples=10)


@pytest.mark.spec("TEST-TORCH")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_torch_optimizer_passes(name: str, dtype: Any) -> None:
    check_optimizer(name, torch_impl(name), dtype=dtype, max_examples=10)


def test_torch_lstm_given_the_wrong_layout_is_rejected() -> None:
    # the adapter is batch-first: told batch_last, the kit sees the wrong shapes
    from refnn.testing import MismatchError

    with pytest.raises(MismatchError):
        check_layer("LSTM", torch_impl("LSTM"), max_examples=10)


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Dropout.*it has .*Dense"):
        torch_impl("Dropout")
