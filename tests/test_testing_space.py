"""The declarations the kit reads (TEST-SPACE): every registered component declares a space."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from refnn.kitspace import LayerSpace, LossSpace, OptimizerSpace
from refnn.registry import components

LAYERS = components("layer")


@pytest.mark.spec("TEST-SPACE")
@pytest.mark.parametrize("name", [n for n, c in LAYERS.items() if c.kit is not None])
def test_a_layer_space_names_m_and_draws_only_known_constructor_arguments(name: str) -> None:
    cls: Any = LAYERS[name]
    space: LayerSpace = cls.kit
    assert "m" in space.draws
    parameters = inspect.signature(cls).parameters
    args = [k for k in space.draws if k in parameters]
    assert all(k not in ("rng", "dtype") for k in args)


@pytest.mark.spec("TEST-SPACE")
def test_every_shipped_component_is_in_the_kit() -> None:
    for kind, space in (("layer", LayerSpace), ("loss", LossSpace), ("optimizer", OptimizerSpace)):
        for name, cls in components(kind).items():  # type: ignore[arg-type]
            if cls.__module__.startswith("refnn."):
                assert cls.kit is None or isinstance(cls.kit, space), name
    shipped = {n for n, c in LAYERS.items() if c.kit is not None}
    assert {"Dense", "Conv2D", "MaxPool2D", "LSTM", "Dropout"} <= shipped
