"""Judging one checked input: elementwise (GC-TOL, GC-KINK) or by projections (GC-PROJ).

:func:`check_input` tries fast mode where asked and falls back to the elementwise check, which
fills the input's :class:`Target` record; :func:`summarize` turns the record into an
:class:`ArrayResult`. The elementwise check evaluates the cheap central difference
``D(h)`` first (2 evaluations per element) and completes the five-point stencil (2 more) only
where ``D(h)`` alone does not settle the verdict; flagged elements (kinks, f changing on the
scale of the step, the edge of f's domain) are re-measured with smaller steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from refnn.gradcheck._core import (
    Float64Array,
    Index,
    Method,
    NonFiniteError,
    Problem,
    State,
    Verdict,
)
from refnn.gradcheck._numeric import (
    FRACTIONS,
    KINK_NOISE,
    LOOSE_NOISE,
    SAFETY,
    Estimate,
    Target,
    base_step,
    central,
    central_differences,
    default_tolerances,
    excess,
    is_kink,
    is_loose,
    relative_error,
    stencil,
    tolerance,
)
from refnn.gradcheck._report import ArrayResult, ElementDetails, KinkCounts

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
#: An element on its kink at every resolved step is judged at x +- KINK_SHIFT h (GC-KINK).
KINK_SHIFT = 4.0


def check_input(
    problem: Problem,
    j: int,
    g: Float64Array,
    f0: float,
    options: dict[str, Any],
    rng: np.random.Generator,
) -> ArrayResult:
    """Judge checked input ``j`` with gradient ``g``: fast mode first where ``options`` ask for
    it, elementwise where it fails or was not asked for (GC-PROJ, GC-TOL)."""
    k = problem.wrt[j]
    dtype = problem.dtype(k)
    rtol, atol = default_tolerances(dtype, options["rtol"], options["atol"])
    t = Target(
        problem=problem,
        k=k,
        x=problem.base[k].reshape(-1),
        g=g.reshape(-1),
        h0=base_step(dtype, options["eps"]),
        rtol=rtol,
        atol=atol,
        atol_given=options["atol"] is not None,
    )
    before, fallback = problem.f_calls, ""
    mode = options["mode"]
    if t.x.size > 0 and (mode == "fast" or (mode == "auto" and t.x.size > FAST_THRESHOLD)):
        projections = check_fast(t, f0, rng)
        failed = [d for d, p in enumerate(projections) if not p.ok]
        if not failed:
            return summarize(t, problem.f_calls - before, projections)
        p = projections[failed[0]]
        why = (
            f"direction {failed[0]}: numerical {p.numerical:.6g} vs analytical "
            f"{p.analytical:.6g}, bound {p.bound:.2e}"
            if p.conclusive
            else "an error estimate dominated a direction's bound (a kink near the path?)"
        )
        fallback = f"fast mode failed ({why}); the elementwise check decided"
    check_elementwise(t, f0)
    result = summarize(t, problem.f_calls - before, None, options["details"])
    if not fallback:
        return result
    if result.passed:
        fallback += " and found every element within tolerance (a fast-mode false alarm)"
    return replace(result, fell_back=True, note="; ".join(n for n in (result.note, fallback) if n))


def _judge(t: Target, i: int, est: Estimate, state: State) -> None:
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
        est = stencil(t, i, h, centre, p) if math.isfinite(centre) else None
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
    t.record(i, n, error, tolerance(n, error, t.rtol, t.atol), "moved")
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
    state: State = "edge" if t.flagged[i] == "edge" else "shrunk"
    for _ in range(SHRINK_ROUNDS):
        h /= SHRINK
        new = stencil(t, i, h, f0)
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
    if best is not None and abs(t.g[i] - best.value) > tolerance(
        best.value, best.error, t.rtol, t.atol
    ):
        _judge(t, i, best, state)  # wrong even under its loose bound
        return
    t.record(i, math.nan, math.nan, math.nan, "excluded")


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
            estimates[i] = stencil(t, i, float(h[i]), f0) if np.isfinite(d[i]) else None
    for i in np.flatnonzero(clear).tolist():
        bound = float(allowed[i] + SAFETY * rounding[i])
        t.record(i, float(d[i]), float(rounding[i]), bound, "plain")
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
            _judge(t, i, est, "plain")
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
        num = central(
            offsets, (f_values[0], f_values[1], f0, f_values[2], f_values[3]), t.problem.noise
        )
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
        judged = [i for i, s in enumerate(t.state) if s != "excluded"]
        wrong = [i for i in judged if abs(t.analytic[i] - t.numerical[i]) > t.bound[i]]
        flagged = [i for i, why in enumerate(t.flagged) if why]
        excluded = len(t.state) - len(judged)
        kinks = KinkCounts(
            found=len(flagged),
            moved=len(flagged) - excluded,
            excluded=excluded,
            loose=sum(t.flagged[i] == "loose" for i in flagged),
            on_kink=sum(s == "moved" for s in t.state),
            edge=sum(t.flagged[i] == "edge" for i in flagged),
        )
        w = _worst(t, judged)
        n, a, err, bound = (0.0, 0.0, 0.0, 0.0)
        if w is not None:
            n, a, err, bound = (float(v[w]) for v in (t.numerical, t.analytic, t.error, t.bound))
        index = None if w is None else tuple(int(s) for s in np.unravel_index(w, shape))
        n_checked, n_wrong = len(judged), len(wrong)
        max_rel = max(
            (relative_error(float(t.analytic[i]), float(t.numerical[i])) for i in judged),
            default=0.0,
        )
        verdict = "WRONG" if wrong else "inconclusive" if excluded else "ok"
        method = "elementwise"
        moved = w is not None and t.state[w] != "plain"
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
        name=t.name,
        shape=shape,
        dtype=str(t.problem.dtype(t.k)),
        method=method,
        verdict=verdict,
        n_elements=int(t.x.size),
        n_checked=n_checked,
        n_wrong=n_wrong,
        max_rel_error=max_rel,
        worst_index=index,
        numerical=n,
        analytical=a,
        abs_error=abs(a - n),
        rel_error=relative_error(a, n),
        error_estimate=err,
        tolerance=bound,
        worst_moved=moved,
        kinks=kinks,
        fell_back=False,
        n_f_evals=n_f_evals,
        rtol=t.rtol,
        atol=t.atol,
        note="; ".join(notes),
        details=_details(t, shape) if details and projections is None else None,
    )


def _details(t: Target, shape: Index) -> ElementDetails:
    errors = np.abs(t.analytic - t.numerical)
    return ElementDetails(
        numerical=t.numerical.reshape(shape).copy(),
        analytical=t.analytic.reshape(shape).copy(),
        abs_error=errors.reshape(shape),
        bound=t.bound.reshape(shape).copy(),
        wrong=(errors > t.bound).reshape(shape),
        state=tuple(t.state),
    )
