"""Types, argument validation and the counted, side-effect-free calls of ``f`` (GC-INPUTS).

The caller's arrays are never passed to ``f`` or ``grad``: every call receives read-only copies
in the caller's dtypes, with at most one element (or one input) replaced by a perturbed value.
Perturbations are computed in float64 and rounded to the input's dtype; the checker then uses the
rounded value. The rounding noise of ``f`` is measured, not assumed (GC-NOISE).
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, SupportsFloat, TypeAlias

import numpy as np
import numpy.typing as npt

AnyArray: TypeAlias = npt.NDArray[Any]
Float64Array: TypeAlias = npt.NDArray[np.float64]
Index: TypeAlias = tuple[int, ...]
ScalarFunction: TypeAlias = Callable[..., SupportsFloat]
GradFunction: TypeAlias = Callable[..., Sequence[AnyArray]]
ArrayFunction: TypeAlias = Callable[..., Any]
VjpFunction: TypeAlias = Callable[..., Sequence[AnyArray]]
Mode: TypeAlias = Literal["elementwise", "fast", "auto"]
Method: TypeAlias = Literal["elementwise", "fast"]
Verdict: TypeAlias = Literal["ok", "WRONG", "inconclusive"]
State: TypeAlias = Literal["plain", "shrunk", "edge", "moved", "excluded", "unchecked"]

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
#: Base step for float64 inputs: h = H0 * max(1, |x|) (GC-STEP).
H0_FLOAT64 = 1e-5
#: Default tolerances (GC-TOL): float64, and float32 (allow_float32=True).
RTOL_FLOAT64, ATOL_FLOAT64 = 1e-5, 1e-10
RTOL_FLOAT32, ATOL_FLOAT32 = 1e-3, 1e-7
#: A caller's rtol at or above this accepts a gradient 10x too small: refused (GC-TOL).
RTOL_MAX = 0.1
#: Noise probes of f at x +- NOISE_ULPS eps max(|x|, min(1, mean |x|)) (GC-NOISE).
NOISE_PROBES, NOISE_ULPS = 12, 64.0
#: At a smaller step h, or a point moved off a kink, an element's noise is measured again
#: with offsets max(STEP_NOISE h, the probes' own) (GC-NOISE-BLOCK).
STEP_NOISE = 1e-3
#: A noisy block is halved while not both halves hold 1/NOISE_SPREAD of its noise (or it has at
#: most NOISE_FULL elements), within 1 + NOISE_SOURCES 2 ceil(log2 n) blocks (GC-NOISE-BLOCK).
NOISE_SPREAD, NOISE_SOURCES = 4.0, 8
#: Blocks of at most this many elements are halved even when the noise is spread.
NOISE_FULL = 64
#: Noise is large (GC-NOISE-BLOCK) only beyond NOISE_REL eps max(|f(x)|, 1): rounding, even
#: of terms that cancel, stays below it; a jump or a random f does not.
NOISE_REL = 1e6
#: The smallest base step accepted from a caller (GC-INPUTS): below it f's rounding swamps D(h).
EPS_MIN = 1e-12

# Independent random streams: np.random.default_rng([seed, STREAM_*]) (NOTE-RNG).
STREAM_FAST, STREAM_TAYLOR, STREAM_VJP, STREAM_CONTRACT, STREAM_NOISE, STREAM_HVP = range(6)


class NonFiniteError(ValueError):
    """``f`` returned NaN or Inf at a perturbed point (outside its domain)."""


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def real_option(name: str, value: object, *, positive: bool = False) -> float:
    """A finite real number >= 0 (> 0 when ``positive``); TypeError/ValueError naming ``name``."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)  # type: ignore[arg-type]  # numbers.Real is float-convertible
    if not np.isfinite(number) or number < 0.0 or (positive and number == 0.0):
        wanted = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {wanted}, got {value!r}")
    return number


def seed_option(seed: object) -> int:
    """A seed: an int >= 0 (numpy's generators refuse negative seeds)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int >= 0, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return int(seed)


def callable_option(name: str, value: object) -> None:
    """Refuse a non-callable ``f``/``grad``/``vjp`` before anything is evaluated."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r} ({type(value).__name__})")


