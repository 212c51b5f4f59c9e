"""The API reference (docs/api.rst) documents every public name."""

from __future__ import annotations

from pathlib import Path

import refnn
import refnn.gradcheck
import refnn.testing

API = (Path(__file__).resolve().parents[1] / "docs" / "api.rst").read_text()


def test_every_public_name_has_an_entry_in_the_api_reference() -> None:
    entries = {
        **{name: f"refnn.{name}" for name in refnn.__all__ if name != "gradcheck"},
        **{name: f"refnn.gradcheck.{name}" for name in refnn.gradcheck.__all__},
        **{name: f"refnn.testing.{name}" for name in refnn.testing.__all__},
    }
    missing = [full for full in entries.values() if f":: {full}\n" not in API]
    assert missing == []
