"""Run every ``make check`` case through :mod:`refnn.gradcheck` and report.

The report has three parts: one row per (component, configuration, input) with the checker's
figures; the spec traceability table (ID -> implementing functions -> tests -> check cases); and
a summary. The same goes to JSON with ``--json PATH``. The exit status is 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refnn.gradcheck import (
    ContractResult,
    GradcheckResult,
    TaylorResult,
    check_grad,
    taylor_test,
)
from refnn.verify.cases import Case
from refnn.verify.registry import all_cases
from refnn.verify.trace import Trace, build_trace


@dataclass
class CaseOutcome:
    """What one case produced: the gradient check, the Taylor test, or the error raised."""

    case: Case
    result: GradcheckResult | None = None
    taylor: TaylorResult | None = None
    contract: ContractResult | None = None
    error: str = ""
    seconds: float = 0.0

    @property
    def kinks(self) -> int:
        """Elements whose stencil straddled a kink (GC-KINK), over all inputs."""
        return sum(a.kinks.found for a in self.result.arrays) if self.result else 0

    @property
    def taylor_judged(self) -> bool:
        """The Taylor test decides only where f is smooth: a kink makes r(h) ~ h for any g."""
        return self.taylor is not None and self.kinks == 0

    @property
    def passed(self) -> bool:
        """True when the checks passed and nothing raised."""
        taylor_ok = self.taylor is None or not self.taylor_judged or self.taylor.passed
        contract_ok = self.contract is None or self.contract.passed
        grads_ok = self.result is not None and self.result.passed
        return not self.error and grads_ok and taylor_ok and contract_ok


@dataclass
class Report:
    """All outcomes, the traceability table and its problems."""

    outcomes: list[CaseOutcome] = field(default_factory=list)
    trace: Trace | None = None
    trace_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when at least one case ran, every case passed and the trace has no broken link."""
        ran = bool(self.outcomes)
        return ran and all(o.passed for o in self.outcomes) and not self.trace_problems


