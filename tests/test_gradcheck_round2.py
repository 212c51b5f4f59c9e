"""The adversarial corpus of issue 23: where the checker lied off well-behaved points.

Families: (1) points next to a domain edge, (2) a jump of f in one element, (3) a large input
beside a small one, (4) an f that is random now and then, (5) bounds the checker loosened,
(6) float32 at its floor, (7) f raising outside its domain, (8) wrong gradients of large
inputs, (9) loose options. Each at several sizes, seeds and magnitudes. Zero wrong gradients
may pass (an undecidable one says inconclusive, with the reason), zero right ones may be called
WRONG, nothing may crash. ``corpus()`` is also what ``benchmarks/gradcheck_vs_torch.py`` runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn.gradcheck import GradcheckResult, check_grad, check_vjp

Arr = npt.NDArray[Any]
Grad = Callable[..., Sequence[Arr]]


@dataclass(frozen=True)
class Case:
    """A check to run (scalar f and gradient, or f and VJP) and whether the claim is right."""

    family: str
    name: str
    f: Callable[..., Any]
    grad: Callable[..., Sequence[Arr]]
    inputs: dict[str, Arr]
    right: bool
    vjp: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def _times(g: Grad, k: float) -> Grad:
    def scaled(*args: Arr) -> list[Arr]:
        return [k * v for v in g(*args)]

    return scaled


# --- 1. next to a domain edge -------------------------------------------------------------------

EDGE_FUNCTIONS: dict[str, tuple[Callable[[Arr], Arr], Callable[[Arr], Arr]]] = {
    "sqrt": (np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    "log": (np.log, lambda x: 1.0 / x),
    "x^0.3": (lambda x: x**0.3, lambda x: 0.3 * x**-0.7),
    "arcsin(1-x)": (lambda x: np.arcsin(1.0 - x), lambda x: -1.0 / np.sqrt(1.0 - (1.0 - x) ** 2)),
    "arccosh(1+x)": (lambda x: np.arccosh(1.0 + x), lambda x: 1.0 / np.sqrt((1.0 + x) ** 2 - 1.0)),
    "1/x": (lambda x: 1.0 / x, lambda x: -1.0 / x**2),
}


def _edge(kind: str, x0: float, n: int) -> list[Case]:
    fun, der = EDGE_FUNCTIONS[kind]
    x = np.array([x0, 0.5, 0.25, 0.75][:n])

    def f(x: Arr) -> float:
        return float(np.sum(fun(x)))

    def g(x: Arr) -> list[Arr]:
        return [der(x)]

    name = f"{kind} at {x0:g}, n={n}"
    return [
        Case("1 domain edge", name, f, g, {"x": x}, True),
        Case("1 domain edge", name + " 1% off", f, _times(g, 1.01), {"x": x}, False),
    ]


# --- 2. a jump in one element -------------------------------------------------------------------


def _sign(n: int, seed: int) -> list[Case]:
    """sum(v sign(x)) with zeros in x: the whole gradient negated."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    x[rng.choice(n, size=max(1, n // 10), replace=False)] = 0.0
    v = rng.uniform(0.2, 1.0, n)

    def f(x: Arr, v: Arr) -> float:
        return float(np.sum(v * np.sign(x)))

    def g(x: Arr, v: Arr) -> list[Arr]:
        return [np.zeros_like(x), np.sign(x)]

    name = f"sum(v sign x) n={n} seed {seed}"
    return [
        Case("2 jump", name, f, g, {"x": x, "v": v}, True),
        Case("2 jump", name + " negated", f, _times(g, -1.0), {"x": x, "v": v}, False),
    ]


def _round(n: int, seed: int, scale: float) -> list[Case]:
    """sum(round(x_0)) + sum(c x_1..^2) at a half-integer x_0: the smooth part's sign flipped."""
    rng = np.random.default_rng(seed)
    x = scale * rng.uniform(-2.0, 2.0, n)
    x[0] = 0.5
    c = rng.uniform(0.5, 2.0, n)

    def f(x: Arr) -> float:
        return float(np.round(x[0]) + np.sum(c[1:] * x[1:] ** 2))

    def g(x: Arr, k: float = 1.0) -> list[Arr]:
        out = 2.0 * k * c * x
        out[0] = 0.0
        return [out]

    name = f"round(x0) + sum(c x^2), x0 = 0.5, n={n} scale {scale:g}"
    return [
        Case("2 jump", name, f, g, {"x": x}, True),
        Case("2 jump", name + " sign flipped", f, lambda x: g(x, -1.0), {"x": x}, False),
    ]


