"""check_loss and check_optimizer: losses and optimizers against refnn's (TEST-LOSS, TEST-OPTIM).

A loss under test is built by ``make_impl(config)`` and has ``forward(A, Y) -> cost`` and
``backward() -> dA``; an optimizer under test is built by ``make_impl(config, params)`` and has
``step(grads) -> params`` (the parameters after the step, keyed like ``params``). Both come
from the registry: what is drawn is the class's ``kit`` declaration (TEST-SPACE), no loss or
optimizer is named here.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn.kitspace import Choice, LossSpace, OptimizerSpace
from refnn.layer import Parameter
from refnn.losses import Loss
from refnn.optim import Optimizer
from refnn.registry import components
from refnn.testing import strategies as rs
from refnn.testing._layouts import back, convert
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
from refnn.testing._variants import VARIANTS
from refnn.types import DTypeLike, FloatArray

F64 = np.dtype(np.float64)
#: The reduction over examples a loss implementation may declare: refnn's mean, or the sum.
REDUCTIONS = ("mean", "sum")


class LossImpl(Protocol):
    """What a loss's ``make_impl(config)`` returns."""

    def forward(self, A: FloatArray, Y: FloatArray, /) -> float: ...

    def backward(self) -> FloatArray: ...


class OptimizerImpl(Protocol):
    """What an optimizer's ``make_impl(config, params)`` returns."""

    def step(self, grads: Mapping[str, FloatArray], /) -> Mapping[str, FloatArray]: ...


def kit_losses() -> dict[str, type[Loss]]:
    """The registered losses that declare a kit space, by name."""
    return {n: c for n, c in components("loss").items() if getattr(c, "kit", None) is not None}


def kit_optimizers() -> dict[str, type[Optimizer]]:
    """The registered optimizers that declare a kit space, by name."""
    found = components("optimizer").items()
    return {n: c for n, c in found if getattr(c, "kit", None) is not None}


def _pick(name: object, known: Mapping[str, Any]) -> str:
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"name must be one of {sorted(known)}, got {name!r}")
    return name


@st.composite
def _loss_examples(
    draw: st.DrawFn, space: LossSpace, dt: np.dtype[Any]
) -> tuple[bool, FloatArray, FloatArray]:
    k = draw(st.integers(2, 4)) if space.classes else draw(rs.sizes(3))
    m, soft = draw(rs.sizes(4)), space.targets == "labels" and draw(st.booleans())
    if space.targets == "tokens":  # logits k x T x m, one class index per step and example
        T = draw(rs.sizes(3))
        tokens = draw(hnp.arrays(np.intp, (T, m), elements=st.integers(0, k - 1)))
        return False, draw(rs.arrays((k, T, m), dtype=dt, bound=8.0)), tokens
    if space.predictions == "logits":
        A = draw(rs.arrays((k, m), dtype=dt, bound=8.0))
    elif space.predictions == "distributions":
        A = draw(rs.class_probabilities(k, m)).astype(dt)
    else:
        A = draw(rs.probabilities((k, m), dtype=dt))
    if space.targets == "real":
        Y = draw(rs.arrays((k, m), dtype=dt, bound=8.0))
    elif space.classes:
        Y = draw(rs.class_probabilities(k, m) if soft else rs.one_hot(k, m))
    else:
        Y = draw(rs.probabilities((k, m), margin=0.0) if soft else rs.binary_labels((k, m)))
    return soft, A, Y.astype(dt)


