"""``make check`` cases for the sequence heads (LastStep)."""

from __future__ import annotations

from functools import partial

import numpy as np

from refnn.sequence import LastStep
from refnn.verify.cases import Case
from refnn.verify.problems import Problem, layer_problem


def _last_step(n: int, T: int, m: int, seed: int) -> Problem:
    X = np.random.default_rng(seed).standard_normal((n, T, m))
    return layer_problem(LastStep(), X, seed=seed)


def cases() -> list[Case]:
    """LastStep for a single step and for several."""
    return [
        Case(
            "LastStep",
            f"n=3 T={T} m=2 seed={seed}",
            ("SEQ-LAST-FWD", "SEQ-LAST-BWD"),
            partial(_last_step, 3, T, 2, seed),
        )
        for T, seed in ((1, 0), (4, 1), (7, 2))
    ]
