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
from refnn.gradcheck import check_grad
from refnn.lstm import lstm_backward, lstm_forward
from refnn.types import DTypeLike, FloatArray
from refnn.verify import cases_lstm
from refnn.verify.cases import Case
from refnn.verify.problems import Problem, layer_problem
from refnn.verify.run import run_case
from tests.oracles.lstm import lstm_backward_naive, lstm_forward_naive
from tests.strategies import normal, seeds, sizes

steps = st.integers(min_value=1, max_value=10)


def _params(n_in: int, n_h: int, seed: int, scale: float = 1.0) -> tuple[FloatArray, FloatArray]:
    """Generic W and b (a random bias, not the init's 0/1 blocks)."""
    W = normal(seed + 1, 4 * n_h, n_in + n_h, scale=scale / np.sqrt(n_in + n_h))
    b = normal(seed + 2, 4 * n_h, 1, scale=0.5)
    return W, b


def _layer(n_in: int, n_h: int, seed: int, dtype: DTypeLike = np.float64) -> LSTM:
    layer = LSTM(n_in, n_h, rng=np.random.default_rng(seed), dtype=dtype)
    layer.params["b"][...] = normal(seed + 2, 4 * n_h, 1, scale=0.5)
    return layer


def _sig(a: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-a))
    return out


def _rel_err(actual: FloatArray, expected: FloatArray) -> float:
    """max |actual - expected| / max |expected| (norm-wise: insensitive to tiny entries)."""
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


# --- forward ------------------------------------------------------------------------------


