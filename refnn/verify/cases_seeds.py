"""``make check`` cases for softmax, cross-entropy, tanh, dropout and L2-regularised models.

Optimizers have no derivative to check; their update equations are tested against hand-written
loops in ``tests/test_optim_adam.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from refnn.activations import ReLU, Softmax, Tanh, softmax
from refnn.dense import Dense
from refnn.dropout import Dropout
from refnn.layer import Layer
from refnn.losses import CrossEntropy, Loss, SoftmaxCrossEntropy
from refnn.model import Sequential, mlp
from refnn.regularization import add_l2_grads, l2_penalty
from refnn.types import FloatArray
from refnn.verify.cases import Case
from refnn.verify.problems import Problem, layer_problem, loss_problem, model_problem

SEEDS = (0, 1, 2)


def _normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> FloatArray:
    out: FloatArray = scale * np.random.default_rng(seed).standard_normal(shape)
    return out


def _one_hot(seed: int, k: int, m: int) -> FloatArray:
    classes = np.random.default_rng(seed + 100).integers(0, k, m)
    Y: FloatArray = np.zeros((k, m))
    Y[classes, np.arange(m)] = 1.0
    return Y


def _soft(seed: int, k: int, m: int) -> FloatArray:
    """Soft targets: each column a probability vector with every entry > 0."""
    return softmax(_normal(seed + 200, (k, m)))


def _softmax(shape: tuple[int, ...], seed: int) -> Problem:
    return layer_problem(Softmax(), _normal(seed, shape, 2.0), seed=seed)


def _tanh(shape: tuple[int, ...], seed: int) -> Problem:
    return layer_problem(Tanh(), _normal(seed, shape, 2.0), seed=seed)


def _ce(k: int, m: int, seed: int, soft: bool) -> Problem:
    # CrossEntropy refuses columns of A that do not sum to 1: perturb logits in front of it
    Y = _soft(seed, k, m) if soft else _one_hot(seed, k, m)
    model = Sequential([Softmax()])
    return model_problem(model, CrossEntropy(soft_labels=soft), _normal(seed, (k, m)), Y)


def _softmax_ce(k: int, m: int, seed: int, soft: bool) -> Problem:
    Y = _soft(seed, k, m) if soft else _one_hot(seed, k, m)
    return loss_problem(SoftmaxCrossEntropy(soft_labels=soft), _normal(seed, (k, m), 3.0), Y)


def _dropout(p_drop: float, shape: tuple[int, ...], seed: int) -> Problem:
    layer = Dropout(p_drop, rng=np.random.default_rng(seed + 300))
    layer.freeze_mask()  # layer_problem's first forward draws the mask; every later one reuses it
    return layer_problem(layer, _normal(seed, shape), seed=seed)


def l2_model_problem(
    model: Sequential, loss: Loss, X: FloatArray, Y: FloatArray, lam: float
) -> Problem:
    """J = loss(model(X), Y) + l2_penalty(model, λ, m) as a function of X and every parameter.

    The gradient is the model's backward followed by :func:`add_l2_grads`, exactly what
    ``fit(..., l2=λ)`` does; m is the number of examples in X.
    """
    base = model_problem(model, loss, X, Y)
    m: int = X.shape[-1]
    names = base.wrt[1:]

    def f(*args: FloatArray) -> float:
        J = base.f(*args)  # loads the parameters into the model, so the penalty sees them
        return J + l2_penalty(model, lam, m)

    def grad(*args: FloatArray) -> Sequence[FloatArray]:
        dX = base.grad(*args)[0]
        add_l2_grads(model, lam, m)
        by_name = {p.name: p.grad for p in model.parameters()}
        return [dX, *(by_name[n] for n in names)]

    return replace(base, f=f, grad=grad)  # same inputs, wrt, restore (and any later field)


def _l2_model(kind: str, lam: float, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    m = 5
    loss: Loss
    if kind == "mlp":
        model = mlp([4, 5, 3], rng=rng, output="linear")
        loss = SoftmaxCrossEntropy()
    elif kind == "tanh-softmax":
        layers: list[Layer[Any]] = [Dense(3, 4, rng=rng), Tanh(), Dense(4, 3, rng=rng), Softmax()]
        model = Sequential(layers)
        loss = CrossEntropy()
    else:  # dropout: the mask is frozen before the problem is built
        drop = Dropout(0.4, rng=np.random.default_rng(seed + 300))
        drop.freeze_mask()
        model = Sequential([Dense(4, 6, rng=rng), ReLU(), drop, Dense(6, 3, rng=rng)])
        loss = SoftmaxCrossEntropy()
    n_in = model.layers[0].params["W"].shape[1]
    for layer in model.layers:  # non-zero biases: db is checked at a generic point
        if "b" in layer.params:
            layer.params["b"][...] = _normal(seed + 7, layer.params["b"].shape, 0.5)
    X = _normal(seed + 1, (n_in, m))
    model.forward(X)  # draws (and freezes) the dropout mask, if any
    return l2_model_problem(model, loss, X, _one_hot(seed, 3, m), lam)


def cases() -> list[Case]:
    """Softmax, CrossEntropy, SoftmaxCrossEntropy, Tanh, Dropout (frozen mask), L2 models."""
    out: list[Case] = []
    for seed in SEEDS:
        # k = 1 is left out: softmax is then the constant 1, which a checker cannot judge
        for shape in ((4, 6), (2, 1), (3, 2, 4)):
            out.append(
                Case(
                    "Softmax",
                    f"{'x'.join(map(str, shape))} seed={seed}",
                    ("SOFTMAX-FWD", "SOFTMAX-BWD"),
                    partial(_softmax, shape, seed),
                )
            )
        for shape in ((4, 6), (2, 3, 4)):
            out.append(
                Case(
                    "Tanh",
                    f"{'x'.join(map(str, shape))} seed={seed}",
                    ("TANH-FWD", "TANH-BWD"),
                    partial(_tanh, shape, seed),
                )
            )
        for soft in (False, True):
            labels = "soft targets" if soft else "one-hot"
            out.append(
                Case(
                    "CrossEntropy",
                    f"4x5 {labels} seed={seed}",
                    ("CE-COST", "CE-GRAD"),
                    partial(_ce, 4, 5, seed, soft),
                )
            )
            out.append(
                Case(
                    "SoftmaxCrossEntropy",
                    f"4x5 {labels} seed={seed}",
                    ("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD"),
                    partial(_softmax_ce, 4, 5, seed, soft),
                )
            )
        for p_drop, shape in ((0.5, (4, 6)), (0.2, (3, 2, 5))):
            out.append(
                Case(
                    "Dropout",
                    f"p_drop={p_drop} {'x'.join(map(str, shape))} frozen mask seed={seed}",
                    ("DROPOUT-FWD", "DROPOUT-BWD"),
                    partial(_dropout, p_drop, shape, seed),
                )
            )
    l2_ids = ("L2-COST", "L2-GRAD", "MODEL-FWD", "MODEL-BWD")
    for kind, extra in (
        ("mlp", ("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")),
        ("tanh-softmax", ("TANH-BWD", "SOFTMAX-BWD", "CE-GRAD")),
        ("dropout", ("DROPOUT-BWD", "SOFTMAX-CE-GRAD")),
    ):
        for seed in SEEDS[:2]:
            out.append(
                Case(
                    f"L2 model ({kind})",
                    f"lambda=0.7 m=5 seed={seed}",
                    (*l2_ids, *extra),
                    partial(_l2_model, kind, 0.7, seed),
                )
            )
    return out
