"""The case modules ``make check`` runs, one per concern."""

from __future__ import annotations

from refnn.verify import cases_core
from refnn.verify.cases import Case


def all_cases() -> list[Case]:
    """Every registered case, in report order."""
    return [*cases_core.cases()]
