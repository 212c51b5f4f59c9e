"""Naive Embedding oracle: a loop over the positions of X, straight from specs/embedding.md."""

from __future__ import annotations

from itertools import product

import numpy as np
import numpy.typing as npt

from refnn.types import FloatArray


def embedding_naive(
    X: npt.NDArray[np.integer], W: FloatArray, dY: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Y (EMBED-FWD) and dW (EMBED-DW) one position and one row at a time."""
    d = W.shape[0]
    Y = np.zeros((d, *X.shape))
    dW = np.zeros(W.shape)
    for p in product(*(range(n) for n in X.shape)):
        v = int(X[p])
        for r in range(d):
            Y[(r, *p)] = W[r, v]
            dW[r, v] += dY[(r, *p)]
    return Y, dW
