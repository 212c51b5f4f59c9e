"""LSTM layer (LSTM-*): per-example oracle, hand computation, properties, finite differences."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refnn import LSTM, Sequential, load, save
from refnn._validate import FloatRangeError
from refnn.gradcheck import check_grad
from refnn.lstm import lstm_backward, lstm_forward
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from tests.oracles.lstm import LSTMPoint, lstm_naive, lstm_points

GRAD_NAMES = ("dX", "dW", "db", "dh0", "dc0")


def _normal(seed: int, *shape: int, scale: float = 1.0) -> FloatArray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def _layer(p: LSTMPoint, dtype: type[np.floating] = np.float64) -> LSTM:
    """An LSTM holding p's parameters."""
    layer = LSTM(p.X.shape[0], p.W.shape[0] // 4, rng=np.random.default_rng(0), dtype=dtype)
    layer.params["W"][...], layer.params["b"][...] = p.W, p.b
    return layer


def _point(seed: int, n_in: int, n_h: int, T: int, m: int, scale: float = 1.0) -> LSTMPoint:
    """A fixed generic point (for the example-based tests)."""
    return LSTMPoint(
        X=_normal(seed, n_in, T, m, scale=scale),
        W=_normal(seed + 1, 4 * n_h, n_in + n_h, scale=scale / np.sqrt(n_in + n_h)),
        b=_normal(seed + 2, 4 * n_h, 1, scale=0.5),
        h0=np.tanh(_normal(seed + 3, n_h, m)),
        c0=_normal(seed + 4, n_h, m),
        dH=_normal(seed + 5, n_h, T, m),
    )


def _sig(a: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-a))


def _rel_err(actual: FloatArray, expected: FloatArray) -> float:
    """max |actual - expected| / max |expected| (norm-wise: insensitive to tiny entries)."""
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


