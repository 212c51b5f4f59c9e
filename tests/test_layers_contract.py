"""Every public layer keeps the Layer contract in both dtypes (NOTE-DTYPE, NOTE-INPUTS).

float32 in gives float32 out, float32 gradients and float32 parameters: no silent upcast.
The caller's input is never modified, backward is idempotent (calling it twice gives the same
gradients, never accumulated ones), and ``grads`` has exactly the keys of ``params``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import refnn
from refnn import Layer
from refnn.registry import components
from refnn.types import FloatArray
from refnn.verify.builders import example_input, example_maker


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _first_example(
    cls: type[Layer[Any]],
) -> tuple[str, Callable[[Any], Layer[Any]], tuple[int, ...]]:
    """A layer's first make-check example as (name, factory(dtype) -> layer, input shape)."""
    example = cls.examples()[0]
    make = example_maker(cls, example)
    return cls.__name__, lambda dt: make(_rng(), dt), example.shape


#: (name, factory(dtype) -> layer, input shape): every registered layer (NOTE-REGISTRY)
LAYERS = [_first_example(cls) for cls in components("layer").values()]
IDS = [name for name, _, _ in LAYERS]


@pytest.mark.spec("NOTE-REGISTRY")
def test_every_public_layer_is_registered_with_examples() -> None:
    public = {
        name
        for name in refnn.__all__
        if isinstance(getattr(refnn, name), type) and issubclass(getattr(refnn, name), Layer)
    }
    assert public - {"Layer"} <= set(IDS)
    for cls in components("layer").values():
        assert cls.examples(), f"{cls.__name__} declares no make-check example"
        assert cls.specs and "Y" in cls.specs and "dX" in cls.specs, cls.__name__


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=IDS)
def test_layer_contract(
    name: str,
    make: Callable[[Any], Layer[Any]],
    shape: tuple[int, ...],
    dtype: type[np.floating[Any]],
) -> None:
    layer = make(dtype)
    X = example_input(layer, "normal", shape, 1, dtype=dtype)  # an Embedding's: indices
    X_before = X.copy()
    A = layer.forward(X)
    assert A.dtype == dtype, f"{name} forward upcast {dtype.__name__} to {A.dtype}"
    dA: FloatArray = np.random.default_rng(2).standard_normal(A.shape).astype(dtype)
    dA_before = dA.copy()
    dX = layer.backward(dA)
    first = {k: g.copy() for k, g in layer.grads.items()}
    dX_again = layer.backward(dA)
    assert dX.shape == X.shape and dX.dtype == dtype
    np.testing.assert_array_equal(dX, dX_again)
    assert set(layer.grads) == set(layer.params)
    for k, p in layer.params.items():
        assert (
            p.dtype == dtype and layer.grads[k].dtype == dtype and layer.grads[k].shape == p.shape
        )
        np.testing.assert_array_equal(layer.grads[k], first[k])  # idempotent, not accumulated
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(dA, dA_before)
    rebuilt = type(layer)(
        **{**layer.config(), **({"rng": _rng()} if "rng" in _params(layer) else {})}
    )
    assert rebuilt.config() == layer.config()


def _params(layer: Layer[Any]) -> set[str]:
    return set(inspect.signature(type(layer)).parameters)


def _backward_after(
    make: Callable[[Any], Layer[Any]], shape: tuple[int, ...], change: str
) -> tuple[FloatArray, dict[str, FloatArray]] | str:
    """Forward, then modify ``change`` ("X", "output" or a parameter key) in place, then backward.

    Returns backward's dX and grads, or the RuntimeError's message.
    """
    layer = make(np.float64)
    X = example_input(layer, "normal", shape, 1)
    A = layer.forward(X)
    dA: FloatArray = np.random.default_rng(2).standard_normal(A.shape)
    target = {"X": X, "output": A, **layer.params}.get(change)
    if target is not None:
        target *= -2  # an int: integer indices (an Embedding's X) can be changed too
    try:
        dX = layer.backward(dA)
    except RuntimeError as err:
        return str(err)
    return dX, {k: g.copy() for k, g in layer.grads.items()}


