"""Activations (SIGMOID-*, RELU-*, TANH-*, SOFTMAX-FWD/BWD): A = g(Z), dZ = dA ⊙ g'(Z).

Sigmoid, ReLU and Tanh act element by element on any shape; Softmax acts on each column of the
class axis (axis 0). Each is a pair of functions (forward, backward) and a thin layer that
caches one array: the output A (sigmoid, tanh, softmax) or the input Z (ReLU).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from refnn._validate import CLASSES
from refnn.kitspace import Ints, LayerSpace
from refnn.layer import Example, Input, Layer
from refnn.registry import register
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
    formed.
    """
    dZ: FloatArray = A * (dA - (A * dA).sum(axis=0, keepdims=True))
    return dZ


#: The kit draws an activation's input at any rank 2..4 (examples last), each side up to 4;
#: element-wise, so K = 2 (TEST-TOL-TERMS).
_ANY_RANK = LayerSpace(
    draws={"m": Ints(1, 4), "rank": Ints(1, 3), "a": Ints(1, 4), "b": Ints(1, 4), "c": Ints(1, 4)},
    input_shape=lambda v: (*(v["a"], v["b"], v["c"])[: v["rank"]], v["m"]),
    sums=lambda v, s: {"Y": 2, "dX": 2},
    scale="terms",
)


class _Activation(Layer[FloatArray]):
    """One pattern for every activation: A = g(Z), dZ = g_backward(dA, kept), where ``kept``
    is the output A or, for ReLU (``keeps = ("X",)``), the input Z. No parameters; the output
    of a finite input is finite."""

    takes = Input(name="Z")
    keeps: ClassVar[tuple[str, ...]] = ("Y",)
    can_overflow = False
    grads_can_overflow = False  # |g'| <= 1 for sigmoid, ReLU and tanh (Softmax: see below)

    kit = _ANY_RANK
    #: The torch function of the forward (its name on the torch module).
    torch_name: ClassVar[str] = ""

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        return getattr(torch, cls.torch_name)(X)

    @abstractmethod
    def _g(self, Z: FloatArray, /) -> FloatArray: ...

    @abstractmethod
    def _g_backward(self, dA: FloatArray, kept: FloatArray, /) -> FloatArray: ...

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Every activation at 4 x 6 (three seeds, and float32); a few more shapes below."""
        return (
            *(Example(f"4x6 seed={seed}", (4, 6), seed=seed, scale=2.0) for seed in (0, 1, 2)),
            Example("4x6", (4, 6), scale=2.0, float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        A = self._g(X)
        return A, X if "X" in self.keeps else A

    def _backward(
        self, dY: FloatArray, cache: FloatArray
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return self._g_backward(dY, cache), {}, {}


@register
class Sigmoid(_Activation):
    """Sigmoid activation layer (SIGMOID-FWD, SIGMOID-BWD)."""

    specs = {"Y": ("SIGMOID-FWD",), "dX": ("SIGMOID-BWD",)}
    # A = 1 - σ(-Z) near 1: the terms behind Y are of size |A| + 1 (TEST-TOL-TERMS)
    kit = replace(
        _ANY_RANK,
        terms=lambda v, X, dY, ref: {"Y": np.abs(ref["Y"]) + 1, "dX": np.abs(dY)},
    )
    torch_name = "sigmoid"

    _g = staticmethod(sigmoid)
    _g_backward = staticmethod(sigmoid_backward)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return tuple(replace(e, scale=3.0) for e in super().examples())


@register
class ReLU(_Activation):
    """ReLU activation layer (RELU-FWD, RELU-BWD)."""

    specs = {"Y": ("RELU-FWD",), "dX": ("RELU-BWD",)}
    keeps = ("X",)
    torch_name = "relu"

    _g = staticmethod(relu)
    _g_backward = staticmethod(relu_backward)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """On the kink: a quarter of the entries exactly zero."""
        return tuple(
            replace(e, label=e.label.replace("4x6", "4x6 with zeros"), x="zeros", scale=1.0)
            for e in super().examples()
        )


@register
class Tanh(_Activation):
    """Tanh activation layer (TANH-FWD, TANH-BWD)."""

    specs = {"Y": ("TANH-FWD",), "dX": ("TANH-BWD",)}
    torch_name = "tanh"

    _g = staticmethod(tanh)
    _g_backward = staticmethod(tanh_backward)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        rank3 = (Example(f"2x3x4 seed={s}", (2, 3, 4), seed=s, scale=2.0) for s in (0, 1, 2))
        return (*super().examples(), *rank3)


def _softmax_terms(X: FloatArray, dY: FloatArray, A: FloatArray) -> dict[str, FloatArray]:
    """TEST-TOL-TERMS of softmax: exp's relative error grows with the spread of the column."""
    spread = 2.0 + np.abs(X - X.max(axis=0, keepdims=True))
    A, dY = np.abs(A), np.abs(dY)
    return {"Y": A * spread, "dX": A * (dY + (A * dY).sum(axis=0, keepdims=True)) * spread}


@register
class Softmax(_Activation):
    """Softmax over the class axis (axis 0) as a layer (SOFTMAX-FWD, SOFTMAX-BWD).

    Input of any rank >= 2, classes first and examples last. For training with cross-entropy
    prefer a linear last layer and :class:`refnn.losses.SoftmaxCrossEntropy` (exact from logits).
    """

    specs = {"Y": ("SOFTMAX-FWD",), "dX": ("SOFTMAX-BWD",)}
    grads_can_overflow = True  # |dz| <= 2 max |da|: it can double dA past the range
    takes = Input(name="Z", min_ndim=2, nonempty={0: CLASSES})
    kit = LayerSpace(
        draws={"k": Ints(1, 5), "m": Ints(1, 4)},
        input_shape=lambda v: (v["k"], v["m"]),
        sums=lambda v, s: {"Y": v["k"] + 2, "dX": v["k"] + 2},
        scale="terms",
        terms=lambda v, X, dY, ref: _softmax_terms(X, dY, ref["Y"]),
        bound=8.0,
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        return torch.softmax(X, dim=0)

    def _g(self, Z: FloatArray) -> FloatArray:
        return softmax(Z)

    def _g_backward(self, dA: FloatArray, kept: FloatArray) -> FloatArray:
        return softmax_backward(dA, kept)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """k = 1 would make softmax the constant 1: also 2 x 1 and a rank-3 input."""
        more = (
            Example(f"{'x'.join(map(str, s))} seed={seed}", s, seed=seed, scale=2.0)
            for seed in (0, 1, 2)
            for s in ((2, 1), (3, 2, 4))
        )
        return (*super().examples(), *more)
