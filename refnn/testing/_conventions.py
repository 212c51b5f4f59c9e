"""Other conventions a layer implementation may follow, declared with ``conventions=``.

A layer class lists what it accepts in ``kit.conventions`` (refnn's choice first); the kit
maps refnn's parameters to the declared form before giving them, and the gradients back:

- ``weights``: "out_in" (refnn: W is n_out x n_in, Z = W X + b), "in_out" (W transposed, as in
  ``x @ w``), "fchw" (refnn's conv W: F x C x kh x kw), "hwcf" (kh x kw x C x F, TensorFlow's
  and the course notebooks');
- ``bias``: "column" (refnn: n x 1), "flat" (n,) or "row" (1 x n, numpy-ml's);
- ``gates``: the order of an LSTM's row blocks of W and b, a letter per gate ("ifgo" refnn's
  and PyTorch's; "ifog" CS231n's; "igfo" TensorFlow's LSTMCell);
- ``state``: "given" (h0 and c0 are given and their gradients expected), "h0" (h0 given, c0
  zero, only dh0 expected), "zero" (always from the zero state: no h0, c0, no gradients);
- ``ties`` (max pooling): "first" (refnn: the first maximum in row-major window order takes the
  gradient, judged on drawn ties) or "any" (any single maximum: ties are then not drawn).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from refnn.types import FloatArray

#: refnn's gate order (the letters of the LSTM's row blocks).
REFNN_GATES = "ifgo"


def _rows(order: str, rows: int) -> np.ndarray[tuple[int], np.dtype[np.intp]]:
    """Row indices of refnn's array giving the blocks in ``order``."""
    size = rows // len(order)
    return np.concatenate([np.arange(size) + REFNN_GATES.index(c) * size for c in order]).astype(
        np.intp
    )


def to_impl(key: str, a: FloatArray, conventions: Mapping[str, str]) -> FloatArray:
    """refnn's parameter ``key`` in the declared form (a new array)."""
    gates = conventions.get("gates", REFNN_GATES)
    if gates != REFNN_GATES and key in ("W", "b"):
        a = a[_rows(gates, a.shape[0])]
    weights = conventions.get("weights", "")
    if key == "W" and weights == "in_out":
        a = a.T
    elif key == "W" and weights == "hwcf":
        a = a.transpose(2, 3, 1, 0)
    if key == "b" and conventions.get("bias") == "flat":
        a = a[:, 0]
    elif key == "b" and conventions.get("bias") == "row":
        a = a.T
    return np.array(a, order="C")


def from_impl(
    key: str, g: FloatArray, conventions: Mapping[str, str], shape: tuple[int, ...]
) -> FloatArray:
    """An implementation's gradient of ``key`` in refnn's form (inverse of :func:`to_impl`);
    returned as it came when its shape does not fit the declared form (the judge says so)."""
    g = np.asarray(g)
    weights = conventions.get("weights", "")
    try:
        if key == "b" and conventions.get("bias") == "flat":
            g = g.reshape(-1, 1) if g.ndim == 1 else g
        elif key == "b" and conventions.get("bias") == "row" and g.ndim == 2:
            g = g.T
        if key == "W" and weights == "in_out" and g.ndim == 2:
            g = g.T
        elif key == "W" and weights == "hwcf" and g.ndim == 4:
            g = g.transpose(3, 2, 0, 1)
        gates = conventions.get("gates", REFNN_GATES)
        if gates != REFNN_GATES and key in ("W", "b") and g.shape == shape:
            g = g[np.argsort(_rows(gates, g.shape[0]))]
    except ValueError:
        return g
    return g
