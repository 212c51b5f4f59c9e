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
    STEP_NOISE,
    STREAM_NOISE,
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
#: The elementwise check runs in chunks and stops once this many elements are wrong (GC-BOUND).
CHUNK, STOP_WRONG = 512, 10
#: The first chunk; each next one twice as large, up to CHUNK.
FIRST_CHUNK = 16
#: Fallback after a failed projection (GC-BISECT): blocks of at most LEAF elements are judged
#: elementwise; at most BISECT_PROJECTIONS block projections; stop after BISECT_WRONG wrong
#: elements; if none is found, every element up to FALLBACK_FULL, else a sample of that many.
LEAF, BISECT_PROJECTIONS, BISECT_WRONG, FALLBACK_FULL = 4, 256, 3, 20_000
#: Projections sum <g, x_t - x> exactly (math.fsum) up to this many terms.
EXACT_SUM = 100_000
#: A loose estimate proves WRONG only while truncation shrinks like the step's powers: the
#: coarser estimate's T at least TRUNCATION_SHRINK times the finer's (GC-FIRM).
TRUNCATION_SHRINK = 4.0


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
    problem.targets.append(t)
    before, fallback = problem.f_calls, ""
    mode = options["mode"]
    n = t.x.size
    if n > 0 and (mode == "fast" or (mode == "auto" and n > FAST_THRESHOLD)):
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
        n_proj = bisect(t, f0, rng)
        wrong = _wrong_count(t)
        if wrong:
            checked = n - t.state.count("unchecked")
            fallback = (
                f"fast mode failed ({why}); bisection over {n_proj} block projections localised "
                f"{wrong} wrong element(s); {checked} of {n} elements were judged elementwise, "
                "the rest not checked"
            )
        elif n <= FALLBACK_FULL:
            check_elementwise(t, f0)
            fallback = f"fast mode failed ({why}); the elementwise check decided"
        else:
            sample = np.sort(rng.choice(n, size=FALLBACK_FULL, replace=False))
            check_elementwise(t, f0, sample.tolist())
            fallback = (
                f"fast mode failed ({why}), bisection over {n_proj} block projections found no "
                f"wrong element; a random sample of {FALLBACK_FULL} of {n} elements was judged "
                "elementwise, the rest not checked"
            )
    else:
        check_elementwise(t, f0)
    result = summarize(t, problem.f_calls - before, None, options["details"])
    if not fallback:
        return result
    if result.passed:
        fallback += " and found every element within tolerance (a fast-mode false alarm)"
    return replace(result, fell_back=True, note="; ".join(n for n in (result.note, fallback) if n))


def _wrong_count(t: Target) -> int:
    with np.errstate(invalid="ignore"):
        over = np.abs(t.analytic - t.numerical) > t.bound
    return int(np.count_nonzero(over & t.judged))


def _allowed_noise(t: Target) -> float:
    """The largest noise contribution to a bound that is not a loosening: atol + rtol max|g|.

    Spec: GC-NOISE-BLOCK, GC-FIRM
    """
    return t.atol + t.rtol * float(np.max(np.abs(t.g), initial=0.0))


def _judge(
    t: Target, i: int, est: Estimate, state: State, h: float, firm: float | None = None
) -> None:
    """Record element ``i`` judged from ``est`` at step ``h`` (GC-TOL, GC-FIRM)."""
    bound = tolerance(est.value, est.error, t.rtol, t.atol)
    noisy = t.problem.noisy.get(t.k)
    if firm is None and noisy is not None and bool(noisy[i]):
        # noise-bound (GC-NOISE-BLOCK): f's noise here may widen the bound only by as much as
        # the largest non-noise tolerance; beyond that an error is undecided, not ok (GC-FIRM)
        allowed = t.atol + t.rtol * abs(est.value)
        firm = allowed + min(SAFETY * est.error, _allowed_noise(t))
    t.record(i, est.value, est.error, bound, state, firm)
    t.used_step[i] = h


def _noise_at(t: Target, i: int, p: float, centre: float, h: float) -> float:
    """The noise of f moving element ``i`` alone around the value ``p``, by at least
    STEP_NOISE h (GC-NOISE-BLOCK)."""
    x = t.x.copy()
    x[i] = p
    rng = np.random.default_rng([t.problem.seed, STREAM_NOISE, t.k, i])
    floor = max(t.problem.eps * abs(centre), t.problem.nondet_tol)
    return max(floor, t.problem.block_noise(t.k, i, i + 1, x, centre, rng, STEP_NOISE * h))


