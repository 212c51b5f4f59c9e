"""Sequential and the L-layer model: MODEL-FWD, MODEL-BWD."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn import Dense, ReLU, Sequential, Sigmoid, mlp
from tests.strategies import normal, seeds, sizes


@pytest.mark.spec("MODEL-FWD")
@given(dims=st.lists(sizes, min_size=2, max_size=5), m=sizes, seed=seeds)
def test_mlp_is_the_composition_of_its_layers(dims: list[int], m: int, seed: int) -> None:
    model = mlp(dims, rng=np.random.default_rng(seed))
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Dense, ReLU] * (len(dims) - 2) + [Dense, Sigmoid]
    X = normal(seed, dims[0], m)
    A = X
    for layer in model.layers:
        A = layer.forward(A)
    np.testing.assert_array_equal(model.forward(X), A)
    assert A.shape == (dims[-1], m)


@pytest.mark.spec("MODEL-BWD")
@given(dims=st.lists(sizes, min_size=2, max_size=4), m=sizes, seed=seeds)
def test_backward_runs_the_chain_rule_in_reverse(dims: list[int], m: int, seed: int) -> None:
    model = mlp(dims, rng=np.random.default_rng(seed))
    X = normal(seed, dims[0], m)
    dA = normal(seed + 1, dims[-1], m)
    model.forward(X)
    dX = model.backward(dA)
    # the same by hand, layer by layer, from a fresh forward
    model.forward(X)
    d = dA
    for layer in reversed(model.layers):
        d = layer.backward(d)
    np.testing.assert_array_equal(dX, d)
    names = [p.name for p in model.parameters()]
    assert names == [f"{i}.{k}" for i in range(0, 2 * (len(dims) - 1), 2) for k in ("W", "b")]


def test_sequential_rejects_bad_stacks() -> None:
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential([])
    with pytest.raises(TypeError, match="layer 1 must be a refnn Layer, got str"):
        Sequential([ReLU(), "relu"])  # type: ignore[list-item]
    relu = ReLU()
    with pytest.raises(ValueError, match="appears twice"):
        Sequential([relu, relu])
    with pytest.raises(ValueError, match="at least 2 sizes"):
        mlp([3], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="output must be 'sigmoid' or 'linear'"):
        mlp([3, 1], rng=np.random.default_rng(0), output="softplus")
    model = mlp([2, 1], rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="call backward"):
        list(model.parameters())
