"""Sequence heads (SEQ-*): from all hidden states to what a classifier needs."""

from __future__ import annotations

import numpy as np

from refnn._validate import as_bool, as_input
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
    return X[:, -1, :].copy()


def last_step_backward(dA: FloatArray, shape: tuple[int, int, int]) -> FloatArray:
    """Route the gradient to the last time step; every other step gets zero.

    Notes
    -----
    Spec: SEQ-LAST-BWD

    dX[:, t, :] = dA if t = T-1, else 0.
    """
    dX = np.zeros(shape, dtype=dA.dtype)
    dX[:, -1, :] = dA
    return dX


class LastStep(Layer[tuple[int, int, int]]):
    """Keep the last time step of a sequence: H (n, T, m) -> H[:, T-1, :] (n, m).

    After an :class:`refnn.LSTM` it makes a many-to-one model (classify a sequence from h_T).
    Implements SEQ-LAST-FWD and SEQ-LAST-BWD; the cache is the input's shape (n, T, m).
    """

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        as_bool(training, "training")
        X = as_input(X, "X", ndim=3, dtype=self.dtype, layout="n x T x m")
        if X.shape[1] == 0:
            raise ValueError(f"X must hold at least one time step (T >= 1), got shape {X.shape}")
        n, T, m = X.shape
        self._remember((n, T, m))
        return last_step(X)

    def backward(self, dA: FloatArray) -> FloatArray:
        n, T, m = self._cached()
        return last_step_backward(self._check_upstream(dA, (n, m)), (n, T, m))
