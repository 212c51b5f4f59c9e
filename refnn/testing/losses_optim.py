"""check_loss and check_optimizer: losses and optimizers against refnn's (TEST-LOSS, TEST-OPTIM).

A loss under test is built by ``make_impl(config)`` and has ``forward(A, Y) -> cost`` and
``backward() -> dA``; an optimizer under test is built by ``make_impl(config, params)`` and has
``step(grads) -> params`` (the parameters after the step, keyed like ``params``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from hypothesis import strategies as st

from refnn import (
    Adam,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    GradientDescent,
    Loss,
    Momentum,
    Optimizer,
    Parameter,
    SoftmaxCrossEntropy,
)
from refnn.testing import strategies as rs
from refnn.testing._layouts import Layout, back, convert
from refnn.testing._run import calling, check_dtype, check_layout, check_name, run_examples
from refnn.testing._tolerance import Example, MismatchError, compare
from refnn.testing._variants import VARIANTS
from refnn.types import DTypeLike, FloatArray

F64 = np.dtype(np.float64)


class LossImpl(Protocol):
    """What a loss's ``make_impl(config)`` returns."""

    def forward(self, A: FloatArray, Y: FloatArray, /) -> float: ...

    def backward(self) -> FloatArray: ...


class OptimizerImpl(Protocol):
    """What an optimizer's ``make_impl(config, params)`` returns."""

    def step(self, grads: Mapping[str, FloatArray], /) -> Mapping[str, FloatArray]: ...


@dataclass(frozen=True)
class LossCase:
    make: Callable[..., Loss]
    specs: tuple[str, str]
    logits: bool
    classes: bool


LOSSES: dict[str, LossCase] = {
    "BinaryCrossEntropy": LossCase(BinaryCrossEntropy, ("BCE-COST", "BCE-GRAD"), False, False),
    "BinaryCrossEntropyWithLogits": LossCase(
        BinaryCrossEntropyWithLogits, ("BCE-LOGITS-COST", "BCE-LOGITS-GRAD"), True, False
    ),
    "CrossEntropy": LossCase(CrossEntropy, ("CE-COST", "CE-GRAD"), False, True),
    "SoftmaxCrossEntropy": LossCase(
        SoftmaxCrossEntropy, ("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD"), True, True
    ),
}


@st.composite
def _loss_examples(
    draw: st.DrawFn, case: LossCase, dt: np.dtype[Any]
) -> tuple[bool, FloatArray, FloatArray]:
    k = draw(st.integers(2, 4)) if case.classes else draw(rs.sizes(3))
    m, soft = draw(rs.sizes(4)), draw(st.booleans())
    if case.logits:
        A = draw(rs.arrays((k, m), dtype=dt, bound=8.0))
    elif case.classes:
        A = draw(rs.class_probabilities(k, m)).astype(dt)
    else:
        A = draw(rs.probabilities((k, m), dtype=dt))
    if case.classes:
        Y = draw(rs.class_probabilities(k, m) if soft else rs.one_hot(k, m))
    else:
        Y = draw(rs.probabilities((k, m), margin=0.0) if soft else rs.binary_labels((k, m)))
    return soft, A, Y.astype(dt)


def loss_scales(name: str, A: FloatArray, Y: FloatArray) -> tuple[float, FloatArray]:
    """TEST-TOL-TERMS for losses: the size of the terms of the cost and of dA (1/m included)."""
    m = A.shape[1]
    if name == "BinaryCrossEntropy":
        terms = np.abs(Y * np.log(A)) + np.abs((1 - Y) * np.log1p(-A))
        return float(terms.sum()) / m, (np.abs(Y) / A + np.abs(1 - Y) / (1 - A)) / m
    if name == "CrossEntropy":
        return float(np.abs(Y * np.log(A)).sum()) / m, np.abs(Y) / A / m
    big = np.abs(A).max(axis=0, keepdims=True)
    terms = np.abs(Y) * (np.abs(A) + big + np.log(A.shape[0]) + 1) + np.abs(A) + 1
    return float(terms.sum()) / m, (1 + np.abs(Y) + big) / m


