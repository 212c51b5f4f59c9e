"""The kit on the corpus (tests/kit_corpus/, issue 22): every correct implementation passes
once its convention is declared, every injected bug is caught, and the message points at it.

``python -m tests.test_testing_corpus`` prints the table (source, component, verdict, seconds).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from refnn.testing import MismatchError, check_layer, check_loss, check_optimizer
from tests.kit_corpus import ENTRIES, Entry

CHECKS: dict[str, Any] = {"layer": check_layer, "loss": check_loss, "optimizer": check_optimizer}
EXAMPLES = 10


def run(entry: Entry) -> tuple[str, str, float]:
    """(verdict, message, seconds) of the kit on one entry."""
    start = time.perf_counter()
    try:
        CHECKS[entry.check](entry.component, entry.make_impl, max_examples=EXAMPLES, **entry.kwargs)
    except MismatchError as exc:
        return "rejected", str(exc), time.perf_counter() - start
    return "passed", "", time.perf_counter() - start


@pytest.mark.spec("TEST-LAYER", "TEST-LOSS", "TEST-OPTIM", "TEST-SPACE")
@pytest.mark.parametrize(
    "entry",
    ENTRIES,
    ids=[f"{e.source.split()[0]}-{e.component}-{e.bug or 'correct'}" for e in ENTRIES],
)
def test_the_kit_on_the_corpus(entry: Entry) -> None:
    verdict, message, _ = run(entry)
    if not entry.bug:
        assert verdict == "passed", message
    else:
        assert verdict == "rejected", f"{entry.bug} was not caught"
        assert entry.expect in message, message


if __name__ == "__main__":  # the table of the closing note
    print("| source | component | implementation | verdict | seconds |")
    print("|---|---|---|---|---|")
    for e in ENTRIES:
        verdict, message, seconds = run(e)
        ok = (verdict == "passed") if not e.bug else (verdict == "rejected" and e.expect in message)
        what = e.bug or "correct"
        mark = "" if ok else " (WRONG)"
        print(f"| {e.source} | {e.component} | {what} | {verdict}{mark} | {seconds:.2f} |")