def _moved(t: Target, i: int, remeasure: bool = False) -> bool:
    """Judge an element that stays on its kink at points moved to ``x +- 4h``; False if none.

    Both the analytic gradient and the numerical derivative are recomputed there: at the kink
    itself the derivative is a choice among one-sided ones (and, where several kinks coincide
    in one coordinate, among combinations no one-dimensional difference shows). With
    ``remeasure`` (f jumps at x: GC-NOISE-BLOCK) the noise is measured again at each moved
    point, and a point that is still noisy is not used.

    Spec: GC-KINK, GC-NOISE-BLOCK
    """
    h = float(t.steps()[i])
    judged: list[tuple[float, float, float, float]] = []
    for sign in (1.0, -1.0):
        p = float(t.problem.rounded(t.k, np.array([t.x[i] + sign * KINK_SHIFT * h]))[0])
        centre = t.values(i, np.array([p]))[0]
        if not math.isfinite(centre):
            continue
        noise = _noise_at(t, i, p, centre, h)
        rounding = noise <= t.problem.rounding_level
        if remeasure and not rounding and SAFETY * noise / h > _allowed_noise(t):
            continue  # still noisy there
        est = stencil(t, i, h, centre, p, noise)
        if est is None or est.one_sided or is_kink(est, t.rtol, t.atol):
            continue
        if is_loose(est, t.rtol, t.atol):
            continue
        moved = t.x.copy()
        moved[i] = p
        shape = t.problem.frozen[t.k].shape
        try:
            grads = t.problem.gradients({t.k: moved.reshape(shape)}, "at a point moved off a kink")
        except Exception:  # grad outside its domain there: the point is not used
            continue
        a = float(grads[t.problem.wrt.index(t.k)].reshape(-1)[i])
        bound = tolerance(est.value, est.error, t.rtol, t.atol)
        judged.append((excess(abs(a - est.value), bound), a, est.value, est.error))
    if not judged:
        return False
    _, a, n, error = max(judged)
    t.analytic[i] = a
    t.record(i, n, error, tolerance(n, error, t.rtol, t.atol), "moved")
    return True


def _converged(loose: list[Estimate], best: Estimate) -> bool:
    """A loose estimate is evidence only where its truncation shrinks with the step.

    Spec: GC-FIRM
    """
    at = loose.index(best)
    return at > 0 and loose[at - 1].truncation >= TRUNCATION_SHRINK * best.truncation


def resolve(t: Target, i: int, f0: float, est: Estimate | None) -> None:
    """Re-measure a flagged element with steps h/16, h/256, ... until its stencil is smooth.

    A point off its kink is judged at x, on its own side, once the stencil no longer reaches
    the kink; a point where f changes on the scale of the step, once the truncation estimate
    no longer dominates the bound, even where rounding then dominates it (the bound carries the
    measured R; the firm bound of GC-FIRM keeps only the rounding at the original step). A
    point still on a kink at the finest step the kink test resolves is judged at points moved
    off it. An element still loose is judged WRONG only if it fails even its loose bound at a
    step where truncation shrinks with the step (GC-FIRM), and is otherwise excluded.

    Spec: GC-KINK, GC-FIRM
    """
    h0 = h = float(t.steps()[i])
    kinked = [est] if est is not None and is_kink(est, t.rtol, t.atol) else []
    loose = [(est, h)] if est is not None and not kinked else []
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
            new = _step_noise(t, i, new, f0, h)
            allowed = t.atol + t.rtol * abs(new.value)
            firm = 3.0 * allowed + SAFETY * float(t.noise[i]) / h0
            _judge(t, i, new, state, h, firm)
            return
        else:
            loose.append((new, h))
    if kinked and _moved(t, i):
        return
    estimates = [e for e, _ in loose]
    best = min(estimates, key=lambda e: e.error, default=None)
    if best is not None and _converged(estimates, best):
        step = loose[estimates.index(best)][1]
        best = _step_noise(t, i, best, f0, step)
        if abs(t.g[i] - best.value) > tolerance(best.value, best.error, t.rtol, t.atol):
            _judge(t, i, best, state, step)  # wrong even under its loose bound
            return
    t.record(i, math.nan, math.nan, math.nan, "excluded")


def _step_noise(t: Target, i: int, est: Estimate, f0: float, h: float) -> Estimate:
    """``est`` with its rounding from f's noise measured on the step's own scale (f may round
    an offset inside, as arccosh(1 + x) does at x = 1e-10, which the probes at x's own
    scale cannot see).

    Spec: GC-NOISE-BLOCK
    """
    sigma = _noise_at(t, i, float(t.x[i]), f0, h)
    if sigma > float(t.noise[i]) > 0.0:
        return replace(est, rounding=est.rounding * sigma / float(t.noise[i]))
    return est