def check_loss(
    name: str,
    make_impl: Callable[[dict[str, Any]], LossImpl],
    *,
    layout: Layout = "batch_last",
    dtype: DTypeLike = np.float64,
    max_examples: int | None = None,
    seed: int | None = None,
) -> None:
    """Check a loss implementation's cost and dA against refnn's loss ``name``.

    Parameters
    ----------
    name : str
        "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits", "CrossEntropy" or
        "SoftmaxCrossEntropy".
    make_impl : callable
        ``make_impl(config)`` (refnn's ``config()``: ``soft_labels``, ``dtype``) returns an
        object with ``forward(A, Y) -> cost`` and ``backward() -> dA``. J = (1/m) Σ L: the 1/m is
        in the cost and in dA (NOTE-COST).
    layout, dtype, max_examples, seed
        As for :func:`check_layer`; A and Y are k x m (batch_first: m x k).

    Notes
    -----
    Spec: TEST-LOSS
    """
    case = LOSSES[check_name(name, LOSSES, "name")]
    dt, chosen = check_dtype(dtype), check_layout(layout)

    def body(drawn: tuple[bool, FloatArray, FloatArray]) -> None:
        soft, A, Y = drawn
        A64, Y64 = A.astype(F64), Y.astype(F64)
        if case.classes and soft:  # float32 labels sum to 1 within float32's rounding only
            Y64 /= Y64.sum(axis=0, keepdims=True)
        ref = case.make(soft_labels=soft)
        cost, dA = ref.forward(A64, Y64), ref.backward()
        config = ref.config() | {"dtype": dt.name}
        example = Example("loss", name, config, {"A": A.shape, "Y": Y.shape}, chosen)
        M_cost, M_dA = loss_scales(name, A64, Y64)
        text = "the size of the terms behind it (TEST-TOL-TERMS)"
        with calling(example, "constructor (make_impl)"):
            impl = make_impl(dict(config))
        with calling(example, "forward"):
            got = impl.forward(convert(A, chosen), convert(Y, chosen))  # type: ignore[arg-type]
        K = A.size + A.shape[0] + 2
        compare(
            example,
            "cost",
            case.specs[0],
            got,
            np.asarray(cost),
            K=K,
            M=M_cost,
            scale_text=text,
            dtype=dt,
        )
        with calling(example, "backward"):
            got_dA = back(np.asarray(impl.backward()), chosen)  # type: ignore[arg-type]
        compare(
            example,
            "dA",
            case.specs[1],
            got_dA,
            dA,
            K=A.shape[0] + 2,
            M=M_dA,
            scale_text=text,
            dtype=dt,
        )

    run_examples(
        "loss",
        name,
        f"{chosen}, {dt.name}",
        case.specs,
        _loss_examples(case, dt),
        body,
        max_examples=max_examples,
        seed=seed,
    )


class _Holder:
    """The parameters and gradients of an optimizer check, as refnn's optimizers see a model."""

    def __init__(self, params: dict[str, FloatArray]) -> None:
        self.params = params
        self.grads: dict[str, FloatArray] = {}

    def parameters(self) -> list[Parameter]:
        return [Parameter(k, v, self.grads[k]) for k, v in self.params.items()]


OPTIMIZERS: dict[str, tuple[Callable[..., Optimizer], tuple[str, ...]]] = {
    "GradientDescent": (GradientDescent, ("OPT-GD",)),
    "Momentum": (Momentum, ("OPT-MOMENTUM",)),
    "Adam": (Adam, ("ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")),
}

Steps = list[dict[str, FloatArray]]


@st.composite
def _optim_examples(
    draw: st.DrawFn, name: str, dt: np.dtype[Any]
) -> tuple[dict[str, float], dict[str, FloatArray], Steps]:
    a, b, k = draw(rs.sizes(3)), draw(rs.sizes(3)), draw(rs.sizes(4))
    shapes = {"W": (a, b), "b": (a, 1)}
    params = {key: draw(rs.arrays(s, dtype=dt, bound=2.0)) for key, s in shapes.items()}
    grads = [
        {key: draw(rs.arrays(s, dtype=dt, bound=2.0)) for key, s in shapes.items()}
        for _ in range(k)
    ]
    config = {"lr": draw(st.floats(1e-3, 1.0))}
    if name == "Momentum":
        config["beta"] = draw(st.floats(0.0, 0.99))
    if name == "Adam":
        config |= {"beta1": draw(st.floats(0.0, 0.99)), "beta2": draw(st.floats(0.0, 0.999))}
        config["eps"] = draw(st.sampled_from([1e-8, 1e-4, 1e-2, 1.0]))
    return config, params, grads


