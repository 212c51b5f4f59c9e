"""The adversarial corpus of issue 10: families of correct and wrong gradients where a checker
can lie, each at several sizes, seeds and dtypes. Zero wrong gradients may pass (an undecidable
one must say inconclusive), zero correct ones may fail, nothing may crash.

``corpus()`` is also what ``benchmarks/gradcheck_vs_torch.py`` runs through PyTorch's checker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from refnn.gradcheck import check_grad

Arr = npt.NDArray[Any]


@dataclass(frozen=True)
class Case:
    """A scalar f of named arrays, a claimed gradient, and whether the claim is right."""

    family: str
    name: str
    f: Callable[..., Any]
    grad: Callable[..., Sequence[Arr]]
    inputs: dict[str, Arr]
    right: bool
    options: dict[str, Any] = field(default_factory=dict)


def _times(g: Callable[..., Sequence[Arr]], k: float) -> Callable[..., list[Arr]]:
    """The gradient ``g`` scaled by ``k`` (a wrong gradient unless k = 1)."""

    def scaled(*args: Arr) -> list[Arr]:
        return [k * v for v in g(*args)]

    return scaled


def _cancelling(n: int, scale: float, seed: int) -> list[Case]:
    """1. terms that cancel: sum(x - mean(x)) and a summed layer normalisation; gradient 0."""
    x = scale * np.random.default_rng(seed).standard_normal(n)

    def f(x: Arr) -> float:
        return float(np.sum(x - np.mean(x)))

    zero = lambda x: [np.zeros_like(x)]  # noqa: E731
    ones = lambda x: [np.ones_like(x)]  # noqa: E731
    name = f"sum(x - mean x) n={n} scale={scale:g}"
    right = Case("cancel", name, f, zero, {"x": x}, True)
    if n > 2000:  # a wrong gradient this large falls back to 4 evaluations per element: slow
        return [right]
    return [right, Case("cancel", name + " grad 1", f, ones, {"x": x}, False)]


def _layer_norm_sum(rows: int, cols: int, seed: int) -> list[Case]:
    x = np.random.default_rng(seed).standard_normal((rows, cols))

    def f(x: Arr) -> float:
        xhat = (x - x.mean(0, keepdims=True)) / np.sqrt(x.var(0, keepdims=True) + 1e-5)
        return float(np.sum(xhat))

    name = f"sum(layer_norm(x)) {rows}x{cols}"
    return [
        Case("cancel", name, f, lambda x: [np.zeros_like(x)], {"x": x}, True),
        Case("cancel", name + " grad x", f, lambda x: [x.copy()], {"x": x}, False),
    ]


def _near_kink(d: float, kind: str, seed: int) -> list[Case]:
    """2. a point within one step of a kink, judged on its own side."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([[-d], rng.uniform(0.2, 1.0, 3) * rng.choice([-1.0, 1.0], 3)])
    w = rng.uniform(0.5, 2.0, x.size)
    if kind == "relu":
        f = lambda x: float(np.sum(w * np.maximum(x, 0.0)))  # noqa: E731
        right = lambda x: [w * (x > 0)]  # noqa: E731
        wrong = lambda x: [w * (x > -1e-5)]  # noqa: E731
    else:  # |x|: the sign flips within the step
        f = lambda x: float(np.sum(w * np.abs(x)))  # noqa: E731
        right = lambda x: [w * np.sign(x)]  # noqa: E731
        wrong = lambda x: [w * np.where(x > -1e-5, 1.0, -1.0)]  # noqa: E731
    name = f"{kind} at -{d:g}"
    other = name + " other side's derivative"
    return [
        Case("near kink", name, f, right, {"x": x}, True),
        Case("near kink", other, f, wrong, {"x": x}, False),
    ]


def _below_step(c: float, n: int, seed: int) -> list[Case]:
    """3. f varying on a scale c below the step: c sum(tanh(x / c)) at x ~ c."""
    x = c * np.random.default_rng(seed).uniform(-2.0, 2.0, n)

    def f(x: Arr) -> float:
        return float(c * np.sum(np.tanh(x / c)))

    def g(x: Arr) -> list[Arr]:
        return [1.0 / np.cosh(x / c) ** 2]

    name = f"c tanh(x/c) c={c:g} n={n}"
    return [
        Case("below step", name, f, g, {"x": x}, True),
        Case("below step", name + " grad 0", f, lambda x: [np.zeros_like(x)], {"x": x}, False),
        Case("below step", name + " grad halved", f, lambda x: [0.5 * g(x)[0]], {"x": x}, False),
    ]