def _step_hessian(n: int, seed: int) -> list[Case]:
    """psi = <relu'(x), v> + sum(c x^2): what a second-order check meets at ReLU ties."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    x[rng.choice(n, size=2, replace=False)] = 0.0
    v, c = rng.standard_normal(n), rng.uniform(0.5, 2.0, n)

    def f(x: Arr) -> float:
        return float(np.sum(v * (x > 0)) + np.sum(c * x**2))

    def g(x: Arr) -> list[Arr]:
        return [2.0 * c * x]

    name = f"<relu'(x), v> + sum(c x^2), 2 ties, n={n} seed {seed}"
    return [
        Case("2 jump", name, f, g, {"x": x}, True),
        Case("2 jump", name + " 2% off", f, _times(g, 1.02), {"x": x}, False),
    ]


# --- 3. a large input beside a small one --------------------------------------------------------


def _swamp(n: int, big: float, seed: int) -> list[Case]:
    """check_vjp of G(x, v) = v 2 (x - mean x) / n at x = big + randn: d/dv 1% off."""
    rng = np.random.default_rng(seed)
    x = big + rng.standard_normal(n)
    v = np.array([0.37])

    def G(x: Arr, v: Arr) -> Arr:
        out: Arr = v * 2.0 * (x - np.mean(x)) / n
        return out

    def vjp(dy: Arr, x: Arr, v: Arr, k: float = 1.0) -> list[Arr]:
        gx = dy * 2.0 * v / n
        return [gx - np.mean(gx), np.array([k * np.sum(dy * 2.0 * (x - np.mean(x)) / n)])]

    name = f"vjp of v 2 (x - mean x) / n at x = {big:g} + randn, n={n}"
    return [
        Case("3 large beside small", name, G, vjp, {"x": x, "v": v}, True, vjp=True),
        Case(
            "3 large beside small",
            name + " d/dv 1% off",
            G,
            lambda dy, x, v: vjp(dy, x, v, 1.01),
            {"x": x, "v": v},
            False,
            vjp=True,
        ),
    ]


# --- 4. an f random now and then ----------------------------------------------------------------


def _flaky(n: int, p: float, seed: int, right: bool) -> Case:
    rng = np.random.default_rng(seed)
    x = np.random.default_rng(100 + seed).uniform(-2.0, 2.0, n)
    k = 1.0 if right else 5.0

    def f(x: Arr) -> float:
        return float(np.sum(x**3)) + (1e-3 if rng.random() < p else 0.0)

    def g(x: Arr) -> list[Arr]:
        return [3.0 * k * x**2]

    name = f"sum(x^3) + 1e-3 with probability {p:g}, n={n} seed {seed}"
    return Case("4 flaky", name + ("" if right else " grad x5"), f, g, {"x": x}, right)


def _drifting(after: int, right: bool) -> Case:
    calls = [0]
    x = np.array([0.5, -1.0, 2.0])
    k = 1.0 if right else 5.0

    def f(x: Arr) -> float:
        calls[0] += 1
        return float(np.sum(x**3)) + (1e-3 * calls[0] if calls[0] > after else 0.0)

    def g(x: Arr) -> list[Arr]:
        return [3.0 * k * x**2]

    name = f"sum(x^3) drifting after call {after}" + ("" if right else " grad x5")
    return Case("4 flaky", name, f, g, {"x": x}, right)


# --- 5. bounds the checker loosened -------------------------------------------------------------


def _loosened() -> list[Case]:
    cases: list[Case] = []
    for x0 in (1e-10, 1e-9):
        x = np.array([x0, 2.0])

        def f15(x: Arr) -> float:
            return float(np.sum(x**1.5))

        def g15(x: Arr, k: float = 1.0) -> list[Arr]:
            out = 1.5 * np.sqrt(x)
            out[0] *= k
            return [out]

        name = f"sum(x^1.5) at [{x0:g}, 2]"
        cases += [
            Case("5 loosened", name, f15, g15, {"x": x}, True),
            Case(
                "5 loosened",
                name + " element 0 x1.01",
                f15,
                lambda x: g15(x, 1.01),
                {"x": x},
                False,
            ),
        ]
    for gap in (1e-8, 1e-9):
        x = np.array([1.0, 1.0 + gap, 0.5])

        def fmax(x: Arr) -> float:
            return float(np.max(x))

        def gmax(x: Arr, extra: float = 0.0) -> list[Arr]:
            out = np.zeros_like(x)
            out[np.argmax(x)] = 1.0
            out[0] += extra
            return [out]

        name = f"max at [1, 1 + {gap:g}, 0.5]"
        cases += [
            Case("5 loosened", name, fmax, gmax, {"x": x}, True),
            Case(
                "5 loosened", name + " +1e-6 on x0", fmax, lambda x: gmax(x, 1e-6), {"x": x}, False
            ),
        ]
    for c in (1e-30, 1e-33):
        x = np.array([0.5, -1.0, 2.0])

        def fc(x: Arr, c: float = c) -> float:
            return c * float(np.sum(x**2))

        def gc(x: Arr, c: float = c, k: float = 1.0) -> list[Arr]:
            return [2.0 * k * c * x]

        name = f"{c:g} sum(x^2)"
        cases += [
            Case("5 loosened", name, fc, gc, {"x": x}, True),
            Case(
                "5 loosened",
                name + " sign flipped",
                fc,
                lambda x, c=c: gc(x, c, -1.0),
                {"x": x},
                False,
            ),
        ]
    return cases


# --- 6. float32 at its floor --------------------------------------------------------------------


def _float32(seed: int, shape: tuple[int, int, int], off: float) -> list[Case]:
    k, n, m = shape
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((k, n)).astype(np.float32)
    X = rng.standard_normal((n, m)).astype(np.float32)

    def f(W: Arr) -> np.float32:
        return np.sum(np.tanh(W @ X) ** 2, dtype=np.float32)

    def g(W: Arr, s: float = 1.0) -> list[Arr]:
        A = np.tanh(W @ X)
        return [np.float32(s) * ((2 * A * (1 - A * A)) @ X.T)]

    opts = {"allow_float32": True}
    name = f"float32 sum(tanh(W X)^2) {k}x{n}x{m} seed {seed}"
    return [
        Case("6 float32", name, f, g, {"W": W}, True, options=opts),
        Case(
            "6 float32",
            name + f" x{1 + off:g}",
            f,
            lambda W: g(W, 1 + off),
            {"W": W},
            False,
            options=opts,
        ),
    ]


# --- 7. f raising outside its domain ------------------------------------------------------------


def _cholesky_vjp(dy: Arr, A: Arr, k: float = 1.0) -> list[Arr]:
    """The VJP of numpy's cholesky, which reads A's lower triangle only."""
    L = np.linalg.cholesky(A)
    P = np.tril(L.T @ dy)
    P[np.diag_indices_from(P)] *= 0.5
    S = np.linalg.solve(L.T, np.linalg.solve(L.T, P.T).T)  # L^-T P L^-1
    S = 0.5 * (S + S.T)
    out = np.tril(2.0 * S)
    out[np.diag_indices_from(out)] *= 0.5
    return [k * out]


def _raising(rho: float) -> list[Case]:
    A = np.array([[1.0, rho], [rho, 1.0]])
    name = f"cholesky of [[1, {rho:g}], [{rho:g}, 1]]"
    cases = [
        Case("7 raises", name, np.linalg.cholesky, _cholesky_vjp, {"A": A}, True, vjp=True),
        Case(
            "7 raises",
            name + " 1% off",
            np.linalg.cholesky,
            lambda dy, A: _cholesky_vjp(dy, A, 1.01),
            {"A": A},
            False,
            vjp=True,
        ),
    ]
    return cases


def _math_sqrt(x0: float) -> list[Case]:
    x = np.array([x0, 0.7])

    def f(x: Arr) -> float:
        return math.fsum(math.sqrt(float(v)) for v in x)  # ValueError below 0

    def g(x: Arr) -> list[Arr]:
        return [0.5 / np.sqrt(x)]

    name = f"math.sqrt at {x0:g}"
    return [
        Case("7 raises", name, f, g, {"x": x}, True),
        Case("7 raises", name + " 1% off", f, _times(g, 1.01), {"x": x}, False),
    ]


# --- 8. wrong gradients of large inputs ---------------------------------------------------------


def _large(n: int, seed: int, how: str) -> Case:
    x = np.random.default_rng(seed).standard_normal(n)

    def f(x: Arr) -> float:
        return float(np.sum(x**3))

    def g(x: Arr) -> list[Arr]:
        out = 3.0 * x**2
        if how.startswith("all"):
            out *= 1.01
        else:
            out[n // 3] *= 1.01
        return [out]

    opts = {"mode": "elementwise"} if how == "all, elementwise" else {}
    name = f"sum(x^3) n={n}, {how} 1% off"
    return Case("8 large", name, f, g, {"x": x}, False, options=opts)


def _inverse(n: int, seed: int) -> list[Case]:
    A = np.random.default_rng(seed).standard_normal((n, n)) + n**0.5 * np.eye(n)

    def vjp(dy: Arr, A: Arr, k: float = 1.0) -> list[Arr]:
        Ai = np.linalg.inv(A)
        out: Arr = -Ai.T @ dy @ Ai.T
        out[1, 2] *= k
        return [out]

    name = f"vjp of inv(A) {n}x{n}, fast mode"
    opts = {"mode": "fast"}
    return [
        Case("8 large", name, np.linalg.inv, vjp, {"A": A}, True, vjp=True, options=opts),
        Case(
            "8 large",
            name + " one element 1% off",
            np.linalg.inv,
            lambda dy, A: vjp(dy, A, 1.01),
            {"A": A},
            False,
            vjp=True,
            options=opts,
        ),
    ]


# --- 9. options ---------------------------------------------------------------------------------


def _atol_cases() -> list[Case]:
    x = np.array([1.0, 2.0])

    def f(x: Arr) -> float:
        return float(np.sum(x**2))

    return [
        Case(
            "9 options",
            "atol=1e6, zero gradient",
            f,
            lambda x: [0 * x],
            {"x": x},
            False,
            options={"atol": 1e6},
        ),
        Case(
            "9 options",
            "atol=1e6, gradient halved",
            f,
            lambda x: [x],
            {"x": x},
            False,
            options={"atol": 1e6},
        ),
        Case(
            "9 options",
            "atol=1e-6, right",
            f,
            lambda x: [2 * x],
            {"x": x},
            True,
            options={"atol": 1e-6},
        ),
    ]


def corpus(large: bool = True) -> list[Case]:
    """Every case of every family (``large``: include the 2 10^5-element ones)."""
    cases: list[Case] = []
    for kind in EDGE_FUNCTIONS:
        for x0, n in ((1e-12, 1), (1e-11, 3), (1e-10, 2)):
            cases += _edge(kind, x0, n)
    for n, seed in ((3, 0), (10, 1), (40, 2)):
        cases += _sign(n, seed)
    for n, seed, scale in ((3, 0, 1.0), (8, 1, 10.0), (30, 2, 0.01)):
        cases += _round(n, seed, scale)
    for n, seed in ((6, 0), (24, 1)):
        cases += _step_hessian(n, seed)
    for n, big, seed in ((5, 1e8, 0), (20, 1e4, 1), (5, 1e12, 2)):
        cases += _swamp(n, big, seed)
    for seed in range(5):
        cases += [_flaky(3, 0.2, seed, True), _flaky(3, 0.2, seed, False)]
    for seed in range(3):
        cases += [_flaky(10, 0.05, seed, False)]
    cases += [_drifting(10, True), _drifting(10, False), _drifting(30, False)]
    cases += _loosened()
    for seed, shape in ((0, (3, 4, 6)), (1, (8, 8, 8)), (2, (4, 5, 6))):
        cases += _float32(seed, shape, 0.005)
    cases += _raising(0.999999) + _raising(0.9999999)
    cases += _math_sqrt(1e-6) + _math_sqrt(3e-9)
    cases += _inverse(30, 0) + _inverse(50, 1)
    if large:
        cases += [_large(200_000, 0, "all"), _large(100_000, 1, "one element")]
    cases += [_large(20_000, 2, "all, elementwise")]
    cases += _atol_cases()
    return cases


CASES = corpus()

_VERDICTS: dict[int, str] = {}


def run(case: Case) -> GradcheckResult:
    """The check the case describes."""
    if case.vjp:
        return check_vjp(case.f, case.grad, case.inputs, **case.options)
    return check_grad(case.f, case.grad, case.inputs, **case.options)


def verdict(case: Case) -> str:
    """passed / WRONG / inconclusive / refused / crashed: <error> (cached)."""
    if id(case) not in _VERDICTS:
        try:
            result = run(case)
        except ValueError as error:
            # a refusal by name is a verdict for a random f (GC-INPUTS' determinism check)
            if "not deterministic" in str(error):
                _VERDICTS[id(case)] = "refused"
                return "refused"
            _VERDICTS[id(case)] = f"crashed: ValueError: {error}"
            return _VERDICTS[id(case)]
        except Exception as error:  # a crash is a finding, reported as such
            _VERDICTS[id(case)] = f"crashed: {type(error).__name__}: {error}"
            return _VERDICTS[id(case)]
        if result.passed:
            _VERDICTS[id(case)] = "passed"
        else:
            wrong = any(a.verdict == "WRONG" for a in result.arrays)
            _VERDICTS[id(case)] = "WRONG" if wrong else "inconclusive"
    return _VERDICTS[id(case)]


@pytest.mark.spec("GC-NOISE-BLOCK", "GC-FIRM", "GC-DETERMINISM", "GC-BISECT", "GC-BOUND", "GC-KINK")
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.family}: {c.name}")
def test_the_round2_corpus_is_judged_right(case: Case) -> None:
    got = verdict(case)
    assert not got.startswith("crashed"), f"{case.name}: {got}"
    if case.right:
        assert got != "WRONG", f"false alarm on {case.name}"
    else:
        assert got != "passed", f"wrong gradient passed: {case.name}"


# --- each method step on its own ----------------------------------------------------------------


def _sign_case(x: Arr, v: Arr, k: float) -> GradcheckResult:
    def f(x: Arr, v: Arr) -> float:
        return float(np.sum(v * np.sign(x)))

    return check_grad(f, lambda x, v: [np.zeros_like(x), k * np.sign(x)], {"x": x, "v": v})


@pytest.mark.spec("GC-NOISE-BLOCK")
def test_a_jump_is_found_where_it_is_and_does_not_hide_errors_elsewhere() -> None:
    x, v = np.array([0.0, 1.0, -2.0]), np.array([0.3, 0.5, 0.7])
    right = _sign_case(x, v, 1.0)
    assert right.passed, right.format()
    assert right.arrays[0].kinks.jump == 1 and "x[0]" in right.arrays[0].note
    wrong = _sign_case(x, v, -1.0)
    a = wrong.arrays[1]
    assert a.verdict == "WRONG" and a.tolerance < 1e-3, wrong.format()  # was 1.45e5: PASSED


@pytest.mark.spec("GC-NOISE-BLOCK")
def test_a_large_input_does_not_swamp_a_small_ones_bound() -> None:
    case_right, case_wrong = _swamp(5, 1e8, 0)
    right, wrong = run(case_right), run(case_wrong)
    assert right.passed and right.arrays[1].tolerance < 1e-5, right.format()  # was 1.7e-2
    assert wrong.arrays[1].verdict == "WRONG", wrong.format()


@pytest.mark.spec("GC-NOISE-BLOCK", "GC-FIRM")
@settings(max_examples=25)
@given(
    n=st.integers(3, 40),
    jumps=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_jumps_anywhere_never_let_a_negated_gradient_pass(n: int, jumps: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    x[rng.choice(n, size=min(jumps, n - 1), replace=False)] = 0.0  # some sign(x) not 0
    v = rng.uniform(0.2, 1.0, n)
    assert _sign_case(x, v, -1.0).arrays[1].verdict == "WRONG"
    assert all(a.verdict != "WRONG" for a in _sign_case(x, v, 1.0).arrays)


@pytest.mark.spec("GC-FIRM")
def test_an_error_inside_a_loosened_bound_is_undecided_with_both_bounds_shown() -> None:
    cases = {c.name: c for c in _loosened()}
    result = run(cases["sum(x^1.5) at [1e-10, 2] element 0 x1.01"])
    a = result.arrays[0]
    assert a.verdict == "inconclusive" and "firm bound" in a.note, result.format()
    result = run(cases["max at [1, 1 + 1e-08, 0.5] +1e-6 on x0"])
    assert result.arrays[0].verdict == "inconclusive", result.format()
    # the firm bound is no weaker than the old one where nothing was loosened
    x = np.array([0.5, 1.5, 2.0])
    off = check_grad(
        lambda x: float(np.sum(x**1.5)), lambda x: [1.5 * 1.0001 * np.sqrt(x)], {"x": x}
    )
    assert off.arrays[0].verdict == "WRONG"


@pytest.mark.spec("GC-FIRM", "GC-TOL")
def test_a_gradient_below_atol_is_judged_against_atol_and_says_so() -> None:
    cases = {c.name: c for c in _loosened()}
    flipped = run(cases["1e-30 sum(x^2) sign flipped"]).arrays[0]
    assert flipped.verdict == "inconclusive" and "only against atol" in flipped.note
    assert run(cases["1e-33 sum(x^2)"]).passed
    zero = check_grad(lambda x: float(np.sum(x**2)), lambda x: [0 * x], {"x": np.ones(2)}, atol=1e6)
    assert zero.arrays[0].verdict == "inconclusive" and "atol=1e+06" in zero.arrays[0].note


@pytest.mark.spec("GC-FIRM", "GC-KINK")
@pytest.mark.parametrize("kind", sorted(EDGE_FUNCTIONS))
def test_a_smooth_point_no_step_resolves_is_never_called_wrong(kind: str) -> None:
    fun, der = EDGE_FUNCTIONS[kind]
    x = np.array([1e-12])
    result = check_grad(lambda x: float(np.sum(fun(x))), lambda x: [der(x)], {"x": x})
    assert result.arrays[0].verdict != "WRONG", result.format()
    if not result.passed:
        assert "not judged" in result.arrays[0].note or "not decided" in result.arrays[0].note


@pytest.mark.spec("GC-DETERMINISM")
def test_an_f_that_drifts_after_its_tenth_call_decides_nothing() -> None:
    result = run(_drifting(10, False))
    assert not result.passed and all(a.verdict == "inconclusive" for a in result.arrays)
    assert "not deterministic" in result.arrays[0].note


@pytest.mark.spec("GC-DETERMINISM")
@pytest.mark.parametrize("seed", range(5))
def test_an_f_random_now_and_then_never_passes_a_wrong_gradient(seed: int) -> None:
    assert verdict(_flaky(3, 0.2, seed, False)) in ("WRONG", "inconclusive", "refused")


@pytest.mark.spec("GC-BISECT")
def test_a_wrong_element_among_10_5_is_named_by_bisection() -> None:
    n = 100_000
    result = run(_large(n, 1, "one element"))
    a = result.arrays[0]
    assert a.verdict == "WRONG" and a.fell_back and a.worst_index == (n // 3,), result.format()
    assert a.n_checked < 200 and "bisection" in a.note and "not checked" in a.note


@pytest.mark.spec("GC-BISECT")
def test_a_right_vjp_in_fast_mode_still_passes_and_a_wrong_one_is_found() -> None:
    right, wrong = _inverse(30, 0)
    assert run(right).passed
    a = run(wrong).arrays[0]
    assert a.verdict == "WRONG" and a.worst_index == (1, 2)


@pytest.mark.spec("GC-BOUND")
def test_elementwise_stops_after_ten_wrong_elements_and_says_what_it_checked() -> None:
    result = run(_large(20_000, 2, "all, elementwise"))
    a = result.arrays[0]
    assert a.verdict == "WRONG" and a.n_checked < 100 and "not checked" in a.note


@pytest.mark.spec("GC-INPUTS")
def test_loose_options_are_refused_by_name() -> None:
    x = np.array([1.0, 2.0])

    def f(x: Arr) -> float:
        return float(np.sum(x**2))

    def g(x: Arr) -> list[Arr]:
        return [2 * x]

    with pytest.raises(ValueError, match=r"eps \(the base step\) must be >= 1e-12, got 1e-300"):
        check_grad(f, g, {"x": x}, eps=1e-300)
    with pytest.raises(ValueError, match=r"integer too large for a float \(401 digits\)"):
        check_grad(lambda x: 10**400, g, {"x": x})
    with pytest.raises(TypeError, match=r"details must be a bool, got 'no'"):
        check_grad(f, g, {"x": x}, details="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"taylor must be a bool, got 'yes'"):
        check_vjp(lambda x: x, lambda d, x: [d], {"x": x}, taylor="yes")  # type: ignore[arg-type]
    assert check_grad(f, g, {"x": x}, details=True).passed


@pytest.mark.spec("GC-INPUTS", "GC-KINK")
def test_an_exception_at_a_probe_point_is_a_domain_edge_and_at_x_the_callers() -> None:
    right, wrong = _raising(0.999999)
    result = run(right)
    assert result.passed and "LinAlgError" in result.arrays[0].note, result.format()
    assert run(wrong).arrays[0].verdict == "WRONG"
    with pytest.raises(np.linalg.LinAlgError):
        check_vjp(np.linalg.cholesky, _cholesky_vjp, {"A": -np.eye(2)})
