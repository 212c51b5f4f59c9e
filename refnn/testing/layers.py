"""check_layer: a layer implementation against refnn's layer of the same name (TEST-LAYER).

The protocol (TEST-LAYER in specs/testing.md): ``make_impl(config, params)`` builds the
implementation under test from the refnn layer's ``config()`` (dtype set to the dtype under
test) and its parameters (refnn's shapes, or the declared ``conventions``' forms); the object
returned has ``forward(X) -> Y`` and ``backward(dY) -> (dX, grads)`` with ``grads`` keyed like
refnn's ``params``. X, Y, dY and dX are in the chosen layout (see
:mod:`refnn.testing._layouts`).

Every layer comes from the registry (``refnn.registry.components("layer")``): what is drawn,
the sums behind each quantity and the magnitude scales are the class's ``kit`` declaration
(TEST-SPACE); the spec IDs its ``specs``; the extra inputs its ``extra_inputs``. No layer is
named here.
"""

from __future__ import annotations

import itertools
import textwrap
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import HypothesisDeprecationWarning, NoSuchExample, UnsatisfiedAssumption

from refnn.kitspace import LayerSpace
from refnn.layer import Layer
from refnn.registry import components
from refnn.testing._conventions import from_impl, to_impl
from refnn.testing._draws import Configs, Drawn, build, check_configs, layer_examples
from refnn.testing._layouts import AXES, LAYOUTS, back, convert
from refnn.testing._run import (
    TIME_LIMIT,
    Worker,
    call,
    check_conventions,
    check_dtype,
    check_layout,
    check_time_limit,
    check_tolerance,
    run_examples,
)
from refnn.testing._tolerance import Example, MismatchError, judge
from refnn.types import DTypeLike, FloatArray

F64 = np.dtype(np.float64)


class LayerImpl(Protocol):
    """What ``make_impl`` returns: the implementation under test."""

    def forward(self, X: FloatArray, /) -> FloatArray: ...

    def backward(self, dY: FloatArray, /) -> tuple[FloatArray, Mapping[str, FloatArray]]: ...


MakeLayerImpl = Callable[[dict[str, Any], dict[str, FloatArray]], LayerImpl]

ABS_TEXT = "this element of the quantity computed by refnn on absolute values (TEST-TOL-ABS)"
TERMS_TEXT = "the size of the terms behind this element (TEST-TOL-TERMS)"
#: Which extra inputs each ``state`` convention gives (None: all the layer declares).
STATE_GIVEN: dict[str, tuple[str, ...] | None] = {"given": None, "h0": ("h0",), "zero": ()}


def kit_layers() -> dict[str, type[Layer[Any]]]:
    """The registered layers that declare a kit space (TEST-SPACE), by name."""
    return {n: c for n, c in components("layer").items() if getattr(c, "kit", None) is not None}


def _space(cls: type[Layer[Any]]) -> LayerSpace:
    space = cls.kit
    assert space is not None
    return space


def _state(cls: type[Layer[Any]], d: Drawn, conventions: Mapping[str, str]) -> dict[str, Any]:
    """The extra inputs given under the ``state`` convention."""
    names = STATE_GIVEN.get(conventions.get("state", "given"))
    return {k: v for k, v in d.state.items() if names is None or k in names}


def reference(
    cls: type[Layer[Any]], d: Drawn, state: Mapping[str, FloatArray], *, absolute: str = ""
) -> dict[str, FloatArray]:
    """refnn's Y, dX, parameter and extra-input gradients in float64 (operands made absolute if
    asked: "all" of them, or "upstream" dY only)."""

    def mag(a: FloatArray) -> FloatArray:
        return np.abs(a) if absolute == "all" else a

    layer = build(cls, d.args)
    for key, value in d.params.items():
        layer.params[key][...] = mag(value.astype(F64))
    freeze = getattr(layer, "freeze_mask", None)
    if d.keep is not None and freeze is not None:
        freeze(d.keep)
    forward: Callable[..., FloatArray] = layer.forward
    X = d.X if d.X.dtype.kind in "iu" else mag(d.X.astype(F64))  # indices stay indices
    Y = forward(X, **{k: mag(v.astype(F64)) for k, v in state.items()})
    dY = d.dY.astype(F64)
    dX = layer.backward(np.abs(dY) if absolute else dY)
    out = {"Y": Y, "dX": dX, **{"d" + k: g for k, g in layer.grads.items()}}
    return out | {"d" + k: layer.input_grads[k] for k in state}


