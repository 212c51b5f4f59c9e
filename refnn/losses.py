"""Losses (BCE-*, CE-*, SOFTMAX-CE-*, MSE-*, HINGE-*): J = (1/m) Σ L, dA = ∂J/∂A (NOTE-COST).

Binary cross-entropy takes probabilities (``BinaryCrossEntropy``) or logits
(``BinaryCrossEntropyWithLogits``); categorical cross-entropy takes probability columns
(``CrossEntropy``, class axis first) or logits (``SoftmaxCrossEntropy``). The from-logits forms
are exact for every finite logit; prefer them for training. Every loss takes
``soft_labels=False``: hard labels in {0, 1} (one-hot columns for the categorical losses), or
with ``soft_labels=True`` any value in [0, 1] (columns that are probability vectors).

``MeanSquaredError`` (MSE-*) takes any real targets; ``MulticlassHinge`` (HINGE-*, the SVM loss)
takes scores and one-hot columns. ``BinaryCrossEntropyWithLogits`` and ``SoftmaxCrossEntropy``
take per-example weights, ``forward(Z, Y, weights=w)``, normalised by m or by their sum
(``weight_norm``, LOSS-WEIGHTS).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from refnn._validate import (
    as_bool,
    as_input,
    check_classes,
    check_labels,
    column_sums_one,
    float_in,
    refuse_nonfinite,
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


def mse_cost(A: FloatArray, Y: FloatArray) -> float:
    """Mean squared error, summed over outputs and averaged over examples.

    Notes
    -----
    Spec: MSE-COST

    J = (1/m) Σ_ij (a_ij - y_ij)²; PyTorch's ``MSELoss()`` (mean over all k m elements) is
    J / k. A cost beyond the dtype's range raises ValueError.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        D = A - Y
        D *= D  # in place: a second fresh array of A's size costs more than the arithmetic
        J = np.sum(D) / A.shape[-1]
    return float(refuse_overflow(np.asarray(J), "the squared error J"))


