"""``make check`` itself: every case of its one table passes (each runs once, here), a broken
gradient fails the run, the report reads on a terminal, and an installed package verifies
every derivative without the checkout's ``specs/``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import refnn
from refnn import Dense, Dropout
from refnn.conv import CONV_CONFIGS
from refnn.gradcheck import check_backward_contract
from refnn.lstm import LSTM_CONFIGS
from refnn.pool import POOL_CONFIGS
from refnn.types import FloatArray
from refnn.verify.cases import Case
from refnn.verify.locate import component_class, implementations, quantity_specs
from refnn.verify.problems import Objective, layer_problem
from refnn.verify.report import TRACE_SKIPPED, Report, format_report, to_json
from refnn.verify.run import main, run, run_case
from refnn.verify.trace import build_trace, source_root
from tests.make_check_outcomes import CASES, outcome_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.spec("GC-TOL", "MODEL-FWD", "MODEL-BWD")
@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{c.component} [{c.config}]" for c in CASES])
def test_every_make_check_case_passes(i: int) -> None:
    outcome = outcome_of(i)
    assert not outcome.error, outcome.error
    assert outcome.result is not None
    details = outcome.result.format() + (
        "" if outcome.contract is None else outcome.contract.format()
    )
    assert outcome.passed, details


def test_the_table_has_no_duplicate_case_and_builds_reproducibly() -> None:
    keys = [(c.component, c.config) for c in CASES]
    assert len(keys) == len(set(keys))
    for case in (CASES[0], CASES[-1]):  # building a case twice gives the same objective
        a, b = case.build(), case.build()
        assert a.inputs.keys() == b.inputs.keys()
        for k in a.inputs:
            np.testing.assert_array_equal(a.inputs[k], b.inputs[k])


def test_the_table_covers_every_public_component_in_both_dtypes() -> None:
    """Every layer and loss refnn exports, in float64 and in float32, and whole models."""
    public = {name for name in refnn.__all__ if isinstance(getattr(refnn, name), type)}
    components = {c.component.removesuffix(" float32") for c in CASES}
    float32 = {c.component.removesuffix(" float32") for c in CASES if c.float32}
    layers_and_losses = {
        n for n in public if issubclass(getattr(refnn, n), refnn.Layer | refnn.Loss)
    } - {"Layer", "Loss", "Sequential"}
    assert layers_and_losses <= components
    assert layers_and_losses - {"BinaryCrossEntropyWithLogits", "CrossEntropy"} <= float32
    assert {"mlp 3-6-4-2", "cnn conv-relu-maxpool-dense", "L2 model (dropout)"} <= components


def test_the_table_covers_the_geometries_and_sequence_lengths() -> None:
    configs = CONV_CONFIGS
    assert any(s[0] > k[0] for _, _, _, _, k, s, _, _, _ in configs)  # stride > kernel
    assert any(k[0] != k[1] for _, _, _, _, k, _, _, _, _ in configs)  # non-square kernel
    assert any(p[0] > 0 for _, _, _, _, _, _, p, _, _ in configs)  # padding
    assert any(  # kernel equal to the padded input
        k == (H + 2 * p[0], W + 2 * p[1]) and p != (0, 0) for _, _, H, W, k, _, p, _, _ in configs
    )
    assert len({(s, p) for *_, s, p, _, _ in configs}) >= 4  # several stride/padding pairs
    assert any(s is not None and s[0] < k[0] for *_, k, s, _, _ in POOL_CONFIGS)  # overlapping
    assert {T for _, _, T, _, _ in LSTM_CONFIGS} == set(range(1, 11))


def _identity_path_negated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutant Dropout.backward: wrong (negated) only where it is the identity, i.e. at
    inference and with p_drop = 0; right wherever a mask applies."""
    original = Dropout.backward

    def mutant(self: Dropout, dA: FloatArray) -> FloatArray:
        out = original(self, dA)
        identity = np.array_equal(out, dA)  # a mask with p_drop > 0 scales every kept unit
        return -out if identity else out

    monkeypatch.setattr(Dropout, "backward", mutant)


@pytest.mark.spec("DROPOUT-BWD")
def test_a_wrong_dropout_backward_at_inference_or_p_drop_0_fails_make_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dropout = [c for c in CASES if "dropout" in c.component.lower()]  # L2 model (dropout) too
    identity = {c for c in dropout if "inference" in c.config or "p_drop=0 " in c.config}
    assert len(identity) >= 4  # inference (float64 and float32) and p_drop = 0
    _identity_path_negated(monkeypatch)
    failed = {c for c in dropout if not run_case(c).passed}
    assert failed == identity  # the identity cases catch it; the masked ones cannot, as they should


