"""pytest plugin of the conformance kit (entry point ``pytest11``: ``refnn``).

Adds ``--refnn-examples N`` (hypothesis examples per check_layer / check_loss /
check_optimizer call) and ``--refnn-seed S``, and prints at the end of the run what was checked
against which spec IDs. Without the entry point, load it with ``pytest -p refnn.testing.plugin``.
It imports neither hypothesis nor torch.
"""

from __future__ import annotations

from typing import Any

from refnn.testing._record import CHECKS, DEFAULTS


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("refnn", "refnn conformance kit")
    group.addoption(
        "--refnn-examples",
        type=int,
        default=None,
        metavar="N",
        help="hypothesis examples per refnn.testing check (default 30)",
    )
    group.addoption(
        "--refnn-seed", type=int, default=None, metavar="S", help="hypothesis seed (default 0)"
    )


def pytest_configure(config: Any) -> None:
    examples, seed = config.getoption("--refnn-examples"), config.getoption("--refnn-seed")
    if examples is not None:
        if examples < 1:
            raise ValueError(f"--refnn-examples must be >= 1, got {examples}")
        DEFAULTS.examples = examples
    if seed is not None:
        DEFAULTS.seed = seed


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List every check of the run: what, how many examples, the verdict and the spec IDs.

    Notes
    -----
    Spec: TEST-PLUGIN
    """
    if not CHECKS:
        return
    terminalreporter.section("refnn conformance kit")
    for c in CHECKS:
        terminalreporter.write_line(c.line())
