"""Build each ``make check`` case's objective from its configuration: seeded inputs, labels,
layers, losses and models, made from public refnn classes only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from refnn import (
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    Conv2D,
    CrossEntropy,
    Dense,
    Dropout,
    Flatten,
    Layer,
    Loss,
    MaxPool2D,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
    mlp,
)
from refnn.layer import Example, InputKind, LabelKind
from refnn.registry import kind_of
from refnn.types import DTypeLike, FloatArray
from refnn.verify.problems import (
    Objective,
    l2_model_problem,
    layer_problem,
    loss_problem,
    model_problem,
)

#: Builds a layer from the case's generator and dtype.
Make = Callable[[np.random.Generator, DTypeLike], Layer[Any]]
#: The models :func:`l2_objective` builds.
L2Kind = Literal["mlp", "tanh-softmax", "dropout"]


def example_maker(cls: type[Layer[Any]], example: Example) -> Make:
    """How an example builds its layer: ``cls(*args, **kwargs)``, with the case's generator
    if the constructor takes ``rng``."""
    if "rng" in inspect.signature(cls).parameters:
        return seeded(cls, *example.args, **example.kwargs)
    return plain(cls, *example.args, **example.kwargs)


def example_objective(cls: type[Any], example: Example) -> Objective:
    """The objective of one registered component's example (a layer's or a loss's)."""
    dtype = np.float32 if example.float32 else np.float64
    if kind_of(cls) == "loss":
        options = {**example.kwargs, **({"dtype": dtype} if example.float32 else {})}

        def make() -> Loss:
            loss: Loss = cls(**options)
            return loss

        if len(example.shape) == 3:  # logits over sequences, integer labels (T x m)
            return sequence_loss_objective(make, example.seed, example.shape)
        k, m = example.shape
        if cls.categorical and cls.takes_probabilities:  # probabilities from a softmax
            return ce_objective(make, example.labels, example.seed, (k, m))
        logits = not cls.takes_probabilities
        weights = None
        if "weights" in example.inputs:  # fixed per-example weights in [0, 2], one of them 0
            w_rng = np.random.default_rng(example.seed + 7)
            weights = w_rng.uniform(0.0, 2.0, example.inputs["weights"])
            weights.flat[0] = 0.0
        return loss_objective(
            make,
            logits,
            "real" if cls.real_targets else example.labels,
            example.seed,
            dtype,
            (k, m),
            weights=weights,
        )
    rng = np.random.default_rng(example.seed + 7)
    inputs = {k: np.tanh(rng.standard_normal(shape)) for k, shape in example.inputs.items()}
    return layer_objective(
        example_maker(cls, example),
        example.shape,
        example.seed,
        x=example.x,
        scale=example.scale,
        dtype=dtype,
        training=example.training,
        after_other_batch=example.after_other_batch,
        inputs=inputs,
    )


def seeded(cls: Callable[..., Layer[Any]], *args: Any, **kwargs: Any) -> Make:
    """A layer whose initial parameters come from the case's generator."""
    return lambda rng, dtype: cls(*args, rng=rng, dtype=dtype, **kwargs)


def plain(cls: Callable[..., Layer[Any]], *args: Any, **kwargs: Any) -> Make:
    """A layer without randomness."""
    return lambda rng, dtype: cls(*args, dtype=dtype, **kwargs)