@pytest.mark.spec("WINO-DW", "WINO-DX")
@pytest.mark.parametrize("which", [0, 1])
def test_a_wrong_winograd_backward_fails_make_check_and_only_there(
    monkeypatch: pytest.MonkeyPatch, which: int
) -> None:
    """Halving dX (or dW) of the fast path fails every Winograd case and no direct one."""
    import refnn.conv
    from refnn.winograd import winograd_backward as right

    def wrong(*args: Any, **kwargs: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        grads = list(right(*args, **kwargs))
        grads[which] = 0.5 * grads[which]
        return grads[0], grads[1], grads[2]

    monkeypatch.setattr(refnn.conv, "winograd_backward", wrong)
    conv = [c for c in CASES if c.component == "Conv2D"]
    fast = {c for c in conv if "WINO-DX" in c.specs}  # 3 x 3 stride 1, by default or by name
    assert len(fast) >= 5
    assert {c for c in conv if not run_case(c).passed} == fast


def test_cases_restore_the_layers_they_perturb() -> None:
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    before = {k: v.copy() for k, v in layer.params.items()}
    objective = layer_problem(layer, np.ones((3, 4)))
    objective.f(np.zeros((3, 4)), np.zeros((2, 3)), np.zeros((2, 1)))
    objective.restore()
    for k, v in layer.params.items():
        np.testing.assert_array_equal(v, before[k])


def _broken_dense() -> Objective:
    objective = layer_problem(Dense(3, 2, rng=np.random.default_rng(0)), np.ones((3, 4)))
    right = objective.grad

    def wrong(*arrays: FloatArray) -> list[FloatArray]:
        dX, dW, db = right(*arrays)
        return [dX, -dW, db]  # a sign flip in dW

    return Objective(objective.f, wrong, objective.inputs, objective.wrt, objective.restore)


BROKEN = Case("Broken", "sign flip in dW", ("DENSE-DW",), _broken_dense)


def test_a_wrong_gradient_fails_the_report() -> None:
    report = run([BROKEN])
    assert not report.passed
    text = format_report(report)
    assert "RESULT: FAIL" in text and "FAILED: Broken [sign flip in dW] (WRONG)" in text
    assert "input 'W'" in text  # the failing input's worst element, in full
    data = to_json(report)
    assert data["passed"] is False and data["cases"][0]["verdict"] == "WRONG"
    assert [a["verdict"] for a in data["cases"][0]["arrays"]] == ["ok", "WRONG", "ok"]


def test_a_crashing_case_is_reported_not_raised() -> None:
    def boom() -> Objective:
        raise ValueError("cannot build")

    report = run([Case("Crash", "-", ("DENSE-FWD",), boom)])
    assert not report.passed
    assert "FAILED: Crash [-] (ERROR)\n  ValueError: cannot build" in format_report(report)


def test_the_report_reads_on_a_terminal_failures_first() -> None:
    """One line per case, failing cases first, then the details. The figures take 60 columns
    beside the names: the table fits 120 columns unless the component and configuration names
    themselves are longer."""
    outcomes = [outcome_of(i) for i in range(len(CASES))]
    report = Report([*outcomes, run_case(BROKEN)], seconds=1.0)
    lines = format_report(report).splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("-----"))
    rows = lines[rule + 1 : rule + 1 + len(report.outcomes)]
    assert rows[0].startswith("Broken") and rows[0].endswith("WRONG")
    assert all(row.endswith(" ok") for row in rows[1:])
    assert lines[rule + 1 + len(report.outcomes)] == ""  # the table ends: one line per case
    names = max(len(c.component) for c in CASES) + max(len(c.config) for c in CASES)
    assert max(len(line) for line in lines[rule - 1 : rule + 1 + len(rows)]) <= max(120, names + 60)
    assert "FAILED: Broken [sign flip in dW] (WRONG)" in lines[rule + 1 + len(rows) :]
    assert len(lines) < len(report.outcomes) + 60  # the failure in full, then a short summary


def test_a_broken_backward_contract_fails_the_case_with_the_gradients_right() -> None:
    def build() -> Objective:
        right = layer_problem(Dense(3, 2, rng=np.random.default_rng(0)), np.ones((3, 4)))
        return replace(right, contract=lambda: check_backward_contract(lambda dY: [dY**2], (2, 4)))

    outcome = run_case(Case("Dense", "a backward quadratic in dY", ("DENSE-DX",), build))
    assert outcome.result is not None and outcome.result.passed and not outcome.passed
    text = format_report(Report([outcome]))
    assert "FAILED: Dense [a backward quadratic in dY] (CONTRACT)" in text


