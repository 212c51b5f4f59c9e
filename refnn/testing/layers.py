"""check_layer: a layer implementation against refnn's layer of the same name (TEST-LAYER).

The protocol (TEST-LAYER in specs/testing.md): ``make_impl(config, params)`` builds the
implementation under test from the refnn layer's ``config()`` (dtype set to the dtype under
test) and its parameters in refnn's shapes; the object returned has ``forward(X) -> Y`` and
``backward(dY) -> (dX, grads)`` with ``grads`` keyed and shaped like refnn's ``params``. X, Y,
dY and dX are in the chosen layout (see :mod:`refnn.testing._layouts`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from hypothesis import strategies as st

from refnn import (
    LSTM,
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LastStep,
    Layer,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from refnn.testing._draws import (
    Drawn,
    _any_rank,
    _arr,
    _classes,
    _conv,
    _dense,
    _dropout,
    _images,
    _lstm,
    _pool,
    _sequences,
)
from refnn.testing._layouts import Layout, back, convert
from refnn.testing._run import calling, check_dtype, check_layout, check_name, run_examples
from refnn.testing._tolerance import Example, MismatchError, compare
from refnn.types import DTypeLike, FloatArray

F64 = np.dtype(np.float64)


class LayerImpl(Protocol):
    """What ``make_impl`` returns: the implementation under test."""

    def forward(self, X: FloatArray, /) -> FloatArray: ...

    def backward(self, dY: FloatArray, /) -> tuple[FloatArray, Mapping[str, FloatArray]]: ...


MakeLayerImpl = Callable[[dict[str, Any], dict[str, FloatArray]], LayerImpl]


@dataclass(frozen=True)
class LayerCase:
    """How to draw one refnn layer, which spec each quantity cites and its sum lengths K."""

    make: Callable[..., Layer[Any]]
    draw: Callable[[st.DrawFn, np.dtype[Any]], Drawn]
    specs: dict[str, str]
    sums: Callable[[Drawn], dict[str, int]]
    absolute: str = "all"  # TEST-TOL-ABS: "all" operands, "upstream" only dY, "" (TEST-TOL-TERMS)


def build(case: LayerCase, d: Drawn) -> Layer[Any]:
    """refnn's layer for the drawn arguments, in float64 (``rng`` where the layer takes one)."""
    takes_rng = "rng" in inspect.signature(case.make).parameters
    return case.make(**d.args, **({"rng": np.random.default_rng(0)} if takes_rng else {}))


def reference(case: LayerCase, d: Drawn, *, absolute: str = "") -> dict[str, FloatArray]:
    """refnn's Y, dX and parameter gradients in float64 (operands made absolute if asked)."""

    def mag(a: FloatArray) -> FloatArray:
        return np.abs(a) if absolute == "all" else a

    layer = build(case, d)
    for key, value in d.params.items():
        layer.params[key][...] = mag(value.astype(F64))
    if isinstance(layer, Dropout) and d.keep is not None:
        layer.freeze_mask(d.keep)
    state = {k: v.astype(F64) for k, v in d.state.items()}  # the LSTM's h0, c0 if it takes them
    forward: Callable[..., FloatArray] = layer.forward
    Y = forward(mag(d.X.astype(F64)), **state)
    dY = d.dY.astype(F64)
    dX = layer.backward(np.abs(dY) if absolute else dY)
    out = {"Y": Y, "dX": dX, **{"d" + k: g for k, g in layer.grads.items()}}
    return out | {"d" + k: layer.input_grads[k] for k in d.state}


def _window_overlap(d: Drawn) -> int:
    (kh, kw), (sh, sw) = d.args["kernel_size"], d.args["stride"]
    return math.ceil(kh / sh) * math.ceil(kw / sw)


def _conv_sums(d: Drawn) -> dict[str, int]:
    F, C, kh, kw = d.params["W"].shape
    Z = d.dY.shape  # F x H_out x W_out x m
    return {
        "Y": C * kh * kw + 1,
        "dX": F * kh * kw,
        "dW": Z[1] * Z[2] * Z[3],
        "db": Z[1] * Z[2] * Z[3],
    }


def _lstm_sums(d: Drawn) -> dict[str, int]:
    n, T, m = d.X.shape
    h = d.args["n_hidden"]
    K = 4 * T * (n + h + 2)
    return {"Y": K, "dX": K, "dW": K * m, "db": K * m, "dh0": K, "dc0": K}


def _ones(*names: str) -> Callable[[Drawn], dict[str, int]]:
    return lambda d: dict.fromkeys(names, 2)