def check_elementwise(t: Target, f0: float, indices: list[int] | None = None) -> None:
    """Judge the elements of ``t`` (``indices``, default all) cheapest stencil first, in chunks
    of 16, 32, ... CHUNK, stopping once STOP_WRONG are wrong (the rest stay unchecked:
    GC-BOUND).

    Spec: GC-CENTRAL, GC-RICHARDSON, GC-TOL, GC-KINK, GC-BOUND
    """
    order = list(range(t.x.size)) if indices is None else indices
    start, size = 0, FIRST_CHUNK
    while start < len(order):
        _check_chunk(t, f0, order[start : start + size])
        start, size = start + size, min(2 * size, CHUNK)
        if _wrong_count(t) >= STOP_WRONG:
            break


def _check_chunk(t: Target, f0: float, chunk: list[int]) -> None:
    """The elementwise check of GC-TOL and GC-KINK on the flat indices ``chunk``."""
    idx = np.array(chunk, dtype=np.intp)
    h = t.steps()[idx]
    noisy = t.problem.noisy.get(t.k, np.zeros(t.x.size, dtype=bool))[idx]
    with np.errstate(all="ignore"):
        d = central_differences(t, h, chunk)
        t.scale = max(t.scale, float(np.max(np.abs(d[np.isfinite(d)]), initial=0.0)))
        rounding = t.noise[idx] / h
        allowed = t.atol + t.rtol * np.abs(d)
        g = t.g[idx]
        clear = np.isfinite(d) & ~noisy & (np.abs(g - d) + SAFETY * rounding <= CLEAR * allowed)
        estimates: dict[int, Estimate | None] = {}
        steps: dict[int, float] = {}
        for j in np.flatnonzero(~clear).tolist():
            i = chunk[j]
            steps[i] = float(h[j])
            estimates[i] = stencil(t, i, float(h[j]), f0) if np.isfinite(d[j]) else None
    for j in np.flatnonzero(clear).tolist():
        bound = float(allowed[j] + SAFETY * rounding[j])
        t.record(chunk[j], float(d[j]), float(rounding[j]), bound, "plain")
        t.used_step[chunk[j]] = float(h[j])
    alone = t.problem.alone.get(t.k)
    for i, est in estimates.items():
        if alone is not None and bool(alone[i]):
            t.flagged[i] = "jump"
        elif est is None or est.one_sided:
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
            _judge(t, i, est, "plain", steps[i])
    with np.errstate(all="ignore"):
        for i, est in estimates.items():
            if t.flagged[i] == "jump":
                # f jumps (or is noisy) at this element alone: judge it where it is smooth
                if not _moved(t, i, remeasure=True):
                    if est is not None and not est.one_sided:
                        _judge(t, i, est, "plain", steps[i])
                    else:
                        t.record(i, math.nan, math.nan, math.nan, "excluded")
            elif t.flagged[i]:
                resolve(t, i, f0, est)


def confirm(t: Target, f0: float) -> str:
    """Measure the worst wrong element's stencil again: a wrong verdict stands only on values
    f gives again (GC-DETERMINISM). Returns '' or why the verdict cannot stand.

    Spec: GC-DETERMINISM
    """
    judged = [s not in ("excluded", "unchecked", "moved") for s in t.state]
    over = (np.abs(t.analytic - t.numerical) > t.bound) & np.array(judged, dtype=bool)
    if not np.any(over):
        return ""
    with np.errstate(all="ignore"):  # unjudged elements have bound 0 or NaN
        errors = np.where(over, np.abs(t.analytic - t.numerical) / t.bound, -1.0)
    i = int(np.argmax(errors))
    h = float(t.used_step[i])
    with np.errstate(all="ignore"):
        again = stencil(t, i, h, f0) if h > 0.0 else None
    if again is None:
        return ""
    gap = abs(again.value - float(t.numerical[i]))
    if gap <= SAFETY * t.problem.nondet_tol / h:
        return ""
    return (
        f"f is not deterministic: the difference at {t.name} element {i} measured "
        f"{float(t.numerical[i]):.6g} and then {again.value:.6g} at the same points; a noisy f "
        "decides nothing (fix its randomness, or pass nondet_tol)"
    )


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


