"""Judging one checked input: elementwise (GC-TOL, GC-KINK) or by projections (GC-PROJ).

Each checked input is one :class:`Target` record: what it is, its analytic gradient, and per
element what the check measured. The elementwise check evaluates the cheap central difference
``D(h)`` first (2 evaluations per element) and completes the five-point stencil (2 more) only
where ``D(h)`` alone does not settle the verdict; flagged elements (kinks, f changing on the
scale of the step, the edge of f's domain) are re-measured with smaller steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from refnn.gradcheck._core import Float64Array, Index, Method, NonFiniteError, Problem, Verdict
from refnn.gradcheck._numeric import (
    KINK_NOISE,
    LOOSE_NOISE,
    SAFETY,
    Estimate,
    central,
    excess,
    is_kink,
    is_loose,
    one_sided,
    relative_error,
    tolerance,
)
from refnn.gradcheck._report import ArrayResult, ElementDetails, KinkCounts

#: Stencil offsets in units of h (the centre value is shared).
FRACTIONS = (-1.0, -0.5, 0.5, 1.0)
#: D(h) settles an element when |a - D(h)| + SAFETY R <= CLEAR (atol + rtol |D(h)|).
CLEAR = 0.1
#: A flagged element is re-measured with h / SHRINK, h / SHRINK^2, ... (SHRINK_ROUNDS times).
SHRINK, SHRINK_ROUNDS = 16.0, 6
#: Shrinking stops where SAFETY * R exceeds the tolerance and RESOLVE times the input's scale.
RESOLVE = 1e-3
#: Fast mode: directions per input; auto mode uses it above FAST_THRESHOLD elements.
FAST_DIRECTIONS, FAST_THRESHOLD = 3, 2000
#: Fast mode judges a projection to rtol * FAST_RTOL * ||g * v|| plus its own error estimate.
FAST_RTOL = 0.01

# element states: how an element was judged
PLAIN, SHRUNK, EDGE, MOVED, EXCLUDED = range(5)
STATE_NAMES = ("plain", "shrunk", "edge", "moved", "excluded")
#: An element on its kink at every resolved step is judged at x +- KINK_SHIFT h (GC-KINK).
KINK_SHIFT = 4.0


@dataclass
class Target:
    """One checked input: its values, analytic gradient, settings and per-element findings."""

    problem: Problem
    k: int
    """Position among all inputs."""
    x: Float64Array
    """Flat float64 values (representable in the input's dtype)."""
    g: Float64Array
    """Flat analytic gradient at x."""
    h0: float
    rtol: float
    atol: float
    atol_given: bool
    analytic: Float64Array = field(init=False)
    """The analytic value each element was judged with (recomputed where moved off a kink)."""
    numerical: Float64Array = field(init=False)
    error: Float64Array = field(init=False)
    bound: Float64Array = field(init=False)
    state: list[int] = field(init=False)
    scale: float = field(init=False)
    """The largest |analytic| or |D(h)| of the input (what rounding is compared with)."""
    flagged: list[str] = field(init=False)
    """Per element: '' or why it was flagged: 'kink', 'loose' or 'edge'."""

    def __post_init__(self) -> None:
        n = self.x.size
        self.analytic = self.g.copy()
        self.scale = float(np.max(np.abs(self.g), initial=0.0))
        self.numerical = np.zeros(n)
        self.error = np.zeros(n)
        self.bound = np.zeros(n)
        self.state = [EXCLUDED] * n
        self.flagged = [""] * n

    @property
    def name(self) -> str:
        """The input's name."""
        return self.problem.names[self.k]

    def steps(self) -> Float64Array:
        """Per-element steps ``h0 max(1, |x|)`` (GC-STEP)."""
        out: Float64Array = self.h0 * np.maximum(1.0, np.abs(self.x))
        return out

    def record(self, i: int, numerical: float, error: float, bound: float, state: int) -> None:
        """Store the judgement of element ``i``."""
        self.numerical[i], self.error[i], self.bound[i], self.state[i] = (
            numerical, error, bound, state
        )  # fmt: skip

    def values(self, i: int, points: Float64Array) -> list[float]:
        """f with element ``i`` at each point; NaN where f is not finite (outside its domain)."""
        out: list[float] = []
        for p in points:
            try:
                out.append(self.problem.value_at(self.k, i, float(p)))
            except NonFiniteError:
                out.append(math.nan)
        return out


def central_differences(t: Target, h: Float64Array) -> Float64Array:
    """``D(h)`` per element (NaN where ``x -+ h`` leaves f's domain).

    Spec: GC-CENTRAL
    """
    lo = t.problem.rounded(t.k, t.x - h)
    hi = t.problem.rounded(t.k, t.x + h)
    ends = np.array([t.values(i, np.array([lo[i], hi[i]])) for i in range(t.x.size)])
    ends = ends.reshape(t.x.size, 2)
    out: Float64Array = (ends[:, 1] - ends[:, 0]) / (hi - lo)
    return out


def _stencil(t: Target, i: int, h: float, f0: float, xi: float | None = None) -> Estimate | None:
    """The five-point estimate at element ``i`` (at ``xi``, default its value) with step ``h``;
    one-sided at a domain edge, None when neither side stays in f's domain."""
    xi = float(t.x[i]) if xi is None else xi
    points = t.problem.rounded(t.k, xi + h * np.array(FRACTIONS))
    v = t.values(i, points)
    o = [float(p) - xi for p in points]
    noise = t.problem.noise
    if all(math.isfinite(a) for a in v):
        return central((o[0], o[1], 0.0, o[2], o[3]), (v[0], v[1], f0, v[2], v[3]), noise)
    if math.isfinite(v[2]) and math.isfinite(v[3]):
        return one_sided(o[2], o[3], f0, v[2], v[3], noise)
    if math.isfinite(v[1]) and math.isfinite(v[0]):
        return one_sided(o[1], o[0], f0, v[1], v[0], noise)
    return None


def _judge(t: Target, i: int, est: Estimate, state: int) -> None:
    bound = tolerance(est.value, est.error, t.rtol, t.atol)
    t.record(i, est.value, est.error, bound, state)


def _moved(t: Target, i: int) -> bool:
    """Judge an element that stays on its kink at points moved to ``x +- 4h``; False if none.

    Both the analytic gradient and the numerical derivative are recomputed there: at the kink
    itself the derivative is a choice among one-sided ones (and, where several kinks coincide
    in one coordinate, among combinations no one-dimensional difference shows).

    Spec: GC-KINK
    """
    h = float(t.steps()[i])
    judged: list[tuple[float, float, float, float]] = []
    for sign in (1.0, -1.0):
        p = float(t.problem.rounded(t.k, np.array([t.x[i] + sign * KINK_SHIFT * h]))[0])
        centre = t.values(i, np.array([p]))[0]
        est = _stencil(t, i, h, centre, p) if math.isfinite(centre) else None
        if est is None or est.one_sided or is_kink(est, t.rtol, t.atol):
            continue
        if is_loose(est, t.rtol, t.atol):
            continue
        moved = t.x.copy()
        moved[i] = p
        shape = t.problem.frozen[t.k].shape
        grads = t.problem.gradients({t.k: moved.reshape(shape)}, "at a point moved off a kink")
        a = float(grads[t.problem.wrt.index(t.k)].reshape(-1)[i])
        bound = tolerance(est.value, est.error, t.rtol, t.atol)
        judged.append((excess(abs(a - est.value), bound), a, est.value, est.error))
    if not judged:
        return False
    _, a, n, error = max(judged)
    t.analytic[i] = a
    t.record(i, n, error, tolerance(n, error, t.rtol, t.atol), MOVED)
    return True


def resolve(t: Target, i: int, f0: float, est: Estimate | None) -> None:
    """Re-measure a flagged element with steps h/16, h/256, ... until its stencil is smooth.

    A point off its kink is judged at x, on its own side, once the stencil no longer reaches
    the kink; a point where f changes on the scale of the step, once the truncation estimate
    no longer dominates the bound, even where rounding then dominates it (the bound carries the
    measured R). A point still on a kink at the finest step the kink test
    resolves is judged at points moved off it. An element still loose is judged WRONG only if
    it fails even its loose bound, and is otherwise excluded (not judged).

    Spec: GC-KINK
    """
    h = float(t.steps()[i])
    kinked = [est] if est is not None and is_kink(est, t.rtol, t.atol) else []
    loose = [est] if est is not None and not kinked else []
    state = EDGE if t.flagged[i] == "edge" else SHRUNK
    for _ in range(SHRINK_ROUNDS):
        h /= SHRINK
        new = _stencil(t, i, h, f0)
        if new is None:
            continue
        if kinked and SAFETY * KINK_NOISE * new.rounding > kinked[-1].kink_score / 2.0:
            break  # the kink test could no longer see the jump it saw
        rounded = SAFETY * new.rounding > max(t.atol + t.rtol * abs(new.value), RESOLVE * t.scale)
        if rounded and (kinked or is_kink(new, t.rtol, t.atol) or is_loose(new, t.rtol, t.atol)):
            break  # rounding dominates: finer steps resolve nothing (a smooth one still decides)
        if is_kink(new, t.rtol, t.atol):
            kinked.append(new)
        elif not is_loose(new, t.rtol, t.atol):
            _judge(t, i, new, state)
            return
        else:
            loose.append(new)
    if kinked and _moved(t, i):
        return
    best = min(loose, key=lambda e: e.error, default=None)
    if best is not None and abs(t.g[i] - best.value) > tolerance(best.value, best.error,
                                                                 t.rtol, t.atol):  # fmt: skip
        _judge(t, i, best, state)  # wrong even under its loose bound
        return
    t.record(i, math.nan, math.nan, math.nan, EXCLUDED)


def check_elementwise(t: Target, f0: float) -> None:
    """Judge every element of ``t`` (GC-TOL, GC-KINK), cheapest stencil first.

    Spec: GC-CENTRAL, GC-RICHARDSON, GC-TOL, GC-KINK
    """
    h = t.steps()
    with np.errstate(all="ignore"):
        d = central_differences(t, h)
        t.scale = max(t.scale, float(np.max(np.abs(d[np.isfinite(d)]), initial=0.0)))
        rounding = t.problem.noise / h
        allowed = t.atol + t.rtol * np.abs(d)
        clear = np.isfinite(d) & (np.abs(t.g - d) + SAFETY * rounding <= CLEAR * allowed)
        estimates: dict[int, Estimate | None] = {}
        for i in np.flatnonzero(~clear).tolist():
            estimates[i] = _stencil(t, i, float(h[i]), f0) if np.isfinite(d[i]) else None
    for i in np.flatnonzero(clear).tolist():
        bound = float(allowed[i] + SAFETY * rounding[i])
        t.record(i, float(d[i]), float(rounding[i]), bound, PLAIN)
    for i, est in estimates.items():
        if est is None or est.one_sided:
            t.flagged[i] = "edge"
        elif is_kink(est, t.rtol, t.atol):
            t.flagged[i] = "kink"
    for i, est in estimates.items():
        if t.flagged[i]:
            continue
        assert est is not None
        if is_loose(est, t.rtol, t.atol):
            t.flagged[i] = "loose"
        else:
            _judge(t, i, est, PLAIN)
    with np.errstate(all="ignore"):
        for i, est in estimates.items():
            if t.flagged[i]:
                resolve(t, i, f0, est)


@dataclass(frozen=True)
class Projection:
    """One random direction of fast mode (GC-PROJ)."""

    numerical: float
    analytical: float
    error: float
    bound: float
    conclusive: bool

    @property
    def ok(self) -> bool:
        """Within the bound and conclusive."""
        return self.conclusive and abs(self.numerical - self.analytical) <= self.bound


def check_fast(t: Target, f0: float, rng: np.random.Generator) -> list[Projection]:
    """Directional derivatives along random directions ``v = u max(1, |x|)``, u ~ N(0, I).

    Spec: GC-PROJ
    """
    out: list[Projection] = []
    shape = t.problem.frozen[t.k].shape
    h0 = t.h0
    for _ in range(FAST_DIRECTIONS):
        v: Float64Array = rng.standard_normal(t.x.size) * np.maximum(1.0, np.abs(t.x))
        f_values: list[float] = []
        g_values: list[float] = []
        for s in FRACTIONS:
            point = t.problem.rounded(t.k, t.x + (s * h0) * v)
            try:
                f_values.append(t.problem.value({t.k: point.reshape(shape)}, f"at x + {s} h v"))
            except NonFiniteError:
                f_values.append(math.nan)
            g_values.append(math.fsum((t.g * (point - t.x)).tolist()))
        offsets = (-h0, -h0 / 2.0, 0.0, h0 / 2.0, h0)
        num = central(offsets, (f_values[0], f_values[1], f0, f_values[2], f_values[3]),
                      t.problem.noise)  # fmt: skip
        ana = central(offsets, (g_values[0], g_values[1], 0.0, g_values[2], g_values[3]), 0.0)
        allowed = t.atol * float(np.linalg.norm(v)) + t.rtol * float(np.linalg.norm(t.g * v))
        estimate = SAFETY * num.error
        resolved = SAFETY * max(0.0, num.truncation - LOOSE_NOISE * num.rounding)
        conclusive = math.isfinite(num.value) and resolved <= allowed
        bound = FAST_RTOL * allowed + estimate
        out.append(Projection(num.value, ana.value, num.error, bound, conclusive))
    return out


def _worst(t: Target, judged: list[int]) -> int | None:
    errors = np.abs(t.analytic - t.numerical)
    return max(judged, key=lambda i: excess(float(errors[i]), float(t.bound[i])), default=None)


def summarize(
    t: Target,
    n_f_evals: int,
    projections: list[Projection] | None = None,
    details: bool = False,
) -> ArrayResult:
    """The one place an :class:`ArrayResult` is built: from the elements or the projections."""
    shape: Index = tuple(int(s) for s in t.problem.frozen[t.k].shape)
    notes: list[str] = []
    kinks = KinkCounts()
    if projections is not None:
        worst_p = max(projections, key=lambda p: excess(abs(p.numerical - p.analytical), p.bound))
        n, a, err, bound = worst_p.numerical, worst_p.analytical, worst_p.error, worst_p.bound
        index: Index | None = None
        n_checked, n_wrong = len(projections), sum(not p.ok for p in projections)
        max_rel = max(relative_error(p.analytical, p.numerical) for p in projections)
        verdict: Verdict = "ok"
        method: Method = "fast"
        moved = False
    else:
        judged = [i for i, s in enumerate(t.state) if s != EXCLUDED]
        wrong = [i for i in judged if abs(t.analytic[i] - t.numerical[i]) > t.bound[i]]
        flagged = [i for i, why in enumerate(t.flagged) if why]
        excluded = len(t.state) - len(judged)
        kinks = KinkCounts(
            found=len(flagged),
            moved=len(flagged) - excluded,
            excluded=excluded,
            loose=sum(t.flagged[i] == "loose" for i in flagged),
            on_kink=sum(s == MOVED for s in t.state),
            edge=sum(t.flagged[i] == "edge" for i in flagged),
        )
        w = _worst(t, judged)
        n, a, err, bound = (0.0, 0.0, 0.0, 0.0)
        if w is not None:
            n, a, err, bound = (float(v[w]) for v in (t.numerical, t.analytic, t.error, t.bound))
        index = None if w is None else tuple(int(s) for s in np.unravel_index(w, shape))
        n_checked, n_wrong = len(judged), len(wrong)
        max_rel = max((relative_error(float(t.analytic[i]), float(t.numerical[i])) for i in judged),
                      default=0.0)  # fmt: skip
        verdict = "WRONG" if wrong else "inconclusive" if excluded else "ok"
        method = "elementwise"
        moved = w is not None and t.state[w] != PLAIN
        if kinks.moved:
            notes.append(
                f"{kinks.moved} flagged element(s) judged off their kink or edge: "
                f"{kinks.on_kink} on a kink judged at a point moved off it, not at the given point "
                "(there a derivative is a choice among one-sided ones), the rest with smaller "
                "steps at x"
            )
        if excluded:
            notes.append(
                f"{excluded} element(s) not judged: a kink or f changing faster than the "
                "smallest step resolves; verdict inconclusive"
            )
        scale_n = float(np.max(np.abs(t.numerical[judged]), initial=0.0)) if judged else 0.0
        if t.atol_given and verdict == "ok" and t.atol > 0.1 * scale_n and np.any(t.g != 0):
            verdict = "inconclusive"
            notes.append(
                f"atol={t.atol:.3g} exceeds 10% of the largest derivative ({scale_n:.3g}): "
                "it would pass a gradient wrong by that much"
            )
    return ArrayResult(
        name=t.name, shape=shape, dtype=str(t.problem.dtype(t.k)), method=method,
        verdict=verdict, n_elements=int(t.x.size), n_checked=n_checked, n_wrong=n_wrong,
        max_rel_error=max_rel, worst_index=index, numerical=n, analytical=a,
        abs_error=abs(a - n), rel_error=relative_error(a, n), error_estimate=err,
        tolerance=bound, worst_moved=moved, kinks=kinks, fell_back=False,
        n_f_evals=n_f_evals, rtol=t.rtol, atol=t.atol, note="; ".join(notes),
        details=_details(t, shape) if details and projections is None else None,
    )  # fmt: skip


def _details(t: Target, shape: Index) -> ElementDetails:
    errors = np.abs(t.analytic - t.numerical)
    return ElementDetails(
        numerical=t.numerical.reshape(shape).copy(),
        analytical=t.analytic.reshape(shape).copy(),
        abs_error=errors.reshape(shape),
        bound=t.bound.reshape(shape).copy(),
        wrong=(errors > t.bound).reshape(shape),
        state=tuple(STATE_NAMES[s] for s in t.state),
    )
