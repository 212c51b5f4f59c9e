"""Vanilla RNN and GRU (RNN-*, GRU-*): naive oracles, hand computation, properties, bad input,
and make check's cases catching seeded wrong backwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import refnn.recurrent as rec
from refnn import GRU, RNN
from refnn.recurrent import gru_backward, gru_forward, rnn_backward, rnn_forward
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from refnn.verify.builders import example_objective
from refnn.verify.cases import component_cases
from refnn.verify.run import run_case
from tests.oracles.recurrent import RecurrentPoint, gru_naive, recurrent_points, rnn_naive

RNN_GRADS = ("dX", "dW", "db", "dh0")
GRU_GRADS = ("dX", "dW", "db_ih", "db_hh", "dh0")
RNN_ALL = ("RNN-STATE-INIT", "RNN-FWD", "RNN-BPTT", "RNN-DW", "RNN-DB", "RNN-DX", "RNN-DH0")
GRU_FWD = ("GRU-STATE-INIT", "GRU-GATES", "GRU-HIDDEN")
GRU_BWD = ("GRU-BPTT", "GRU-DW", "GRU-DB", "GRU-DX", "GRU-DH0")


def _normal(seed: int, *shape: int, scale: float = 1.0) -> FloatArray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def _point(seed: int, gates: int, n_in: int, n_h: int, T: int, m: int, scale: float = 1.0) -> Any:
    """A fixed generic point (for @example and the example-based tests)."""
    return RecurrentPoint(
        X=_normal(seed, n_in, T, m, scale=scale),
        W=_normal(seed + 1, gates * n_h, n_in + n_h, scale=scale / np.sqrt(n_in + n_h)),
        b=_normal(seed + 2, gates * n_h, 1, scale=0.5),
        b2=_normal(seed + 3, gates * n_h, 1, scale=0.5),
        h0=np.tanh(_normal(seed + 4, n_h, m)),
        dH=_normal(seed + 5, n_h, T, m),
    )


def _rel_err(actual: FloatArray, expected: FloatArray) -> float:
    """max |actual - expected| / max |expected| (norm-wise: insensitive to tiny entries)."""
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


def _sig(a: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-a))


def _rnn(p: RecurrentPoint, relu: bool = False, dtype: Any = np.float64) -> RNN:
    nl: rec.Nonlinearity = "relu" if relu else "tanh"
    rng = np.random.default_rng(0)
    layer = RNN(p.X.shape[0], p.W.shape[0], rng=rng, nonlinearity=nl, dtype=dtype)
    layer.params["W"][...], layer.params["b"][...] = p.W, p.b
    return layer


def _gru(p: RecurrentPoint, dtype: Any = np.float64) -> GRU:
    layer = GRU(p.X.shape[0], p.W.shape[0] // 3, rng=np.random.default_rng(0), dtype=dtype)
    layer.params["W"][...], layer.params["b_ih"][...], layer.params["b_hh"][...] = p.W, p.b, p.b2
    return layer


# --- oracles --------------------------------------------------------------------------------


@pytest.mark.spec(*RNN_ALL)
@given(p=recurrent_points(gates=1, max_size=5, max_steps=8), relu=st.booleans(), zero=st.booleans())
@settings(max_examples=40)
@example(p=_point(0, 1, 5, 5, 8, 4, scale=2.0), relu=False, zero=False)
@example(p=_point(1, 1, 5, 5, 8, 4, scale=2.0), relu=True, zero=False)
def test_rnn_matches_the_per_example_oracle(p: RecurrentPoint, relu: bool, zero: bool) -> None:
    nl: rec.Nonlinearity = "relu" if relu else "tanh"
    H, cache = rnn_forward(p.X, p.W, p.b, None if zero else p.h0, nonlinearity=nl)
    H_naive, grads_naive = rnn_naive(p, relu=relu, zero_state=zero)
    assert _rel_err(H, H_naive) <= 1e-12
    grads = rnn_backward(p.dH, p.W, cache)
    for name, got, want in zip(RNN_GRADS, grads, grads_naive, strict=True):
        assert _rel_err(got, want) <= 1e-12, name


@pytest.mark.spec(*GRU_FWD, *GRU_BWD)
@given(p=recurrent_points(gates=3, max_size=5, max_steps=8), zero=st.booleans())
@settings(max_examples=40)
@example(p=_point(0, 3, 5, 5, 8, 4, scale=2.0), zero=False)  # the largest sizes, always
def test_gru_matches_the_per_example_oracle(p: RecurrentPoint, zero: bool) -> None:
    H, cache = gru_forward(p.X, p.W, p.b, p.b2, None if zero else p.h0)
    H_naive, grads_naive = gru_naive(p, zero_state=zero)
    assert _rel_err(H, H_naive) <= 1e-12
    grads = gru_backward(p.dH, p.W, cache)
    for name, got, want in zip(GRU_GRADS, grads, grads_naive, strict=True):
        assert _rel_err(got, want) <= 1e-12, name


# --- by hand ----------------------------------------------------------------------------------


@pytest.mark.spec("GRU-STATE-INIT", "GRU-GATES", "GRU-HIDDEN", "GRU-BPTT", "GRU-DB", "GRU-DH0")
def test_gru_one_step_by_hand_with_the_reset_gate_on_the_hidden_bias() -> None:
    """n_in = n_h = m = 1, T = 1, at numbers chosen so each term is visible: the reset gate
    multiplies W_hn h0 + b_hn (torch's form), not W_hn h0 alone."""
    X = np.array([[[0.5]]])
    W = np.array([[0.2, -0.3], [0.4, 0.1], [-0.6, 0.7]])  # rows r, z, n; columns x, h
    b_ih, b_hh = np.array([[0.1], [-0.2], [0.3]]), np.array([[0.05], [0.15], [-0.4]])
    h0 = np.array([[0.8]])
    r = _sig(0.2 * 0.5 + 0.1 - 0.3 * 0.8 + 0.05)
    z = _sig(0.4 * 0.5 - 0.2 + 0.1 * 0.8 + 0.15)
    qn = 0.7 * 0.8 - 0.4
    n = np.tanh(-0.6 * 0.5 + 0.3 + r * qn)
    h = (1 - z) * n + z * 0.8
    H, cache = gru_forward(X, W, b_ih, b_hh, h0)
    assert H[0, 0, 0] == pytest.approx(h, rel=1e-14)
    dX, dW, db_ih, db_hh, dh0 = gru_backward(np.ones((1, 1, 1)), W, cache)
    dn_a = (1 - z) * (1 - n**2)
    assert db_ih[2, 0] == pytest.approx(dn_a, rel=1e-14)
    assert db_hh[2, 0] == pytest.approx(dn_a * r, rel=1e-14)  # b_hn sits inside r ⊙ (...)
    assert db_hh[0, 0] == pytest.approx(dn_a * qn * r * (1 - r), rel=1e-14)
    dz_a = (0.8 - n) * z * (1 - z)
    dr_a = dn_a * qn * r * (1 - r)
    assert dh0[0, 0] == pytest.approx(z + 0.7 * dn_a * r + 0.1 * dz_a - 0.3 * dr_a, rel=1e-13)
    assert dX[0, 0, 0] == pytest.approx(0.2 * dr_a + 0.4 * dz_a - 0.6 * dn_a, rel=1e-13)
    expected_dW = [[dr_a * 0.5, dr_a * 0.8], [dz_a * 0.5, dz_a * 0.8], [dn_a * 0.5, dn_a * r * 0.8]]
    np.testing.assert_allclose(dW, expected_dW, rtol=1e-13)


@pytest.mark.spec("RNN-FWD", "RNN-BPTT", "RNN-DW", "RNN-DB", "RNN-DX", "RNN-DH0")
@given(p=recurrent_points(gates=1, max_steps=1))
def test_rnn_one_step_by_hand(p: RecurrentPoint) -> None:
    n_in = p.X.shape[0]
    H, cache = rnn_forward(p.X, p.W, p.b, p.h0)
    a = p.W[:, :n_in] @ p.X[:, 0] + p.W[:, n_in:] @ p.h0 + p.b
    np.testing.assert_allclose(H[:, 0], np.tanh(a), rtol=1e-13, atol=1e-15)
    dX, dW, db, dh0 = rnn_backward(p.dH, p.W, cache)
    da = p.dH[:, 0] * (1 - np.tanh(a) ** 2)
    np.testing.assert_allclose(db, da.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dW, da @ np.vstack([p.X[:, 0], p.h0]).T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dX[:, 0], p.W[:, :n_in].T @ da, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dh0, p.W[:, n_in:].T @ da, rtol=1e-12, atol=1e-14)


# --- properties -------------------------------------------------------------------------------

Run = Callable[[RecurrentPoint, FloatArray, FloatArray | None], tuple[FloatArray, Any]]


def _run_rnn(p: RecurrentPoint, X: FloatArray, h0: FloatArray | None) -> tuple[FloatArray, Any]:
    return rnn_forward(X, p.W, p.b, h0)


def _run_gru(p: RecurrentPoint, X: FloatArray, h0: FloatArray | None) -> tuple[FloatArray, Any]:
    return gru_forward(X, p.W, p.b, p.b2, h0)


LAYERS: list[tuple[str, int, Run, Callable[..., Any]]] = [
    ("RNN", 1, _run_rnn, rnn_backward),
    ("GRU", 3, _run_gru, gru_backward),
]


@pytest.mark.spec("RNN-STATE-INIT", "RNN-FWD", "GRU-STATE-INIT", "GRU-GATES", "GRU-HIDDEN")
@pytest.mark.parametrize(("name", "gates", "run", "backward"), LAYERS, ids=[n for n, *_ in LAYERS])
@given(data=st.data())
@settings(max_examples=25)
def test_zero_state_is_the_default_the_carried_state_continues_and_the_past_ignores_the_future(
    name: str, gates: int, run: Run, backward: Callable[..., Any], data: st.DataObject
) -> None:
    p = data.draw(recurrent_points(gates=gates), label="p")
    whole, _ = run(p, p.X, p.h0)
    np.testing.assert_array_equal(run(p, p.X, np.zeros_like(p.h0))[0], run(p, p.X, None)[0])
    T = p.X.shape[1]
    t = data.draw(st.integers(0, T - 1), label="t")
    if t > 0:  # steps 1..t then t+1..T from the carried h_t equal one run (truncated BPTT)
        first, _ = run(p, p.X[:, :t], p.h0)
        second, _ = run(p, np.ascontiguousarray(p.X[:, t:]), first[:, -1].copy())
        np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-15)
    X2 = p.X.copy()
    X2[:, t:] = data.draw(arrays((p.X.shape[0], T - t, p.X.shape[2]), bound=2.0)) + 3.0
    np.testing.assert_array_equal(run(p, X2, p.h0)[0][:, :t], whole[:, :t])  # causal


