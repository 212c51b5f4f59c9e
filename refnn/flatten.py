"""Flatten (FLATTEN-*): C x H x W x m images to (C H W) x m columns, a reshape (no copy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn._types import FloatArray
from refnn._validate import as_input
from refnn.layer import Layer


def flatten(X: FloatArray) -> FloatArray:
    """Merge every axis but the last (examples) into one.

    Parameters
    ----------
    X : ndarray, shape (C, H, W, m) (or any rank >= 2: (d_1, ..., d_k, m))

    Returns
    -------
    A : ndarray, shape (C H W, m); a view of X when X is C-contiguous

    Notes
    -----
    Spec: FLATTEN-FWD

    A[(c, h, w), n] = X[c, h, w, n], rows in row-major order (c H W + h W + w).
    """
    m: int = X.shape[-1]
    A: FloatArray = X.reshape(-1, m)
    return A


def unflatten(dA: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """The inverse reshape: (C H W) x m back to C x H x W x m.

    Notes
    -----
    Spec: FLATTEN-BWD

    dX = dA reshaped to C x H x W x m; a view when dA is C-contiguous.
    """
    dX: FloatArray = dA.reshape(shape)
    return dX


@dataclass(frozen=True)
class FlattenCache:
    """The input's shape, to undo the reshape."""

    shape: tuple[int, ...]


class Flatten(Layer):
    """Flatten layer (FLATTEN-FWD, FLATTEN-BWD); no parameters.

    Takes C x H x W x m images (any rank >= 2 works: all axes but the last are merged) and
    returns (C H W) x m, ready for a Dense layer. Both directions are reshapes: on a
    C-contiguous array they return a view and copy nothing.

    Parameters
    ----------
    dtype : float64 or float32
    """

    def __init__(self, *, dtype: Any = np.float64) -> None:
        super().__init__(dtype=dtype)
        self._cache: FlattenCache | None = None

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        if isinstance(X, np.ndarray) and X.ndim < 2:
            raise ValueError(
                f"X must have at least 2 axes (e.g. C x H x W x m, examples last), "
                f"got shape {X.shape}"
            )
        ndim = X.ndim if isinstance(X, np.ndarray) else 4
        X = as_input(X, "X", ndim=ndim, dtype=self.dtype)
        self._cache = FlattenCache(X.shape)
        return flatten(X)

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached(self._cache)
        m: int = cache.shape[-1]
        features = int(np.prod(cache.shape[:-1]))
        dA = self._check_upstream(dA, (features, m))
        return unflatten(dA, cache.shape)