CASES: dict[str, LayerCase] = {
    "Dense": LayerCase(
        Dense,
        _dense,
        {"Y": "DENSE-FWD", "dX": "DENSE-DX", "dW": "DENSE-DW", "db": "DENSE-DB"},
        lambda d: {
            "Y": d.X.shape[0] + 1,
            "dX": d.params["W"].shape[0],
            "dW": d.X.shape[1],
            "db": d.X.shape[1],
        },
    ),
    "Conv2D": LayerCase(
        Conv2D,
        _conv,
        {"Y": "CONV-FWD", "dX": "CONV-DX", "dW": "CONV-DW", "db": "CONV-DB"},
        _conv_sums,
    ),
    "MaxPool2D": LayerCase(
        MaxPool2D,
        _pool(unique=True),
        {"Y": "MAXPOOL-FWD", "dX": "MAXPOOL-BWD"},
        lambda d: {"Y": 1, "dX": _window_overlap(d)},
        absolute="upstream",
    ),
    "AvgPool2D": LayerCase(
        AvgPool2D,
        _pool(unique=False),
        {"Y": "AVGPOOL-FWD", "dX": "AVGPOOL-BWD"},
        lambda d: {
            "Y": math.prod(d.args["kernel_size"]) + 1,
            "dX": _window_overlap(d) + 1,
        },
    ),
    "Flatten": LayerCase(
        Flatten, _images, {"Y": "FLATTEN-FWD", "dX": "FLATTEN-BWD"}, _ones("Y", "dX")
    ),
    "LastStep": LayerCase(
        LastStep, _sequences, {"Y": "SEQ-LAST-FWD", "dX": "SEQ-LAST-BWD"}, _ones("Y", "dX")
    ),
    "Dropout": LayerCase(
        Dropout, _dropout, {"Y": "DROPOUT-FWD", "dX": "DROPOUT-BWD"}, _ones("Y", "dX")
    ),
    "Sigmoid": LayerCase(
        Sigmoid, _any_rank, {"Y": "SIGMOID-FWD", "dX": "SIGMOID-BWD"}, _ones("Y", "dX"), ""
    ),
    "Tanh": LayerCase(Tanh, _any_rank, {"Y": "TANH-FWD", "dX": "TANH-BWD"}, _ones("Y", "dX"), ""),
    "ReLU": LayerCase(ReLU, _any_rank, {"Y": "RELU-FWD", "dX": "RELU-BWD"}, _ones("Y", "dX"), ""),
    "Softmax": LayerCase(
        Softmax,
        _classes,
        {"Y": "SOFTMAX-FWD", "dX": "SOFTMAX-BWD"},
        lambda d: dict.fromkeys(("Y", "dX"), d.X.shape[0] + 2),
        "",
    ),
    "LSTM": LayerCase(
        LSTM,
        _lstm,
        {
            "Y": "LSTM-HIDDEN",
            "dX": "LSTM-DX",
            "dW": "LSTM-DW",
            "db": "LSTM-DB",
            "dh0": "LSTM-DH0",
            "dc0": "LSTM-DC0",
        },
        _lstm_sums,
        "",
    ),
}

ABS_TEXT = "this element of the quantity computed by refnn on absolute values (TEST-TOL-ABS)"
TERMS_TEXT = "the size of the terms behind this element (TEST-TOL-TERMS)"


def term_scales(name: str, d: Drawn, ref: dict[str, FloatArray]) -> dict[str, FloatArray]:
    """TEST-TOL-TERMS: magnitude scales of the non-linear layers' quantities."""
    dY = np.abs(d.dY.astype(F64))
    if name == "Softmax":
        X = d.X.astype(F64)
        spread = 2.0 + np.abs(X - X.max(axis=0, keepdims=True))
        A = np.abs(ref["Y"])
        return {"Y": A * spread, "dX": A * (dY + (A * dY).sum(axis=0, keepdims=True)) * spread}
    if name == "LSTM":
        T = d.X.shape[1]
        big = float(dY.max(initial=0.0)) * T * max(1.0, float(np.abs(d.X).max(initial=0.0)))
        keys = ("dX", "dW", "db", "dh0", "dc0")
        return {"Y": np.ones(()), **dict.fromkeys(keys, np.asarray(big))}
    return {"Y": np.abs(ref["Y"]) + (name == "Sigmoid"), "dX": dY}


