"""What the kit checked in this process, for the pytest plugin's summary, and its defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One passing (or failing) run of check_layer, check_loss or check_optimizer."""

    kind: str
    name: str
    detail: str
    specs: tuple[str, ...]
    examples: int
    seconds: float
    passed: bool


@dataclass
class Defaults:
    """Defaults the pytest plugin may change from the command line (--refnn-examples)."""

    examples: int = 30
    seed: int = 0


DEFAULTS = Defaults()
CHECKS: list[Check] = []