def check_loss(
    name: str,
    make_impl: Callable[[dict[str, Any]], LossImpl],
    *,
    layout: str = "batch_last",
    dtype: DTypeLike = np.float64,
    max_examples: int | None = None,
    seed: int | None = None,
    conventions: Mapping[str, str] | None = None,
    tolerance: float | None = None,
    forward_only: bool = False,
    time_limit: float | None = TIME_LIMIT,
) -> None:
    """Check a loss implementation's cost and dA against refnn's loss ``name``.

    Parameters
    ----------
    name : str
        A registered loss with a kit space: "BinaryCrossEntropy",
        "BinaryCrossEntropyWithLogits", "CrossEntropy", "SoftmaxCrossEntropy", ...
    make_impl : callable
        ``make_impl(config)`` (refnn's ``config()``: ``soft_labels``, ``dtype``) returns an
        object with ``forward(A, Y) -> cost`` and ``backward() -> dA``. refnn's J = (1/m) Σ L:
        the 1/m is in the cost and in dA (NOTE-COST).
    conventions : dict, optional
        ``{"reduction": "sum"}`` for a loss summed over the examples (J = Σ L, dA without the
        1/m); refnn's is "mean".
    layout, dtype, max_examples, seed, tolerance, forward_only, time_limit
        As for :func:`check_layer`; A and Y are k x m (any other layout: m x k).

    Notes
    -----
    Spec: TEST-LOSS
    """
    __tracebackhide__ = True
    losses = kit_losses()
    cls = losses[_pick(name, losses)]
    space = cls.kit
    assert space is not None
    dt, chosen = check_dtype(dtype), check_layout(layout)
    if not callable(make_impl):
        raise TypeError(f"make_impl must be callable, got {type(make_impl).__name__}")
    declared = check_conventions(conventions, {"reduction": REDUCTIONS}, name)
    allowed = check_tolerance(tolerance)
    worker = Worker(check_time_limit(time_limit))
    specs_J, specs_dA = cls.specs.get("J", ()), cls.specs.get("dA", ())

    def findings(
        drawn: tuple[bool, FloatArray, FloatArray], reduction: str
    ) -> tuple[list[tuple[str, str]], Example]:
        soft, A, Y = drawn
        A64, Y64 = A.astype(F64), (Y if Y.dtype.kind in "iu" else Y.astype(F64))
        if space.classes and soft:  # float32 labels sum to 1 within float32's rounding only
            Y64 /= Y64.sum(axis=0, keepdims=True)
        ref = cls(soft_labels=soft) if space.targets == "labels" else cls()
        scale = float(A.shape[-1]) if reduction == "sum" else 1.0
        cost, dA = ref.forward(A64, Y64) * scale, ref.backward() * scale
        config = ref.config() | {"dtype": dt.name}
        Ag, Yg = convert(A, chosen), convert(Y, chosen)
        rerun = "impl = make_impl(config); cost = impl.forward(A, Y)"
        rerun += "" if forward_only else "; dA = impl.backward()"
        given = {"A": Ag, "Y": Yg}
        example = Example("loss", name, config, {"A": A.shape, "Y": Y.shape}, chosen, given, rerun)
        M_cost, M_dA = space.terms(A64, Y64)
        text = "the size of the terms behind it (TEST-TOL-TERMS)"
        impl = call(example, "constructor (make_impl)", lambda: make_impl(dict(config)))
        got: object = worker.run(example, "forward", lambda: impl.forward(Ag, Yg))
        out: list[tuple[str, str]] = []
        if not np.array_equal(Ag, convert(A, chosen)) or not np.array_equal(Yg, convert(Y, chosen)):
            out.append(("A", "  the implementation's forward wrote into the A or Y it was given"))
        if isinstance(got, np.ndarray) and got.size == 1:
            got = got.reshape(())
        K = A.size + A.shape[0] + 2
        found = judge(
            "cost",
            got,
            np.asarray(cost),
            K=K,
            M=M_cost * scale,
            scale_text=text,
            dtype=dt,
            allowed=allowed,
        )
        if found:
            out.append(("cost", found))
        if forward_only:
            return out, example
        got_dA = worker.run(example, "backward", lambda: impl.backward())
        arr = back(np.asarray(got_dA), chosen) if isinstance(got_dA, np.ndarray) else got_dA
        found = judge(
            "dA",
            arr,
            dA,
            K=A.shape[0] + 2,
            M=M_dA * scale,
            scale_text=text,
            dtype=dt,
            allowed=allowed,
        )
        if found:
            out.append(("dA", found))
        return out, example

    def body(drawn: tuple[bool, FloatArray, FloatArray]) -> None:
        out, example = findings(drawn, declared["reduction"])
        if not out:
            return
        diagnosis = ""
        for other in REDUCTIONS:
            if other != declared["reduction"] and not findings(drawn, other)[0]:
                diagnosis = (
                    f"\n  diagnosis: the implementation {'sums' if other == 'sum' else 'averages'}"
                    f" over the examples (reduction={other!r}; refnn's J = (1/m) Σ L averages, "
                    f"NOTE-COST); if that is intended, declare "
                    f"conventions={{'reduction': {other!r}}}"
                )
        ids = {"cost": specs_J, "dA": specs_dA}
        heads = [
            f"{q} disagrees with refnn" + (f" (spec {', '.join(ids[q])})" if q in ids else "")
            for q, _ in out
        ]
        details = "\n".join(
            f"  {h}:\n{textwrap.indent(t, '  ')}" for h, (_, t) in zip(heads, out, strict=True)
        )
        raise MismatchError(
            f"{name}: {'; '.join(heads)}\n{example.describe()}\n{details}{diagnosis}"
            f"{example.snippet()}"
        )

    notes = [chosen, dt.name] + (["reduction=sum"] if declared["reduction"] == "sum" else [])
    run_examples(
        "loss",
        name,
        ", ".join(notes),
        (*specs_J, *specs_dA),
        _loss_examples(space, dt),
        body,
        max_examples=max_examples,
        seed=seed,
        worker=worker,
    )


