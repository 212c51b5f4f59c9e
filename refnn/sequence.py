"""Sequence heads (SEQ-*): from all hidden states to what a classifier needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refnn._validate import as_input
from refnn.layer import Layer
from refnn.types import FloatArray


def last_step(X: FloatArray) -> FloatArray:
    """The last time step of a batch of sequences, as a new contiguous array.

    Parameters
    ----------
    X : ndarray, shape (n, T, m)

    Returns
    -------
    A : ndarray, shape (n, m)

    Notes
    -----
    Spec: SEQ-LAST-FWD

    A = X[:, T-1, :].
    """
    A: FloatArray = X[:, -1, :].copy()
    return A


def last_step_backward(dA: FloatArray, shape: tuple[int, int, int]) -> FloatArray:
    """Route the gradient to the last time step; every other step gets zero.

    Notes
    -----
    Spec: SEQ-LAST-BWD

    dX[:, t, :] = dA if t = T-1, else 0.
    """
    dX: FloatArray = np.zeros(shape, dtype=dA.dtype)
    dX[:, -1, :] = dA
    return dX


@dataclass(frozen=True)
class LastStepCache:
    """The input's shape (n, T, m): all the backward needs."""

    shape: tuple[int, int, int]


class LastStep(Layer[LastStepCache]):
    """Keep the last time step of a sequence: H (n, T, m) -> H[:, T-1, :] (n, m).

    After an :class:`refnn.LSTM` it makes a many-to-one model (classify a sequence from h_T).
    Implements SEQ-LAST-FWD and SEQ-LAST-BWD.
    """

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        X = as_input(X, "X", ndim=3, dtype=self.dtype, layout="n x T x m")
        if X.shape[1] == 0:
            raise ValueError(f"X must hold at least one time step (T >= 1), got shape {X.shape}")
        n: int = X.shape[0]
        T: int = X.shape[1]
        m: int = X.shape[2]
        self._remember(LastStepCache((n, T, m)))
        return last_step(X)

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        n, _, m = cache.shape
        return last_step_backward(self._check_upstream(dA, (n, m)), cache.shape)
