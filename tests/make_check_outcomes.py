"""Each ``make check`` case runs once per pytest session, whichever test asks first
(tests/test_verify.py runs them all; tests/test_readme.py compares the README's quote)."""

from __future__ import annotations

from refnn.verify.cases import all_cases
from refnn.verify.report import CaseOutcome
from refnn.verify.run import run_case

CASES = all_cases()
_OUTCOMES: dict[int, CaseOutcome] = {}


def outcome_of(i: int) -> CaseOutcome:
    """The outcome of ``CASES[i]``, run on first use."""
    if i not in _OUTCOMES:
        _OUTCOMES[i] = run_case(CASES[i])
    return _OUTCOMES[i]