class _Holder:
    """The parameters and gradients of an optimizer check, as refnn's optimizers see a model."""

    def __init__(self, params: dict[str, FloatArray]) -> None:
        self.params = params
        self.grads: dict[str, FloatArray] = {}

    def parameters(self) -> list[Parameter]:
        return [Parameter(k, v, self.grads[k]) for k, v in self.params.items()]


Steps = list[dict[str, FloatArray]]


@st.composite
def _optim_examples(
    draw: st.DrawFn, space: OptimizerSpace, dt: np.dtype[Any]
) -> tuple[dict[str, float], dict[str, FloatArray], Steps]:
    a, b, k = draw(rs.sizes(3)), draw(rs.sizes(3)), draw(rs.sizes(4))
    shapes = {"W": (a, b), "b": (a, 1)}
    params = {key: draw(rs.arrays(s, dtype=dt, bound=2.0)) for key, s in shapes.items()}
    grads = [
        {key: draw(rs.arrays(s, dtype=dt, bound=2.0)) for key, s in shapes.items()}
        for _ in range(k)
    ]
    config: dict[str, float] = {}
    for key, rule in space.hyper.items():
        config[key] = (
            draw(st.sampled_from(rule.values))
            if isinstance(rule, Choice)
            else draw(st.floats(*rule))
        )
    return config, params, grads


def optimizer_run(
    cls: type[Optimizer],
    config: Mapping[str, float],
    params: dict[str, FloatArray],
    steps: Steps,
) -> Steps:
    """refnn's parameters after each step, in float64."""
    holder = _Holder({k: v.astype(F64) for k, v in params.items()})
    opt = cls(**config)
    out: Steps = []
    for grads in steps:
        holder.grads = {k: g.astype(F64) for k, g in grads.items()}
        opt.step(holder)
        out.append({k: v.copy() for k, v in holder.params.items()})
    return out


def _declared_run(
    cls: type[Optimizer],
    declared: Mapping[str, str],
    defaults: Mapping[str, str],
    config: Mapping[str, float],
    params: dict[str, FloatArray],
    steps: Steps,
) -> Steps:
    """The parameters after each step under the declared conventions (refnn's if none)."""
    chosen = [f"{k}={v}" for k, v in declared.items() if v != defaults[k]]
    if not chosen:
        return optimizer_run(cls, config, params, steps)
    return VARIANTS[chosen[0]][1](config, params, steps)


