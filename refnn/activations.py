"""Element-wise activations (SIGMOID-*, RELU-*, TANH-*): A = g(Z), dZ = dA * g'(Z)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refnn._validate import as_input
from refnn.layer import CacheT, Layer
from refnn.types import FloatArray


def sigmoid(Z: FloatArray) -> FloatArray:
    """Logistic function, finite and warning-free for any finite Z.

    Notes
    -----
    Spec: SIGMOID-FWD

    σ(z) = 1 / (1 + e^{-z}), evaluated as 1/(1+e^{-|z|}) for z >= 0 and e^{-|z|}/(1+e^{-|z|})
    for z < 0, so the exponential never overflows.
    """
    e = np.exp(-np.abs(Z))
    A: FloatArray = np.where(Z >= 0, 1.0, e) / (1.0 + e)
    return A.astype(Z.dtype, copy=False)


def sigmoid_backward(dA: FloatArray, A: FloatArray) -> FloatArray:
    """Chain rule through the sigmoid, from its output A.

    Notes
    -----
    Spec: SIGMOID-BWD

    dZ = dA ⊙ σ'(Z) with σ'(Z) = A (1 - A).
    """
    dZ: FloatArray = dA * (A * (1.0 - A))
    return dZ


def relu(Z: FloatArray) -> FloatArray:
    """Rectified linear unit.

    Notes
    -----
    Spec: RELU-FWD

    relu(z) = max(z, 0).
    """
    A: FloatArray = np.maximum(Z, 0)
    return A


def relu_backward(dA: FloatArray, Z: FloatArray) -> FloatArray:
    """Chain rule through the ReLU, from its input Z.

    Notes
    -----
    Spec: RELU-BWD

    dZ = dA ⊙ 1[Z > 0]; at the kink z = 0 the derivative is taken as 0.
    """
    dZ: FloatArray = dA * (Z > 0)
    return dZ


def tanh(Z: FloatArray) -> FloatArray:
    """Hyperbolic tangent, finite and warning-free for any finite Z.

    Notes
    -----
    Spec: TANH-FWD

    tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z}), by ``np.tanh``; values in [-1, 1].
    """
    A: FloatArray = np.tanh(Z)
    return A


def tanh_backward(dA: FloatArray, A: FloatArray) -> FloatArray:
    """Chain rule through tanh, from its output A.

    Notes
    -----
    Spec: TANH-BWD

    dZ = dA ⊙ (1 - A)(1 + A), which is tanh'(z) = 1 - tanh²(z) without the rounding of A²
    (1 - A is exact for A in [1/2, 1]).
    """
    dZ: FloatArray = dA * ((1.0 - A) * (1.0 + A))
    return dZ


@dataclass(frozen=True)
class SigmoidCache:
    """The sigmoid's output, from which its derivative follows."""

    A: FloatArray


@dataclass(frozen=True)
class TanhCache:
    """The tanh's output, from which its derivative follows."""

    A: FloatArray


@dataclass(frozen=True)
class ReLUCache:
    """The ReLU's input, whose sign selects the gradient."""

    Z: FloatArray


class _Elementwise(Layer[CacheT]):
    """Shared input handling of element-wise activations: any rank, examples last."""

    def _input(self, Z: FloatArray) -> FloatArray:
        return as_input(Z, "Z", dtype=self.dtype)


class Sigmoid(_Elementwise[SigmoidCache]):
    """Sigmoid activation layer (SIGMOID-FWD, SIGMOID-BWD)."""

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        A = sigmoid(self._input(X))
        self._remember(SigmoidCache(A), output=A)
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        return sigmoid_backward(self._check_upstream(dA, cache.A.shape), cache.A)


class ReLU(_Elementwise[ReLUCache]):
    """ReLU activation layer (RELU-FWD, RELU-BWD)."""

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        Z = self._input(X)
        self._remember(ReLUCache(Z), X=Z)
        return relu(Z)

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        return relu_backward(self._check_upstream(dA, cache.Z.shape), cache.Z)


class Tanh(_Elementwise[TanhCache]):
    """Tanh activation layer (TANH-FWD, TANH-BWD)."""

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        A = tanh(self._input(X))
        self._remember(TanhCache(A), output=A)
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        return tanh_backward(self._check_upstream(dA, cache.A.shape), cache.A)
