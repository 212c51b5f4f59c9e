"""LastStep, the many-to-one sequence head: SEQ-LAST-FWD, SEQ-LAST-BWD."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import LastStep
from refnn.gradcheck import check_grad
from refnn.testing.strategies import SequenceShape, arrays, sequence_shapes
from refnn.verify.problems import layer_problem


@pytest.mark.spec("SEQ-LAST-FWD", "SEQ-LAST-BWD")
@given(shape=sequence_shapes(), data=st.data())
@settings(max_examples=25)
def test_last_step_keeps_the_last_time_step_and_routes_its_gradient(
    shape: SequenceShape, data: st.DataObject
) -> None:
    n, T, m = shape.input_shape
    X = data.draw(arrays((n, T, m)), label="X")
    dA = data.draw(arrays((n, m)), label="dA")
    X_before = X.copy()
    layer = LastStep()
    A = layer.forward(X)
    np.testing.assert_array_equal(A, X[:, T - 1, :])
    assert A.flags.c_contiguous and not np.shares_memory(A, X)
    dX = layer.backward(dA)
    assert dX.shape == X.shape
    np.testing.assert_array_equal(dX[:, T - 1, :], dA)
    np.testing.assert_array_equal(dX[:, : T - 1, :], 0.0)
    np.testing.assert_array_equal(X, X_before)
    problem = layer_problem(LastStep(), X)
    result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    assert result.passed, result.format()


def test_last_step_dtype_and_bad_input() -> None:
    layer = LastStep(dtype=np.float32)
    A = layer.forward(np.ones((2, 3, 4), dtype=np.float32))
    assert A.dtype == np.float32
    assert layer.backward(np.ones((2, 4), dtype=np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match=r"3 axes"):
        layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"T >= 1"):
        layer.forward(np.ones((2, 0, 3)))
    with pytest.raises(ValueError, match=r"output's shape \(2, 4\)"):
        layer.backward(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        LastStep().backward(np.ones((2, 4)))
    assert LastStep().config() == {"dtype": "float64"}


@pytest.mark.parametrize("training", ["no", 0, None])
def test_training_must_be_a_bool(training: object) -> None:
    """Was accepted whatever it was: now a TypeError naming it."""
    with pytest.raises(TypeError, match="training must be True or False"):
        LastStep().forward(np.ones((2, 3, 4)), training=training)  # type: ignore[arg-type]