# --- forward ------------------------------------------------------------------------------


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@given(p=lstm_points(max_steps=1, bound=3.0))
def test_one_step_from_the_given_state_matches_the_gate_equations_by_hand(p: LSTMPoint) -> None:
    n_in, n_h = p.X.shape[0], p.h0.shape[0]
    H, cache = lstm_forward(p.X, p.W, p.b, p.h0, p.c0)
    a = p.W[:, :n_in] @ p.X[:, 0, :] + p.W[:, n_in:] @ p.h0 + p.b
    i, f = _sig(a[:n_h]), _sig(a[n_h : 2 * n_h])
    g, o = np.tanh(a[2 * n_h : 3 * n_h]), _sig(a[3 * n_h :])
    c = f * p.c0 + i * g
    np.testing.assert_allclose(cache.C[0], c, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(H[:, 0, :], o * np.tanh(c), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(cache.gates[0], np.vstack([i, f, g, o]), atol=1e-15)


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@given(p=lstm_points())
@settings(max_examples=25)
def test_a_zero_state_given_is_the_default_and_a_carried_state_continues_the_sequence(
    p: LSTMPoint,
) -> None:
    """h0 = c0 = 0 given equals no state; running steps 1..t then t+1..T from the carried
    (h_t, c_t) equals one run over 1..T (the state is the whole memory: truncated BPTT)."""
    layer = _layer(p)
    zero = np.zeros_like(p.h0)
    whole = layer.forward(p.X, h0=p.h0, c0=p.c0)
    np.testing.assert_array_equal(layer.forward(p.X, h0=zero, c0=zero), layer.forward(p.X))
    for t in range(1, p.X.shape[1]):
        first, cache = lstm_forward(p.X[:, :t], p.W, p.b, p.h0, p.c0)
        second = layer.forward(p.X[:, t:], h0=first[:, -1], c0=cache.C[-1])
        np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-15)


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@given(p=lstm_points(max_size=6, max_steps=10), scale=st.floats(0.1, 10.0))
@example(p=_point(1, 6, 6, 10, 6, scale=10.0), scale=1.0)  # saturated gates, always
def test_hidden_state_is_in_the_unit_interval_and_the_cell_grows_at_most_one_per_step(
    p: LSTMPoint, scale: float
) -> None:
    H, cache = lstm_forward(scale * p.X, scale * p.W, scale * p.b, p.h0, p.c0)
    # |c_t| <= |c_0| + t (LSTM-CELL; saturated gates may round to 0 or 1, so not strictly)
    t = np.arange(1, p.X.shape[1] + 1)[:, None, None]  # the cache is step-major
    assert np.all(np.abs(cache.C) <= np.abs(p.c0) + t)
    # hence |c_t| <= 12 and |tanh c_t| < 1: |h_t| < 1 strictly even if o_t rounds to 1
    assert np.all(np.abs(H) < 1.0)


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@given(p=lstm_points(), data=st.data())
@settings(max_examples=30)
def test_forward_is_causal(p: LSTMPoint, data: st.DataObject) -> None:
    n_in, T, m = p.X.shape
    t = data.draw(st.integers(0, T - 1), label="t")
    X2 = p.X.copy()
    X2[:, t:, :] = data.draw(arrays((n_in, T - t, m), bound=2.0), label="future") + 3.0
    H, _ = lstm_forward(p.X, p.W, p.b, p.h0, p.c0)
    H2, _ = lstm_forward(X2, p.W, p.b, p.h0, p.c0)
    np.testing.assert_array_equal(H2[:, :t, :], H[:, :t, :])  # the past ignores the future


# --- backward -----------------------------------------------------------------------------


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
@given(p=lstm_points(max_size=6, max_steps=10, bound=3.0), zero_state=st.booleans())
@settings(max_examples=40)
@example(p=_point(0, 6, 6, 10, 6, scale=3.0), zero_state=False)  # the largest sizes, always
def test_matches_the_per_example_oracle(p: LSTMPoint, zero_state: bool) -> None:
    state = (None, None) if zero_state else (p.h0, p.c0)
    H, cache = lstm_forward(p.X, p.W, p.b, *state)
    H_naive, grads_naive = lstm_naive(p, zero_state=zero_state)
    assert _rel_err(H, H_naive) <= 1e-12
    grads = lstm_backward(p.dH, p.W, cache)
    for name, got, want in zip(GRAD_NAMES, grads, grads_naive, strict=True):
        assert _rel_err(got, want) <= 1e-12, name


@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
@given(p=lstm_points(), data=st.data())
@settings(max_examples=30)
def test_input_gradient_is_anticausal(p: LSTMPoint, data: st.DataObject) -> None:
    """dx_t depends on dH_s only for s >= t: changing dH before t leaves dX[:, t:] unchanged."""
    n_h, T, m = p.dH.shape
    t = data.draw(st.integers(1, T), label="t")
    _, cache = lstm_forward(p.X, p.W, p.b, p.h0, p.c0)
    dH2 = p.dH.copy()
    dH2[:, :t, :] = data.draw(arrays((n_h, t, m), bound=2.0), label="past")
    dX1, dX2 = lstm_backward(p.dH, p.W, cache)[0], lstm_backward(dH2, p.W, cache)[0]
    np.testing.assert_array_equal(dX2[:, t:, :], dX1[:, t:, :])


@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
@given(p=lstm_points(), dH2=st.data(), a=st.floats(-3, 3))
@settings(max_examples=30)
def test_backward_is_linear_in_dH(p: LSTMPoint, dH2: st.DataObject, a: float) -> None:
    d2 = dH2.draw(arrays(p.dH.shape, bound=2.0), label="dH2")
    _, cache = lstm_forward(p.X, p.W, p.b, p.h0, p.c0)
    g1, g2 = lstm_backward(p.dH, p.W, cache), lstm_backward(d2, p.W, cache)
    g12 = lstm_backward(a * p.dH + d2, p.W, cache)
    for name, x1, x2, x12 in zip(GRAD_NAMES, g1, g2, g12, strict=True):
        np.testing.assert_allclose(x12, a * x1 + x2, rtol=1e-10, atol=1e-12, err_msg=name)
    for name, zero in zip(GRAD_NAMES, lstm_backward(0 * p.dH, p.W, cache), strict=True):
        np.testing.assert_array_equal(zero, 0.0, err_msg=name)


@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
@given(p=lstm_points(max_steps=1, bound=3.0))
def test_one_step_gradients_match_the_equations_by_hand(p: LSTMPoint) -> None:
    """T = 1: dc = dH o (1 - tanh² c), da from LSTM-DGATES, dW = da [x; h0]^T, db = da 1,
    dx = W_x^T da, dh0 = W_h^T da, dc0 = dc f."""
    n_in = p.X.shape[0]
    _, cache = lstm_forward(p.X, p.W, p.b, p.h0, p.c0)
    dX, dW, db, dh0, dc0 = lstm_backward(p.dH, p.W, cache)
    i, f, g, o = np.split(cache.gates[0], 4)
    tanh_c, dh = np.tanh(cache.C[0]), p.dH[:, 0, :]
    dc = dh * o * (1 - tanh_c**2)
    da = np.vstack(
        [
            dc * g * i * (1 - i),
            dc * p.c0 * f * (1 - f),
            dc * i * (1 - g**2),
            dh * tanh_c * o * (1 - o),
        ]
    )
    expected = [
        p.W[:, :n_in].T @ da,
        da @ np.vstack([p.X[:, 0, :], p.h0]).T,
        da.sum(axis=1, keepdims=True),
        p.W[:, n_in:].T @ da,
        dc * f,
    ]
    for name, got, want in zip(GRAD_NAMES, (dX[:, 0, :], dW, db, dh0, dc0), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.spec("LSTM-DGATES", "LSTM-DW", "LSTM-DB", "LSTM-DC0")
@given(p=lstm_points(max_steps=1))
@settings(max_examples=25)
def test_one_step_from_the_zero_state(p: LSTMPoint) -> None:
    """T = 1 from h_0 = c_0 = 0: dW_h = 0 and the forget gate gets no gradient, yet the state
    has one: dc_0 = dc_1 f_1 (the zero start is a point of LSTM-DC0, not a special case)."""
    n_in, n_h = p.X.shape[0], p.h0.shape[0]
    _, cache = lstm_forward(p.X, p.W, p.b)
    _, dW, db, _, dc0 = lstm_backward(p.dH, p.W, cache)
    np.testing.assert_array_equal(dW[:, n_in:], 0.0)
    np.testing.assert_array_equal(dW[n_h : 2 * n_h], 0.0)
    np.testing.assert_array_equal(db[n_h : 2 * n_h], 0.0)
    i, f, g, o = np.split(cache.gates[0], 4)
    dc = p.dH[:, 0, :] * o * (1 - np.tanh(i * g) ** 2)  # c_1 = i_1 g_1
    np.testing.assert_allclose(dc0, dc * f, rtol=1e-12, atol=1e-15)


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
@given(p=lstm_points(max_size=3, max_steps=5))
@settings(max_examples=10)
def test_every_gradient_passes_the_checker(p: LSTMPoint) -> None:
    """refnn.gradcheck (finite differences) on J = Σ dH ⊙ LSTM(X; W, b, h0, c0), every input."""
    layer = _layer(p)

    def f(X: FloatArray, W: FloatArray, b: FloatArray, h0: FloatArray, c0: FloatArray) -> float:
        layer.params["W"][...], layer.params["b"][...] = W, b
        return float(np.sum(p.dH * layer.forward(X, h0=h0, c0=c0)))

    def grad(
        X: FloatArray, W: FloatArray, b: FloatArray, h0: FloatArray, c0: FloatArray
    ) -> list[FloatArray]:
        f(X, W, b, h0, c0)
        dX = layer.backward(p.dH)
        return [
            dX,
            layer.grads["W"],
            layer.grads["b"],
            layer.input_grads["h0"],
            layer.input_grads["c0"],
        ]

    inputs = {"X": p.X, "W": p.W, "b": p.b, "h0": p.h0, "c0": p.c0}
    check_grad(f, grad, inputs).raise_if_failed()


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
@given(p=lstm_points())
@settings(max_examples=20)
def test_caller_arrays_are_unchanged_and_the_output_is_the_callers(p: LSTMPoint) -> None:
    layer = _layer(p)
    before = [a.copy() for a in (p.X, p.h0, p.c0, p.dH)]
    H = layer.forward(p.X, h0=p.h0, c0=p.c0)
    H_before = H.copy()
    H[...] = 7.0  # writing into the returned H must not change what backward uses
    dX = layer.backward(p.dH)
    for a, b in zip((p.X, p.h0, p.c0, p.dH), before, strict=True):
        np.testing.assert_array_equal(a, b)
    layer.forward(p.X, h0=p.h0, c0=p.c0)
    np.testing.assert_array_equal(layer.backward(p.dH), dX)
    np.testing.assert_array_equal(layer.forward(p.X, h0=p.h0, c0=p.c0), H_before)


@pytest.mark.spec("LSTM-STATE-INIT")
@pytest.mark.parametrize("name", ["h0", "c0"])
def test_a_state_modified_between_forward_and_backward_is_refused(name: str) -> None:
    p = _point(0, 2, 3, 4, 2)
    layer = _layer(p)
    layer.forward(p.X, h0=p.h0, c0=p.c0)
    getattr(p, name)[0, 0] += 1.0
    with pytest.raises(RuntimeError, match=f"{name} was modified after forward"):
        layer.backward(p.dH)


@pytest.mark.spec("NOTE-CONTRACT")
def test_state_gradients_need_a_backward_after_each_forward() -> None:
    p = _point(0, 2, 3, 4, 2)
    layer = _layer(p)
    assert layer.input_grads == {}
    layer.forward(p.X)
    layer.backward(p.dH)
    assert layer.input_grads["h0"].shape == layer.input_grads["c0"].shape == (3, 2)
    layer.forward(p.X, h0=p.h0, c0=p.c0)  # a new forward: the old dh0 belongs to another state
    assert layer.input_grads == {}


# --- initialisation, dtype, configuration, bad input ----------------------------------------


@pytest.mark.spec("LSTM-INIT", "INIT-XAVIER")
def test_init_variance_and_forget_bias() -> None:
    n_in, n_h = 300, 200
    layer = LSTM(n_in, n_h, rng=np.random.default_rng(0))
    W, b = layer.params["W"], layer.params["b"]
    expected = 2.0 / ((n_in + n_h) + n_h)
    for k in range(4):  # each gate block: 100000 normal draws, variance within 2%
        block = W[k * n_h : (k + 1) * n_h]
        assert abs(block.var() / expected - 1) < 0.02
        assert abs(block.mean()) < 4 * np.sqrt(expected / block.size)
    np.testing.assert_array_equal(b[n_h : 2 * n_h], 1.0)
    np.testing.assert_array_equal(np.delete(b, np.s_[n_h : 2 * n_h], axis=0), 0.0)
    zero = LSTM(2, 3, rng=np.random.default_rng(0), forget_bias=0.0)
    np.testing.assert_array_equal(zero.params["b"], 0.0)


@pytest.mark.spec("LSTM-INIT")
def test_init_uses_only_the_given_generator() -> None:
    state = np.random.get_state()
    a = LSTM(3, 4, rng=np.random.default_rng(7)).params["W"]
    np.testing.assert_array_equal(a, LSTM(3, 4, rng=np.random.default_rng(7)).params["W"])
    assert not np.array_equal(a, LSTM(3, 4, rng=np.random.default_rng(8)).params["W"])
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1])  # type: ignore[index]


