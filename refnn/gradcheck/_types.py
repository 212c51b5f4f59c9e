"""Type aliases and the few constants every module of the checker shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, SupportsFloat, TypeAlias

import numpy as np
import numpy.typing as npt

#: Any numpy array (inputs keep the caller's dtype when they are passed to ``f``).
AnyArray: TypeAlias = npt.NDArray[Any]
#: The checker's working precision.
Float64Array: TypeAlias = npt.NDArray[np.float64]
#: An element index into an array of any rank (``()`` for a 0-d array).
Index: TypeAlias = tuple[int, ...]

#: ``f(*inputs)``: a real scalar (python float, numpy scalar or an array holding one value).
ScalarFunction: TypeAlias = Callable[..., SupportsFloat]
#: ``grad(*inputs)``: one gradient array per checked input, in ``wrt`` order.
GradFunction: TypeAlias = Callable[..., Sequence[AnyArray]]
#: ``f(*inputs) -> Y`` for :func:`check_vjp`.
ArrayFunction: TypeAlias = Callable[..., AnyArray]
#: ``vjp(dY, *inputs)``: the gradients of ``<dY, f(*inputs)>``, one per checked input.
VjpFunction: TypeAlias = Callable[..., Sequence[AnyArray]]

Mode: TypeAlias = Literal["elementwise", "fast", "auto"]
Method: TypeAlias = Literal["elementwise", "fast"]
Verdict: TypeAlias = Literal["ok", "WRONG", "inconclusive"]

EPS64: float = float(np.finfo(np.float64).eps)

# Independent random streams of the checker: np.random.default_rng([seed, STREAM_*]).
STREAM_FAST = 0
STREAM_TAYLOR = 1
STREAM_VJP = 2
STREAM_CONTRACT = 3