def run_case(case: Case) -> CaseOutcome:
    """Build the case's problem, check it, and restore whatever it changed."""
    start = time.perf_counter()
    outcome = CaseOutcome(case)
    try:
        problem = case.build()
        try:
            outcome.result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
            outcome.taylor = taylor_test(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
            if problem.contract is not None:
                outcome.contract = problem.contract()
        finally:
            problem.restore()
    except Exception as err:  # a crash is a failure to report, not a reason to stop the run
        outcome.error = f"{type(err).__name__}: {err}"
    outcome.seconds = time.perf_counter() - start
    return outcome


#: The columns of the gradient-check table.
HEADER = [
    "component",
    "configuration",
    "input",
    "shape",
    "method",
    "max rel err",
    "worst |a-n|",
    "estimate",
    "tolerance",
    "kinks f/m/x",
    "taylor",
    "contract",
    "verdict",
]


def _rows(outcome: CaseOutcome) -> list[list[str]]:
    case = outcome.case
    if outcome.error or outcome.result is None:
        return [[case.component, case.config, *["-"] * (len(HEADER) - 3), "ERROR"]]
    slopes = [s for s in (outcome.taylor.slopes if outcome.taylor else ()) if s is not None]
    taylor = f"{min(slopes):.2f}" if slopes else "lin"
    if outcome.taylor is not None and not outcome.taylor_judged:
        taylor += " (kink)"
    contract = "-" if outcome.contract is None else ("ok" if outcome.contract.passed else "FAIL")
    rows = []
    for a in outcome.result.arrays:
        kinks = f"{a.kinks.found}/{a.kinks.moved}/{a.kinks.excluded}" if a.kinks.found else "-"
        taylor_failed = (
            outcome.taylor_judged and outcome.taylor is not None and not outcome.taylor.passed
        )
        contract_failed = outcome.contract is not None and not outcome.contract.passed
        verdict: str = a.verdict
        if a.passed and (taylor_failed or contract_failed):
            verdict = "TAYLOR" if taylor_failed else "CONTRACT"
        rows.append(
            [
                case.component,
                case.config,
                a.name,
                "x".join(map(str, a.shape)) or "()",
                a.method,
                f"{a.max_rel_error:.1e}",
                f"{a.abs_error:.1e}",
                f"{a.error_estimate:.1e}",
                f"{a.tolerance:.1e}",
                kinks,
                taylor,
                contract,
                verdict,
            ]
        )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _tests_cell(tests: Sequence[str]) -> str:
    """The first two tests citing an ID, and how many more (the JSON lists them all)."""
    short = [name.removeprefix("tests.") for name in tests[:2]]
    more = f" (+{len(tests) - 2} more)" if len(tests) > 2 else ""
    return (", ".join(short) + more) if tests else "MISSING"


def format_report(report: Report) -> str:
    """The human-readable report: checks, traceability, summary."""
    header = HEADER
    rows = [row for o in report.outcomes for row in _rows(o)]
    out = [
        "GRADIENT CHECKS (refnn.gradcheck: central differences + Richardson, float64)",
        _table(header, rows),
    ]
    errors = [o for o in report.outcomes if o.error]
    for o in errors:
        out.append(f"ERROR in {o.case.component} [{o.case.config}]: {o.error}")
    for o in report.outcomes:
        if o.result is not None and not o.result.passed:
            out += [a.message() for a in o.result.arrays if not a.passed]
        if o.contract is not None and not o.contract.passed:
            out.append(f"CONTRACT in {o.case.component} [{o.case.config}]:\n{o.contract.format()}")
        if o.taylor is not None and o.taylor_judged and not o.taylor.passed:
            out.append(f"TAYLOR in {o.case.component} [{o.case.config}]:\n{o.taylor.format()}")
    if report.trace is not None:
        t = report.trace
        trows = [
            [
                spec_id,
                ", ".join(t.implemented.get(spec_id, [])) or "MISSING",
                _tests_cell(t.tested.get(spec_id, [])),
                ", ".join(sorted(set(t.checked.get(spec_id, [])))) or "-",
            ]
            for spec_id in sorted(t.defined)
            if not spec_id.startswith("NOTE-")
        ]
        out += [
            "",
            "SPEC TRACEABILITY (spec ID -> implementation -> tests -> make-check cases)",
            _table(["spec ID", "implemented by", "tests", "checked by"], trows),
        ]
        out += [f"TRACE PROBLEM: {p}" for p in report.trace_problems]
    n_rows = len(rows)
    failed_rows = sum(1 for r in rows if r[-1] != "ok")
    judged = [(o.case, a) for o in report.outcomes if o.result for a in o.result.arrays]
    worst = max(judged, key=lambda ca: ca[1].max_rel_error, default=None)
    kinks = sum(a.kinks.found for _, a in judged)
    out += [
        "",
        "SUMMARY",
        f"cases: {len(report.outcomes)} ({sum(o.passed for o in report.outcomes)} passed); "
        f"rows: {n_rows} ({n_rows - failed_rows} ok, {failed_rows} failed)",
        (
            f"worst max relative error: {worst[1].max_rel_error:.2e} "
            f"({worst[0].component} [{worst[0].config}], input {worst[1].name}; "
            f"its worst element: |a-n| {worst[1].abs_error:.1e} "
            f"vs tolerance {worst[1].tolerance:.1e})"
            if worst
            else ""
        ),
        f"kink elements found: {kinks}; trace problems: {len(report.trace_problems)}",
        f"time: {report.seconds:.1f} s",
        "RESULT: " + ("PASS" if report.passed else "FAIL"),
    ]
    return "\n".join(out)


def to_json(report: Report) -> dict[str, Any]:
    """The same report as plain JSON data."""
    t = report.trace
    return {
        "passed": report.passed,
        "seconds": report.seconds,
        "cases": [
            {
                "component": o.case.component,
                "config": o.case.config,
                "specs": list(o.case.specs),
                "passed": o.passed,
                "error": o.error,
                "seconds": o.seconds,
                "arrays": [a.to_dict() for a in o.result.arrays] if o.result else [],
                "taylor": o.taylor.to_dict() if o.taylor else None,
                "contract": o.contract.to_dict() if o.contract else None,
            }
            for o in report.outcomes
        ],
        "trace": None
        if t is None
        else {
            spec_id: {
                "defined": t.defined[spec_id],
                "implemented_by": t.implemented.get(spec_id, []),
                "tests": t.tested.get(spec_id, []),
                "checked_by": sorted(set(t.checked.get(spec_id, []))),
            }
            for spec_id in sorted(t.defined)
        },
        "trace_problems": report.trace_problems,
    }


def run(cases: Sequence[Case] | None = None, *, root: Path | None = None) -> Report:
    """Run the cases (default: all registered) and build the traceability table."""
    start = time.perf_counter()
    report = Report()
    for case in all_cases() if cases is None else cases:
        report.outcomes.append(run_case(case))
    checked: dict[str, list[str]] = {}
    for o in report.outcomes:
        for spec_id in o.case.specs:
            checked.setdefault(spec_id, []).append(o.case.component)
    report.trace = build_trace(root, checked)
    report.trace_problems = report.trace.problems()
    report.seconds = time.perf_counter() - start
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m refnn.verify [--json PATH] [--only SUBSTRING]``."""
    parser = argparse.ArgumentParser(prog="python -m refnn.verify", description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this path")
    parser.add_argument("--only", help="run only components whose name contains this text")
    args = parser.parse_args(argv)
    cases = all_cases()
    if args.only:
        cases = [c for c in cases if args.only.lower() in c.component.lower()]
    report = run(cases)
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")
        print(f"JSON report written to {args.json}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
