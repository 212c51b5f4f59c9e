"""Weight initialisation (INIT-*): He and Xavier/Glorot, from an explicit generator (NOTE-RNG)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from refnn.types import FloatArray

InitName = Literal["he", "xavier"]


def init_weights(
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    *,
    rng: np.random.Generator,
    scheme: InitName,
    dtype: np.dtype[np.floating[Any]],
) -> FloatArray:
    """Draw a weight array with the variance the scheme prescribes.

    Notes
    -----
    Spec: INIT-HE, INIT-XAVIER

    He: W_ij ~ N(0, 2 / fan_in). Xavier (Glorot normal): W_ij ~ N(0, 2 / (fan_in + fan_out)).
    """
    if scheme == "he":
        std = np.sqrt(2.0 / fan_in)
    elif scheme == "xavier":
        std = np.sqrt(2.0 / (fan_in + fan_out))
    else:
        raise ValueError(f"init must be 'he' or 'xavier', got {scheme!r}")
    W: FloatArray = (rng.standard_normal(shape) * std).astype(dtype, copy=False)
    return W