def _float32(seed: int, shape: tuple[int, int, int]) -> list[Case]:
    """4. float32 functions, right and wrong by 1%."""
    k, n, m = shape
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((k, n)).astype(np.float32)
    X = rng.standard_normal((n, m)).astype(np.float32)

    def f(W: Arr, X: Arr) -> np.float32:
        return np.sum(np.tanh(W @ X) ** 2, dtype=np.float32)

    def g(W: Arr, X: Arr, scale: float = 1.0) -> list[Arr]:
        A = np.tanh(W @ X)
        dZ = 2 * A * (1 - A) * (1 + A)
        return [np.float32(scale) * (dZ @ X.T), W.T @ dZ]

    opts = {"allow_float32": True}
    name = f"float32 sum(tanh(W X)^2) {k}x{n}x{m} seed {seed}"
    return [
        Case("float32", name, f, g, {"W": W, "X": X}, True, opts),
        Case(
            "float32",
            name + " dW 1% off",
            f,
            lambda W, X: g(W, X, 1.01),
            {"W": W, "X": X},
            False,
            opts,
        ),
    ]


def _domain_edge(x0: float, kind: str) -> list[Case]:
    """5. inputs next to the edge of f's domain (x - h outside it)."""
    x = np.array([x0, 0.5, 2.0])
    if kind == "log":
        f = lambda x: float(np.sum(np.log(x)))  # noqa: E731
        g = lambda x: [1.0 / x]  # noqa: E731
    else:
        f = lambda x: float(np.sum(np.sqrt(x)))  # noqa: E731
        g = lambda x: [0.5 / np.sqrt(x)]  # noqa: E731
    name = f"{kind} at {x0:g}"
    return [
        Case("domain edge", name, f, g, {"x": x}, True),
        Case("domain edge", name + " 1% off", f, _times(g, 1.01), {"x": x}, False),
    ]


