"""BatchNorm, LayerNorm, GroupNorm (NORM-*, BN-*, LN-*, GN-*): the naive oracle, a hand
computation, properties hypothesis shrinks, running statistics, io, float32, bad input, and a
wrong backward that make check catches in exactly its cases."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refnn.norm
from refnn import BatchNorm, GroupNorm, LayerNorm, Sequential, load, save
from refnn._validate import FloatRangeError
from refnn.layer import Layer
from refnn.regularization import DECAYED_KEYS, decayed_weights
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from refnn.verify.cases import component_cases
from refnn.verify.run import run_case
from tests.oracles.norm import (
    Grads,
    naive_batch_norm,
    naive_batch_norm_inference,
    naive_group_norm,
    naive_layer_norm,
    naive_running,
)

EPS = 1e-5
TOL = 1e-12
Oracle = tuple[FloatArray, Grads, dict[Hashable, tuple[float, float]]]


# --- strategies: shapes shrink to the smallest layer, contents are drawn element by element ---


@st.composite
def norm_inputs(draw: st.DrawFn, *, min_set: int = 1, n: int | None = None) -> FloatArray:
    """X of shape (n, m), (n, T, m) or (C, H, W, m) on a grid: integers in [-8, 8] times a power
    of two. Sums of grid values are exact, so μ is the same correctly rounded number in any
    summation order and the comparison with the oracle measures the formulas, not the order of
    a sum; every row holds at least ``min_set`` entries."""
    n = draw(st.integers(1, 4), label="n") if n is None else n
    rest = draw(
        st.sampled_from([(1,), (2,), (1, 1), (2, 2)]).flatmap(
            lambda kind: st.tuples(*(st.integers(1, 3) for _ in kind))
        ),
        label="rest",
    )
    m = draw(st.integers(1, 3), label="m")
    shape = (n, *rest, m)
    if math.prod(shape[1:]) < min_set:
        shape = (n, *rest, m + min_set)
    k = draw(hnp.arrays(np.int64, shape, elements=st.integers(-8, 8)), label="integers")
    power = draw(st.integers(-2, 2), label="power of two")
    X: FloatArray = k * 2.0**power
    return X


def _scales(
    X: FloatArray, dY: FloatArray, oracle: Oracle, gamma: FloatArray, P: int
) -> list[float]:
    """Upper bounds on the sums of the absolute values of the terms making Y, dX, dγ, dβ
    (|x̂| <= sqrt(N), N the largest set): a sum's rounding error is bounded by its terms'."""
    stats = oracle[2]
    N = max(1, X.size // len(stats))
    inv_std = max(1.0 / math.sqrt(var + EPS) for _, var in stats.values())
    g = float(np.max(np.abs(gamma)))
    row_sums = float(np.max(np.abs(dY.reshape(P, -1)).sum(axis=1)))
    beta_and_gamma = g * math.sqrt(N) + 4.0  # |β| <= 4 as drawn
    return [
        beta_and_gamma,
        g * float(np.max(np.abs(dY))) * inv_std * (2 + N),
        row_sums * math.sqrt(N),
        row_sums,
    ]


def _agrees(
    layer: Layer[Any],
    X: FloatArray,
    dY: FloatArray,
    oracle: Oracle,
    P: int,
    *,
    training: bool = True,
) -> None:
    """The layer's Y, dX, dγ, dβ against the oracle's, each to 1e-12 of its terms' scale."""
    Y = layer.forward(X, training=training)
    dX = layer.backward(dY)
    got = [Y, dX, layer.grads["gamma"], layer.grads["beta"]]
    want = [oracle[0], *oracle[1]]
    scales = _scales(X, dY, oracle, layer.params["gamma"], P)
    for name, a, b, scale in zip(("Y", "dX", "dgamma", "dbeta"), got, want, scales, strict=True):
        assert a.shape == b.shape, name
        err = float(np.max(np.abs(a - b)))
        assert err <= TOL * scale, f"{name}: error {err:.3g} > 1e-12 x {scale:.3g}"