@pytest.mark.spec("RNN-BPTT", "RNN-DW", "RNN-DB", "RNN-DX", "RNN-DH0")
@pytest.mark.spec("GRU-BPTT", "GRU-DW", "GRU-DB", "GRU-DX", "GRU-DH0")
@pytest.mark.parametrize(("name", "gates", "run", "backward"), LAYERS, ids=[n for n, *_ in LAYERS])
@given(data=st.data(), a=st.floats(-3, 3))
@settings(max_examples=25)
def test_backward_is_linear_in_dH_and_dX_is_anticausal(
    name: str, gates: int, run: Run, backward: Callable[..., Any], data: st.DataObject, a: float
) -> None:
    p = data.draw(recurrent_points(gates=gates), label="p")
    d2 = data.draw(arrays(p.dH.shape, bound=2.0), label="dH2")
    _, cache = run(p, p.X, p.h0)
    g1, g2 = backward(p.dH, p.W, cache), backward(d2, p.W, cache)
    for x1, x2, x12 in zip(g1, g2, backward(a * p.dH + d2, p.W, cache), strict=True):
        np.testing.assert_allclose(x12, a * x1 + x2, rtol=1e-10, atol=1e-12)
    T = p.dH.shape[1]
    t = data.draw(st.integers(1, T), label="t")
    dH3 = p.dH.copy()
    dH3[:, :t] = d2[:, :t]  # change dH before step t+1: dx_s for s > t is unchanged
    np.testing.assert_array_equal(backward(dH3, p.W, cache)[0][:, t:], g1[0][:, t:])


