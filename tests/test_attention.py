"""Attention (ATTN-*, MHA-*, POSENC-*): naive-loop oracles to 1e-12, hand values, shrinking
hypothesis properties, dropout reproduced from a given keep-mask, bad input refused by name, and
make check's cases biting on seeded wrong backwards."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnn.attention as attn
from refnn import MultiHeadAttention, PositionalEncoding, ScaledDotProductAttention, Sequential
from refnn.attention import (
    attention_backward,
    causal_mask,
    mha_params_from_torch,
    mha_params_to_torch,
    positional_encoding,
    scaled_dot_product_attention,
)
from refnn.gradcheck import check_grad
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from refnn.verify.cases import component_cases
from refnn.verify.run import run_case
from tests.oracles.attention import (
    MHAPoint,
    mha_loop,
    positional_encoding_loop,
    sdpa_backward_loop,
    sdpa_loop,
)

TOL = 1e-12


def _normal(seed: int, *shape: int, scale: float = 1.0) -> FloatArray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def _rel(actual: FloatArray, expected: FloatArray) -> float:
    """max |actual - expected| / max(1, max |expected|)."""
    return float(np.max(np.abs(actual - expected), initial=0.0)) / max(
        1.0, float(np.max(np.abs(expected), initial=0.0))
    )


@st.composite
def problems(draw: st.DrawFn, *, max_len: int = 4) -> dict[str, Any]:
    """Q (d x T x m), K (d x S x m), V (d_v x S x m), dO, a mask (T, S) or (T, S, m) or None,
    causal or not: sizes shrink to 1, entries to 0, the mask to all-True."""
    d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    T, S, m = draw(st.integers(1, max_len)), draw(st.integers(1, max_len)), draw(st.integers(1, 3))
    shape = draw(st.sampled_from([None, (T, S), (T, S, m)]))
    mask = None
    if shape is not None:
        mask = np.asarray(
            draw(st.lists(st.booleans(), min_size=math.prod(shape), max_size=math.prod(shape)))
        )
        mask = ~mask.reshape(shape)  # shrinks to all True (every key allowed)
    return {
        "Q": draw(arrays((d, T, m), bound=2.0)),
        "K": draw(arrays((d, S, m), bound=2.0)),
        "V": draw(arrays((dv, S, m), bound=2.0)),
        "dO": draw(arrays((dv, T, m), bound=2.0)),
        "mask": mask,
        "causal": draw(st.booleans()),
    }


def _layer_for(pr: dict[str, Any], **kw: Any) -> ScaledDotProductAttention:
    return ScaledDotProductAttention(pr["Q"].shape[0], pr["V"].shape[0], causal=pr["causal"], **kw)


# --- the oracle ---------------------------------------------------------------------------


@pytest.mark.spec(
    "ATTN-SCORES",
    "ATTN-MASK",
    "ATTN-SOFTMAX",
    "ATTN-EMPTY-ROW",
    "ATTN-OUT",
    "ATTN-DV",
    "ATTN-DSCORES",
    "ATTN-DQ",
    "ATTN-DK",
)
@given(pr=problems())
@settings(max_examples=30)
def test_the_layer_matches_the_naive_loops_forward_and_backward(pr: dict[str, Any]) -> None:
    layer = _layer_for(pr)
    Y = layer.forward(pr["Q"], K=pr["K"], V=pr["V"], mask=pr["mask"])
    Y_ref, P_ref = sdpa_loop(pr["Q"], pr["K"], pr["V"], mask=pr["mask"], causal=pr["causal"])
    assert _rel(Y, Y_ref) < TOL
    dQ = layer.backward(pr["dO"])
    refs = sdpa_backward_loop(pr["dO"], pr["Q"], pr["K"], pr["V"], P_ref)
    for got, ref in zip((dQ, layer.input_grads["K"], layer.input_grads["V"]), refs, strict=True):
        assert _rel(got, ref) < TOL
    Y_fn, P = scaled_dot_product_attention(
        pr["Q"], pr["K"], pr["V"], pr["mask"], causal=pr["causal"]
    )
    assert _rel(Y_fn, Y_ref) < TOL and _rel(P, P_ref) < TOL


@pytest.mark.spec("ATTN-DROPOUT", "ATTN-OUT", "ATTN-DV", "ATTN-DSCORES")
@given(pr=problems(), p=st.sampled_from([0.1, 0.5, 0.9]), data=st.data())
@settings(max_examples=25)
def test_dropout_with_a_given_keep_mask_matches_the_loops(
    pr: dict[str, Any], p: float, data: st.DataObject
) -> None:
    T, S, m = pr["Q"].shape[1], pr["K"].shape[1], pr["Q"].shape[2]
    keep = ~data.draw(arrays((T, S, m), bound=1.0)).astype(bool)  # nonzero -> dropped
    layer = _layer_for(pr, dropout=p, rng=np.random.default_rng(0))
    layer.freeze_mask(keep)
    Y = layer.forward(pr["Q"], K=pr["K"], V=pr["V"], mask=pr["mask"])
    Y_ref, P_ref = sdpa_loop(
        pr["Q"], pr["K"], pr["V"], mask=pr["mask"], causal=pr["causal"], keep=keep, p=p
    )
    assert _rel(Y, Y_ref) < TOL
    dQ = layer.backward(pr["dO"])
    refs = sdpa_backward_loop(pr["dO"], pr["Q"], pr["K"], pr["V"], P_ref, keep=keep, p=p)
    for got, ref in zip((dQ, layer.input_grads["K"], layer.input_grads["V"]), refs, strict=True):
        assert _rel(got, ref) < TOL
    # inference: no dropout, the same as a layer without it
    plain = _layer_for(pr).forward(pr["Q"], K=pr["K"], V=pr["V"], mask=pr["mask"])
    infer = layer.forward(pr["Q"], training=False, K=pr["K"], V=pr["V"], mask=pr["mask"])
    np.testing.assert_array_equal(infer, plain)


@pytest.mark.spec("ATTN-SELF", "ATTN-DQ", "ATTN-DK", "ATTN-DV")
@given(pr=problems())
@settings(max_examples=25)
def test_self_attention_is_attention_over_x_with_the_three_gradients_summed(
    pr: dict[str, Any],
) -> None:
    X = pr["Q"]
    layer = ScaledDotProductAttention(X.shape[0], causal=pr["causal"])
    T = X.shape[1]
    mask = None if pr["mask"] is None or pr["mask"].shape[1] != T else pr["mask"]
    Y = layer.forward(X, mask=mask)
    Y_ref, P_ref = sdpa_loop(X, X, X, mask=mask, causal=pr["causal"])
    assert _rel(Y, Y_ref) < TOL
    dY = np.ones_like(Y)
    dX = layer.backward(dY)
    dq, dk, dv = sdpa_backward_loop(dY, X, X, X, P_ref)
    assert _rel(dX, dq + dk + dv) < TOL and layer.input_grads == {}


@pytest.mark.spec("ATTN-SCORES", "ATTN-SOFTMAX", "ATTN-OUT")
def test_hand_computed_two_keys() -> None:
    """d = 1, one query q = 1, keys 0 and 2, values 10 and 20: E = (0, 2/1) ... by hand."""
    Q, K, V = np.array([[[1.0]]]), np.array([[[0.0], [2.0]]]), np.array([[[10.0], [20.0]]])
    Y, P = scaled_dot_product_attention(Q, K, V)
    w = math.exp(2.0) / (1.0 + math.exp(2.0))
    np.testing.assert_allclose(P[0, :, 0], [1 - w, w], rtol=1e-15)
    np.testing.assert_allclose(Y[0, 0, 0], 10 * (1 - w) + 20 * w, rtol=1e-15)
    O2, _ = scaled_dot_product_attention(Q, K, V, scale=0.5)  # E = (0, 1)
    w2 = math.exp(1.0) / (1.0 + math.exp(1.0))
    np.testing.assert_allclose(O2[0, 0, 0], 10 * (1 - w2) + 20 * w2, rtol=1e-15)


# --- properties -----------------------------------------------------------------------------


@pytest.mark.spec("ATTN-SOFTMAX", "ATTN-MASK", "ATTN-EMPTY-ROW")
@given(pr=problems(max_len=6))
def test_rows_sum_to_one_and_masked_keys_get_exactly_zero_weight(pr: dict[str, Any]) -> None:
    _, P = scaled_dot_product_attention(pr["Q"], pr["K"], pr["V"], pr["mask"], causal=pr["causal"])
    T, S, m = P.shape
    allowed = np.ones((T, S, m), bool)
    if pr["mask"] is not None:
        allowed &= pr["mask"] if pr["mask"].ndim == 3 else pr["mask"][:, :, None]
    if pr["causal"]:
        allowed &= causal_mask(T, S)[:, :, None]
    assert np.all(P[~allowed] == 0.0) and np.all(P >= 0.0)
    sums = P.sum(axis=1)
    some = allowed.any(axis=1)
    np.testing.assert_allclose(sums[some], 1.0, rtol=0, atol=1e-14)
    assert np.all(sums[~some] == 0.0)  # ATTN-EMPTY-ROW: defined as 0, never NaN


@pytest.mark.spec("ATTN-MASK", "ATTN-DK", "ATTN-DV", "ATTN-EMPTY-ROW")
@given(pr=problems(max_len=5))
def test_masked_keys_get_zero_gradient_and_empty_rows_pass_none(pr: dict[str, Any]) -> None:
    layer = _layer_for(pr)
    Y = layer.forward(pr["Q"], K=pr["K"], V=pr["V"], mask=pr["mask"])
    dQ = layer.backward(pr["dO"])
    T, S, m = Y.shape[1], pr["K"].shape[1], Y.shape[2]
    allowed = np.ones((T, S, m), bool)
    if pr["mask"] is not None:
        allowed &= pr["mask"] if pr["mask"].ndim == 3 else pr["mask"][:, :, None]
    if pr["causal"]:
        allowed &= causal_mask(T, S)[:, :, None]
    unseen = ~allowed.any(axis=0)  # (S, m): keys no query may attend to
    assert np.all(layer.input_grads["K"][:, unseen] == 0.0)
    assert np.all(layer.input_grads["V"][:, unseen] == 0.0)
    empty = ~allowed.any(axis=1)  # (T, m): queries with no key
    assert np.all(Y[:, empty] == 0.0) and np.all(dQ[:, empty] == 0.0)
    assert np.isfinite(Y).all() and np.isfinite(dQ).all()


@pytest.mark.spec("ATTN-SOFTMAX", "ATTN-OUT", "ATTN-DK", "ATTN-DV")
@given(pr=problems(max_len=5), data=st.data())
def test_permuting_keys_and_values_together_permutes_their_gradients_only(
    pr: dict[str, Any], data: st.DataObject
) -> None:
    """Attention is a set operation over the keys: Y is unchanged, dK and dV permute."""
    S = pr["K"].shape[1]
    perm = np.array(data.draw(st.permutations(list(range(S)))))
    mask = pr["mask"]
    pmask = None if mask is None else mask[:, perm]
    a = ScaledDotProductAttention(pr["Q"].shape[0], pr["V"].shape[0])
    b = ScaledDotProductAttention(pr["Q"].shape[0], pr["V"].shape[0])
    Oa = a.forward(pr["Q"], K=pr["K"], V=pr["V"], mask=mask)
    Ob = b.forward(pr["Q"], K=pr["K"][:, perm], V=pr["V"][:, perm], mask=pmask)
    np.testing.assert_allclose(Ob, Oa, rtol=0, atol=1e-13)
    a.backward(pr["dO"])
    b.backward(pr["dO"])
    for key in ("K", "V"):
        np.testing.assert_allclose(b.input_grads[key], a.input_grads[key][:, perm], atol=1e-13)


@pytest.mark.spec("ATTN-DQ", "ATTN-DK", "ATTN-DV", "ATTN-EMPTY-ROW")
@given(pr=problems(max_len=3))
@settings(max_examples=10)
def test_finite_differences_with_drawn_masks(pr: dict[str, Any]) -> None:
    """The drawn masks (empty rows included) through the gradient checker."""
    layer = _layer_for(pr)
    U = pr["dO"]

    def f(Q: FloatArray, K: FloatArray, V: FloatArray) -> float:
        return float(np.sum(U * layer.forward(Q, K=K, V=V, mask=pr["mask"])))

    def grad(Q: FloatArray, K: FloatArray, V: FloatArray) -> list[FloatArray]:
        layer.forward(Q, K=K, V=V, mask=pr["mask"])
        dQ = layer.backward(U)
        return [dQ, layer.input_grads["K"], layer.input_grads["V"]]

    result = check_grad(f, grad, {"Q": pr["Q"], "K": pr["K"], "V": pr["V"]})
    assert result.passed, result


# --- dropout ---------------------------------------------------------------------------------


@pytest.mark.spec("ATTN-DROPOUT")
def test_dropout_draws_from_the_layers_generator_and_a_frozen_mask_reproduces_it() -> None:
    Q = _normal(0, 3, 5, 4)
    a = ScaledDotProductAttention(3, dropout=0.4, rng=np.random.default_rng(7))
    Ya = a.forward(Q)
    keep = a.keep_mask
    assert keep is not None and keep.shape == (5, 5, 4)
    assert 0 < keep.mean() < 1
    b = ScaledDotProductAttention(3, dropout=0.4, rng=np.random.default_rng(99))
    b.freeze_mask(keep)
    np.testing.assert_array_equal(b.forward(Q), Ya)  # the same mask: bit-identical
    c = ScaledDotProductAttention(3, dropout=0.4, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(c.forward(Q), Ya)  # the same generator: the same draw
    assert not np.array_equal(a.forward(Q), Ya)  # the next forward draws a new mask
    b.unfreeze_mask()
    assert not np.array_equal(b.forward(Q), Ya)


@pytest.mark.spec("ATTN-DROPOUT", "MHA-HEADS")
def test_mha_dropout_keep_mask_is_per_head() -> None:
    layer = MultiHeadAttention(4, 2, dropout=0.5, rng=np.random.default_rng(1))
    X = _normal(2, 4, 3, 2)
    layer.forward(X)
    keep = layer.keep_mask
    assert keep is not None and keep.shape == (2, 3, 3, 2)
    layer.freeze_mask(np.ones((2, 3, 3, 2), bool))
    Y_all = layer.forward(X)
    ref = mha_loop(_point(layer, X))
    np.testing.assert_allclose(
        Y_all, mha_loop(_point(layer, X), keep=np.ones((2, 3, 3, 2), bool), p=0.5), atol=1e-12
    )
    assert not np.allclose(Y_all, ref)  # every weight kept is still scaled by 1/(1 - p)


# --- multi-head attention --------------------------------------------------------------------


def _point(
    layer: MultiHeadAttention,
    X: FloatArray,
    K: FloatArray | None = None,
    V: FloatArray | None = None,
) -> MHAPoint:
    p = layer.params
    return MHAPoint(
        p["W_in"],
        p["b_in"],
        p["W_out"],
        p["b_out"],
        X,
        X if K is None else K,
        X if V is None else V,
        layer.num_heads,
    )


@st.composite
def mha_problems(draw: st.DrawFn) -> dict[str, Any]:
    h, dh = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    E = h * dh
    T, S, m = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    return {
        "h": h,
        "W_in": draw(arrays((3 * E, E), bound=1.0)),
        "b_in": draw(arrays((3 * E, 1), bound=1.0)),
        "W_out": draw(arrays((E, E), bound=1.0)),
        "b_out": draw(arrays((E, 1), bound=1.0)),
        "X": draw(arrays((E, T, m), bound=2.0)),
        "K": draw(arrays((E, S, m), bound=2.0)),
        "V": draw(arrays((E, S, m), bound=2.0)),
        "causal": draw(st.booleans()),
        "self": draw(st.booleans()),
    }


@pytest.mark.spec("MHA-PROJ", "MHA-HEADS", "MHA-OUT", "ATTN-MASK", "MHA-TORCH")
@given(pr=mha_problems())
@settings(max_examples=25)
def test_multi_head_attention_matches_the_naive_loops(pr: dict[str, Any]) -> None:
    E = pr["X"].shape[0]
    layer = MultiHeadAttention(E, pr["h"], causal=pr["causal"], rng=np.random.default_rng(0))
    for key in ("W_in", "b_in", "W_out", "b_out"):
        layer.params[key][...] = pr[key]
    inputs = {} if pr["self"] else {"K": pr["K"], "V": pr["V"]}
    Y = layer.forward(pr["X"], **inputs)
    ref = mha_loop(_point(layer, pr["X"], inputs.get("K"), inputs.get("V")), causal=pr["causal"])
    assert _rel(Y, ref) < TOL


@pytest.mark.spec("MHA-DOUT", "MHA-DPROJ", "ATTN-SELF")
@given(pr=mha_problems())
@settings(max_examples=10)
def test_multi_head_gradients_by_finite_differences(pr: dict[str, Any]) -> None:
    E = pr["X"].shape[0]
    layer = MultiHeadAttention(E, pr["h"], causal=pr["causal"], rng=np.random.default_rng(0))
    keys = ("W_in", "b_in", "W_out", "b_out")
    U = _normal(3, *pr["X"].shape)
    names = ("X", "K", "V") if not pr["self"] else ("X",)

    def run(args: tuple[FloatArray, ...]) -> FloatArray:
        for key, value in zip(keys, args[:4], strict=True):
            layer.params[key][...] = value
        extra: dict[str, Any] = dict(zip(names[1:], args[5:], strict=True))
        return layer.forward(args[4], **extra)

    def f(*args: FloatArray) -> float:
        return float(np.sum(U * run(args)))

    def grad(*args: FloatArray) -> list[FloatArray]:
        run(args)
        dX = layer.backward(U)
        return [*(layer.grads[k] for k in keys), dX, *(layer.input_grads[n] for n in names[1:])]

    inputs = {k: pr[k] for k in (*keys, *names)}
    assert check_grad(f, grad, inputs).passed


@pytest.mark.spec("MHA-TORCH")
def test_the_torch_mapping_round_trips_and_names_pytorchs_keys() -> None:
    layer = MultiHeadAttention(6, 3, rng=np.random.default_rng(0))
    state = mha_params_to_torch(layer.params)
    assert state["in_proj_weight"].shape == (18, 6) and state["in_proj_bias"].shape == (18,)
    back = mha_params_from_torch(
        state["in_proj_weight"],
        state["in_proj_bias"],
        state["out_proj.weight"],
        state["out_proj.bias"],
    )
    for key, value in layer.params.items():
        np.testing.assert_array_equal(back[key], value)
        assert back[key] is not value


@pytest.mark.spec("MHA-INIT")
def test_initialisation_bounds_and_zero_biases() -> None:
    E = 8
    layer = MultiHeadAttention(E, 2, rng=np.random.default_rng(0))
    a = math.sqrt(6.0 / (4 * E))
    W_in, W_out = layer.params["W_in"], layer.params["W_out"]
    assert np.abs(W_in).max() <= a and np.abs(W_in).max() > 0.9 * a
    assert np.abs(W_out).max() <= 1 / math.sqrt(E) and np.abs(W_out).max() > 0.8 / math.sqrt(E)
    assert not layer.params["b_in"].any() and not layer.params["b_out"].any()
    again = MultiHeadAttention(E, 2, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again.params["W_in"], W_in)


@pytest.mark.spec("MHA-HEADS", "MHA-DPROJ")
def test_the_key_bias_gets_exactly_no_gradient() -> None:
    """b_k adds q·b_k to every score of a query's row: the softmax cancels it, so db_k = 0
    (make check reports a relative error of 1 on b_in for this reason: 0 against ~1e-11)."""
    layer = MultiHeadAttention(4, 2, rng=np.random.default_rng(0))
    layer.forward(_normal(1, 4, 3, 2))
    layer.backward(_normal(2, 4, 3, 2))
    db = layer.grads["b_in"]
    np.testing.assert_allclose(db[4:8], 0.0, atol=1e-15)
    assert np.abs(db[:4]).max() > 1e-3 and np.abs(db[8:]).max() > 1e-3


# --- positional encoding ---------------------------------------------------------------------


@pytest.mark.spec("POSENC-FWD")
@given(E=st.integers(1, 9), T=st.integers(1, 12))
def test_positional_encoding_matches_the_loop(E: int, T: int) -> None:
    assert _rel(positional_encoding(E, T), positional_encoding_loop(E, T)) < TOL


@pytest.mark.spec("POSENC-FWD")
def test_positional_encoding_by_hand_interleaved() -> None:
    PE = positional_encoding(4, 3)
    np.testing.assert_array_equal(PE[:, 0], [0.0, 1.0, 0.0, 1.0])  # sin 0, cos 0, ...
    np.testing.assert_allclose(
        PE[:, 1], [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)], rtol=1e-15
    )
    assert positional_encoding(4, 3, np.float32).dtype == np.float32


@pytest.mark.spec("POSENC-FWD", "POSENC-BWD")
@given(X=arrays((3, 4, 2)), dY=arrays((3, 4, 2)))
@settings(max_examples=20)
def test_the_layer_adds_the_encoding_and_passes_the_gradient(X: FloatArray, dY: FloatArray) -> None:
    layer = PositionalEncoding(3)
    short = layer.forward(X[:, :2])  # a shorter sequence first: the table grows, then slices
    np.testing.assert_array_equal(short, X[:, :2] + positional_encoding(3, 2)[:, :, None])
    np.testing.assert_array_equal(layer.forward(X), X + positional_encoding(3, 4)[:, :, None])
    dX = layer.backward(dY)
    np.testing.assert_array_equal(dX, dY)
    assert dX is not dY


# --- bad input -------------------------------------------------------------------------------


def _any(value: object) -> Any:
    """A value of the wrong type, past mypy (the runtime must refuse it)."""
    return value


def _sdpa() -> ScaledDotProductAttention:
    return ScaledDotProductAttention(2)


BAD: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    (
        "heads",
        lambda: MultiHeadAttention(6, 4, rng=np.random.default_rng(0)),
        ValueError,
        r"num_heads must divide embed_dim.*6.*4",
    ),
    (
        "float mask",
        lambda: _sdpa().forward(np.ones((2, 3, 1)), mask=np.ones((3, 3))),
        TypeError,
        r"mask must be a numpy bool array .*got dtype float64",
    ),
    (
        "mask shape",
        lambda: _sdpa().forward(np.ones((2, 3, 1)), mask=np.ones((3, 2), bool)),
        ValueError,
        r"mask must be .*\(3, 3\).*got shape \(3, 2\)",
    ),
    (
        "mask list",
        lambda: _sdpa().forward(np.ones((2, 3, 1)), mask=_any([[True]])),
        TypeError,
        r"mask must be .*got list",
    ),
    (
        "K only",
        lambda: _sdpa().forward(np.ones((2, 3, 1)), K=np.ones((2, 3, 1))),
        ValueError,
        r"give both K and V",
    ),
    (
        "S differs",
        lambda: _sdpa().forward(np.ones((2, 3, 1)), K=np.ones((2, 3, 1)), V=np.ones((2, 4, 1))),
        ValueError,
        r"same number of keys S",
    ),
    (
        "K's d",
        lambda: _sdpa().forward(np.ones((2, 3, 1)), K=np.ones((3, 3, 1)), V=np.ones((2, 3, 1))),
        ValueError,
        r"K must have d = 2",
    ),
    (
        "K's m",
        lambda: _sdpa().forward(np.ones((2, 3, 1)), K=np.ones((2, 3, 2)), V=np.ones((2, 3, 2))),
        ValueError,
        r"K must have shape .*m = 1",
    ),
    (
        "unknown input",
        lambda: _sdpa().forward(np.ones((2, 3, 1)), Q=np.ones((2, 3, 1))),
        TypeError,
        r"unexpected inputs \['Q'\]",
    ),
    (
        "dropout without rng",
        lambda: ScaledDotProductAttention(2, dropout=0.1),
        ValueError,
        r"draws its keep-masks from rng",
    ),
    (
        "dropout 1",
        lambda: ScaledDotProductAttention(2, dropout=1.0),
        ValueError,
        r"dropout must be in",
    ),
    (
        "keep dtype",
        lambda: _sdpa().freeze_mask(_any(np.ones((3, 3, 1)))),
        TypeError,
        r"keep must be a numpy bool array",
    ),
    (
        "keep heads",
        lambda: MultiHeadAttention(4, 2, rng=np.random.default_rng(0)).freeze_mask(
            np.ones((3, 3, 3, 1), bool)
        ),
        ValueError,
        r"keep must have shape \(h x T x S x m\)",
    ),
    (
        "self d_v",
        lambda: ScaledDotProductAttention(2, 3).forward(np.ones((2, 3, 1))),
        ValueError,
        r"self-attention .* needs d_v = d",
    ),
    (
        "no positions",
        lambda: PositionalEncoding(2).forward(np.ones((2, 0, 1))),
        ValueError,
        r"at least one position",
    ),
    (
        "causal str",
        lambda: ScaledDotProductAttention(2, causal=_any("yes")),
        TypeError,
        r"causal must be True or False",
    ),
]


@pytest.mark.spec("ATTN-MASK", "ATTN-DROPOUT")
@pytest.mark.parametrize(("label", "call", "error", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_by_name(
    label: str, call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_a_frozen_mask_of_another_shape_is_refused_at_forward() -> None:
    layer = ScaledDotProductAttention(2, dropout=0.5, rng=np.random.default_rng(0))
    layer.freeze_mask(np.ones((2, 2, 1), bool))
    with pytest.raises(ValueError, match=r"frozen keep-mask has shape \(2, 2, 1\).*\(3, 3, 1\)"):
        layer.forward(np.ones((2, 3, 1)))


@pytest.mark.spec("ATTN-MASK")
def test_nothing_the_caller_passes_is_modified() -> None:
    X, K, V = _normal(0, 4, 3, 2), _normal(1, 4, 5, 2), _normal(2, 4, 5, 2)
    mask = np.random.default_rng(3).random((3, 5, 2)) < 0.7
    keep = np.random.default_rng(4).random((2, 3, 5, 2)) < 0.7
    before = [a.copy() for a in (X, K, V, mask, keep)]
    layer = MultiHeadAttention(4, 2, causal=True, dropout=0.3, rng=np.random.default_rng(0))
    layer.freeze_mask(keep)
    Y = layer.forward(X, K=K, V=V, mask=mask)
    dY = np.ones_like(Y)
    layer.backward(dY)
    for a, b in zip((X, K, V, mask, keep), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.all(dY == 1.0)


@pytest.mark.spec("ATTN-OUT", "MHA-OUT")
def test_float32_end_to_end_close_to_float64() -> None:
    X = _normal(0, 8, 6, 3)
    a = MultiHeadAttention(8, 2, rng=np.random.default_rng(0))
    b = MultiHeadAttention(8, 2, rng=np.random.default_rng(0), dtype=np.float32)
    Ya, Yb = a.forward(X), b.forward(X.astype(np.float32))
    assert Yb.dtype == np.float32 and _rel(Yb.astype(np.float64), Ya) < 1e-5
    dX = b.backward(np.ones_like(Yb))
    assert dX.dtype == np.float32 and all(g.dtype == np.float32 for g in b.grads.values())


@pytest.mark.spec("ATTN-SELF")
def test_in_a_sequential_model_self_attention_and_encoding() -> None:
    rng = np.random.default_rng(0)
    model = Sequential([PositionalEncoding(4), MultiHeadAttention(4, 2, causal=True, rng=rng)])
    X = _normal(1, 4, 5, 3)
    Y = model.forward(X)
    # causal: the first position's output depends on the first position only
    X2 = X.copy()
    X2[:, 1:] += 1.0
    np.testing.assert_allclose(model.forward(X2)[:, 0], Y[:, 0], rtol=0, atol=1e-14)


# --- make check bites -------------------------------------------------------------------------


def _wrong_scale(do: Any, q: Any, k: Any, v: Any, P: Any, scale: float, D: Any = None) -> Any:
    return attention_backward(do, q, k, v, P, scale * scale, D)  # 1/d instead of 1/sqrt(d)


def _no_rowsum(do: Any, q: Any, k: Any, v: Any, P: Any, scale: float, D: Any = None) -> Any:
    dv = attention_backward(do, q, k, v, P, scale, D)[2]
    dP = do @ np.swapaxes(v, -1, -2) * (1.0 if D is None else D)
    dE = P * dP * scale  # the softmax's diagonal only: the Σ P dP term forgotten
    return dE @ k, np.swapaxes(dE, -1, -2) @ q, dv


def _no_dropout_in_backward(
    do: Any, q: Any, k: Any, v: Any, P: Any, scale: float, D: Any = None
) -> Any:
    dq, dk, _ = attention_backward(do, q, k, v, P, scale, D)
    _, _, dv = attention_backward(do, q, k, v, P, scale, None)  # dV without the keep-mask
    return dq, dk, dv


MUTANTS = {
    "scale 1/d": _wrong_scale,
    "softmax diagonal only": _no_rowsum,
    "dV ignores dropout": _no_dropout_in_backward,
}


@pytest.mark.spec("ATTN-DQ", "ATTN-DSCORES", "ATTN-DV")
@pytest.mark.parametrize("name", list(MUTANTS))
def test_make_checks_cases_reject_a_seeded_wrong_backward(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [c for c in component_cases() if c.component == "ScaledDotProductAttention"]
    assert all(run_case(c).passed for c in cases)
    monkeypatch.setattr(attn, "attention_backward", MUTANTS[name])
    failed = [c.config for c in cases if not run_case(c).passed]
    if name == "dV ignores dropout":
        assert failed == ["dropout=0.3 frozen mask T=4 m=3"]
    else:
        assert len(failed) == len(cases), failed


@pytest.mark.spec("MHA-DPROJ", "MHA-HEADS")
def test_make_check_rejects_heads_merged_along_the_wrong_axis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def wrong_merge(a: FloatArray) -> FloatArray:
        m, h, L, dh = a.shape  # features ordered (d_h, h) instead of (h, d_h)
        return np.ascontiguousarray(a.transpose(3, 1, 2, 0)).reshape(h * dh, L * m)

    cases = [c for c in component_cases() if c.component == "MultiHeadAttention"]
    monkeypatch.setattr(attn, "_merge", wrong_merge)
    failed = [c.config for c in cases if not run_case(c).passed]
    assert len(failed) >= len(cases) - 1, failed  # E=3 h=1: one head, the two orders agree