def test_config_is_json_and_rebuilds_the_layer() -> None:
    layer = LSTM(3, 5, rng=np.random.default_rng(0), forget_bias=0.5, dtype=np.float32)
    config = json.loads(json.dumps(layer.config()))
    assert config == {"n_in": 3, "n_hidden": 5, "forget_bias": 0.5, "dtype": "float32"}
    clone = LSTM(**config, rng=np.random.default_rng(0))
    for key in ("W", "b"):
        np.testing.assert_array_equal(clone.params[key], layer.params[key])
        assert clone.params[key].dtype == np.float32
    assert repr(layer).startswith("LSTM(n_in=3, n_hidden=5")


def test_save_and_load_rebuild_the_layer_exactly(tmp_path: Path) -> None:
    model = Sequential([LSTM(3, 4, rng=np.random.default_rng(0), forget_bias=0.5)])
    model.layers[0].params["b"][...] = _normal(1, 16, 1)
    save(model, tmp_path / "lstm.npz")
    loaded = load(tmp_path / "lstm.npz")
    assert isinstance(loaded.layers[0], LSTM)
    assert loaded.layers[0].config() == model.layers[0].config()
    X = _normal(2, 3, 5, 2)
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
def test_float32_layer_computes_in_float32_and_agrees_with_float64() -> None:
    p = _point(0, 3, 4, 6, 5)
    l64, l32 = _layer(p), _layer(p, np.float32)
    H32 = l32.forward(p.X.astype(np.float32), h0=p.h0, c0=p.c0)  # float64 state: converted
    dX32 = l32.backward(p.dH.astype(np.float32))
    out32 = [
        H32,
        dX32,
        l32.grads["W"],
        l32.grads["b"],
        l32.input_grads["h0"],
        l32.input_grads["c0"],
    ]
    H64 = l64.forward(p.X, h0=p.h0, c0=p.c0)
    dX64 = l64.backward(p.dH)
    out64 = [
        H64,
        dX64,
        l64.grads["W"],
        l64.grads["b"],
        l64.input_grads["h0"],
        l64.input_grads["c0"],
    ]
    for a32, a64 in zip(out32, out64, strict=True):
        assert a32.dtype == np.float32 and _rel_err(a32, a64) < 1e-5


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES")
@pytest.mark.spec("LSTM-DW", "LSTM-DB", "LSTM-DX", "LSTM-DH0", "LSTM-DC0")
def test_extreme_inputs_stay_finite_and_warning_free() -> None:
    p = _point(0, 2, 3, 4, 3)
    layer = _layer(p)
    X = np.array([1e308, -1e308, 300.0, -800.0])[None, :, None] * np.ones((2, 1, 3))
    big = np.full((3, 3), 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        H = layer.forward(X, h0=np.tanh(big), c0=big)
        dX = layer.backward(np.ones_like(H))
    assert np.all(np.isfinite(H)) and np.all(np.abs(H) <= 1.0)
    for a in (dX, layer.grads["W"], layer.input_grads["h0"]):
        assert np.all(np.isfinite(a))


def test_backward_twice_gives_the_same_gradients() -> None:
    p = _point(0, 2, 3, 4, 3)
    layer = _layer(p)
    layer.forward(p.X, h0=p.h0, c0=p.c0)
    dX = layer.backward(p.dH)
    first = [
        layer.grads["W"].copy(),
        layer.input_grads["h0"].copy(),
        layer.input_grads["c0"].copy(),
    ]
    np.testing.assert_array_equal(layer.backward(p.dH), dX)  # nothing accumulates
    for a, b in zip(
        [layer.grads["W"], layer.input_grads["h0"], layer.input_grads["c0"]], first, strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_non_contiguous_and_integer_input_is_accepted() -> None:
    layer = _layer(_point(0, 2, 3, 4, 3))
    X = _normal(0, 4, 5, 3)
    h0 = _normal(1, 6, 3)
    expected = layer.forward(np.ascontiguousarray(X[::2]), h0=np.ascontiguousarray(h0[::2]))
    np.testing.assert_array_equal(layer.forward(X[::2], h0=h0[::2]), expected)
    Xi = np.arange(2 * 4 * 3).reshape(2, 4, 3) % 3
    ci = np.ones((3, 3), dtype=np.int64)
    # (integers are documented input: as_input converts them to the layer's dtype)
    expected = layer.forward(Xi.astype(np.float64), c0=ci.astype(np.float64))
    np.testing.assert_array_equal(layer.forward(Xi, c0=ci), expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.ones((4, 5, 2)), r"X must have n_in = 3 on axis 0 .*, got 4 \(shape \(4, 5, 2\)\)"),
        (np.ones((3, 5)), r"X must have 3 axes .* got shape \(3, 5\) with 2"),
        (np.ones((3, 5, 2, 1)), r"3 axes .* got shape \(3, 5, 2, 1\) with 4"),
        (np.ones((3, 5, 0)), r"at least one example \(m >= 1\), got shape \(3, 5, 0\)"),
        (np.ones((3, 0, 2)), r"at least one time step \(T >= 1\), got shape \(3, 0, 2\)"),
        (np.full((3, 2, 2), np.nan), "X must be finite, got NaN"),
        (np.full((3, 2, 2), np.inf), "X must be finite, got NaN or Inf"),
        (np.ones((3, 2, 2), dtype=complex), "real numbers, got dtype complex128"),
        ([[[1.0]]], "numpy array, got list"),
    ],
)
def test_bad_input_names_expected_and_actual(X: object, message: str) -> None:
    layer = LSTM(3, 4, rng=np.random.default_rng(0))
    with pytest.raises((ValueError, TypeError), match=message):
        layer.forward(X)  # type: ignore[arg-type]