@pytest.mark.spec("LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@given(n_in=sizes, n_h=sizes, m=sizes, seed=seeds)
def test_one_step_from_zero_state_matches_the_gate_equations_by_hand(
    n_in: int, n_h: int, m: int, seed: int
) -> None:
    W, b = _params(n_in, n_h, seed, scale=2.0)
    X = normal(seed, n_in, 1, m)
    H, cache = lstm_forward(X, W, b)
    # T = 1, h_0 = c_0 = 0: a = W_x x + b; c = i g (the forget gate meets c_0 = 0); h = o tanh c
    a = W[:, :n_in] @ X[:, 0, :] + b
    i, f = _sig(a[:n_h]), _sig(a[n_h : 2 * n_h])
    g, o = np.tanh(a[2 * n_h : 3 * n_h]), _sig(a[3 * n_h :])
    c = i * g
    h = o * np.tanh(c)
    np.testing.assert_allclose(H[:, 0, :], h, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(cache.C[:, 0, :], c, rtol=1e-13, atol=1e-15)
    step = cache.step(0)
    for got, want in ((step.i, i), (step.f, f), (step.g, g), (step.o, o)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.spec("LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN", "LSTM-DW", "LSTM-DB", "LSTM-DX")
@given(n_in=sizes, n_h=sizes, T=steps, m=sizes, seed=seeds)
@settings(max_examples=25)
def test_shapes_of_output_and_gradients(n_in: int, n_h: int, T: int, m: int, seed: int) -> None:
    layer = LSTM(n_in, n_h, rng=np.random.default_rng(seed))
    H = layer.forward(normal(seed, n_in, T, m))
    assert H.shape == (n_h, T, m) and H.dtype == np.float64
    assert H.flags.c_contiguous
    dX = layer.backward(normal(seed + 3, n_h, T, m))
    assert dX.shape == (n_in, T, m)
    assert set(layer.grads) == set(layer.params) == {"W", "b"}
    assert layer.params["W"].shape == layer.grads["W"].shape == (4 * n_h, n_in + n_h)
    assert layer.params["b"].shape == layer.grads["b"].shape == (4 * n_h, 1)


@pytest.mark.spec("LSTM-HIDDEN", "LSTM-CELL")
@given(n_in=sizes, n_h=sizes, T=steps, m=sizes, seed=seeds, scale=st.floats(0.1, 10.0))
@example(n_in=6, n_h=6, T=10, m=6, seed=1, scale=10.0)  # saturated gates, always
def test_hidden_state_is_in_the_open_unit_interval_and_cell_below_t(
    n_in: int, n_h: int, T: int, m: int, seed: int, scale: float
) -> None:
    W, b = _params(n_in, n_h, seed, scale=scale)
    H, cache = lstm_forward(normal(seed, n_in, T, m, scale=scale), W, b)
    # |c_t| <= t (LSTM-CELL; saturated gates may round to 0 or 1, so not strictly in floats)
    t = np.arange(1, T + 1)[None, :, None]
    assert np.all(np.abs(cache.C) <= t)
    # hence |c_t| <= 10 and |tanh c_t| < 1 - 4e-9: |h_t| < 1 strictly even if o_t rounds to 1
    assert np.all(np.abs(H) < 1.0)


@pytest.mark.spec("LSTM-GATES", "LSTM-CELL", "LSTM-HIDDEN")
@given(n_in=sizes, n_h=sizes, T=st.integers(2, 10), m=sizes, seed=seeds, data=st.data())
@settings(max_examples=30)
def test_forward_is_causal(
    n_in: int, n_h: int, T: int, m: int, seed: int, data: st.DataObject
) -> None:
    t = data.draw(st.integers(1, T - 1), label="t")
    W, b = _params(n_in, n_h, seed)
    X = normal(seed, n_in, T, m)
    X2 = X.copy()
    X2[:, t:, :] = normal(seed + 9, n_in, T - t, m)
    H, _ = lstm_forward(X, W, b)
    H2, _ = lstm_forward(X2, W, b)
    np.testing.assert_array_equal(H2[:, :t, :], H[:, :t, :])  # the past ignores the future
    assert not np.array_equal(H2[:, t:, :], H[:, t:, :])  # and the future does see it


@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES", "LSTM-DW", "LSTM-DB", "LSTM-DX")
@given(n_in=sizes, n_h=sizes, T=st.integers(2, 10), m=sizes, seed=seeds, data=st.data())
@settings(max_examples=30)
def test_input_gradient_is_anticausal(
    n_in: int, n_h: int, T: int, m: int, seed: int, data: st.DataObject
) -> None:
    """dx_t depends on dH_s only for s >= t: changing dH before t leaves dX[:, t:] unchanged."""
    t = data.draw(st.integers(1, T - 1), label="t")
    W, b = _params(n_in, n_h, seed)
    _, cache = lstm_forward(normal(seed, n_in, T, m), W, b)
    dH = normal(seed + 3, n_h, T, m)
    dH2 = dH.copy()
    dH2[:, :t, :] = normal(seed + 4, n_h, t, m)
    g1, g2 = lstm_backward(dH, W, cache), lstm_backward(dH2, W, cache)
    np.testing.assert_array_equal(g2.dX[:, t:, :], g1.dX[:, t:, :])


@pytest.mark.spec(
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)
@given(n_in=sizes, n_h=sizes, T=steps, m=sizes, seed=seeds, scale=st.floats(0.1, 3.0))
@settings(max_examples=40)
@example(n_in=6, n_h=6, T=10, m=6, seed=0, scale=3.0)  # the largest sizes, always
def test_matches_the_per_example_oracle(
    n_in: int, n_h: int, T: int, m: int, seed: int, scale: float
) -> None:
    W, b = _params(n_in, n_h, seed, scale=scale)
    X = normal(seed, n_in, T, m, scale=scale)
    dH = normal(seed + 3, n_h, T, m)
    H, cache = lstm_forward(X, W, b)
    assert _rel_err(H, lstm_forward_naive(X, W, b)) <= 1e-12
    grads = lstm_backward(dH, W, cache)
    dX, dW, db = lstm_backward_naive(X, W, b, dH)
    assert _rel_err(grads.dX, dX) <= 1e-12
    assert _rel_err(grads.dW, dW) <= 1e-12
    assert _rel_err(grads.db, db) <= 1e-12


@pytest.mark.spec("LSTM-BPTT-H", "LSTM-BPTT-C", "LSTM-DGATES", "LSTM-DW", "LSTM-DB", "LSTM-DX")
@given(n_in=sizes, n_h=sizes, T=steps, m=sizes, seed=seeds, a=st.floats(-3, 3))
@settings(max_examples=30)
def test_backward_is_linear_in_dH(n_in: int, n_h: int, T: int, m: int, seed: int, a: float) -> None:
    W, b = _params(n_in, n_h, seed)
    _, cache = lstm_forward(normal(seed, n_in, T, m), W, b)
    d1, d2 = normal(seed + 3, n_h, T, m), normal(seed + 4, n_h, T, m)
    g1, g2 = lstm_backward(d1, W, cache), lstm_backward(d2, W, cache)
    g12 = lstm_backward(a * d1 + d2, W, cache)
    for name in ("dX", "dW", "db"):
        combined = a * getattr(g1, name) + getattr(g2, name)
        np.testing.assert_allclose(getattr(g12, name), combined, rtol=1e-10, atol=1e-12)
    zero = lstm_backward(np.zeros_like(d1), W, cache)
    for name in ("dX", "dW", "db"):
        np.testing.assert_array_equal(getattr(zero, name), 0.0)


@pytest.mark.spec(
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)
@given(n_in=sizes, n_h=sizes, T=steps, m=sizes, seed=seeds)
@settings(max_examples=20)
def test_caller_arrays_are_unchanged(n_in: int, n_h: int, T: int, m: int, seed: int) -> None:
    layer = _layer(n_in, n_h, seed)
    X, dH = normal(seed, n_in, T, m), normal(seed + 3, n_h, T, m)
    X_before, dH_before = X.copy(), dH.copy()
    H = layer.forward(X)
    H_before = H.copy()
    H[...] = 7.0  # writing into the returned H must not change what backward uses
    dX = layer.backward(dH)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(dH, dH_before)
    layer.forward(X)
    np.testing.assert_array_equal(layer.backward(dH), dX)
    np.testing.assert_array_equal(layer.forward(X), H_before)


@pytest.mark.spec("LSTM-DGATES", "LSTM-DW", "LSTM-DB")
@given(n_in=sizes, n_h=sizes, m=sizes, seed=seeds)
@settings(max_examples=20)
def test_one_step_gradients_see_the_zero_initial_state(
    n_in: int, n_h: int, m: int, seed: int
) -> None:
    """T = 1: h_0 = 0 gives dW_h = 0, and c_0 = 0 gives the forget gate no gradient at all."""
    W, b = _params(n_in, n_h, seed)
    _, cache = lstm_forward(normal(seed, n_in, 1, m), W, b)
    grads = lstm_backward(normal(seed + 3, n_h, 1, m), W, cache)
    np.testing.assert_array_equal(grads.dW[:, n_in:], 0.0)
    np.testing.assert_array_equal(grads.dW[n_h : 2 * n_h], 0.0)
    np.testing.assert_array_equal(grads.db[n_h : 2 * n_h], 0.0)
    assert np.any(grads.db[:n_h] != 0.0) and np.any(grads.db[3 * n_h :] != 0.0)


# --- gradients: refnn.gradcheck (finite differences) ----------------------------------------


def _check(problem: Problem) -> None:
    """refnn.gradcheck on every input (X, W, b), as ``make check`` runs it; restores the layer."""
    try:
        result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    finally:
        problem.restore()
    assert [a.name for a in result.arrays] == ["X", "W", "b"]  # dX is checked, not only dW, db
    result.raise_if_failed()


@pytest.mark.spec(
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)
@pytest.mark.parametrize("case", cases_lstm.cases(), ids=lambda c: c.config)
def test_make_check_cases_pass_the_gradient_checker(case: Case) -> None:
    assert case.specs == cases_lstm.LSTM_IDS
    outcome = run_case(case)  # check_grad and the Taylor test, exactly as make check runs them
    assert outcome.passed, outcome.error or (outcome.result.format() if outcome.result else "")


def test_make_check_cases_cover_every_T_from_1_to_10() -> None:
    assert {T for _, _, T, _, _ in cases_lstm.CONFIGS} == set(range(1, 11))


@pytest.mark.spec(
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)
@given(n_in=st.integers(1, 3), n_h=st.integers(1, 3), T=steps, m=st.integers(1, 3), seed=seeds)
@settings(max_examples=10)
def test_random_configurations_pass_the_gradient_checker(
    n_in: int, n_h: int, T: int, m: int, seed: int
) -> None:
    _check(layer_problem(_layer(n_in, n_h, seed), normal(seed, n_in, T, m), seed=seed))


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
    model.layers[0].params["b"][...] = normal(1, 16, 1)
    save(model, tmp_path / "lstm.npz")
    loaded = load(tmp_path / "lstm.npz")
    assert isinstance(loaded.layers[0], LSTM)
    assert loaded.layers[0].config() == model.layers[0].config()
    X = normal(2, 3, 5, 2)
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))


@pytest.mark.spec(
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)
def test_float32_layer_computes_in_float32_and_agrees_with_float64() -> None:
    n_in, n_h, T, m = 3, 4, 6, 5
    l64 = _layer(n_in, n_h, 0)
    l32 = LSTM(n_in, n_h, rng=np.random.default_rng(0), dtype=np.float32)
    for key in ("W", "b"):
        l32.params[key][...] = l64.params[key]
    X, dH = normal(1, n_in, T, m), normal(2, n_h, T, m)
    H32 = l32.forward(X.astype(np.float32))
    dX32 = l32.backward(dH.astype(np.float32))
    assert H32.dtype == dX32.dtype == np.float32
    assert l32.grads["W"].dtype == l32.grads["b"].dtype == np.float32
    H64, dX64 = l64.forward(X), l64.backward(dH)
    assert _rel_err(H32, H64) < 1e-5 and _rel_err(dX32, dX64) < 1e-5
    assert _rel_err(l32.grads["W"], l64.grads["W"]) < 1e-5


@pytest.mark.spec(
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)
def test_extreme_inputs_stay_finite_and_warning_free() -> None:
    layer = _layer(2, 3, 0)
    X = np.array([1e4, -1e4, 300.0, -800.0])[None, :, None] * np.ones((2, 1, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        H = layer.forward(X)
        dX = layer.backward(np.ones_like(H))
    assert np.all(np.isfinite(H)) and np.all(np.abs(H) <= 1.0)
    assert np.all(np.isfinite(dX)) and np.all(np.isfinite(layer.grads["W"]))


def test_backward_twice_gives_the_same_gradients() -> None:
    layer = _layer(2, 3, 0)
    layer.forward(normal(0, 2, 4, 3))
    dH = normal(1, 3, 4, 3)
    dX = layer.backward(dH)
    W1 = layer.grads["W"].copy()
    np.testing.assert_array_equal(layer.backward(dH), dX)  # nothing accumulates
    np.testing.assert_array_equal(layer.grads["W"], W1)


def test_non_contiguous_and_integer_input_is_accepted() -> None:
    layer = _layer(2, 3, 0)
    X = normal(0, 4, 5, 3)
    expected = layer.forward(np.ascontiguousarray(X[::2]))
    np.testing.assert_array_equal(layer.forward(X[::2]), expected)
    Xi: FloatArray = np.arange(2 * 4 * 3).reshape(2, 4, 3) % 3  # type: ignore[assignment]
    # (integers are documented input: as_input converts them to the layer's dtype)
    np.testing.assert_array_equal(layer.forward(Xi), layer.forward(Xi.astype(np.float64)))


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
    with pytest.raises(TypeError, match="dtype must be float64 or float32"):
        LSTM(2, 3, rng=rng, dtype=np.int64)  # type: ignore[arg-type]
    layer = LSTM(2, 3, rng=rng)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((3, 4, 2)))
    layer.forward(np.ones((2, 4, 2)))
    with pytest.raises(ValueError, match=r"shape \(3, 4, 2\), got \(3, 2, 4\)"):
        layer.backward(np.ones((3, 2, 4)))