def random_input(kind: InputKind, shape: tuple[int, ...], seed: int, scale: float) -> FloatArray:
    """A seeded input: ``normal`` (scale N(0, 1)); ``zeros`` (the same, a quarter of the entries
    exactly 0: ReLU's kink); ``distinct`` (a shuffled grid in [-2, 2), entries >= 4/size apart:
    no max-pool ties); ``ties`` (integers 0..2: many windows with several equal maxima)."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    if kind == "distinct":
        out: FloatArray = rng.permutation(-2.0 + 4.0 * np.arange(size) / size).reshape(shape)
        return out
    if kind == "ties":
        return rng.integers(0, 3, shape).astype(np.float64)
    out = scale * rng.standard_normal(shape)
    if kind == "zeros":
        out.flat[:: max(1, size // 4)] = 0.0
    return out


def example_input(
    layer: Layer[Any],
    kind: InputKind,
    shape: tuple[int, ...],
    seed: int,
    scale: float = 1.0,
    dtype: DTypeLike = np.float64,
) -> npt.NDArray[Any]:
    """A seeded input for ``layer``: its own ``draw_indices(shape, rng)`` when it takes integer
    indices (an Embedding), else :func:`random_input` in ``dtype``."""
    draw_indices = getattr(layer, "draw_indices", None)
    if draw_indices is not None:
        out: npt.NDArray[Any] = draw_indices(shape, np.random.default_rng(seed))
        return out
    return random_input(kind, shape, seed, scale).astype(dtype)


def layer_objective(
    make: Make,
    shape: tuple[int, ...],
    seed: int,
    *,
    x: InputKind = "normal",
    scale: float = 1.0,
    dtype: DTypeLike = np.float64,
    training: bool = True,
    after_other_batch: bool = False,
    inputs: dict[str, FloatArray] | None = None,
) -> Objective:
    """J = Σ U ⊙ layer(X) (:func:`layer_problem`) for a layer built by ``make`` in ``dtype``.

    A layer with a bias gets a random one (not the init's zeros: db is checked at a generic
    point); a Dropout layer's mask is frozen, so J is one function of X. ``after_other_batch``:
    the layer first runs forward and backward on a batch with one more example, as a model does
    between training and prediction (anything a layer keeps between calls must follow m).
    ``inputs``: extra forward inputs (an LSTM's h0, c0), differentiated too.
    """
    rng = np.random.default_rng(seed)
    layer = make(rng, dtype)
    for key, value in layer.params.items():  # random biases ("b", a GRU's "b_ih", "b_hh"),
        if key == "b" or key.startswith("b_"):  # not the init's: db is checked at a generic point
            value[...] = 0.5 * rng.standard_normal(value.shape)
    for key, value in layer.params.items():  # a normalisation's scale and shift, off 1 and 0
        if key in ("gamma", "beta"):
            value[...] = (key == "gamma") + 0.5 * rng.standard_normal(value.shape)
    if layer.buffers:  # running statistics off their init: inference at a generic point too
        warm = 3.0 * random_input(x, (*shape[:-1], shape[-1] + 2), seed + 3, scale) + 1.0
        layer.forward(warm.astype(dtype), training=True)
    freeze = getattr(layer, "freeze_mask", None)  # Dropout; the attention layers' weights
    if callable(freeze):
        freeze()  # the first training forward draws the mask, every later one reuses it
    if after_other_batch:
        other = example_input(layer, x, (*shape[:-1], shape[-1] + 1), seed + 2, scale, dtype)
        layer.backward(np.ones_like(layer.forward(other, training=training)))
    X = example_input(layer, x, shape, seed + 1, scale, dtype)
    extra = {k: v.astype(dtype) for k, v in (inputs or {}).items()}
    return layer_problem(layer, X, seed=seed, training=training, extra=extra)


def labels(kind: LabelKind | Literal["real"], k: int, m: int, seed: int) -> FloatArray:
    """``binary`` (0/1), ``one-hot`` columns, ``soft`` columns (every entry > 0, sum 1), or
    ``real`` targets (N(0, 1), for a loss of real targets such as MSE)."""
    rng = np.random.default_rng(seed + 100)
    if kind == "real":
        real: FloatArray = rng.standard_normal((k, m))
        return real
    if kind == "binary":
        return (rng.random((k, m)) < 0.5).astype(np.float64)
    if kind == "one-hot":
        return np.eye(k)[:, rng.integers(0, k, m)]
    e = np.exp(rng.standard_normal((k, m)))
    soft: FloatArray = e / e.sum(axis=0)
    return soft


def loss_objective(
    make: Callable[[], Loss],
    logits: bool,
    label_kind: LabelKind | Literal["real"],
    seed: int,
    dtype: DTypeLike = np.float64,
    shape: tuple[int, int] = (4, 5),
    weights: FloatArray | None = None,
) -> Objective:
    """J = loss(A, Y) for A k x m: probabilities in [0.1, 0.9], or logits 3 N(0, 1); with
    ``weights``, per-example weights held fixed (LOSS-WEIGHTS)."""
    rng = np.random.default_rng(seed)
    A = 3.0 * rng.standard_normal(shape) if logits else rng.uniform(0.1, 0.9, shape)
    Y = labels(label_kind, *shape, seed)
    w = None if weights is None else weights.astype(dtype)
    return loss_problem(make(), A.astype(dtype), Y.astype(dtype), weights=w)


def sequence_loss_objective(
    make: Callable[[], Loss], seed: int, shape: tuple[int, ...]
) -> Objective:
    """J = loss(Z, y, mask=...) for logits Z (k x T x m, 3 N(0, 1)) and integer labels y
    (T x m): a quarter of the tokens (not the first) carry the loss's ``ignore_index`` if it
    has one, else are masked out; the checker moves Z."""
    rng = np.random.default_rng(seed)
    loss: Any = make()  # a sequence loss: its forward takes mask=
    k, T, m = shape
    Z = (3.0 * rng.standard_normal(shape)).astype(loss.dtype)
    y = rng.integers(0, k, (T, m))
    keep = rng.random((T, m)) >= 0.25
    keep.flat[0] = True
    ignore = getattr(loss, "ignore_index", None)
    mask: npt.NDArray[np.bool_] | None = keep
    if ignore is not None:
        y[~keep], mask = ignore, None

    def f(Z_: FloatArray) -> float:
        out: float = loss.forward(Z_, y, mask=mask)
        return out

    def grad(Z_: FloatArray) -> list[FloatArray]:
        f(Z_)
        dZ: FloatArray = loss.backward()
        return [dZ]

    return Objective(f, grad, {"A": Z}, ("A",), lambda: None)


def ce_objective(
    make: Callable[[], Loss], label_kind: LabelKind, seed: int, shape: tuple[int, int] = (4, 5)
) -> Objective:
    """J = loss(softmax(Z), Y) over the logits Z (k x m, 2 N(0, 1)) for a categorical loss of
    probabilities: the checker moves Z, so the probabilities it sees stay on the simplex (it
    refuses columns that do not sum to 1)."""
    rng = np.random.default_rng(seed)
    Z = 2.0 * rng.standard_normal(shape)
    Y = labels(label_kind, *shape, seed)
    loss = make()
    softmax = Softmax(dtype=loss.dtype)
    return model_problem(Sequential([softmax]), loss, Z.astype(loss.dtype), Y.astype(loss.dtype))


def mlp_objective(
    dims: tuple[int, ...], m: int, seed: int, logits: bool, dtype: DTypeLike
) -> Objective:
    """J = BCE(mlp(X), Y), from logits or after a sigmoid, over X and every parameter."""
    rng = np.random.default_rng(seed)
    model = mlp(dims, rng=rng, output="linear" if logits else "sigmoid", dtype=dtype)
    loss = (BinaryCrossEntropyWithLogits if logits else BinaryCrossEntropy)(dtype=dtype)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    return model_problem(model, loss, X, labels("binary", dims[-1], m, seed).astype(dtype))


def cnn_objective(m: int, seed: int) -> Objective:
    """Conv2D(2->3, 3x3, pad 1) -> ReLU -> MaxPool2D(2) -> Flatten -> Dense(27->1) -> Sigmoid."""
    rng = np.random.default_rng(seed)
    conv = Conv2D(2, 3, 3, padding=1, rng=rng)
    conv.params["b"][...] = 0.1 * rng.standard_normal((3, 1))
    model = Sequential([conv, ReLU(), MaxPool2D(2), Flatten(), Dense(27, 1, rng=rng), Sigmoid()])
    X = rng.standard_normal((2, 6, 6, m))
    return model_problem(model, BinaryCrossEntropy(), X, labels("binary", 1, m, seed))


def l2_objective(kind: L2Kind, l2: float, seed: int) -> Objective:
    """J + λ/(2m) Σ ||W||² for an MLP, a tanh/softmax stack or a model with (frozen) dropout."""
    rng = np.random.default_rng(seed)
    loss: Loss = SoftmaxCrossEntropy()
    if kind == "mlp":
        model = mlp([4, 5, 3], rng=rng, output="linear")
    elif kind == "tanh-softmax":
        model = Sequential([Dense(3, 4, rng=rng), Tanh(), Dense(4, 3, rng=rng), Softmax()])
        loss = CrossEntropy()
    else:
        drop = Dropout(0.4, rng=np.random.default_rng(seed + 300))
        drop.freeze_mask()  # the first forward below draws the mask; every later one reuses it
        model = Sequential([Dense(4, 6, rng=rng), ReLU(), drop, Dense(6, 3, rng=rng)])
    for layer in model.layers:  # non-zero biases: db is checked at a generic point
        if "b" in layer.params:
            layer.params["b"][...] = 0.5 * rng.standard_normal(layer.params["b"].shape)
    X = rng.standard_normal((model.layers[0].params["W"].shape[1], 5))
    model.forward(X)
    return l2_model_problem(model, loss, X, labels("one-hot", 3, 5, seed), l2)
