"""Inverted dropout (DROPOUT-*): drop each unit with probability ``p_drop`` while training.

The name says which probability it is: ``p_drop`` is the probability that a unit is DROPPED
(set to 0). A kept unit is scaled by 1/(1 - p_drop), so the expected activation is unchanged and
inference is the identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refnn._validate import check_rng, float_in
from refnn.kitspace import Choice, Ints, LayerSpace
from refnn.layer import Example, Layer
from refnn.registry import register
from refnn.types import DTypeLike, FloatArray

BoolArray = npt.NDArray[np.bool_]


def dropout_mask(shape: tuple[int, ...], p_drop: float, rng: np.random.Generator) -> BoolArray:
    """Draw which units are kept: True with probability 1 - p_drop, independently.

    Notes
    -----
    Spec: DROPOUT-FWD

    keep_ij = [u_ij >= p_drop], u_ij ~ U[0, 1) drawn from ``rng`` (NOTE-RNG), so
    P(keep) = 1 - p_drop.
    """
    keep: BoolArray = rng.random(shape) >= p_drop
    return keep


def dropout_forward(X: FloatArray, keep: BoolArray, p_drop: float) -> tuple[FloatArray, FloatArray]:
    """Apply a keep-mask with inverted scaling.

    Returns
    -------
    A : ndarray, X's shape and dtype
    D : ndarray, X's shape and dtype
        The scaled mask keep / (1 - p_drop), kept for the backward.

    Notes
    -----
    Spec: DROPOUT-FWD

    D = keep / (1 - p_drop), A = X ⊙ D: a dropped unit is exactly 0, a kept one is exactly
    x · fl(1/(1 - p_drop)) in X's dtype.
    """
    scale = X.dtype.type(1.0 / (1.0 - p_drop))
    D: FloatArray = keep.astype(X.dtype) * scale
    A: FloatArray = X * D
    return A, D


def dropout_backward(dA: FloatArray, D: FloatArray) -> FloatArray:
    """Chain rule through dropout with the mask of the forward.

    Notes
    -----
    Spec: DROPOUT-BWD

    dX = dA ⊙ D.
    """
    dX: FloatArray = dA * D
    return dX


#: The scaled mask D of the last forward (None: inference or p_drop = 0, the identity).
DropoutCache = FloatArray | None


@register
class Dropout(Layer[DropoutCache]):
    """Inverted dropout layer (DROPOUT-FWD, DROPOUT-BWD).

    Parameters
    ----------
    p_drop : float in [0, 1)
        Probability that a unit is DROPPED (zeroed) in training. A unit is kept with probability
        1 - p_drop and then multiplied by 1/(1 - p_drop). p_drop = 0 is the identity.
    rng : numpy.random.Generator
        The only source of the masks (NOTE-RNG); each training forward draws a fresh mask from
        it unless the mask is frozen.
    dtype : float64 or float32

    Notes
    -----
    ``forward(X, training=False)`` is the identity: it returns X itself (validated, no copy and no
    scaling) and draws nothing; the following ``backward`` passes dA through unchanged.

    Gradient checks: J must be one function of X while the checker evaluates it many times, so
    call :meth:`freeze_mask` first; every training forward then reuses one mask (the last one
    drawn, or the next one drawn if there is none) until :meth:`unfreeze_mask`. Example::

        layer = Dropout(0.5, rng=np.random.default_rng(0))
        layer.freeze_mask()
        problem = layer_problem(layer, X)   # its first forward draws the mask, then keeps it

    ``config()`` holds p_drop and dtype; a loader must pass ``rng=`` itself.
    """

    def __init__(
        self, p_drop: float, *, rng: np.random.Generator, dtype: DTypeLike = np.float64
    ) -> None:
        super().__init__(dtype=dtype)
        self.p_drop = float_in(p_drop, "p_drop", 0.0, 1.0, closed_high=False)
        self.rng = check_rng(rng)
        self._frozen = False
        self._keep: BoolArray | None = None

    @property
    def frozen(self) -> bool:
        """Whether training forwards reuse one mask instead of drawing a new one."""
        return self._frozen

    @property
    def keep_mask(self) -> BoolArray | None:
        """A copy of the last mask used in training (True = kept), or None if none was drawn."""
        return None if self._keep is None else self._keep.copy()

    def freeze_mask(self, keep: BoolArray | None = None) -> None:
        """Hold the mask fixed for every following training forward.

        Parameters
        ----------
        keep : boolean ndarray, optional
            The mask to use (True = unit kept); it is copied. Default: the mask of the last
            training forward, or, if there was none, the mask the next training forward draws.
        """
        if keep is not None:
            if type(keep) is not np.ndarray or keep.dtype != np.bool_:
                raise TypeError(
                    f"keep must be a boolean numpy array, got {type(keep).__name__}"
                    + (f" of dtype {keep.dtype}" if isinstance(keep, np.ndarray) else "")
                )
            if keep.ndim == 0 or keep.size == 0:
                raise ValueError(
                    f"keep must have X's shape (at least one axis, no empty one), got {keep.shape}"
                )
            self._keep = keep.copy()
        self._frozen = True

    def unfreeze_mask(self) -> None:
        """Go back to drawing a fresh mask at every training forward."""
        self._frozen = False

    specs = {"Y": ("DROPOUT-FWD",), "dX": ("DROPOUT-BWD",)}
    # the kit draws the mask too, freezes it here and gives it as config["keep"]
    kit = LayerSpace(
        draws={"n": Ints(1, 5), "m": Ints(1, 4), "p_drop": Choice((0.0, 0.25, 0.5, 0.8))},
        input_shape=lambda v: (v["n"], v["m"]),
        sums=lambda v, s: {"Y": 2, "dX": 2},
        mask=True,
    )

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Training with a frozen mask, and its identity paths: inference and p_drop = 0."""
        return (
            *(
                Example(f"p_drop={p} {label} frozen mask seed={seed}", shape, (p,), seed=seed)
                for seed in (0, 1, 2)
                for p, shape, label in ((0.5, (4, 6), "4x6"), (0.2, (3, 2, 5), "3x2x5"))
            ),
            Example("p_drop=0.5 4x6 inference", (4, 6), (0.5,), training=False),
            Example("p_drop=0.2 3x2x5 inference seed=1", (3, 2, 5), (0.2,), seed=1, training=False),
            Example("p_drop=0 4x6 training", (4, 6), (0.0,)),
            Example("p_drop=0.5 4x6 frozen mask", (4, 6), (0.5,), float32=True),
            Example("p_drop=0.5 4x6 inference", (4, 6), (0.5,), training=False, float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, DropoutCache]:
        if not training or self.p_drop == 0.0:
            return X, None
        if self._frozen and self._keep is not None:
            if self._keep.shape != X.shape:
                raise ValueError(
                    f"the frozen dropout mask has shape {self._keep.shape}, got X of shape "
                    f"{X.shape}; call unfreeze_mask() or freeze_mask(keep) with a matching mask"
                )
        else:
            self._keep = dropout_mask(X.shape, self.p_drop, self.rng)
        return dropout_forward(X, self._keep, self.p_drop)

    def _backward(
        self, dY: FloatArray, cache: DropoutCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return (dY if cache is None else dropout_backward(dY, cache)), {}, {}

    def config(self) -> dict[str, Any]:
        return {"p_drop": self.p_drop, **super().config()}
