"""Input conversion (NOTE-DTYPE, NOTE-INPUTS): a float64 value beyond float32's range.

A float32 layer converts float64 inputs and upstream gradients. A finite value too large for
float32 must raise ValueError naming the range, not a numpy overflow warning (an error under
the project's warning filter) followed by a claim that the input held NaN or Inf.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import refnn
from refnn import Dense, Layer
from refnn._validate import as_input, to_dtype
from refnn.registry import components
from tests.test_layers_contract import LAYERS

RANGE = r"must be within the range of float32 \(\|x\| <= 3\.403e\+38\), got values up to 1e\+300"


#: The registered layers taking real-valued X (an Embedding validates its own integer indices).
REAL_INPUT = [case for case in LAYERS if components("layer")[case[0]]._input is Layer._input]


@pytest.mark.parametrize(("name", "make", "shape"), REAL_INPUT, ids=[c[0] for c in REAL_INPUT])
def test_float32_layer_refuses_float64_beyond_its_range(
    name: str, make: Callable[[Any], Layer[Any]], shape: tuple[int, ...]
) -> None:
    layer = make(np.float32)
    X = np.random.default_rng(1).standard_normal(shape)
    X_big = X.copy()
    X_big.flat[0] = 1e300
    with pytest.raises(ValueError, match=f"{type(layer).takes.name} " + RANGE):
        layer.forward(X_big)
    A = layer.forward(X)  # float64 within range is converted, as documented
    dA = np.ones(A.shape)
    dA.flat[-1] = -1e300
    with pytest.raises(ValueError, match="dA " + RANGE):
        layer.backward(dA)
    assert layer.backward(dA / 1e300).dtype == np.float32


def test_conversion_keeps_nan_inf_and_integers_as_they_were() -> None:
    f32 = np.dtype(np.float32)
    X = np.array([1.0, np.inf, -np.inf, np.nan, 3e38])
    out = to_dtype(X, f32, "X")  # existing infinities are not an overflow
    assert out.dtype == f32 and np.isinf(out[1:3]).all() and np.isnan(out[3])
    ints = np.array([2**62, -3])
    assert to_dtype(ints, f32, "X").dtype == f32
    same = np.ones(3, dtype=np.float32)
    assert to_dtype(same, f32, "X") is same


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_input_already_in_the_layers_dtype_is_not_copied(dtype: type[np.floating]) -> None:
    # issue 4: no hidden copy of an input already in the layer's dtype
    X = np.ones((1000, 500), dtype=dtype)
    assert as_input(X, "X", ndim=2, dtype=np.dtype(dtype)) is X
    layer = Dense(1000, 2, rng=np.random.default_rng(0), dtype=dtype)
    tracemalloc.start()
    try:
        layer.forward(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the finiteness check's boolean temporary is X.size bytes; a copy of X would be X.nbytes
    assert peak < X.nbytes // 2
    assert layer._take().cache is X  # the caller's array, watched for changes (NOTE-STALE)


@pytest.mark.parametrize(
    "call",
    [
        lambda z: refnn.ReLU().forward(z),
        lambda z: refnn.Dropout(0.5, rng=np.random.default_rng(0)).forward(z),
        lambda z: refnn.BinaryCrossEntropy().forward(z, z),
    ],
    ids=["ReLU", "Dropout", "BinaryCrossEntropy"],
)
def test_a_0d_array_is_refused_with_the_right_rank_in_the_message(call: Any) -> None:
    with pytest.raises(ValueError, match=r"at least 1 axis \(examples last\), got a 0-d array"):
        call(np.array(0.5))


def test_masked_arrays_and_matrices_are_refused() -> None:
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    mask = np.zeros((3, 2), dtype=bool)
    mask[0, 1] = True
    masked = np.ma.masked_array(np.ones((3, 2)), mask=mask)
    with pytest.raises(TypeError, match="X must be a plain numpy array, got MaskedArray"):
        layer.forward(masked)
    with pytest.warns(PendingDeprecationWarning):  # numpy's own warning on creating a matrix
        matrix = np.asmatrix(np.ones((3, 2)))
    with pytest.raises(TypeError, match="X must be a plain numpy array, got matrix"):
        layer.forward(matrix)
