"""Kinks inside the stencil: detect them, move off them, or exclude the element (GC-KINK).

At a smooth point the three differences of consecutive one-sided slopes on the stencil are
equal up to O(h^2) (their spread is about 4x the Richardson truncation estimate); a kink puts a
jump of the derivative into one or two of them, an O(1) spread.

An element is also unreliable, and treated the same way, when its truncation estimate rather than
the tolerances dominates its bound ("loose"): f changes on the scale of the step there.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from refnn.gradcheck._element import Judged, judge, measure
from refnn.gradcheck._numeric import SAFETY, Estimate, step
from refnn.gradcheck._problem import NonFiniteError, Problem
from refnn.gradcheck._types import Float64Array

#: A smooth stencil has kink_score ~ 4 * truncation; this leaves a factor of 2 margin.
KINK_TRUNCATION_FACTOR = 8.0
#: A flagged element is re-checked at x +- KINK_SHIFT * h (outside the original stencil).
KINK_SHIFT = 4.0
#: "loose": SAFETY * estimate > LOOSE_FRACTION * |n| and > LOOSE_FRACTION / 100 * scale.
LOOSE_FRACTION = 0.1


def is_kink(est: Estimate, rtol: float, atol: float) -> bool:
    """True when the one-sided slopes disagree more than smoothness and rounding allow.

    kink_score > atol + rtol |D| + 8 T + SAFETY * kink_noise.

    Spec: GC-KINK
    """
    allowed = (
        atol
        + rtol * abs(est.value)
        + KINK_TRUNCATION_FACTOR * est.truncation
        + SAFETY * est.kink_noise
    )
    return est.kink_score > allowed


def is_loose(est: Estimate, atol: float, scale: float) -> bool:
    """True when the truncation estimate dominates: SAFETY * T above atol, 10% of |n| and
    0.1% of ``scale`` (the largest derivative of the input).

    Only truncation counts: it says f changes on the scale of the step. Rounding error is
    already part of the bound (GC-TOL), and where the derivative is 0 it is all there is.

    Spec: GC-KINK
    """
    spread = SAFETY * est.truncation
    return spread > max(atol, LOOSE_FRACTION * abs(est.value), LOOSE_FRACTION / 100 * scale)


Flag = Literal["kink", "loose"] | None


def flag(est: Estimate, rtol: float, atol: float, scale: float) -> Flag:
    """Why the element cannot be judged where it is (None: it can)."""
    if is_kink(est, rtol, atol):
        return "kink"
    if is_loose(est, atol, scale):
        return "loose"
    return None


def recheck_moved(
    problem: Problem,
    k: int,
    j: int,
    x: Float64Array,
    i: int,
    tolerances: tuple[float, float],
    scale: float,
) -> Judged | None:
    """Re-check element ``i`` of input ``k`` at ``x`` moved by +-KINK_SHIFT*h; None if ambiguous.

    Both the analytic gradient and the numerical derivative are recomputed at the moved point,
    which must be free of kinks and not loose. ``j`` is the position of input ``k`` in ``wrt``.

    Spec: GC-KINK
    """
    rtol, atol = tolerances
    xi = float(x.reshape(-1)[i])
    h = step(xi, problem.h0(k))
    for sign in (1.0, -1.0):
        moved = x.copy()
        target = np.array([xi + sign * KINK_SHIFT * h], dtype=np.float64)
        moved.reshape(-1)[i] = problem.rounded(k, target)[0]
        try:
            f_centre = problem.value({k: moved}, "at a point moved off a kink")
            est = measure(problem, k, moved, i, f_centre)
        except NonFiniteError:
            continue
        if flag(est, rtol, atol, scale) is not None:
            continue
        gradients = problem.gradients({k: moved}, "at a point moved off a kink")
        return judge(est, float(gradients[j].reshape(-1)[i]), rtol, atol, moved=True)
    return None