def mse_backward(A: FloatArray, Y: FloatArray) -> FloatArray:
    """Gradient of the mean squared error with respect to the predictions.

    Notes
    -----
    Spec: MSE-GRAD

    dA = (2/m) (A - Y).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        dA: FloatArray = A - Y
        dA *= 2.0
        dA /= A.shape[-1]
    return refuse_overflow(dA, "the squared error's gradient dA")


def hinge_terms(
    Z: FloatArray, Y: FloatArray, margin: float
) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """The hinge terms max(0, Δ + s_j - s_y) of each class j (0 for the correct class), and the
    correct class y of each column.

    Notes
    -----
    Spec: HINGE-COST

    y = the position of the 1 in each one-hot column of Y, s_y its score; a term at exactly 0
    (the kink) is inactive.
    """
    y = np.argmax(Y, axis=0)[None]
    with np.errstate(over="ignore", invalid="ignore"):
        terms: FloatArray = np.add(Z, margin)
        terms -= np.take_along_axis(Z, y, axis=0)
    np.maximum(terms, 0.0, out=terms)
    np.put_along_axis(terms, y, 0.0, axis=0)
    return terms, y


def hinge_cost(Z: FloatArray, Y: FloatArray, margin: float = 1.0) -> float:
    """Multiclass hinge (SVM) loss of scores Z against one-hot Y, averaged over examples.

    Notes
    -----
    Spec: HINGE-COST

    J = (1/m) Σ_i Σ_{j != y_i} max(0, Δ + s_ji - s_{y_i i}); PyTorch's ``MultiMarginLoss``
    (p=1) is J / k. A cost beyond the dtype's range raises ValueError.
    """
    terms, _ = hinge_terms(Z, Y, margin)
    with np.errstate(over="ignore", invalid="ignore"):
        J = np.sum(terms) / Z.shape[-1]
        if not np.isfinite(J):  # the sum may overflow where J does not: divide each term first
            J = np.sum(terms / Z.shape[-1])
    return float(refuse_overflow(np.asarray(J), "the hinge loss J"))


def hinge_backward(Z: FloatArray, Y: FloatArray, margin: float = 1.0) -> FloatArray:
    """Subgradient of the multiclass hinge loss with respect to the scores.

    Notes
    -----
    Spec: HINGE-GRAD

    dZ_j = (1/m) 1[Δ + s_j - s_y > 0] for j != y, dZ_y = -(1/m) (the number of those); a term
    exactly 0 counts as inactive (the derivative from below).
    """
    terms, y = hinge_terms(Z, Y, margin)
    m = Z.shape[-1]
    dZ: FloatArray = np.greater(terms, 0.0, out=terms)  # 1 where active, in Z's dtype
    count = np.sum(dZ, axis=0, keepdims=True)
    dZ /= m
    np.put_along_axis(dZ, y, -count / m, axis=0)
    return dZ


#: How weighted example losses are normalised (LOSS-WEIGHTS): by m, or by the sum of the weights.
WeightNorm = Literal["m", "sum"]


def example_coefficients(w: FloatArray, weight_norm: WeightNorm) -> FloatArray:
    """The coefficient c_i of each example's loss: w_i / m, or w_i / Σ w.

    Notes
    -----
    Spec: LOSS-WEIGHTS

    c = w / m (weight_norm "m") or w / Σ_l w_l ("sum"), w a length-m vector of weights >= 0.
    """
    total = w.shape[-1] if weight_norm == "m" else np.sum(w)
    c: FloatArray = w / total
    return c


def bce_logits_weighted_cost(Z: FloatArray, Y: FloatArray, c: FloatArray) -> float:
    """Weighted BCE of σ(Z) from the logits: each example's loss times its coefficient.

    Notes
    -----
    Spec: BCE-LOGITS-COST, LOSS-WEIGHTS

    J = Σ_i c_i Σ_j [ max(z_ji, 0) - z_ji y_ji + log(1 + e^{-|z_ji|}) ], c from
    :func:`example_coefficients` (broadcast over the outputs).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        terms = (np.maximum(Z, 0) - Z * Y) * c + np.log1p(np.exp(-np.abs(Z))) * c
        J = np.sum(terms)
    return float(refuse_overflow(np.asarray(J), "the binary cross-entropy J"))


def bce_logits_weighted_backward(Z: FloatArray, Y: FloatArray, c: FloatArray) -> FloatArray:
    """Gradient of the weighted fused sigmoid + BCE with respect to the logits.

    Notes
    -----
    Spec: BCE-LOGITS-GRAD, LOSS-WEIGHTS

    dZ = c ⊙ (σ(Z) - Y), c broadcast over the outputs.
    """
    dZ: FloatArray = (sigmoid(Z) - Y) * c
    return dZ


