"""Embedding (EMBED-*): the loop oracle, scatter-add of repeated indices, properties, bad input
refused by name, and make check's cases catching an overwriting backward."""

from __future__ import annotations

from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnn.embedding as emb
from refnn import (
    GRU,
    Adam,
    Embedding,
    Sequential,
    TemporalDense,
    TemporalSoftmaxCrossEntropy,
    fit,
)
from refnn.gradcheck import check_grad
from refnn.testing.strategies import arrays, sizes
from refnn.types import FloatArray
from refnn.verify.cases import component_cases
from refnn.verify.problems import model_problem
from refnn.verify.run import run_case
from tests.oracles.embedding import embedding_naive

ALL = ("EMBED-FWD", "EMBED-DW", "EMBED-DX")


@st.composite
def lookups(draw: st.DrawFn) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray]:
    """(X, W, dY): X of 1 to 3 axes over few tokens (indices repeat), W (d, V), dY (d, *X)."""
    V, d = draw(sizes(4), label="V"), draw(sizes(4), label="d")
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
    X = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, V - 1)), label="X")
    W = draw(arrays((d, V)), label="W")
    dY = draw(arrays((d, *shape)), label="dY")
    return X, W, dY


def _layer(W: FloatArray, dtype: Any = np.float64) -> Embedding:
    layer = Embedding(W.shape[1], W.shape[0], rng=np.random.default_rng(0), dtype=dtype)
    layer.params["W"][...] = W
    return layer


@pytest.mark.spec("EMBED-FWD", "EMBED-DW", "EMBED-DX")
@given(case=lookups())
@settings(max_examples=50)
def test_matches_the_loop_oracle(
    case: tuple[npt.NDArray[np.int64], FloatArray, FloatArray],
) -> None:
    X, W, dY = case
    layer = _layer(W)
    Y = layer.forward(X)
    dX = layer.backward(dY)
    Y_naive, dW_naive = embedding_naive(X, W, dY)
    np.testing.assert_array_equal(Y, Y_naive)  # a lookup is exact
    np.testing.assert_allclose(layer.grads["W"], dW_naive, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(dX, np.zeros(X.shape))
    assert dX.dtype == np.float64


@pytest.mark.spec("EMBED-DW")
@given(case=lookups())
@settings(max_examples=30)
def test_repeated_indices_accumulate_and_absent_tokens_get_zero(
    case: tuple[npt.NDArray[np.int64], FloatArray, FloatArray],
) -> None:
    """Each row of dW sums to the sum of dY's row (nothing overwritten, nothing lost); a token
    that does not occur gets exactly 0; k copies of one position give k times its gradient."""
    X, W, dY = case
    layer = _layer(W)
    layer.forward(X)
    layer.backward(dY)
    dW = layer.grads["W"]
    np.testing.assert_allclose(dW.sum(axis=1), dY.reshape(W.shape[0], -1).sum(axis=1), atol=1e-12)
    absent = np.setdiff1d(np.arange(W.shape[1]), X)
    np.testing.assert_array_equal(dW[:, absent], 0.0)
    first = X.reshape(-1)[:1]
    repeated = np.repeat(first, 3)  # one token at 3 positions, one example each
    layer.forward(repeated)
    column = dY.reshape(W.shape[0], -1)[:, :1]
    layer.backward(np.repeat(column, 3, axis=1))
    np.testing.assert_allclose(layer.grads["W"][:, first[0]], 3 * column[:, 0], rtol=1e-15)


@pytest.mark.spec("EMBED-FWD", "EMBED-DW")
def test_uint_and_any_memory_order_give_the_same_result_and_float32_stays_float32() -> None:
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 5))
    X = rng.integers(0, 5, (4, 6))
    dY = rng.standard_normal((3, 4, 6))
    layer = _layer(W)
    Y, _ = layer.forward(X), layer.backward(dY)
    dW = layer.grads["W"].copy()
    for other in (X.astype(np.uint8), np.asfortranarray(X), X.astype(np.int32)):
        np.testing.assert_array_equal(layer.forward(other), Y)
        layer.backward(dY)
        np.testing.assert_array_equal(layer.grads["W"], dW)
    f32 = _layer(W.astype(np.float32), np.float32)
    assert f32.forward(X).dtype == np.float32
    assert f32.backward(dY.astype(np.float32)).dtype == np.float32
    assert f32.grads["W"].dtype == np.float32
    np.testing.assert_allclose(f32.grads["W"], dW, rtol=1e-6, atol=1e-6)


@pytest.mark.spec("EMBED-INIT")
def test_initialisation_is_standard_normal() -> None:
    W = Embedding(500, 40, rng=np.random.default_rng(1)).params["W"]
    assert W.shape == (40, 500)
    assert abs(W.mean()) < 0.02 and W.std() == pytest.approx(1.0, rel=0.02)


