"""Sequential and the L-layer model: MODEL-FWD, MODEL-BWD."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import BinaryCrossEntropy, Dense, ReLU, Sequential, Sigmoid, mlp
from refnn.gradcheck import check_grad
from refnn.testing.strategies import DenseShape, arrays, binary_labels, dense_shapes, sizes
from refnn.verify.problems import model_problem


@pytest.mark.spec("MODEL-FWD")
@given(
    shape=dense_shapes(),
    n_hidden=sizes(),
    data=st.data(),
    output=st.sampled_from(["sigmoid", "linear"]),
)
def test_two_layer_mlp_is_the_seeds_closed_form(
    shape: DenseShape, n_hidden: int, data: st.DataObject, output: str
) -> None:
    """mlp([n_x, n_1, n_2]) computes σ(W2 max(0, W1 X + b1) + b2) (or its logits)."""
    model = mlp([shape.n_in, n_hidden, shape.n_out], rng=np.random.default_rng(0), output=output)
    dense1, dense2 = model.layers[0], model.layers[2]
    for layer in (dense1, dense2):  # a generic point: the init's zero biases would hide b
        for key, value in layer.params.items():
            value[...] = data.draw(arrays(value.shape, bound=2.0), label=key)
    X = data.draw(arrays(shape.input_shape), label="X")
    W1, b1, W2, b2 = dense1.params["W"], dense1.params["b"], dense2.params["W"], dense2.params["b"]
    Z = W2 @ np.maximum(W1 @ X + b1, 0.0) + b2
    expected = Z if output == "linear" else 1.0 / (1.0 + np.exp(-Z))
    np.testing.assert_allclose(model.forward(X), expected, rtol=1e-13, atol=1e-15)


@pytest.mark.spec("MODEL-FWD")
@given(dims=st.lists(sizes(), min_size=2, max_size=6))
def test_mlp_stacks_dense_relu_blocks_and_names_parameters_by_position(dims: list[int]) -> None:
    model = mlp(dims, rng=np.random.default_rng(0))
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Dense, ReLU] * (len(dims) - 2) + [Dense, Sigmoid]
    shapes = [layer.params["W"].shape for layer in model.layers[::2]]
    assert shapes == [(n_out, n_in) for n_in, n_out in itertools.pairwise(dims)]
    model.forward(np.ones((dims[0], 1)))
    model.backward(np.ones((dims[-1], 1)))
    names = [p.name for p in model.parameters()]
    assert names == [f"{i}.{k}" for i in range(0, 2 * (len(dims) - 1), 2) for k in ("W", "b")]


@pytest.mark.spec("MODEL-BWD")
@given(dims=st.lists(sizes(4), min_size=2, max_size=4), m=sizes(3), data=st.data())
@settings(max_examples=20)
def test_backward_is_the_gradient_of_the_composition(
    dims: list[int], m: int, data: st.DataObject
) -> None:
    """Finite differences of J(X, θ) = BCE(model(X), Y) agree with model.backward's dX and every
    layer's dθ: the chain rule in reverse is the derivative of the composition."""
    model = mlp(dims, rng=np.random.default_rng(0))
    X = data.draw(arrays((dims[0], m)), label="X")
    Y = data.draw(binary_labels((dims[-1], m)), label="Y")
    problem = model_problem(model, BinaryCrossEntropy(), X, Y)
    try:
        result = check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt)
    finally:
        problem.restore()
    result.raise_if_failed()


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
    model = mlp([2, 1], rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="call backward"):
        list(model.parameters())


@pytest.mark.parametrize("layers", [None, ReLU(), "relu", 3])
def test_sequential_of_something_not_a_list_names_it(layers: object) -> None:
    """Was "'NoneType' object is not iterable" (or "'ReLU' object ...")."""
    with pytest.raises(TypeError, match=r"layers must be a list of refnn Layers, got \w+"):
        Sequential(layers)  # type: ignore[arg-type]


@pytest.mark.parametrize("layer_dims", [None, 3, "23", {2: 1}])
def test_mlp_of_something_not_a_list_of_sizes_names_it(layer_dims: object) -> None:
    """Was "'NoneType' object is not iterable", or "'2' must be an int" for a string."""
    with pytest.raises(TypeError, match=r"layer_dims must be a list of ints .* got \w+"):
        mlp(layer_dims, rng=np.random.default_rng(0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ([2**40, 2**40], r"W of layer 1 \(layer_dims\[1\] x \[0\]\) of shape"),
        ([3, 2**63], r"W of layer 1 .* of shape \(9223372036854775808, 3\)"),
        ([2, 3, 10**6, 10**6], r"W of layer 3 \(layer_dims\[3\] x \[2\]\)"),
    ],
)
def test_mlp_sizes_that_cannot_be_allocated_are_refused_before_allocating(
    dims: list[int], message: str
) -> None:
    """Was numpy's "array is too big" (or "Maximum allowed dimension exceeded")."""
    with pytest.raises(ValueError, match=message):
        mlp(dims, rng=np.random.default_rng(0))


def test_mlp_weights_that_fit_one_by_one_but_not_together_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Was a MemoryError (or the OOM killer) after the first layers were allocated. On a
    pretend 1 MiB machine each 0.4 MB weight fits, two fit, four do not."""
    monkeypatch.setattr("refnn._validate.memory_bytes", lambda: 2**20)
    with pytest.raises(ValueError, match=r"all the W of layer_dims .* needs"):
        mlp([1, 50_000, 1, 50_000, 1], rng=np.random.default_rng(0))
    mlp([1, 50_000, 1], rng=np.random.default_rng(0))


@pytest.mark.parametrize("output", ["softplus", None, np.array(["sigmoid"])])
def test_mlp_refuses_a_bad_output_before_drawing_from_the_generator(output: object) -> None:
    """Was refused only after every Dense layer had drawn its weights from the caller's rng."""
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises(ValueError, match="output must be 'sigmoid' or 'linear'"):
        mlp([3, 2, 1], rng=rng, output=output)  # type: ignore[arg-type]
    assert rng.bit_generator.state == state


@pytest.mark.parametrize("training", ["no", 1, None])
def test_sequential_forward_training_must_be_a_bool(training: object) -> None:
    """Was passed on to the layers, which took any truthy or falsy object."""
    model = Sequential([ReLU()])
    with pytest.raises(TypeError, match="training must be True or False"):
        model.forward(np.ones((2, 3)), training=training)  # type: ignore[arg-type]
