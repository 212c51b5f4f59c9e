"""Turn layers, losses and models into functions of numpy arrays for :mod:`refnn.gradcheck`.

The checker knows nothing of refnn: it checks ``f(*inputs) -> float`` against
``grad(*inputs) -> arrays``. These adapters write the inputs into a layer's own parameter arrays,
run forward and backward, and restore the parameters afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from refnn.gradcheck import ContractResult, check_backward_contract
from refnn.layer import Layer
from refnn.losses import Loss
from refnn.model import Sequential
from refnn.regularization import add_l2_grads, l2_penalty
from refnn.types import FloatArray


@dataclass(frozen=True)
class Objective:
    """A scalar objective J of named arrays and its claimed gradient, ready for ``check_grad``.

    ``f(*inputs.values())`` is J; ``grad(*inputs.values())`` returns dJ/d(input) for each name in
    ``wrt``, in that order. ``restore()`` puts back any state the two changed. ``contract``, when
    given, checks the backward's contract (linear in dY, deterministic, modifies nothing).
    """

    f: Callable[..., float]
    grad: Callable[..., Sequence[FloatArray]]
    inputs: dict[str, FloatArray]
    wrt: tuple[str, ...]
    restore: Callable[[], None]
    contract: Callable[[], ContractResult] | None = None


def _param_writer(layers: Sequence[Layer[Any]]) -> tuple[list[FloatArray], Callable[[], None]]:
    """The layers' parameter arrays (in order) and a function restoring their current values."""
    arrays = [p for layer in layers for p in layer.params.values()]
    saved = [a.copy() for a in arrays]

    def restore() -> None:
        for a, s in zip(arrays, saved, strict=True):
            a[...] = s

    return arrays, restore


def layer_problem(
    layer: Layer[Any],
    X: FloatArray,
    *,
    seed: int = 0,
    training: bool = True,
    extra: Mapping[str, FloatArray] | None = None,
) -> Objective:
    """J = Σ U ⊙ layer(X) for a fixed random U, so dJ/dA = U exercises every output.

    The inputs are X, each parameter ("W", "b", ...) and each ``extra`` forward input (an LSTM's
    "h0", "c0": passed to ``forward`` by name, its gradient read from ``layer.d<name>`` after
    backward); all are checked.
    """
    extra = dict(extra or {})
    indices = X.dtype.kind in "iu"  # integer inputs (an Embedding's tokens): X is not checked
    Y = layer.forward(X, training=training, **extra)
    U: FloatArray = np.random.default_rng(seed).standard_normal(Y.shape).astype(Y.dtype)
    arrays, restore = _param_writer([layer])
    keys = list(layer.params)

    def run(X_: FloatArray, rest: Sequence[FloatArray]) -> FloatArray:
        for a, v in zip(arrays, rest[: len(arrays)], strict=True):
            a[...] = v
        named = dict(zip(extra, (v.astype(layer.dtype) for v in rest[len(arrays) :]), strict=True))
        given = X_ if indices else X_.astype(layer.dtype)
        out: FloatArray = layer.forward(given, training=training, **named)
        return out

    def backward(dY: FloatArray) -> list[FloatArray]:
        dX = layer.backward(dY)
        grads = [*(layer.grads[k] for k in keys), *(layer.input_grads[k] for k in extra)]
        return grads if indices else [dX, *grads]

    def f(X_: FloatArray, *rest: FloatArray) -> float:
        return float(np.sum(U * run(X_, rest)))

    def grad(X_: FloatArray, *rest: FloatArray) -> list[FloatArray]:
        run(X_, rest)
        return backward(U)

    def contract() -> ContractResult:
        restore()  # at the case's own point, not wherever the last check left the parameters
        X_ = X if indices else X.astype(layer.dtype)
        layer.forward(X_, training=training, **extra)
        return check_backward_contract(
            backward,
            Y.shape,
            seed=seed,
            expected_shapes=[
                *(() if indices else (X.shape,)),
                *(layer.params[k].shape for k in keys),
                *(v.shape for v in extra.values()),
            ],
            expected_dtypes=[layer.dtype] * (int(not indices) + len(keys) + len(extra)),
            inputs_to_watch={"X": X_, **layer.params, **extra},
            dY_dtype=layer.dtype,
        )

    inputs = {
        "X": X.copy(),
        **{k: v.copy() for k, v in layer.params.items()},
        **{k: v.copy() for k, v in extra.items()},
    }
    wrt = tuple(k for k in inputs if not (indices and k == "X"))
    return Objective(f, grad, inputs, wrt, restore, contract)


def loss_problem(
    loss: Loss, A: FloatArray, Y: FloatArray, *, weights: FloatArray | None = None
) -> Objective:
    """J = loss(A, Y) as a function of A, labels (and per-example ``weights``) held fixed."""

    def f(A_: FloatArray, Y_: FloatArray) -> float:
        return loss.forward(A_, Y_, weights=weights)

    def grad(A_: FloatArray, Y_: FloatArray) -> list[FloatArray]:
        loss.forward(A_, Y_, weights=weights)
        return [loss.backward()]

    return Objective(f, grad, {"A": A.copy(), "Y": Y.copy()}, ("A",), lambda: None)


def model_problem(model: Sequential, loss: Loss, X: FloatArray, Y: FloatArray) -> Objective:
    """J = loss(model(X), Y) as a function of X and every parameter (named "<layer>.<key>")."""
    arrays, restore = _param_writer(model.layers)
    names = [f"{i}.{k}" for i, layer in enumerate(model.layers) for k in layer.params]

    def load(values: Sequence[FloatArray]) -> None:
        for a, v in zip(arrays, values, strict=True):
            a[...] = v

    def f(X_: FloatArray, Y_: FloatArray, *params: FloatArray) -> float:
        load(params)
        return loss.forward(model.forward(X_, training=True), Y_)

    def grad(X_: FloatArray, Y_: FloatArray, *params: FloatArray) -> list[FloatArray]:
        load(params)
        loss.forward(model.forward(X_, training=True), Y_)
        dX = model.backward(loss.backward())
        by_name = {p.name: p.grad for p in model.parameters()}
        return [dX, *(by_name[n] for n in names)]

    inputs = {
        "X": X.copy(),
        "Y": Y.copy(),
        **dict(zip(names, (a.copy() for a in arrays), strict=True)),
    }
    return Objective(f, grad, inputs, ("X", *names), restore)


def l2_model_problem(
    model: Sequential, loss: Loss, X: FloatArray, Y: FloatArray, l2: float
) -> Objective:
    """J = loss(model(X), Y) + l2_penalty(model, l2, m) as a function of X and every parameter.

    The gradient is the model's backward followed by :func:`add_l2_grads`, exactly what
    ``fit(..., l2=l2)`` does; m is the number of examples in X.
    """
    base = model_problem(model, loss, X, Y)
    m: int = X.shape[-1]
    names = base.wrt[1:]

    def f(*args: FloatArray) -> float:
        J = base.f(*args)  # loads the parameters into the model, so the penalty sees them
        return J + l2_penalty(model, l2, m)

    def grad(*args: FloatArray) -> Sequence[FloatArray]:
        dX = base.grad(*args)[0]
        add_l2_grads(model, l2, m)
        by_name = {p.name: p.grad for p in model.parameters()}
        return [dX, *(by_name[n] for n in names)]

    return replace(base, f=f, grad=grad)  # same inputs, wrt, restore (and any later field)
