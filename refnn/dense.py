"""The fully connected (Dense) layer: Z = W X + b (DENSE-*)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn._validate import as_input, check_rng, positive_int
from refnn.init import InitName, init_weights
from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray


@dataclass(frozen=True)
class DenseCache:
    """What the Dense backward needs from the forward: the input X (n_in x m)."""

    X: FloatArray


@dataclass(frozen=True)
class DenseGrads:
    """Gradients of J with respect to the Dense layer's input, weights and bias."""

    dX: FloatArray
    dW: FloatArray
    db: FloatArray


def dense_forward(X: FloatArray, W: FloatArray, b: FloatArray) -> tuple[FloatArray, DenseCache]:
    """Affine map of a batch of column examples.

    Parameters
    ----------
    X : ndarray, shape (n_in, m)
    W : ndarray, shape (n_out, n_in)
    b : ndarray, shape (n_out, 1)

    Returns
    -------
    Z : ndarray, shape (n_out, m)
    cache : DenseCache

    Notes
    -----
    Spec: DENSE-FWD

    Z = W X + b, b broadcast over the m columns.
    """
    Z: FloatArray = W @ X
    Z += b
    return Z, DenseCache(X)


def dense_backward(dZ: FloatArray, W: FloatArray, cache: DenseCache) -> DenseGrads:
    """Chain rule through Z = W X + b.

    Parameters
    ----------
    dZ : ndarray, shape (n_out, m)
        ∂J/∂Z; it already carries the 1/m of the cost (NOTE-COST).
    W : ndarray, shape (n_out, n_in)
    cache : DenseCache

    Notes
    -----
    Spec: DENSE-DW, DENSE-DB, DENSE-DX

    dW = dZ X^T,  db = sum over columns of dZ,  dX = W^T dZ.
    """
    dW: FloatArray = dZ @ cache.X.T
    db: FloatArray = dZ.sum(axis=1, keepdims=True)
    dX: FloatArray = W.T @ dZ
    return DenseGrads(dX=dX, dW=dW, db=db)


class Dense(Layer[DenseCache]):
    """Fully connected layer, params "W" (n_out, n_in) and "b" (n_out, 1).

    Parameters
    ----------
    n_in, n_out : int
        Input and output sizes.
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG).
    init : {"he", "xavier"}
        Weight initialisation (INIT-HE default); biases start at zero.
    dtype : float64 or float32
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        rng: np.random.Generator,
        init: InitName = "he",
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.n_in = positive_int(n_in, "n_in")
        self.n_out = positive_int(n_out, "n_out")
        self.init: InitName = init
        W = init_weights(
            (self.n_out, self.n_in),
            self.n_in,
            self.n_out,
            rng=check_rng(rng),
            scheme=init,
            dtype=self.dtype,
        )
        self.params = {"W": W, "b": np.zeros((self.n_out, 1), dtype=self.dtype)}

    def forward(self, X: FloatArray, *, training: bool = True) -> FloatArray:
        X = as_input(X, "X", ndim=2, dtype=self.dtype, leading=(self.n_in,), layout="n_in x m")
        Z, cache = dense_forward(X, self.params["W"], self.params["b"])
        self._remember(cache, X=X)
        return Z

    def backward(self, dA: FloatArray) -> FloatArray:
        cache = self._cached()
        dZ = self._check_upstream(dA, (self.n_out, cache.X.shape[1]))
        grads = dense_backward(dZ, self.params["W"], cache)
        self.grads = {"W": grads.dW, "b": grads.db}
        return grads.dX

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init, **super().config()}
