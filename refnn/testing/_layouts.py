"""Layout conversion between refnn's batch-last arrays and the batch-first ones of PyTorch.

refnn puts examples on the LAST axis (NOTE-AXES): dense n x m, images C x H x W x m,
sequences n x T x m. Batch-first code (PyTorch with ``batch_first=True``) puts them first:
m x n, m x C x H x W, m x T x n. The rank tells which layout is meant, so one pair of functions
converts every array the kit exchanges.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from refnn.types import FloatArray

Layout = Literal["batch_last", "batch_first"]

_TO_FIRST = {2: (1, 0), 3: (2, 1, 0), 4: (3, 0, 1, 2)}
_TO_LAST = {2: (1, 0), 3: (2, 1, 0), 4: (1, 2, 3, 0)}


def _transposed(X: object, table: dict[int, tuple[int, ...]], name: str) -> FloatArray:
    """``X`` with its axes permuted as ``table`` says for its rank, as a C-contiguous copy."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{name} takes a numpy array, got {type(X).__name__}")
    if X.ndim not in table:
        raise ValueError(
            f"{name} takes a dense (rank 2), sequence (rank 3) or image (rank 4) array, "
            f"got rank {X.ndim} with shape {X.shape}"
        )
    return np.array(X.transpose(table[X.ndim]), order="C")


def to_batch_first(X: FloatArray) -> FloatArray:
    """Convert a refnn (batch-last) array to batch-first, as a C-contiguous copy.

    n x m -> m x n; n x T x m -> m x T x n; C x H x W x m -> m x C x H x W.

    Notes
    -----
    Spec: TEST-LAYOUT
    """
    return _transposed(X, _TO_FIRST, "to_batch_first")


def to_batch_last(X: FloatArray) -> FloatArray:
    """Convert a batch-first array to refnn's layout (examples last), as a C-contiguous copy:
    the inverse of :func:`to_batch_first` (m x n -> n x m; m x T x n -> n x T x m;
    m x C x H x W -> C x H x W x m).

    Spec: TEST-LAYOUT
    """
    return _transposed(X, _TO_LAST, "to_batch_last")


def convert(X: FloatArray, layout: Layout) -> FloatArray:
    """refnn's array in ``layout`` (a copy either way: the implementation may write to it)."""
    return to_batch_first(X) if layout == "batch_first" else np.array(X, copy=True)


def back(X: FloatArray, layout: Layout) -> FloatArray:
    """An implementation's array in ``layout`` as refnn's layout."""
    return to_batch_last(X) if layout == "batch_first" else np.asarray(X)
