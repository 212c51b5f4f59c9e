"""Public array and dtype aliases (NOTE-DTYPE): type your own code against these.

One refnn class serves both float64 and float32, so its arrays are typed ``FloatArray``
(``NDArray[np.floating[Any]]``); annotate code that receives refnn arrays with ``FloatArray``
(or narrow with ``np.asarray(a, dtype=np.float64)`` where a float64 array is required).
``DTypeLike`` is what every ``dtype=`` argument takes; mypy rejects anything else (float16,
"float16", int), as the runtime does.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

#: A floating point array of either supported precision (float64 by default, float32 allowed).
FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
#: A float64 array.
Float64Array: TypeAlias = npt.NDArray[np.float64]
#: A float32 array.
Float32Array: TypeAlias = npt.NDArray[np.float32]
#: What a ``dtype=`` argument accepts: float64 or float32, as a type, a dtype or a name.
DTypeLike: TypeAlias = (
    type[np.float64]
    | type[np.float32]
    | np.dtype[np.float64]
    | np.dtype[np.float32]
    | Literal["float64", "float32"]
)

SUPPORTED_DTYPES: tuple[np.dtype[Any], ...] = (np.dtype(np.float64), np.dtype(np.float32))
