"""Result records of every check, their tables, their JSON form and their failure messages."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from refnn.gradcheck._core import AnyArray, Index, Method, Verdict


class GradcheckError(AssertionError):
    """A check failed; the message names the input, the worst element and both values."""


def _g(x: float) -> str:
    return f"{x:.6g}"


def _e(x: float) -> str:
    return f"{x:.2e}"


def _index(name: str, index: Index | None) -> str:
    if index is None:
        return f"{name} (random projection)"
    return f"{name}[{', '.join(str(i) for i in index)}]"


@dataclass(frozen=True)
class KinkCounts:
    """Elements whose stencil straddles a kink (GC-KINK) and what became of them."""

    found: int = 0
    """Elements flagged: a kink inside the stencil, a loose estimate, or the domain's edge."""
    moved: int = 0
    """Of those, elements judged off their kink: with smaller steps, one-sided, or (on the
    kink) against both one-sided derivatives. ``found = moved + excluded``."""
    excluded: int = 0
    """Of those, elements no step resolved: not judged (the input is then inconclusive)."""
    loose: int = 0
    """Of ``found``, elements flagged because their truncation estimate dominated the bound (f
    changes on the scale of the step) rather than by the slope test."""
    on_kink: int = 0
    """Of ``moved``, elements on a kink at every resolved step: the analytic value was judged
    against the hull of the two one-sided derivatives (exact ties are beyond differences)."""
    edge: int = 0
    """Of ``found``, elements whose stencil left f's domain (f NaN/Inf, or f raised): smaller or
    one-sided steps were used."""
    jump: int = 0
    """Of ``found``, elements where f jumps (or is noisy) at x, found alone by the noise
    bisection (GC-NOISE-BLOCK): judged at x +- 4h where f is smooth, or not judged."""


@dataclass(frozen=True, eq=False)
class ElementDetails:
    """The full picture of an elementwise check (``check_grad(..., details=True)``)."""

    numerical: AnyArray
    """The numerical gradient the verdict used (Richardson values; NaN where not judged)."""
    analytical: AnyArray
    abs_error: AnyArray
    bound: AnyArray
    """Per-element tolerance (GC-TOL); NaN where not judged."""
    wrong: AnyArray
    """Boolean mask of the elements judged wrong."""
    state: tuple[str, ...]
    """Per element (flat order): plain, shrunk, edge, moved (off its kink) or excluded."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None)."""

        def plain(a: AnyArray) -> Any:
            values: list[Any] = a.reshape(-1).tolist()
            return [None if isinstance(v, float) and math.isnan(v) else v for v in values]

        return {
            "numerical": plain(self.numerical),
            "analytical": plain(self.analytical),
            "abs_error": plain(self.abs_error),
            "bound": plain(self.bound),
            "wrong": self.wrong.tolist(),
            "state": list(self.state),
        }


