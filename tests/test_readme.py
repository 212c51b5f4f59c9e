"""The README and the guides say what a user gets: their examples run as written and print what
they say they print, the output they quote is what refnn prints, and the examples in the main
entry points' docstrings run as doctests.

Quoted figures that depend on the machine (its CPU and BLAS round differently; the time) are
marked ``~`` in the quote: there the printed figure must be a number within a factor of 10 of the
quoted one. ``(...)`` at the end of a quoted line stands for the rest of the printed line.
Everything else must match word for word.
"""

from __future__ import annotations

import doctest
import math
import re
from pathlib import Path

import numpy as np
import pytest

import refnn
import refnn.testing
from refnn.gradcheck import check_grad, check_vjp
from refnn.verify.report import Report, _row, format_report
from refnn.verify.trace import build_trace
from tests.make_check_outcomes import CASES, outcome_of

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
GUIDES = [ROOT / "docs" / "quickstart.md", ROOT / "docs" / "gradcheck.md"]
PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)
BLOCKS = [
    (f"{path.name}:{i}", code)
    for path in [README, *GUIDES]
    for i, code in enumerate(PYTHON.findall(path.read_text(encoding="utf-8")))
]
NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?(e[-+]\d+)?$")


def _number(token: str) -> float | None:
    token = token.strip(",;()")
    return float(token) if NUMBER.match(token) else None


def _tail(token: str) -> str:
    """The punctuation after a number (``"),"`` of ``"3.99e-10),"``)."""
    return re.sub(r"^[-+\d.e]+", "", token)


def same(quoted: str, printed: str) -> bool:
    """Whether a printed line is the quoted one, under the ``~`` and ``(...)`` conventions."""
    q, p = quoted.split(), printed.split()
    if q and q[-1] == "(...)":
        q, p = q[:-1], p[: len(q) - 1]
    if len(q) != len(p):
        return False
    for a, b in zip(q, p, strict=True):
        lead = len(a) - len(a.lstrip("(["))  # "(~139" is a figure in brackets
        if a[lead:].startswith("~"):
            if a[:lead] != b[:lead]:
                return False
            a, b = a[lead + 1 :], b[lead:]
            x, y = _number(a), _number(b)
            if x is None or y is None or _tail(a) != _tail(b):
                return False
            if (x == 0) != (y == 0) or (x and abs(math.log10(abs(y) / abs(x))) > 1):
                return False
        elif a != b:
            return False
    return True


def test_the_comparison_of_quoted_output_bites() -> None:
    assert same("rel err ~1.5e-10 ok", "rel err 2.1e-10 ok")
    assert not same("rel err ~1.5e-10 ok", "rel err 2.1e-08 ok")  # a factor of 100
    assert not same("rel err ~1.5e-10 ok", "rel err 2.1e-10 WRONG")
    assert not same("cases: 139 (139 passed)", "cases: 140 (140 passed)")
    assert same("cases: ~139 (~139 passed)", "cases: 278 (278 passed)")
    assert not same("cases: ~139 (~139 passed)", "cases: 278 [278 passed)")
    assert same("worst: ~8.6e-02 (...)", "worst: 4.0e-02 (mlp [m=5], input 2.W)")
    assert not same("worst: ~8.6e-02 (...)", "worst: nan (mlp [m=5], input 2.W)")


def test_the_readme_and_guides_have_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", [c for _, c in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_example_runs_and_prints_what_it_says(
    code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each block runs as written; its ``# prints:`` lines are the last lines it prints."""
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    expected = re.findall(r"^# prints: (.*)$", code, re.MULTILINE)
    assert expected, "an example shows what it prints"
    last = out[-len(expected) :]
    assert len(last) == len(expected) and all(
        same(q, p) for q, p in zip(expected, last, strict=True)
    ), f"the block says it prints {expected}, it printed {last}"
    if "accuracy" in namespace:  # the training example really learns
        assert float(namespace["accuracy"]) >= 0.9  # type: ignore[arg-type]


def _quoted_block(after: str) -> list[str]:
    """The indented block that follows the paragraph containing ``after``."""
    rest = TEXT[TEXT.index(after) :]
    lines = rest[rest.index("\n\n    ") + 2 :].splitlines()
    block: list[str] = []
    for line in lines:
        if line and not line.startswith("    "):
            break
        block.append(line[4:] if line.startswith("    ") else line)
    while block and not block[-1]:
        block.pop()
    return block


def test_the_quoted_make_check_rows_and_summary_are_what_it_prints() -> None:
    quote = [line.strip() for line in _quoted_block("What `make check` prints")]
    rule = next(i for i, line in enumerate(quote) if line.startswith("-----"))
    rows = quote[rule + 1 : quote.index("...")]
    assert len(rows) >= 5
    index = {(c.component, c.config): i for i, c in enumerate(CASES)}
    for row in rows:
        component, config = re.split(r"\s{2,}", row)[:2]
        assert (component, config) in index, f"no make check case {component} [{config}]"
        printed = "  ".join(_row(outcome_of(index[component, config])))
        assert same(row, printed), f"README: {row}\nprinted: {printed}"
    outcomes = [outcome_of(i) for i in range(len(CASES))]
    checked: dict[str, list[str]] = {}
    for o in outcomes:
        for spec_id in o.case.specs:
            checked.setdefault(spec_id, []).append(o.case.component)
    trace = build_trace(ROOT, checked)
    seconds = sum(o.seconds for o in outcomes)
    report = Report(outcomes, trace, trace.problems(), seconds=seconds)
    lines = format_report(report).splitlines()
    tail = quote[quote.index("...") + 1 :]
    for line in (x for x in tail if x):
        start = line.split(":")[0] + ":" if ":" in line else line
        candidates = [p for p in lines if p.startswith(start)]
        assert candidates, f"make check prints no line starting {start!r}"
        assert same(line, candidates[-1]), f"README: {line}\nprinted: {candidates[-1]}"


def _layer_norm(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0, keepdims=True)) / np.sqrt(x.var(0, keepdims=True) + 1e-5)


def _without_the_variance_term(dy: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    n, inv = x.shape[0], 1 / np.sqrt(x.var(0, keepdims=True) + 1e-5)
    return [inv / n * (n * dy - dy.sum(0, keepdims=True))]


def test_the_quoted_gradcheck_failure_is_what_it_prints() -> None:
    quote = " ".join(x.strip() for x in _quoted_block("forgotten the variance term"))
    x = np.random.default_rng(0).standard_normal((5, 3))
    result = check_vjp(_layer_norm, _without_the_variance_term, {"x": x})
    assert not result.passed
    assert same(quote, result.arrays[0].message()), result.arrays[0].message()


#: The entry points whose docstrings carry an Examples section (rendered in the API pages).
DOCTESTED: list[object] = [
    check_grad,
    check_vjp,
    refnn.testing.check_layer,
    refnn.Dense,
    refnn.Sequential,
    refnn.fit,
    refnn.save,
]


@pytest.mark.parametrize("obj", DOCTESTED, ids=lambda o: getattr(o, "__qualname__", str(o)))
def test_docstring_examples_run(obj: object, capsys: pytest.CaptureFixture[str]) -> None:
    name = getattr(obj, "__qualname__", str(obj))
    tests = [t for t in doctest.DocTestFinder(recurse=False).find(obj, name) if t.examples]
    assert tests, f"{name}'s docstring has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    report = capsys.readouterr().out
    assert runner.failures == 0, report