@pytest.mark.spec("GRU-GATES", "GRU-HIDDEN", "RNN-FWD")
@given(p=recurrent_points(gates=3, max_size=6, max_steps=10), scale=st.floats(0.1, 30.0))
@example(p=_point(2, 3, 6, 6, 10, 3, scale=30.0), scale=1.0)  # saturated gates
def test_gru_and_tanh_rnn_states_stay_in_the_unit_interval_and_relu_rnn_states_are_nonnegative(
    p: RecurrentPoint, scale: float
) -> None:
    """|h_t| <= 1 from |h_0| <= 1 (GRU-HIDDEN: a convex combination of n_t and h_{t-1})."""
    H, _ = gru_forward(scale * p.X, scale * p.W, scale * p.b, scale * p.b2, p.h0)
    assert np.all(np.abs(H) <= 1.0)
    W1, X = p.W[: p.h0.shape[0]], scale * p.X
    H_tanh, _ = rnn_forward(X, scale * W1, p.b[: p.h0.shape[0]], p.h0)
    assert np.all(np.abs(H_tanh) <= 1.0)
    H_relu, _ = rnn_forward(X, W1, p.b[: p.h0.shape[0]], p.h0, nonlinearity="relu")
    assert np.all(H_relu >= 0.0)


@pytest.mark.spec("GRU-GATES", "GRU-HIDDEN", "GRU-DW", "GRU-DX", "RNN-FWD", "RNN-DW", "RNN-DX")
@pytest.mark.parametrize("cls", ["RNN", "GRU"])
def test_float32_layers_compute_in_float32_and_agree_with_float64(cls: str) -> None:
    gates = 3 if cls == "GRU" else 1
    p = _point(4, gates, 3, 4, 6, 5)
    results = []
    for dtype in (np.float64, np.float32):
        layer = _gru(p, dtype) if cls == "GRU" else _rnn(p, dtype=dtype)
        H = layer.forward(p.X.astype(dtype), h0=p.h0.astype(dtype))
        dX = layer.backward(p.dH.astype(dtype))
        grads = [H, dX, layer.grads["W"], layer.input_grads["h0"]]
        assert all(g.dtype == dtype for g in grads)
        assert all(v.dtype == dtype for v in layer.params.values())
        results.append(grads)
    for g64, g32 in zip(*results, strict=True):
        assert _rel_err(g32.astype(np.float64), g64) <= 1e-5


