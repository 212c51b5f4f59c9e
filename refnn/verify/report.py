"""The ``make check`` report: what a person scans on a terminal, and the full detail as JSON.

When cases fail, the text starts with where to look: the smallest failing components, the spec
IDs of their failing quantities and the functions computing them, the command rerunning just
those. Then one line per case (the figures take 60 columns beside the names), failing cases
first; each failing case in full, smallest first; the traceability in a few lines (``--trace``
adds one line per spec ID); the summary. The JSON holds everything: every input's figures, the
Taylor sweeps, the contract checks, the traceability of every spec ID and the provenance.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from refnn.gradcheck import ArrayResult, ContractResult, GradcheckResult
from refnn.verify.cases import Case
from refnn.verify.locate import component_class, implementations, quantity_specs, size
from refnn.verify.trace import Trace


@dataclass
class CaseOutcome:
    """What one case produced: the gradient check (with its Taylor test), the contract, or the
    error raised while building or checking it."""

    case: Case
    result: GradcheckResult | None = None
    contract: ContractResult | None = None
    error: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when nothing raised, every input is ok (Taylor included) and the contract held."""
        contract_ok = self.contract is None or self.contract.passed
        return not self.error and self.result is not None and self.result.passed and contract_ok


@dataclass
class Report:
    """All outcomes and the traceability (None when skipped: no checkout to trace)."""

    outcomes: list[CaseOutcome] = field(default_factory=list)
    trace: Trace | None = None
    trace_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when at least one case ran, every case passed and the trace has no broken link."""
        ran = bool(self.outcomes)
        return ran and all(o.passed for o in self.outcomes) and not self.trace_problems


#: Printed instead of the traceability where the package is installed.
TRACE_SKIPPED = "skipped (specs/ not shipped in an installed package)"

HEADER = (
    "component",
    "configuration",
    "rel err",
    "err/tol",
    "kinks",
    "taylor",
    "contract",
    "verdict",
)
LEGEND = (
    "rel err: the largest over every element of every input; err/tol: |a-n| / tolerance at the\n"
    "worst element (<= 1 passes); kinks: elements found on a kink / moved off it / excluded;\n"
    "taylor: smallest remainder slope (2 right, 1 wrong; lin: f linear; kink: not judged)"
)


def verdict(o: CaseOutcome) -> str:
    """``ok``, or the first reason the case failed: ERROR, an input's verdict, TAYLOR, CONTRACT."""
    if o.error or o.result is None:
        return "ERROR"
    bad = [a.verdict for a in o.result.arrays if not a.passed]
    if bad:
        return bad[0]
    if not o.result.passed:
        return "TAYLOR"
    return "CONTRACT" if o.contract is not None and not o.contract.passed else "ok"


def _ratio(a: ArrayResult) -> float:
    """The worst element's error over the tolerance it was judged against."""
    if a.tolerance > 0:
        return a.abs_error / a.tolerance
    return np.inf if a.abs_error > 0 else 0.0


