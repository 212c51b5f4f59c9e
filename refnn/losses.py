"""Losses (BCE-*): J = (1/m) Σ L, and dA = ∂J/∂A carrying the 1/m (NOTE-COST)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn._validate import as_input, resolve_dtype
from refnn.activations import sigmoid
from refnn.types import DTypeLike, FloatArray


def check_binary_labels(
    Y: object, shape: tuple[int, ...], dtype: np.dtype[Any], *, soft: bool = False
) -> FloatArray:
    """Return labels Y as ``dtype`` after checking shape and values.

    Hard labels must be in {0, 1}; with ``soft=True`` any value in [0, 1] is accepted.
    """
    Y_arr = as_input(Y, "Y", ndim=len(shape), dtype=dtype)
    if Y_arr.shape != shape:
        raise ValueError(f"Y must have the prediction's shape {shape}, got {Y_arr.shape}")
    bad_mask = (Y_arr < 0) | (Y_arr > 1) if soft else (Y_arr != 0) & (Y_arr != 1)
    if np.any(bad_mask):
        allowed = "[0, 1]" if soft else "{0, 1}"
        raise ValueError(
            f"Y must hold labels in {allowed}, got values such as {Y_arr[bad_mask][:3]}"
        )
    return Y_arr


def check_probabilities(A: FloatArray) -> FloatArray:
    """Return A if every entry is a probability in [0, 1], else raise ValueError."""
    if np.any((A < 0) | (A > 1)):
        raise ValueError(
            f"A must hold probabilities in [0, 1], got values in [{A.min()}, {A.max()}]"
        )
    return A


def clip_probabilities(A: FloatArray) -> FloatArray:
    """Clip A into [δ, 1 - δ], δ = eps of A's dtype, so logs stay finite.

    Notes
    -----
    Spec: BCE-CLIP

    Â = min(max(A, δ), 1 - δ) with δ = machine epsilon (2.2e-16 in float64, 1.2e-7 in float32).
    Inside [δ, 1 - δ] nothing changes.
    """
    delta = float(np.finfo(A.dtype).eps)
    clipped: FloatArray = np.clip(A, delta, 1.0 - delta)
    return clipped


def bce_cost(A: FloatArray, Y: FloatArray) -> float:
    """Mean binary cross-entropy over examples and outputs.

    Notes
    -----
    Spec: BCE-COST

    J = -(1/m) Σ_ij [ y_ij log â_ij + (1 - y_ij) log(1 - â_ij) ], with Â from BCE-CLIP.
    """
    m = A.shape[-1]
    Ac = clip_probabilities(A)
    return float(-np.sum(Y * np.log(Ac) + (1.0 - Y) * np.log1p(-Ac)) / m)


def bce_backward(A: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the mean BCE with respect to the predictions.

    Notes
    -----
    Spec: BCE-GRAD

    dA = (1/m) (-(y/â) + (1 - y)/(1 - â)) = (1/m) (â - y) / (â (1 - â)), zero where A = Y
    (up to the clip).
    """
    m = A.shape[-1]
    Ac = clip_probabilities(A)
    dA: FloatArray = (Ac - Y) / (Ac * (1.0 - Ac)) / m
    return dA


def bce_logits_cost(Z: FloatArray, Y: FloatArray) -> float:
    """Mean BCE of σ(Z), computed from the logits without forming σ(Z).

    Notes
    -----
    Spec: BCE-LOGITS-COST

    J = (1/m) Σ [ max(z, 0) - z y + log(1 + e^{-|z|}) ], exact for any finite z.
    """
    m = Z.shape[-1]
    return float(np.sum(np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))) / m)


def bce_logits_backward(Z: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the fused sigmoid + BCE with respect to the logits.

    Notes
    -----
    Spec: BCE-LOGITS-GRAD

    dZ = (σ(Z) - Y) / m.
    """
    m = Z.shape[-1]
    dZ: FloatArray = (sigmoid(Z) - Y) / m
    return dZ


@dataclass(frozen=True)
class LossCache:
    """The predictions (or logits) and labels of the last forward."""

    A: FloatArray
    Y: FloatArray


class Loss(ABC):
    """A cost J(A, Y): ``forward`` returns J as a float, ``backward`` returns dA = ∂J/∂A."""

    def __init__(self, *, dtype: DTypeLike = np.float64) -> None:
        self.dtype: np.dtype[np.floating[Any]] = resolve_dtype(dtype)
        self._cache: LossCache | None = None

    def forward(self, A: FloatArray, Y: FloatArray) -> float:
        """Return the cost J of predictions A (outputs x m) against labels Y (same shape)."""
        A_arr = self._check_prediction(as_input(A, "A", dtype=self.dtype))
        Y_arr = self._check_labels(Y, A_arr)
        self._cache = LossCache(A_arr, Y_arr)
        return self._cost(A_arr, Y_arr)

    def backward(self) -> FloatArray:
        """Return dA = ∂J/∂A for the last forward (the 1/m is included here, NOTE-COST)."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return self._grad(self._cache.A, self._cache.Y)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable)."""
        return {"dtype": self.dtype.name}

    def _check_prediction(self, A: FloatArray) -> FloatArray:
        return A

    @abstractmethod
    def _check_labels(self, Y: object, A: FloatArray) -> FloatArray: ...

    @abstractmethod
    def _cost(self, A: FloatArray, Y: FloatArray) -> float: ...

    @abstractmethod
    def _grad(self, A: FloatArray, Y: FloatArray) -> FloatArray: ...


class _Binary(Loss):
    """Shared label handling of the binary losses.

    Parameters
    ----------
    soft_labels : bool
        Accept labels anywhere in [0, 1] instead of only {0, 1}.
    dtype : float64 or float32
    """

    def __init__(self, *, soft_labels: bool = False, dtype: DTypeLike = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.soft_labels = bool(soft_labels)

    def config(self) -> dict[str, Any]:
        return {"soft_labels": self.soft_labels, **super().config()}

    def _check_labels(self, Y: object, A: FloatArray) -> FloatArray:
        return check_binary_labels(Y, A.shape, self.dtype, soft=self.soft_labels)


class BinaryCrossEntropy(_Binary):
    """Binary cross-entropy of probabilities A in [0, 1] (BCE-COST, BCE-GRAD, BCE-CLIP)."""

    def _check_prediction(self, A: FloatArray) -> FloatArray:
        return check_probabilities(A)

    def _cost(self, A: FloatArray, Y: FloatArray) -> float:
        return bce_cost(A, Y)

    def _grad(self, A: FloatArray, Y: FloatArray) -> FloatArray:
        return bce_backward(A, Y)


class BinaryCrossEntropyWithLogits(_Binary):
    """Sigmoid fused with binary cross-entropy, taking logits Z (BCE-LOGITS-COST, -GRAD).

    Use it in place of a final ``Sigmoid`` layer + ``BinaryCrossEntropy``: it is exact for any
    finite logit, where the two-step form saturates.
    """

    def _cost(self, A: FloatArray, Y: FloatArray) -> float:
        return bce_logits_cost(A, Y)

    def _grad(self, A: FloatArray, Y: FloatArray) -> FloatArray:
        return bce_logits_backward(A, Y)
