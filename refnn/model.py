"""Sequential composition of layers (MODEL-*): the L-layer model."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from refnn._validate import (
    as_bool,
    as_list,
    check_allocatable,
    check_rng,
    positive_int,
    resolve_dtype,
)
from refnn.activations import ReLU, Sigmoid
from refnn.dense import Dense
from refnn.layer import Layer, Parameter
from refnn.types import DTypeLike, FloatArray


class Sequential:
    """A stack of layers applied in order.

    Notes
    -----
    Spec: MODEL-FWD, MODEL-BWD

    Forward: A^[0] = X, A^[l] = layer_l(A^[l-1]). Backward runs the chain rule in reverse:
    dA^[l-1] = layer_l.backward(dA^[l]).

    Examples
    --------
    >>> import numpy as np
    >>> import refnn
    >>> rng = np.random.default_rng(0)
    >>> model = refnn.Sequential(
    ...     [refnn.Dense(2, 4, rng=rng), refnn.ReLU(), refnn.Dense(4, 1, rng=rng), refnn.Sigmoid()]
    ... )
    >>> A = model.forward(np.zeros((2, 3)))  # 3 examples
    >>> A.shape, bool(np.allclose(A, 0.5))  # zero input, zero biases: sigmoid(0)
    ((1, 3), True)
    """

    def __init__(self, layers: Sequence[Layer[Any]]) -> None:
        layers = as_list(layers, "layers", "refnn Layers")
        if not layers:
            raise ValueError("Sequential needs at least one layer, got none")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be a refnn Layer, got {type(layer).__name__}")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice; build a new layer for each use")
        self.layers: list[Layer[Any]] = layers

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        """Run every layer's forward in order and return the last output."""
        training = as_bool(training, "training")
        A = X
        for layer in self.layers:
            A = layer.forward(A, training=training)
        return A

    def backward(self, dA: FloatArray) -> FloatArray:
        """Run every layer's backward in reverse order and return dX of the first."""
        for layer in reversed(self.layers):
            dA = layer.backward(dA)
        return dA

    def parameters(self) -> Iterator[Parameter]:
        """Each layer's parameters, named ``"<index>.<key>"`` (e.g. ``"0.W"``)."""
        for i, layer in enumerate(self.layers):
            yield from layer.parameters(prefix=f"{i}.")

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n    {inner},\n])"


def mlp(
    layer_dims: Sequence[int],
    *,
    rng: np.random.Generator,
    output: str = "sigmoid",
    dtype: DTypeLike = np.float64,
) -> Sequential:
    """The L-layer model: [Dense, ReLU] * (L-1), then Dense and the output activation.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``; at least an input and an output size. Sizes whose weights
        cannot be allocated on this machine are refused before any is allocated.
    rng : numpy.random.Generator
        Used for He initialisation of every Dense layer (INIT-HE).
    output : {"sigmoid", "linear"}
        ``"linear"`` ends on the last Dense (use a from-logits loss).
    dtype : float64 or float32
    """
    items = as_list(layer_dims, "layer_dims", "ints (the layer sizes)")
    dims = [positive_int(d, f"layer_dims[{i}]") for i, d in enumerate(items)]
    if len(dims) < 2:
        raise ValueError(f"layer_dims needs at least 2 sizes (input, output), got {dims}")
    if not isinstance(output, str) or output not in ("sigmoid", "linear"):
        raise ValueError(f"output must be 'sigmoid' or 'linear', got {output!r}")
    check_rng(rng)
    resolved = resolve_dtype(dtype)
    shapes = [(n_out, n_in) for n_in, n_out in itertools.pairwise(dims)]
    for i, shape in enumerate(shapes):
        check_allocatable(shape, resolved, f"W of layer {i + 1} (layer_dims[{i + 1}] x [{i}])")
    check_allocatable((sum(r * c for r, c in shapes),), resolved, "all the W of layer_dims")
    layers: list[Layer[Any]] = []
    for i, (n_out, n_in) in enumerate(shapes):
        layers.append(Dense(n_in, n_out, rng=rng, dtype=dtype))
        if i < len(shapes) - 1:
            layers.append(ReLU(dtype=dtype))
    if output == "sigmoid":
        layers.append(Sigmoid(dtype=dtype))
    return Sequential(layers)


def layers_of(model: Sequential | Layer[Any]) -> list[Layer[Any]]:
    """The layers of a Sequential, or a single layer as a list of one (TypeError otherwise)."""
    if isinstance(model, Sequential):
        return model.layers
    if isinstance(model, Layer):
        return [model]
    raise TypeError(f"model must be a Sequential or a Layer, got {type(model).__name__}")