def _scales(
    cls: type[Layer[Any]], d: Drawn, state: Mapping[str, FloatArray], ref: dict[str, FloatArray]
) -> tuple[dict[str, Any], str]:
    """M of TEST-TOL for each quantity, and how it was found."""
    space = _space(cls)
    if space.scale == "terms":
        terms = space.terms(d.values, d.X.astype(F64), d.dY.astype(F64), ref)
        return terms, TERMS_TEXT
    if space.scale == "absolute":
        return reference(cls, d, state, absolute="all"), ABS_TEXT
    scales: dict[str, Any] = reference(cls, d, state, absolute="upstream")
    scales["Y"] = np.abs(ref["Y"])
    return scales, ABS_TEXT


@dataclass
class Context:
    """What one check_layer call checks with."""

    name: str
    cls: type[Layer[Any]]
    make_impl: MakeLayerImpl
    layout: str
    dt: np.dtype[Any]
    allowed: float
    forward_only: bool
    worker: Worker
    configs: Configs = None
    found: list[str] = field(default_factory=list)


def _findings(
    ctx: Context, d: Drawn, conventions: Mapping[str, str]
) -> tuple[list[tuple[str, str]], Example]:
    """Run one example; each disagreement or breach as (quantity, text), and the example."""
    cls, space, layout, dt = ctx.cls, _space(ctx.cls), ctx.layout, ctx.dt
    state = _state(cls, d, conventions)
    ref = reference(cls, d, state)
    scales, text = _scales(cls, d, state, ref)
    config = build(cls, d.args).config() | {"dtype": dt.name}
    if d.keep is not None:
        config["keep"] = convert(d.keep, layout)  # type: ignore[arg-type]
    params = {k: to_impl(k, v, conventions) for k, v in d.params.items()}
    X = convert(d.X, layout)
    given_state = {k: convert(v, layout) for k, v in state.items()}
    dY = convert(d.dY, layout)
    shapes = {"X": d.X.shape, "Y": ref["Y"].shape, **{k: v.shape for k, v in d.params.items()}}
    rerun = "impl = make_impl(config, params); Y = impl.forward(X"
    rerun += "".join(f", {k}={k}" for k in state) + ")"
    rerun += "" if ctx.forward_only else "; dX, grads = impl.backward(dY)"
    given: dict[str, Any] = {"params": params, "X": X, **given_state}
    if not ctx.forward_only:
        given["dY"] = dY
    example = Example("layer", ctx.name, config, shapes, layout, given, rerun)
    values = {"X": X.copy(), "dY": dY.copy(), **{k: v.copy() for k, v in given_state.items()}}
    sums = space.sums(d.values, shapes)
    out: list[tuple[str, str]] = []

    def check(q: str, got: object) -> None:
        units = space.units.get(q[1:], ()) if q.startswith("d") else ()
        found = judge(
            q,
            got,
            ref[q],
            K=sums[q],
            M=scales[q],
            scale_text=text,
            dtype=dt,
            allowed=ctx.allowed,
            units=units,
        )
        if found:
            out.append((q, found))

    impl = call(  # in the caller's thread: hypothesis's assume() works there
        example,
        "constructor (make_impl)",
        lambda: ctx.make_impl(dict(config), {k: v.copy() for k, v in params.items()}),
    )
    Y = ctx.worker.run(example, "forward", lambda: impl.forward(X, **given_state))
    _breaches(out, values, {"X": X, **given_state}, "forward")
    check("Y", back(np.asarray(Y), layout) if _is_array(Y) else Y)
    if ctx.forward_only:
        return out, example
    result: object = ctx.worker.run(example, "backward", lambda: impl.backward(dY))
    _breaches(out, values, {"dY": dY}, "backward")
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping)):
        out.append(("backward", "  backward must return (dX, grads) with grads a dict"))
        return out, example
    dX, grads = result
    check("dX", back(np.asarray(dX), layout) if _is_array(dX) else dX)
    extra = sorted(set(grads) - set(d.params) - set(state))
    if extra:
        out.append(
            (
                "grads",
                f"  backward returned gradients for {extra}, which the layer does not have "
                f"(expected the keys {sorted([*d.params, *state])})",
            )
        )
    for key in [*d.params, *state]:
        if key not in grads:
            out.append(
                (
                    "d" + key,
                    f"  backward returned no gradient for {key!r} (got keys {sorted(grads)})",
                )
            )
            continue
        g = grads[key]
        if key in state:
            got: object = back(np.asarray(g), layout) if _is_array(g) else g
        else:
            got = from_impl(key, g, conventions, d.params[key].shape) if _is_array(g) else g
        check("d" + key, got)
    return out, example


