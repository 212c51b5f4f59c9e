"""A layer the LSTM classifier needs and refnn does not export (yet): the last time step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn._types import FloatArray
from refnn._validate import as_input
from refnn.layer import Layer


@dataclass(frozen=True)
class LastStepCache:
    """The input's shape (n, T, m), all that the backward needs."""

    shape: tuple[int, int, int]


class LastStep(Layer):
    """Keep the last time step of a sequence: H (n, T, m) -> H[:, T-1, :] (n, m).

    Placed after an LSTM it gives a many-to-one model (classify a sequence from h_T).

    Notes
    -----
    Forward: A = X[:, T-1, :], as a new C-contiguous array (never a view of the caller's X).
    Backward: dX is zero at every step but the last, where it is dA.
    """

    def __init__(self, *, dtype: Any = np.float64) -> None:
        super().__init__(dtype=dtype)
        self._cache: LastStepCache | None = None

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        X = as_input(X, "X", ndim=3, dtype=self.dtype)
        if X.shape[1] == 0:
            raise ValueError(f"X must hold at least one time step (T >= 1), got shape {X.shape}")
        n: int = X.shape[0]
        T: int = X.shape[1]
        m: int = X.shape[2]
        self._cache = LastStepCache((n, T, m))
        A: FloatArray = X[:, -1, :].copy()
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached(self._cache)
        n, _, m = cache.shape
        dA = self._check_upstream(dA, (n, m))
        dX: FloatArray = np.zeros(cache.shape, dtype=self.dtype)
        dX[:, -1, :] = dA
        return dX
