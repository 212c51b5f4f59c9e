"""The layer base class: parameters, gradients, the forward cache and the forward/backward contract.

A layer holds three things: ``params`` (name -> the layer's own array; writing into one changes
the layer), ``grads`` (the same keys, filled by ``backward`` with dθ = ∂J/∂θ, NOTE-COST) and the
cache that ``forward`` keeps for ``backward``, typed by the layer's ``CacheT``. The math lives in
plain functions; a layer only wires them to its state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from refnn._validate import refuse_nonfinite, resolve_dtype, to_dtype
from refnn.types import DTypeLike, FloatArray

CacheT = TypeVar("CacheT")

#: Arrays up to this many elements are fingerprinted whole; larger ones at this many positions.
FINGERPRINT_SAMPLES = 4096


def fingerprint(a: npt.NDArray[Any]) -> bytes:
    """A cheap fingerprint of an array's contents (NOTE-STALE).

    The bytes of every element for arrays of up to ``FINGERPRINT_SAMPLES`` elements, else of
    that many elements at evenly spaced flat positions (first and last included): any change to
    a small array is seen, and so is any change to a large one that touches a sampled position
    (``X[...] = 0``, an optimizer step on W), at the cost of copying at most 32 KiB.
    """
    if a.size <= FINGERPRINT_SAMPLES:
        return a.tobytes()
    positions = np.linspace(0, a.size - 1, FINGERPRINT_SAMPLES).astype(np.intp)
    return bytes(a.flat[positions].tobytes())


Watched = list[tuple[str, npt.NDArray[Any], bytes]]


def watch(**arrays: npt.NDArray[Any]) -> Watched:
    """Fingerprint ``arrays`` (name -> array held by reference) to see later writes (NOTE-STALE)."""
    return [(name, a, fingerprint(a)) for name, a in arrays.items()]


def check_unchanged(owner: str, watched: Watched) -> None:
    """Raise RuntimeError naming the first watched array changed since `watch` (NOTE-STALE)."""
    for name, a, before in watched:
        if fingerprint(a) != before:
            raise RuntimeError(
                f"{owner}.backward(): {name} was modified after forward(); "
                "refnn keeps references, not copies, of what forward() used: call forward() "
                "again after changing it"
            )


#: Appended to the error for a non-finite upstream gradient.
DIVERGED = " (an upstream layer diverged?)"


@dataclass(frozen=True)
class Parameter:
    """One trainable array with its gradient, as an optimizer sees it.

    ``name`` (``"0.W"``: the layer's position in the model, then the key) is for messages and
    reports; optimizer state is keyed by the array itself.
    """

    name: str
    value: FloatArray
    grad: FloatArray


class Layer(ABC, Generic[CacheT]):
    """Base class of every refnn layer; ``CacheT`` is what ``forward`` keeps for ``backward``.

    Parameters
    ----------
    dtype : float64 or float32
        The dtype the layer computes in, end to end (NOTE-DTYPE).
    """

    def __init__(self, *, dtype: DTypeLike = np.float64) -> None:
        self.dtype: np.dtype[np.floating[Any]] = resolve_dtype(dtype)
        self.params: dict[str, FloatArray] = {}
        self.grads: dict[str, FloatArray] = {}
        self._cache: CacheT | None = None
        self._watched: Watched = []

    @abstractmethod
    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        """Compute the layer's output and keep what ``backward`` needs.

        ``training`` (a bool, checked with ``as_bool``) matters only to layers that behave
        differently at inference (dropout).
        """

    @abstractmethod
    def backward(self, dA: FloatArray) -> FloatArray:
        """Given dA = ∂J/∂(output), fill ``grads`` and return dX = ∂J/∂(input)."""

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {"dtype": self.dtype.name}

    def parameters(self, prefix: str = "") -> Iterator[Parameter]:
        """Yield each parameter with its gradient (after ``backward``)."""
        for key, value in self.params.items():
            if key not in self.grads:
                raise RuntimeError(
                    f"{type(self).__name__}: no gradient for {key!r}; call backward() first"
                )
            yield Parameter(prefix + key, value, self.grads[key])

    def _remember(self, cache: CacheT, **shared: npt.NDArray[Any]) -> None:
        """Keep ``cache`` for ``backward``, fingerprinting what it shares with the caller.

        ``shared`` names the arrays the cache holds by reference that the caller can still write
        to (the input X, an output returned to the caller); the parameters are always watched.
        ``backward`` refuses to run if any of them changed since (NOTE-STALE).
        """
        self._cache = cache
        self._watched = watch(**shared, **self.params)

    def _cached(self) -> CacheT:
        """Return the forward cache, refusing a missing or stale one (NOTE-STALE)."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        check_unchanged(type(self).__name__, self._watched)
        return self._cache

    def _check_upstream(
        self, dA: object, expected: tuple[int, ...], *, finite: bool = True
    ) -> FloatArray:
        """Validate the upstream gradient's type, shape, dtype and finiteness; with
        ``finite=False`` the last is left to ``_check_upstream_sum`` after the backward."""
        if not isinstance(dA, np.ndarray):
            raise TypeError(f"dA must be a numpy array, got {type(dA).__name__}")
        if dA.shape != expected:
            raise ValueError(f"dA must have the output's shape {expected}, got {dA.shape}")
        if dA.dtype.kind != "f":
            raise TypeError(f"dA must be a float array, got dtype {dA.dtype}")
        if finite:
            refuse_nonfinite(dA, "dA", DIVERGED)
        return to_dtype(dA, self.dtype, "dA")

    @staticmethod
    def _check_upstream_sum(db: FloatArray, dZ: FloatArray) -> None:
        """dZ's finiteness, read off db = the sum of dZ over all but the first axis: a NaN or an
        infinity in dZ makes db non-finite, and only then (or if a sum overflowed) is each
        element of dZ tested. Compute the backward under ``np.errstate(invalid="ignore")``."""
        if not np.isfinite(db).all():
            refuse_nonfinite(dZ, "dA", DIVERGED)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
