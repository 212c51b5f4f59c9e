"""``make check`` itself: every registered case passes, and a broken one fails the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refnn import Dense
from refnn.verify.cases import Case
from refnn.verify.problems import Problem, layer_problem
from refnn.verify.registry import all_cases
from refnn.verify.run import format_report, main, run, run_case, to_json

CASES = all_cases()


@pytest.mark.spec("GC-TOL", "MODEL-FWD", "MODEL-BWD")
@pytest.mark.parametrize("case", CASES, ids=[f"{c.component} [{c.config}]" for c in CASES])
def test_every_make_check_case_passes(case: Case) -> None:
    outcome = run_case(case)
    assert not outcome.error, outcome.error
    assert outcome.result is not None
    assert outcome.passed, outcome.result.format()


def test_cases_restore_the_layers_they_perturb() -> None:
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    before = {k: v.copy() for k, v in layer.params.items()}
    problem = layer_problem(layer, np.ones((3, 4)))
    problem.f(np.zeros((3, 4)), np.zeros((2, 3)), np.zeros((2, 1)))
    problem.restore()
    for k, v in layer.params.items():
        np.testing.assert_array_equal(v, before[k])


def _broken_dense() -> Problem:
    problem = layer_problem(Dense(3, 2, rng=np.random.default_rng(0)), np.ones((3, 4)))
    right = problem.grad

    def wrong(*arrays: np.ndarray) -> list[np.ndarray]:
        dX, dW, db = right(*arrays)
        return [dX, -dW, db]  # a sign flip in dW

    return Problem(problem.f, wrong, problem.inputs, problem.wrt, problem.restore)


def test_a_wrong_gradient_fails_the_report(tmp_path: Path) -> None:
    report = run([Case("Broken", "sign flip in dW", ("DENSE-DW",), _broken_dense)])
    assert not report.passed
    text = format_report(report)
    assert "RESULT: FAIL" in text and "WRONG" in text and "input 'W'" in text
    data = to_json(report)
    assert data["passed"] is False
    assert [a["verdict"] for a in data["cases"][0]["arrays"]] == ["ok", "WRONG", "ok"]


def test_a_crashing_case_is_reported_not_raised() -> None:
    def boom() -> Problem:
        raise ValueError("cannot build")

    report = run([Case("Crash", "-", ("DENSE-FWD",), boom)])
    assert not report.passed
    assert "ERROR in Crash [-]: ValueError: cannot build" in format_report(report)


def test_main_writes_json_and_exits_zero_when_all_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    assert main(["--only", "Dense", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["passed"] is True
    components = {c["component"] for c in data["cases"]}
    assert "Dense" in components and all("dense" in c.lower() for c in components)
    assert "RESULT: PASS" in capsys.readouterr().out


def test_a_run_in_which_no_case_ran_does_not_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert not run([]).passed
    assert main(["--only", "no component has this name"]) == 1
    out = capsys.readouterr().out
    assert "cases: 0 (0 passed)" in out and "RESULT: FAIL" in out


@pytest.mark.spec("GC-PROJ")
def test_make_check_exercises_the_fast_mode_too() -> None:
    fast = [c for c in CASES if "fast mode" in c.config]
    assert fast
    outcome = run_case(fast[0])
    assert outcome.result is not None and outcome.passed
    assert any(a.method == "fast" and not a.fell_back for a in outcome.result.arrays)


def test_the_contract_runs_at_the_cases_own_point() -> None:
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    W0 = layer.params["W"].copy()
    problem = layer_problem(layer, np.ones((3, 4)))
    problem.f(np.ones((3, 4)), W0 + 0.5, np.zeros((2, 1)))  # a check leaves W perturbed
    assert problem.contract is not None
    seen: list[np.ndarray] = []
    original = layer.backward

    def spy(dA: np.ndarray) -> np.ndarray:
        seen.append(layer.params["W"].copy())
        return original(dA)

    layer.backward = spy  # type: ignore[method-assign]
    assert problem.contract().passed
    assert seen and all(np.array_equal(w, W0) for w in seen)
