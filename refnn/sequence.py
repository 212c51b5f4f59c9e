"""Sequence heads (SEQ-*): from all hidden states to what a classifier needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refnn.kitspace import Ints, LayerSpace
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.types import FloatArray

#: What a sequence's time axis must hold.
STEPS = "hold at least one time step (T >= 1)"


def last_step(X: FloatArray) -> FloatArray:
    """The last time step of a batch of sequences, as a new contiguous array.

    Parameters
    ----------
    X : ndarray, shape (n, T, m)

    Returns
    -------
    A : ndarray, shape (n, m)

    Notes
    -----
    Spec: SEQ-LAST-FWD

    A = X[:, T-1, :].
    """
    return X[:, -1, :].copy()


def last_step_backward(dA: FloatArray, shape: tuple[int, int, int]) -> FloatArray:
    """Route the gradient to the last time step; every other step gets zero.

    Notes
    -----
    Spec: SEQ-LAST-BWD

    dX[:, t, :] = dA if t = T-1, else 0.
    """
    dX = np.zeros(shape, dtype=dA.dtype)
    dX[:, -1, :] = dA
    return dX


@register
class LastStep(Layer[tuple[int, int, int]]):
    """Keep the last time step of a sequence: H (n, T, m) -> H[:, T-1, :] (n, m).

    After an :class:`refnn.LSTM` it makes a many-to-one model (classify a sequence from h_T).
    Implements SEQ-LAST-FWD and SEQ-LAST-BWD; the cache is the input's shape (n, T, m).
    """

    grads_can_overflow = False  # dX copies or averages dA
    takes = Input(ndim=3, layout="n x T x m", nonempty={1: STEPS})
    specs = {"Y": ("SEQ-LAST-FWD",), "dX": ("SEQ-LAST-BWD",)}
    can_overflow = False
    kit = LayerSpace(
        draws={"n": Ints(1, 4), "T": Ints(1, 5), "m": Ints(1, 3)},
        input_shape=lambda v: (v["n"], v["T"], v["m"]),
        sums=lambda v, s: {"Y": 2, "dX": 2},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        return X.select(1, -1)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            *(
                Example(f"n=3 T={T} m=2 seed={s}", (3, T, 2), seed=s)
                for T, s in ((1, 0), (4, 1), (7, 2))
            ),
            Example("n=3 T=4 m=2", (3, 4, 2), float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, tuple[int, int, int]]:
        n, T, m = X.shape
        return last_step(X), (n, T, m)

    def _backward(
        self, dY: FloatArray, cache: tuple[int, int, int]
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return last_step_backward(dY, cache), {}, {}
