"""Proof that ``make check`` bites: wrong backward functions are rejected, right ones accepted.

Each mutant below is a plausible bug in one of refnn's own backward equations; the checker must
reject every one. The correct functions, kinks included, must pass with no false alarm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn.activations import relu, relu_backward, sigmoid, sigmoid_backward
from refnn.conv import ConvCache, col2im, conv_backward, conv_forward
from refnn.dense import dense_backward, dense_forward
from refnn.gradcheck import check_grad
from refnn.losses import bce_backward, bce_cost, bce_logits_backward, bce_logits_cost
from tests.strategies import labels, normal

Arr = np.ndarray


@dataclass(frozen=True)
class Candidate:
    """A scalar function of named arrays with a claimed gradient."""

    name: str
    f: Callable[..., float]
    grad: Callable[..., Sequence[Arr]]
    inputs: dict[str, Arr]
    wrt: tuple[str, ...]


def _dense_candidate(
    name: str, backward: Callable[[Arr, Arr, Arr], Sequence[Arr]], n: int, m: int, seed: int
) -> Candidate:
    """J = Σ U ⊙ (W X + b); the claimed gradient comes from ``backward(dZ=U, X, W)``."""
    U = normal(seed + 3, n, m)

    def f(X: Arr, W: Arr, b: Arr) -> float:
        return float(np.sum(U * dense_forward(X, W, b)))

    def grad(X: Arr, W: Arr, b: Arr) -> Sequence[Arr]:
        return backward(U, X, W)

    inputs = {"X": normal(seed, n, m), "W": normal(seed + 1, n, n), "b": normal(seed + 2, n, 1)}
    return Candidate(name, f, grad, inputs, ("X", "W", "b"))


def _right_dense(dZ: Arr, X: Arr, W: Arr) -> Sequence[Arr]:
    return list(dense_backward(dZ, W, X))


def _bce_candidate(
    name: str, grad_fn: Callable[[Arr, Arr], Arr], k: int, m: int, seed: int
) -> Candidate:
    Y = labels(seed, k, m)

    def f(A: Arr) -> float:
        return bce_cost(A, Y)

    def grad(A: Arr) -> Sequence[Arr]:
        return [grad_fn(A, Y)]

    A = np.random.default_rng(seed).uniform(0.05, 0.95, (k, m))
    return Candidate(name, f, grad, {"A": A}, ("A",))


def _activation_candidate(
    name: str, fwd: Callable[[Arr], Arr], bwd: Callable[[Arr, Arr], Arr], Z: Arr, seed: int
) -> Candidate:
    U = normal(seed + 5, *Z.shape)

    def f(Z_: Arr) -> float:
        return float(np.sum(U * fwd(Z_)))

    def grad(Z_: Arr) -> Sequence[Arr]:
        return [bwd(U, Z_)]

    return Candidate(name, f, grad, {"Z": Z}, ("Z",))


def _conv_candidate(
    name: str, wrong_geometry: Callable[[ConvCache], ConvCache] | None, seed: int
) -> Candidate:
    """J = Σ U ⊙ conv(X; W, b) with stride 2, padding 1; dX from ``col2im`` on a geometry."""
    stride, padding = (2, 2), (1, 1)
    X, W, b = normal(seed, 2, 5, 5, 2), normal(seed + 1, 3, 2, 3, 3), normal(seed + 2, 3, 1)
    U = normal(seed + 3, *conv_forward(X, W, b, stride=stride, padding=padding)[0].shape)

    def f(X_: Arr, W_: Arr, b_: Arr) -> float:
        return float(np.sum(U * conv_forward(X_, W_, b_, stride=stride, padding=padding)[0]))

    def grad(X_: Arr, W_: Arr, b_: Arr) -> Sequence[Arr]:
        cache = conv_forward(X_, W_, b_, stride=stride, padding=padding)[1]
        g = conv_backward(U, W_, cache)
        if wrong_geometry is None:
            return [g.dX, g.dW, g.db]
        dcol = W_.reshape(W_.shape[0], -1).T @ U.reshape(U.shape[0], -1)
        bad = wrong_geometry(cache)
        return [col2im(dcol, bad.geo, bad.m), g.dW, g.db]

    return Candidate(name, f, grad, {"X": X, "W": W, "b": b}, ("X", "W", "b"))


def _shift(
    *, stride: tuple[int, int] | None = None, padding: tuple[int, int] | None = None
) -> Callable[[ConvCache], ConvCache]:
    """A col2im on the wrong geometry: the same output size, patches put back elsewhere."""

    def wrong(c: ConvCache) -> ConvCache:
        geo = replace(c.geo, stride=stride or c.geo.stride, padding=padding or c.geo.padding)
        return replace(c, geo=geo)

    return wrong


def mutants(seed: int = 0) -> list[Candidate]:
    """Deliberately wrong backward functions, each a bug seen in real code."""
    n, m = 3, 3  # square W and n == m so that the wrong formulas still have the right shapes
    out = [
        _dense_candidate(
            "sign flip in dW",
            lambda dZ, X, W: [W.T @ dZ, -(dZ @ X.T), dZ.sum(1, keepdims=True)],
            n,
            m,
            seed,
        ),
        _dense_candidate(
            "missing transpose in dX",
            lambda dZ, X, W: [W @ dZ, dZ @ X.T, dZ.sum(1, keepdims=True)],
            n,
            m,
            seed,
        ),
        _dense_candidate(
            "missing transpose in dW",
            lambda dZ, X, W: [W.T @ dZ, dZ @ X, dZ.sum(1, keepdims=True)],
            n,
            m,
            seed,
        ),
        _dense_candidate(
            "db summed over the wrong axis",
            lambda dZ, X, W: [W.T @ dZ, dZ @ X.T, dZ.sum(0, keepdims=True).T],
            n,
            m,
            seed,
        ),
        _dense_candidate(
            "right only for m = 1 (mean, not sum)",
            lambda dZ, X, W: [W.T @ dZ, dZ @ X.T / m, dZ.sum(1, keepdims=True)],
            n,
            m,
            seed,
        ),
        _dense_candidate(
            "right only for m = 1 (first example only)",
            lambda dZ, X, W: [W.T @ dZ, dZ[:, :1] @ X[:, :1].T, dZ.sum(1, keepdims=True)],
            n,
            m,
            seed,
        ),
        _bce_candidate("BCE: lost 1/m", lambda A, Y: (A - Y) / (A * (1 - A)), 2, 4, seed),
        _bce_candidate("BCE: doubled 1/m", lambda A, Y: (A - Y) / (A * (1 - A)) / 16, 2, 4, seed),
        _bce_candidate("BCE: sign flip", lambda A, Y: (Y - A) / (A * (1 - A)) / 4, 2, 4, seed),
        _bce_candidate(
            "BCE: logits gradient used for probabilities", lambda A, Y: (A - Y) / 4, 2, 4, seed
        ),
        _activation_candidate(
            "sigmoid with tanh's derivative",
            sigmoid,
            lambda dA, Z: dA * (1 - sigmoid(Z) ** 2),
            normal(seed, 3, 4),
            seed,
        ),
        _activation_candidate(
            "sigmoid derivative from Z, not A",
            sigmoid,
            lambda dA, Z: sigmoid_backward(dA, Z),
            normal(seed, 3, 4),
            seed,
        ),
        _activation_candidate(
            "ReLU passing the gradient everywhere", relu, lambda dA, Z: dA, normal(seed, 3, 4), seed
        ),
        _activation_candidate(
            "ReLU with the mask inverted",
            relu,
            lambda dA, Z: dA * (Z < 0),
            normal(seed, 3, 4),
            seed,
        ),
        _conv_candidate("conv dX: stride off by one", _shift(stride=(1, 2)), seed),
        _conv_candidate("conv dX: padding off by one", _shift(padding=(2, 1)), seed),
        _conv_candidate("conv dX: padding forgotten", _shift(padding=(0, 0)), seed),
    ]
    return out


def correct(seed: int, n: int, m: int) -> list[Candidate]:
    """The real backward functions, with ReLU inputs placed on and near the kink."""
    Z = normal(seed, n, m)
    Z.flat[::2] = 0.0  # exact kinks
    Z.flat[1::3] = 1e-9  # within any sensible step of the kink
    Y = labels(seed, n, m)
    return [
        _dense_candidate("dense", _right_dense, n, m, seed),
        _bce_candidate("bce", bce_backward, n, m, seed),
        _activation_candidate(
            "sigmoid",
            sigmoid,
            lambda dA, Z_: sigmoid_backward(dA, sigmoid(Z_)),
            normal(seed, n, m, scale=3.0),
            seed,
        ),
        _activation_candidate("relu", relu, relu_backward, Z, seed),
        Candidate(
            "bce logits",
            lambda Z_: bce_logits_cost(Z_, Y),
            lambda Z_: [bce_logits_backward(Z_, Y)],
            {"Z": normal(seed, n, m, scale=3.0)},
            ("Z",),
        ),
    ]


@pytest.mark.spec("GC-TOL")
@pytest.mark.parametrize("candidate", mutants(), ids=lambda c: c.name)
def test_every_mutant_is_rejected(candidate: Candidate) -> None:
    result = check_grad(candidate.f, candidate.grad, candidate.inputs, wrt=candidate.wrt)
    assert not result.passed, f"the checker accepted a wrong gradient: {candidate.name}"
    # rejected as WRONG, not merely 'inconclusive' (which a checker judging nothing would say)
    assert "WRONG" in {a.verdict for a in result.arrays}, result.format()


@pytest.mark.spec("GC-TOL", "GC-KINK")
@settings(max_examples=1000)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), m=st.integers(1, 4))
def test_correct_gradients_raise_no_false_alarm(seed: int, n: int, m: int) -> None:
    for c in correct(seed, n, m):
        result = check_grad(c.f, c.grad, c.inputs, wrt=c.wrt)
        assert result.passed, f"false alarm on {c.name}:\n{result.format()}"


@pytest.mark.spec("GC-TOL", "CONV-DX", "CONV-DW", "CONV-DB")
@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_correct_convolution_passes(seed: int) -> None:
    c = _conv_candidate("conv", None, seed)
    result = check_grad(c.f, c.grad, c.inputs, wrt=c.wrt)
    assert result.passed, result.format()
