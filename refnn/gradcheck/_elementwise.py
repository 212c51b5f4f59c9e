"""The elementwise check: every element's derivative, kinks handled (GC-TOL, GC-KINK)."""

from __future__ import annotations

import numpy as np

from refnn.gradcheck._element import Judged, judge, measure
from refnn.gradcheck._kinks import flag, is_kink, recheck_moved
from refnn.gradcheck._numeric import excess, relative_error
from refnn.gradcheck._problem import Problem
from refnn.gradcheck._report import ArrayResult, KinkCounts
from refnn.gradcheck._types import Float64Array, Index, Verdict


def check_elementwise(
    problem: Problem, j: int, g: Float64Array, f_centre: float, rtol: float, atol: float
) -> ArrayResult:
    """Check every element of the ``j``-th checked input against its analytic gradient ``g``.

    Parameters
    ----------
    problem : Problem
        The function, gradient and inputs.
    j : int
        Position of the input in ``wrt``.
    g : Float64Array
        The analytic gradient of that input at the unperturbed point.
    f_centre : float
        ``f`` at the unperturbed point.
    rtol, atol : float
        Tolerances of GC-TOL for this input.

    Returns
    -------
    ArrayResult
        Verdict, worst element and kink counts.

    Spec: GC-TOL, GC-KINK
    """
    k = problem.wrt[j]
    x = problem.base[k]
    flat_g = g.reshape(-1)
    calls_before = problem.f_calls
    estimates = [measure(problem, k, x, i, f_centre) for i in range(x.size)]
    scale = max(
        (
            max(abs(e.value), abs(float(flat_g[i])))
            for i, e in enumerate(estimates)
            if not is_kink(e, rtol, atol)
        ),
        default=0.0,
    )
    judged: dict[int, Judged] = {}
    kinks = loose = excluded = 0
    for i, est in enumerate(estimates):
        why = flag(est, rtol, atol, scale)
        if why is None:
            judged[i] = judge(est, float(flat_g[i]), rtol, atol, moved=False)
            continue
        kinks += why == "kink"
        loose += why == "loose"
        outcome = recheck_moved(problem, k, j, x, i, (rtol, atol), scale)
        if outcome is None:
            excluded += 1
        else:
            judged[i] = outcome
    counts = KinkCounts(
        found=kinks + loose, moved=kinks + loose - excluded, excluded=excluded, loose=loose
    )
    return summarize(problem, j, judged, counts, problem.f_calls - calls_before, rtol, atol)


def summarize(
    problem: Problem,
    j: int,
    judged: dict[int, Judged],
    kinks: KinkCounts,
    n_f_evals: int,
    rtol: float,
    atol: float,
) -> ArrayResult:
    """Reduce per-element judgements to one :class:`ArrayResult` (worst = largest error/bound)."""
    k = problem.wrt[j]
    x = problem.base[k]
    shape: Index = tuple(int(s) for s in x.shape)
    n_wrong = sum(1 for e in judged.values() if not e.ok)
    verdict: Verdict = "WRONG" if n_wrong else "ok"
    note = ""
    if kinks.moved:
        note = (
            f"{kinks.moved} element(s) on a kink judged at a point moved off it, not at the given "
            "point (there a derivative is a choice among one-sided ones that differences cannot "
            "single out)"
        )
    if x.size > 0 and not judged:
        verdict = "inconclusive"
        note = (
            "no element could be judged: every one sits on a kink or where f changes on the "
            "scale of the step, also after moving"
        )
    worst_i = max(judged, key=lambda i: excess(judged[i].abs_error, judged[i].bound), default=None)
    worst = judged[worst_i] if worst_i is not None else Judged(0.0, 0.0, 0.0, 0.0)
    index: Index | None = None
    if worst_i is not None:
        index = tuple(int(t) for t in np.unravel_index(worst_i, shape))
    rel = [relative_error(e.analytical, e.numerical) for e in judged.values()]
    return ArrayResult(
        name=problem.names[k],
        shape=shape,
        dtype=str(problem.dtype(k)),
        method="elementwise",
        verdict=verdict,
        n_elements=int(x.size),
        n_checked=len(judged),
        n_wrong=n_wrong,
        max_rel_error=max(rel, default=0.0),
        worst_index=index,
        numerical=worst.numerical,
        analytical=worst.analytical,
        abs_error=worst.abs_error,
        rel_error=relative_error(worst.analytical, worst.numerical),
        error_estimate=worst.error_estimate,
        tolerance=worst.bound,
        worst_moved=worst.moved,
        kinks=kinks,
        fell_back=False,
        n_f_evals=n_f_evals,
        rtol=rtol,
        atol=atol,
        note=note,
    )