@pytest.mark.spec("NOTE-STALE")
@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=IDS)
def test_backward_refuses_a_cache_modified_after_forward(
    name: str, make: Callable[[Any], Layer[Any]], shape: tuple[int, ...]
) -> None:
    """Writing into X, the output A or a parameter between forward and backward either changes
    nothing backward returns or makes backward raise, naming what was modified; never a silent
    gradient of other data (as a cache holding the caller's arrays gave before NOTE-STALE)."""
    reference = _backward_after(make, shape, "nothing")
    assert not isinstance(reference, str)
    for change in ["X", "output", *make(np.float64).params]:
        outcome = _backward_after(make, shape, change)
        if isinstance(outcome, str):
            assert f"{change} was modified after forward()" in outcome
            continue
        np.testing.assert_array_equal(outcome[0], reference[0], err_msg=f"{name}: {change}")
        for k, g in outcome[1].items():
            np.testing.assert_array_equal(g, reference[1][k], err_msg=f"{name}: {change} -> d{k}")


@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=IDS)
def test_backward_before_forward_is_refused(
    name: str, make: Callable[[Any], Layer[Any]], shape: tuple[int, ...]
) -> None:
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        make(np.float64).backward(np.ones(shape))


@pytest.mark.parametrize("training", ["no", "False", 0, 1, None, np.array(True)])
@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=IDS)
def test_training_must_be_a_bool(
    name: str, make: Callable[[Any], Layer[Any]], shape: tuple[int, ...], training: object
) -> None:
    """``training="no"`` meant training (any truthy value did): every layer refuses non-bools."""
    layer = make(np.float64)
    X = example_input(layer, "normal", shape, 1)
    with pytest.raises(TypeError, match=r"training must be True or False, got"):
        layer.forward(X, training=training)  # type: ignore[arg-type]
    layer.forward(X, training=np.False_)  # type: ignore[arg-type]  # a numpy bool is a bool


NON_NUMERIC = ["m8[s]", "M8[s]", "bool", "complex128", "object", "U3"]


@pytest.mark.parametrize("kind", NON_NUMERIC)
@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=IDS)
def test_non_numeric_inputs_are_refused(
    name: str, make: Callable[[Any], Layer[Any]], shape: tuple[int, ...], kind: str
) -> None:
    """timedelta64 and the other non-real kinds passed as numbers into every layer."""
    X = np.ones(shape, dtype=np.int64).astype(kind)
    with pytest.raises(
        TypeError, match=r"must hold (real numbers|integer token indices).*got dtype"
    ):
        make(np.float64).forward(X)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=IDS)
def test_inputs_near_the_top_of_the_range_never_give_inf(
    name: str, make: Callable[[Any], Layer[Any]], shape: tuple[int, ...], sign: float
) -> None:
    """X and dA at 0.7 x the float64 maximum: each step either returns finite arrays or raises
    ValueError naming the overflow; never an inf (nor a RuntimeWarning: warnings are errors)."""
    top = sign * 0.7 * float(np.finfo(np.float64).max)
    layer = make(np.float64)
    X = example_input(layer, "normal", shape, 1)
    for attempt in ("forward", "backward"):
        if attempt == "forward" and X.dtype.kind != "f":
            continue  # integer indices (an Embedding's) have no range to overflow
        try:
            if attempt == "forward":
                out = layer.forward(np.full(shape, top) * np.sign(X))
            else:
                A = layer.forward(X)
                out = layer.backward(np.full(A.shape, top))
        except ValueError as err:
            assert "overflows float64" in str(err), err
            continue
        assert np.all(np.isfinite(out)), f"{name}.{attempt} returned inf"
        assert all(np.all(np.isfinite(g)) for g in layer.grads.values())
