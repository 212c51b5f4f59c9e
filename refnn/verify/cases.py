"""What ``make check`` verifies: a case is one component in one configuration.

Each concern contributes a module ``refnn/verify/cases_<concern>.py`` with a function
``cases() -> list[Case]``; ``registry.py`` lists those modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from refnn.verify.problems import Problem


@dataclass(frozen=True)
class Case:
    """One gradient check.

    Attributes
    ----------
    component : str
        What is checked ("Dense", "BinaryCrossEntropy", "mlp 4-8-1").
    config : str
        The configuration in a few words ("n_in=3 n_out=4 m=5 seed=0").
    specs : tuple of str
        The spec IDs whose derivatives this case verifies.
    build : callable
        Returns the Problem; called only when the case runs.
    """

    component: str
    config: str
    specs: tuple[str, ...]
    build: Callable[[], Problem]
