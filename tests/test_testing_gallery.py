"""The gallery: wrong implementations the kit must reject, each with the message it gives.

Each is a plausible mistake next to a correct implementation written independently from the
same equations (which the kit accepts): the failure names the minimal configuration, the
quantity, its spec ID and, for optimizers, the convention the implementation follows instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from refnn import GRU, LSTM
from refnn.testing import MismatchError, check_layer, check_loss, check_optimizer
from refnn.types import FloatArray
from tests.test_testing import PLAIN, BatchFirstDense, LoopConv

Grads = Mapping[str, FloatArray]


def rejection(check: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(MismatchError) as info:
        check(*args, max_examples=40, **kwargs)
    return str(info.value)


class FlippedConv(LoopConv):
    """Wrong: a true convolution (kernel flipped), as in a signal-processing textbook."""

    flip = True


class DenseExtraMean(BatchFirstDense):
    """Wrong: divides db by m once more (the 1/m already entered in the loss's backward)."""

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        dX, grads = super().backward(dY)
        return dX, {**grads, "b": grads["b"] / dY.shape[0]}


class NumpySoftmax:
    """Batch-first softmax over the class axis (axis 1 of m x k), stable form."""

    axis = 1

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.A: FloatArray = np.zeros(0)

    def forward(self, X: FloatArray) -> FloatArray:
        E = np.exp(X - X.max(axis=self.axis, keepdims=True))
        self.A = E / E.sum(axis=self.axis, keepdims=True)
        return self.A

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        A = self.A
        return A * (dY - (A * dY).sum(axis=self.axis, keepdims=True)), {}


class SoftmaxWrongAxis(NumpySoftmax):
    """Wrong: normalises over the examples (axis 0 of a batch-first array)."""

    axis = 0


class NumpyMaxPool:
    """Batch-first max pooling: each window's gradient goes to its (unique) maximum."""

    transposed = False

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.k, self.s = config["kernel_size"], config["stride"]
        self.X: FloatArray = np.zeros(0)
        self.where: list[tuple[int, int, Any]] = []

    def forward(self, X: FloatArray) -> FloatArray:
        (kh, kw), (sh, sw) = self.k, self.s
        m, C, H, W = X.shape
        Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
        Y, self.X, self.where = np.zeros((m, C, Ho, Wo)), X, []
        for i in range(Ho):
            for j in range(Wo):
                win = X[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                flat = (win.transpose(0, 1, 3, 2) if self.transposed else win).reshape(m, C, -1)
                Y[:, :, i, j] = flat.max(axis=2)
                self.where.append((i, j, flat.argmax(axis=2)))
        return Y

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        (_, kw), (sh, sw) = self.k, self.s
        dX = np.zeros_like(self.X)
        n, c = np.indices(dY.shape[:2])
        for i, j, idx in self.where:
            r, q = np.divmod(idx, kw)  # row-major unravel
            np.add.at(dX, (n, c, i * sh + r, j * sw + q), dY[:, :, i, j])
        return dX, {}


class MaxPoolWrongElement(NumpyMaxPool):
    """Wrong: argmax of the window in column-major order, unravelled row-major."""

    transposed = True


class MaxPoolEveryTie(NumpyMaxPool):
    """Wrong: every element equal to the window's maximum gets the gradient (a tied window's dX
    sums to 2 where it must sum to 1), as public code does with ``mask = x == x.max()``."""

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        (kh, kw), (sh, sw) = self.k, self.s
        dX = np.zeros_like(self.X)
        for i, j, _ in self.where:
            win = self.X[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            mask = win == win.max(axis=(2, 3), keepdims=True)
            dX[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += (
                mask * dY[:, :, i, j, None, None]
            )
        return dX, {}


class SwappedGatesLSTM:
    """Wrong: reads the input gate's rows of W and b as the forget gate's and vice versa."""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        h = config["n_hidden"]
        self.perm = np.r_[h : 2 * h, 0:h, 2 * h : 4 * h]  # (f, i, g, o) instead of (i, f, g, o)
        self.layer = LSTM(config["n_in"], h, rng=np.random.default_rng(0))
        self.layer.params = {k: v[self.perm] for k, v in params.items()}

    def forward(self, X: FloatArray, h0: FloatArray, c0: FloatArray) -> FloatArray:
        return self.layer.forward(X, h0=h0, c0=c0)

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        dX = self.layer.backward(dY)
        grads = {k: g[self.perm] for k, g in self.layer.grads.items()}
        return dX, {**grads, "h0": self.layer.input_grads["h0"], "c0": self.layer.input_grads["c0"]}


class GRUResetOutsideBias:
    """Wrong: the backward of n = tanh(W_in x + b_in + r ⊙ (W_hn h) + b_hn), the reset gate
    outside the product with b_hn (its gradient then misses the factor r) on PyTorch's forward."""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.layer = GRU(config["n_in"], config["n_hidden"], rng=np.random.default_rng(0))
        self.layer.params = {k: v.copy() for k, v in params.items()}

    def forward(self, X: FloatArray, h0: FloatArray) -> FloatArray:
        return self.layer.forward(X, h0=h0)

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        dX = self.layer.backward(dY)
        grads = {k: g.copy() for k, g in self.layer.grads.items()}
        n = self.layer.n_hidden
        grads["b_hh"][2 * n :] = grads["b_ih"][2 * n :]
        return dX, {**grads, "h0": self.layer.input_grads["h0"]}


class NumpyBCE:
    """Batch-first binary cross-entropy, J = -(1/m) Σ [y log a + (1 - y) log(1 - a)]."""

    mean = True

    def __init__(self, config: dict[str, Any]) -> None:
        self.A: FloatArray = np.zeros(0)
        self.Y: FloatArray = np.zeros(0)

    def forward(self, A: FloatArray, Y: FloatArray) -> float:
        self.A, self.Y = A, Y
        return float(-(Y * np.log(A) + (1 - Y) * np.log(1 - A)).sum() / A.shape[0])

    def backward(self) -> FloatArray:
        A, Y = self.A, self.Y
        dA = -Y / A + (1 - Y) / (1 - A)
        return dA / A.shape[0] if self.mean else dA


class BCEMissingMean(NumpyBCE):
    """Wrong: dA without the 1/m (the cost has it)."""

    mean = False


class NumpyOptimizer:
    """Momentum and Adam in numpy; ``form`` picks refnn's or another convention."""

    form = "refnn"

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.c, self.theta, self.t = config, params, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        c, self.t = self.c, self.t + 1
        for k, g in grads.items():
            if "beta" in c:  # momentum
                damp = 1.0 if self.form == "torch" else 1.0 - c["beta"]
                self.m[k] = c["beta"] * self.m[k] + damp * g
                self.theta[k] = self.theta[k] - c["lr"] * self.m[k]
                continue
            self.m[k] = c["beta1"] * self.m[k] + (1 - c["beta1"]) * g
            self.v[k] = c["beta2"] * self.v[k] + (1 - c["beta2"]) * g * g
            m_hat = self.m[k] / (1 - c["beta1"] ** self.t)
            v_hat = self.v[k] / (1 - c["beta2"] ** self.t)
            if self.form == "eps inside":
                self.theta[k] = self.theta[k] - c["lr"] * m_hat / np.sqrt(v_hat + c["eps"])
            else:
                self.theta[k] = self.theta[k] - c["lr"] * m_hat / (np.sqrt(v_hat) + c["eps"])
        return self.theta


class NumpyHinge:
    """Batch-first multiclass hinge (m x k), J = (1/m) Σ_i Σ_{j != y_i} max(0, 1 + a_j - a_y)."""

    count_correct = False

    def __init__(self, config: dict[str, Any]) -> None:
        self.margin = config["margin"]
        self.dA: FloatArray = np.zeros(0)

    def forward(self, A: FloatArray, Y: FloatArray) -> float:
        m = A.shape[0]
        correct = (A * Y).sum(axis=1, keepdims=True)
        terms = np.maximum(0.0, self.margin + A - correct)
        active = (terms > 0) & ((Y == 0) | self.count_correct)
        self.dA = (active - Y * active.sum(axis=1, keepdims=True)) / m
        return float(np.where(active, terms, 0.0).sum() / m)

    def backward(self) -> FloatArray:
        return self.dA


class HingeCountingCorrectClass(NumpyHinge):
    """Wrong: sums over every class j, the correct one too (its term is always the margin)."""

    count_correct = True


class NumpyRMSprop:
    """RMSprop in numpy; ``inside`` puts ε under the square root (TensorFlow's raw op)."""

    inside = False

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.c, self.theta = config, params
        self.s = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        c = self.c
        for k, g in grads.items():
            self.s[k] = c["beta"] * self.s[k] + (1 - c["beta"]) * g * g
            root = np.sqrt(self.s[k] + c["eps"]) if self.inside else np.sqrt(self.s[k]) + c["eps"]
            self.theta[k] = self.theta[k] - c["lr"] * g / root
        return self.theta


class EpsInsideRMSprop(NumpyRMSprop):
    inside = True


class TorchFormMomentum(NumpyOptimizer):
    form = "torch"


class EpsInsideAdam(NumpyOptimizer):
    form = "eps inside"


@pytest.mark.spec("TEST-LAYER", "CONV-FWD", "CONV-DW")
def test_a_flipped_kernel_is_rejected_with_a_minimal_kernel() -> None:
    message = rejection(check_layer, "Conv2D", FlippedConv, layout="batch_first", configs=PLAIN)
    # the first quantity it changes on the minimal input: Y, or dW when that input is zero
    assert re.search(r"(Y|dW) disagrees with refnn \(spec CONV-(FWD|DW)\)", message), message
    # shrunk to the smallest kernel a flip changes: two taps along one axis
    assert "kernel_size=[1, 2]" in message or "kernel_size=[2, 1]" in message
    assert "in_channels=1, out_channels=1" in message


@pytest.mark.spec("TEST-LAYER", "DENSE-DB")
def test_an_extra_one_over_m_is_rejected_at_db_with_two_examples() -> None:
    message = rejection(check_layer, "Dense", DenseExtraMean, layout="batch_first")
    assert "db disagrees with refnn (spec DENSE-DB)" in message
    assert "n_in=1, n_out=1" in message and "X (1, 2)" in message


@pytest.mark.spec("TEST-LOSS", "BCE-COST", "BCE-GRAD", "TEST-TOL-TERMS")
def test_a_numpy_bce_passes_and_one_missing_its_one_over_m_is_rejected() -> None:
    check_loss("BinaryCrossEntropy", NumpyBCE, layout="batch_first", max_examples=30)
    message = rejection(check_loss, "BinaryCrossEntropy", BCEMissingMean, layout="batch_first")
    assert "dA disagrees with refnn (spec BCE-GRAD)" in message
    assert "A (1, 2)" in message  # one output, two examples: the smallest m a 1/m shows in


@pytest.mark.spec("TEST-LAYER", "TEST-TOL-TERMS", "SOFTMAX-FWD", "SOFTMAX-BWD")
def test_a_numpy_softmax_passes_and_one_over_the_wrong_axis_is_rejected() -> None:
    check_layer("Softmax", NumpySoftmax, layout="batch_first", max_examples=30)
    message = rejection(check_layer, "Softmax", SoftmaxWrongAxis, layout="batch_first")
    assert "Y disagrees with refnn (spec SOFTMAX-FWD)" in message


@pytest.mark.spec("TEST-LAYER", "MAXPOOL-FWD", "MAXPOOL-BWD")
def test_a_numpy_max_pool_passes_and_one_routing_to_the_wrong_element_is_rejected() -> None:
    check_layer("MaxPool2D", NumpyMaxPool, layout="batch_first", max_examples=30)
    message = rejection(check_layer, "MaxPool2D", MaxPoolWrongElement, layout="batch_first")
    assert "dX disagrees with refnn (spec MAXPOOL-BWD)" in message
    assert "kernel_size=[2, 2]" in message  # the smallest window whose two orders differ


@pytest.mark.spec("TEST-LAYER", "MAXPOOL-BWD")
def test_a_max_pool_routing_to_every_tied_maximum_is_rejected_on_a_tied_window() -> None:
    message = rejection(check_layer, "MaxPool2D", MaxPoolEveryTie, layout="batch_first")
    assert "dX disagrees with refnn (spec MAXPOOL-BWD)" in message
    # the minimal example is a window of equal values: all zeros, refnn's dX is one 1
    assert "X = np.array([[[[0.0" in message and "implementation 1.0, refnn 0.0" in message


@pytest.mark.spec("TEST-LAYER", "LSTM-HIDDEN", "LSTM-DB")
def test_swapped_lstm_gates_are_rejected() -> None:
    message = rejection(check_layer, "LSTM", SwappedGatesLSTM)
    # the minimal input is zero: the gates still differ through b, seen first in db or Y
    assert re.search(r"(Y|db) disagrees with refnn \(spec [A-Z, -]*LSTM-(HIDDEN|DB)\)", message)
    assert "n_in=1, n_hidden=1" in message


@pytest.mark.spec("TEST-LAYER", "GRU-DB")
def test_a_gru_with_the_reset_gate_outside_the_hidden_bias_is_rejected() -> None:
    message = rejection(check_layer, "GRU", GRUResetOutsideBias)
    assert re.search(r"db_hh disagrees with refnn \(spec [A-Z, -]*GRU-DB", message), message
    assert "new gate n" in message  # the row block it is wrong in
    assert "n_in=1, n_hidden=1" in message


@pytest.mark.spec("TEST-OPTIM", "OPT-MOMENTUM")
def test_pytorch_form_momentum_is_rejected_and_named() -> None:
    check_optimizer("Momentum", NumpyOptimizer, max_examples=30)
    message = rejection(check_optimizer, "Momentum", TorchFormMomentum)
    assert "(spec OPT-MOMENTUM)" in message and "after step 1" in message
    assert "diagnosis: the implementation follows PyTorch's momentum" in message


@pytest.mark.spec("TEST-OPTIM", "ADAM-STEP", "ADAM-MOMENTS", "ADAM-BIAS")
def test_adam_with_eps_inside_the_square_root_is_rejected_and_named() -> None:
    check_optimizer("Adam", NumpyOptimizer, max_examples=30)
    message = rejection(check_optimizer, "Adam", EpsInsideAdam)
    assert "(spec ADAM-STEP)" in message
    assert "diagnosis: the implementation follows ε inside the square root" in message


@pytest.mark.spec("TEST-LOSS", "HINGE-COST", "HINGE-GRAD")
def test_a_numpy_hinge_passes_and_one_counting_the_correct_class_is_rejected() -> None:
    check_loss("MulticlassHinge", NumpyHinge, layout="batch_first", max_examples=30)
    message = rejection(
        check_loss, "MulticlassHinge", HingeCountingCorrectClass, layout="batch_first"
    )
    # the correct class's term is the margin, a constant: the cost shows it, dA cannot
    assert "cost disagrees with refnn (spec HINGE-COST)" in message
    assert "dA disagrees" not in message


@pytest.mark.spec("TEST-OPTIM", "OPT-RMSPROP")
def test_rmsprop_with_eps_inside_the_square_root_is_rejected_and_named() -> None:
    check_optimizer("RMSprop", NumpyRMSprop, max_examples=20)
    message = rejection(check_optimizer, "RMSprop", EpsInsideRMSprop)
    assert "(spec OPT-RMSPROP)" in message
    assert "diagnosis: the implementation follows ε inside the square root" in message
    check_optimizer("RMSprop", EpsInsideRMSprop, conventions={"eps": "inside"}, max_examples=10)


class NumpyBatchNorm:
    """Batch-last batch norm in training, written from the equations: each feature (row of the
    (n, rest) view) standardised over its entries, the backward through μ and σ²."""

    simplified = False

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.eps = config["eps"]
        self.gamma, self.beta = params["gamma"].copy(), params["beta"].copy()
        self.xhat = self.inv_std = np.zeros(0)

    def forward(self, X: FloatArray) -> FloatArray:
        X2 = X.reshape(X.shape[0], -1)
        mu = X2.mean(axis=1, keepdims=True)
        self.inv_std = 1.0 / np.sqrt(((X2 - mu) ** 2).mean(axis=1, keepdims=True) + self.eps)
        self.xhat = (X2 - mu) * self.inv_std
        return (self.gamma * self.xhat + self.beta).reshape(X.shape)

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        d = dY.reshape(dY.shape[0], -1)
        dxhat = self.gamma * d
        if self.simplified:  # the statistics treated as constants
            dX = dxhat * self.inv_std
        else:
            dX = self.inv_std * (
                dxhat
                - dxhat.mean(axis=1, keepdims=True)
                - self.xhat * (dxhat * self.xhat).mean(axis=1, keepdims=True)
            )
        grads = {
            "gamma": (d * self.xhat).sum(axis=1, keepdims=True),
            "beta": d.sum(axis=1, keepdims=True),
        }
        return dX.reshape(dY.shape), grads


class SimplifiedBackwardBatchNorm(NumpyBatchNorm):
    """Wrong: dX = γ dY / sqrt(σ² + ε), the backward that drops the terms through the batch
    mean and variance (right only at inference, where the statistics are constants)."""

    simplified = True


class LayerNormOverTheBatch:
    """Wrong: a LayerNorm that standardises each feature over the examples (batch norm's sets),
    not each example over its features."""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.inner = NumpyBatchNorm(config, params)

    def forward(self, X: FloatArray) -> FloatArray:
        return self.inner.forward(X)

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        return self.inner.backward(dY)


@pytest.mark.spec("TEST-LAYER", "NORM-DX")
def test_a_numpy_batch_norm_passes_and_its_simplified_backward_is_rejected_at_dx() -> None:
    check_layer("BatchNorm", NumpyBatchNorm, max_examples=30)
    message = rejection(check_layer, "BatchNorm", SimplifiedBackwardBatchNorm)
    assert "dX disagrees with refnn (spec NORM-DX" in message, message
    assert "dgamma disagrees" not in message and "Y disagrees" not in message


@pytest.mark.spec("TEST-LAYER", "LN-FWD")
def test_a_layer_norm_over_the_batch_is_rejected_at_y_or_dx() -> None:
    """The minimal example may have equal entries (Y agrees there, its derivative does not):
    the headline is Y (LN-FWD) or dX (NORM-DX), both the mistake's."""
    message = rejection(check_layer, "LayerNorm", LayerNormOverTheBatch)
    headline = message.splitlines()[0]
    assert re.search(r"(Y|dX) disagrees with refnn \(spec (LN-FWD|NORM-DX)", headline), message


class NumpyEmbedding:
    """Batch-first token indices X (m, T) to vectors (m, T, d), as course code writes it: a
    table lookup W.T[X], and dW by scatter-add (np.add.at) so repeated tokens accumulate."""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.W = params["W"]  # (dim, n_tokens), refnn's layout
        self.X: np.ndarray[Any, Any] = np.zeros(0, dtype=np.intp)

    def forward(self, X: np.ndarray[Any, Any]) -> FloatArray:
        self.X = X
        out: FloatArray = self.W.T[X]
        return out

    def backward(self, dY: FloatArray) -> tuple[FloatArray, Grads]:
        dWT = np.zeros(self.W.T.shape)
        self.scatter(dWT, dY)
        return np.zeros(self.X.shape), {"W": dWT.T}

    def scatter(self, dWT: FloatArray, dY: FloatArray) -> None:
        np.add.at(dWT, self.X, dY)


class OverwritingEmbedding(NumpyEmbedding):
    """Wrong: dW[X] = dY, so a repeated token keeps only its last position's gradient."""

    def scatter(self, dWT: FloatArray, dY: FloatArray) -> None:
        dWT[self.X] = dY


@pytest.mark.spec("TEST-LAYER", "EMBED-DW")
def test_a_numpy_embedding_passes_and_one_overwriting_repeated_tokens_is_rejected() -> None:
    check_layer("Embedding", NumpyEmbedding, layout="batch_first", max_examples=30)
    message = rejection(check_layer, "Embedding", OverwritingEmbedding, layout="batch_first")
    assert "dW disagrees with refnn (spec EMBED-DW)" in message, message
    assert "n_tokens=1" in message, message  # the minimal repeat: one token, two positions


class CourseTemporalSoftmaxLoss:
    """Batch-first logits (m, T, k) and labels (m, T), as the course's temporal softmax loss:
    summed over time, averaged over the minibatch."""

    divide_by_tokens = False

    def __init__(self, config: dict[str, Any]) -> None:
        self.dA: FloatArray = np.zeros(0)

    def forward(self, A: FloatArray, Y: np.ndarray[Any, Any]) -> float:
        m, T = A.shape[:2]
        shifted = A - A.max(axis=2, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
        picked = np.take_along_axis(log_p, Y[:, :, None], axis=2)
        N = m * T if self.divide_by_tokens else m
        self.dA = np.exp(log_p)
        np.put_along_axis(
            self.dA, Y[:, :, None], np.take_along_axis(self.dA, Y[:, :, None], 2) - 1, 2
        )
        self.dA /= N
        return float(-picked.sum() / N)

    def backward(self) -> FloatArray:
        return self.dA


class PerTokenTemporalSoftmaxLoss(CourseTemporalSoftmaxLoss):
    """Another convention, not declared: divided by the number of tokens (PyTorch's mean)."""

    divide_by_tokens = True


@pytest.mark.spec("TEST-LOSS", "TSCE-COST", "TSCE-GRAD")
def test_a_course_temporal_softmax_loss_passes_and_a_per_token_one_is_rejected() -> None:
    name = "TemporalSoftmaxCrossEntropy"
    check_loss(name, CourseTemporalSoftmaxLoss, layout="batch_first", max_examples=30)
    message = rejection(check_loss, name, PerTokenTemporalSoftmaxLoss, layout="batch_first")
    assert "cost disagrees with refnn (spec TSCE-COST)" in message, message