def test_main_writes_json_and_exits_zero_when_all_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    assert main(["--only", "flatten", "--json", str(out), "--trace"]) == 0
    data = json.loads(out.read_text())
    assert data["passed"] is True and data["trace"] is not None and data["trace_skipped"] is None
    components = {c["component"] for c in data["cases"]}
    assert components == {"Flatten", "Flatten float32"}
    assert set(data["trace"]["FLATTEN-BWD"]["checked_by"]) == components
    text = capsys.readouterr().out
    assert "RESULT: PASS" in text and "traceability: 0 problems" in text
    assert any(line.lstrip().startswith("FLATTEN-BWD ") for line in text.splitlines())  # --trace
    assert max(len(line) for line in text.splitlines()) <= 120


def test_a_run_in_which_no_case_ran_does_not_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert not run([]).passed
    assert main(["--only", "no component has this name"]) == 1
    out = capsys.readouterr().out
    assert "cases: 0 (0 passed)" in out and "RESULT: FAIL" in out


def test_without_a_checkout_the_trace_is_skipped_and_every_derivative_still_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr("refnn.verify.run.source_root", lambda: None)
    out = tmp_path / "report.json"
    assert main(["--only", "LastStep", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"traceability: {TRACE_SKIPPED}" in text and "RESULT: PASS" in text
    data = json.loads(out.read_text())
    assert data["trace"] is None and data["trace_skipped"] == TRACE_SKIPPED
    assert len(data["cases"]) == 4 and all(c["passed"] for c in data["cases"])


def test_an_installed_copy_of_the_package_runs_outside_the_checkout(tmp_path: Path) -> None:
    """``python -m refnn.verify`` from a package directory with no specs/ or tests/ beside it,
    as pip installs it: the checks run and pass, the traceability is skipped, exit status 0."""
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "refnn", site / "refnn", ignore=shutil.ignore_patterns("__pycache__"))
    assert source_root(site / "refnn") is None and source_root(ROOT / "refnn") == ROOT
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "refnn.verify", "--only", "LastStep"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"traceability: {TRACE_SKIPPED}" in proc.stdout  # so it ran the copy, not the checkout
    assert "cases: 4 (4 passed)" in proc.stdout and "RESULT: PASS" in proc.stdout


@pytest.mark.spec("GC-PROJ")
def test_make_check_exercises_the_fast_mode_too() -> None:
    fast = [i for i, c in enumerate(CASES) if "fast mode" in c.config]
    assert fast
    outcome = outcome_of(fast[0])
    assert outcome.result is not None and outcome.passed
    assert any(a.method == "fast" and not a.fell_back for a in outcome.result.arrays)


def test_the_contract_runs_at_the_cases_own_point() -> None:
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    W0 = layer.params["W"].copy()
    objective = layer_problem(layer, np.ones((3, 4)))
    objective.f(np.ones((3, 4)), W0 + 0.5, np.zeros((2, 1)))  # a check leaves W perturbed
    assert objective.contract is not None
    seen: list[FloatArray] = []
    original = layer.backward

    def spy(dA: FloatArray) -> FloatArray:
        seen.append(layer.params["W"].copy())
        return original(dA)

    layer.backward = spy  # type: ignore[method-assign]
    assert objective.contract().passed
    assert seen and all(np.array_equal(w, W0) for w in seen)


def _dense_dw_scaled() -> Objective:
    """Dense with dW 1% too large: the seeded error a failing report must lead with."""
    objective = layer_problem(Dense(3, 2, rng=np.random.default_rng(0)), np.ones((3, 4)))
    right = objective.grad

    def wrong(*arrays: FloatArray) -> list[FloatArray]:
        dX, dW, db = right(*arrays)
        return [dX, 1.01 * dW, db]

    return Objective(objective.f, wrong, objective.inputs, objective.wrt, objective.restore)


def _model_dw_scaled() -> Objective:
    objective = _dense_dw_scaled()
    names = [f"0.{k}" for k in objective.inputs]
    inputs = dict(zip(names, objective.inputs.values(), strict=True))
    return Objective(objective.f, objective.grad, inputs, tuple(names), objective.restore)


DENSE_IDS = next(c.specs for c in CASES if c.component == "Dense")


def test_a_failing_report_leads_with_the_component_spec_function_and_rerun() -> None:
    """The first lines name the smallest failing component, the failing quantity's spec ID and
    the function computing it, list the composite cases failing with it, and give the command
    that reruns just that component; the table and the detail come after."""
    cases = [
        Case("mlp 3-2", "m=4 seed=0", ("MODEL-FWD", "MODEL-BWD"), _model_dw_scaled),
        Case("Dense", "3->2 m=4 seed=0", DENSE_IDS, _dense_dw_scaled),
    ]
    report = run(cases, root=source_root())
    lines = format_report(report).splitlines()
    assert lines[0].startswith("RESULT: FAIL: 2 of 2 cases failed")
    assert lines[1] == "  Dense: 1 of 1 cases failed; smallest: Dense [3->2 m=4 seed=0] (WRONG)"
    assert lines[2].startswith("    d/dW: WRONG, err/tol ")
    assert lines[3].startswith("      spec DENSE-DW (dense.md: weight gradient), computed by ")
    assert "refnn.dense." in lines[3]
    assert lines[4] == "  also failing, built from components (1 cases): mlp 3-2 (1)"
    assert lines[5].startswith("  rerun just these: python -m refnn.verify --only 'Dense'")
    detail = lines.index("DETAIL OF EACH FAILING CASE (smallest first)")
    assert lines[detail + 2] == "FAILED: Dense [3->2 m=4 seed=0] (WRONG)"  # smallest first
    data = to_json(report)
    assert all("W' shape (2, 3) float64, elementwise: WRONG" in c["failure"] for c in data["cases"])


def test_a_passing_report_has_no_headline() -> None:
    report = Report([outcome_of(0)], seconds=1.0)
    assert format_report(report).startswith("GRADIENT CHECKS")
    assert to_json(report)["cases"][0]["failure"] is None


def test_every_single_component_input_maps_to_a_spec_id_and_a_function() -> None:
    """The failing-quantity map (refnn.verify.locate) names, for every input of every
    single-component case, a spec ID the case verifies and a function of refnn implementing it
    (from the checkout's trace and from the package's own sources alike)."""
    trace = build_trace(ROOT)
    seen = 0
    for i, case in enumerate(CASES):
        if component_class(case) is None:
            continue
        result = outcome_of(i).result
        assert result is not None
        for a in result.arrays:
            ids = quantity_specs(case, a.name)
            assert ids and set(ids) <= set(case.specs), (case.component, a.name, ids)
            for spec_id in ids:
                funcs = implementations(spec_id, trace)
                assert funcs and funcs == implementations(spec_id), (spec_id, funcs)
                assert all(f.startswith("refnn.") for f in funcs)
            seen += 1
    assert seen > 100
    dense = next(c for c in CASES if c.component == "Dense")
    assert quantity_specs(dense, "W") == ("DENSE-DW",)
    assert quantity_specs(dense, "X") == ("DENSE-DX",)
    assert "refnn.dense.dense_backward" in implementations("DENSE-DW")
    relu = next(c for c in CASES if c.component == "ReLU")
    assert quantity_specs(relu, "X") == ("RELU-BWD",)
    assert component_class(relu) == "ReLU"
    assert component_class(next(c for c in CASES if c.component.startswith("mlp"))) is None


def test_the_json_report_carries_its_provenance(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    assert main(["--only", "Flatten", "--json", str(out)]) == 0
    p = json.loads(out.read_text())["provenance"]
    assert p["refnn"] == refnn.__version__ and p["numpy"] == np.__version__
    assert p["python"] == ".".join(map(str, sys.version_info[:3]))
    assert p["platform"] and p["blas"] and p["date"].endswith("+00:00")
    if (ROOT / ".git").exists() and shutil.which("git"):
        assert p["commit"] is not None and len(p["commit"].split("+")[0]) == 40


def test_only_takes_several_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--only", "Flatten, LastStep"]) == 0
    out = capsys.readouterr().out
    n = sum(1 for c in CASES if c.component.split()[0] in ("Flatten", "LastStep"))
    assert n >= 4 and f"cases: {n} ({n} passed)" in out


def test_a_traceability_problem_alone_leads_the_report() -> None:
    report = Report([outcome_of(0)], trace_problems=["DENSE-DW has no test citing it"])
    lines = format_report(report).splitlines()
    assert lines[0] == (
        "RESULT: FAIL: every case passed (1), but the spec traceability has 1 problem(s):"
    )
    assert lines[1] == "  DENSE-DW has no test citing it"
    assert lines[-1] == "RESULT: FAIL"