def _taylor_kinks(seed: int, kind: str) -> list[Case]:
    """6. taylor=True with kinks beyond the elementwise step but inside the Taylor sweep."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(3e-5, 3e-2, 24) * rng.choice([-1.0, 1.0], 24)
    w = rng.standard_normal(24)
    if kind == "relu":
        f = lambda x: float(np.sum(w * np.maximum(x, 0.0)))  # noqa: E731
        g = lambda x: [w * (x > 0)]  # noqa: E731
    else:  # max-pool over windows of 4, windows apart by more than the step
        x = np.sort(x).reshape(6, 4) + np.arange(6)[:, None]
        w = w[:6]

        def f(x: Arr) -> float:
            return float(np.sum(w * np.max(x, axis=1)))

        def g(x: Arr) -> list[Arr]:
            out = np.zeros_like(x)
            out[np.arange(6), np.argmax(x, axis=1)] = w
            return [out]

    opts = {"taylor": True, "seed": seed}
    name = f"{kind} with kinks at 3e-5..3e-2, taylor=True, seed {seed}"
    return [
        Case("taylor kinks", name, f, g, {"x": x}, True, opts),
        Case("taylor kinks", name + " 1% off", f, _times(g, 1.01), {"x": x}, False, opts),
    ]


def _taylor_domain() -> list[Case]:
    x = np.array([0.02, 0.5, 0.9])
    f = lambda x: float(np.sum(np.log(x)))  # noqa: E731
    opts = {"taylor": True}
    return [
        Case("taylor kinks", "log at 0.02, taylor=True", f, lambda x: [1 / x], {"x": x}, True, opts)
    ]


def _ties(seed: int) -> list[Case]:
    """8. exact ties of a max: judged only off the tie (a choice among one-sided derivatives)."""
    values = np.random.default_rng(seed).choice([-1.0, 0.0, 0.5], 5)
    X = np.tile(values[:, None], (1, 3))

    def f(X: Arr) -> float:
        return float(np.sum(np.max(X, axis=0) ** 2))

    def g(X: Arr, scale: float = 1.0) -> list[Arr]:
        out = np.zeros_like(X)
        rows = np.argmax(X, axis=0)
        out[rows, np.arange(3)] = 2 * scale * X[rows, np.arange(3)]
        return [out]

    name = f"max over tied columns seed {seed}"
    right = np.max(values) != 0.0  # a wrong scale of a zero gradient is not wrong
    return [
        Case("ties", name, f, g, {"X": X}, True),
        Case("ties", name + " gradient x1.5", f, lambda X: g(X, 1.5), {"X": X}, not right),
    ]


def _scales(scale: float, seed: int) -> list[Case]:
    """9. large and small magnitudes: x and f over 10 orders of magnitude."""
    x = scale * np.random.default_rng(seed).uniform(0.5, 2.0, 6)
    f = lambda x: float(np.sum(x**3) / scale**2)  # noqa: E731
    g = lambda x: [3 * x**2 / scale**2]  # noqa: E731
    name = f"sum(x^3) / scale^2 at scale {scale:g}"
    return [
        Case("scales", name, f, g, {"x": x}, True),
        Case("scales", name + " 0.1% off", f, _times(g, 1.001), {"x": x}, False),
    ]


def _mixed(seed: int) -> list[Case]:
    """10. derivatives over 8 orders of magnitude in one input; the smallest wrong by 10%."""
    rng = np.random.default_rng(seed)
    c = 10.0 ** -np.arange(0, 8, dtype=np.float64)
    x = rng.uniform(-1.0, 1.0, 8)
    f = lambda x: float(np.sum(c * np.sin(x)))  # noqa: E731
    g = lambda x: [c * np.cos(x)]  # noqa: E731

    def wrong(x: Arr) -> list[Arr]:
        out = c * np.cos(x)
        out[-1] *= 1.1
        return [out]

    name = f"sum(c sin x), c = 1 .. 1e-7, seed {seed}"
    return [
        Case("mixed scales", name, f, g, {"x": x}, True),
        Case("mixed scales", name + " smallest 10% off", f, wrong, {"x": x}, False),
    ]


def corpus() -> list[Case]:
    """Every case of every family."""
    cases: list[Case] = []
    for n, scale, seed in [
        (10, 1.0, 0),
        (300, 1.0, 1),
        (200, 10.0, 2),
        (1000, 100.0, 3),
        (3000, 10.0, 4),
        (10_000, 1.0, 5),
    ]:
        cases += _cancelling(n, scale, seed)
    cases += _layer_norm_sum(32, 8, 0) + _layer_norm_sum(5, 3, 1)
    for d in (5e-6, 1e-6, 2e-7, 3e-9):
        cases += _near_kink(d, "relu", 0) + _near_kink(d, "abs", 1)
    for c, n in [(1e-8, 1), (1e-8, 5), (1e-7, 20), (3e-7, 8)]:
        cases += _below_step(c, n, n)
    for seed in range(10):
        cases += _float32(seed, [(3, 4, 6), (8, 8, 8)][seed % 2])
    for x0 in (5e-6, 1e-7, 3e-10):
        cases += _domain_edge(x0, "log") + _domain_edge(x0, "sqrt")
    for seed in range(3):
        cases += _taylor_kinks(seed, "relu") + _taylor_kinks(seed, "maxpool")
    cases += _taylor_domain()
    for seed in range(4):
        cases += _ties(seed)
    for scale in (1e-6, 1.0, 1e4):
        cases += _scales(scale, 0)
    for seed in range(3):
        cases += _mixed(seed)
    return cases


CASES = corpus()


_VERDICTS: dict[int, str] = {}


def verdict(case: Case) -> str:
    """passed / WRONG / inconclusive / crashed: <error>, as refnn judges the case (cached)."""
    if id(case) not in _VERDICTS:
        _VERDICTS[id(case)] = _judge(case)
    return _VERDICTS[id(case)]


def _judge(case: Case) -> str:
    try:
        result = check_grad(case.f, case.grad, case.inputs, **case.options)
    except Exception as error:  # a crash is a finding, reported as such
        return f"crashed: {type(error).__name__}: {error}"
    if result.passed:
        return "passed"
    verdicts = {a.verdict for a in result.arrays}
    return "WRONG" if "WRONG" in verdicts or result.taylor_judged else "inconclusive"


@pytest.mark.spec("GC-TOL", "GC-NOISE", "GC-KINK", "GC-PROJ", "GC-TAYLOR")
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.family}: {c.name}")
def test_the_corpus_is_judged_right(case: Case) -> None:
    got = verdict(case)
    if case.right:
        assert got == "passed", f"false alarm on {case.name}: {got}"
    else:
        assert got in ("WRONG", "inconclusive"), f"wrong gradient passed: {case.name}: {got}"


@pytest.mark.spec("GC-KINK", "GC-NOISE")
def test_wrong_gradients_in_the_corpus_are_mostly_said_wrong_not_inconclusive() -> None:
    wrong = [verdict(c) for c in CASES if not c.right and c.family != "below step"]
    assert wrong.count("WRONG") == len(wrong), wrong
