"""The case modules ``make check`` runs, one per concern."""

from __future__ import annotations

from refnn.verify import cases_conv, cases_core, cases_lstm, cases_seeds, cases_sequence
from refnn.verify.cases import Case


def all_cases() -> list[Case]:
    """Every registered case, in report order."""
    return [
        *cases_core.cases(),
        *cases_lstm.cases(),
        *cases_sequence.cases(),
        *cases_seeds.cases(),
        *cases_conv.cases(),
    ]
