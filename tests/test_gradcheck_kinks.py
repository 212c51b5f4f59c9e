"""refnn.gradcheck at kinks: no false alarms at ReLU / |x| / max kinks, real errors still fail.

GC-KINK.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refnn.gradcheck import check_grad
from refnn.gradcheck._numeric import Estimate, central, is_kink

F64 = npt.NDArray[np.float64]
EPS = float(np.finfo(np.float64).eps)

# values at, next to and away from the kinks at 0 (the step is h = 1e-5 here)
near_kink = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-300, 1e-12, -1e-12, 1e-7, -3e-7, 2e-6, -4e-6, 7e-6, -9e-6]),
    st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False),
)


def relu_abs_max(w: F64, c: F64) -> tuple[Callable[[F64], float], Callable[[F64], list[F64]]]:
    """f(x) = sum(w relu(x)) + sum(c |x|) + max(x) + 0.5 |x|^2, and its (sub)gradient."""

    def f(x: F64) -> float:
        return float(np.sum(w * np.maximum(x, 0)) + np.sum(c * np.abs(x)) + np.max(x))

    def g(x: F64) -> list[F64]:
        onehot = np.zeros_like(x)
        onehot.reshape(-1)[np.argmax(x)] = 1.0  # the first of tied maxima
        return [w * (x > 0) + c * np.sign(x) + onehot]

    return f, g


@pytest.mark.spec("GC-KINK")
@settings(max_examples=30)
@given(x=hnp.arrays(np.float64, st.integers(1, 8), elements=near_kink), data=st.data())
def test_relu_abs_and_max_at_or_near_kinks_raise_no_false_alarm(
    x: F64, data: st.DataObject
) -> None:
    w = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(0.5, 2.0)), label="w")
    c = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(-0.4, 0.4)), label="c")
    f, g = relu_abs_max(w, c)
    result = check_grad(f, g, {"x": x})
    assert result.passed, result.format()
    a = result.arrays[0]
    assert a.kinks.found == a.kinks.moved + a.kinks.excluded


@pytest.mark.spec("GC-KINK")
@settings(max_examples=50)
@given(
    values=hnp.arrays(np.float64, st.integers(2, 6), elements=st.sampled_from([-1.0, 0.0, 0.5])),
    axis_size=st.integers(1, 3),
)
def test_max_over_an_axis_with_ties_raises_no_false_alarm(values: F64, axis_size: int) -> None:
    # many exact ties: a max-pool over columns of repeated values
    X = np.tile(values[:, None], (1, axis_size))

    def f(X: F64) -> float:
        return float(np.sum(np.max(X, axis=0) ** 2))

    def g(X: F64) -> list[F64]:
        out = np.zeros_like(X)
        cols = np.arange(X.shape[1])
        rows = np.argmax(X, axis=0)
        out[rows, cols] = 2 * X[rows, cols]
        return [out]

    result = check_grad(f, g, {"X": X})
    assert result.passed, result.format()


@pytest.mark.spec("GC-KINK")
def test_exact_kinks_are_found_moved_and_counted() -> None:
    x = np.array([0.0, 0.0, 1.0, 1.0, -2.0])  # ReLU/|x| kinks at 0, a max tie at 1
    f, g = relu_abs_max(np.ones(5), 0.3 * np.ones(5))
    result = check_grad(f, g, {"x": x})
    a = result.arrays[0]
    assert result.passed, result.format()
    assert a.kinks.found == 4 and a.kinks.moved == 4 and a.kinks.excluded == 0
    assert a.n_checked == 5
    assert "0/0/0" not in result.format()


@pytest.mark.spec("GC-KINK")
@settings(max_examples=50)
@given(
    x=hnp.arrays(np.float64, st.integers(1, 8), elements=near_kink),
    index=st.integers(0, 7),
    error=st.sampled_from([-1.0, -0.1, 0.05, 2.0]),
)
def test_a_wrong_gradient_at_a_smooth_point_still_fails(x: F64, index: int, error: float) -> None:
    i = index % x.size
    x = x.copy()
    x[i] = 0.75  # a smooth point (no kink within 0.1), not the max of the rest
    if np.any(np.delete(x, i) >= 0.65):
        x[np.arange(x.size) != i] = np.minimum(np.delete(x, i), 0.5)
    f, g = relu_abs_max(np.ones(x.size), 0.2 * np.ones(x.size))

    def g_bad(x: F64) -> list[F64]:
        out = g(x)[0].copy()
        if abs(x[i] - 0.75) < 0.1:  # wrong only near the original smooth point
            out[i] += error
        return [out]

    result = check_grad(f, g_bad, {"x": x})
    assert not result.passed
    assert result.arrays[0].worst_index == (i,), result.format()


@pytest.mark.spec("GC-KINK")
def test_the_wrong_relu_derivative_fails_even_with_kinks_present() -> None:
    x = np.array([0.0, 1.5, -0.8, 0.0, 0.3])

    def f(x: F64) -> float:
        return float(np.sum(np.maximum(x, 0)))

    assert check_grad(f, lambda x: [(x > 0) * 1.0], {"x": x}).passed
    bad = check_grad(f, lambda x: [np.sign(x)], {"x": x}, details=True)  # -1 for negatives
    assert not bad.passed and bad.arrays[0].details is not None
    assert bad.arrays[0].details.wrong[2], bad.format()
    leaky = check_grad(f, lambda x: [np.where(x > 0, 1.0, 0.01)], {"x": x})
    assert not leaky.passed


def stencil(fn: Callable[[float], float], h: float) -> Estimate:
    o = (-h, -h / 2, 0.0, h / 2, h)
    return central(o, [fn(t) for t in o], EPS)


@pytest.mark.spec("GC-KINK")
@pytest.mark.parametrize("d_over_h", [0.0, 0.01, 0.1, 0.16])
def test_the_slope_test_fires_for_a_kink_close_to_the_centre(d_over_h: float) -> None:
    # piecewise linear, slope 1 then 3, kink at distance d from x: the test fires for d < h/6
    h = 1e-5
    d = d_over_h * h
    est = stencil(lambda t: t if t < d else d + 3 * (t - d), h)
    assert is_kink(est, rtol=1e-5, atol=1e-10)
    smooth = stencil(lambda t: float(np.exp(t)), h)
    assert not is_kink(smooth, rtol=1e-5, atol=1e-10)


@pytest.mark.spec("GC-KINK")
def test_kinks_that_cannot_be_escaped_are_excluded_and_the_input_is_inconclusive() -> None:
    # a staircase with steps every 1e-5: kinks everywhere, whichever way the point moves
    x = np.array([0.0, 3e-5])

    def f(x: F64) -> float:
        return float(np.sum(np.abs(((x / 1e-5) % 2.0) - 1.0) * 1e-5))

    def g(x: F64) -> list[F64]:
        return [np.sign(((x / 1e-5) % 2.0) - 1.0)]

    result = check_grad(f, g, {"x": x})
    a = result.arrays[0]
    # x = 3e-5 sits in a symmetric V: D(h) = 0 = the analytic 0, a legitimate subgradient
    assert (a.kinks.found, a.kinks.excluded, a.n_checked) == (1, 1, 1), result.format()
    assert a.verdict == "inconclusive" and not result.passed
    assert "1 element(s) not judged" in a.note
