"""Run every ``make check`` case through :func:`refnn.gradcheck.check_grad` and decide.

Each case gets the finite-difference check with its Taylor test (``check_grad(..., taylor=True)``,
which judges the Taylor test only where f is smooth) and, for layers, the backward contract.
In a checkout, the spec traceability (ID -> implementing functions -> tests -> check cases) is
part of the verdict; an installed package ships no ``specs/`` or ``tests/``, so there the
traceability is skipped and every derivative is still verified. The exit status is 1 on any
failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from refnn.gradcheck import check_grad
from refnn.verify.cases import Case, all_cases
from refnn.verify.report import CaseOutcome, Report, format_report, provenance, to_json
from refnn.verify.trace import build_trace, source_root


def run_case(case: Case) -> CaseOutcome:
    """Build the case's objective, check it, and restore whatever it changed."""
    start = time.perf_counter()
    outcome = CaseOutcome(case)
    try:
        objective = case.build()
        try:
            outcome.result = check_grad(
                objective.f,
                objective.grad,
                objective.inputs,
                wrt=objective.wrt,
                allow_float32=case.float32,
                taylor=True,
            )
            if objective.contract is not None:
                outcome.contract = objective.contract()
        finally:
            objective.restore()
    except Exception as err:  # a crash is a failure to report, not a reason to stop the run
        outcome.error = f"{type(err).__name__}: {err}"
    outcome.seconds = time.perf_counter() - start
    return outcome


def run(cases: Sequence[Case] | None = None, *, root: Path | None = None) -> Report:
    """Run the cases (default: all) and, when ``root`` is a checkout, trace its specs.

    Parameters
    ----------
    cases : sequence of Case, optional
    root : Path, optional
        The checkout holding ``specs/`` and ``tests/`` (see :func:`source_root`); None skips the
        traceability.
    """
    start = time.perf_counter()
    report = Report([run_case(case) for case in (all_cases() if cases is None else cases)])
    if root is not None:
        checked: dict[str, list[str]] = {}
        for o in report.outcomes:
            for spec_id in o.case.specs:
                checked.setdefault(spec_id, []).append(o.case.component)
        report.trace = build_trace(root, checked)
        report.trace_problems = report.trace.problems()
    report.seconds = time.perf_counter() - start
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m refnn.verify [--json PATH] [--only TEXT[,TEXT...]] [--trace]``."""
    parser = argparse.ArgumentParser(
        prog="python -m refnn.verify",
        description="Verify every derivative in refnn by finite differences (make check).",
    )
    parser.add_argument("--json", type=Path, help="also write the full report as JSON here")
    parser.add_argument(
        "--only",
        metavar="TEXT[,TEXT...]",
        help="run only components whose name contains one of these texts (case-insensitive), "
        "e.g. --only Dense or --only 'Conv2D,MaxPool2D'; a failing run prints the one to rerun",
    )
    parser.add_argument("--trace", action="store_true", help="print the table of every spec ID")
    args = parser.parse_args(argv)
    cases = all_cases()
    if args.only:
        wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
        cases = [c for c in cases if any(w in c.component.lower() for w in wanted)]
        if not cases:
            print(f"--only {args.only!r} matches no component", file=sys.stderr)
    root = source_root()
    report = run(cases, root=root)
    print(format_report(report, trace_table=args.trace))
    if args.json:
        data = {"provenance": provenance(root), **to_json(report)}
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"JSON report written to {args.json}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