def check_optimizer(
    name: str,
    make_impl: Callable[[dict[str, Any], dict[str, FloatArray]], OptimizerImpl],
    *,
    dtype: DTypeLike = np.float64,
    max_examples: int | None = None,
    seed: int | None = None,
    conventions: Mapping[str, str] | None = None,
    tolerance: float | None = None,
    time_limit: float | None = TIME_LIMIT,
) -> None:
    """Check an optimizer's parameters after k steps from given gradients against refnn's.

    Parameters
    ----------
    name : str
        A registered optimizer with a kit space: "GradientDescent" (lr), "Momentum" (lr, beta),
        "Adam" (lr, beta1, beta2, eps), ...
    make_impl : callable
        ``make_impl(config, params)`` returns an object whose ``step(grads)`` applies one update
        and returns the parameters after it (keyed like ``params``). refnn's conventions:
        momentum v = β v + (1 - β) g, θ -= α v; Adam θ -= α m̂ / (sqrt(v̂) + ε).
    conventions : dict, optional
        The form the implementation follows where the optimizer declares others:
        ``{"momentum": "pytorch"}`` (v := β v + g), ``{"eps": "inside"}`` (sqrt(v̂ + ε)),
        ``{"eps": "before-correction"}``, ``{"bias": "none"}``; the check then holds it to that.
    dtype, max_examples, seed, tolerance, time_limit
        As for :func:`check_layer`.

    Raises
    ------
    MismatchError
        Naming the step and parameter that disagree first, and, when the implementation matches
        a known other convention (PyTorch's momentum, ε inside the square root, ...), which one.

    Notes
    -----
    Spec: TEST-OPTIM
    """
    __tracebackhide__ = True
    optimizers = kit_optimizers()
    cls = optimizers[_pick(name, optimizers)]
    space = cls.kit
    assert space is not None
    specs = space.specs
    dt = check_dtype(dtype)
    if not callable(make_impl):
        raise TypeError(f"make_impl must be callable, got {type(make_impl).__name__}")
    known = dict(space.conventions)
    declared = check_conventions(conventions, known, name)
    defaults = {k: v[0] for k, v in known.items()}
    if sum(v != defaults[k] for k, v in declared.items()) > 1:
        raise ValueError(f"declare at most one convention other than refnn's, got {declared}")
    allowed = check_tolerance(tolerance)
    worker = Worker(check_time_limit(time_limit))

    def body(drawn: tuple[dict[str, float], dict[str, FloatArray], Steps]) -> None:
        config, params, steps = drawn
        ref = _declared_run(cls, declared, defaults, config, params, steps)
        size = optimizer_run(
            cls, config, params, [{k: np.abs(g) for k, g in s.items()} for s in steps]
        )
        full = dict(config) | {"dtype": dt.name}
        example = Example("optimizer", name, full, {k: v.shape for k, v in params.items()}, "", {})
        impl = call(
            example,
            "constructor (make_impl)",
            lambda: make_impl(dict(full), {k: v.copy() for k, v in params.items()}),
        )
        history: Steps = []
        for t, grads in enumerate(steps, start=1):
            given = {k: g.copy() for k, g in grads.items()}
            got = worker.run(example, f"step {t}", lambda g=given: impl.step(g))  # type: ignore[misc]
            if not isinstance(got, Mapping):
                raise MismatchError(
                    f"{name}: step {t} must return the parameters as a dict, got "
                    f"{type(got).__name__}\n{example.describe()}"
                )
            history.append({k: np.asarray(got.get(k), dtype=F64) for k in params})
            for key in params:
                M = np.abs(params[key].astype(F64)) + sum(
                    np.abs(s[key] - params[key]) for s in size
                )
                q = f"{key} (after step {t} of {len(steps)})"
                found = judge(
                    q,
                    got.get(key),
                    ref[t - 1][key],
                    K=10 * t,
                    M=M,
                    scale_text="|θ_0| + Σ_t |Δθ_t| from refnn on |g| (TEST-TOL-ABS)",
                    dtype=dt,
                    allowed=allowed,
                )
                if found:
                    raise MismatchError(
                        f"{name}: {q} disagrees with refnn (spec {specs[-1]})\n"
                        f"{example.describe()}\n{found}"
                        f"{diagnose(known, declared, config, params, steps, history, dt)}"
                    )

    notes = [dt.name] + [f"{k}={v}" for k, v in declared.items() if v != defaults[k]]
    run_examples(
        "optimizer",
        name,
        ", ".join(notes),
        specs,
        _optim_examples(space, dt),
        body,
        max_examples=max_examples,
        seed=seed,
        worker=worker,
    )


def diagnose(
    known: Mapping[str, tuple[str, ...]],
    declared: Mapping[str, str],
    config: Mapping[str, float],
    params: dict[str, FloatArray],
    steps: Steps,
    history: Steps,
    dt: np.dtype[Any],
) -> str:
    """Name the known other convention the implementation's history matches, if any."""
    u = float(np.finfo(dt).eps)
    keys = ["ascent", *(f"{k}={v}" for k, vs in known.items() for v in vs[1:])]
    declared_keys = {f"{k}={v}" for k, v in declared.items()}
    for key in keys:
        if key in declared_keys:
            continue
        description, variant = VARIANTS[key]
        theirs = variant(config, params, steps[: len(history)])
        if all(
            np.allclose(h[k], v[k], rtol=1e3 * u, atol=1e3 * u)
            for h, v in zip(history, theirs, strict=True)
            for k in h
        ):
            ck, _, cv = key.partition("=")
            hint = (
                "" if key == "ascent" else f"; if intended, declare conventions={{{ck!r}: {cv!r}}}"
            )
            return f"\n  diagnosis: the implementation follows {description}{hint}"
    return "\n  diagnosis: it matches none of the known other conventions"
