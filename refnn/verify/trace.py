"""Spec traceability: each spec ID -> the functions implementing it -> the tests verifying it.

Sources of truth (see ``specs/README.md``):

* ``specs/*.md``: a heading ``### ID: title`` defines ID;
* ``refnn/**/*.py``: a docstring line ``Spec: ID, ID`` inside a function or class cites IDs;
* ``tests/**/*.py``: ``@pytest.mark.spec("ID", ...)`` on a test cites IDs;
* ``make check`` cases list the IDs they verify.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ID_PATTERN = r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+"
_HEADING = re.compile(rf"^###\s+({ID_PATTERN})\s*:\s*(.+?)\s*$", re.MULTILINE)
_SPEC_LINE = re.compile(
    rf"^\s*Spec:\s*((?:{ID_PATTERN})(?:\s*,\s*{ID_PATTERN})*)\s*$", re.MULTILINE
)
_ANY_ID = re.compile(ID_PATTERN)
_SPEC_START = re.compile(r"^\s*Spec\s*:", re.MULTILINE)


@dataclass
class Trace:
    """Where each spec ID is defined, implemented and tested."""

    defined: dict[str, str] = field(default_factory=dict)  # ID -> "file: title"
    implemented: dict[str, list[str]] = field(default_factory=dict)  # ID -> functions
    tested: dict[str, list[str]] = field(default_factory=dict)  # ID -> tests
    checked: dict[str, list[str]] = field(default_factory=dict)  # ID -> make-check components
    malformed: list[str] = field(default_factory=list)  # "Spec:" lines the pattern rejects

    def problems(self, *, require_checked: Iterable[str] = ()) -> list[str]:
        """Every broken link: undefined citations, IDs with no implementation or no test."""
        out: list[str] = [
            f"malformed Spec line (IDs, comma separated, nothing else): {m}" for m in self.malformed
        ]
        for kind, table in (
            ("implementation", self.implemented),
            ("test", self.tested),
            ("check case", self.checked),
        ):
            for spec_id, where in sorted(table.items()):
                if spec_id not in self.defined:
                    out.append(f"{spec_id} cited by {kind} {where[0]} is defined in no spec")
        for spec_id in sorted(self.defined):
            if spec_id.startswith("NOTE-"):
                continue  # conventions, not equations
            if not self.implemented.get(spec_id):
                out.append(f"{spec_id} ({self.defined[spec_id]}) has no implementing function")
            if not self.tested.get(spec_id):
                out.append(f"{spec_id} ({self.defined[spec_id]}) has no test citing it")
        for spec_id in require_checked:
            if not self.checked.get(spec_id):
                out.append(f"{spec_id} is verified by no make-check case")
        return out


#: The directory of the ``refnn`` package this module belongs to.
PACKAGE = Path(__file__).resolve().parents[1]


def source_root(package: Path = PACKAGE) -> Path | None:
    """The checkout holding ``specs/``, ``tests/`` and ``pyproject.toml`` next to the package.

    None for an installed package: a wheel ships ``refnn`` alone, so there is nothing to trace
    (the derivatives are still all verified).
    """
    root = package.parent
    found = (
        all((root / d).is_dir() for d in ("specs", "tests")) and (root / "pyproject.toml").is_file()
    )
    return root if found else None


def parse_specs(specs_dir: Path) -> dict[str, str]:
    """Map each defined ID to ``"<file>: <title>"``; a duplicate ID is an error."""
    defined: dict[str, str] = {}
    for path in sorted(specs_dir.glob("*.md")):
        for match in _HEADING.finditer(path.read_text(encoding="utf-8")):
            spec_id, title = match.group(1), match.group(2)
            if spec_id in defined:
                raise ValueError(f"{spec_id} defined twice: {defined[spec_id]} and {path.name}")
            defined[spec_id] = f"{path.name}: {title}"
    return defined


def _docstrings(path: Path, module: str) -> Iterable[tuple[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            yield ast.get_docstring(node) or "", f"{module}.{node.name}"


def _docstring_citations(path: Path, module: str) -> Iterable[tuple[str, str]]:
    for doc, where in _docstrings(path, module):
        for match in _SPEC_LINE.finditer(doc):
            for spec_id in _ANY_ID.findall(match.group(1)):
                yield spec_id, where


def _malformed_spec_lines(root: Path) -> list[str]:
    """Docstring lines that start with "Spec:" but are not a list of IDs (else silently lost)."""
    out: list[str] = []
    for path in sorted((root / "refnn").rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for doc, where in _docstrings(path, module):
            for line in doc.splitlines():
                if _SPEC_START.match(line) and not _SPEC_LINE.match(line):
                    out.append(f"{where}: {line.strip()!r}")
    return out


def _mark_citations(path: Path, module: str) -> Iterable[tuple[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            continue
        for deco in node.decorator_list:
            if (
                isinstance(deco, ast.Call)
                and isinstance(deco.func, ast.Attribute)
                and deco.func.attr == "spec"
            ):
                for arg in deco.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        yield arg.value, f"{module}::{node.name}"


def _scan(root: Path, folder: str, kind: str) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for path in sorted((root / folder).rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        found = (
            _docstring_citations(path, module) if kind == "doc" else _mark_citations(path, module)
        )
        for spec_id, where in found:
            table.setdefault(spec_id, []).append(where)
    return table


def build_trace(root: Path, checked: dict[str, list[str]] | None = None) -> Trace:
    """Scan the specs, package sources and tests of the checkout ``root``."""
    return Trace(
        defined=parse_specs(root / "specs"),
        implemented=_scan(root, "refnn", "doc"),
        tested=_scan(root, "tests", "mark"),
        checked=checked or {},
        malformed=_malformed_spec_lines(root),
    )
