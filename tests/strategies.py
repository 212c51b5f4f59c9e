"""Hypothesis strategies shared by the tests: sizes, seeds and well-scaled float arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from refnn.types import FloatArray

sizes = st.integers(min_value=1, max_value=6)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def normal(seed: int, *shape: int, scale: float = 1.0) -> FloatArray:
    """A standard normal array from its own generator (never the global state)."""
    out: FloatArray = scale * np.random.default_rng(seed).standard_normal(shape)
    return out


def labels(seed: int, k: int, m: int) -> FloatArray:
    """Random hard labels in {0, 1}."""
    out: FloatArray = (np.random.default_rng(seed).random((k, m)) < 0.5).astype(np.float64)
    return out
