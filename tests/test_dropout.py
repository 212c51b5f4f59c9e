"""Inverted dropout: DROPOUT-FWD, DROPOUT-BWD, the frozen mask, and p_drop's meaning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import Dropout
from refnn._validate import FloatRangeError
from refnn.dropout import dropout_backward, dropout_forward, dropout_mask
from refnn.gradcheck import check_grad
from refnn.testing.strategies import arrays
from refnn.types import FloatArray
from refnn.verify.problems import layer_problem

p_drops = st.floats(0.0, 0.95)


def normal(seed: int, *shape: int) -> FloatArray:
    return np.random.default_rng(seed).standard_normal(shape)


def _global_state() -> tuple[list[int], int]:
    """numpy's legacy global generator state (key and position), to prove it is never touched."""
    state = np.random.get_state(legacy=False)["state"]
    return [int(x) for x in state["key"]], int(state["pos"])


@pytest.mark.spec("DROPOUT-FWD")
@given(X=arrays((2, 3, 4)), p_drop=p_drops)
def test_each_mask_zeroes_or_scales_exactly(X: FloatArray, p_drop: float) -> None:
    layer = Dropout(p_drop, rng=np.random.default_rng(0))
    A = layer.forward(X)
    if p_drop == 0.0:
        np.testing.assert_array_equal(A, X)
        return
    keep = layer.keep_mask
    assert keep is not None and keep.shape == X.shape
    scale = 1.0 / (1.0 - p_drop)
    np.testing.assert_array_equal(A[~keep], 0.0)
    np.testing.assert_array_equal(A[keep], X[keep] * scale)


@pytest.mark.spec("DROPOUT-FWD")
@settings(max_examples=15)
@given(X=arrays((3, 4)), p_drop=st.floats(0.05, 0.9))
def test_dropout_keeps_the_expected_activation(X: FloatArray, p_drop: float) -> None:
    # mean of N draws of x·B/(1-p), B ~ Bernoulli(1-p): expectation x, std |x| sqrt(p/((1-p)N))
    layer = Dropout(p_drop, rng=np.random.default_rng(0))
    N = 1000
    mean = sum(layer.forward(X) for _ in range(N)) / N
    sigma = np.abs(X) * np.sqrt(p_drop / ((1 - p_drop) * N))
    assert np.all(np.abs(mean - X) <= 6 * sigma + 1e-12)


@pytest.mark.spec("DROPOUT-FWD")
@pytest.mark.parametrize("p_drop", [0.1, 0.5, 0.9])
def test_p_drop_is_the_probability_of_dropping(p_drop: float) -> None:
    # the name says it: the fraction of zeroed units is p_drop, not 1 - p_drop
    keep = dropout_mask((200, 500), p_drop, np.random.default_rng(0))
    n = keep.size
    dropped = 1.0 - keep.mean()
    assert abs(dropped - p_drop) <= 6 * np.sqrt(p_drop * (1 - p_drop) / n)


@pytest.mark.spec("DROPOUT-FWD", "DROPOUT-BWD")
def test_inference_is_the_identity_and_draws_nothing() -> None:
    rng = np.random.default_rng(5)
    layer = Dropout(0.5, rng=rng)
    X = normal(0, 4, 6)
    state = rng.bit_generator.state
    A = layer.forward(X, training=False)
    assert A is X  # validated, no copy, no scaling
    assert rng.bit_generator.state == state
    dA = normal(1, 4, 6)
    np.testing.assert_array_equal(layer.backward(dA), dA)
    # p_drop = 0 is the identity in training too, and draws nothing
    zero = Dropout(0.0, rng=rng)
    np.testing.assert_array_equal(zero.forward(X), X)
    np.testing.assert_array_equal(zero.backward(dA), dA)
    assert rng.bit_generator.state == state and zero.keep_mask is None


@pytest.mark.spec("DROPOUT-BWD")
@given(X=arrays((3, 5)), dA=arrays((3, 5)), p_drop=st.floats(0.01, 0.9))
def test_backward_uses_the_forward_mask(X: FloatArray, dA: FloatArray, p_drop: float) -> None:
    layer = Dropout(p_drop, rng=np.random.default_rng(0))
    A = layer.forward(X)
    dX = layer.backward(dA)
    keep = layer.keep_mask
    assert keep is not None
    np.testing.assert_array_equal(dX[~keep], 0.0)
    np.testing.assert_array_equal(dX[keep], dA[keep] * (1.0 / (1.0 - p_drop)))
    # the layer is linear for a fixed mask: <dA, A> = <dX, X>
    assert np.sum(dA * A) == pytest.approx(np.sum(dX * X), rel=1e-12, abs=1e-12)


@pytest.mark.spec("DROPOUT-FWD", "DROPOUT-BWD")
def test_pure_functions_agree_with_the_layer() -> None:
    keep = np.array([[True, False], [False, True]])
    X = np.array([[2.0, 3.0], [4.0, -5.0]])
    A, D = dropout_forward(X, keep, 0.75)
    np.testing.assert_array_equal(A, [[8.0, 0.0], [0.0, -20.0]])
    np.testing.assert_array_equal(dropout_backward(np.ones((2, 2)), D), [[4.0, 0.0], [0.0, 4.0]])
    layer = Dropout(0.75, rng=np.random.default_rng(0))
    layer.freeze_mask(keep)
    np.testing.assert_array_equal(layer.forward(X), A)


