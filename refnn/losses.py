"""Losses (BCE-*, CE-*, SOFTMAX-CE-*): J = (1/m) Σ L, and dA = ∂J/∂A carrying the 1/m (NOTE-COST).

Binary cross-entropy takes probabilities (``BinaryCrossEntropy``) or logits
(``BinaryCrossEntropyWithLogits``); categorical cross-entropy takes probability columns
(``CrossEntropy``, class axis first) or logits (``SoftmaxCrossEntropy``). The from-logits forms
are exact for every finite logit; prefer them for training. Every loss takes
``soft_labels=False``: hard labels in {0, 1} (one-hot columns for the categorical losses), or
with ``soft_labels=True`` any value in [0, 1] (columns that are probability vectors).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from refnn._validate import (
    as_bool,
    as_input,
    check_classes,
    check_labels,
    column_sums_one,
    refuse_overflow,
    resolve_dtype,
)
from refnn.activations import sigmoid, softmax
from refnn.kitspace import LossSpace
from refnn.layer import Cached, Example, LabelKind, watch
from refnn.registry import register
from refnn.types import DTypeLike, FloatArray


def clip_probabilities(A: FloatArray) -> FloatArray:
    """Clip A into [δ, 1 - δ], δ = eps of A's dtype, so logs stay finite.

    Notes
    -----
    Spec: BCE-CLIP

    Â = min(max(A, δ), 1 - δ) with δ = machine epsilon (2.2e-16 in float64, 1.2e-7 in float32).
    Inside [δ, 1 - δ] nothing changes.
    """
    delta = float(np.finfo(A.dtype).eps)
    return np.clip(A, delta, 1.0 - delta)


def bce_cost(A: FloatArray, Y: FloatArray) -> float:
    """Mean binary cross-entropy over examples and outputs.

    Notes
    -----
    Spec: BCE-COST

    J = -(1/m) Σ_ij [ y_ij log â_ij + (1 - y_ij) log(1 - â_ij) ], with Â from BCE-CLIP.
    """
    Ac = clip_probabilities(A)
    return float(-np.sum(Y * np.log(Ac) + (1.0 - Y) * np.log1p(-Ac)) / A.shape[-1])


def bce_backward(A: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the mean BCE with respect to the predictions.

    Notes
    -----
    Spec: BCE-GRAD

    dA = (1/m) (-(y/â) + (1 - y)/(1 - â)) = (1/m) (â - y) / (â (1 - â)), zero where A = Y
    (up to the clip).
    """
    Ac = clip_probabilities(A)
    return (Ac - Y) / (Ac * (1.0 - Ac)) / A.shape[-1]


def bce_logits_cost(Z: FloatArray, Y: FloatArray) -> float:
    """Mean BCE of σ(Z), computed from the logits without forming σ(Z).

    Notes
    -----
    Spec: BCE-LOGITS-COST

    J = (1/m) Σ [ max(z, 0) - z y + log(1 + e^{-|z|}) ], exact for any finite z. Each term is
    divided by m before summing, and a cost beyond the dtype's range raises ValueError.
    """
    m = Z.shape[-1]
    with np.errstate(over="ignore", invalid="ignore"):
        terms = (np.maximum(Z, 0) - Z * Y) / m + np.log1p(np.exp(-np.abs(Z))) / m
        J = np.sum(terms)
    return float(refuse_overflow(np.asarray(J), "the binary cross-entropy J"))


