"""Dense and softmax cross-entropy over sequences (TAFFINE-*, TSCE-*): naive oracles,
properties, bad input, and a many-to-many model checked end to end by finite differences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import GRU, Dense, Sequential, TemporalDense, TemporalSoftmaxCrossEntropy
from refnn.gradcheck import check_grad
from refnn.temporal import Reduction, temporal_affine_backward, temporal_affine_forward
from refnn.testing.strategies import arrays, sizes
from refnn.types import FloatArray
from refnn.verify.problems import model_problem
from tests.oracles.temporal import temporal_affine_naive, temporal_softmax_ce_naive

TSCE = ("TSCE-COST", "TSCE-GRAD")
TAFFINE = ("TAFFINE-FWD", "TAFFINE-DW", "TAFFINE-DB", "TAFFINE-DX")
Labels = npt.NDArray[np.int64]


def _rel_err(actual: FloatArray, expected: FloatArray) -> float:
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


@dataclass(frozen=True)
class Tokens:
    """Logits Z (k, T, m), labels y (T, m) in 0..k-1 and a mask (T, m)."""

    Z: FloatArray
    y: Labels
    mask: npt.NDArray[np.bool_]


@st.composite
def tokens(draw: st.DrawFn, *, max_k: int = 5, max_steps: int = 5) -> Tokens:
    """Sizes shrinking to one class, one step, one example; logits in [-6, 6]; any mask."""
    k, T, m = draw(sizes(max_k)), draw(sizes(max_steps)), draw(sizes(4))
    Z = draw(arrays((k, T, m), bound=6.0), label="Z")
    y = draw(hnp.arrays(np.int64, (T, m), elements=st.integers(0, k - 1)), label="y")
    mask = draw(hnp.arrays(np.bool_, (T, m)), label="mask")
    return Tokens(Z, y, mask)


# --- temporal affine --------------------------------------------------------------------------


@pytest.mark.spec(*TAFFINE)
@given(data=st.data())
@settings(max_examples=30)
def test_temporal_affine_matches_the_loop_oracle(data: st.DataObject) -> None:
    n_in, n_out, T, m = (data.draw(sizes(4)) for _ in range(4))
    X = data.draw(arrays((n_in, T, m)), label="X")
    W = data.draw(arrays((n_out, n_in)), label="W")
    b = data.draw(arrays((n_out, 1)), label="b")
    dZ = data.draw(arrays((n_out, T, m)), label="dZ")
    Z_naive, *grads_naive = temporal_affine_naive(X, W, b, dZ)
    np.testing.assert_allclose(temporal_affine_forward(X, W, b), Z_naive, rtol=1e-12, atol=1e-12)
    for got, want in zip(temporal_affine_backward(dZ, W, X), grads_naive, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.spec(*TAFFINE)
@given(data=st.data())
@settings(max_examples=20)
def test_temporal_dense_is_dense_at_every_step_and_sums_its_parameter_gradients(
    data: st.DataObject,
) -> None:
    n_in, n_out, T, m = (data.draw(sizes(4)) for _ in range(4))
    X = data.draw(arrays((n_in, T, m)), label="X")
    dZ = data.draw(arrays((n_out, T, m)), label="dZ")
    layer = TemporalDense(n_in, n_out, rng=np.random.default_rng(0))
    dense = Dense(n_in, n_out, rng=np.random.default_rng(0))
    layer.params["b"][...] = dense.params["b"][...] = 0.3
    Z = layer.forward(X)
    dX = layer.backward(dZ)
    dW, db = np.zeros_like(dense.params["W"]), np.zeros_like(dense.params["b"])
    for t in range(T):
        np.testing.assert_allclose(Z[:, t], dense.forward(X[:, t].copy()), rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(
            dX[:, t], dense.backward(dZ[:, t].copy()), rtol=1e-14, atol=1e-14
        )
        dW += dense.grads["W"]
        db += dense.grads["b"]
    np.testing.assert_allclose(layer.grads["W"], dW, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.grads["b"], db, rtol=1e-12, atol=1e-13)


@pytest.mark.spec(*TAFFINE)
def test_temporal_dense_refuses_bad_input_by_name() -> None:
    layer = TemporalDense(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"X must have 3 axes \(n_in x T x m"):
        layer.forward(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"X must have n_in = 3 on axis 0"):
        layer.forward(np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match=r"at least one time step"):
        layer.forward(np.zeros((3, 0, 5)))
    with pytest.raises(ValueError, match=r"n_out must be an int >= 1"):
        TemporalDense(3, 0, rng=np.random.default_rng(0))


# --- temporal softmax cross-entropy -------------------------------------------------------------


@pytest.mark.spec(*TSCE)
@given(p=tokens(), per_token=st.booleans())
@settings(max_examples=50)
def test_loss_matches_the_token_by_token_oracle_with_a_mask(p: Tokens, per_token: bool) -> None:
    loss = TemporalSoftmaxCrossEntropy(reduction="per_token" if per_token else "per_sequence")
    J = loss.forward(p.Z, p.y, mask=p.mask)
    dZ = loss.backward()
    J_naive, dZ_naive = temporal_softmax_ce_naive(p.Z, p.y, p.mask, per_token)
    assert J == pytest.approx(J_naive, rel=1e-12, abs=1e-300)
    assert float(np.max(np.abs(dZ - dZ_naive))) <= 1e-12 * max(
        float(np.max(np.abs(dZ_naive))), 1e-300
    )


@pytest.mark.spec(*TSCE)
@given(p=tokens(), per_token=st.booleans())
@settings(max_examples=30)
def test_ignore_index_is_the_mask_and_uncounted_tokens_neither_cost_nor_learn(
    p: Tokens, per_token: bool
) -> None:
    """Labels set to ignore_index where the mask is False give the same J and dZ as the mask;
    changing the logits or labels of those tokens changes nothing; dZ is zero there and each
    counted column of dZ sums to zero over the classes."""
    reduction: Reduction = "per_token" if per_token else "per_sequence"
    masked = TemporalSoftmaxCrossEntropy(reduction=reduction)
    ignoring = TemporalSoftmaxCrossEntropy(reduction=reduction, ignore_index=-1)
    y_ignored = np.where(p.mask, p.y, -1)
    J = masked.forward(p.Z, p.y, mask=p.mask)
    dZ = masked.backward()
    assert ignoring.forward(p.Z, y_ignored) == J
    np.testing.assert_array_equal(ignoring.backward(), dZ)
    Z2 = p.Z.copy()
    Z2[:, ~p.mask] += 5.0
    y2 = np.where(p.mask, p.y, 0)
    assert masked.forward(Z2, y2, mask=p.mask) == J
    np.testing.assert_array_equal(dZ[:, ~p.mask], 0.0)
    np.testing.assert_allclose(dZ.sum(axis=0), 0.0, atol=1e-15)
    assert J >= 0.0


@pytest.mark.spec(*TSCE)
@given(p=tokens())
@settings(max_examples=30)
def test_the_reductions_differ_by_the_ratio_of_their_divisors(p: Tokens) -> None:
    """per_sequence divides by m, per_token by the counted tokens N: J_seq m = J_tok N."""
    N, m = int(p.mask.sum()), p.Z.shape[2]
    seq = TemporalSoftmaxCrossEntropy().forward(p.Z, p.y, mask=p.mask)
    tok = TemporalSoftmaxCrossEntropy(reduction="per_token").forward(p.Z, p.y, mask=p.mask)
    assert seq * m == pytest.approx(tok * N, rel=1e-12, abs=1e-300)


@pytest.mark.spec(*TSCE)
def test_hand_values_and_no_counted_token() -> None:
    """Two classes, logits (0, ln 3) at one counted token: J = log(4) - log(3) (per token)."""
    Z = np.array([[[0.0, 1.0]], [[np.log(3.0), 2.0]]])  # k=2, T=1, m=2
    y = np.array([[1, 0]])
    loss = TemporalSoftmaxCrossEntropy(reduction="per_token")
    assert loss.forward(Z, y, mask=np.array([[True, False]])) == pytest.approx(np.log(4 / 3))
    np.testing.assert_allclose(loss.backward()[:, 0, 0], [0.25, -0.25], rtol=1e-15)
    seq = TemporalSoftmaxCrossEntropy().forward(Z, y, mask=np.array([[True, False]]))
    assert seq == pytest.approx(np.log(4 / 3) / 2)
    assert loss.forward(Z, y, mask=np.zeros((1, 2), dtype=bool)) == 0.0
    np.testing.assert_array_equal(loss.backward(), 0.0)


@pytest.mark.spec(*TSCE, *TAFFINE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_float32_in_float32_out_and_extreme_logits_stay_finite(dtype: Any) -> None:
    Z = (np.array([[[800.0, -800.0]], [[-800.0, 800.0]]])).astype(dtype)
    loss = TemporalSoftmaxCrossEntropy(dtype=dtype, reduction="per_token")
    J = loss.forward(Z, np.array([[0, 0]]))
    assert J == pytest.approx(800.0, rel=1e-6)  # token 2: 1600 / 2 tokens; token 1: 0
    dZ = loss.backward()
    assert dZ.dtype == dtype and np.isfinite(dZ).all()
    layer = TemporalDense(2, 3, rng=np.random.default_rng(0), dtype=dtype)
    out = layer.forward(np.ones((2, 4, 5), dtype=dtype))
    assert out.dtype == dtype and layer.backward(out).dtype == dtype


BAD: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("float labels", {"y": np.zeros((3, 2))}, TypeError, r"Y must be an integer array"),
    ("labels as a list", {"y": [[0, 1]] * 3}, TypeError, r"Y must be an integer array"),
    (
        "labels of Z's shape",
        {"y": np.zeros((4, 3, 2), dtype=int)},
        ValueError,
        r"Y must have shape \(T, m\) = \(3, 2\)",
    ),
    (
        "label k",
        {"y": np.full((3, 2), 4)},
        ValueError,
        r"class indices in 0..3, got 4 at \(t, i\) = \(0, 0\)",
    ),
    ("label -1", {"y": np.full((3, 2), -1)}, ValueError, r"class indices in 0..3, got -1"),
    ("int mask", {"mask": np.ones((3, 2), dtype=int)}, TypeError, r"mask must be a bool array"),
    (
        "mask shape",
        {"mask": np.ones((2, 3), dtype=bool)},
        ValueError,
        r"mask must have shape \(T, m\) = \(3, 2\)",
    ),
    ("2-D logits", {"Z": np.zeros((4, 2))}, ValueError, r"Z must have 3 axes \(k x T x m"),
    ("NaN logits", {"Z": np.full((4, 3, 2), np.nan)}, ValueError, r"Z must be finite"),
    ("weights", {"weights": np.ones(2)}, TypeError, r"takes no per-example weights"),
]


@pytest.mark.spec(*TSCE)
@pytest.mark.parametrize(("what", "change", "error", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_loss_inputs_are_refused_by_name(
    what: str, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {"Z": np.zeros((4, 3, 2)), "y": np.zeros((3, 2), dtype=int)}
    args.update(change)
    Z, y = args.pop("Z"), args.pop("y")
    with pytest.raises(error, match=message):
        TemporalSoftmaxCrossEntropy().forward(Z, y, **args)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"reduction": "mean"}, ValueError, r"reduction must be 'per_sequence' or 'per_token'"),
        ({"ignore_index": "pad"}, TypeError, r"ignore_index must be an int or None, got 'pad'"),
        ({"ignore_index": True}, TypeError, r"ignore_index must be an int or None"),
        ({"dtype": np.float16}, TypeError, r"dtype must be float64 or float32"),
    ],
)
def test_bad_loss_options_are_refused_by_name(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TemporalSoftmaxCrossEntropy(**kwargs)


@pytest.mark.spec(*TSCE, *TAFFINE, "GRU-DW", "GRU-DX")
def test_a_many_to_many_model_passes_the_finite_difference_check_end_to_end() -> None:
    """GRU -> TemporalDense -> temporal softmax CE with padding (ignore_index): the gradient of
    J with respect to X and every parameter agrees with finite differences."""
    rng = np.random.default_rng(0)
    model = Sequential([GRU(3, 4, rng=rng), TemporalDense(4, 5, rng=rng)])
    X = rng.standard_normal((3, 4, 3))
    y = rng.integers(0, 5, (4, 3))
    y[2:, 0] = -100  # the first sequence is two steps long
    loss = TemporalSoftmaxCrossEntropy(ignore_index=-100, reduction="per_token")
    labels: Any = y  # integer labels, where the other losses take float arrays
    problem = model_problem(model, loss, X, labels)
    result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    problem.restore()
    assert result.passed, result.format()
