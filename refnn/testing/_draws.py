"""How check_layer draws each layer: arguments, parameters and inputs in the dtype under test.

Shapes come from the public composite strategies (they shrink to the smallest layer) and
contents from bounded element strategies (they shrink towards zero).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn.testing import strategies as rs
from refnn.types import FloatArray

F64 = np.dtype(np.float64)


@dataclass
class Drawn:
    """One drawn layer: constructor arguments, parameters and input, in the dtype under test."""

    args: dict[str, Any]
    params: dict[str, FloatArray]
    X: FloatArray
    keep: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    dY: FloatArray = field(default_factory=lambda: np.zeros(0))
    state: dict[str, FloatArray] = field(default_factory=dict)  # LSTM h0, c0 (n_hidden x m)


def _arr(draw: st.DrawFn, shape: tuple[int, ...], dtype: np.dtype[Any], bound: float) -> FloatArray:
    return draw(rs.arrays(shape, dtype=dtype, bound=bound))


def _dense(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
    s = draw(rs.dense_shapes())
    W, b = _arr(draw, (s.n_out, s.n_in), dt, 2.0), _arr(draw, (s.n_out, 1), dt, 2.0)
    return Drawn(
        {"n_in": s.n_in, "n_out": s.n_out}, {"W": W, "b": b}, _arr(draw, s.input_shape, dt, 4)
    )


def _conv(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
    s = draw(rs.conv_shapes(max_channels=3, max_size=6))
    args = {
        "in_channels": s.C,
        "out_channels": s.F,
        "kernel_size": s.kernel,
        "stride": s.stride,
        "padding": s.padding,
    }
    W, b = _arr(draw, (s.F, s.C, *s.kernel), dt, 2.0), _arr(draw, (s.F, 1), dt, 2.0)
    return Drawn(args, {"W": W, "b": b}, _arr(draw, s.input_shape, dt, 4.0))


def _pool(unique: bool) -> Callable[[st.DrawFn, np.dtype[Any]], Drawn]:
    def draw_pool(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
        s = draw(rs.pool_shapes(max_size=6))
        width: Literal[32, 64] = 64 if dt == F64 else 32
        elements = st.floats(-4.0, 4.0, width=width, allow_subnormal=False)
        X = draw(hnp.arrays(dt, s.input_shape, elements=elements, unique=unique))
        return Drawn({"kernel_size": s.kernel, "stride": s.stride}, {}, X)

    return draw_pool


def _images(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
    shape = tuple(draw(rs.sizes(4)) for _ in range(4))
    return Drawn({}, {}, _arr(draw, shape, dt, 4.0))


def _any_rank(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=4, max_side=4))
    return Drawn({}, {}, _arr(draw, shape, dt, 4.0))


def _classes(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
    return Drawn({}, {}, _arr(draw, (draw(rs.sizes(5)), draw(rs.sizes(4))), dt, 8.0))


def _dropout(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
    shape = (draw(rs.sizes(5)), draw(rs.sizes(4)))
    p_drop = draw(st.sampled_from([0.0, 0.25, 0.5, 0.8]))
    keep = draw(hnp.arrays(np.bool_, shape)) | (p_drop == 0.0)  # p = 0 keeps every unit
    return Drawn({"p_drop": p_drop}, {}, _arr(draw, shape, dt, 4.0), keep)


def _sequences(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
    shape = (draw(rs.sizes(4)), draw(rs.sizes(5)), draw(rs.sizes(3)))
    return Drawn({}, {}, _arr(draw, shape, dt, 4.0))


def lstm_takes_state() -> bool:
    """Whether refnn's LSTM.forward takes an initial state ``h0``, ``c0``."""
    from refnn import LSTM

    return "h0" in LSTM.extra_inputs


def _lstm(draw: st.DrawFn, dt: np.dtype[Any]) -> Drawn:
    s = draw(rs.sequence_shapes())
    h = s.n_hidden
    W, b = _arr(draw, (4 * h, s.n_in + h), dt, 1.0), _arr(draw, (4 * h, 1), dt, 1.0)
    d = Drawn({"n_in": s.n_in, "n_hidden": h}, {"W": W, "b": b}, _arr(draw, s.input_shape, dt, 2))
    if lstm_takes_state():
        d.state = {key: _arr(draw, (h, s.m), dt, 1.0) for key in ("h0", "c0")}
    return d
