"""Difference formulas, their error estimates and the tests applied to them.

GC-STEP, GC-CENTRAL, GC-RICHARDSON, GC-NOISE, GC-RELERR, GC-TOL, GC-KINK, GC-TAYLOR. Every
formula uses the *actual* offsets (perturbed value rounded to the input's dtype, minus the
unperturbed one), so rounding of ``x + h`` never enters as an error. Each checked input is one
:class:`Target` record (what it is, its analytic gradient, and per element what the check
measured and how it was judged); :func:`central_differences` and :func:`stencil` evaluate f
around its elements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from refnn.gradcheck._core import (
    ATOL_FLOAT32,
    ATOL_FLOAT64,
    EPS64,
    H0_FLOAT64,
    RTOL_FLOAT32,
    RTOL_FLOAT64,
    Float64Array,
    NonFiniteError,
    Problem,
    State,
)

#: Multiplies the error estimates in the verdict's bound (GC-TOL).
SAFETY = 10.0
#: Kink test: a smooth stencil has kink_score ~ 4 T; KINK_T gives a factor 2 margin (GC-KINK).
KINK_T = 8.0
#: Kink test: kink_score's rounding, in units of noise / h (GC-KINK).
KINK_NOISE = 16.0
#: Loose: SAFETY (T - LOOSE_NOISE R) above atol + rtol |n| (GC-KINK).
LOOSE_NOISE = 10.0


def widening(dtype: np.dtype[np.floating]) -> float:
    """``(eps_dtype / eps_float64) ** (1/3)``: 1 for float64, about 813 for float32.

    Spec: GC-STEP
    """
    return float((float(np.finfo(dtype).eps) / EPS64) ** (1.0 / 3.0))


def base_step(dtype: np.dtype[np.floating], eps: float | None) -> float:
    """``h0``: the caller's ``eps``, else ``1e-5 * widening(dtype)``.

    Spec: GC-STEP
    """
    return H0_FLOAT64 * widening(dtype) if eps is None else eps


def default_tolerances(
    dtype: np.dtype[np.floating], rtol: float | None, atol: float | None
) -> tuple[float, float]:
    """``(rtol, atol)``: the caller's, else the defaults of the dtype.

    Spec: GC-TOL
    """
    r, a = (RTOL_FLOAT64, ATOL_FLOAT64) if dtype == np.float64 else (RTOL_FLOAT32, ATOL_FLOAT32)
    return (r if rtol is None else rtol, a if atol is None else atol)


def step(xi: float, h0: float) -> float:
    """The step of one element: ``h0 * max(1, |x_i|)``.

    Spec: GC-STEP
    """
    return h0 * max(1.0, abs(xi))


@dataclass(frozen=True)
class Estimate:
    """A numerical derivative and what is known about its error."""

    value: float
    """Richardson value (central: ``(4 D(h/2) - D(h)) / 3``)."""
    truncation: float
    """T: ``|D(h/2) - D(h)|``, a generous estimate of the truncation error."""
    rounding: float
    """R: ``noise / h``, the rounding error of ``value`` (GC-NOISE)."""
    kink_score: float = 0.0
    """Q: spread of the jumps of the four one-sided slopes (GC-KINK); central stencils only."""
    one_sided: bool = False
    """True for a one-sided estimate (next to the edge of f's domain): no kink score, no sides."""

    @property
    def error(self) -> float:
        """T + R."""
        return self.truncation + self.rounding


def _one_sided(o1: float, o2: float, v0: float, v1: float, v2: float) -> tuple[float, float]:
    """Richardson of one-sided differences on offsets (0, o1, o2 ~ 2 o1): value and T."""
    near, far = (v1 - v0) / o1, (v2 - v0) / o2
    return 2.0 * near - far, abs(near - far)


def central(offsets: Sequence[float], values: Sequence[float], noise: float) -> Estimate:
    """Estimate the derivative at the centre of a five-point stencil ``(-h, -h/2, 0, h/2, h)``.

    Spec: GC-CENTRAL, GC-RICHARDSON, GC-NOISE, GC-KINK
    """
    o0, o1, _, o3, o4 = offsets
    v0, v1, v2, v3, v4 = values
    coarse, fine = (v4 - v0) / (o4 - o0), (v3 - v1) / (o3 - o1)
    h = (o4 - o0) / 2.0
    slopes = ((v1 - v0) / (o1 - o0), (v2 - v1) / -o1, (v3 - v2) / o3, (v4 - v3) / (o4 - o3))
    jumps = [slopes[i + 1] - slopes[i] for i in range(3)]
    return Estimate(
        value=(4.0 * fine - coarse) / 3.0,
        truncation=abs(fine - coarse),
        rounding=noise / h,
        kink_score=max(jumps) - min(jumps),
    )


def one_sided(o1: float, o2: float, v0: float, v1: float, v2: float, noise: float) -> Estimate:
    """One-sided estimate from offsets ``(0, o1, o2)``, ``o2 ~ 2 o1`` (domain edges).

    Spec: GC-KINK
    """
    value, t = _one_sided(o1, o2, v0, v1, v2)
    return Estimate(value=value, truncation=t, rounding=6.0 * noise / abs(o2), one_sided=True)


def tolerance(numerical: float, error: float, rtol: float, atol: float) -> float:
    """``atol + rtol |n| + SAFETY (T + R)``, the largest accepted ``|a - n|``.

    Spec: GC-TOL
    """
    return atol + rtol * abs(numerical) + SAFETY * error


def is_kink(est: Estimate, rtol: float, atol: float) -> bool:
    """``Q > atol + rtol |n| + 8 T + SAFETY * 16 R``: the one-sided slopes disagree.

    Spec: GC-KINK
    """
    if est.one_sided:
        return False
    allowed = atol + rtol * abs(est.value) + KINK_T * est.truncation
    return est.kink_score > allowed + SAFETY * KINK_NOISE * est.rounding


def is_loose(est: Estimate, rtol: float, atol: float) -> bool:
    """``SAFETY (T - 10 R) > atol + rtol |n|``: the truncation estimate dominates the bound.

    Then f changes on the scale of the step (or a kink sits in the stencil that the slope test
    did not see), and the bound would pass nearly anything. Only the part of T that rounding
    cannot explain counts (T of a constant f is pure noise).

    Spec: GC-KINK
    """
    return SAFETY * (est.truncation - LOOSE_NOISE * est.rounding) > atol + rtol * abs(est.value)


def relative_error(analytical: float, numerical: float) -> float:
    """``|a - n| / max(|a|, |n|)``, 0 when both are 0 (reported, not judged).

    Spec: GC-RELERR
    """
    denominator = max(abs(analytical), abs(numerical))
    return 0.0 if denominator == 0.0 else abs(analytical - numerical) / denominator


def excess(abs_error: float, bound: float) -> float:
    """``abs_error / bound`` (how far past its tolerance; > 1 fails)."""
    if bound > 0.0:
        return abs_error / bound
    return 0.0 if abs_error == 0.0 else math.inf


# --- One checked input and the stencils measured on it ------------------------------------------

#: Stencil offsets in units of h (the centre value is shared).
FRACTIONS = (-1.0, -0.5, 0.5, 1.0)


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
    state: list[State] = field(init=False)
    """Per element: how it was judged (GC-KINK); 'unchecked' until judged."""
    judged: npt.NDArray[np.bool_] = field(init=False)
    """Per element: judged (state neither 'excluded' nor 'unchecked')."""
    used_step: Float64Array = field(init=False)
    """Per element: the step of the stencil that judged it (0 until judged)."""
    scale: float = field(init=False)
    """The largest |analytic| or |D(h)| of the input (what rounding is compared with)."""
    flagged: list[str] = field(init=False)
    """Per element: '' or why it was flagged: 'kink', 'loose', 'edge' or 'jump'."""
    firm: Float64Array = field(init=False)
    """Per element: the bound before the checker loosened it (GC-FIRM); = bound if it did not."""
    noise: Float64Array = field(init=False)
    """Per element: the noise of f measured on its block (GC-NOISE-BLOCK)."""

    def __post_init__(self) -> None:
        n = self.x.size
        self.firm = np.zeros(n)
        measured = self.problem.element_noise.get(self.k)
        self.noise = np.full(n, self.problem.noise) if measured is None else measured.copy()
        self.analytic = self.g.copy()
        self.scale = float(np.max(np.abs(self.g), initial=0.0))
        self.numerical = np.zeros(n)
        self.error = np.zeros(n)
        self.bound = np.zeros(n)
        self.state = ["unchecked"] * n
        self.used_step = np.zeros(n)
        self.judged = np.zeros(n, dtype=bool)
        self.flagged = [""] * n

    @property
    def name(self) -> str:
        """The input's name."""
        return self.problem.names[self.k]

    def steps(self) -> Float64Array:
        """Per-element steps ``h0 max(1, |x|)`` (GC-STEP)."""
        out: Float64Array = self.h0 * np.maximum(1.0, np.abs(self.x))
        return out

    def record(
        self,
        i: int,
        numerical: float,
        error: float,
        bound: float,
        state: State,
        firm: float | None = None,
    ) -> None:
        """Store the judgement of element ``i`` (``firm``: its bound before loosening)."""
        self.numerical[i], self.error[i], self.bound[i] = numerical, error, bound
        self.firm[i] = bound if firm is None else min(firm, bound)
        self.state[i] = state
        self.judged[i] = state not in ("excluded", "unchecked")

    def values(self, i: int, points: Float64Array) -> list[float]:
        """f with element ``i`` at each point; NaN where f is not finite (outside its domain)."""
        out: list[float] = []
        for p in points:
            try:
                out.append(self.problem.value_at(self.k, i, float(p)))
            except NonFiniteError:
                out.append(math.nan)
        return out


def central_differences(
    t: Target, h: Float64Array, indices: Sequence[int] | None = None
) -> Float64Array:
    """``D(h)`` per element (of ``indices``, default all; NaN where ``x -+ h`` leaves f's
    domain). ``h`` has one step per element of ``indices``.

    Spec: GC-CENTRAL
    """
    which = list(range(t.x.size)) if indices is None else list(indices)
    x = t.x[which]
    lo = t.problem.rounded(t.k, x - h)
    hi = t.problem.rounded(t.k, x + h)
    ends = np.array([t.values(i, np.array([lo[j], hi[j]])) for j, i in enumerate(which)])
    ends = ends.reshape(len(which), 2)
    out: Float64Array = (ends[:, 1] - ends[:, 0]) / (hi - lo)
    return out


def stencil(
    t: Target,
    i: int,
    h: float,
    f0: float,
    xi: float | None = None,
    noise: float | None = None,
) -> Estimate | None:
    """The five-point estimate at element ``i`` (at ``xi``, default its value) with step ``h``;
    one-sided at a domain edge, None when neither side stays in f's domain or the step is
    lost in rounding (``x + h/2 == x``)."""
    xi = float(t.x[i]) if xi is None else xi
    points = t.problem.rounded(t.k, xi + h * np.array(FRACTIONS))
    o = [float(p) - xi for p in points]
    if len(set(o)) < 4 or 0.0 in o:
        return None
    v = t.values(i, points)
    noise = float(t.noise[i]) if noise is None else noise
    if all(math.isfinite(a) for a in v):
        return central((o[0], o[1], 0.0, o[2], o[3]), (v[0], v[1], f0, v[2], v[3]), noise)
    if math.isfinite(v[2]) and math.isfinite(v[3]):
        return one_sided(o[2], o[3], f0, v[2], v[3], noise)
    if math.isfinite(v[1]) and math.isfinite(v[0]):
        return one_sided(o[1], o[0], f0, v[1], v[0], noise)
    return None


# --- Taylor remainders (GC-TAYLOR) --------------------------------------------------------------

#: A direction passes when its fitted slope is at least this.
TAYLOR_THRESHOLD = 1.8
#: Steps relative to max(1, max|x|): 4 per decade from 1e-1 down to 1e-6.
TAYLOR_STEPS = tuple(10.0 ** (-1.0 - i / 4.0) for i in range(21))
#: A remainder is fitted only above TAYLOR_MARGIN floors; "at rounding level" below 10 floors.
TAYLOR_MARGIN, TAYLOR_LEVEL = 1000.0, 10.0
#: The slope is fitted over (at most) this many of the smallest usable steps.
TAYLOR_FIT_POINTS = 3
#: A remainder growing from rounding level to usable within this many steps is a kink onset.
TAYLOR_ONSET_STEPS = 7


def fit_slope(steps: Sequence[float], remainders: Sequence[float]) -> float:
    """Least-squares slope of log r against log h.

    Spec: GC-TAYLOR
    """
    xs = [math.log(h) for h in steps]
    ys = [math.log(r) for r in remainders]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((a - mx) ** 2 for a in xs)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sxx


def judge_taylor(
    steps: Sequence[float], remainders: Sequence[float], floors: Sequence[float]
) -> tuple[float | None, int, bool, str]:
    """Slope, points fitted, passed, note of one direction (steps descending; NaN: no value).

    Spec: GC-TAYLOR
    """
    order = sorted(range(len(steps)), key=lambda i: steps[i])
    finite = [i for i in order if math.isfinite(remainders[i])]
    if len(finite) < len(order):  # f left its domain: keep the steps below the first failure
        first_bad = min(steps[i] for i in order if not math.isfinite(remainders[i]))
        finite = [i for i in finite if steps[i] < first_bad]
    usable = [
        i
        for i in finite
        if remainders[i] > TAYLOR_MARGIN * floors[i] > 0.0
        or (remainders[i] > 0.0 and floors[i] == 0.0)
    ]
    if not usable:
        return None, 0, True, "remainder at rounding level for every h: f linear along v"
    below = [i for i in finite if steps[i] < steps[usable[0]]][-TAYLOR_ONSET_STEPS:]
    if any(remainders[i] < TAYLOR_LEVEL * floors[i] for i in below):
        return (
            None,
            0,
            True,
            (
                f"f linear to rounding along v up to h = {max(steps[i] for i in below):.2e}, then "
                "a kink or curvature: nothing a wrong gradient would explain; not judged"
            ),
        )
    fitted = usable[:TAYLOR_FIT_POINTS]
    if len(fitted) < 2:
        return None, 1, True, "remainder above rounding level at one step only: nearly linear"
    slope = fit_slope([steps[i] for i in fitted], [remainders[i] for i in fitted])
    passed = slope >= TAYLOR_THRESHOLD
    note = "" if passed else "remainder shrinks like h: the gradient is wrong along v"
    return slope, len(fitted), passed, note
