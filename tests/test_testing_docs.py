"""The API reference (docs/api/) documents every public name; the kit's summary line reads
right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import refnn
import refnn.gradcheck
import refnn.testing
from refnn.testing import MismatchError, check_layer
from refnn.testing._record import CHECKS

API = "\n".join(
    p.read_text(encoding="utf-8")
    for p in sorted((Path(__file__).resolve().parents[1] / "docs" / "api").glob("*.rst"))
)


def test_every_public_name_has_an_entry_in_the_api_reference() -> None:
    entries = {
        **{name: f"refnn.{name}" for name in refnn.__all__ if name != "gradcheck"},
        **{name: f"refnn.gradcheck.{name}" for name in refnn.gradcheck.__all__},
        **{name: f"refnn.testing.{name}" for name in refnn.testing.__all__},
    }
    missing = [full for full in entries.values() if f":: {full}\n" not in API]
    assert missing == []


class _WrongDense:
    """Dense with db doubled: the kit must reject it, whatever the examples drawn."""

    def __init__(self, config: dict[str, object], params: dict[str, np.ndarray]) -> None:
        self.W, self.b = params["W"], params["b"]

    def forward(self, X: np.ndarray) -> np.ndarray:
        self.X = X
        return self.W @ X + self.b

    def backward(self, dY: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self.W.T @ dY, {"W": dY @ self.X.T, "b": 2 * dY.sum(axis=1, keepdims=True)}


def test_the_summary_line_words_a_rejection_as_one_not_as_failed() -> None:
    """A test that expects the kit to reject a wrong implementation passes; the plugin's line
    for that check must say the implementation was rejected, not print FAILED in a green run."""
    with pytest.raises(MismatchError):
        check_layer("Dense", _WrongDense, max_examples=5)
    line = CHECKS[-1].line()
    assert line.startswith("layer Dense (batch_last, float64): 5 examples, implementation rejected")
    assert "(MismatchError: Dense: db disagrees with refnn (spec DENSE-DB))" in line
    assert "FAILED" not in line
    check_layer("Flatten", lambda config, params: _Identity(), max_examples=2)
    assert "2 examples, passed in" in CHECKS[-1].line()


class _Identity:
    def forward(self, X: np.ndarray) -> np.ndarray:
        self.shape = X.shape
        return X.reshape(-1, X.shape[-1])

    def backward(self, dY: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return dY.reshape(self.shape), {}
