"""Difference schemes and their error estimates (GC-CENTRAL, GC-RICHARDSON, GC-RELERR, GC-TOL).

Every derivative is estimated from five values of ``f`` on the stencil

    x - h,  x - h/2,  x,  x + h/2,  x + h

where the offsets are the *actual* ones (the perturbed value rounded to the input's dtype, minus
the unperturbed value), so rounding of ``x + h`` never enters as an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refnn.gradcheck._types import EPS64

#: Base step for float64 inputs: h = H0 * max(1, |x|)  (GC-STEP).
H0_FLOAT64 = 1e-5
#: Default relative tolerance for float64 inputs (GC-TOL).
RTOL_FLOAT64 = 1e-5
#: Default absolute tolerance for float64 inputs (GC-TOL).
ATOL_FLOAT64 = 1e-10
#: Multiplies the numerical error estimate in the tolerance (GC-TOL).
SAFETY = 10.0


def widening(dtype: np.dtype[np.floating]) -> float:
    """Return the factor by which step and tolerances grow for a lower precision dtype.

    ``(eps_dtype / eps_float64) ** (1/3)``: 1 for float64, about 813 for float32.

    Spec: GC-STEP
    """
    eps = float(np.finfo(dtype).eps)
    return float((eps / EPS64) ** (1.0 / 3.0))


def step(xi: float, h0: float) -> float:
    """Return the step of one element: ``h0 * max(1, |x_i|)``.

    Spec: GC-STEP
    """
    return h0 * max(1.0, abs(xi))


@dataclass(frozen=True)
class Stencil:
    """Five values of a function on ``x + offset`` for offsets ``(-h, -h/2, 0, h/2, h)``."""

    offsets: tuple[float, float, float, float, float]
    values: tuple[float, float, float, float, float]


@dataclass(frozen=True)
class Estimate:
    """A numerical derivative and what is known about its error."""

    coarse: float
    """Central difference with step h."""
    fine: float
    """Central difference with step h/2."""
    value: float
    """Richardson extrapolation ``(4 fine - coarse) / 3``."""
    truncation: float
    """``|fine - coarse|``, an upper estimate of the truncation error."""
    rounding: float
    """``3 eps |f| / h``, the rounding error of ``value``."""
    kink_score: float
    """Spread of the differences of the four one-sided slopes (GC-KINK)."""
    kink_noise: float
    """``16 eps |f| / h``, the rounding error of ``kink_score``."""

    @property
    def error(self) -> float:
        """Truncation plus rounding estimate."""
        return self.truncation + self.rounding


def estimate(stencil: Stencil, eps: float) -> Estimate:
    """Estimate the derivative at the stencil's centre.

    Parameters
    ----------
    stencil : Stencil
        Values at offsets ``(-h, -h/2, 0, h/2, h)``.
    eps : float
        Machine epsilon of the precision in which ``f`` was computed.

    Returns
    -------
    Estimate
        Central differences, their Richardson extrapolation and error estimates.

    Spec: GC-CENTRAL, GC-RICHARDSON, GC-KINK
    """
    o0, o1, _, o3, o4 = stencil.offsets
    v0, v1, v2, v3, v4 = stencil.values
    coarse = (v4 - v0) / (o4 - o0)
    fine = (v3 - v1) / (o3 - o1)
    h = (o4 - o0) / 2.0
    scale = max(abs(v) for v in stencil.values)
    slopes = ((v1 - v0) / (o1 - o0), (v2 - v1) / -o1, (v3 - v2) / o3, (v4 - v3) / (o4 - o3))
    jumps = [slopes[k + 1] - slopes[k] for k in range(3)]
    return Estimate(
        coarse=coarse,
        fine=fine,
        value=(4.0 * fine - coarse) / 3.0,
        truncation=abs(fine - coarse),
        rounding=3.0 * eps * scale / h,
        kink_score=max(jumps) - min(jumps),
        kink_noise=16.0 * eps * scale / h,
    )


def tolerance(numerical: float, error: float, rtol: float, atol: float) -> float:
    """Return the largest accepted ``|analytical - numerical|``.

    ``atol + rtol * |numerical| + SAFETY * error``.

    Spec: GC-TOL
    """
    return atol + rtol * abs(numerical) + SAFETY * error


def relative_error(analytical: float, numerical: float) -> float:
    """Return ``|a - n| / max(|a|, |n|)``, 0 when both are 0 (reported, not judged).

    Spec: GC-RELERR
    """
    denominator = max(abs(analytical), abs(numerical))
    if denominator == 0.0:
        return 0.0
    return abs(analytical - numerical) / denominator


def excess(abs_error: float, bound: float) -> float:
    """Return ``abs_error / bound`` (how far past its tolerance an element is; > 1 fails)."""
    if bound > 0.0:
        return abs_error / bound
    return 0.0 if abs_error == 0.0 else math.inf
