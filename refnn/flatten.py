"""Flatten (FLATTEN-*): C x H x W x m images to (C H W) x m columns, a reshape (no copy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refnn.kitspace import Ints, LayerSpace
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.types import FloatArray


def flatten(X: FloatArray) -> FloatArray:
    """Merge every axis but the last (examples) into one.

    Parameters
    ----------
    X : ndarray, shape (C, H, W, m) (or any rank >= 2: (d_1, ..., d_k, m))

    Returns
    -------
    A : ndarray, shape (C H W, m); a view of X when X is C-contiguous

    Notes
    -----
    Spec: FLATTEN-FWD

    A[(c, h, w), n] = X[c, h, w, n], rows in row-major order (c H W + h W + w).
    """
    m: int = X.shape[-1]
    A: FloatArray = X.reshape(-1, m)
    return A


def unflatten(dA: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """The inverse reshape: (C H W) x m back to C x H x W x m.

    Notes
    -----
    Spec: FLATTEN-BWD

    dX = dA reshaped to C x H x W x m; a view when dA is C-contiguous.
    """
    dX: FloatArray = dA.reshape(shape)
    return dX


@register
class Flatten(Layer[tuple[int, ...]]):
    """Flatten layer (FLATTEN-FWD, FLATTEN-BWD); no parameters.

    Takes C x H x W x m images (any rank >= 2 works: all axes but the last are merged) and
    returns (C H W) x m, ready for a Dense layer. Both directions are reshapes: on a
    C-contiguous array they return a view and copy nothing.

    Parameters
    ----------
    dtype : float64 or float32
    """

    grads_can_overflow = False  # dX copies or averages dA
    takes = Input(min_ndim=2, layout="C x H x W x m")
    specs = {"Y": ("FLATTEN-FWD",), "dX": ("FLATTEN-BWD",)}
    can_overflow = False
    kit = LayerSpace(
        draws={"C": Ints(1, 4), "H": Ints(1, 4), "W": Ints(1, 4), "m": Ints(1, 4)},
        input_shape=lambda v: (v["C"], v["H"], v["W"], v["m"]),
        sums=lambda v, s: {"Y": 2, "dX": 2},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        return torch.flatten(X.permute(3, 0, 1, 2), start_dim=1).T

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example("3x4x2 m=3", (3, 4, 2, 3)),
            Example("1x1x1 m=1 seed=1", (1, 1, 1, 1), seed=1),
            Example("3x4x2 m=3", (3, 4, 2, 3), float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, tuple[int, ...]]:
        return flatten(X), X.shape

    def _backward(
        self, dY: FloatArray, cache: tuple[int, ...]
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return unflatten(dY, cache), {}, {}
