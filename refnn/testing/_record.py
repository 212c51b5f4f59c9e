"""What the kit checked in this process, for the pytest plugin's summary, and its defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One run of check_layer, check_loss or check_optimizer: passed, or what stopped it."""

    kind: str
    name: str
    detail: str
    specs: tuple[str, ...]
    examples: int
    seconds: float
    passed: bool
    #: Why it did not pass: "implementation rejected (MismatchError: ...)" when the kit found a
    #: disagreement (what a test of a wrong implementation expects), else the error that
    #: stopped the check; "" when it passed.
    outcome: str = ""

    def line(self) -> str:
        """One line for the plugin's summary: a rejection is worded as one, never as "FAILED"
        (a green run whose tests expect rejections must not print FAILED)."""
        verdict = "passed" if self.passed else self.outcome or "did not pass"
        return (
            f"{self.kind} {self.name} ({self.detail}): {self.examples} examples, {verdict} "
            f"in {self.seconds:.1f} s; specs {', '.join(self.specs)}"
        )


@dataclass
class Defaults:
    """Defaults the pytest plugin may change from the command line (--refnn-examples)."""

    examples: int = 30
    seed: int = 0


DEFAULTS = Defaults()
CHECKS: list[Check] = []