@dataclass(frozen=True)
class Point:
    X: FloatArray
    gamma: FloatArray
    beta: FloatArray
    dY: FloatArray


@st.composite
def points(draw: st.DrawFn, param_shape: Any, *, min_set: int = 1, n: int | None = None) -> Point:
    """X from :func:`norm_inputs`, γ, β of ``param_shape(X.shape)`` in [-4, 4], dY of X's shape."""
    X = draw(norm_inputs(min_set=min_set, n=n))
    shape = param_shape(X.shape)
    return Point(
        X,
        draw(arrays(shape), label="gamma"),
        draw(arrays(shape), label="beta"),
        draw(arrays(X.shape), label="dY"),
    )


def _with(layer: Layer[Any], p: Point) -> Layer[Any]:
    layer.params["gamma"][...] = p.gamma
    layer.params["beta"][...] = p.beta
    return layer


# --- the oracle -----------------------------------------------------------------------------


@pytest.mark.spec("BN-FWD", "NORM-STATS", "NORM-AFFINE", "NORM-DX", "NORM-DGAMMA", "NORM-DBETA")
@given(p=points(lambda s: (s[0], 1), min_set=2))
@settings(max_examples=40)
def test_batch_norm_training_matches_the_naive_oracle(p: Point) -> None:
    n = p.X.shape[0]
    layer = _with(BatchNorm(n), p)
    _agrees(layer, p.X, p.dY, naive_batch_norm(p.X, p.gamma, p.beta, p.dY, EPS), n)


def _running_matches_the_oracle(p: Point, momentum: float) -> None:
    n = p.X.shape[0]
    layer = BatchNorm(n, momentum=momentum)
    start_mean, start_var = 0.5 * p.beta, 1.0 + p.gamma**2  # any state, the variance positive
    layer.buffers["running_mean"][...] = start_mean
    layer.buffers["running_var"][...] = start_var
    layer.forward(p.X)
    want_mean, want_var = naive_running(start_mean, start_var, p.X, momentum)
    np.testing.assert_allclose(layer.buffers["running_mean"], want_mean, rtol=TOL, atol=1e-14)
    np.testing.assert_allclose(layer.buffers["running_var"], want_var, rtol=TOL, atol=1e-14)


@pytest.mark.spec("BN-RUNNING")
@given(p=points(lambda s: (s[0], 1), min_set=2), momentum=st.floats(0.0, 1.0))
@settings(max_examples=30)
def test_running_statistics_match_the_naive_update(p: Point, momentum: float) -> None:
    _running_matches_the_oracle(p, momentum)


