"""Sequential composition of layers (MODEL-*): the seeds' L-layer model."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from refnn._validate import positive_int
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
    """

    def __init__(self, layers: Sequence[Layer[Any]]) -> None:
        layers = list(layers)
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
    """The seeds' L-layer model: [Dense, ReLU] * (L-1), then Dense and the output activation.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``; at least an input and an output size.
    rng : numpy.random.Generator
        Used for He initialisation of every Dense layer (INIT-HE).
    output : {"sigmoid", "linear"}
        ``"linear"`` ends on the last Dense (use a from-logits loss).
    dtype : float64 or float32
    """
    dims = [positive_int(d, f"layer_dims[{i}]") for i, d in enumerate(layer_dims)]
    if len(dims) < 2:
        raise ValueError(f"layer_dims needs at least 2 sizes (input, output), got {dims}")
    layers: list[Layer[Any]] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(dims)):
        layers.append(Dense(n_in, n_out, rng=rng, dtype=dtype))
        if i < len(dims) - 2:
            layers.append(ReLU(dtype=dtype))
    if output == "sigmoid":
        layers.append(Sigmoid(dtype=dtype))
    elif output != "linear":
        raise ValueError(f"output must be 'sigmoid' or 'linear', got {output!r}")
    return Sequential(layers)