@pytest.mark.spec("RNN-STATE-INIT", "GRU-STATE-INIT", "RNN-DH0", "GRU-DH0")
@pytest.mark.parametrize("cls", ["RNN", "GRU"])
def test_the_layer_reports_dh0_and_modifies_nothing_it_was_given(cls: str) -> None:
    gates = 3 if cls == "GRU" else 1
    p = _point(5, gates, 2, 3, 4, 2)
    layer = _gru(p) if cls == "GRU" else _rnn(p)
    given_ = [p.X.copy(), p.h0.copy(), p.dH.copy()]
    layer.forward(p.X, h0=p.h0)
    layer.backward(p.dH)
    for before, now in zip(given_, [p.X, p.h0, p.dH], strict=True):
        np.testing.assert_array_equal(before, now)
    run = _run_gru if cls == "GRU" else _run_rnn
    expected = (gru_backward if cls == "GRU" else rnn_backward)(p.dH, p.W, run(p, p.X, p.h0)[1])
    np.testing.assert_array_equal(layer.input_grads["h0"], expected[-1])
    layer.forward(p.X)  # no state given: dh0 is still reported, at the zero state
    layer.backward(p.dH)
    assert layer.input_grads["h0"].shape == p.h0.shape


@pytest.mark.spec("RNN-INIT", "GRU-INIT")
def test_initialisation_is_xavier_per_gate_with_zero_biases() -> None:
    n_in, n_h = 60, 40
    gru, rnn = (
        GRU(n_in, n_h, rng=np.random.default_rng(1)),
        RNN(n_in, n_h, rng=np.random.default_rng(1)),
    )
    std = np.sqrt(2.0 / (n_in + 2 * n_h))
    for W in (gru.params["W"], rnn.params["W"]):
        assert W.std() == pytest.approx(std, rel=0.05)
    assert not gru.params["b_ih"].any() and not gru.params["b_hh"].any()
    assert not rnn.params["b"].any()
    assert gru.params["b_ih"] is not gru.params["b_hh"]


