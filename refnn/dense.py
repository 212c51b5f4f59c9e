"""The fully connected (Dense) layer: Z = W X + b (DENSE-*)."""

from __future__ import annotations

from typing import Any

import numpy as np

from refnn._validate import (
    as_bool,
    as_input,
    check_allocatable,
    check_rng,
    positive_int,
    refuse_overflow,
)
from refnn.init import InitName, init_weights
from refnn.layer import Layer
from refnn.types import DTypeLike, FloatArray


def dense_forward(X: FloatArray, W: FloatArray, b: FloatArray) -> FloatArray:
    """Affine map of a batch of column examples.

    Parameters
    ----------
    X : ndarray, shape (n_in, m)
    W : ndarray, shape (n_out, n_in)
    b : ndarray, shape (n_out, 1)

    Returns
    -------
    Z : ndarray, shape (n_out, m)

    Notes
    -----
    Spec: DENSE-FWD

    Z = W X + b, b broadcast over the m columns. A Z beyond the dtype's range raises ValueError
    (never an overflow warning and an inf).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        Z: FloatArray = W @ X
        Z += b
    return refuse_overflow(Z, "Dense.forward: Z = W X + b")


def dense_backward(
    dZ: FloatArray, W: FloatArray, X: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Chain rule through Z = W X + b.

    Parameters
    ----------
    dZ : ndarray, shape (n_out, m)
        ∂J/∂Z; it already carries the 1/m of the cost (NOTE-COST).
    W : ndarray, shape (n_out, n_in)
    X : ndarray, shape (n_in, m)
        The forward's input.

    Returns
    -------
    dX, dW, db : ndarrays of the shapes of X, W and b

    Notes
    -----
    Spec: DENSE-DW, DENSE-DB, DENSE-DX

    dW = dZ X^T,  db = sum over columns of dZ,  dX = W^T dZ. A gradient beyond the dtype's
    range raises ValueError (never an overflow warning and an inf).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        grads = (W.T @ dZ, dZ @ X.T, dZ.sum(axis=1, keepdims=True))
    for name, g in zip(("dX", "dW", "db"), grads, strict=True):
        refuse_overflow(g, f"Dense.backward: {name}")
    return grads


class Dense(Layer[FloatArray]):
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
        check_allocatable((self.n_out, self.n_in), self.dtype, "W (n_out x n_in)")
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
        as_bool(training, "training")
        X = as_input(X, "X", ndim=2, dtype=self.dtype, leading=(self.n_in,), layout="n_in x m")
        Z = dense_forward(X, self.params["W"], self.params["b"])
        self._remember(X, X=X)
        return Z

    def backward(self, dA: FloatArray) -> FloatArray:
        X = self._cached()
        dZ = self._check_upstream(dA, (self.n_out, X.shape[1]))
        dX, dW, db = dense_backward(dZ, self.params["W"], X)
        self.grads = {"W": dW, "b": db}
        return dX

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init, **super().config()}
