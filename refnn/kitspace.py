"""What a component declares for the kit (``refnn.testing``): how to draw it (TEST-SPACE).

A component class says here, declaratively, which configurations and inputs the kit may draw
for it: each constructor argument's range or choices, the input's shape as a function of the
drawn values, how the input's elements are drawn (bounds; ties allowed or not), a validity
predicate, the length of the sums behind each quantity (TEST-TOL) and how their magnitude is
scaled. The kit (``refnn.testing``) turns a space into hypothesis strategies that shrink; this
module imports neither hypothesis nor torch, so a component module can import it freely.

A layer sets ``kit = LayerSpace(...)`` on its class; a loss ``kit = LossSpace(...)``; an
optimizer ``kit = OptimizerSpace(...)``. Their PyTorch equivalents are classmethods on the
classes (``torch_forward``, ``torch_cost``, ``torch_optimizer``) that receive the torch module
as an argument, so torch is imported only by the kit, and only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from refnn.types import FloatArray

#: The values drawn so far, by name (constructor arguments, sizes such as "m", "H", "T").
Values = Mapping[str, Any]
#: A bound: a number, or a function of the values drawn before it.
Bound = int | Callable[[Values], int]


@dataclass(frozen=True)
class Ints:
    """An integer in [lo, hi] (each a number or a function of earlier values); shrinks to lo."""

    lo: Bound
    hi: Bound


@dataclass(frozen=True)
class Choice:
    """One of ``values``; shrinks to the first."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class PairOf:
    """A pair (a tuple of two values) drawn from two dimensions (``kernel_size=(kh, kw)``)."""

    first: Dim
    second: Dim


Dim = Ints | Choice | PairOf


#: How the input's elements are drawn: "normal" (any finite value in [-bound, bound]),
#: "ties" (also repeated values and exact zeros, as a ReLU before a pool makes them),
#: "distinct" (all different), "indices" (integers in 0..tokens(values) - 1, repeats included:
#: an Embedding's token indices).
Elements = Literal["normal", "ties", "distinct", "indices"]
#: How an element's magnitude scale M of TEST-TOL is found: "absolute" (refnn on absolute
#: operands, TEST-TOL-ABS), "upstream" (only dY made absolute; Y scaled by |Y|), "terms"
#: (``LayerSpace.terms``, TEST-TOL-TERMS).
Scale = Literal["absolute", "upstream", "terms"]
Shapes = Mapping[str, tuple[int, ...]]
#: TEST-TOL-TERMS scales: (values, X, dY, refnn's quantities) -> quantity -> M.
Terms = Callable[[Values, FloatArray, FloatArray, Mapping[str, FloatArray]], dict[str, Any]]


def _default_terms(
    v: Values, X: FloatArray, dY: FloatArray, ref: Mapping[str, FloatArray]
) -> dict[str, Any]:
    return {"Y": np.abs(ref["Y"]), "dX": np.abs(dY)}


@dataclass(frozen=True)
class LayerSpace:
    """The configurations and inputs the kit draws for a layer (TEST-SPACE).

    Parameters
    ----------
    draws : mapping
        Name -> :class:`Ints`, :class:`Choice` or :class:`PairOf`, drawn in order; a bound may
        read the values drawn before it. Names that are constructor parameters are passed to
        the constructor (and can be fixed by the kit's ``configs=``); the others are sizes.
        "m" (the number of examples) must be among them.
    input_shape : callable
        values -> X's shape (refnn layout, examples last).
    sums : callable
        (values, shapes of X, Y and the parameters) -> quantity -> K, the length of the
        longest sum behind one element (TEST-TOL).
    scale : {"absolute", "upstream", "terms"}
        How M is found (TEST-TOL-ABS, TEST-TOL-TERMS); ``terms`` gives it for "terms".
    bound, elements : float, str
        X's elements: in [-bound, bound], drawn as ``elements`` says.
    tokens : callable, optional
        With ``elements="indices"``: values -> the number of tokens; X is then an integer
        array of indices in 0..tokens - 1 (not differentiated: dX is zeros).
    param_bound, input_bound : float
        Bounds of the parameters' and the extra inputs' (h0, c0) elements.
    valid : callable, optional
        values -> whether the configuration is valid (others are not drawn).
    mask : bool
        The layer draws a random mask (Dropout): the kit draws it, freezes it in refnn's layer
        (``freeze_mask``) and gives it to the implementation as ``config["keep"]``.
    units : mapping
        Parameter or extra input name -> names of its row blocks, so a message names them
        (an LSTM's ``b`` rows are the gates i, f, g, o).
    conventions : mapping
        Convention name -> its choices, refnn's first ("state": ("given", "zero") for an
        LSTM): what a user may declare with the kit's ``conventions=``.

    Notes
    -----
    Spec: TEST-SPACE
    """

    draws: Mapping[str, Dim]
    input_shape: Callable[[Values], tuple[int, ...]]
    sums: Callable[[Values, Shapes], Mapping[str, int]]
    scale: Scale = "absolute"
    terms: Terms = _default_terms
    bound: float = 4.0
    elements: Elements = "normal"
    tokens: Callable[[Values], int] | None = None
    param_bound: float = 2.0
    input_bound: float = 1.0
    valid: Callable[[Values], bool] | None = None
    mask: bool = False
    units: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    conventions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


#: How a loss's predictions A are drawn: probabilities in (0, 1), columns that are probability
#: vectors, or logits (any real number).
Predictions = Literal["probabilities", "distributions", "logits"]
#: TEST-TOL-TERMS scales of a loss: (A, Y) in float64 -> (M of the cost, M of dA).
LossTerms = Callable[[FloatArray, FloatArray], tuple[float, FloatArray]]
#: What Y holds: "labels" (hard, or soft with ``soft_labels=True``: the loss takes
#: ``soft_labels``), "hard" (hard labels only, no ``soft_labels``: the multiclass hinge) or
#: "real" (any real targets, no ``soft_labels``: the squared error) or "tokens" (integer class
#: indices (T x m) for logits k x T x m: a sequence loss).
Targets = Literal["labels", "hard", "real", "tokens"]


@dataclass(frozen=True)
class LossSpace:
    """How the kit draws a loss's A and Y (TEST-SPACE): ``predictions`` says what A is,
    ``classes`` whether Y's columns are distributions over at least two classes (one-hot when
    hard); ``terms`` the magnitude scales of TEST-TOL-TERMS; ``targets`` what Y holds
    (:data:`Targets`)."""

    predictions: Predictions
    classes: bool
    terms: LossTerms
    targets: Targets = "labels"


@dataclass(frozen=True)
class OptimizerSpace:
    """How the kit draws an optimizer's hyper-parameters (TEST-SPACE): name -> a float
    range (lo, hi) or a :class:`Choice`; ``specs`` the spec IDs of the update;
    ``conventions`` the other forms of the update in use that a user may declare (name ->
    choices, refnn's first: ``{"momentum": ("average", "pytorch")}``); the kit knows each
    choice's update (``refnn.testing._variants``)."""

    hyper: Mapping[str, tuple[float, float] | Choice]
    specs: tuple[str, ...]
    conventions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
