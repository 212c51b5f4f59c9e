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

from refnn._validate import resolve_dtype, to_dtype
from refnn.types import DTypeLike, FloatArray

CacheT = TypeVar("CacheT")


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

    @abstractmethod
    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        """Compute the layer's output and keep what ``backward`` needs.

        ``training`` matters only to layers that behave differently at inference (dropout).
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

    def _cached(self) -> CacheT:
        """Return the forward cache, or explain that backward came before forward."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return self._cache

    def _check_upstream(self, dA: object, expected: tuple[int, ...]) -> FloatArray:
        """Validate the upstream gradient's type, shape, dtype and finiteness."""
        if not isinstance(dA, np.ndarray):
            raise TypeError(f"dA must be a numpy array, got {type(dA).__name__}")
        if dA.shape != expected:
            raise ValueError(f"dA must have the output's shape {expected}, got {dA.shape}")
        if dA.dtype.kind != "f":
            raise TypeError(f"dA must be a float array, got dtype {dA.dtype}")
        if not np.isfinite(dA).all():
            raise ValueError("dA must be finite, got NaN or Inf (an upstream layer diverged?)")
        return to_dtype(dA, self.dtype, "dA")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