@pytest.mark.spec("LSTM-STATE-INIT")
@pytest.mark.parametrize("name", ["h0", "c0"])
@pytest.mark.parametrize(
    ("state", "message"),
    [
        (np.ones((4, 3)), r"{} must have shape \(n_hidden, m\) = \(4, 2\) as X, got \(4, 3\)"),
        (np.ones((2, 4)), r"{} must have n_hidden = 4 on axis 0 .* got 2 .*batch-first"),
        (np.ones((1, 2, 4)), r"{} must have 2 axes \(n_hidden x m, examples last\)"),
        (np.ones(4), r"{} must have 2 axes"),
        (np.full((4, 2), np.nan), "{} must be finite, got NaN or Inf"),
        (np.ones((4, 2), dtype=bool), "{} must hold real numbers, got dtype bool"),
        (np.ones((4, 2), dtype=complex), "{} must hold real numbers, got dtype complex128"),
        (np.full((4, 2), 1e300), r"{} must be within the range of float32"),
        ([[0.0, 0.0]] * 4, "{} must be a numpy array, got list"),
        (0.0, "{} must be a numpy array, got float"),
    ],
)
def test_bad_initial_state_names_expected_and_actual(
    name: str, state: object, message: str
) -> None:
    """Before h0/c0 existed forward had no such argument; now each bad state is refused by name
    (a wrong m, the batch-first (m, n_hidden) and PyTorch's (1, m, n_hidden) layouts included)."""
    layer = LSTM(3, 4, rng=np.random.default_rng(0), dtype=np.float32)
    with pytest.raises((ValueError, TypeError), match=message.format(name)):
        layer.forward(np.ones((3, 5, 2)), **{name: state})  # type: ignore[arg-type]


