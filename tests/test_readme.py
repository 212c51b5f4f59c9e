"""The README's examples run as written (they are what users copy first)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    if "accuracy" in namespace:  # the training example really learns
        assert float(namespace["accuracy"]) >= 0.9  # type: ignore[arg-type]
    if "result" in namespace:  # the checker example passes and prints its table
        assert namespace["result"].passed  # type: ignore[attr-defined]
        assert "elementwise" in capsys.readouterr().out