BAD_X: list[tuple[str, object, type[Exception], str]] = [
    (
        "floats",
        np.zeros((2, 3)),
        TypeError,
        r"X must hold integer token indices in 0..4 \(an int or uint array\), got dtype float64",
    ),
    ("bools", np.zeros((2, 3), dtype=bool), TypeError, r"integer token indices.*got dtype bool"),
    ("a list", [[0, 1]], TypeError, r"X must be a plain numpy array of integer token indices"),
    (
        "a masked array",
        np.ma.masked_array(np.zeros((2, 3), dtype=int)),
        TypeError,
        r"plain numpy array",
    ),
    ("0-d", np.array(1), ValueError, r"at least 1 axis"),
    ("no examples", np.zeros((2, 0), dtype=int), ValueError, r"at least one example"),
    (
        "index 5",
        np.array([[0, 5], [1, 2]]),
        ValueError,
        r"token indices in 0..4 \(n_tokens = 5\), got 5 at position \(0, 1\)",
    ),
    ("index -1", np.array([0, -1]), ValueError, r"got -1 at position \(1,\)"),
    (
        "uint64 too large",
        np.array([2**64 - 1], dtype=np.uint64),
        ValueError,
        r"got 18446744073709551615",
    ),
]


@pytest.mark.spec("EMBED-FWD")
@pytest.mark.parametrize(("what", "X", "error", "message"), BAD_X, ids=[b[0] for b in BAD_X])
def test_bad_indices_are_refused_by_name(
    what: str, X: object, error: type[Exception], message: str
) -> None:
    layer = Embedding(5, 2, rng=np.random.default_rng(0))
    with pytest.raises(error, match=message):
        layer.forward(X)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 2), ValueError, r"n_tokens must be an int >= 1"),
        ((3, 2.0), TypeError, r"dim must be an int"),
    ],
)
def test_bad_sizes_are_refused_by_name(
    args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Embedding(*args, rng=np.random.default_rng(0))


def _overwriting_backward(dY: FloatArray, X: npt.NDArray[np.intp], n_tokens: int) -> FloatArray:
    """The usual mistake: dW[:, X] = dY (fancy-index assignment keeps the last occurrence)."""
    dW = np.zeros((dY.shape[0], n_tokens), dtype=dY.dtype)
    dW[:, X.reshape(-1)] = dY.reshape(dY.shape[0], -1)
    return dW


@pytest.mark.spec("EMBED-DW")
def test_make_check_catches_an_embedding_that_overwrites_repeated_indices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every make-check case has more positions than tokens, so indices repeat: each rejects
    the overwriting backward at W; with the scatter-add they all pass."""
    cases = [c for c in component_cases() if c.component.split()[0] == "Embedding"]
    assert cases
    monkeypatch.setattr(emb, "embedding_backward", _overwriting_backward)
    for case in cases:
        outcome = run_case(case)
        assert outcome.result is not None and not outcome.passed, case.config
        assert {a.name: a.verdict for a in outcome.result.arrays}["W"] == "WRONG"
    monkeypatch.undo()
    assert all(run_case(case).passed for case in cases)


@pytest.mark.spec(*ALL, "GRU-DW", "TSCE-GRAD", "TAFFINE-DW")
def test_a_language_model_passes_the_finite_difference_check_end_to_end() -> None:
    """Embedding -> GRU -> TemporalDense -> temporal softmax CE on token sequences (T x m):
    every parameter's gradient agrees with finite differences; the tokens are not checked."""
    rng = np.random.default_rng(1)
    model = Sequential([Embedding(4, 3, rng=rng), GRU(3, 3, rng=rng), TemporalDense(3, 4, rng=rng)])
    tokens: Any = rng.integers(0, 4, (4, 2))  # model_problem's X is typed float
    targets: Any = np.roll(tokens, -1, axis=0)
    problem = model_problem(model, TemporalSoftmaxCrossEntropy(), tokens, targets)
    wrt = tuple(k for k in problem.wrt if k != "X")
    result = check_grad(problem.f, lambda *a: problem.grad(*a)[1:], problem.inputs, wrt=wrt)
    problem.restore()
    assert result.passed, result.format()


@pytest.mark.spec("EMBED-DW", "TSCE-GRAD", "GRU-DW")
def test_fit_trains_a_next_token_model_on_integer_tokens() -> None:
    """fit slices the integer tokens (T x m) and labels along the example axis like any X, Y:
    a small next-token model memorises 16 sequences (the cost falls by more than half)."""
    rng = np.random.default_rng(0)
    tokens: Any = rng.integers(0, 5, (5, 16))
    model = Sequential(
        [Embedding(5, 6, rng=rng), GRU(6, 12, rng=rng), TemporalDense(12, 5, rng=rng)]
    )
    loss = TemporalSoftmaxCrossEntropy()
    history = fit(
        model, loss, Adam(0.05), tokens[:-1], tokens[1:], epochs=40, batch_size=8, rng=rng
    )
    assert history.cost[-1] < 0.5 * history.cost[0]