def bce_logits_backward(Z: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the fused sigmoid + BCE with respect to the logits.

    Notes
    -----
    Spec: BCE-LOGITS-GRAD

    dZ = (σ(Z) - Y) / m.
    """
    return (sigmoid(Z) - Y) / Z.shape[-1]


def ce_cost(A: FloatArray, Y: FloatArray) -> float:
    """Mean categorical cross-entropy of probabilities A against targets Y.

    Notes
    -----
    Spec: CE-COST

    J = -(1/m) Σ y log max(a, δ), δ = machine epsilon of A's dtype; no upper clip, so J = 0
    exactly when A = Y for one-hot Y.
    """
    delta = float(np.finfo(A.dtype).eps)
    return float(-np.sum(Y * np.log(np.maximum(A, delta))) / A.shape[-1])


def ce_backward(A: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the mean categorical cross-entropy with respect to A.

    Notes
    -----
    Spec: CE-GRAD

    dA = -(1/m) Y / max(A, δ).
    """
    delta = float(np.finfo(A.dtype).eps)
    return -Y / np.maximum(A, delta) / A.shape[-1]


def log_softmax(Z: FloatArray) -> FloatArray:
    """Logarithm of the softmax over axis 0, without forming the softmax.

    Notes
    -----
    Spec: SOFTMAX-CE-COST

    log a_j = z_j - c - log Σ_l e^{z_l - c}, c the column maximum; finite for any finite z
    whose column spread is within the dtype's range (else -inf, the log of the exact 0).
    """
    with np.errstate(over="ignore"):
        shifted: FloatArray = Z - Z.max(axis=0, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    return shifted


def softmax_ce_cost(Z: FloatArray, Y: FloatArray) -> float:
    """Mean cross-entropy of softmax(Z) against Y, computed from the logits.

    Notes
    -----
    Spec: SOFTMAX-CE-COST

    J = -(1/m) Σ y (z - c - log Σ_l e^{z_l - c}) through :func:`log_softmax`: no clip, exact for
    any finite z. Classes with y = 0 add nothing; a cost beyond the dtype's range raises.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        J = -np.sum(Y * log_softmax(Z) / Z.shape[-1], where=Y != 0)
    return float(refuse_overflow(np.asarray(J), "the cross-entropy J"))


def softmax_ce_backward(Z: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the fused softmax + cross-entropy with respect to the logits.

    Notes
    -----
    Spec: SOFTMAX-CE-GRAD

    dZ = (softmax(Z) - Y) / m, valid when each column of Y sums to 1 (one-hot or soft targets,
    which the loss classes enforce).
    """
    dZ = softmax(Z)
    dZ -= Y
    dZ /= Z.shape[-1]
    return dZ


#: How far a column of CrossEntropy's A may sum from 1: rounding and a gradient check's step on
#: one entry (at most 1e-5 in float64, 8.2e-3 in float32) stay inside; unnormalised scores or
#: the wrong class axis do not.
COLUMN_SUM_TOL = 1e-2


class Loss(Cached, ABC):
    """A cost J(A, Y): ``forward`` returns J as a float, ``backward`` returns dA = ∂J/∂A.

    Parameters
    ----------
    soft_labels : bool
        Accept labels anywhere in [0, 1] (probability-vector columns for the categorical
        losses) instead of only hard {0, 1} (one-hot) labels.
    dtype : float64 or float32

    Notes
    -----
    ``backward`` uses the A and Y of the last ``forward`` by reference: it refuses to run if the
    caller modified either in between (NOTE-STALE), or from another thread than the forward's
    (NOTE-THREADS): the cache is the layers' (:class:`refnn.layer.Cached`).
    """

    component_kind: ClassVar[str] = "loss"
    #: Spec IDs of each quantity: "J" (the cost) and "dA".
    specs: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Labels are per-column distributions over the class axis (axis 0).
    categorical = False
    #: A must hold probabilities (not logits).
    takes_probabilities = False
    #: How the kit (refnn.testing) draws A and Y (TEST-SPACE); None: not in the kit.
    kit: ClassVar[LossSpace | None] = None

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        """PyTorch's equivalent of J(A, Y) (A, Y tensors in refnn's layout, outputs x m), for
        the kit's ``torch_impl`` (TEST-TORCH); torch is passed in, never imported by refnn.
        Raises NotImplementedError where PyTorch has none."""
        raise NotImplementedError(f"{cls.__name__} declares no PyTorch equivalent")

    def __init__(self, *, soft_labels: bool = False, dtype: DTypeLike = np.float64) -> None:
        self.soft_labels = as_bool(soft_labels, "soft_labels")
        self.dtype: np.dtype[np.floating[Any]] = resolve_dtype(dtype)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """make check's cases: A (4 x 5) against hard and soft labels, three seeds, and float32
        (``Example.labels`` says how Y is drawn; A is drawn as the loss takes it)."""
        hard: LabelKind = "one-hot" if cls.categorical else "binary"
        kinds: tuple[LabelKind, ...] = (hard, "soft")
        return (
            *(
                Example(
                    f"4x5 {kind} seed={seed}".replace(" binary", ""),
                    (4, 5),
                    (),
                    {"soft_labels": kind == "soft"},
                    seed,
                    labels=kind,
                )
                for seed in (0, 1, 2)
                for kind in kinds
            ),
            Example(f"4x5 {hard}".replace(" binary", ""), (4, 5), labels=hard, float32=True),
        )

    def forward(self, A: FloatArray, Y: FloatArray) -> float:
        """Return the cost J of predictions A (outputs x m) against labels Y (same shape)."""
        A_arr = as_input(A, "A", dtype=self.dtype, min_ndim=2 if self.categorical else 1)
        if self.categorical:
            check_classes(A_arr, "A")
        if self.takes_probabilities:
            self._check_probabilities(A_arr)
        Y_arr = check_labels(
            Y, A_arr.shape, self.dtype, soft=self.soft_labels, columns=self.categorical
        )
        self._hold((A_arr, Y_arr), watch(A=A_arr, Y=Y_arr), A_arr.shape)
        return self._cost(A_arr, Y_arr)

    def backward(self) -> FloatArray:
        """Return dA = ∂J/∂A for the last forward (the 1/m is included here, NOTE-COST)."""
        A, Y = self._take().cache
        return self._grad(A, Y)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable)."""
        return {"soft_labels": self.soft_labels, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def _check_probabilities(self, A: FloatArray) -> None:
        if np.any((A < 0) | (A > 1)):
            raise ValueError(
                f"A must hold probabilities in [0, 1], got values in [{A.min()}, {A.max()}]"
            )
        if self.categorical:
            column_sums_one("A", A, COLUMN_SUM_TOL, " (a softmax output expected)")

    @abstractmethod
    def _cost(self, A: FloatArray, Y: FloatArray, /) -> float: ...

    @abstractmethod
    def _grad(self, A: FloatArray, Y: FloatArray, /) -> FloatArray: ...


def _bce_terms(A: FloatArray, Y: FloatArray) -> tuple[float, FloatArray]:
    """TEST-TOL-TERMS of BCE: the size of the cost's terms and of dA's (1/m included)."""
    m = A.shape[1]
    terms = np.abs(Y * np.log(A)) + np.abs((1 - Y) * np.log1p(-A))
    return float(terms.sum()) / m, (np.abs(Y) / A + np.abs(1 - Y) / (1 - A)) / m


def _ce_terms(A: FloatArray, Y: FloatArray) -> tuple[float, FloatArray]:
    """TEST-TOL-TERMS of categorical cross-entropy."""
    m = A.shape[1]
    return float(np.abs(Y * np.log(A)).sum()) / m, np.abs(Y) / A / m


def _logit_terms(A: FloatArray, Y: FloatArray) -> tuple[float, FloatArray]:
    """TEST-TOL-TERMS of the losses of logits: the log-sum-exp's terms grow with max |A|."""
    m = A.shape[1]
    big = np.abs(A).max(axis=0, keepdims=True)
    terms = np.abs(Y) * (np.abs(A) + big + np.log(A.shape[0]) + 1) + np.abs(A) + 1
    return float(terms.sum()) / m, (1 + np.abs(Y) + big) / m


@register
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy of probabilities A in [0, 1] (BCE-COST, BCE-GRAD, BCE-CLIP)."""

    specs = {"J": ("BCE-COST", "BCE-CLIP"), "dA": ("BCE-GRAD",)}
    takes_probabilities = True
    kit = LossSpace("probabilities", classes=False, terms=lambda A, Y: _bce_terms(A, Y))

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        return torch.nn.functional.binary_cross_entropy(A, Y, reduction="sum") / A.shape[-1]

    _cost = staticmethod(bce_cost)
    _grad = staticmethod(bce_backward)


@register
class BinaryCrossEntropyWithLogits(Loss):
    """Sigmoid fused with binary cross-entropy, taking logits Z (BCE-LOGITS-COST, -GRAD).

    Use it in place of a final ``Sigmoid`` layer + ``BinaryCrossEntropy``: it is exact for any
    finite logit, where the two-step form saturates.
    """

    specs = {"J": ("BCE-LOGITS-COST",), "dA": ("BCE-LOGITS-GRAD",)}
    kit = LossSpace("logits", classes=False, terms=lambda A, Y: _logit_terms(A, Y))

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        F = torch.nn.functional
        return F.binary_cross_entropy_with_logits(A, Y, reduction="sum") / A.shape[-1]

    _cost = staticmethod(bce_logits_cost)
    _grad = staticmethod(bce_logits_backward)


@register
class CrossEntropy(Loss):
    """Categorical cross-entropy of probabilities A (k x m) against one-hot Y (CE-COST, CE-GRAD).

    Each column of A must be a probability vector (entries in [0, 1], summing to 1 within
    ``COLUMN_SUM_TOL``: a softmax output); entries are clipped below at machine epsilon so the
    cost stays finite. Y must have one-hot columns unless ``soft_labels=True``.
    """

    specs = {"J": ("CE-COST",), "dA": ("CE-GRAD",)}
    kit = LossSpace("distributions", classes=True, terms=lambda A, Y: _ce_terms(A, Y))

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        if config.get("soft_labels"):
            return -(Y * torch.log(A)).sum() / A.shape[-1]
        labels = Y.argmax(dim=0)
        return torch.nn.functional.nll_loss(torch.log(A).T, labels, reduction="sum") / A.shape[-1]

    categorical = True
    takes_probabilities = True

    _cost = staticmethod(ce_cost)
    _grad = staticmethod(ce_backward)


@register
class SoftmaxCrossEntropy(Loss):
    """Softmax fused with categorical cross-entropy, taking logits Z (SOFTMAX-CE-COST, -GRAD).

    ``forward(Z, Y)`` returns J of softmax(Z); ``backward()`` returns dZ = (softmax(Z) - Y)/m.
    Use it in place of a final ``Softmax`` layer + ``CrossEntropy``: it is exact for every finite
    logit, where the two-step form saturates at the clip.
    """

    specs = {"J": ("SOFTMAX-CE-COST",), "dA": ("SOFTMAX-CE-GRAD",)}
    kit = LossSpace("logits", classes=True, terms=lambda A, Y: _logit_terms(A, Y))

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        F = torch.nn.functional
        return F.cross_entropy(A.T, Y.T, reduction="sum") / A.shape[-1]

    categorical = True

    _cost = staticmethod(softmax_ce_cost)
    _grad = staticmethod(softmax_ce_backward)
