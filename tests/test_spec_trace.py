"""Traceability: every spec ID is implemented and tested; nothing cites an unknown ID. And the
house rules that keep the code readable against the specs (CONTRIBUTING.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from refnn.verify.trace import build_trace, parse_specs, source_root

ROOT = Path(__file__).resolve().parents[1]


def test_every_spec_id_is_implemented_and_tested_and_every_citation_resolves() -> None:
    problems = build_trace(ROOT).problems()
    assert problems == [], "\n".join(problems)


def test_the_trace_catches_broken_links(tmp_path: Path) -> None:
    # a miniature repository: one ID without a test, one citation of an unknown ID
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.md").write_text("### FOO-BAR: thing\n    x = 1\n### FOO-BAZ: other\n")
    (tmp_path / "refnn").mkdir()
    (tmp_path / "refnn" / "m.py").write_text(
        'def f():\n    """Do.\n\n    Spec: FOO-BAR, FOO-BAZ\n    """\n'
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.py").write_text(
        "import pytest\n@pytest.mark.spec('FOO-BAR', 'FOO-NOPE')\ndef test_x():\n    pass\n"
    )
    problems = build_trace(tmp_path).problems()
    assert any("FOO-NOPE cited by test" in p for p in problems)
    assert any(p.startswith("FOO-BAZ") and "no test" in p for p in problems)
    assert not any(p.startswith("FOO-BAR") for p in problems)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("### FOO-BAR: one\n")
    (tmp_path / "b.md").write_text("### FOO-BAR: two\n")
    with pytest.raises(ValueError, match="FOO-BAR defined twice"):
        parse_specs(tmp_path)


@pytest.mark.parametrize(
    "line", ["Spec: FOO-BAR.", "Spec: FOO-BAR, foo-baz", "Spec: FOO-BAR (see notes)", "Spec:"]
)
def test_a_malformed_spec_line_is_a_problem_not_silently_ignored(tmp_path: Path, line: str) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.md").write_text("### FOO-BAR: thing\n")
    (tmp_path / "refnn").mkdir()
    (tmp_path / "refnn" / "m.py").write_text(
        'def f():\n    """Do.\n\n    Spec: FOO-BAR\n    """\n\n\n'
        f'def g():\n    """Do.\n\n    {line}\n    """\n'
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.py").write_text(
        "import pytest\n@pytest.mark.spec('FOO-BAR')\ndef test_x():\n    pass\n"
    )
    problems = build_trace(tmp_path).problems()
    assert any("refnn.m.g" in p and "malformed" in p for p in problems), problems


def test_the_trace_runs_in_a_checkout_and_not_in_an_installed_package(tmp_path: Path) -> None:
    """An installed package has no specs/, tests/ or pyproject.toml beside it: nothing to trace."""
    assert source_root(ROOT / "refnn") == ROOT
    (tmp_path / "refnn").mkdir()
    assert source_root(tmp_path / "refnn") is None
    (tmp_path / "specs").mkdir()
    (tmp_path / "tests").mkdir()  # site-packages may hold a stray tests/ from another package
    assert source_root(tmp_path / "refnn") is None
    (tmp_path / "pyproject.toml").write_text("")
    assert source_root(tmp_path / "refnn") == tmp_path


def test_the_formatter_is_never_silenced() -> None:
    skip = "fmt: " + "skip"  # spelled apart so that this file does not match itself
    silenced = [
        str(p.relative_to(ROOT))
        for folder in ("refnn", "tests", "benchmarks", "demo")
        for p in (ROOT / folder).rglob("*.py")
        if skip in p.read_text() or "fmt: " + "off" in p.read_text()
    ]
    assert silenced == []
