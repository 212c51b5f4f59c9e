"""Gradient descent and momentum: OPT-GD, OPT-MOMENTUM."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn import Dense, GradientDescent, Momentum, Sequential
from tests.strategies import normal, seeds

lrs = st.floats(1e-4, 1.0)
betas = st.floats(0.0, 0.99)


def _model(seed: int) -> Sequential:
    model = Sequential(
        [
            Dense(3, 2, rng=np.random.default_rng(seed)),
            Dense(2, 1, rng=np.random.default_rng(seed + 1)),
        ]
    )
    model.forward(normal(seed, 3, 4))
    model.backward(normal(seed + 2, 1, 4))
    return model


@pytest.mark.spec("OPT-GD")
@given(seed=seeds, lr=lrs)
def test_gd_step(seed: int, lr: float) -> None:
    model = _model(seed)
    before = {p.name: (p.value.copy(), p.grad.copy()) for p in model.parameters()}
    GradientDescent(lr).step(model)
    for p in model.parameters():
        value, grad = before[p.name]
        np.testing.assert_allclose(p.value, value - lr * grad, rtol=1e-15, atol=1e-15)


@pytest.mark.spec("OPT-MOMENTUM")
@given(seed=seeds, lr=lrs, beta=betas)
def test_momentum_matches_the_recurrence(seed: int, lr: float, beta: float) -> None:
    model = _model(seed)
    opt = Momentum(lr, beta)
    value = {p.name: p.value.copy() for p in model.parameters()}
    v = {name: np.zeros_like(a) for name, a in value.items()}
    for step in range(4):
        for p in model.parameters():  # a fresh gradient each step
            p.grad[...] = normal(seed + 10 * step, *p.grad.shape)
        grads = {p.name: p.grad.copy() for p in model.parameters()}
        opt.step(model)
        for name in value:
            v[name] = beta * v[name] + (1 - beta) * grads[name]
            value[name] = value[name] - lr * v[name]
        for p in model.parameters():
            np.testing.assert_allclose(p.value, value[p.name], rtol=1e-12, atol=1e-14)


@pytest.mark.spec("OPT-MOMENTUM", "OPT-GD")
@given(seed=seeds, lr=lrs)
def test_momentum_with_beta_zero_is_gd(seed: int, lr: float) -> None:
    a, b = _model(seed), _model(seed)
    for _ in range(3):
        Momentum(lr, 0.0).step(a)
        GradientDescent(lr).step(b)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)


@pytest.mark.spec("OPT-MOMENTUM")
def test_state_is_per_parameter_never_shared() -> None:
    # two layers whose parameters carry the same names ("W", "b") must not share velocities
    one, two = Dense(2, 2, rng=np.random.default_rng(0)), Dense(2, 2, rng=np.random.default_rng(1))
    for layer, g in ((one, 1.0), (two, -1.0)):
        layer.forward(np.ones((2, 1)))
        layer.backward(np.ones((2, 1)))
        layer.grads = {k: np.full_like(v, g) for k, v in layer.params.items()}
    opt = Momentum(0.1, 0.5)
    w1, w2 = one.params["W"].copy(), two.params["W"].copy()
    opt.step(one)
    opt.step(two)
    np.testing.assert_allclose(one.params["W"], w1 - 0.1 * 0.5 * 1.0)
    np.testing.assert_allclose(two.params["W"], w2 + 0.1 * 0.5 * 1.0)


def test_optimizer_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"beta must be in \[0.0, 1.0\)"):
        Momentum(0.1, 1.0)
    with pytest.raises(ValueError, match="lr must be"):
        GradientDescent(-1.0)
    with pytest.raises(ValueError, match=r"lr must be > 0, got 0\.0"):
        GradientDescent(0.0)
    with pytest.raises(TypeError, match="lr must be a real number"):
        GradientDescent("0.1")  # type: ignore[arg-type]