# --- bad input ------------------------------------------------------------------------------

#: Any value, as a caller may pass it (the constructors' annotations do not stop them).
SIGMOID: Any = "sigmoid"
NONE: Any = None
HALF: Any = 2.5


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: RNN(2, 3, rng=np.random.default_rng(0), nonlinearity=SIGMOID),
            ValueError,
            r"nonlinearity must be 'tanh' or 'relu', got 'sigmoid'",
        ),
        (
            lambda: RNN(2, 3, rng=np.random.default_rng(0), nonlinearity=NONE),
            ValueError,
            r"nonlinearity must be 'tanh' or 'relu', got None",
        ),
        (lambda: GRU(0, 3, rng=np.random.default_rng(0)), ValueError, r"n_in must be an int >= 1"),
        (lambda: GRU(2, HALF, rng=np.random.default_rng(0)), TypeError, r"n_hidden must be an int"),
        (lambda: GRU(2, 3, rng=NONE), TypeError, r"rng must be a numpy.random.Generator"),
        (lambda: GRU(10**6, 10**6, rng=np.random.default_rng(0)), ValueError, r"GiB"),
    ],
)
def test_bad_constructor_arguments_are_refused_by_name(
    make: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("cls", [RNN, GRU])
def test_bad_inputs_are_refused_by_name(cls: type[RNN] | type[GRU]) -> None:
    layer = cls(2, 3, rng=np.random.default_rng(0))
    X = np.zeros((2, 4, 5))
    with pytest.raises(ValueError, match=r"X must have n_in = 2 on axis 0"):
        layer.forward(np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match=r"X must have 3 axes \(n_in x T x m"):
        layer.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"at least one time step"):
        layer.forward(np.zeros((2, 0, 5)))
    with pytest.raises(ValueError, match=r"h0 must have shape \(n_hidden, m\) = \(3, 5\)"):
        layer.forward(X, h0=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"h0 must have n_hidden = 3 on axis 0"):
        layer.forward(X, h0=np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"h0 must be finite"):
        layer.forward(X, h0=np.full((3, 5), np.nan))
    with pytest.raises(TypeError, match=r"unexpected inputs \['c0'\]"):
        layer.forward(X, c0=np.zeros((3, 5)))


# --- make check bites -------------------------------------------------------------------------