def project(t: Target, f0: float, rng: np.random.Generator, lo: int, hi: int) -> Projection:
    """The directional derivative along ``v = u max(1, |x|)`` on elements ``lo:hi`` (flat),
    u ~ N(0, I), 0 elsewhere.

    Spec: GC-PROJ, GC-BISECT
    """
    h0 = t.h0
    part = t.x[lo:hi]
    g = t.g[lo:hi]
    v: Float64Array = rng.standard_normal(part.size) * np.maximum(1.0, np.abs(part))
    f_values: list[float] = []
    g_values: list[float] = []
    for s in FRACTIONS:
        moved = t.problem.rounded(t.k, part + (s * h0) * v)
        try:
            f_values.append(t.problem.value_block(t.k, lo, hi, moved, f"at x + {s} h v"))
        except NonFiniteError:
            f_values.append(math.nan)
        terms = g * (moved - part)
        # exact summation up to EXACT_SUM terms; beyond, numpy's pairwise sum (its error,
        # log2(n) eps sum|terms|, stays far below FAST_RTOL rtol ||g v|| h0)
        exact = terms.size <= EXACT_SUM
        g_values.append(math.fsum(terms.tolist()) if exact else float(np.sum(terms)))
    noise = t.problem.input_noise.get(t.k, t.problem.noise)
    allowed = t.atol * float(np.linalg.norm(v)) + t.rtol * float(np.linalg.norm(g * v))
    offsets = (-h0, -h0 / 2.0, 0.0, h0 / 2.0, h0)
    num = central(offsets, (f_values[0], f_values[1], f0, f_values[2], f_values[3]), noise)
    ana = central(offsets, (g_values[0], g_values[1], 0.0, g_values[2], g_values[3]), 0.0)
    estimate = SAFETY * num.error
    resolved = SAFETY * max(0.0, num.truncation - LOOSE_NOISE * num.rounding)
    conclusive = math.isfinite(num.value) and resolved <= allowed
    bound = FAST_RTOL * allowed + estimate
    return Projection(num.value, ana.value, num.error, bound, conclusive)


def check_fast(t: Target, f0: float, rng: np.random.Generator) -> list[Projection]:
    """Directional derivatives along random directions ``v = u max(1, |x|)``, u ~ N(0, I).

    Spec: GC-PROJ
    """
    return [project(t, f0, rng, 0, t.x.size) for _ in range(FAST_DIRECTIONS)]


def bisect(t: Target, f0: float, rng: np.random.Generator) -> int:
    """Localise wrong elements after a failed projection: halve the failing block, project
    each half, and judge blocks of at most LEAF elements elementwise; elements never reached
    stay unchecked. Returns the number of block projections.

    Spec: GC-BISECT
    """
    t.state = ["unchecked"] * t.x.size
    t.judged[:] = False
    # (lo, hi, failing): a block known to fail, or one still to be projected
    stack = [(0, t.x.size, True)]
    used = 0
    while stack and used < BISECT_PROJECTIONS and _wrong_count(t) < BISECT_WRONG:
        lo, hi, failing = stack.pop()
        if not failing:
            used += 1
            if project(t, f0, rng, lo, hi).ok:
                continue
        if hi - lo <= LEAF:
            check_elementwise(t, f0, list(range(lo, hi)))
            continue
        mid = (lo + hi) // 2
        used += 1
        # the block fails: if its first half passes, the second holds the error (descended
        # into without a projection of its own; a leaf that passes ends that path)
        if project(t, f0, rng, lo, mid).ok:
            stack.append((mid, hi, True))
        else:
            stack.extend([(mid, hi, False), (lo, mid, True)])
    return used