def softmax_ce_weighted_cost(Z: FloatArray, Y: FloatArray, c: FloatArray) -> float:
    """Weighted cross-entropy of softmax(Z) from the logits.

    Notes
    -----
    Spec: SOFTMAX-CE-COST, LOSS-WEIGHTS

    J = -Σ_i c_i Σ_j y_ji log softmax(z_i)_j, through :func:`log_softmax`.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        J = -np.sum(Y * log_softmax(Z) * c, where=Y != 0)
    return float(refuse_overflow(np.asarray(J), "the cross-entropy J"))


def softmax_ce_weighted_backward(Z: FloatArray, Y: FloatArray, c: FloatArray) -> FloatArray:
    """Gradient of the weighted fused softmax + cross-entropy with respect to the logits.

    Notes
    -----
    Spec: SOFTMAX-CE-GRAD, LOSS-WEIGHTS

    dZ = c ⊙ (softmax(Z) - Y), c broadcast over the class axis.
    """
    dZ = softmax(Z)
    dZ -= Y
    dZ *= c
    return dZ


def check_weights(
    weights: object, m: int, dtype: np.dtype[Any], weight_norm: WeightNorm
) -> FloatArray:
    """Per-example weights as a length-m vector of ``dtype``: shape (m,) or (1, m), finite and
    >= 0, and not all 0 for ``weight_norm="sum"`` (ValueError/TypeError naming what came)."""
    w = as_input(weights, "weights", dtype=dtype)
    if w.shape not in ((m,), (1, m)):
        raise ValueError(
            f"weights must have shape (m,) or (1, m) = ({m},) or (1, {m}) (one per example), "
            f"got {w.shape}"
        )
    if np.any(w < 0):
        raise ValueError(f"weights must be >= 0, got values such as {w[w < 0][:3]}")
    w = w.reshape(m)
    if weight_norm == "sum":
        with np.errstate(over="ignore"):
            total = np.sum(w)
        refuse_nonfinite(np.asarray(total), "the sum of the weights", " (scale the weights down)")
        if total == 0:
            raise ValueError(
                'weights must not all be 0 with weight_norm="sum" (J divides by their sum)'
            )
    return w


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
    #: Y may hold any finite reals (regression targets) instead of labels.
    real_targets: ClassVar[bool] = False
    #: ``forward`` takes per-example ``weights`` (LOSS-WEIGHTS).
    takes_weights: ClassVar[bool] = False
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

    def forward(self, A: FloatArray, Y: FloatArray, *, weights: FloatArray | None = None) -> float:
        """Return the cost J of predictions A (outputs x m) against labels Y (same shape).

        ``weights`` (shape (m,) or (1, m), >= 0): per-example weights, for the losses that take
        them (``takes_weights``, LOSS-WEIGHTS); the others refuse them (TypeError).
        """
        if weights is not None and not self.takes_weights:
            raise TypeError(
                f"{type(self).__name__} takes no weights (the losses with per-example weights: "
                "BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy)"
            )
        A_arr = as_input(A, "A", dtype=self.dtype, min_ndim=2 if self.categorical else 1)
        if self.categorical:
            check_classes(A_arr, "A")
        if self.takes_probabilities:
            self._check_probabilities(A_arr)
        if self.real_targets:
            Y_arr = as_input(Y, "Y", ndim=A_arr.ndim, dtype=self.dtype)
            if Y_arr.shape != A_arr.shape:
                raise ValueError(
                    f"Y must have the prediction's shape {A_arr.shape}, got {Y_arr.shape}"
                )
        else:
            Y_arr = check_labels(
                Y, A_arr.shape, self.dtype, soft=self.soft_labels, columns=self.categorical
            )
        if weights is None:
            self._hold((A_arr, Y_arr, None), watch(A=A_arr, Y=Y_arr), A_arr.shape)
            return self._cost(A_arr, Y_arr)
        w = check_weights(weights, A_arr.shape[-1], self.dtype, self._weight_norm())
        c = example_coefficients(w, self._weight_norm())
        self._hold((A_arr, Y_arr, c), watch(A=A_arr, Y=Y_arr, weights=w), A_arr.shape)
        return self._weighted_cost(A_arr, Y_arr, c)

    def backward(self) -> FloatArray:
        """Return dA = ∂J/∂A for the last forward (the 1/m is included here, NOTE-COST)."""
        A, Y, c = self._take().cache
        return self._grad(A, Y) if c is None else self._weighted_grad(A, Y, c)

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

    # the hooks of the losses that take weights (``takes_weights``; forward refuses the others)

    def _weight_norm(self) -> WeightNorm:
        raise NotImplementedError

    def _weighted_cost(self, A: FloatArray, Y: FloatArray, c: FloatArray, /) -> float:
        raise NotImplementedError

    def _weighted_grad(self, A: FloatArray, Y: FloatArray, c: FloatArray, /) -> FloatArray:
        raise NotImplementedError


class WeightedLoss(Loss, ABC):
    """A loss whose ``forward`` also takes per-example weights (LOSS-WEIGHTS).

    Parameters
    ----------
    soft_labels : bool
        As for :class:`Loss`.
    weight_norm : {"m", "sum"}
        How the weighted example losses are normalised: J = (1/m) Σ w_i L_i ("m", the default;
        PyTorch's ``BCEWithLogitsLoss(weight=)``), or J = Σ w_i L_i / Σ w_i ("sum"; PyTorch's
        ``CrossEntropyLoss(weight=)`` with w_i the class weight of example i's class; a 0/1
        mask gives the mean over the kept examples). Without weights J is the unweighted mean.
    dtype : float64 or float32
    """

    takes_weights = True

    def __init__(
        self,
        *,
        soft_labels: bool = False,
        weight_norm: WeightNorm = "m",
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(soft_labels=soft_labels, dtype=dtype)
        if not isinstance(weight_norm, str) or weight_norm not in ("m", "sum"):
            raise ValueError(f'weight_norm must be "m" or "sum", got {weight_norm!r}')
        self.weight_norm: WeightNorm = weight_norm

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """The unweighted cases, and weighted ones (which verify LOSS-WEIGHTS too): weights of
        shape (m,) drawn in [0, 2] with a 0 (``inputs={"weights": ...}``: held fixed, not
        differentiated), normalised by m and by their sum."""
        ids = (*(i for group in cls.specs.values() for i in group), "LOSS-WEIGHTS")
        hard: LabelKind = "one-hot" if cls.categorical else "binary"
        weighted = (
            Example(
                f"4x5 {kind} weights/{norm} seed={seed}".replace(" binary", ""),
                (4, 5),
                (),
                {"soft_labels": kind == "soft", "weight_norm": norm},
                seed,
                labels=kind,
                inputs={"weights": (5,)},
                specs=ids,
            )
            for seed, kind, norm in ((0, hard, "m"), (1, "soft", "sum"), (2, hard, "sum"))
        )
        return (*super().examples(), *weighted)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable)."""
        return {**super().config(), "weight_norm": self.weight_norm}

    def _weight_norm(self) -> WeightNorm:
        return self.weight_norm


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
class BinaryCrossEntropyWithLogits(WeightedLoss):
    """Sigmoid fused with binary cross-entropy, taking logits Z (BCE-LOGITS-COST, -GRAD).

    Use it in place of a final ``Sigmoid`` layer + ``BinaryCrossEntropy``: it is exact for any
    finite logit, where the two-step form saturates. ``forward(Z, Y, weights=w)`` weights each
    example (LOSS-WEIGHTS, normalised as ``weight_norm`` says).
    """

    specs = {"J": ("BCE-LOGITS-COST",), "dA": ("BCE-LOGITS-GRAD",)}
    kit = LossSpace("logits", classes=False, terms=lambda A, Y: _logit_terms(A, Y))

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        F = torch.nn.functional
        return F.binary_cross_entropy_with_logits(A, Y, reduction="sum") / A.shape[-1]

    _cost = staticmethod(bce_logits_cost)
    _grad = staticmethod(bce_logits_backward)
    _weighted_cost = staticmethod(bce_logits_weighted_cost)
    _weighted_grad = staticmethod(bce_logits_weighted_backward)


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
class SoftmaxCrossEntropy(WeightedLoss):
    """Softmax fused with categorical cross-entropy, taking logits Z (SOFTMAX-CE-COST, -GRAD).

    ``forward(Z, Y)`` returns J of softmax(Z); ``backward()`` returns dZ = (softmax(Z) - Y)/m.
    Use it in place of a final ``Softmax`` layer + ``CrossEntropy``: it is exact for every finite
    logit, where the two-step form saturates at the clip. ``forward(Z, Y, weights=w)`` weights
    each example (LOSS-WEIGHTS); PyTorch's class weights are the per-example weights
    w_i = class_weight[y_i] with ``weight_norm="sum"``.
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
    _weighted_cost = staticmethod(softmax_ce_weighted_cost)
    _weighted_grad = staticmethod(softmax_ce_weighted_backward)


def _mse_terms(A: FloatArray, Y: FloatArray) -> tuple[float, FloatArray]:
    """TEST-TOL-TERMS of the squared error: (|a| + |y|)² per term, 2 (|a| + |y|) per dA."""
    m, size = A.shape[-1], np.abs(A) + np.abs(Y)
    return float(np.sum(size * size)) / m, 2.0 * size / m


def _hinge_scales(A: FloatArray, Y: FloatArray) -> tuple[float, FloatArray]:
    """TEST-TOL-TERMS of the hinge: each term adds Δ, |s_j| and |s_y|; dA's entries count to k."""
    m, k = A.shape[-1], A.shape[0]
    size = 1.0 + np.abs(A) + np.abs(A).max(axis=0, keepdims=True)
    return float(np.sum(size)) / m, np.full_like(A, float(k) / m)


