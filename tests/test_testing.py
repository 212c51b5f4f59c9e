"""refnn.testing.check_layer accepts correct independent implementations (batch-first numpy,
written from the equations) and rejects wrong ones with a minimal example (TEST-LAYER)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from refnn.testing import MismatchError, check_layer
from refnn.types import FloatArray

Grads = Mapping[str, FloatArray]


class BatchFirstDense:
    """Y = X W^T + b^T on m x n_in inputs: the textbook batch-first dense layer."""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.W, self.b = params["W"], params["b"]
        self.X: FloatArray = np.zeros((0, 0))

    def forward(self, X: FloatArray) -> FloatArray:
        self.X = X
        return X @ self.W.T + self.b.T

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        return dY @ self.W, {"W": dY.T @ self.X, "b": dY.sum(axis=0)[:, None]}


#: A convolution without dilation or groups: the configurations the kit may draw for it.
PLAIN = {"dilation": 1, "groups": 1}


class LoopConv:
    """A loop-based N x C x H x W cross-correlation written straight from CONV-FWD."""

    flip = False

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.W, self.b = params["W"], params["b"]
        self.stride, self.pad = config["stride"], config["padding"]
        self.Xp = np.zeros((0, 0, 0, 0))

    def kernel(self) -> FloatArray:
        return self.W[:, :, ::-1, ::-1] if self.flip else self.W

    def windows(self, m: int) -> list[tuple[int, int, slice, slice]]:
        _, _, kh, kw = self.W.shape
        (sh, sw), (_, _, Hp, Wp) = self.stride, self.Xp.shape
        return [
            (i, j, slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw))
            for i in range((Hp - kh) // sh + 1)
            for j in range((Wp - kw) // sw + 1)
        ]

    def forward(self, X: FloatArray) -> FloatArray:
        ph, pw = self.pad
        self.Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        wins = self.windows(X.shape[0])
        Ho, Wo = wins[-1][0] + 1, wins[-1][1] + 1
        Y = np.zeros((X.shape[0], self.W.shape[0], Ho, Wo))
        K = self.kernel()
        for n in range(X.shape[0]):
            for f in range(K.shape[0]):
                for i, j, rows, cols in wins:
                    Y[n, f, i, j] = np.sum(self.Xp[n, :, rows, cols] * K[f]) + self.b[f, 0]
        return Y

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        dXp, dK = np.zeros_like(self.Xp), np.zeros_like(self.W)
        K = self.kernel()
        for n in range(dY.shape[0]):
            for f in range(K.shape[0]):
                for i, j, rows, cols in self.windows(dY.shape[0]):
                    dXp[n, :, rows, cols] += dY[n, f, i, j] * K[f]
                    dK[f] += dY[n, f, i, j] * self.Xp[n, :, rows, cols]
        ph, pw = self.pad
        H, W = dXp.shape[2] - 2 * ph, dXp.shape[3] - 2 * pw
        dW = dK[:, :, ::-1, ::-1] if self.flip else dK
        db = dY.sum(axis=(0, 2, 3))[:, None]
        return dXp[:, :, ph : ph + H, pw : pw + W], {"W": dW, "b": db}


@pytest.mark.spec("TEST-LAYER", "TEST-TOL-ABS", "DENSE-FWD", "DENSE-DX", "DENSE-DW", "DENSE-DB")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_correct_batch_first_dense_passes(dtype: Any) -> None:
    check_layer("Dense", BatchFirstDense, layout="batch_first", dtype=dtype, max_examples=20)


@pytest.mark.spec("TEST-LAYER", "CONV-FWD", "CONV-DX", "CONV-DW", "CONV-DB")
def test_a_correct_loop_based_nchw_conv_passes() -> None:
    check_layer("Conv2D", LoopConv, layout="batch_first", configs=PLAIN, max_examples=20)


@pytest.mark.spec("TEST-LAYER")
def test_a_batch_last_implementation_given_batch_first_is_rejected() -> None:
    # the right math in the wrong layout: the kit names the shapes it compared
    with pytest.raises(MismatchError, match="shape"):
        check_layer("Dense", BatchFirstDense, layout="batch_last", max_examples=20)


class Float32Dense(BatchFirstDense):
    """Right equations, computed in float32 whatever it is given."""

    def forward(self, X: FloatArray) -> FloatArray:
        self.W, self.b = self.W.astype(np.float32), self.b.astype(np.float32)
        return super().forward(X.astype(np.float32))


@pytest.mark.spec("TEST-TOL", "TEST-TOL-ABS")
def test_the_tolerance_follows_the_dtype_under_test() -> None:
    # float32 rounding is within float32's bound and far outside float64's
    check_layer("Dense", Float32Dense, layout="batch_first", dtype=np.float32, max_examples=20)
    with pytest.raises(MismatchError, match=r"u = 1.11e-16 \(float64\)"):
        check_layer("Dense", Float32Dense, layout="batch_first", max_examples=20)


class MaskDropout:
    """Inverted dropout with the kit's mask: Y = X ⊙ keep / (1 - p)."""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.scale = config["keep"] / (1.0 - config["p_drop"])

    def forward(self, X: FloatArray) -> FloatArray:
        return X * self.scale

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        return dY * self.scale, {}


class UnscaledDropout(MaskDropout):
    """Wrong: forgets the 1/(1 - p) of inverted dropout."""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.scale = config["keep"] * 1.0


@pytest.mark.spec("TEST-LAYER", "DROPOUT-FWD", "DROPOUT-BWD")
def test_dropout_is_checked_with_the_mask_the_kit_gives() -> None:
    check_layer("Dropout", MaskDropout, layout="batch_first", max_examples=20)
    # on the minimal input X = 0 the missing scale shows in dX first
    with pytest.raises(MismatchError, match=r"dX disagrees with refnn \(spec DROPOUT-BWD\)"):
        check_layer("Dropout", UnscaledDropout, layout="batch_first", max_examples=20)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "Conv3D"}, ValueError, r"name must be one of \[.*'Conv2D'"),
        ({"layout": "NCHW"}, ValueError, "layout must be one of 'batch_last', 'batch_first'"),
        ({"dtype": "float16"}, TypeError, "dtype must be float64 or float32"),
        ({"max_examples": 0}, ValueError, "max_examples must be >= 1"),
    ],
)
def test_bad_arguments_are_refused_before_any_example(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    arguments: dict[str, Any] = {"name": "Dense", "make_impl": BatchFirstDense} | kwargs
    with pytest.raises(error, match=match):
        check_layer(**arguments)


@pytest.mark.spec("TEST-LAYER")
def test_an_implementation_that_raises_is_reported_with_the_example() -> None:
    def broken(config: dict[str, Any], params: dict[str, FloatArray]) -> BatchFirstDense:
        raise KeyError("W_ih")

    with pytest.raises(MismatchError, match=r"constructor \(make_impl\) raised KeyError"):
        check_layer("Dense", broken, max_examples=5)
