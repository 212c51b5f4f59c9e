"""Adam: ADAM-MOMENTS, ADAM-BIAS, ADAM-STEP against a scalar loop and their consequences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn import Adam, Dense, Sequential
from refnn.optim import adam_delta, adam_moments
from tests.oracles.adam import adam_loop
from tests.strategies import normal, seeds

lrs = st.floats(1e-4, 1.0)
betas = st.floats(0.0, 0.999)


def _model(seed: int, dtype: type[np.floating] = np.float64) -> Sequential:
    model = Sequential(
        [
            Dense(3, 2, rng=np.random.default_rng(seed), dtype=dtype),
            Dense(2, 1, rng=np.random.default_rng(seed + 1), dtype=dtype),
        ]
    )
    model.forward(normal(seed, 3, 4).astype(dtype))
    model.backward(normal(seed + 2, 1, 4).astype(dtype))
    return model


def _set_grads(model: Sequential, seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    for i, p in enumerate(model.parameters()):
        p.grad[...] = normal(seed + i, *p.grad.shape, scale=scale)
    return {p.name: p.grad.copy() for p in model.parameters()}


@pytest.mark.spec("ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@given(seed=seeds, lr=lrs, beta1=betas, beta2=betas, eps=st.floats(1e-10, 1e-2))
def test_adam_matches_the_scalar_loop(
    seed: int, lr: float, beta1: float, beta2: float, eps: float
) -> None:
    model = _model(seed)
    start = {p.name: p.value.copy() for p in model.parameters()}
    opt = Adam(lr, beta1, beta2, eps)
    grads: dict[str, list[np.ndarray]] = {name: [] for name in start}
    for step in range(5):
        for name, g in _set_grads(model, seed + 100 * step).items():
            grads[name].append(g)
        opt.step(model)
    assert opt.t == 5
    for p in model.parameters():
        expected = adam_loop(start[p.name], grads[p.name], lr, beta1, beta2, eps)[-1]
        np.testing.assert_allclose(p.value, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.spec("ADAM-MOMENTS")
@given(seed=seeds, beta1=betas, beta2=betas)
def test_moments_are_exponential_averages(seed: int, beta1: float, beta2: float) -> None:
    M, V = np.zeros((2, 3)), np.zeros((2, 3))
    gs = [normal(seed + t, 2, 3) for t in range(4)]
    for g in gs:
        adam_moments(M, V, g, beta1, beta2)
    # closed form: m_t = (1 - β1) Σ_s β1^{t-s} g_s
    m_closed = sum((1 - beta1) * beta1 ** (3 - s) * g for s, g in enumerate(gs))
    v_closed = sum((1 - beta2) * beta2 ** (3 - s) * g * g for s, g in enumerate(gs))
    np.testing.assert_allclose(M, m_closed, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(V, v_closed, rtol=1e-13, atol=1e-15)


@pytest.mark.spec("ADAM-BIAS", "ADAM-STEP")
@given(seed=seeds, lr=lrs, beta1=betas, beta2=betas, scale=st.floats(1e-3, 1e3))
def test_first_step_has_size_lr_per_element(
    seed: int, lr: float, beta1: float, beta2: float, scale: float
) -> None:
    # bias correction makes m̂_1 = g and v̂_1 = g², so Δθ = -lr g / (|g| + eps)
    model = _model(seed)
    before = {p.name: p.value.copy() for p in model.parameters()}
    grads = _set_grads(model, seed, scale=scale)
    eps = 1e-8
    Adam(lr, beta1, beta2, eps).step(model)
    for p in model.parameters():
        g = grads[p.name]
        delta = p.value - before[p.name]
        np.testing.assert_allclose(delta, -lr * g / (np.abs(g) + eps), rtol=1e-12, atol=1e-15)
        # |Δθ| ≈ lr: it falls short of lr by lr ε/(|g| + ε) only (rounding aside)
        shortfall = lr - np.abs(delta)
        rounding = 8 * np.finfo(np.float64).eps * (lr + np.abs(before[p.name]))
        assert np.all(shortfall >= -rounding)
        assert np.all(shortfall <= lr * eps / np.abs(g) + rounding)
        assert np.all(np.sign(delta) == -np.sign(g))


@pytest.mark.spec("ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@given(seed=seeds, lr=lrs, eps=st.floats(1e-10, 1.0))
def test_betas_zero_give_normalised_sign_steps(seed: int, lr: float, eps: float) -> None:
    model = _model(seed)
    opt = Adam(lr, beta1=0.0, beta2=0.0, eps=eps)
    for step in range(4):
        before = {p.name: p.value.copy() for p in model.parameters()}
        grads = _set_grads(model, seed + 7 * step, scale=10.0 ** (step - 2))
        opt.step(model)
        for p in model.parameters():
            g = grads[p.name]
            expected = before[p.name] - lr * g / (np.abs(g) + eps)
            np.testing.assert_allclose(p.value, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.spec("ADAM-STEP")
def test_zero_gradient_moves_nothing_and_grads_are_not_modified() -> None:
    model = _model(0)
    for p in model.parameters():
        p.grad[...] = 0.0
    before = [p.value.copy() for p in model.parameters()]
    Adam(0.1).step(model)
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.value, b)
    grads = _set_grads(model, 3)
    Adam(0.1).step(model)
    for p in model.parameters():
        np.testing.assert_array_equal(p.grad, grads[p.name])


@pytest.mark.spec("ADAM-MOMENTS", "ADAM-BIAS")
def test_state_and_step_count_are_per_parameter() -> None:
    # two layers with the same keys ("W", "b") never share moments, and a parameter that first
    # appears later gets its own t = 1 bias correction (a first step of size lr)
    one, two = Dense(2, 2, rng=np.random.default_rng(0)), Dense(2, 2, rng=np.random.default_rng(1))
    for layer, g in ((one, 1.0), (two, -1.0)):
        layer.forward(np.ones((2, 1)))
        layer.backward(np.ones((2, 1)))
        layer.grads = {k: np.full_like(v, g) for k, v in layer.params.items()}
    opt = Adam(0.1, eps=1e-12)
    w1 = one.params["W"].copy()
    opt.step(one)
    opt.step(one)
    np.testing.assert_allclose(one.params["W"], w1 - 0.2, atol=1e-12)  # constant g: lr per step
    w2 = two.params["W"].copy()
    opt.step(two)  # opt.t is 3, but this array has had one update
    assert opt.t == 3
    np.testing.assert_allclose(two.params["W"], w2 + 0.1, atol=1e-12)


@pytest.mark.spec("ADAM-BIAS", "ADAM-STEP")
def test_adam_delta_closed_form_and_float32() -> None:
    M, V = np.array([[0.2, -0.1]]), np.array([[0.04, 0.01]])
    delta = adam_delta(M, V, 2, 0.5, 0.9, 0.99, 1e-8)
    expected = -0.5 * (M / (1 - 0.81)) / (np.sqrt(V / (1 - 0.9801)) + 1e-8)
    np.testing.assert_allclose(delta, expected, rtol=1e-15)
    # float32 moments give a float32 step (no silent upcast); the parameter dtype checked below
    # cannot show this, since W += delta keeps W's dtype whatever delta's is
    M32, V32 = M.astype(np.float32), V.astype(np.float32)
    delta32 = adam_delta(M32, V32, 2, 0.5, 0.9, 0.99, 1e-8)
    assert delta32.dtype == np.float32
    np.testing.assert_allclose(delta32, expected, rtol=1e-6)
    model = _model(0, dtype=np.float32)
    _set_grads(model, 1)
    opt = Adam(0.01)
    opt.step(model)
    opt.step(model)
    for p in model.parameters():
        assert p.value.dtype == np.float32


def test_adam_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"beta1 must be in \[0.0, 1.0\)"):
        Adam(0.1, beta1=1.0)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0.0, 1.0\)"):
        Adam(0.1, beta2=-0.1)
    with pytest.raises(ValueError, match="eps must be > 0"):
        Adam(0.1, eps=0.0)
    with pytest.raises(ValueError, match="lr must be"):
        Adam(0.0 - 1.0)
    with pytest.raises(TypeError, match="eps must be a real number"):
        Adam(0.1, eps=None)  # type: ignore[arg-type]
