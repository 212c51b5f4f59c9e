"""Array aliases shared by every module (NOTE-DTYPE)."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

#: A floating point array of any supported precision (float64 by default, float32 allowed).
FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
#: The dtypes a layer may compute in.
FloatDType: TypeAlias = type[np.float64] | type[np.float32]

SUPPORTED_DTYPES: tuple[np.dtype[Any], ...] = (np.dtype(np.float64), np.dtype(np.float32))
