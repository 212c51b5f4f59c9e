"""How the kit draws a layer from what its class declares (TEST-SPACE): the configuration from
``kit.draws`` (constrained by the user's ``configs``), the parameters in the shapes the layer
has, the extra inputs its ``extra_inputs`` declare, the input and the upstream gradient.

Sizes are drawn as integers that shrink to their lower bound and contents with bounded element
strategies that shrink towards zero, so a failure shrinks to the smallest layer and input.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn.kitspace import Choice, Dim, Ints, LayerSpace, PairOf, Values
from refnn.layer import Layer
from refnn.testing import strategies as rs
from refnn.types import FloatArray

F64 = np.dtype(np.float64)

#: What a user may give as ``configs``: name -> a fixed value or a predicate on the value, or
#: one predicate on the whole drawn configuration.
Configs = Mapping[str, Any] | Callable[[dict[str, Any]], bool] | None


@dataclass
class Drawn:
    """One drawn layer: values drawn, constructor arguments, parameters, inputs (dtype under
    test, refnn layout)."""

    values: dict[str, Any]
    args: dict[str, Any]
    params: dict[str, FloatArray]
    X: FloatArray
    keep: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    dY: FloatArray = field(default_factory=lambda: np.zeros(0))
    state: dict[str, FloatArray] = field(default_factory=dict)  # extra inputs (LSTM h0, c0)


def _bound(b: int | Callable[[Values], int], values: Values) -> int:
    return int(b(values)) if callable(b) else int(b)


def _dim(dim: Dim, values: Values) -> st.SearchStrategy[Any]:
    if isinstance(dim, Ints):
        lo, hi = _bound(dim.lo, values), _bound(dim.hi, values)
        return st.integers(lo, max(lo, hi))
    if isinstance(dim, Choice):
        return st.sampled_from(dim.values)
    return st.tuples(_dim(dim.first, values), _dim(dim.second, values))


def _fixed(dim: Dim, value: Any) -> Any:
    """A user's fixed value in the dimension's form: an int for a pair means (v, v)."""
    if isinstance(dim, PairOf) and not isinstance(value, (tuple, list)):
        return (value, value)
    return tuple(value) if isinstance(value, list) else value


def check_configs(configs: object, space: LayerSpace, name: str) -> None:
    """Refuse a ``configs`` naming what the kit does not draw for ``name``."""
    if configs is None or callable(configs):
        return
    if not isinstance(configs, Mapping):
        raise TypeError(
            f"configs must be a dict (name -> value or predicate) or a predicate, got "
            f"{type(configs).__name__}"
        )
    unknown = sorted(set(configs) - set(space.draws))
    if unknown:
        raise ValueError(
            f"configs names {unknown}, which the kit does not draw for {name}; it draws: "
            + ", ".join(space.draws)
        )


def draw_values(draw: st.DrawFn, space: LayerSpace, configs: Configs) -> dict[str, Any]:
    """The declared values in order, each fixed or filtered as ``configs`` says."""
    values: dict[str, Any] = {}
    for key, dim in space.draws.items():
        want = configs.get(key) if isinstance(configs, Mapping) else None
        if want is not None and not callable(want):
            values[key] = _fixed(dim, want)
            continue
        values[key] = draw(_dim(dim, values))
        if want is not None:
            assume(bool(want(values[key])))
    assume(space.valid is None or space.valid(values))
    if callable(configs):
        assume(bool(configs(dict(values))))
    return values


def build(cls: type[Layer[Any]], args: Mapping[str, Any]) -> Layer[Any]:
    """refnn's layer for the drawn arguments, in float64 (``rng`` where it takes one)."""
    kwargs = dict(args)
    if "rng" in inspect.signature(cls).parameters:
        kwargs["rng"] = np.random.default_rng(0)
    make: Callable[..., Layer[Any]] = cls
    return make(**kwargs)


def _elements(
    draw: st.DrawFn, shape: tuple[int, ...], dt: np.dtype[Any], bound: float, kind: str
) -> FloatArray:
    if kind == "normal":
        return draw(rs.arrays(shape, dtype=dt, bound=bound))
    width: Literal[32, 64] = 64 if dt == F64 else 32
    floats = st.floats(-bound, bound, width=width, allow_subnormal=False)
    if kind == "distinct":
        out: FloatArray = draw(hnp.arrays(dt, shape, elements=floats, unique=True))
        return out
    # ties: exact zeros and repeated values (a ReLU's output before a pool), shrinking to zero
    tied = st.one_of(st.sampled_from([0.0, 1.0, -1.0]), floats)
    out = draw(hnp.arrays(dt, shape, elements=tied))
    return out


@st.composite
def layer_examples(
    draw: st.DrawFn,
    cls: type[Layer[Any]],
    dt: np.dtype[Any],
    configs: Configs,
    conventions: Mapping[str, str],
) -> Drawn:
    """One drawn example of layer ``cls`` as its ``kit`` declares."""
    space = cls.kit
    assert space is not None
    values = draw_values(draw, space, configs)
    takes = inspect.signature(cls).parameters
    args = {k: v for k, v in values.items() if k in takes}
    layer = build(cls, args)
    params = {
        k: _elements(draw, p.shape, dt, space.param_bound, "normal")
        for k, p in layer.params.items()
    }
    kind = "distinct" if conventions.get("ties") == "any" else space.elements
    X: Any
    if kind == "indices":  # token indices, repeats included (TEST-SPACE)
        assert space.tokens is not None
        tokens = st.integers(0, space.tokens(values) - 1)
        X = draw(hnp.arrays(np.intp, space.input_shape(values), elements=tokens))
    else:
        X = _elements(draw, space.input_shape(values), dt, space.bound, kind)
    m = X.shape[-1]
    state: dict[str, FloatArray] = {}
    for key, spec in cls.extra_inputs.items():  # all drawn: the conventions pick which to give
        shape = (*(getattr(layer, a) for a in spec.leading), m)
        state[key] = _elements(draw, shape, dt, space.input_bound, "normal")
    d = Drawn(values, args, params, X, state=state)
    if space.mask:
        p_drop = args.get("p_drop", 0.5)
        d.keep = draw(hnp.arrays(np.bool_, X.shape)) | (p_drop == 0.0)  # p = 0 keeps all
    for key, value in params.items():
        layer.params[key][...] = value
    freeze = getattr(layer, "freeze_mask", None)
    if d.keep is not None and freeze is not None:
        freeze(d.keep)
    forward: Callable[..., FloatArray] = layer.forward
    shape = forward(X if X.dtype.kind in "iu" else X.astype(F64)).shape
    d.dY = draw(rs.arrays(shape, dtype=dt, bound=2.0))
    return d