@pytest.mark.spec("BN-RUNNING")
def test_a_running_variance_without_bessels_correction_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The biased σ² in the running estimate changes no derivative (make check and the kit's
    forward/backward protocol cannot see it): the running-statistics oracle catches it."""

    def biased(
        rm: FloatArray, rv: FloatArray, mean: FloatArray, var: FloatArray, N: int, momentum: float
    ) -> tuple[FloatArray, FloatArray]:
        return (1 - momentum) * rm + momentum * mean, (1 - momentum) * rv + momentum * var

    X = np.array([[0.0, 1.0, 2.0, 7.0], [1.0, 1.0, 3.0, -2.0]])
    p = Point(X, np.ones((2, 1)), np.zeros((2, 1)), np.zeros_like(X))
    _running_matches_the_oracle(p, 0.1)
    monkeypatch.setattr(refnn.norm, "batch_norm_running", biased)
    with pytest.raises(AssertionError, match="Mismatched elements: 2 / 2"):
        _running_matches_the_oracle(p, 0.1)


@pytest.mark.spec("BN-INFER", "BN-INFER-DX", "NORM-DGAMMA", "NORM-DBETA")
@given(p=points(lambda s: (s[0], 1)), data=st.data())
@settings(max_examples=30)
def test_batch_norm_inference_matches_the_naive_oracle(p: Point, data: st.DataObject) -> None:
    n = p.X.shape[0]
    rm = data.draw(arrays((n, 1)), label="running_mean")
    rv = data.draw(arrays((n, 1), bound=9.0, min_magnitude=1e-3), label="running_var") ** 2
    layer = _with(BatchNorm(n), p)
    layer.buffers["running_mean"][...] = rm
    layer.buffers["running_var"][...] = rv
    Y_naive, grads = naive_batch_norm_inference(p.X, p.gamma, p.beta, rm, rv, p.dY, EPS)
    Y = layer.forward(p.X, training=False)
    dX = layer.backward(p.dY)
    scale = float(np.max(np.abs(p.gamma))) / math.sqrt(float(rv.min()) + EPS)
    _close(Y, Y_naive, scale * float(np.max(np.abs(p.X.reshape(n, -1) - rm))) + 4.0, "Y")
    _close(dX, grads[0], scale * float(np.max(np.abs(p.dY))), "dX")
    xhat_max = float(np.max(np.abs(p.X.reshape(n, -1) - rm))) / math.sqrt(float(rv.min()) + EPS)
    sums = float(np.max(np.abs(p.dY.reshape(n, -1)).sum(axis=1)))
    _close(layer.grads["gamma"], grads[1], sums * xhat_max, "dgamma")
    _close(layer.grads["beta"], grads[2], sums, "dbeta")
    # inference leaves the running statistics alone
    np.testing.assert_array_equal(layer.buffers["running_mean"], rm)
    np.testing.assert_array_equal(layer.buffers["running_var"], rv)


@pytest.mark.spec("LN-FWD", "NORM-STATS", "NORM-AFFINE", "NORM-DX", "NORM-DGAMMA", "NORM-DBETA")
@given(p=points(lambda s: (*s[:-1], 1)), training=st.booleans())
@settings(max_examples=40)
def test_layer_norm_matches_the_naive_oracle(p: Point, training: bool) -> None:
    layer = _with(LayerNorm(p.X.shape[:-1]), p)
    oracle = naive_layer_norm(p.X, p.gamma, p.beta, p.dY, EPS)
    _agrees(layer, p.X, p.dY, oracle, math.prod(p.X.shape[:-1]), training=training)


@st.composite
def group_points(draw: st.DrawFn) -> tuple[int, Point]:
    """(groups, a point with groups x (1 or 2) channels)."""
    groups = draw(st.integers(1, 3), label="groups")
    per_group = draw(st.integers(1, 2), label="channels per group")
    return groups, draw(points(lambda s: (s[0], 1), n=groups * per_group))


@pytest.mark.spec("GN-FWD", "NORM-STATS", "NORM-AFFINE", "NORM-DX", "NORM-DGAMMA", "NORM-DBETA")
@given(gp=group_points(), training=st.booleans())
@settings(max_examples=40)
def test_group_norm_matches_the_naive_oracle(gp: tuple[int, Point], training: bool) -> None:
    groups, p = gp
    C = p.X.shape[0]
    layer = _with(GroupNorm(groups, C), p)
    oracle = naive_group_norm(p.X, p.gamma, p.beta, p.dY, groups, EPS)
    _agrees(layer, p.X, p.dY, oracle, C, training=training)


def _close(got: FloatArray, want: FloatArray, scale: float, what: str) -> None:
    err = float(np.max(np.abs(got - want)))
    assert err <= TOL * max(scale, 1e-300), f"{what}: error {err:.3g} > 1e-12 x {scale:.3g}"


# --- by hand ----------------------------------------------------------------------------------


@pytest.mark.spec("BN-FWD", "NORM-STATS", "NORM-AFFINE", "BN-RUNNING")
def test_batch_norm_by_hand() -> None:
    """One feature, values 1, 2, 3: μ = 2, σ² = 2/3, x̂ = (-1, 0, 1)/sqrt(2/3 + ε); the running
    variance takes the unbiased 1 (PyTorch's convention), the mean 0.1 x 2."""
    layer = BatchNorm(1)
    layer.params["gamma"][...] = 2.0
    layer.params["beta"][...] = 0.5
    Y = layer.forward(np.array([[1.0, 2.0, 3.0]]))
    s = 1.0 / math.sqrt(2.0 / 3.0 + EPS)
    np.testing.assert_allclose(Y, [[0.5 - 2 * s, 0.5, 0.5 + 2 * s]], rtol=1e-15)
    np.testing.assert_allclose(layer.buffers["running_mean"], [[0.2]], rtol=1e-15)
    np.testing.assert_allclose(layer.buffers["running_var"], [[0.9 + 0.1 * 1.0]], rtol=1e-15)
    # at inference: γ (x - 0.2)/sqrt(1 + ε) + β
    Y = layer.forward(np.array([[1.2]]), training=False)
    np.testing.assert_allclose(Y, [[0.5 + 2.0 / math.sqrt(1.0 + EPS)]], rtol=1e-15)


@pytest.mark.spec("LN-FWD", "GN-FWD", "NORM-STATS")
def test_layer_and_group_norm_by_hand() -> None:
    """LayerNorm standardises each column; GroupNorm each group of channels of each example."""
    X = np.array([[1.0, 10.0], [3.0, 10.0]])  # column 0: 1, 3; column 1: constant
    s = 1.0 / math.sqrt(1.0 + EPS)
    np.testing.assert_allclose(LayerNorm(2).forward(X), [[-s, 0.0], [s, 0.0]], rtol=1e-15)
    images = np.array([1.0, 3.0, 5.0, 7.0]).reshape(4, 1, 1, 1)  # 4 channels, 1 x 1, m = 1
    Y = GroupNorm(2, 4).forward(images)  # groups (1, 3) and (5, 7): each -s, s
    np.testing.assert_allclose(Y.ravel(), [-s, s, -s, s], rtol=1e-15)


# --- properties ---------------------------------------------------------------------------------


@st.composite
def spread_inputs(draw: st.DrawFn) -> FloatArray:
    """Training inputs whose every feature has variance >= 1/4: a drawn X plus a ramp along each
    row, so the properties below hold to rounding (an ε-sized effect stays below it)."""
    X = draw(norm_inputs(min_set=2)).astype(np.float64) / 4.0
    n = X.shape[0]
    ramp = np.linspace(-8.0, 8.0, X[0].size).reshape(X.shape[1:])
    return X + np.broadcast_to(ramp, X.shape) * (1 + np.arange(n)).reshape(n, *([1] * (X.ndim - 1)))


@pytest.mark.spec("BN-FWD", "NORM-STATS")
@given(X=norm_inputs(min_set=2))
def test_training_output_per_feature_has_mean_0_and_variance_below_1(X: FloatArray) -> None:
    """Before the affine part (γ = 1, β = 0): mean 0, variance σ²/(σ² + ε) <= 1 per feature."""
    n = X.shape[0]
    Y = BatchNorm(n).forward(X).reshape(n, -1)
    var = X.reshape(n, -1).var(axis=1)
    np.testing.assert_allclose(Y.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(Y.var(axis=1), var / (var + EPS), rtol=1e-12, atol=1e-12)


@pytest.mark.spec("BN-FWD", "NORM-STATS", "NORM-AFFINE")
@given(
    X=spread_inputs(),
    data=st.data(),
    c=st.floats(0.1, 10.0),
)
def test_training_output_ignores_a_shift_per_feature_and_a_scaling(
    X: FloatArray, data: st.DataObject, c: float
) -> None:
    """BN(X + k_c) = BN(X) for a constant k_c per feature; BN(c X) with ε c² = BN(X) exactly in
    exact arithmetic (x̂ is unchanged), so here to rounding."""
    n = X.shape[0]
    k = data.draw(arrays((n, *[1] * (X.ndim - 1)), bound=100.0), label="shift")
    layer = BatchNorm(n)
    Y = layer.forward(X)
    np.testing.assert_allclose(layer.forward(X + k), Y, atol=1e-11)
    np.testing.assert_allclose(BatchNorm(n, eps=EPS * c * c).forward(c * X), Y, atol=1e-12)


@pytest.mark.spec("NORM-DX", "NORM-DGAMMA", "NORM-DBETA")
@given(X=norm_inputs(min_set=2), data=st.data())
def test_dx_sums_to_zero_over_each_set_and_is_nearly_orthogonal_to_xhat(
    X: FloatArray, data: st.DataObject
) -> None:
    """Σ_S dX = 0 and Σ_S dX x̂ = ε/(σ² + ε) Σ_S dx̂ x̂ / sqrt(σ² + ε) (NORM-DX): the gradient has
    no component along the directions the output is blind to (a shift; a scaling, up to ε)."""
    n = X.shape[0]
    layer = BatchNorm(n)
    layer.params["gamma"][...] = data.draw(arrays((n, 1)), label="gamma")
    dY = data.draw(arrays(X.shape), label="dY")
    Y = layer.forward(X)
    dX = layer.backward(dY).reshape(n, -1)
    X2 = X.reshape(n, -1)
    var = X2.var(axis=1, keepdims=True)
    xhat = (X2 - X2.mean(axis=1, keepdims=True)) / np.sqrt(var + EPS)
    dxhat = layer.params["gamma"] * dY.reshape(n, -1)
    scale = np.abs(dxhat).sum(axis=1, keepdims=True) / np.sqrt(EPS)
    assert np.all(np.abs(dX.sum(axis=1, keepdims=True)) <= 1e-12 * scale + 1e-300)
    want = EPS / (var + EPS) * (dxhat * xhat).sum(axis=1, keepdims=True) / np.sqrt(var + EPS)
    got = (dX * xhat).sum(axis=1, keepdims=True)
    assert np.all(np.abs(got - want) <= 1e-11 * scale * (1 + X2[0].size)), (got, want)
    del Y


@pytest.mark.spec("LN-FWD", "GN-FWD", "NORM-STATS")
@given(X=spread_inputs(), data=st.data())
def test_layer_norm_ignores_a_shift_per_example_and_group_norm_per_example_and_group(
    X: FloatArray, data: st.DataObject
) -> None:
    """What each layer is blind to says which set it normalises over: a constant added to one
    example (LayerNorm, GroupNorm with one group); a constant per channel of a group (GroupNorm
    with one channel per group: instance norm). BatchNorm is blind to neither."""
    X = X.transpose(*range(1, X.ndim - 1), 0, X.ndim - 1).copy() if X.ndim > 2 else X
    m = X.shape[-1]
    k = data.draw(arrays((m,), bound=100.0), label="shift per example")
    ln = LayerNorm(X.shape[:-1])
    np.testing.assert_allclose(ln.forward(X + k), ln.forward(X), atol=1e-11)
    C = X.shape[0]
    gn = GroupNorm(1, C)
    np.testing.assert_allclose(gn.forward(X + k), gn.forward(X), atol=1e-11)
    per_channel = data.draw(arrays((C, *[1] * (X.ndim - 2), m), bound=100.0), label="shift")
    inorm = GroupNorm(C, C)
    if X[0].size > m:  # at least two entries per channel and example
        np.testing.assert_allclose(inorm.forward(X + per_channel), inorm.forward(X), atol=1e-11)


@pytest.mark.spec("NORM-DX")
@given(X=norm_inputs(min_set=2), data=st.data())
def test_the_simplified_backward_differs_from_the_full_one(
    X: FloatArray, data: st.DataObject
) -> None:
    """The terms through μ and σ² matter: they are exactly what separates NORM-DX from the
    inference form γ/sqrt(σ² + ε) dY, and they are non-zero unless dY is blind to them."""
    n = X.shape[0]
    dY = data.draw(arrays(X.shape), label="dY")
    layer = BatchNorm(n)
    layer.forward(X)
    full = layer.backward(dY).reshape(n, -1)
    X2 = X.reshape(n, -1)
    simplified = dY.reshape(n, -1) / np.sqrt(X2.var(axis=1, keepdims=True) + EPS)
    difference = simplified - full  # = mean(dY) + x̂ mean(dY x̂), scaled: the dropped terms
    xhat = (X2 - X2.mean(axis=1, keepdims=True)) / np.sqrt(X2.var(axis=1, keepdims=True) + EPS)
    d2 = dY.reshape(n, -1)
    dropped = (
        d2.mean(axis=1, keepdims=True) + xhat * (d2 * xhat).mean(axis=1, keepdims=True)
    ) / np.sqrt(X2.var(axis=1, keepdims=True) + EPS)
    np.testing.assert_allclose(difference, dropped, atol=1e-9)


# --- modes, m = 1, buffers, L2, io, float32 -------------------------------------------------


@pytest.mark.spec("BN-FWD", "BN-INFER")
def test_one_value_per_feature_is_refused_in_training_and_fine_at_inference() -> None:
    layer = BatchNorm(3)
    with pytest.raises(ValueError, match=r"more than one value per feature .* \(3, 1\) \(N = 1\)"):
        layer.forward(np.ones((3, 1)))
    np.testing.assert_array_equal(layer.buffers["running_mean"], 0.0)  # a refusal changes nothing
    Y = layer.forward(np.ones((3, 1)), training=False)
    np.testing.assert_allclose(Y, 1.0 / math.sqrt(1.0 + EPS), rtol=1e-15)
    # one image trains: N = H W = 4 entries per channel
    assert BatchNorm(2).forward(np.arange(8.0).reshape(2, 2, 2, 1)).shape == (2, 2, 2, 1)


@pytest.mark.spec("BN-RUNNING")
def test_momentum_conventions() -> None:
    """momentum = 1 keeps the last batch's statistics (unbiased variance), 0 freezes them; the
    course's momentum 0.9 (running = 0.9 running + 0.1 batch) is refnn's momentum 0.1."""
    X = np.array([[0.0, 1.0, 2.0, 7.0]])
    last = BatchNorm(1, momentum=1.0)
    last.forward(X)
    assert last.buffers["running_mean"][0, 0] == X.mean()
    np.testing.assert_allclose(last.buffers["running_var"], [[X.var(ddof=1)]], rtol=1e-15)
    frozen = BatchNorm(1, momentum=0.0)
    frozen.forward(X)
    assert frozen.buffers["running_mean"][0, 0] == 0.0 and frozen.buffers["running_var"][0, 0] == 1
    course = BatchNorm(1)  # course: running = 0.9 running + 0.1 batch
    course.forward(X)
    np.testing.assert_allclose(course.buffers["running_mean"], [[0.9 * 0 + 0.1 * X.mean()]])


@pytest.mark.spec("BN-RUNNING", "NORM-DGAMMA", "NORM-DBETA")
def test_buffers_are_not_parameters_and_l2_decays_nothing_of_a_norm_layer() -> None:
    layers: list[Layer[Any]] = [BatchNorm(3), LayerNorm((3,)), GroupNorm(1, 3)]
    for layer in layers:
        assert set(layer.params) == {"gamma", "beta"}
        assert not set(layer.params) & set(DECAYED_KEYS)
        assert list(decayed_weights(Sequential(layers))) == []
    bn = layers[0]
    bn.forward(np.arange(6.0).reshape(3, 2))
    bn.backward(np.ones((3, 2)))
    assert {p.name for p in bn.parameters()} == {"gamma", "beta"}
    assert set(bn.buffers) == {"running_mean", "running_var"}


@pytest.mark.spec("BN-RUNNING", "BN-INFER")
def test_running_statistics_survive_save_and_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = Sequential([BatchNorm(3, momentum=0.3), LayerNorm(3), GroupNorm(3, 3)])
    for _ in range(3):
        model.forward(2.0 * rng.standard_normal((3, 5)) + 1.0)
    save(model, tmp_path / "norm.npz")
    loaded = load(tmp_path / "norm.npz")
    for a, b in zip(model.layers, loaded.layers, strict=True):
        for key in (*a.params, *a.buffers):
            got = {**b.params, **b.buffers}[key]
            assert got.tobytes() == {**a.params, **a.buffers}[key].tobytes(), key
    X = rng.standard_normal((3, 1))
    assert loaded.forward(X, training=False).tobytes() == model.forward(X, training=False).tobytes()


@pytest.mark.spec("NORM-STATS", "NORM-DX", "BN-RUNNING", "NOTE-DTYPE")
@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda dt: BatchNorm(3, dtype=dt), (3, 2, 2, 4)),
        (lambda dt: LayerNorm((3, 2), dtype=dt), (3, 2, 4)),
        (lambda dt: GroupNorm(2, 4, dtype=dt), (4, 2, 2, 3)),
    ],
)
def test_float32_end_to_end_close_to_float64(make: Any, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    X, dY = rng.standard_normal(shape), rng.standard_normal(shape)
    l32, l64 = make(np.float32), make(np.float64)
    for training in (True, False):
        Y32, Y64 = l32.forward(X, training=training), l64.forward(X, training=training)
        dX32, dX64 = l32.backward(dY), l64.backward(dY)
        assert Y32.dtype == dX32.dtype == np.float32
        np.testing.assert_allclose(Y32, Y64, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dX32, dX64, rtol=1e-4, atol=1e-4)
        for key in l32.grads:
            assert l32.grads[key].dtype == np.float32
            np.testing.assert_allclose(l32.grads[key], l64.grads[key], rtol=1e-4, atol=1e-4)
    assert all(b.dtype == np.float32 for b in l32.buffers.values())


@pytest.mark.spec("NOTE-INPUTS", "NORM-DX")
@given(X=norm_inputs(min_set=2), data=st.data())
@settings(max_examples=20)
def test_nothing_the_caller_passed_is_modified(X: FloatArray, data: st.DataObject) -> None:
    dY = data.draw(arrays(X.shape), label="dY")
    X0, dY0 = X.copy(), dY.copy()
    for layer in (BatchNorm(X.shape[0]), LayerNorm(X.shape[:-1]), GroupNorm(1, X.shape[0])):
        for training in (True, False):
            layer.forward(X, training=training)
            layer.backward(dY)
            np.testing.assert_array_equal(X, X0)
            np.testing.assert_array_equal(dY, dY0)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: BatchNorm(0), ValueError, "n must be an int >= 1, got 0"),
        (lambda: BatchNorm(2.5), TypeError, "n must be an int >= 1, got 2.5"),  # type: ignore[arg-type]
        (lambda: BatchNorm(3, momentum=1.5), ValueError, r"momentum must be in \[0.0, 1.0\]"),
        (lambda: BatchNorm(3, eps=0.0), ValueError, r"eps must be in \(0, 1\]"),
        (lambda: BatchNorm(3, eps=-1e-5), ValueError, r"eps must be in \[0.0, 1.0\]"),
        (lambda: BatchNorm(3, dtype=np.int64), TypeError, "dtype must be float64 or float32"),  # type: ignore[arg-type]
        (lambda: LayerNorm(()), ValueError, "normalized_shape must hold at least one size"),
        (lambda: LayerNorm(True), TypeError, "normalized_shape must be an int or a tuple"),
        (lambda: LayerNorm((3, 0)), ValueError, "normalized_shape must be an int >= 1, got 0"),
        (
            lambda: GroupNorm(2, 3),
            ValueError,
            "channels must be divisible by groups, got channels = 3 and groups = 2",
        ),
        (lambda: GroupNorm(0, 3), ValueError, "groups must be an int >= 1, got 0"),
    ],
)
def test_bad_construction_is_refused_by_name(build: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize(
    ("layer", "X", "message"),
    [
        (BatchNorm(3), np.ones((2, 4)), r"n = 3 on axis 0 .* got 2 \(shape \(2, 4\)\)"),
        (BatchNorm(3), np.ones(3), r"at least 2 axes .* got shape \(3,\)"),
        (BatchNorm(3), np.ones((3, 0)), "at least one example"),
        (BatchNorm(1), np.array([[1.0, np.nan]]), "finite"),
        (
            LayerNorm((2, 3)),
            np.ones((3, 2, 4)),
            r"\(\*normalized_shape, m\) = \(2, 3, m\), .* "
            r"got \(3, 2, 4\)",
        ),
        (LayerNorm(4), np.ones((4, 2, 3)), r"\(4, m\), examples last, got \(4, 2, 3\)"),
        (GroupNorm(2, 4), np.ones((3, 2, 2, 1)), r"C = 4 on axis 0 .* got 3"),
        (GroupNorm(2, 4), [[1.0]], "numpy array, got list"),
        (BatchNorm(3), np.ones((3, 0, 2)), r"no axis of size 0\), got shape \(3, 0, 2\)"),
        (GroupNorm(1, 3), np.ones((3, 2, 0, 2)), r"no axis of size 0\), got shape \(3, 2, 0, 2\)"),
    ],
)
def test_bad_input_is_refused_by_name(layer: Layer[Any], X: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        layer.forward(X)  # type: ignore[arg-type]


@pytest.mark.spec("BN-FWD", "NORM-STATS", "NOTE-CONTRACT")
def test_statistics_beyond_the_float_range_are_refused_not_returned_as_zeros() -> None:
    """σ² of values near 1e200 overflows: x̂ would silently be 0; the layers refuse it by name."""
    X = np.array([[1e200, -1e200, 3e200]])
    layer = BatchNorm(1)
    with pytest.raises(FloatRangeError, match=r"BatchNorm.forward: Y \(BN-FWD.*\) overflows"):
        layer.forward(X)
    np.testing.assert_array_equal(layer.buffers["running_var"], 1.0)  # untouched
    with pytest.raises(FloatRangeError, match=r"LayerNorm.forward: Y .* overflows"):
        LayerNorm(3).forward(X.T.copy())  # one example of three entries
    with pytest.raises(FloatRangeError, match=r"GroupNorm.forward: Y .* overflows float32"):
        GroupNorm(1, 3, dtype=np.float32).forward(np.array([[1e30], [-1e30], [3e30]]))


# --- make check bites -----------------------------------------------------------------------


def _simplified(
    dY: FloatArray, xc: FloatArray, inv_std: FloatArray, gamma: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """BatchNorm's simplified backward: the batch statistics treated as constants (the
    inference form applied while training), dropping the terms through μ and σ²."""
    return refnn.norm.batch_norm_inference_backward(dY, xc, inv_std, gamma)


@pytest.mark.spec("NORM-DX", "BN-INFER-DX")
def test_the_simplified_backward_fails_make_check_in_exactly_the_training_cases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = [c for c in component_cases() if c.component.split()[0] == "BatchNorm"]
    training = {c for c in cases if "NORM-DX" in c.specs}
    assert len(training) >= 8 and len(cases) - len(training) >= 4
    assert all(run_case(c).passed for c in cases)
    monkeypatch.setattr(refnn.norm, "batch_norm_backward", _simplified)
    failed = {c for c in cases if not run_case(c).passed}
    assert failed == training  # inference cases use that form rightly and still pass


@pytest.mark.spec("BN-FWD", "NORM-DX")
@given(X=norm_inputs(min_set=2), data=st.data(), block=st.sampled_from([1, 8, 64]))
@settings(max_examples=25)
def test_the_row_blocks_do_not_change_a_bit(X: FloatArray, data: st.DataObject, block: int) -> None:
    """BatchNorm works through X a block of rows at a time (for the cache); any block size gives
    the same bits as one block holding every row."""
    n = X.shape[0]
    X = X + data.draw(arrays(X.shape, bound=1.0), label="noise")  # off the grid
    dY = data.draw(arrays(X.shape), label="dY")

    def run() -> list[FloatArray]:
        layer = BatchNorm(n)
        out = [layer.forward(X), layer.backward(dY), *layer.grads.values()]
        return [*out, *layer.buffers.values()]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(refnn.norm, "BLOCK_BYTES", 1 << 40)
        whole = run()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(refnn.norm, "BLOCK_BYTES", block * X.itemsize)  # a row or a few per block
        blocked = run()
    for a, b in zip(blocked, whole, strict=True):
        assert a.tobytes() == b.tobytes()
