"""The API reference (docs/api/) documents every public name; the kit's summary line reads
right."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import refnn
import refnn.gradcheck
import refnn.testing
from refnn.testing import MismatchError, check_layer
from refnn.testing._record import CHECKS

ROOT = Path(__file__).resolve().parents[1]
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


def _specs_extension() -> Any:
    """docs/_ext/refnn_specs.py, the Sphinx extension rendering specs/ (not a package)."""
    path = ROOT / "docs" / "_ext" / "refnn_specs.py"
    spec = importlib.util.spec_from_file_location("refnn_specs_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _balanced(latex: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", latex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_every_spec_equation_renders_to_balanced_latex_and_every_id_gets_a_link_target(
    tmp_path: Path,
) -> None:
    """The docs render each equation line of specs/ with MathJax: the LaTeX must be balanced,
    keep no character MathJax would show raw, and every defined ID must be a link target."""
    ext = _specs_extension()
    lines = [
        line[4:]
        for path in sorted((ROOT / "specs").glob("*.md"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("    ") and line.strip()
    ]
    assert len(lines) > 100
    bad = [x for x in lines if not _balanced(ext.to_latex(x))]
    assert bad == []
    raw = [x for x in lines if re.search(r"[Σ⊙σδλβαθ∂√≤≥∈×→]", ext.to_latex(x))]
    assert raw == []
    assert ext.to_latex("dW = dZ X^T") == r"dW = dZ\,X^{T}"
    pages = ext.generate(ROOT / "specs", tmp_path)
    text = "\n".join((tmp_path / f"{p}.md").read_text(encoding="utf-8") for p in pages)
    ids = ext.defined_ids(ROOT / "specs")
    assert len(ids) > 50
    assert [i for i in sorted(ids) if f"({ext.label(i)})=" not in text] == []