def optimizer_run(
    name: str, config: Mapping[str, float], params: dict[str, FloatArray], steps: Steps
) -> Steps:
    """refnn's parameters after each step, in float64."""
    holder = _Holder({k: v.astype(F64) for k, v in params.items()})
    opt = OPTIMIZERS[name][0](**config)
    out: Steps = []
    for grads in steps:
        holder.grads = {k: g.astype(F64) for k, g in grads.items()}
        opt.step(holder)
        out.append({k: v.copy() for k, v in holder.params.items()})
    return out


def check_optimizer(
    name: str,
    make_impl: Callable[[dict[str, Any], dict[str, FloatArray]], OptimizerImpl],
    *,
    dtype: DTypeLike = np.float64,
    max_examples: int | None = None,
    seed: int | None = None,
) -> None:
    """Check an optimizer's parameters after k steps from given gradients against refnn's.

    Parameters
    ----------
    name : str
        "GradientDescent" (lr), "Momentum" (lr, beta), "Adam" (lr, beta1, beta2, eps).
    make_impl : callable
        ``make_impl(config, params)`` returns an object whose ``step(grads)`` applies one update
        and returns the parameters after it (keyed like ``params``). refnn's conventions:
        momentum v = β v + (1 - β) g, θ -= α v; Adam θ -= α m̂ / (sqrt(v̂) + ε).
    dtype, max_examples, seed
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
    _, specs = OPTIMIZERS[check_name(name, OPTIMIZERS, "name")]
    dt = check_dtype(dtype)

    def body(drawn: tuple[dict[str, float], dict[str, FloatArray], Steps]) -> None:
        config, params, steps = drawn
        ref = optimizer_run(name, config, params, steps)
        size = optimizer_run(
            name, config, params, [{k: np.abs(g) for k, g in s.items()} for s in steps]
        )
        full = dict(config) | {"dtype": dt.name}
        example = Example("optimizer", name, full, {k: v.shape for k, v in params.items()}, "")
        with calling(example, "constructor (make_impl)"):
            impl = make_impl(dict(full), {k: v.copy() for k, v in params.items()})
        history: Steps = []
        for t, grads in enumerate(steps, start=1):
            with calling(example, f"step {t}"):
                got = impl.step({k: g.copy() for k, g in grads.items()})
            history.append({k: np.asarray(got.get(k), dtype=F64) for k in params})
            for key in params:
                M = np.abs(params[key].astype(F64)) + sum(
                    np.abs(s[key] - params[key]) for s in size
                )
                try:
                    compare(
                        example,
                        f"{key} (after step {t} of {len(steps)})",
                        specs[-1],
                        got.get(key),
                        ref[t - 1][key],
                        K=10 * t,
                        M=M,
                        scale_text="|θ_0| + Σ_t |Δθ_t| from refnn on |g| (TEST-TOL-ABS)",
                        dtype=dt,
                    )
                except MismatchError as err:
                    raise MismatchError(
                        f"{err}{diagnose(name, config, params, steps, history, dt)}"
                    ) from None

    run_examples(
        "optimizer",
        name,
        dt.name,
        specs,
        _optim_examples(name, dt),
        body,
        max_examples=max_examples,
        seed=seed,
    )


def diagnose(
    name: str,
    config: Mapping[str, float],
    params: dict[str, FloatArray],
    steps: Steps,
    history: Steps,
    dt: np.dtype[Any],
) -> str:
    """Name the known other convention the implementation's history matches, if any."""
    u = float(np.finfo(dt).eps)
    for description, variant in VARIANTS.get(name, ()):
        theirs = variant(config, params, steps[: len(history)])
        if all(
            np.allclose(h[k], v[k], rtol=1e3 * u, atol=1e3 * u)
            for h, v in zip(history, theirs, strict=True)
            for k in h
        ):
            return f"\n  diagnosis: the implementation follows {description}"
    return "\n  diagnosis: it matches none of the known other conventions of " + name
