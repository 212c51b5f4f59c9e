"""The declarations the kit reads (TEST-SPACE): the kit names no component, reads each class's
space from the registry, and a user's own registered layer is checked with no kit change."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import refnn.registry
from refnn.kitspace import Ints, LayerSpace, LossSpace, OptimizerSpace
from refnn.layer import Layer
from refnn.registry import components, register
from refnn.testing import MismatchError, check_layer
from refnn.types import FloatArray

LAYERS = components("layer")
KIT = Path(refnn.registry.__file__).parent / "testing"


@pytest.mark.spec("TEST-SPACE")
@pytest.mark.parametrize("name", [n for n, c in LAYERS.items() if c.kit is not None])
def test_a_layer_space_draws_m_and_names_its_conventions(name: str) -> None:
    cls: Any = LAYERS[name]
    space: LayerSpace = cls.kit
    assert "m" in space.draws
    parameters = inspect.signature(cls).parameters
    assert all(k not in ("rng", "dtype") for k in space.draws if k in parameters)
    assert all(len(choices) >= 1 for choices in space.conventions.values())


@pytest.mark.spec("TEST-SPACE")
def test_every_space_is_of_its_kind() -> None:
    for kind, space in (("layer", LayerSpace), ("loss", LossSpace), ("optimizer", OptimizerSpace)):
        for name, cls in components(kind).items():  # type: ignore[arg-type]
            assert cls.kit is None or isinstance(cls.kit, space), name
    shipped = {n for n, c in LAYERS.items() if c.kit is not None}
    assert {"Dense", "Conv2D", "MaxPool2D", "LSTM", "Dropout"} <= shipped


def _code_strings(path: Path) -> set[str]:
    """The string constants of a module's code (docstrings left out)."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    }


@pytest.mark.spec("TEST-SPACE")
def test_the_kit_names_no_component_in_its_code() -> None:
    names = set(components())
    for path in sorted(KIT.glob("*.py")):
        if path.name == "strategies.py":  # public strategies for refnn's own tests
            continue
        named = _code_strings(path) & names
        assert not named, f"{path.name} names {sorted(named)}: read the registry instead"


def test_component_modules_import_neither_hypothesis_nor_torch() -> None:
    code = (
        "import sys\n"
        "sys.modules['hypothesis'] = None; sys.modules['torch'] = None\n"
        "import refnn, refnn.kitspace\n"
        "print(len(refnn.registry.components()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


class _Double(Layer[None]):
    """A user's layer: Y = 2 X (registered by the test below only)."""

    specs = {"Y": ("USER-FWD",), "dX": ("USER-BWD",)}
    kit = LayerSpace(
        draws={"n": Ints(1, 4), "m": Ints(1, 4)},
        input_shape=lambda v: (v["n"], v["m"]),
        sums=lambda v, s: {"Y": 1, "dX": 1},
    )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, None]:
        return 2 * X, None

    def _backward(
        self, dY: FloatArray, cache: None
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return 2 * dY, {}, {}


class _Impl:
    factor = 2.0

    def __init__(self, config: Mapping[str, Any], params: Mapping[str, FloatArray]) -> None:
        pass

    def forward(self, X: FloatArray) -> FloatArray:
        return self.factor * X

    def backward(self, dY: FloatArray) -> tuple[FloatArray, dict[str, FloatArray]]:
        return 2.0 * dY, {}


class _Wrong(_Impl):
    factor = 3.0


@pytest.mark.spec("TEST-SPACE", "TEST-LAYER")
def test_a_users_registered_layer_is_checked_from_its_declaration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(refnn.registry, "_COMPONENTS", dict(refnn.registry._COMPONENTS))
    register(_Double)
    check_layer("_Double", _Impl, max_examples=5)
    with pytest.raises(MismatchError, match=r"Y disagrees with refnn \(spec USER-FWD\)"):
        check_layer("_Double", _Wrong, max_examples=5)
    assert np.array_equal(_Double().forward(np.ones((1, 1))), [[2.0]])