def _row(o: CaseOutcome) -> list[str]:
    case, result = o.case, o.result
    if result is None:
        return [case.component, case.config, "-", "-", "-", "-", "-", verdict(o)]
    arrays = result.arrays
    ratio = max((_ratio(a) for a in arrays), default=0.0)
    found = sum(a.kinks.found for a in arrays)
    kinks = f"{found}/{sum(a.kinks.moved for a in arrays)}/{sum(a.kinks.excluded for a in arrays)}"
    slopes = [s for s in (result.taylor.slopes if result.taylor else ()) if s is not None]
    taylor = f"{min(slopes):.2f}" if slopes else "lin"
    if not result.taylor_judged:
        taylor = "kink" if result.taylor is not None else "-"
    contract = "-" if o.contract is None else ("ok" if o.contract.passed else "FAIL")
    return [
        case.component,
        case.config,
        f"{max((a.max_rel_error for a in arrays), default=0.0):.1e}",
        f"{ratio:.1e}",
        kinks if found else "-",
        taylor,
        contract,
        verdict(o),
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, a rule under the header."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return [line.rstrip() for line in lines]


def _failure(o: CaseOutcome) -> list[str]:
    out = [f"FAILED: {o.case.component} [{o.case.config}] ({verdict(o)})"]
    if o.error:
        out.append(f"  {o.error}")
    if o.result is not None and not o.result.passed:
        out += [a.message() for a in o.result.arrays if not a.passed]
        out.append(o.result.format())
    if o.contract is not None and not o.contract.passed:
        out.append(o.contract.format())
    return out


def _trace_lines(report: Report, per_id: bool) -> list[str]:
    t = report.trace
    if t is None:
        return [f"traceability: {TRACE_SKIPPED}"]
    ids = [i for i in sorted(t.defined) if not i.startswith("NOTE-")]
    n_impl, n_tested, n_checked = (
        sum(1 for i in ids if links.get(i)) for links in (t.implemented, t.tested, t.checked)
    )
    out = [
        f"traceability: {len(ids)} spec IDs; {n_impl} implemented, {n_tested} tested, "
        f"{n_checked} verified by make-check cases; "
        f"{len(report.trace_problems)} problems",
        *(f"TRACE PROBLEM: {p}" for p in report.trace_problems),
    ]
    for i in ids if per_id else ():
        impl = t.implemented.get(i, [])
        where = (
            impl[0].removeprefix("refnn.") + (f" +{len(impl) - 1}" if len(impl) > 1 else "")
            if impl
            else "NOT IMPLEMENTED"
        )
        cases = len(t.checked.get(i, []))
        out.append(f"  {i:<18} {where:<44} tests {len(t.tested.get(i, [])):>3}  cases {cases:>3}")
    return out


def _size(o: CaseOutcome) -> tuple[int, int, int]:
    arrays = o.result.arrays if o.result else ()
    return size(o.case, len(arrays), sum(a.n_elements for a in arrays))


def _failing_inputs(o: CaseOutcome) -> list[ArrayResult]:
    return [a for a in (o.result.arrays if o.result else ()) if not a.passed]


def _where(spec_ids: Sequence[str], report: Report) -> str:
    """``DENSE-DW (dense.md: weight gradient) in refnn.dense.dense_backward``."""
    parts = []
    for spec_id in spec_ids:
        defined = report.trace.defined.get(spec_id) if report.trace else None
        funcs = implementations(spec_id, report.trace)
        parts.append(
            spec_id
            + (f" ({defined})" if defined else "")
            + (f", computed by {', '.join(funcs)}" if funcs else "")
        )
    return "; ".join(parts) if parts else "no spec ID known for it"


def _rerun(names: Sequence[str]) -> str:
    only = ",".join(names)
    return f"python -m refnn.verify --only '{only}'   (or: make check ONLY='{only}')"


def headline(report: Report) -> list[str]:
    """What to look at first when cases fail: the smallest failing components, each with its
    smallest failing case, the failing quantities' spec IDs and the functions computing them,
    the composite cases failing with them, and the command rerunning just those components."""
    failed = sorted((o for o in report.outcomes if not o.passed), key=_size)
    if not failed:
        if not report.trace_problems:
            return []
        return [
            f"RESULT: FAIL: every case passed ({len(report.outcomes)}), but the spec traceability "
            f"has {len(report.trace_problems)} problem(s):",
            *(f"  {p}" for p in report.trace_problems),
            "  (python -m refnn.verify --trace prints the table of every spec ID)",
        ]
    single = [o for o in failed if component_class(o.case) is not None]
    first = single or failed[:1]  # only composites fail: the smallest of them
    by_component: dict[str, list[CaseOutcome]] = {}
    for o in first:
        name = component_class(o.case) or o.case.component
        by_component.setdefault(name, []).append(o)
    out = [
        f"RESULT: FAIL: {len(failed)} of {len(report.outcomes)} cases failed; "
        "smallest failing components first (the full table and detail follow)",
    ]
    for name, outcomes in by_component.items():
        o = outcomes[0]
        total = sum(
            1 for x in report.outcomes if (component_class(x.case) or x.case.component) == name
        )
        out.append(
            f"  {name}: {len(outcomes)} of {total} cases failed; smallest: "
            f"{o.case.component} [{o.case.config}] ({verdict(o)})"
        )
        if o.error:
            out.append(f"    {o.error}")
        for a in _failing_inputs(o):
            out += [
                f"    d/d{a.name}: {a.verdict}, err/tol {_ratio(a):.1e}, "
                f"rel err {a.max_rel_error:.1e}",
                f"      spec {_where(quantity_specs(o.case, a.name), report)}",
            ]
        if o.result is not None and o.result.passed is False and not _failing_inputs(o):
            out.append("    the Taylor test failed: " + _where(o.case.specs, report))
        if o.contract is not None and not o.contract.passed:
            out.append("    the backward contract failed (see its detail below)")
    rest = [o for o in failed if o not in first]
    if rest:
        counts: dict[str, int] = {}
        for o in rest:
            counts[o.case.component] = counts.get(o.case.component, 0) + 1
        listed = ", ".join(f"{c} ({n})" for c, n in counts.items())
        out.append(f"  also failing, built from components ({len(rest)} cases): {listed}")
    out.append(f"  rerun just these: {_rerun(list(by_component))}")
    return out


def format_report(report: Report, *, trace_table: bool = False) -> str:
    """The text report; ``trace_table`` adds one line per spec ID."""
    outcomes = sorted(report.outcomes, key=lambda o: o.passed)  # failing cases first, else order
    top = headline(report)
    out = [
        *([*top, ""] if top else []),
        "GRADIENT CHECKS (refnn.gradcheck: central differences + Richardson, Taylor test, "
        "backward contract)",
        LEGEND,
        "",
        *table(HEADER, [_row(o) for o in outcomes]),
    ]
    failed = sorted((o for o in outcomes if not o.passed), key=_size)
    if failed:
        out += ["", "DETAIL OF EACH FAILING CASE (smallest first)"]
    for o in failed:
        out += ["", *_failure(o)]
    out += ["", *_trace_lines(report, trace_table)]
    arrays = [(o.case, a) for o in report.outcomes if o.result for a in o.result.arrays]
    n_ok = sum(a.passed for _, a in arrays)
    out += [
        "",
        "SUMMARY",
        f"cases: {len(report.outcomes)} ({sum(o.passed for o in report.outcomes)} passed); "
        f"inputs checked: {len(arrays)} ({n_ok} ok, {len(arrays) - n_ok} failed)",
    ]
    if arrays:
        case, a = max(arrays, key=lambda ca: _ratio(ca[1]))
        out.append(
            f"worst err/tol (<= 1 passes): {_ratio(a):.1e} ({case.component} [{case.config}], "
            f"input {a.name})"
        )
    for dtype, float32 in (("float64", False), ("float32", True)):
        judged = [(case, a) for case, a in arrays if case.float32 == float32]
        if judged:
            case, a = max(judged, key=lambda ca: ca[1].max_rel_error)
            out.append(
                f"worst relative error, {dtype}: {a.max_rel_error:.2e} "
                f"({case.component} [{case.config}], input {a.name})"
            )
    trace = TRACE_SKIPPED if report.trace is None else f"{len(report.trace_problems)} problems"
    out += [
        f"kink elements found: {sum(a.kinks.found for _, a in arrays)}; traceability: {trace}",
        f"time: {report.seconds:.1f} s",
        "RESULT: " + ("PASS" if report.passed else "FAIL"),
    ]
    return "\n".join(out)


def _blas() -> str:
    """numpy's BLAS as its build configuration names it (``scipy-openblas 0.3.27``)."""
    try:
        config: Any = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '?')}".strip()
    except Exception:  # older numpy, or a build without the section
        return "unknown"