def _is_array(a: object) -> bool:
    return isinstance(a, np.ndarray) and a.ndim >= 1


def _breaches(
    out: list[tuple[str, str]],
    before: Mapping[str, FloatArray],
    now: Mapping[str, FloatArray],
    step: str,
) -> None:
    """The implementation wrote into an array it was given: a breach of the protocol."""
    for key, a in now.items():
        if not np.array_equal(a, before[key], equal_nan=True):
            out.append(
                (
                    key,
                    f"  the implementation's {step} wrote into the {key} it was given "
                    "(nothing the caller passes in may be modified: copy before writing)",
                )
            )


def _message(ctx: Context, example: Example, found: list[tuple[str, str]]) -> str:
    specs = ctx.cls.specs
    heads = []
    for q, _ in found:
        ids = ", ".join(specs.get(q, ()))
        heads.append(f"{q} disagrees with refnn" + (f" (spec {ids})" if ids else ""))
    details = "\n".join(
        f"  {h}:\n{textwrap.indent(t, '  ')}" for h, (_, t) in zip(heads, found, strict=True)
    )
    return (
        f"{ctx.name}: {'; '.join(dict.fromkeys(heads))}\n{example.describe()}\n{details}"
        f"{example.snippet()}"
    )


def _diagnose(ctx: Context, d: Drawn, conventions: Mapping[str, str]) -> str:
    """Name another declared convention under which the implementation agrees, if any."""
    known = {k: v for k, v in _space(ctx.cls).conventions.items() if k != "ties"}
    alternatives = [(k, v) for k, vs in known.items() for v in vs if v != conventions[k]]
    for size in (1, 2):  # one convention changed, then two (weights and bias together)
        for combo in itertools.combinations(alternatives, size):
            if len({k for k, _ in combo}) < size:
                continue
            other = {**conventions, **dict(combo)}
            try:
                found, _ = _findings(ctx, d, other)
            except MismatchError:
                continue
            if not found and _holds(ctx, other):
                names = ", ".join(f"{k}={v!r} (refnn's: {known[k][0]!r})" for k, v in combo)
                return (
                    f"\n  diagnosis: the implementation follows {names}; if that is intended, "
                    f"declare conventions={dict(combo)!r}"
                )
    return ""


