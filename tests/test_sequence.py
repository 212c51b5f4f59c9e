"""LastStep, the many-to-one sequence head: SEQ-LAST-FWD, SEQ-LAST-BWD."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import LastStep
from refnn.gradcheck import check_grad
from refnn.verify.problems import layer_problem
from tests.strategies import normal, seeds


@pytest.mark.spec("SEQ-LAST-FWD", "SEQ-LAST-BWD")
@given(n=st.integers(1, 4), T=st.integers(1, 5), m=st.integers(1, 4), seed=seeds)
@settings(max_examples=25)
def test_last_step_keeps_the_last_time_step_and_routes_its_gradient(
    n: int, T: int, m: int, seed: int
) -> None:
    layer = LastStep()
    X = normal(seed, n, T, m)
    X_before = X.copy()
    A = layer.forward(X)
    np.testing.assert_array_equal(A, X[:, T - 1, :])
    assert A.flags.c_contiguous and not np.shares_memory(A, X)
    dA = normal(seed + 1, n, m)
    dX = layer.backward(dA)
    assert dX.shape == X.shape
    np.testing.assert_array_equal(dX[:, T - 1, :], dA)
    np.testing.assert_array_equal(dX[:, : T - 1, :], 0.0)
    np.testing.assert_array_equal(X, X_before)
    problem = layer_problem(LastStep(), X, seed=seed)
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