@pytest.mark.parametrize("training", ["no", 1, None, np.array([True])])
def test_training_must_be_a_bool(training: object) -> None:
    """Was accepted (any truthy or falsy object): now a TypeError naming it."""
    layer = LSTM(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"training must be True or False, got"):
        layer.forward(np.ones((3, 5, 2)), training=training)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n_in", "n_hidden"), [(2**40, 2**40), (2**63, 2), (3, 2**62), (10**6, 10**6)]
)
def test_sizes_that_cannot_be_allocated_are_refused_before_allocating(
    n_in: int, n_hidden: int
) -> None:
    """Was numpy's "array is too big" or "Maximum allowed dimension exceeded" from inside init."""
    with pytest.raises(ValueError, match=r"W \(4 n_hidden x \(n_in \+ n_hidden\)\) of shape"):
        LSTM(n_in, n_hidden, rng=np.random.default_rng(0))


def test_bad_construction_and_upstream_gradient() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        LSTM(2, 3, rng=np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_hidden must be an int >= 1, got 0"):
        LSTM(2, 0, rng=rng)
    with pytest.raises(TypeError, match=r"n_in must be an int >= 1, got 2\.0"):
        LSTM(2.0, 3, rng=rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="forget_bias must be in"):
        LSTM(2, 3, rng=rng, forget_bias=float("nan"))
    for bad in ("1", None, True, np.ones(1)):
        with pytest.raises(TypeError, match="forget_bias must be a real number"):
            LSTM(2, 3, rng=rng, forget_bias=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype must be float64 or float32"):
        LSTM(2, 3, rng=rng, dtype=np.int64)  # type: ignore[arg-type]
    layer = LSTM(2, 3, rng=rng)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((3, 4, 2)))
    layer.forward(np.ones((2, 4, 2)))
    with pytest.raises(ValueError, match=r"shape \(3, 4, 2\), got \(3, 2, 4\)"):
        layer.backward(np.ones((3, 2, 4)))


@pytest.mark.spec("LSTM-STATE-INIT", "LSTM-GATES", "LSTM-HIDDEN")
def test_a_huge_initial_state_saturates_the_gates_without_a_warning() -> None:
    """W_h h0 overflowing to ±inf used to raise numpy's "overflow encountered in matmul"; the
    gates saturate (σ(±inf) = 1 or 0, tanh(±inf) = ±1) and H stays finite, in (-1, 1]."""
    layer = LSTM(6, 6, rng=np.random.default_rng(0))
    h0 = np.full((6, 2), 1e308)
    h0[0] *= -1
    H = layer.forward(np.ones((6, 4, 2)), h0=h0, c0=np.zeros((6, 2)))
    dX = layer.backward(np.ones_like(H))
    assert np.all(np.isfinite(H)) and np.all(np.abs(H) <= 1.0) and np.all(np.isfinite(dX))


@pytest.mark.spec("NOTE-CONTRACT")
def test_gradients_beyond_the_float_range_are_refused_by_name() -> None:
    """W = 0, b = 0: da^g = dH / 4 on every example, so dW_h = Σ_k da^g_k h0_k = 8 * 1e308 / 4
    overflows: the one convention, a FloatRangeError naming the layer, the step and dW (a
    FloatingPointError too, so fit reports a divergence), never a RuntimeWarning and an inf."""
    layer = LSTM(1, 1, rng=np.random.default_rng(0))
    layer.params["W"][...] = 0.0
    H = layer.forward(np.ones((1, 1, 8)), h0=np.full((1, 8), 1e308))
    with pytest.raises(FloatRangeError, match=r"LSTM.backward: dW \(LSTM-DW\) overflows float64"):
        layer.backward(np.ones_like(H))