def _index(t: Target, i: int, shape: Index) -> str:
    return f"{t.name}[{', '.join(str(int(s)) for s in np.unravel_index(i, shape))}]"


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
        judged = [i for i, s in enumerate(t.state) if s not in ("excluded", "unchecked")]
        errors = np.abs(t.analytic - t.numerical)
        wrong = [i for i in judged if errors[i] > t.bound[i]]
        loosened = [i for i in judged if t.firm[i] < errors[i] <= t.bound[i]]
        flagged = [i for i, why in enumerate(t.flagged) if why]
        excluded = t.state.count("excluded")
        unchecked = t.state.count("unchecked")
        jumps = [i for i in flagged if t.flagged[i] == "jump"]
        kinks = KinkCounts(
            found=len(flagged),
            moved=len(flagged) - excluded,
            excluded=excluded,
            loose=sum(t.flagged[i] == "loose" for i in flagged),
            on_kink=sum(s == "moved" for s in t.state),
            edge=sum(t.flagged[i] == "edge" for i in flagged),
            jump=len(jumps),
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
        undecided = excluded or loosened or unchecked
        verdict = "WRONG" if wrong else "inconclusive" if undecided else "ok"
        method = "elementwise"
        moved = w is not None and t.state[w] != "plain"
        if jumps:
            where = ", ".join(_index(t, i, shape) for i in jumps[:5])
            notes.append(
                f"f jumps (or is noisy) at {len(jumps)} element(s): {where}"
                + (" ..." if len(jumps) > 5 else "")
                + "; each judged where f is smooth, at x +- 4h, or not judged"
            )
        if kinks.moved:
            notes.append(
                f"{kinks.moved} flagged element(s) judged off their kink or edge: "
                f"{kinks.on_kink} on a kink judged at a point moved off it, not at the given point "
                "(there a derivative is a choice among one-sided ones), the rest with smaller "
                "steps at x"
            )
        if excluded:
            out = [i for i, state in enumerate(t.state) if state == "excluded"]
            why = {
                "edge": "next to the edge of f's domain (NaN, Inf or an exception a step away)",
                "kink": "on a kink no moved point escapes",
                "loose": "f changes faster than the smallest resolved step",
                "jump": "f jumps or is noisy there and at x +- 4h",
            }
            reasons = "; ".join(
                f"{sum(t.flagged[i] == flag for i in out)} {text}"
                for flag, text in why.items()
                if any(t.flagged[i] == flag for i in out)
            )
            notes.append(
                f"{excluded} element(s) not judged (first {_index(t, out[0], shape)}): "
                f"{reasons}; no step resolves them, so the verdict is inconclusive"
            )
        if loosened:
            i = max(loosened, key=lambda i: float(errors[i] / t.firm[i]))
            notes.append(
                f"{len(loosened)} element(s) within only the loosened part of their bound "
                f"(a smaller step's rounding, a loose truncation estimate or f's noise), worst "
                f"{_index(t, i, shape)}: numerical {t.numerical[i]:.6g} vs analytical "
                f"{t.analytic[i]:.6g}, error {errors[i]:.2e}, firm bound {t.firm[i]:.2e}, "
                f"loosened bound {t.bound[i]:.2e}; not decided"
            )
        if unchecked and not wrong:
            notes.append(f"{unchecked} of {t.x.size} element(s) not checked")
        elif unchecked:
            notes.append(
                f"stopped after {n_wrong} wrong element(s): {unchecked} of {t.x.size} not checked"
            )
        scale_n = max(
            float(np.max(np.abs(t.numerical[judged]), initial=0.0)) if judged else 0.0,
            float(np.max(np.abs(t.analytic[judged]), initial=0.0)) if judged else 0.0,
        )
        if verdict == "ok" and judged and t.atol > 0.1 * scale_n:
            # atol dominates every bound: an element passing only thanks to it is undecided,
            # unless the claim is an exact zero gradient and atol the default (rounding level)
            # rtol |n| + S (T + R) computed apart: atol + 1e-38 - atol is 0 in floating point
            rest = t.rtol * np.abs(t.numerical[judged]) + SAFETY * t.error[judged]
            leaning = [i for i, r in zip(judged, rest.tolist(), strict=True) if errors[i] > r]
            # a numerical derivative above its own error estimate resolves the claim: atol
            # then hides an error the differences show (1e-30 sum(x^2), its sign flipped)
            seen = [i for i in leaning if abs(t.numerical[i]) > SAFETY * t.error[i]]
            if leaning and (t.atol_given or (seen and np.any(t.g != 0))):
                verdict = "inconclusive"
                i = max(leaning, key=lambda i: float(errors[i]))
                notes.append(
                    f"atol={t.atol:.3g} exceeds 10% of the largest derivative ({scale_n:.3g}): "
                    f"it would pass a gradient wrong by that much; {len(leaning)} element(s) "
                    f"were judged only against atol (worst {_index(t, i, shape)}: error "
                    f"{errors[i]:.2e})"
                )
            elif leaning:
                notes.append(
                    f"the gradient is 0 and {len(leaning)} element(s) were judged only against "
                    f"atol={t.atol:.3g} (largest numerical derivative {scale_n:.3g})"
                )
            elif t.atol_given:
                notes.append(
                    f"atol={t.atol:.3g} exceeds 10% of the largest derivative ({scale_n:.3g}); "
                    "no element needed it (each is within rtol and the error estimate)"
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
