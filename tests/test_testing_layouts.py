"""Public layout helpers (TEST-LAYOUT), and refnn layers given batch-first arrays say so."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp

from refnn import LSTM, Conv2D, Dense, Layer
from refnn.testing import to_batch_first, to_batch_last
from refnn.types import FloatArray


@pytest.mark.spec("TEST-LAYOUT")
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=4)))
def test_batch_first_and_back_is_the_identity_and_moves_examples_to_axis_0(X: FloatArray) -> None:
    first = to_batch_first(X)
    assert first.shape[0] == X.shape[-1]
    np.testing.assert_array_equal(to_batch_last(first), X)
    assert first.flags.c_contiguous and not np.shares_memory(first, X)


@pytest.mark.spec("TEST-LAYOUT")
def test_the_layouts_are_pytorchs() -> None:
    images = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)  # C H W m
    assert to_batch_first(images).shape == (5, 2, 3, 4)
    assert to_batch_first(images)[4, 1, 2, 3] == images[1, 2, 3, 4]
    sequences = np.arange(2 * 3 * 4.0).reshape(2, 3, 4)  # n T m
    assert to_batch_first(sequences)[3, 2, 1] == sequences[1, 2, 3]  # m T n


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((1, 1, 1, 1, 1)), [[1.0]]])
def test_other_ranks_and_non_arrays_are_refused(bad: object) -> None:
    with pytest.raises((ValueError, TypeError), match="to_batch_first"):
        to_batch_first(bad)  # type: ignore[arg-type]


def test_refnn_layers_given_batch_first_arrays_say_so() -> None:
    rng = np.random.default_rng(0)
    cases: list[tuple[Layer[Any], FloatArray]] = [
        (Dense(3, 2, rng=rng), np.zeros((5, 3))),  # m x n_in
        (Conv2D(3, 4, 3, rng=rng), np.zeros((2, 3, 8, 8))),  # N x C x H x W
        (LSTM(3, 2, rng=rng), np.zeros((5, 7, 3))),  # m x T x n_in
    ]
    for layer, X in cases:
        with pytest.raises(ValueError, match="batch-first") as info:
            layer.forward(X)
        # the hint's transpose is the kit's to_batch_last for the same array
        assert "to_batch_last" in str(info.value) or "transpose" in str(info.value)
        assert layer.forward(to_batch_last(X)).shape[-1] == X.shape[0]