def _gru_b_hn_outside_the_reset_product(
    dH: FloatArray, W: FloatArray, cache: rec.GRUCache
) -> tuple[FloatArray, ...]:
    """The backward of n = tanh(W_in x + b_in + r ⊙ (W_hn h) + b_hn): the reset gate outside
    the product with b_hn (its gradient misses the factor r, dr misses b_hn)."""
    dX, dW, db_ih, db_hh, dh0 = gru_backward(dH, W, cache)
    n = cache.H.shape[1]
    db_hh = db_hh.copy()
    db_hh[2 * n :] = db_ih[2 * n :]
    return dX, dW, db_ih, db_hh, dh0


def _gru_no_carry(dH: FloatArray, W: FloatArray, cache: rec.GRUCache) -> tuple[FloatArray, ...]:
    """dh0 without the update gate's carry z_1 ⊙ dh_1 (only the path through W_hh)."""
    dX, dW, db_ih, db_hh, dh0 = gru_backward(dH, W, cache)
    dh1 = dH[:, 0, :] if dH.shape[1] == 1 else None
    if dh1 is not None:
        dh0 = dh0 - dh1 * cache.gates[0, cache.H.shape[1] : 2 * cache.H.shape[1]]
    return dX, dW, db_ih, db_hh, dh0


def _rnn_tanh_slope_from_a(
    dH: FloatArray, W: FloatArray, cache: rec.RNNCache
) -> tuple[FloatArray, ...]:
    """tanh's derivative taken as 1 - a² from a wrong cache: here 1 - h (a sign/square slip)."""
    bad = rec.RNNCache(X=cache.X, h0=cache.h0, H=np.sqrt(np.abs(cache.H)), nonlinearity="tanh")
    if cache.nonlinearity == "relu":
        return rnn_backward(dH, W, cache)
    return rnn_backward(dH, W, bad)


@pytest.mark.spec("GRU-BPTT", "GRU-DB", "GRU-DH0", "RNN-BPTT")
@pytest.mark.parametrize(
    ("component", "name", "mutant", "wrong", "cases_failing"),
    [
        ("GRU", "gru_backward", _gru_b_hn_outside_the_reset_product, "b_hh", "all"),
        ("GRU", "gru_backward", _gru_no_carry, "h0", "T=1 from h0"),
        ("RNN", "rnn_backward", _rnn_tanh_slope_from_a, "W", "tanh"),
    ],
    ids=["GRU reset gate outside the product", "GRU dh0 without the carry", "RNN tanh slope"],
)
def test_make_check_catches_a_seeded_wrong_backward(
    monkeypatch: pytest.MonkeyPatch,
    component: str,
    name: str,
    mutant: Callable[..., Any],
    wrong: str,
    cases_failing: str,
) -> None:
    """The class's own make-check cases (its examples()) reject the mutant, at the wrong input,
    in every case where the bug shows; the correct backward passes them all."""
    cases = [c for c in component_cases() if c.component.split()[0] == component]
    monkeypatch.setattr(rec, name, mutant)
    failed = []
    for case in cases:
        if cases_failing == "T=1 from h0" and not ("T=1" in case.config and "h0" in case.config):
            continue
        if cases_failing == "tanh" and "relu" in case.config:
            continue
        outcome = run_case(case)
        assert not outcome.passed, f"{case.component} [{case.config}] accepted the mutant"
        assert outcome.result is not None
        verdicts = {a.name: a.verdict for a in outcome.result.arrays}
        assert verdicts[wrong] == "WRONG", outcome.result.format()
        failed.append(case)
    assert failed
    monkeypatch.undo()
    for case in failed:
        assert run_case(case).passed


@pytest.mark.spec("RNN-FWD", "RNN-BPTT")
def test_every_relu_make_check_case_has_units_on() -> None:
    """A relu case whose units are all off checks only zeros: each case's gradients are not all
    zero (seed 0 of the T=5 case had every unit off, and checked nothing)."""
    for case in RNN.examples():
        if case.kwargs.get("nonlinearity") == "relu":
            objective = example_objective(RNN, case)
            grads = objective.grad(*objective.inputs.values())
            assert all(np.abs(g).max() > 0 for g in grads), case.label