def check_options(
    mode: object,
    rtol: object,
    atol: object,
    seed: object,
    eps: object,
    nondet_tol: object,
) -> None:
    """Validate the keywords shared by check_grad/check_vjp/check_hvp (GC-INPUTS, GC-TOL)."""
    if mode not in ("elementwise", "fast", "auto"):
        raise ValueError(f"mode must be 'elementwise', 'fast' or 'auto', got {mode!r}")
    if rtol is not None and (r := real_option("rtol", rtol)) >= RTOL_MAX:
        accepts = "a zero gradient" if r >= 1.0 else f"a gradient {1 / (1 - r):.3g} times too small"
        raise ValueError(
            f"rtol must be < {RTOL_MAX}, got {rtol!r}: |a - n| <= rtol |n| would accept {accepts}"
        )
    if atol is not None:
        real_option("atol", atol)
    if eps is not None:
        eps_option(eps)
    real_option("nondet_tol", nondet_tol)
    seed_option(seed)


def eps_option(eps: object) -> float:
    """The caller's base step: a real number in [EPS_MIN, 0.1) (GC-INPUTS, GC-STEP)."""
    step = real_option("eps", eps, positive=True)
    if step >= 0.1:
        raise ValueError(f"eps (the base step) must be < 0.1, got {eps!r}")
    if step < EPS_MIN:
        raise ValueError(
            f"eps (the base step) must be >= {EPS_MIN:g}, got {eps!r}: a smaller step leaves "
            "only f's rounding in the differences (x + h may even equal x)"
        )
    return step


