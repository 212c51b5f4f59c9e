"""Softmax and categorical cross-entropy (SOFTMAX-*, CE-*, SOFTMAX-CE-*).

The class axis is the first axis and examples are on the last (NOTE-AXES): Z, A, Y are
k x m (or k x ... x m). ``Softmax`` is a layer; ``CrossEntropy`` takes probabilities;
``SoftmaxCrossEntropy`` takes logits and is exact for every finite logit. Prefer the fused form
for training: a ``Softmax`` layer followed by ``CrossEntropy`` computes the same J and gradient
only while no probability falls below the CE clip (δ = machine epsilon).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn._validate import as_input
from refnn.layer import Layer
from refnn.losses import Loss, check_probabilities
from refnn.types import DTypeLike, FloatArray


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
    nothing overflows, and the maximal entry contributes e^0 = 1 to the sum, so it is >= 1.
    """
    E: FloatArray = np.exp(Z - Z.max(axis=0, keepdims=True))
    E /= E.sum(axis=0, keepdims=True)
    return E


def log_softmax(Z: FloatArray) -> FloatArray:
    """Logarithm of the softmax over axis 0, without forming the softmax.

    Notes
    -----
    Spec: SOFTMAX-CE-COST

    log a_j = z_j - c - log Σ_l e^{z_l - c}, c the column maximum; finite for any finite z.
    """
    shifted: FloatArray = Z - Z.max(axis=0, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    return shifted


def softmax_backward(dA: FloatArray, A: FloatArray) -> FloatArray:
    """Jacobian-vector product of the softmax, from its output A.

    Notes
    -----
    Spec: SOFTMAX-BWD

    dz_j = a_j (da_j - Σ_l a_l da_l) per column; the k x k Jacobian diag(a) - a aᵀ is never
    formed.
    """
    dZ: FloatArray = A * (dA - (A * dA).sum(axis=0, keepdims=True))
    return dZ


def ce_cost(A: FloatArray, Y: FloatArray) -> float:
    """Mean categorical cross-entropy of probabilities A against targets Y.

    Notes
    -----
    Spec: CE-COST

    J = -(1/m) Σ y log max(a, δ), δ = machine epsilon of A's dtype; no upper clip, so J = 0
    exactly when A = Y for one-hot Y.
    """
    m = A.shape[-1]
    delta = float(np.finfo(A.dtype).eps)
    return float(-np.sum(Y * np.log(np.maximum(A, delta))) / m)


def ce_backward(A: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the mean categorical cross-entropy with respect to A.

    Notes
    -----
    Spec: CE-GRAD

    dA = -(1/m) Y / max(A, δ).
    """
    m = A.shape[-1]
    delta = float(np.finfo(A.dtype).eps)
    dA: FloatArray = -Y / np.maximum(A, delta) / m
    return dA


def softmax_ce_cost(Z: FloatArray, Y: FloatArray) -> float:
    """Mean cross-entropy of softmax(Z) against Y, computed from the logits.

    Notes
    -----
    Spec: SOFTMAX-CE-COST

    J = -(1/m) Σ y (z - c - log Σ_l e^{z_l - c}) through :func:`log_softmax`: no clip, exact for
    any finite z.
    """
    m = Z.shape[-1]
    return float(-np.sum(Y * log_softmax(Z)) / m)


def softmax_ce_backward(Z: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the fused softmax + cross-entropy with respect to the logits.

    Notes
    -----
    Spec: SOFTMAX-CE-GRAD

    dZ = (softmax(Z) - Y) / m, valid when each column of Y sums to 1 (one-hot or soft targets,
    which the loss classes enforce).
    """
    m = Z.shape[-1]
    dZ: FloatArray = softmax(Z)
    dZ -= Y
    dZ /= m
    return dZ


def check_class_labels(
    Y: object, shape: tuple[int, ...], dtype: np.dtype[Any], *, soft: bool = False
) -> FloatArray:
    """Return targets Y as ``dtype`` after checking shape and that each column is a distribution.

    Hard (default): entries in {0, 1} and exactly one 1 per column (one-hot). Soft: entries in
    [0, 1] and each column summing to 1 within sqrt(eps) of ``dtype``.
    """
    ndim = len(shape)
    Y_arr = as_input(Y, "Y", ndim=ndim, dtype=dtype)
    if Y_arr.shape != shape:
        raise ValueError(f"Y must have the prediction's shape {shape}, got {Y_arr.shape}")
    bad = (Y_arr < 0) | (Y_arr > 1) if soft else (Y_arr != 0) & (Y_arr != 1)
    if np.any(bad):
        allowed = "[0, 1]" if soft else "{0, 1} (one-hot columns)"
        raise ValueError(f"Y must hold values in {allowed}, got values such as {Y_arr[bad][:3]}")
    sums = Y_arr.sum(axis=0)
    tol = float(np.sqrt(np.finfo(dtype).eps)) if soft else 0.0
    off = np.abs(sums - 1.0) > tol
    if np.any(off):
        first = tuple(int(i) for i in np.argwhere(off)[0])
        what = "sum to 1" if soft else "hold exactly one 1 (one-hot)"
        raise ValueError(
            f"each column of Y (axis 0 is the class axis) must {what}; column {first} sums to "
            f"{sums[first]}" + ("" if soft else "; pass soft_labels=True for probability targets")
        )
    return Y_arr


@dataclass(frozen=True)
class SoftmaxCache:
    """The softmax's output, from which its Jacobian-vector product follows."""

    A: FloatArray


class Softmax(Layer[SoftmaxCache]):
    """Softmax over the class axis (axis 0) as a layer (SOFTMAX-FWD, SOFTMAX-BWD).

    Parameters
    ----------
    dtype : float64 or float32

    Notes
    -----
    Input of any rank >= 2, classes first and examples last. For training with cross-entropy
    prefer a linear last layer and :class:`SoftmaxCrossEntropy` (exact from logits).
    """

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        A = softmax(as_input(X, "Z", min_ndim=2, dtype=self.dtype))
        self._remember(SoftmaxCache(A), output=A)
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        return softmax_backward(self._check_upstream(dA, cache.A.shape), cache.A)


class _Categorical(Loss):
    """Shared label handling of the categorical losses.

    Parameters
    ----------
    soft_labels : bool
        Accept probability-vector targets (entries in [0, 1], columns summing to 1) instead of
        only one-hot columns.
    dtype : float64 or float32
    """

    def __init__(self, *, soft_labels: bool = False, dtype: DTypeLike = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.soft_labels = bool(soft_labels)

    def config(self) -> dict[str, Any]:
        return {"soft_labels": self.soft_labels, **super().config()}

    def _check_prediction(self, A: FloatArray) -> FloatArray:
        if A.ndim < 2:
            raise ValueError(
                f"{type(self).__name__} needs a class axis and an example axis (k x m), "
                f"got shape {A.shape}"
            )
        return A

    def _check_labels(self, Y: object, A: FloatArray) -> FloatArray:
        return check_class_labels(Y, A.shape, self.dtype, soft=self.soft_labels)


class CrossEntropy(_Categorical):
    """Categorical cross-entropy of probabilities A (k x m) against one-hot Y (CE-COST, CE-GRAD).

    A's entries must be in [0, 1] (a softmax output); they are clipped below at machine epsilon
    so the cost stays finite. Y must have one-hot columns unless ``soft_labels=True``.
    """

    def _check_prediction(self, A: FloatArray) -> FloatArray:
        return check_probabilities(super()._check_prediction(A))

    def _cost(self, A: FloatArray, Y: FloatArray) -> float:
        return ce_cost(A, Y)

    def _grad(self, A: FloatArray, Y: FloatArray) -> FloatArray:
        return ce_backward(A, Y)


class SoftmaxCrossEntropy(_Categorical):
    """Softmax fused with categorical cross-entropy, taking logits Z (SOFTMAX-CE-COST, -GRAD).

    ``forward(Z, Y)`` returns J of softmax(Z); ``backward()`` returns dZ = (softmax(Z) - Y)/m.
    Use it in place of a final ``Softmax`` layer + ``CrossEntropy``: it is exact for every finite
    logit, where the two-step form saturates at the clip.
    """

    def _cost(self, A: FloatArray, Y: FloatArray) -> float:
        return softmax_ce_cost(A, Y)

    def _grad(self, A: FloatArray, Y: FloatArray) -> FloatArray:
        return softmax_ce_backward(A, Y)
