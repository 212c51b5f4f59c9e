"""Fast mode: directional derivatives along random directions (GC-PROJ).

Cost per input: 4 f evaluations per direction instead of 4 per element. When a direction fails,
the elementwise check decides (so fast mode can never by itself declare a gradient wrong) and
names the worst elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refnn.gradcheck._element import Judged
from refnn.gradcheck._numeric import SAFETY, Stencil, estimate, excess, relative_error
from refnn.gradcheck._problem import Problem
from refnn.gradcheck._report import ArrayResult, KinkCounts
from refnn.gradcheck._types import Float64Array, Index

#: Random directions per input in fast mode.
FAST_DIRECTIONS = 3
#: mode="auto" checks an input in fast mode when it has more elements than this.
FAST_THRESHOLD = 2000
_FRACTIONS = (-1.0, -0.5, 0.5, 1.0)


@dataclass(frozen=True)
class FastOutcome:
    """The directions' judgements and which one came closest to failing."""

    directions: tuple[Judged, ...]
    n_f_evals: int
    conclusive: tuple[bool, ...]
    """Per direction: the tolerances, not the truncation estimate, dominate its bound."""

    @property
    def passed(self) -> bool:
        """Every direction within its bound, and no bound dominated by its truncation estimate."""
        return all(d.ok for d in self.directions) and all(self.conclusive)

    @property
    def worst(self) -> int:
        """Index of the direction with the largest error / bound."""
        ratios = [excess(d.abs_error, d.bound) for d in self.directions]
        return int(np.argmax(ratios))


def project(
    problem: Problem,
    j: int,
    g: Float64Array,
    f_centre: float,
    rtol: float,
    atol: float,
    rng: np.random.Generator,
) -> FastOutcome:
    """Compare numerical and analytic directional derivatives along random directions.

    The direction is ``v = u * max(1, |x|)`` with ``u`` standard normal, so each element moves
    by about its own step. Both sides are differenced on the same (rounded) points:
    numerical from f, analytic from ``<g, x_s - x>``, each Richardson-extrapolated.
    Bound: ``atol ||v||_2 + rtol ||g * v||_2 + SAFETY * estimate``. A direction is conclusive
    only when ``SAFETY * truncation`` does not exceed the tolerance part ``atol ||v||_2 +
    rtol ||g * v||_2``: a kink near the path, or f changing on the scale of the step, inflates
    the truncation estimate and with it the bound, which would then pass nearly anything.

    Spec: GC-PROJ
    """
    k = problem.wrt[j]
    x = problem.base[k]
    h0 = problem.h0(k)
    calls_before = problem.f_calls
    judged: list[Judged] = []
    conclusive: list[bool] = []
    for _ in range(FAST_DIRECTIONS):
        v: Float64Array = rng.standard_normal(x.shape) * np.maximum(1.0, np.abs(x))
        f_values: list[float] = []
        g_values: list[float] = []
        for s in _FRACTIONS:
            point = problem.rounded(k, x + (s * h0) * v)
            f_values.append(problem.value({k: point}, f"at {problem.names[k]} + {s} h v"))
            g_values.append(math.fsum((g * (point - x)).reshape(-1).tolist()))
        offsets = (-h0, -h0 / 2.0, 0.0, h0 / 2.0, h0)
        num = estimate(
            Stencil(offsets, (f_values[0], f_values[1], f_centre, f_values[2], f_values[3])),
            problem.eps,
        )
        ana = estimate(Stencil(offsets, (g_values[0], g_values[1], 0.0, g_values[2], g_values[3])),
                       problem.eps)  # fmt: skip
        allowed = atol * float(np.linalg.norm(v)) + rtol * float(np.linalg.norm(g * v))
        judged.append(Judged(num.value, ana.value, num.error, allowed + SAFETY * num.error))
        conclusive.append(SAFETY * num.truncation <= allowed)
    return FastOutcome(tuple(judged), problem.f_calls - calls_before, tuple(conclusive))


def fast_result(
    problem: Problem, j: int, outcome: FastOutcome, rtol: float, atol: float
) -> ArrayResult:
    """The :class:`ArrayResult` of a passed fast check (worst direction reported)."""
    k = problem.wrt[j]
    x = problem.base[k]
    shape: Index = tuple(int(s) for s in x.shape)
    worst = outcome.directions[outcome.worst]
    rel = [relative_error(d.analytical, d.numerical) for d in outcome.directions]
    return ArrayResult(
        name=problem.names[k],
        shape=shape,
        dtype=str(problem.dtype(k)),
        method="fast",
        verdict="ok" if outcome.passed else "WRONG",
        n_elements=int(x.size),
        n_checked=len(outcome.directions),
        n_wrong=sum(1 for d in outcome.directions if not d.ok),
        max_rel_error=max(rel),
        worst_index=None,
        numerical=worst.numerical,
        analytical=worst.analytical,
        abs_error=worst.abs_error,
        rel_error=relative_error(worst.analytical, worst.numerical),
        error_estimate=worst.error_estimate,
        tolerance=worst.bound,
        worst_moved=False,
        kinks=KinkCounts(),
        fell_back=False,
        n_f_evals=outcome.n_f_evals,
        rtol=rtol,
        atol=atol,
    )
