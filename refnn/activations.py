"""Activations (SIGMOID-*, RELU-*, TANH-*, SOFTMAX-FWD/BWD): A = g(Z), dZ = dA ⊙ g'(Z).

Sigmoid, ReLU and Tanh act element by element on any shape; Softmax acts on each column of the
class axis (axis 0). Each is a pair of functions (forward, backward) and a thin layer that
caches one array: the output A (sigmoid, tanh, softmax) or the input Z (ReLU).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from refnn._validate import as_bool, as_input, refuse_overflow
from refnn.layer import Layer
from refnn.types import FloatArray


def sigmoid(Z: FloatArray) -> FloatArray:
    """Logistic function, finite and warning-free for any finite Z.

    Notes
    -----
    Spec: SIGMOID-FWD

    σ(z) = 1 / (1 + e^{-z}), evaluated as written: where e^{-z} overflows to inf (z below
    about -709 in float64, -88.7 in float32) the result is the limit 0, off by less than the
    smallest normal number; elsewhere within 4 ulp (specs/activations.md).
    """
    A = np.negative(Z)
    with np.errstate(over="ignore"):  # e^{-z} = inf gives 1 / (1 + inf) = 0, the limit
        np.exp(A, out=A)
    A += 1.0
    return np.reciprocal(A, out=A)


def sigmoid_backward(dA: FloatArray, A: FloatArray) -> FloatArray:
    """Chain rule through the sigmoid, from its output A.

    Notes
    -----
    Spec: SIGMOID-BWD

    dZ = dA ⊙ σ'(Z) with σ'(Z) = A (1 - A).
    """
    return dA * (A * (1.0 - A))


def relu(Z: FloatArray) -> FloatArray:
    """Rectified linear unit.

    Notes
    -----
    Spec: RELU-FWD

    relu(z) = max(z, 0).
    """
    return np.maximum(Z, 0)


def relu_backward(dA: FloatArray, Z: FloatArray) -> FloatArray:
    """Chain rule through the ReLU, from its input Z.

    Notes
    -----
    Spec: RELU-BWD

    dZ = dA ⊙ 1[Z > 0]; at the kink z = 0 the derivative is taken as 0.
    """
    return dA * (Z > 0)


def tanh(Z: FloatArray) -> FloatArray:
    """Hyperbolic tangent, finite and warning-free for any finite Z.

    Notes
    -----
    Spec: TANH-FWD

    tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z}), evaluated as sign(z) |E| / (E + 2) with
    E = expm1(-2|z|) in (-1, 0]: no overflow, no cancellation, within 3 ulp; odd by
    construction, values in [-1, 1]. (``np.tanh`` is libm's here and takes 1.4x as long.)
    """
    E = np.abs(Z)
    with np.errstate(over="ignore"):  # -2|z| = -inf gives E = -1, the limit
        E *= -2.0
    np.expm1(E, out=E)
    A = np.copysign(E, Z)
    E += 2.0
    return np.divide(A, E, out=A)


def tanh_backward(dA: FloatArray, A: FloatArray) -> FloatArray:
    """Chain rule through tanh, from its output A.

    Notes
    -----
    Spec: TANH-BWD

    dZ = dA ⊙ (1 - A)(1 + A), which is tanh'(z) = 1 - tanh²(z) without the rounding of A²
    (1 - A is exact for A in [1/2, 1]).
    """
    return dA * ((1.0 - A) * (1.0 + A))


def softmax(Z: FloatArray) -> FloatArray:
    """Softmax over the class axis (axis 0), stable for any finite logits.

    Parameters
    ----------
    Z : ndarray, shape (k, ..., m)
        Logits, classes on the first axis.

    Returns
    -------
    A : ndarray, same shape and dtype as Z
        Each column (fixed indices on the other axes) is a probability vector.

    Notes
    -----
    Spec: SOFTMAX-FWD

    a_j = e^{z_j - c} / Σ_l e^{z_l - c} with c the column maximum: every exponent is <= 0, so
    nothing overflows (a difference below -max rounds to -inf, whose exponential is the exact
    0 it stands for), and the maximal entry contributes e^0 = 1 to the sum, so it is >= 1.
    """
    with np.errstate(over="ignore"):
        E: FloatArray = np.exp(Z - Z.max(axis=0, keepdims=True))
    E /= E.sum(axis=0, keepdims=True)
    return E


def softmax_backward(dA: FloatArray, A: FloatArray) -> FloatArray:
    """Jacobian-vector product of the softmax, from its output A.

    Notes
    -----
    Spec: SOFTMAX-BWD

    dz_j = a_j (da_j - Σ_l a_l da_l) per column; the k x k Jacobian diag(a) - a aᵀ is never
    formed. A result beyond the dtype's range raises ValueError.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        dZ = A * (dA - (A * dA).sum(axis=0, keepdims=True))
    return refuse_overflow(dZ, "Softmax.backward: dZ")


def check_classes(X: FloatArray, name: str) -> FloatArray:
    """Return X if its class axis (axis 0) holds at least one class, else raise ValueError."""
    if X.shape[0] == 0:
        raise ValueError(
            f"{name} must have at least one class (k >= 1 on axis 0, the class axis), "
            f"got shape {X.shape}"
        )
    return X


class _Activation(Layer[FloatArray]):
    """One pattern for every activation: A = g(Z), dZ = g_backward(dA, kept), where ``kept``
    is the output A or, for ReLU (``keeps_input``), the input Z. No parameters."""

    #: The cache is Z rather than A (the derivative needs the input).
    keeps_input = False
    #: The smallest rank the input may have (softmax needs a class axis and an example axis).
    min_ndim = 1

    @abstractmethod
    def _g(self, Z: FloatArray, /) -> FloatArray: ...

    @abstractmethod
    def _g_backward(self, dA: FloatArray, kept: FloatArray, /) -> FloatArray: ...

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        as_bool(training, "training")
        Z = as_input(X, "Z", dtype=self.dtype, min_ndim=self.min_ndim)
        A = self._g(Z)
        if self.keeps_input:
            self._remember(Z, X=Z)
        else:
            self._remember(A, output=A)
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        kept = self._cached()
        return self._g_backward(self._check_upstream(dA, kept.shape), kept)


class Sigmoid(_Activation):
    """Sigmoid activation layer (SIGMOID-FWD, SIGMOID-BWD)."""

    _g = staticmethod(sigmoid)
    _g_backward = staticmethod(sigmoid_backward)


class ReLU(_Activation):
    """ReLU activation layer (RELU-FWD, RELU-BWD)."""

    keeps_input = True

    _g = staticmethod(relu)
    _g_backward = staticmethod(relu_backward)


class Tanh(_Activation):
    """Tanh activation layer (TANH-FWD, TANH-BWD)."""

    _g = staticmethod(tanh)
    _g_backward = staticmethod(tanh_backward)


class Softmax(_Activation):
    """Softmax over the class axis (axis 0) as a layer (SOFTMAX-FWD, SOFTMAX-BWD).

    Input of any rank >= 2, classes first and examples last. For training with cross-entropy
    prefer a linear last layer and :class:`refnn.losses.SoftmaxCrossEntropy` (exact from logits).
    """

    min_ndim = 2

    def _g(self, Z: FloatArray) -> FloatArray:
        return softmax(check_classes(Z, "Z"))

    def _g_backward(self, dA: FloatArray, kept: FloatArray) -> FloatArray:
        return softmax_backward(dA, kept)