def _holds(ctx: Context, conventions: Mapping[str, str]) -> bool:
    """Whether the implementation agrees on 10 more examples under ``conventions`` (a
    diagnosis must not rest on a minimal example that hides, say, a transposed 1 x 1 W)."""

    def fails(d: Drawn) -> bool:
        try:
            return bool(_findings(ctx, d, conventions)[0])
        except MismatchError:
            return True

    quick = settings(
        max_examples=10,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    try:
        find(layer_examples(ctx.cls, ctx.dt, ctx.configs, conventions), fails, settings=quick)
    except NoSuchExample:
        return True
    return False


def _layout_hint(ctx: Context, d: Drawn, conventions: Mapping[str, str]) -> str:
    """Which other layout the implementation's forward takes, when one works."""
    if d.X.ndim < 2:
        return ""
    for layout in LAYOUTS:
        if layout == ctx.layout or np.array_equal(
            convert(d.X, layout).shape, convert(d.X, ctx.layout).shape
        ):
            continue
        trial = Context(**{**ctx.__dict__, "layout": layout, "forward_only": True, "found": []})
        try:
            found, _ = _findings(trial, d, conventions)
        except MismatchError:
            continue
        if not any(q == "Y" and "shape" in t for q, t in found):
            axes = AXES[layout].get(d.X.ndim, "")
            return (
                f"\n  hint: the implementation seems to expect layout={layout!r} "
                f"(X as {axes}); pass layout={layout!r} to check_layer"
            )
    return ""


def check_layer(
    name: str,
    make_impl: MakeLayerImpl,
    *,
    layout: str = "batch_last",
    dtype: DTypeLike = np.float64,
    max_examples: int | None = None,
    seed: int | None = None,
    configs: Configs = None,
    conventions: Mapping[str, str] | None = None,
    tolerance: float | None = None,
    forward_only: bool = False,
    time_limit: float | None = TIME_LIMIT,
) -> None:
    """Check a layer implementation against refnn's layer ``name`` on drawn examples.

    Parameters
    ----------
    name : str
        A registered refnn layer that declares a kit space: "Dense", "Conv2D", "MaxPool2D",
        "AvgPool2D", "Flatten", "Sigmoid", "ReLU", "Tanh", "Softmax", "Dropout" (the mask is
        given in ``config["keep"]``), "LSTM" (given non-zero h0 and c0 as ``forward(X, h0=h0,
        c0=c0)``, returning their gradients under "h0" and "c0"; declare
        ``conventions={"state": "zero"}`` for an LSTM that always starts from zero), "LastStep",
        and any layer added since (``refnn.registry``).
    make_impl : callable
        ``make_impl(config, params)`` returns an object with ``forward(X) -> Y`` and
        ``backward(dY) -> (dX, grads)``; ``grads`` keyed like refnn's ``params``, in their
        shapes (or the declared conventions' forms). hypothesis's ``assume`` may be called in it
        to skip a configuration.
    layout : {"batch_last", "batch_first", "channels_last", "time_major"}
        The layout the implementation takes: refnn's (examples last); batch-first (m x n,
        m x C x H x W, m x T x n); channels-last (images m x H x W x C); time-major (sequences
        T x m x n). The kit converts (TEST-LAYOUT).
    dtype : float64 or float32
        The dtype of the inputs and parameters given to the implementation; the tolerance
        follows from it (TEST-TOL). refnn's side is computed in float64.
    max_examples : int, optional
        How many examples hypothesis draws (default: ``--refnn-examples``, else 30).
    seed : int, optional
        Hypothesis's seed (default 0: the same examples on every run).
    configs : dict or callable, optional
        Constrain what is drawn: name -> a fixed value (``{"stride": 1}``: an int fixes both of
        a pair) or a predicate on the value (``{"kernel_size": lambda k: k[0] == k[1]}``), or
        one predicate on the whole drawn configuration. ValueError if nothing can be drawn.
    conventions : dict, optional
        The conventions the implementation follows where the layer declares alternatives
        (``kit.conventions``): "weights" ("in_out", "hwcf"), "bias" ("flat"), "gates" ("ifog",
        "igfo"), "state" ("zero", "h0"), "ties" ("any"); see :mod:`refnn.testing._conventions`.
    tolerance : float, optional
        A deviation the caller accepts: an element passes if within TEST-TOL's bound or within
        ``tolerance * max(1, |refnn|)`` (never tighter than refnn's); shown in the message.
    forward_only : bool
        Check Y only (for an implementation without a backward yet).
    time_limit : float or None
        Seconds one call of the implementation may take (default 30); a call that does not
        return in time is reported. None: no limit (calls run in the caller's thread).

    Raises
    ------
    MismatchError
        For the minimal failing example: the configuration, the shapes, every quantity that
        disagrees (Y, dX, dW, db, ...) with its spec IDs, the worst element (an LSTM's gate
        named) and its error against the tolerance, a diagnosis when another declared
        convention fits, and the example as a snippet to rerun.

    Notes
    -----
    Spec: TEST-LAYER, TEST-TOL-ABS, TEST-TOL-TERMS, TEST-SPACE

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
    __tracebackhide__ = True
    layers = kit_layers()
    if not isinstance(name, str) or name not in layers:
        raise ValueError(f"name must be one of {sorted(layers)}, got {name!r}")
    cls = layers[name]
    space = _space(cls)
    dt, chosen = check_dtype(dtype), check_layout(layout)
    if not callable(make_impl):
        raise TypeError(f"make_impl must be callable, got {type(make_impl).__name__}")
    check_configs(configs, space, name)
    declared = check_conventions(conventions, dict(space.conventions), name)
    allowed = check_tolerance(tolerance)
    if not isinstance(forward_only, bool):
        raise TypeError(f"forward_only must be a bool, got {type(forward_only).__name__}")
    ctx = Context(
        name,
        cls,
        make_impl,
        chosen,
        dt,
        allowed,
        forward_only,
        Worker(check_time_limit(time_limit)),
        configs,
    )
    specs = tuple(dict.fromkeys(i for q, ids in cls.specs.items() for i in ids))

    last: list[Drawn] = []
    #: quantity -> (size, report) of the smallest example it disagreed on: a bug the minimal
    #: example hides (a dX bug where the shrunk W is zero) is still reported
    smallest: dict[str, tuple[tuple[int, float], str]] = {}

    def body(d: Drawn) -> None:
        last[:] = [d]  # hypothesis replays the minimal failing example last
        found, example = _findings(ctx, d, declared)
        size = (
            d.X.size + sum(p.size for p in d.params.values()),
            float(np.abs(d.X).sum() + sum(np.abs(p).sum() for p in d.params.values())),
        )
        for q, text in found:
            if q not in smallest or size < smallest[q][0]:
                head = _message(ctx, example, [(q, text)]).split("\n  rerun it")[0]
                smallest[q] = (size, head.split("\n", 1)[1])
        if found:
            raise MismatchError(_message(ctx, example, found))

    def explain(message: str) -> str:
        """The layout hint and the diagnosis, for the minimal example only (an ``assume`` in
        make_impl there means no diagnosis, without hypothesis's warning)."""
        if not last:
            return ""
        d, hint = last[0], ""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HypothesisDeprecationWarning)
            try:
                if "forward raised" in message or "  Y has shape" in message:
                    hint = _layout_hint(ctx, d, declared)
                if "disagrees with refnn" in message or "raised" in message:
                    hint += _diagnose(ctx, d, declared)
            except UnsatisfiedAssumption:
                pass
        first = message.split("\n", 1)[0]
        for q, (_, report) in smallest.items():
            if f"{q} disagrees" not in first:
                hint += f"\n  also, on another example, {q} disagrees:\n" + textwrap.indent(
                    report, "  "
                )
        return hint

    notes = [chosen, dt.name]
    notes += [f"{k}={v}" for k, v in declared.items() if v != space.conventions[k][0]]
    notes += ["forward only"] if forward_only else []
    run_examples(
        "layer",
        name,
        ", ".join(notes),
        specs,
        layer_examples(cls, dt, configs, declared),
        body,
        max_examples=max_examples,
        seed=seed,
        explain=explain,
        worker=ctx.worker,
    )
