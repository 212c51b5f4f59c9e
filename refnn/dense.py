"""The fully connected (Dense) layer: Z = W X + b (DENSE-*)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refnn._validate import check_allocatable, check_rng, positive_int
from refnn.init import InitName, init_weights
from refnn.kitspace import Ints, LayerSpace
from refnn.layer import Example, Input, Layer
from refnn.registry import register
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

    Z = W X + b, b broadcast over the m columns.
    """
    Z: FloatArray = W @ X
    Z += b
    return Z


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

    dW = dZ X^T,  db = sum over columns of dZ,  dX = W^T dZ.
    """
    return W.T @ dZ, dZ @ X.T, dZ.sum(axis=1, keepdims=True)


@register
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

    Notes
    -----
    X is (n_in, m), Y = Z is (n_out, m) (DENSE-FWD); the cache is X itself, by reference.

    Examples
    --------
    >>> import numpy as np
    >>> import refnn
    >>> layer = refnn.Dense(3, 2, rng=np.random.default_rng(0))
    >>> X = np.ones((3, 5))  # 3 features, 5 examples (columns)
    >>> layer.forward(X).shape
    (2, 5)
    >>> dX = layer.backward(np.ones((2, 5)))
    >>> dX.shape, layer.grads["W"].shape, layer.grads["b"].shape
    ((3, 5), (2, 3), (2, 1))
    """

    takes = Input(ndim=2, leading=("n_in",), layout="n_in x m")
    specs = {
        "Y": ("DENSE-FWD",),
        "dX": ("DENSE-DX",),
        "dW": ("DENSE-DW",),
        "db": ("DENSE-DB",),
    }
    keeps = ("X",)
    kit = LayerSpace(
        draws={"n_in": Ints(1, 6), "n_out": Ints(1, 6), "m": Ints(1, 6)},
        input_shape=lambda v: (v["n_in"], v["m"]),
        sums=lambda v, s: {"Y": v["n_in"] + 1, "dX": v["n_out"], "dW": v["m"], "db": v["m"]},
        # W as refnn's n_out x n_in or transposed (x @ w code); b as a column or flat
        conventions={"weights": ("out_in", "in_out"), "bias": ("column", "flat", "row")},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        return torch.nn.functional.linear(X.T, arrays["W"], arrays["b"][:, 0]).T

    grads_reveal_nonfinite_upstream = True  # db sums every element of dZ (DENSE-DB)

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

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        return {"W": (config["n_out"], config["n_in"]), "b": (config["n_out"], 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        sizes = ((3, 4, 5), (1, 1, 1), (7, 2, 3))
        return (
            *(
                Example(f"{n_in}->{n_out} m={m} seed={seed}", (n_in, m), (n_in, n_out), seed=seed)
                for (n_in, n_out, m) in sizes
                for seed in (0, 1, 2)
            ),
            # large enough (W: 64 x 48 = 3072 elements) that the checker's fast mode decides
            Example("48->64 m=40 (fast mode)", (48, 40), (48, 64)),
            Example("3->4 m=5", (3, 5), (3, 4), float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        return dense_forward(X, self.params["W"], self.params["b"]), X

    def _backward(
        self, dY: FloatArray, cache: FloatArray
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        dX, dW, db = dense_backward(dY, self.params["W"], cache)
        return dX, {"W": dW, "b": db}, {}

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init, **super().config()}