def bool_option(name: str, value: object) -> bool:
    """A flag: a bool (or numpy bool), never a string or number taken for its truth value."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def resolve_wrt(inputs: Mapping[str, AnyArray], wrt: object) -> tuple[str, ...]:
    """Return the checked names (default: all), refusing unknown or repeated names."""
    if isinstance(wrt, str):
        raise TypeError(f"wrt must be a sequence of input names, got the string {wrt!r}")
    if wrt is not None and not isinstance(wrt, Sequence):
        raise TypeError(f"wrt must be a sequence of input names, got {type(wrt).__name__}")
    names = tuple(inputs) if wrt is None else tuple(wrt)
    if not names:
        raise ValueError("wrt is empty: name at least one input to check")
    for name in names:
        if name not in inputs:
            raise ValueError(f"wrt names {name!r}, which is not an input; inputs: {list(inputs)}")
    if len(set(names)) != len(names):
        raise ValueError(f"wrt names an input twice: {list(names)}")
    return names


def validate_inputs(inputs: object, wrt: object, allow_float32: object) -> tuple[str, ...]:
    """Check types, dtypes and finiteness (GC-INPUTS); return the checked names."""
    if not isinstance(inputs, Mapping) or not inputs:
        raise TypeError(
            f"inputs must be a non-empty mapping from names to numpy arrays, got "
            f"{type(inputs).__name__}"
        )
    bool_option("allow_float32", allow_float32)
    checked = resolve_wrt(inputs, wrt)
    for name, array in inputs.items():
        if not isinstance(array, np.ndarray):
            raise TypeError(f"input {name!r} must be a numpy array, got {type(array).__name__}")
        kind = array.dtype
        if np.issubdtype(kind, np.complexfloating):
            raise TypeError(
                f"input {name!r} is complex ({kind}): complex inputs are out of scope (check the "
                "real and imaginary parts as two real inputs)"
            )
        if name in checked:
            if not np.issubdtype(kind, np.floating):
                raise TypeError(
                    f"input {name!r} is checked (in wrt) and must hold floats, got dtype {kind}"
                )
            if kind not in (np.float64, np.float32):
                raise TypeError(
                    f"input {name!r} has dtype {kind}: the checker supports float64, and float32 "
                    "with allow_float32=True (float16 cannot resolve a derivative)"
                )
            if kind == np.float32 and not allow_float32:
                raise TypeError(
                    f"input {name!r} has dtype {kind}; the gradient checker needs float64 "
                    "(pass x.astype(np.float64), or allow_float32=True for float32 tolerances)"
                )
        if np.issubdtype(kind, np.inexact) and not np.all(np.isfinite(array)):
            raise ValueError(f"input {name!r} contains NaN or Inf")
    return checked


def as_scalar(value: object, where: str) -> tuple[float, float]:
    """Return ``(float(value), eps of its precision)``; refuse non-scalars, bools and NaN/Inf."""
    eps = EPS64
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"f must return a scalar, got an array of shape {value.shape} {where}")
        value = value.reshape(())[()]
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"f must return a real number, got the bool {value!r} {where}")
    if isinstance(value, np.floating):
        eps = max(eps, float(np.finfo(type(value)).eps))
    if not isinstance(value, float | int | np.floating | np.integer):
        raise TypeError(f"f must return a real number, got {type(value).__name__} {where}")
    try:
        number = float(value)
    except OverflowError:
        raise NonFiniteError(
            f"f returned an integer too large for a float ({len(str(abs(int(value))))} digits) "
            f"{where}; f must return a finite real number"
        ) from None
    if not np.isfinite(number):
        raise NonFiniteError(f"f returned {number} {where}")
    return number, eps


def _frozen(array: AnyArray) -> AnyArray:
    out: AnyArray = np.array(array, copy=True)
    out.flags.writeable = False
    return out


def _frozen_as(array: AnyArray, dtype: np.dtype[Any]) -> AnyArray:
    """A read-only copy of ``array`` in ``dtype`` (one copy, not two)."""
    out: AnyArray = array.astype(dtype, copy=True)
    out.flags.writeable = False
    return out


class Problem:
    """The function, the gradient and read-only copies of the inputs; counts every call."""

    def __init__(
        self,
        f: ScalarFunction,
        grad: GradFunction | None,
        inputs: Mapping[str, AnyArray],
        wrt: Sequence[str] | None,
        allow_float32: bool,
        nondet_tol: float = 0.0,
    ) -> None:
        checked = validate_inputs(inputs, wrt, allow_float32)
        self.f, self.grad, self.nondet_tol = f, grad, nondet_tol
        self.names = tuple(inputs)
        self.frozen = tuple(_frozen(inputs[name]) for name in self.names)
        self.wrt = tuple(self.names.index(name) for name in checked)
        self.base = {k: self.frozen[k].astype(np.float64) for k in self.wrt}
        self.eps = max([EPS64] + [float(np.finfo(self.frozen[k].dtype).eps) for k in self.wrt])
        self.f_calls = self.grad_calls = 0
        self.noise = 0.0
        #: Per checked input: its noise moved alone, and per element the noise of its block.
        self.input_noise: dict[int, float] = {}
        self.element_noise: dict[int, Float64Array] = {}
        #: Per checked input and element: its block's noise stayed large (GC-NOISE-BLOCK).
        self.noisy: dict[int, npt.NDArray[np.bool_]] = {}
        #: Of those, the elements whose large noise was found alone (a jump of f at x).
        self.alone: dict[int, npt.NDArray[np.bool_]] = {}
        #: Exceptions f raised at perturbed points, by class name (treated as NaN: GC-KINK).
        self.raised: dict[str, int] = {}
        #: The caller's seed (for the re-measured noise of single elements: NOTE-RNG).
        self.seed = 0
        #: Noise at or below this is rounding, never `large` (GC-NOISE-BLOCK).
        self.rounding_level = math.inf
        #: The Target record of each input checked (filled by the judge).
        self.targets: list[Any] = []

    def dtype(self, k: int) -> np.dtype[Any]:
        """The caller's dtype of input ``k``."""
        return self.frozen[k].dtype

    def rounded(self, k: int, x: Float64Array) -> Float64Array:
        """``x`` rounded to input ``k``'s dtype and back to float64 (exact for float64: then a
        float64 ``x`` itself, not a copy)."""
        if self.dtype(k) == np.float64 and x.dtype == np.float64:
            return x
        out: Float64Array = x.astype(self.dtype(k)).astype(np.float64)
        return out

    def _call(self, args: list[AnyArray], where: str, perturbed: bool = True) -> float:
        self.f_calls += 1
        if not perturbed:
            out = self.f(*args)  # an exception at the given inputs is the caller's
        else:
            try:
                out = self.f(*args)
            except Exception as error:  # outside f's domain, as NaN would say (GC-KINK)
                name = type(error).__name__
                self.raised[name] = self.raised.get(name, 0) + 1
                raise NonFiniteError(f"f raised {name} ({error}) {where}") from error
        number, eps = as_scalar(out, where)
        self.eps = max(self.eps, eps)
        return number

    def value(self, replace: Mapping[int, Float64Array], where: str = "") -> float:
        """``f`` with the inputs in ``replace`` (position -> float64 values) substituted.

        At a perturbed point (``replace`` not empty) numpy's floating-point warnings are
        silenced: leaving f's domain shows as NaN/Inf, raised as :class:`NonFiniteError`.
        """
        args = list(self.frozen)
        for k, x in replace.items():
            args[k] = _frozen_as(x, self.dtype(k))
        if not replace:
            return self._call(args, where, perturbed=False)
        with np.errstate(all="ignore"):
            return self._call(args, where)

    def value_block(self, k: int, lo: int, hi: int, values: Float64Array, where: str) -> float:
        """``f`` with elements ``lo:hi`` (flat) of input ``k`` set to ``values`` (representable
        in its dtype): one copy of the input, made in its own dtype. Warnings silenced, NaN/Inf
        or an exception raised as :class:`NonFiniteError` (a perturbed point)."""
        moved = self.frozen[k].copy()
        moved.reshape(-1)[lo:hi] = values
        moved.flags.writeable = False
        args = list(self.frozen)
        args[k] = moved
        with np.errstate(all="ignore"):
            return self._call(args, where)

    def value_at(self, k: int, i: int, p: float) -> float:
        """``f`` with element ``i`` (flat) of input ``k`` set to ``p`` (representable).

        The caller silences numpy's floating-point warnings (``np.errstate``) around a batch.
        """
        moved = self.frozen[k].copy()
        moved.reshape(-1)[i] = p
        moved.flags.writeable = False
        args = list(self.frozen)
        args[k] = moved
        return self._call(args, f"at {self.names[k]} element {i} = {p!r}")

    def gradients(self, replace: Mapping[int, Float64Array], where: str = "") -> list[Float64Array]:
        """The analytic gradients (one per checked input), validated and in float64."""
        assert self.grad is not None  # every caller passes a gradient function
        self.grad_calls += 1
        args = list(self.frozen)
        for k, x in replace.items():
            args[k] = _frozen_as(x, self.dtype(k))
        return self.validate_gradients(self.grad(*args), where)

    def validate_gradients(self, out: object, where: str = "") -> list[Float64Array]:
        """Check count, shapes, reality and finiteness of ``grad``'s output (GC-INPUTS)."""
        checked = [self.names[k] for k in self.wrt]
        if isinstance(out, np.ndarray) or not isinstance(out, Sequence) or isinstance(out, str):
            raise TypeError(
                f"grad must return a sequence of arrays, one per input in wrt {checked}, got "
                f"{type(out).__name__} (wrap a single gradient in a tuple)"
            )
        if len(out) != len(self.wrt):
            raise ValueError(
                f"grad returned {len(out)} arrays, expected {len(self.wrt)} (one per input in "
                f"wrt {checked}, in that order)"
            )
        result: list[Float64Array] = []
        for k, g in zip(self.wrt, out, strict=True):
            name = self.names[k]
            if isinstance(g, np.generic):
                g = np.asarray(g)  # numpy ufuncs return scalars for 0-d inputs
            if not isinstance(g, np.ndarray):
                raise TypeError(f"gradient for {name!r} must be a numpy array, got {type(g)}")
            if g.shape != self.frozen[k].shape:
                raise ValueError(
                    f"gradient for {name!r} has shape {g.shape}, expected "
                    f"{self.frozen[k].shape} (the shape of {name!r})"
                )
            if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
                raise TypeError(f"gradient for {name!r} must be real, got dtype {g.dtype}")
            g64: Float64Array = np.array(g, dtype=np.float64, copy=True)
            if not np.all(np.isfinite(g64)):
                raise ValueError(f"gradient for {name!r} contains NaN or Inf {where}".rstrip())
            result.append(g64)
        return result

    def require_deterministic(self, f0: float, gradients: Sequence[Float64Array]) -> None:
        """``f`` and ``grad`` evaluated again at the same point agree to ``nondet_tol``.

        Spec: GC-INPUTS
        """
        again = self.value({}, "at the given inputs (repeated)")
        if abs(again - f0) > self.nondet_tol:
            raise ValueError(
                f"f is not deterministic: two calls at the same inputs gave {f0!r} and {again!r} "
                f"(nondet_tol={self.nondet_tol!r}); fix its randomness (e.g. freeze a dropout "
                "mask) or pass nondet_tol for last-bit nondeterminism"
            )
        if self.grad is None:
            return
        repeated = self.gradients({}, "at the given inputs (repeated)")
        for k, g, g2 in zip(self.wrt, gradients, repeated, strict=True):
            if np.max(np.abs(g - g2), initial=0.0) > self.nondet_tol:
                raise ValueError(
                    f"grad is not deterministic: two calls at the same inputs gave different "
                    f"gradients for {self.names[k]!r} (nondet_tol={self.nondet_tol!r})"
                )

    def measure_noise(
        self, f0: float, seed: int, limits: Mapping[int, tuple[float, float]] | None = None
    ) -> float:
        """Measure the rounding noise of f at x, per input and per block (GC-NOISE).

        ``max_j |r_j f(x + d_j) + f(x - r_j d_j) - (1 + r_j) f(x)|`` with
        ``d_j = +-u NOISE_ULPS eps max(|x|, min(1, m))`` on the moved elements (random signs, u
        per element, m the mean |x| of the input, 1 if 0) and r_j uniform in [0.5, 1.5]: every
        operation of f is rounded afresh, while
        the curvature term ``d' H d`` stays far below rounding. Each checked input is measured
        alone (a large input's noise does not enter a small one's bound); where ``limits``
        (input -> (h0, largest harmless noise / h)) says a block's noise is large, the block
        is halved and each half measured (GC-NOISE-BLOCK), so one element's jump is found where
        it is instead of inflating every element's bound.

        Spec: GC-NOISE, GC-NOISE-BLOCK
        """
        rng = np.random.default_rng([seed, STREAM_NOISE])
        self.seed = seed
        floor = max(self.eps * abs(f0), self.nondet_tol)
        rounding = max(NOISE_REL * self.eps * max(abs(f0), 1.0), self.nondet_tol)
        self.rounding_level = rounding
        total = 0.0
        for k in self.wrt:
            x = self.base[k].reshape(-1)
            n = x.size
            sigma = np.full(n, floor)
            noisy = np.zeros(n, dtype=bool)
            alone = np.zeros(n, dtype=bool)
            self.element_noise[k], self.noisy[k], self.alone[k] = sigma, noisy, alone
            if n == 0:
                self.input_noise[k] = floor
                continue
            whole = max(floor, self.block_noise(k, 0, n, x, f0, rng))
            self.input_noise[k] = whole
            total += whole
            limit = None if limits is None else limits.get(k)
            budget = 1 + NOISE_SOURCES * 2 * max(1, math.ceil(math.log2(n)))
            measured = 1
            queue: deque[tuple[int, int, float]] = deque([(0, n, whole)])
            while queue:
                lo, hi, s = queue.popleft()
                sigma[lo:hi] = s
                large = (
                    limit is not None
                    and s > rounding
                    and s / (limit[0] * max(1.0, float(np.min(np.abs(x[lo:hi]))))) > limit[1]
                )
                noisy[lo:hi] = large
                alone[lo:hi] = large and hi - lo == 1
                if not large or hi - lo < 2 or measured + 2 > budget:
                    continue
                mid = (lo + hi) // 2
                a = max(floor, self.block_noise(k, lo, mid, x, f0, rng))
                b = max(floor, self.block_noise(k, mid, hi, x, f0, rng))
                measured += 2
                if NOISE_SPREAD * min(a, b) >= s and hi - lo > NOISE_FULL:
                    # both halves carry it (spread, not one source): stop, unless the block is
                    # small enough to be resolved element by element within the budget
                    sigma[lo:mid], sigma[mid:hi] = a, b
                    noisy[lo:hi] = large
                    continue
                queue.extend([(lo, mid, a), (mid, hi, b)])
        self.noise = max(floor, total)
        return self.noise

    def block_noise(
        self,
        k: int,
        lo: int,
        hi: int,
        centre: Float64Array,
        f_centre: float,
        rng: np.random.Generator,
        least: float = 0.0,
    ) -> float:
        """The noise of f when elements ``lo:hi`` (flat) of input ``k`` move around ``centre``
        (each by at least ``least``); ``centre`` differs from the given input only in ``lo:hi``.

        Spec: GC-NOISE, GC-NOISE-BLOCK
        """
        part = centre[lo:hi]
        # an element small beside its array moves on the array's scale (at most 1, as its step
        # does; 1 if all are 0): at x = [5, 2^-7] in sum(x - mean(x)) its own ulps vanished in
        # x_1 - mean(x) and the probes measured no noise
        typical = float(np.mean(np.abs(self.base[k]))) if centre.size else 0.0
        scale = np.maximum(np.abs(part), min(1.0, typical) if typical > 0.0 else 1.0)
        ulp = np.maximum(NOISE_ULPS * float(np.finfo(self.dtype(k)).eps) * scale, least)
        sigma = 0.0
        for _ in range(NOISE_PROBES // 2):
            # the two points are x + d and x - r d, r in [0.5, 1.5]: the linear term cancels in
            # r f(x + d) + f(x - r d) - (1 + r) f(x) as in a second difference, but the points
            # are not mirror images, whose rounding (odd in d) would cancel too: at x = [3, 3]
            # sum(x - mean(x)) gave exactly 0 on mirrored pairs while a step showed 4e-16
            r = float(rng.uniform(0.5, 1.5))
            d = rng.choice([-1.0, 1.0], size=part.shape) * rng.uniform(0.5, 1.5, part.shape) * ulp
            try:
                plus = self.value_block(k, lo, hi, part + d, "near the given inputs")
                minus = self.value_block(k, lo, hi, part - r * d, "near the given inputs")
            except NonFiniteError:
                continue
            pair = r * plus + minus
            sigma = max(sigma, abs(pair - (1.0 + r) * f_centre))
        return sigma