def _commit(root: Path | None) -> str | None:
    """The checkout's commit (with ``+dirty`` when it has uncommitted changes), else None."""
    if root is None or not (root / ".git").exists():
        return None
    try:
        git = ["git", "-C", str(root)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance(root: Path | None) -> dict[str, Any]:
    """What produced a report: refnn, numpy and its BLAS, Python, the platform, the checkout's
    commit (None when installed) and the date (UTC)."""
    import refnn

    return {
        "refnn": refnn.__version__,
        "numpy": np.__version__,
        "blas": _blas(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "commit": _commit(root),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _case_json(o: CaseOutcome) -> dict[str, Any]:
    r = o.result
    return {
        "component": o.case.component,
        "config": o.case.config,
        "specs": list(o.case.specs),
        "float32": o.case.float32,
        "passed": o.passed,
        "verdict": verdict(o),
        "error": o.error,
        "failure": None if o.passed else "\n".join(_failure(o)),
        "seconds": o.seconds,
        "arrays": [a.to_dict() for a in r.arrays] if r else [],
        "taylor": r.taylor.to_dict() if r and r.taylor else None,
        "taylor_judged": r.taylor_judged if r else False,
        "contract": o.contract.to_dict() if o.contract else None,
    }


def to_json(report: Report) -> dict[str, Any]:
    """The whole report as plain JSON data (``trace`` None and ``trace_skipped`` set when the
    package is installed)."""
    t = report.trace
    return {
        "passed": report.passed,
        "seconds": report.seconds,
        "cases": [_case_json(o) for o in report.outcomes],
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
        "trace_skipped": TRACE_SKIPPED if t is None else None,
        "trace_problems": report.trace_problems,
    }
