"""One element: its stencil, its numerical derivative, and the judgement (GC-CENTRAL, GC-TOL)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refnn.gradcheck._numeric import Estimate, Stencil, estimate, step, tolerance
from refnn.gradcheck._problem import Problem
from refnn.gradcheck._types import Float64Array

#: Stencil offsets in units of h; the centre value is passed in, not recomputed.
_FRACTIONS = (-1.0, -0.5, 0.5, 1.0)


@dataclass(frozen=True)
class Judged:
    """An element's analytic and numerical derivative and whether they agree."""

    numerical: float
    analytical: float
    error_estimate: float
    bound: float
    moved: bool = False

    @property
    def abs_error(self) -> float:
        """``|analytical - numerical|``."""
        return abs(self.analytical - self.numerical)

    @property
    def ok(self) -> bool:
        """Within the bound (GC-TOL)."""
        return self.abs_error <= self.bound


def measure(problem: Problem, k: int, x: Float64Array, i: int, f_centre: float) -> Estimate:
    """Estimate d f / d x.flat[i] for input ``k`` at ``x`` from the five-point stencil.

    Parameters
    ----------
    problem : Problem
        The function and the other inputs.
    k : int
        Position of the input among all inputs.
    x : Float64Array
        Value of input ``k`` (representable in its dtype).
    i : int
        Flat index of the element.
    f_centre : float
        ``f`` at ``x`` (already computed).

    Spec: GC-CENTRAL, GC-STEP
    """
    flat = x.reshape(-1)
    xi = float(flat[i])
    h = step(xi, problem.h0(k))
    trial = np.array([xi + s * h for s in _FRACTIONS], dtype=np.float64)
    points = problem.rounded(k, trial)
    values: list[float] = []
    name = problem.names[k]
    for p in points:
        moved = x.copy()
        moved.reshape(-1)[i] = p
        values.append(problem.value({k: moved}, f"at {name} element {i} = {float(p)!r}"))
    offsets = [float(p) - xi for p in points]
    stencil = Stencil(
        offsets=(offsets[0], offsets[1], 0.0, offsets[2], offsets[3]),
        values=(values[0], values[1], f_centre, values[2], values[3]),
    )
    return estimate(stencil, problem.eps)


def judge(est: Estimate, analytical: float, rtol: float, atol: float, *, moved: bool) -> Judged:
    """Compare the analytic derivative with the Richardson value under GC-TOL.

    Spec: GC-TOL
    """
    return Judged(
        numerical=est.value,
        analytical=analytical,
        error_estimate=est.error,
        bound=tolerance(est.value, est.error, rtol, atol),
        moved=moved,
    )