def _check_example(
    name: str,
    case: LayerCase,
    d: Drawn,
    make_impl: MakeLayerImpl,
    layout: Layout,
    dt: np.dtype[Any],
) -> None:
    ref = reference(case, d)
    if case.absolute:
        scales, text = reference(case, d, absolute=case.absolute), ABS_TEXT
        if case.absolute == "upstream":
            scales["Y"] = np.abs(ref["Y"])
    else:
        scales, text = term_scales(name, d, ref), TERMS_TEXT
    config = build(case, d).config() | {"dtype": dt.name}
    if d.keep is not None:
        config["keep"] = convert(d.keep, layout)  # type: ignore[arg-type]
    shapes = {"X": d.X.shape, "Y": ref["Y"].shape, **{k: v.shape for k, v in d.params.items()}}
    example = Example("layer", name, config, shapes, layout)
    sums, specs = case.sums(d), case.specs
    with calling(example, "constructor (make_impl)"):
        impl = make_impl(dict(config), {k: v.copy() for k, v in d.params.items()})
    with calling(example, "forward"):
        state = {k: convert(v, layout) for k, v in d.state.items()}
        Y = back(impl.forward(convert(d.X, layout), **state), layout)

    def check(q: str, got: object) -> None:
        compare(
            example, q, specs[q], got, ref[q], K=sums[q], M=scales[q], scale_text=text, dtype=dt
        )

    check("Y", Y)
    with calling(example, "backward"):
        dX, grads = impl.backward(convert(d.dY, layout))
    check("dX", back(np.asarray(dX), layout))
    for key in [*d.params, *d.state]:
        if key not in grads:
            raise MismatchError(
                f"{name}: backward returned no gradient for {key!r} (got keys {sorted(grads)})\n"
                f"{example.describe()}"
            )
        check("d" + key, back(np.asarray(grads[key]), layout) if key in d.state else grads[key])


@st.composite
def _examples(draw: st.DrawFn, case: LayerCase, dt: np.dtype[Any]) -> Drawn:
    d = case.draw(draw, dt)
    Y = build(case, d)
    for key, value in d.params.items():
        Y.params[key][...] = value
    if isinstance(Y, Dropout) and d.keep is not None:
        Y.freeze_mask(d.keep)
    shape = Y.forward(d.X.astype(F64)).shape
    d.dY = _arr(draw, shape, dt, 2.0)
    return d


def check_layer(
    name: str,
    make_impl: MakeLayerImpl,
    *,
    layout: Layout = "batch_last",
    dtype: DTypeLike = np.float64,
    max_examples: int | None = None,
    seed: int | None = None,
) -> None:
    """Check a layer implementation against refnn's layer ``name`` on drawn examples.

    Parameters
    ----------
    name : str
        A refnn layer: "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Sigmoid",
        "ReLU", "Tanh", "Softmax", "Dropout" (the mask is given in ``config["keep"]``),
        "LSTM" (from the zero state), "LastStep".
    make_impl : callable
        ``make_impl(config, params)`` returns an object with ``forward(X) -> Y`` and
        ``backward(dY) -> (dX, grads)``; ``grads`` keyed like refnn's ``params``, same shapes.
    layout : {"batch_last", "batch_first"}
        The layout the implementation takes: refnn's (examples last) or batch-first
        (m x n, m x C x H x W, m x T x n); the kit converts with ``to_batch_first``.
    dtype : float64 or float32
        The dtype of the inputs and parameters given to the implementation; the tolerance
        follows from it (TEST-TOL). refnn's side is computed in float64.
    max_examples : int, optional
        How many examples hypothesis draws (default: ``--refnn-examples``, else 30).
    seed : int, optional
        Hypothesis's seed (default 0: the same examples on every run).

    Raises
    ------
    MismatchError
        For the minimal failing example: the configuration, the shapes, the quantity (Y, dX,
        dW, db, ...), its spec ID, the worst element and its error against the tolerance.

    Notes
    -----
    Spec: TEST-LAYER, TEST-TOL-ABS, TEST-TOL-TERMS

    Examples
    --------
    >>> import numpy as np
    >>> from refnn.testing import check_layer
    >>> class MyReLU:  # in refnn's layout (examples last), the default
    ...     def __init__(self, config, params):  # ReLU has no parameters
    ...         pass
    ...     def forward(self, X):
    ...         self.X = X
    ...         return np.maximum(X, 0)
    ...     def backward(self, dY):
    ...         return dY * (self.X > 0), {}  # dX, and no parameter gradients
    >>> check_layer("ReLU", MyReLU, max_examples=10)  # returns None: they agree
    """
    case = CASES[check_name(name, CASES, "name")]
    dt, chosen = check_dtype(dtype), check_layout(layout)
    if not callable(make_impl):
        raise TypeError(f"make_impl must be callable, got {type(make_impl).__name__}")
    specs = tuple(case.specs.values())

    def body(d: Drawn) -> None:
        _check_example(name, case, d, make_impl, chosen, dt)  # type: ignore[arg-type]

    detail = f"{chosen}, {dt.name}"
    run_examples(
        "layer",
        name,
        detail,
        specs,
        _examples(case, dt),
        body,
        max_examples=max_examples,
        seed=seed,
    )
