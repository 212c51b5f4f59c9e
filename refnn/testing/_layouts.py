"""Layout conversion between refnn's batch-last arrays and the layouts other code uses.

refnn puts examples on the LAST axis (NOTE-AXES): dense n x m, images C x H x W x m,
sequences n x T x m. Batch-first code (PyTorch with ``batch_first=True``) puts them first:
m x n, m x C x H x W, m x T x n; channels-last code (TensorFlow, the course notebooks) takes
images as m x H x W x C; time-major code (PyTorch's default LSTM) takes sequences as T x m x n.
The rank tells which axes are meant, so one table per layout converts every array the kit
exchanges (TEST-LAYOUT).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from refnn.types import FloatArray

Layout = Literal["batch_last", "batch_first", "channels_last", "time_major"]
LAYOUTS: tuple[Layout, ...] = ("batch_last", "batch_first", "channels_last", "time_major")

_TO_FIRST = {2: (1, 0), 3: (2, 1, 0), 4: (3, 0, 1, 2)}
_TO_LAST = {2: (1, 0), 3: (2, 1, 0), 4: (1, 2, 3, 0)}
#: The axes of refnn's array (by rank) that make each layout's array: np.transpose's argument.
PERMUTATIONS: dict[str, dict[int, tuple[int, ...]]] = {
    "batch_first": _TO_FIRST,
    "channels_last": {2: (1, 0), 3: (2, 1, 0), 4: (3, 1, 2, 0)},
    "time_major": {2: (1, 0), 3: (1, 2, 0), 4: (3, 0, 1, 2)},
}
#: How each layout names the axes, by rank (for messages).
AXES: dict[str, dict[int, str]] = {
    "batch_last": {2: "n x m", 3: "n x T x m", 4: "C x H x W x m"},
    "batch_first": {2: "m x n", 3: "m x T x n", 4: "m x C x H x W"},
    "channels_last": {2: "m x n", 3: "m x T x n", 4: "m x H x W x C"},
    "time_major": {2: "m x n", 3: "T x m x n", 4: "m x C x H x W"},
}


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


def convert(X: FloatArray, layout: str) -> FloatArray:
    """refnn's array in ``layout`` (a C-contiguous copy either way: the implementation may
    write to it). Ranks other than 2 to 4 are left as they are."""
    table = PERMUTATIONS.get(layout, {})
    return np.array(X.transpose(table[X.ndim]) if X.ndim in table else X, order="C")


def back(X: FloatArray, layout: str) -> FloatArray:
    """An implementation's array in ``layout`` as refnn's layout (the inverse of convert)."""
    table = PERMUTATIONS.get(layout, {})
    if X.ndim not in table:
        return np.asarray(X)
    return np.asarray(X).transpose(np.argsort(table[X.ndim]))
