"""The training loop (TRAIN-*): full-batch or mini-batch gradient descent with a cost history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from refnn._validate import check_rng, float_in, instance_of, positive_int
from refnn.losses import Loss
from refnn.model import Sequential
from refnn.optim import Optimizer
from refnn.regularization import add_l2_grads, l2_penalty
from refnn.types import FloatArray


class TrainingDivergedError(ValueError):
    """The cost became NaN or infinite; the message names the epoch and batch."""


@dataclass
class History:
    """Cost per epoch (the mean over the epoch's batches, weighted by batch size)."""

    cost: list[float] = field(default_factory=list)


def minibatches(
    m: int, batch_size: int, rng: np.random.Generator | None
) -> Iterator[np.ndarray[tuple[int], np.dtype[np.intp]]]:
    """Yield index arrays that partition range(m) into batches.

    Notes
    -----
    Spec: TRAIN-BATCHES

    With ``rng``, the order is a fresh permutation each epoch drawn from ``rng``; without, it is
    0..m-1. Every example is used once per epoch; the last batch may be smaller.
    """
    m = positive_int(m, "m")
    batch_size = positive_int(batch_size, "batch_size")
    order = check_rng(rng).permutation(m) if rng is not None else np.arange(m)
    for start in range(0, m, batch_size):
        yield order[start : start + batch_size]


def fit(
    model: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    X: FloatArray,
    Y: FloatArray,
    *,
    epochs: int,
    batch_size: int | None = None,
    rng: np.random.Generator | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    l2: float = 0.0,
) -> History:
    """Train ``model`` on (X, Y) and return the cost history.

    Parameters
    ----------
    model, loss, optimizer
        What to train, the cost J, and the update rule.
    X, Y : ndarray
        Inputs and labels, examples on the last axis (NOTE-AXES).
    epochs : int
        Passes over the data.
    batch_size : int, optional
        None (default) is full-batch gradient descent, as in the seeds; 1 is stochastic; any
        size >= m is full-batch too.
    rng : numpy.random.Generator, optional
        Shuffles the examples each epoch; required when ``batch_size`` < m.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, cost)`` after each epoch (progress display).

    Every argument is checked before any work: X and Y also against the model and the loss,
    by a forward at inference on the first example (which changes nothing), so a mismatch is
    refused before the first step and before anything is drawn from ``rng``.
    l2 : float, optional
        L2 regularization strength λ >= 0 (default 0: none). Decays every parameter keyed "W"
        (never biases) with the training set's m, also in mini-batch training; the penalty is
        part of the reported cost (L2-COST, L2-GRAD).

    Notes
    -----
    Spec: TRAIN-STEP, TRAIN-BATCHES, TRAIN-L2

    For each batch B: ``A = model(X_B)``, ``J_B = loss(A, Y_B) + (l2/(2m)) Σ ||W||²``,
    ``dA = ∂J_B/∂A``, ``model.backward(dA)``, ``dW += (l2/m) W``, ``θ := update(θ, dθ)``. The
    epoch's cost is ``Σ_B |B| J_B / m``.

    Examples
    --------
    >>> import numpy as np
    >>> import refnn
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2, 100))
    >>> Y = (X[0:1] > 0).astype(np.float64)  # 1 x 100 labels
    >>> model = refnn.mlp([2, 8, 1], rng=rng)
    >>> loss, optimizer = refnn.BinaryCrossEntropy(), refnn.GradientDescent(0.5)
    >>> history = refnn.fit(model, loss, optimizer, X, Y, epochs=100)
    >>> history.cost[-1] < history.cost[0], float(np.mean(refnn.predict(model, X) == Y)) > 0.9
    (True, True)
    """
    instance_of(model, Sequential, "model", "Sequential([...]) or mlp([...])")
    instance_of(loss, Loss, "loss", "BinaryCrossEntropy()")
    instance_of(optimizer, Optimizer, "optimizer", "GradientDescent(0.1)")
    epochs = positive_int(epochs, "epochs")
    lam = float_in(l2, "l2", 0.0, np.inf, closed_high=False)
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(
            f"on_epoch must be None or a function on_epoch(epoch, cost), got {on_epoch!r}"
        )
    for name, array in (("X", X), ("Y", Y)):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
    if X.ndim == 0 or Y.ndim == 0:
        raise ValueError(
            f"X and Y need an example axis (the last), got shapes {X.shape} and {Y.shape}"
        )
    m: int = X.shape[-1]
    if m == 0:
        raise ValueError(f"X must hold at least one example (m >= 1), got shape {X.shape}")
    if Y.shape[-1] != m:
        raise ValueError(
            f"X and Y must hold the same number of examples, got {m} and {Y.shape[-1]}"
        )
    size = m if batch_size is None else positive_int(batch_size, "batch_size")
    if size < m and rng is None:
        raise ValueError("mini-batch training needs rng (a numpy.random.Generator) to shuffle")
    shuffler = check_rng(rng) if rng is not None else None
    with np.errstate(all="ignore"):  # X and Y against the model and the loss; a NaN is for later
        loss.forward(model.forward(X[..., :1], training=False), Y[..., :1])
    history = History()
    for epoch in range(1, epochs + 1):
        total = 0.0
        for batch, idx in enumerate(minibatches(m, size, shuffler if size < m else None)):
            X_b, Y_b = (X, Y) if size >= m else (X[..., idx], Y[..., idx])
            try:
                with np.errstate(over="raise", invalid="raise", divide="raise"):
                    cost = loss.forward(model.forward(X_b, training=True), Y_b)
                    model.backward(loss.backward())
                    if lam > 0.0:
                        cost += l2_penalty(model, lam, m)
                        add_l2_grads(model, lam, m)
                    optimizer.step(model)
            except FloatingPointError as err:
                raise TrainingDivergedError(
                    f"training diverged at epoch {epoch}, batch {batch} ({err}); "
                    "lower the learning rate or check the inputs"
                ) from err
            bad = [p.name for p in model.parameters() if not np.all(np.isfinite(p.value))]
            if not np.isfinite(cost) or bad:
                raise TrainingDivergedError(
                    f"training diverged at epoch {epoch}, batch {batch}: cost {cost}, "
                    f"non-finite parameters {bad}; lower the learning rate or check the inputs"
                )
            total += cost * idx.shape[0]
        history.cost.append(total / m)
        if on_epoch is not None:
            on_epoch(epoch, history.cost[-1])
    return history


def predict(model: Sequential, X: FloatArray, *, threshold: float = 0.5) -> FloatArray:
    """Binary predictions: 1 where the model's output is >= ``threshold``, else 0.

    Notes
    -----
    Spec: TRAIN-PREDICT

    ŷ = 1[A >= threshold], with A = model(X) at inference (``training=False``).

    The default 0.5 suits a sigmoid output. For a model ending in logits (``mlp(...,
    output="linear")``) pass ``threshold=0.0``, since σ(z) >= 0.5 exactly when z >= 0; for a
    softmax output take ``A.argmax(axis=0)`` instead.
    """
    instance_of(model, Sequential, "model", "Sequential([...]) or mlp([...])")
    if isinstance(threshold, bool) or not isinstance(
        threshold, int | float | np.integer | np.floating
    ):
        raise TypeError(f"threshold must be a real number, got {threshold!r}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    threshold = float(threshold)
    A = model.forward(X, training=False)
    out: FloatArray = (threshold <= A).astype(A.dtype)
    return out