@dataclass(frozen=True)
class ArrayResult:
    """The verdict on one checked input.

    ``numerical``, ``analytical``, ``abs_error``, ``rel_error``, ``error_estimate`` and
    ``tolerance`` describe the worst element: the one with the largest
    ``abs_error / tolerance`` (in fast mode: the worst random direction, ``worst_index`` None).
    """

    name: str
    shape: Index
    dtype: str
    method: Method
    verdict: Verdict
    n_elements: int
    n_checked: int
    """Elements (fast mode: directions) judged."""
    n_wrong: int
    max_rel_error: float
    """Largest relative error (GC-RELERR) over the judged elements; reported, not judged."""
    worst_index: Index | None
    numerical: float
    analytical: float
    abs_error: float
    rel_error: float
    error_estimate: float
    """Truncation plus rounding estimate of the numerical value (GC-RICHARDSON)."""
    tolerance: float
    """The bound ``abs_error`` was judged against (GC-TOL)."""
    worst_moved: bool
    """True when the worst values were measured at a point moved off a kink."""
    kinks: KinkCounts
    fell_back: bool
    """True when fast mode failed and the elementwise check decided."""
    n_f_evals: int
    rtol: float
    atol: float
    note: str = ""
    details: ElementDetails | None = None
    """Per-element arrays when requested (``details=True``) and judged elementwise."""

    @property
    def passed(self) -> bool:
        """True when the verdict is ``ok``."""
        return self.verdict == "ok"

    def message(self) -> str:
        """One paragraph on this input: worst element, both values, both errors."""
        where = _index(self.name, self.worst_index)
        moved = " (at a point moved off a kink)" if self.worst_moved else ""
        text = (
            f"input {self.name!r} shape {self.shape} {self.dtype}, {self.method}: {self.verdict}; "
            f"worst element {where}{moved}: numerical {self.numerical!r} vs analytical "
            f"{self.analytical!r}; abs error {_e(self.abs_error)} (tolerance "
            f"{_e(self.tolerance)} = atol {_e(self.atol)} + rtol {_e(self.rtol)}*|numerical| "
            f"+ safety*estimate {_e(self.error_estimate)}), rel error {_e(self.rel_error)}; "
            f"{self.n_wrong} of {self.n_checked} judged wrong; kinks found {self.kinks.found} "
            f"({self.kinks.loose} loose), moved {self.kinks.moved}, excluded {self.kinks.excluded}"
            + (f", on a kink {self.kinks.on_kink}" if self.kinks.on_kink else "")
        )
        return text + (f"; {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(replace(self, details=None))
        out["details"] = None if self.details is None else self.details.to_dict()
        out["shape"] = list(self.shape)
        out["worst_index"] = None if self.worst_index is None else list(self.worst_index)
        out["passed"] = self.passed
        return out


@dataclass(frozen=True)
class TaylorDirection:
    """The remainder sweep along one random unit direction (GC-TAYLOR)."""

    steps: tuple[float, ...]
    remainders: tuple[float, ...]
    floors: tuple[float, ...]
    """Rounding level of each remainder; points below ``TAYLOR_MARGIN * floor`` are not fitted."""
    slope: float | None
    """Least-squares slope of log r vs log h over the fitted points; None when not fitted."""
    n_fitted: int
    passed: bool
    note: str


@dataclass(frozen=True)
class TaylorResult:
    """Taylor-remainder test: slope ~2 for a correct gradient, ~1 for a wrong one."""

    passed: bool
    threshold: float
    directions: tuple[TaylorDirection, ...]
    note: str = ""

    @property
    def slopes(self) -> tuple[float | None, ...]:
        """The fitted slope of each direction (None: remainder at rounding level)."""
        return tuple(d.slope for d in self.directions)

    def format(self) -> str:
        """A short table, one line per direction."""
        lines = [
            f"Taylor test (pass: slope >= {self.threshold}): {'ok' if self.passed else 'FAILED'}"
        ]
        for i, d in enumerate(self.directions):
            slope = "  -  " if d.slope is None else f"{d.slope:5.2f}"
            status = "ok" if d.passed else "WRONG"
            lines.append(
                f"  direction {i}: slope {slope}  fitted {d.n_fitted:2d}  {status}  {d.note}"
            )
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`GradcheckError` unless every direction passed."""
        if not self.passed:
            raise GradcheckError(self.format())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["slopes"] = list(self.slopes)
        return out


_COLUMNS = (
    ("input", 10),
    ("shape", 12),
    ("method", 11),
    ("verdict", 12),
    ("max relerr", 10),
    ("worst", 12),
    ("numerical", 13),
    ("analytical", 13),
    ("abs err", 9),
    ("estimate", 9),
    ("tol", 9),
    ("kinks f/m/x", 11),
)


def _row(a: ArrayResult) -> list[str]:
    worst = "proj" if a.worst_index is None else str(list(a.worst_index)).replace(" ", "")
    method = a.method + ("*" if a.fell_back else "")
    return [
        a.name,
        str(a.shape).replace(" ", ""),
        method,
        a.verdict,
        _e(a.max_rel_error),
        worst,
        _g(a.numerical),
        _g(a.analytical),
        _e(a.abs_error),
        _e(a.error_estimate),
        _e(a.tolerance),
        f"{a.kinks.found}/{a.kinks.moved}/{a.kinks.excluded}",
    ]


@dataclass(frozen=True)
class GradcheckResult:
    """The verdict of :func:`check_grad` / :func:`check_vjp`: one :class:`ArrayResult` per input."""

    arrays: tuple[ArrayResult, ...]
    seed: int
    n_f_evals: int
    n_grad_evals: int
    taylor: TaylorResult | None = None

    @property
    def taylor_judged(self) -> bool:
        """The Taylor test decides only where f is smooth (GC-TAYLOR): a kink found by the
        elementwise check makes r(h) shrink like h along almost every direction, whatever g."""
        return self.taylor is not None and not any(a.kinks.found for a in self.arrays)

    @property
    def passed(self) -> bool:
        """Every checked input is ``ok`` (and the Taylor test passed, when it was judged)."""
        ok = all(a.passed for a in self.arrays)
        return ok and (self.taylor is None or not self.taylor_judged or self.taylor.passed)

    @property
    def failures(self) -> tuple[ArrayResult, ...]:
        """The inputs that did not pass."""
        return tuple(a for a in self.arrays if not a.passed)

    def format(self) -> str:
        """A readable table (``*`` after the method: fast mode failed, elementwise decided)."""
        rows = [[c for c, _ in _COLUMNS]] + [_row(a) for a in self.arrays]
        widths = [max(w, *(len(r[i]) for r in rows)) for i, (_, w) in enumerate(_COLUMNS)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        status = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"gradcheck {status}: {self.n_f_evals} f evaluations, {self.n_grad_evals} gradient "
            f"evaluations, seed {self.seed}"
        )
        lines.append(
            "(max relerr: over all judged elements; worst .. tol: the element with the largest "
            "abs err / tol)"
        )
        lines.extend(f"note on {a.name!r}: {a.note}" for a in self.arrays if a.note)
        if self.taylor is not None:
            lines.append(self.taylor.format())
            if not self.taylor_judged:
                lines.append(
                    "  not judged: the elementwise check found kinks, where the remainder "
                    "shrinks like h for any gradient"
                )
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`GradcheckError` naming each failing input's worst element."""
        if self.passed:
            return
        parts = ["gradient check failed:"] + [a.message() for a in self.failures]
        if self.taylor is not None and self.taylor_judged and not self.taylor.passed:
            parts.append(self.taylor.format())
        raise GradcheckError("\n".join(parts))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "passed": self.passed,
            "seed": self.seed,
            "n_f_evals": self.n_f_evals,
            "n_grad_evals": self.n_grad_evals,
            "arrays": [a.to_dict() for a in self.arrays],
            "taylor": None if self.taylor is None else self.taylor.to_dict(),
            "taylor_judged": self.taylor_judged,
        }


@dataclass(frozen=True)
class ContractCheck:
    """One property of a backward function (GC-CONTRACT)."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class ContractResult:
    """The verdict of :func:`check_backward_contract`."""

    checks: tuple[ContractCheck, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        """Every property holds."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[ContractCheck, ...]:
        """The properties that do not hold."""
        return tuple(c for c in self.checks if not c.passed)

    def format(self) -> str:
        """One line per property."""
        lines = [f"{'ok   ' if c.passed else 'FAIL '} {c.name}: {c.detail}" for c in self.checks]
        lines.append(f"backward contract {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`GradcheckError` listing the properties that do not hold."""
        if not self.passed:
            details = "; ".join(f"{c.name}: {c.detail}" for c in self.failures)
            raise GradcheckError(f"backward contract violated: {details}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}
