"""The Embedding layer: integer token indices to vectors (EMBED-*, specs/embedding.md).

X is an integer array of any shape, examples last ((T, m) for sequences); Y = W[:, X] puts the
vector axis first, (dim, T, m), the layout the recurrent layers take. The indices are validated
by the layer's own input hook (``Layer._input``): they are not real-valued, so the float
validation every other layer shares does not apply. The weight gradient accumulates repeated
indices (scatter-add) with one ``np.bincount``; the indices get no gradient (dX = 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refnn._validate import check_allocatable, check_rng, positive_int
from refnn.kitspace import Ints, LayerSpace
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.types import DTypeLike, FloatArray

IndexArray = npt.NDArray[np.intp]


def embedding_init(
    n_tokens: int, dim: int, *, rng: np.random.Generator, dtype: np.dtype[Any]
) -> FloatArray:
    """The initial table W (dim, n_tokens).

    Notes
    -----
    Spec: EMBED-INIT

    W_uv ~ N(0, 1), PyTorch's default for ``nn.Embedding``.
    """
    W: FloatArray = rng.standard_normal((dim, n_tokens)).astype(dtype, copy=False)
    return W


def embedding_forward(X: IndexArray, W: FloatArray) -> FloatArray:
    """Look up each index's column of W.

    Parameters
    ----------
    X : ndarray of int, any shape
        Token indices in 0..n_tokens-1.
    W : ndarray, shape (dim, n_tokens)

    Returns
    -------
    Y : ndarray, shape ``(dim, *X.shape)``
        A new array.

    Notes
    -----
    Spec: EMBED-FWD

    Y[:, p] = W[:, X[p]] for every position p of X.
    """
    return np.take(W, X, axis=1)


def embedding_backward(dY: FloatArray, X: IndexArray, n_tokens: int) -> FloatArray:
    """The table's gradient: each position's dY column added into its token's column.

    Parameters
    ----------
    dY : ndarray, shape ``(dim, *X.shape)``
        ∂J/∂Y, carrying the 1/m (NOTE-COST).
    X : ndarray of int
        The forward's indices.
    n_tokens : int

    Returns
    -------
    dW : ndarray, shape (dim, n_tokens), dY's dtype

    Notes
    -----
    Spec: EMBED-DW

    dW[:, v] = Σ_{p : X[p] = v} dY[:, p] (repeated indices accumulate). One ``np.bincount`` of
    the combined index r n_tokens + X[p] (row r of dW) weighted by dY[r, p]: a single pass
    summing in float64, then rounded to dY's dtype once (no ``np.add.at``).
    """
    dim = dY.shape[0]
    flat = X.reshape(-1)
    rows = np.arange(dim, dtype=np.intp)[:, None] * n_tokens
    where = (rows + flat[None, :]).reshape(-1)
    sums = np.bincount(where, weights=dY.reshape(dim * flat.size), minlength=dim * n_tokens)
    dW: FloatArray = sums.reshape(dim, n_tokens).astype(dY.dtype, copy=False)
    return dW


def embedding_input_grad(X: IndexArray, dtype: np.dtype[Any]) -> FloatArray:
    """The indices' gradient: none, returned as zeros of X's shape.

    Notes
    -----
    Spec: EMBED-DX

    dX = 0: Y is piecewise constant in X (integer values only).
    """
    return np.zeros(X.shape, dtype=dtype)


@register
class Embedding(Layer[IndexArray]):
    """A table of ``n_tokens`` vectors of size ``dim``: indices X (any shape, examples last) to
    Y = W[:, X] of shape ``(dim, *X.shape)``.

    Parameters
    ----------
    n_tokens : int
        The vocabulary size V: indices must be in 0..V-1.
    dim : int
        The vector size d.
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG).
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "W" (dim, n_tokens): column v is token v's vector. PyTorch's ``torch.nn.Embedding``
        holds its transpose: ``weight`` = W.T.

    Notes
    -----
    Implements EMBED-FWD, EMBED-DW (repeated indices accumulate), EMBED-DX and EMBED-INIT.
    X must be an integer array (int or uint dtype) with at least one axis and one example;
    a float, bool or other array is refused (TypeError), as is an index outside 0..V-1
    (ValueError naming it and where it is). ``backward`` returns dX = zeros of X's shape in the
    layer's dtype: the indices are not differentiable. The cache is X, by reference.
    """

    takes = Input(min_ndim=1, layout="", name="X")
    specs = {"Y": ("EMBED-FWD",), "dX": ("EMBED-DX",), "dW": ("EMBED-DW",)}
    keeps = ("X",)
    can_overflow = False  # Y copies entries of W
    # indices of (T, m) sequences, repeated tokens drawn often (dW must accumulate them)
    kit = LayerSpace(
        draws={"n_tokens": Ints(1, 5), "dim": Ints(1, 4), "T": Ints(1, 4), "m": Ints(1, 3)},
        input_shape=lambda v: (v["T"], v["m"]),
        sums=lambda v, s: {"Y": 1, "dX": 1, "dW": v["T"] * v["m"]},
        elements="indices",
        tokens=lambda v: v["n_tokens"],
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        Y = torch.nn.functional.embedding(X.long(), arrays["W"].t())  # weight = W.T
        return Y.permute(2, 0, 1)  # (T, m, dim) -> (dim, T, m)

    def __init__(
        self,
        n_tokens: int,
        dim: int,
        *,
        rng: np.random.Generator,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.n_tokens = positive_int(n_tokens, "n_tokens")
        self.dim = positive_int(dim, "dim")
        check_allocatable((self.dim, self.n_tokens), self.dtype, "W (dim x n_tokens)")
        W = embedding_init(self.n_tokens, self.dim, rng=check_rng(rng), dtype=self.dtype)
        self.params = {"W": W}

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        return {"W": (config["dim"], config["n_tokens"])}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Index shapes with more positions than tokens (so indices repeat and dW must
        accumulate): one token per example, sequences (T, m), a 3-axis array; float32."""
        return (
            Example("V=3 d=2 X (5,)", (5,), (3, 2)),
            Example("V=4 d=3 X (T=3, m=2)", (3, 2), (4, 3), seed=1),
            Example("V=1 d=1 X (T=2, m=2)", (2, 2), (1, 1), seed=2),
            Example("V=5 d=2 X (2, 3, 2)", (2, 3, 2), (5, 2), seed=3),
            Example(
                "V=4 d=2 X (T=3, m=2) after a batch of m=3", (3, 2), (4, 2), after_other_batch=True
            ),
            Example("V=4 d=3 X (T=3, m=2)", (3, 2), (4, 3), float32=True),
        )

    def forward(
        self, X: npt.NDArray[Any], *, training: bool = True, **inputs: FloatArray | None
    ) -> FloatArray:
        """Look up the vectors of the token indices X (an integer array, examples last):
        Y of shape ``(dim, *X.shape)`` (EMBED-FWD). ``Layer.forward`` with X typed as indices."""
        indices: Any = X  # validated as indices by _input, not as a float array
        return super().forward(indices, training=training, **inputs)

    def draw_indices(self, shape: tuple[int, ...], rng: np.random.Generator) -> IndexArray:
        """Valid input for ``make check`` and the registry's test tables: indices drawn
        uniformly from 0..n_tokens-1."""
        out: IndexArray = rng.integers(0, self.n_tokens, shape).astype(np.intp)
        return out

    def _input(self, X: object) -> npt.NDArray[Any]:
        """X checked as token indices and returned as a C-contiguous intp array (X itself when
        it already is one)."""
        V = self.n_tokens
        if not isinstance(X, np.ndarray) or isinstance(X, np.ma.MaskedArray | np.matrix):
            raise TypeError(
                f"X must be a plain numpy array of integer token indices in 0..{V - 1}, got "
                f"{type(X).__name__}"
            )
        if X.dtype.kind not in "iu":
            raise TypeError(
                f"X must hold integer token indices in 0..{V - 1} (an int or uint array), got "
                f"dtype {X.dtype}"
            )
        if X.ndim == 0:
            raise ValueError(
                "X must have at least 1 axis (examples last), got a 0-d array; "
                "one token per example: X of shape (m,)"
            )
        if X.shape[-1] == 0:
            raise ValueError(f"X must hold at least one example (m >= 1), got shape {X.shape}")
        if X.size:
            low, high = X.min(), X.max()
            if low < 0 or high >= V:
                bad = X[(X < 0) | (X >= V)].flat[0]
                where = tuple(int(i[0]) for i in np.nonzero(X == bad))
                raise ValueError(
                    f"X must hold token indices in 0..{V - 1} (n_tokens = {V}), got {bad} at "
                    f"position {where}"
                )
        return np.ascontiguousarray(X, dtype=np.intp)

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, IndexArray]:
        indices: IndexArray = np.asarray(X, dtype=np.intp)  # validated by _input
        return embedding_forward(indices, self.params["W"]), indices

    def _backward(
        self, dY: FloatArray, cache: IndexArray
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        dW = embedding_backward(dY, cache, self.n_tokens)
        return embedding_input_grad(cache, self.dtype), {"W": dW}, {}

    def config(self) -> dict[str, Any]:
        return {"n_tokens": self.n_tokens, "dim": self.dim, **super().config()}