@register
class MeanSquaredError(Loss):
    """Mean squared error against real targets: J = (1/m) Σ (a - y)² (MSE-COST, MSE-GRAD).

    Y may hold any finite reals. The sum runs over the k outputs and the mean over the m
    examples (NOTE-COST), without a 1/2: PyTorch's ``MSELoss()`` (reduction="mean", over all
    k m elements) is J / k, ``MSELoss(reduction="sum")`` is m J.

    Parameters
    ----------
    dtype : float64 or float32
    """

    specs = {"J": ("MSE-COST",), "dA": ("MSE-GRAD",)}
    kit = LossSpace("logits", classes=False, terms=lambda A, Y: _mse_terms(A, Y), targets="real")

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        # MSELoss(reduction="mean") is J / k: sum, then divide by m
        return torch.nn.functional.mse_loss(A, Y, reduction="sum") / A.shape[-1]

    real_targets = True

    _cost = staticmethod(mse_cost)
    _grad = staticmethod(mse_backward)

    def __init__(self, *, dtype: DTypeLike = np.float64) -> None:
        super().__init__(dtype=dtype)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """A and Y (4 x 5) both real (make check draws Y N(0, 1) for a loss of real targets),
        three seeds, and float32."""
        return (
            *(Example(f"4x5 real seed={seed}", (4, 5), seed=seed) for seed in (0, 1, 2)),
            Example("4x5 real", (4, 5), float32=True),
        )

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable)."""
        return {"dtype": self.dtype.name}


@register
class MulticlassHinge(Loss):
    """Multiclass hinge (SVM) loss of scores Z (k x m) against one-hot Y (HINGE-COST, -GRAD).

    J = (1/m) Σ_i Σ_{j != y_i} max(0, Δ + s_j - s_y), the course's SVM loss. PyTorch's
    ``MultiMarginLoss(margin=Δ)`` also divides by the number of classes k: it is J / k. At a
    kink (a term exactly 0) the subgradient 0 is taken, as PyTorch does. Y must hold one-hot
    columns (there is no soft form).

    Parameters
    ----------
    margin : float
        Δ > 0 (default 1).
    dtype : float64 or float32
    """

    specs = {"J": ("HINGE-COST",), "dA": ("HINGE-GRAD",)}
    kit = LossSpace("logits", classes=True, terms=lambda A, Y: _hinge_scales(A, Y), targets="hard")

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        # MultiMarginLoss divides each example's sum by k: undo it, then average over m
        k, m = A.shape[0], A.shape[-1]
        F = torch.nn.functional
        margin = float(config.get("margin", 1.0))
        return F.multi_margin_loss(A.T, Y.argmax(dim=0), margin=margin, reduction="sum") * k / m

    categorical = True

    def __init__(self, margin: float = 1.0, *, dtype: DTypeLike = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.margin = float_in(margin, "margin", 0.0, np.inf, closed_high=False)
        if self.margin == 0.0:
            raise ValueError("margin must be > 0, got 0.0 (every example would cost nothing)")

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Scores 3 N(0, 1) (4 x 5, away from the kinks) against one-hot labels, three seeds, a
        margin of 2, and float32."""
        return (
            *(
                Example(f"4x5 one-hot seed={seed}", (4, 5), seed=seed, labels="one-hot")
                for seed in (0, 1, 2)
            ),
            Example("4x5 one-hot margin=2", (4, 5), (2.0,), seed=3, labels="one-hot"),
            Example("4x5 one-hot", (4, 5), labels="one-hot", float32=True),
        )

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable)."""
        return {"margin": self.margin, "dtype": self.dtype.name}

    def _cost(self, A: FloatArray, Y: FloatArray, /) -> float:
        return hinge_cost(A, Y, self.margin)

    def _grad(self, A: FloatArray, Y: FloatArray, /) -> FloatArray:
        return hinge_backward(A, Y, self.margin)