@pytest.mark.spec("DROPOUT-FWD", "DROPOUT-BWD")
@settings(max_examples=20)
@given(X=arrays((2, 2, 3)), p_drop=st.floats(0.0, 0.9))
def test_frozen_mask_passes_the_gradient_checker(X: FloatArray, p_drop: float) -> None:
    layer = Dropout(p_drop, rng=np.random.default_rng(0))
    layer.freeze_mask()
    problem = layer_problem(layer, X)
    try:
        result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    finally:
        problem.restore()
    assert result.passed, result.format()


@pytest.mark.spec("DROPOUT-FWD")
def test_only_a_frozen_mask_makes_J_a_function_of_X() -> None:
    # unfrozen, each evaluation of J draws a new mask: finite differences would see noise
    X = normal(0, 4, 6)
    loose = layer_problem(Dropout(0.5, rng=np.random.default_rng(0)), X, seed=0)
    args = list(loose.inputs.values())
    assert loose.f(*args) != loose.f(*args)
    frozen_layer = Dropout(0.5, rng=np.random.default_rng(0))
    frozen_layer.freeze_mask()
    frozen = layer_problem(frozen_layer, X, seed=0)
    values = {frozen.f(*args) for _ in range(5)}
    assert len(values) == 1


def test_mask_comes_from_the_explicit_generator_only() -> None:
    X = normal(0, 5, 7)
    np.random.seed(123)
    global_state = _global_state()
    a = Dropout(0.3, rng=np.random.default_rng(42)).forward(X)
    b = Dropout(0.3, rng=np.random.default_rng(42)).forward(X)
    c = Dropout(0.3, rng=np.random.default_rng(43)).forward(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert _global_state() == global_state
    layer = Dropout(0.3, rng=np.random.default_rng(42))
    first, second = layer.forward(X), layer.forward(X)
    assert not np.array_equal(first, second)  # unfrozen: a fresh mask each forward


def test_freeze_and_unfreeze() -> None:
    X = normal(0, 4, 5)
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    first = layer.forward(X)
    layer.freeze_mask()
    states = [layer.frozen]
    np.testing.assert_array_equal(layer.forward(X), first)
    np.testing.assert_array_equal(layer.forward(2 * X), 2 * first)
    with pytest.raises(ValueError, match=r"frozen dropout mask has shape \(4, 5\), got X"):
        layer.forward(normal(1, 4, 6))
    layer.unfreeze_mask()
    states.append(layer.frozen)
    assert states == [True, False]
    assert not np.array_equal(layer.forward(X), first)
    # freezing before any forward keeps the next mask drawn
    fresh = Dropout(0.5, rng=np.random.default_rng(1))
    fresh.freeze_mask()
    np.testing.assert_array_equal(fresh.forward(X), fresh.forward(X))
    with pytest.raises(TypeError, match="keep must be a boolean numpy array"):
        fresh.freeze_mask(np.ones((4, 5)))  # type: ignore[arg-type]


def test_dropout_config_and_arguments() -> None:
    layer = Dropout(0.5, rng=np.random.default_rng(0), dtype=np.float32)
    assert layer.config() == {"p_drop": 0.5, "dtype": "float32"}
    with pytest.raises(TypeError, match=r"p_drop must be a real number, got np.True_|True"):
        Dropout(np.True_, rng=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p_drop must be in \[0.0, 1.0\)"):
        Dropout(1.0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"p_drop must be in \[0.0, 1.0\)"):
        Dropout(-0.1, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="p_drop must be a real number"):
        Dropout("0.5", rng=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        Dropout(0.5, rng=0)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout(0.5, rng=np.random.default_rng(0)).backward(np.ones((1, 1)))


@pytest.mark.parametrize(
    ("keep", "error", "match"),
    [
        (np.ones((4, 5), dtype=np.int8), TypeError, "keep must be a boolean numpy array"),
        ([[True]], TypeError, "keep must be a boolean numpy array, got list"),
        (np.ma.masked_array(np.ones((4, 5), bool)), TypeError, "got MaskedArray"),
        (np.array(True), ValueError, r"keep must have X's shape .*, got \(\)"),
        (np.ones((4, 0), bool), ValueError, r"keep must have X's shape .*, got \(4, 0\)"),
    ],
)
def test_freeze_mask_refuses_a_mask_of_the_wrong_kind(
    keep: object, error: type[Exception], match: str
) -> None:
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    with pytest.raises(error, match=match):
        layer.freeze_mask(keep)  # type: ignore[arg-type]
    layer.freeze_mask(np.ones((4, 5), bool))
    with pytest.raises(ValueError, match=r"frozen dropout mask has shape \(4, 5\), got X"):
        layer.forward(np.ones((5, 4)))


@pytest.mark.spec("DROPOUT-FWD", "DROPOUT-BWD")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(p_drop=st.floats(0.2, 1.0, exclude_max=True))
def test_scaling_beyond_the_float_range_is_refused_not_inf(dtype: type, p_drop: float) -> None:
    # a kept unit of X = 0.9 max is scaled by 1/(1 - p_drop) >= 1.25: beyond the range
    top = float(np.finfo(dtype).max) * 0.9
    layer = Dropout(p_drop, rng=np.random.default_rng(0), dtype=dtype)
    layer.freeze_mask(np.ones((2, 2), bool))
    with pytest.raises(FloatRangeError, match=r"Dropout.forward: Y \(DROPOUT-FWD\) overflows"):
        layer.forward(np.full((2, 2), top, dtype=dtype))
    layer.forward(np.ones((2, 2), dtype=dtype))
    with pytest.raises(FloatRangeError, match=r"Dropout.backward: dX \(DROPOUT-BWD\) overflows"):
        layer.backward(np.full((2, 2), -top, dtype=dtype))
