"""Optimizers: OPT-GD, OPT-MOMENTUM, and Adam (ADAM-MOMENTS, ADAM-BIAS, ADAM-STEP) against a
scalar loop and their consequences; argument and gradient checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn import Adam, AdamW, Dense, GradientDescent, Momentum, Nesterov, RMSprop, Sequential
from refnn.optim import Optimizer, adam_delta, adam_moments
from refnn.testing.strategies import arrays, dense_shapes
from refnn.types import FloatArray
from tests.oracles.adam import adam_loop
from tests.oracles.optim_more import nesterov_loop, rmsprop_loop

lrs = st.floats(1e-4, 1.0)
betas = st.floats(0.0, 0.999)


@dataclass
class Run:
    """A two-layer model and the gradients of ``steps`` successive steps, keyed "0.W", ..."""

    model: Sequential
    grads: list[dict[str, FloatArray]]

    def values(self) -> dict[str, FloatArray]:
        return {p.name: p.value.copy() for p in self.model.parameters()}

    def step(self, opt: Optimizer, k: int) -> None:
        """Load step k's gradients into the model, then step."""
        for p in self.model.parameters():
            p.grad[...] = self.grads[k][p.name]
        opt.step(self.model)


@st.composite
def runs(draw: st.DrawFn, steps: int = 1, grad_bound: float = 4.0, min_grad: float = 0.0) -> Run:
    """Parameters of a Dense n_in -> n_out -> 1 stack and ``steps`` gradients, all drawn."""
    shape = draw(dense_shapes(max_size=4))
    rng = np.random.default_rng(0)
    model = Sequential([Dense(shape.n_in, shape.n_out, rng=rng), Dense(shape.n_out, 1, rng=rng)])
    for i, layer in enumerate(model.layers):
        for key, value in layer.params.items():
            value[...] = draw(arrays(value.shape), label=f"{i}.{key}")
        layer.grads = {key: np.zeros_like(value) for key, value in layer.params.items()}
    names = [(p.name, p.value.shape) for p in model.parameters()]
    grads = [
        {
            name: draw(arrays(shape, bound=grad_bound, min_magnitude=min_grad), label=f"d{name}")
            for name, shape in names
        }
        for _ in range(steps)
    ]
    return Run(model, grads)


# --- gradient descent and momentum ----------------------------------------------------------


@pytest.mark.spec("OPT-GD")
@given(run=runs(), lr=lrs)
def test_gd_step(run: Run, lr: float) -> None:
    before = run.values()
    run.step(GradientDescent(lr), 0)
    for p in run.model.parameters():
        expected = before[p.name] - lr * run.grads[0][p.name]
        np.testing.assert_allclose(p.value, expected, rtol=1e-15, atol=1e-15)


@pytest.mark.spec("OPT-MOMENTUM")
@given(run=runs(steps=4), lr=lrs, beta=betas)
@settings(max_examples=25)
def test_momentum_matches_the_recurrence(run: Run, lr: float, beta: float) -> None:
    value = run.values()
    v = {name: np.zeros_like(a) for name, a in value.items()}
    opt = Momentum(lr, beta)
    for k, grads in enumerate(run.grads):
        run.step(opt, k)
        for name in value:  # v_t = β v_{t-1} + (1 - β) dθ,  θ := θ - α v_t
            v[name] = beta * v[name] + (1 - beta) * grads[name]
            value[name] = value[name] - lr * v[name]
        for p in run.model.parameters():
            np.testing.assert_allclose(p.value, value[p.name], rtol=1e-12, atol=1e-14)


@pytest.mark.spec("OPT-MOMENTUM", "OPT-GD")
@given(run=runs(steps=3), lr=lrs)
@settings(max_examples=25)
def test_momentum_with_beta_zero_is_gd(run: Run, lr: float) -> None:
    start = run.values()
    for k in range(3):
        run.step(Momentum(lr, 0.0), k)
    momentum = run.values()
    for p in run.model.parameters():
        p.value[...] = start[p.name]
    for k in range(3):
        run.step(GradientDescent(lr), k)
    for name, value in run.values().items():
        np.testing.assert_array_equal(momentum[name], value)


def _two_layers(g1: float, g2: float) -> tuple[Dense, Dense]:
    """Two Dense layers whose parameters carry the same keys, with constant gradients."""
    one, two = Dense(2, 2, rng=np.random.default_rng(0)), Dense(2, 2, rng=np.random.default_rng(1))
    for layer, g in ((one, g1), (two, g2)):
        layer.grads = {k: np.full_like(v, g) for k, v in layer.params.items()}
    return one, two


@pytest.mark.spec("OPT-MOMENTUM")
def test_state_is_per_parameter_never_shared() -> None:
    one, two = _two_layers(1.0, -1.0)
    opt = Momentum(0.1, 0.5)
    w1, w2 = one.params["W"].copy(), two.params["W"].copy()
    opt.step(one)
    opt.step(two)
    np.testing.assert_allclose(one.params["W"], w1 - 0.1 * 0.5 * 1.0)
    np.testing.assert_allclose(two.params["W"], w2 + 0.1 * 0.5 * 1.0)


# --- Adam -----------------------------------------------------------------------------------


@pytest.mark.spec("ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@given(run=runs(steps=5), lr=lrs, beta1=betas, beta2=betas, eps=st.floats(1e-10, 1e-2))
@settings(max_examples=25)
def test_adam_matches_the_scalar_loop(
    run: Run, lr: float, beta1: float, beta2: float, eps: float
) -> None:
    start = run.values()
    opt = Adam(lr, beta1, beta2, eps)
    for k in range(5):
        run.step(opt, k)
    for p in run.model.parameters():
        history = [g[p.name] for g in run.grads]
        expected = adam_loop(start[p.name], history, lr, beta1, beta2, eps)[-1]
        np.testing.assert_allclose(p.value, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.spec("ADAM-MOMENTS")
@given(gs=st.lists(arrays((2, 3)), min_size=1, max_size=5), beta1=betas, beta2=betas)
def test_moments_are_exponential_averages(gs: list[FloatArray], beta1: float, beta2: float) -> None:
    M, V = np.zeros((2, 3)), np.zeros((2, 3))
    for g in gs:
        adam_moments(M, V, g, beta1, beta2)
    t = len(gs)  # closed form: m_t = (1 - β1) Σ_s β1^{t-s} g_s
    m_closed = sum((1 - beta1) * beta1 ** (t - 1 - s) * g for s, g in enumerate(gs))
    v_closed = sum((1 - beta2) * beta2 ** (t - 1 - s) * g * g for s, g in enumerate(gs))
    np.testing.assert_allclose(M, m_closed, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(V, v_closed, rtol=1e-13, atol=1e-15)


@pytest.mark.spec("ADAM-BIAS", "ADAM-STEP")
@given(run=runs(grad_bound=1e3, min_grad=1e-3), lr=lrs, beta1=betas, beta2=betas)
def test_first_step_has_size_lr_per_element(
    run: Run, lr: float, beta1: float, beta2: float
) -> None:
    """Bias correction makes m̂_1 = g and v̂_1 = g², so Δθ = -lr g / (|g| + eps)."""
    before = run.values()
    eps = 1e-8
    run.step(Adam(lr, beta1, beta2, eps), 0)
    for p in run.model.parameters():
        g = run.grads[0][p.name]
        delta = p.value - before[p.name]
        np.testing.assert_allclose(delta, -lr * g / (np.abs(g) + eps), rtol=1e-12, atol=1e-15)
        # |Δθ| ≈ lr: it falls short of lr by lr ε/(|g| + ε) only (rounding aside)
        shortfall = lr - np.abs(delta)
        rounding = 8 * np.finfo(np.float64).eps * (lr + np.abs(before[p.name]))
        assert np.all(shortfall >= -rounding)
        assert np.all(shortfall <= lr * eps / np.abs(g) + rounding)
        assert np.all(np.sign(delta) == -np.sign(g))


@pytest.mark.spec("ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@given(run=runs(steps=4, grad_bound=1e2), lr=lrs, eps=st.floats(1e-10, 1.0))
@settings(max_examples=25)
def test_betas_zero_give_normalised_sign_steps(run: Run, lr: float, eps: float) -> None:
    opt = Adam(lr, beta1=0.0, beta2=0.0, eps=eps)
    for k in range(4):
        before = run.values()
        run.step(opt, k)
        for p in run.model.parameters():
            g = run.grads[k][p.name]
            expected = before[p.name] - lr * g / (np.abs(g) + eps)
            np.testing.assert_allclose(p.value, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.spec("ADAM-STEP")
@given(run=runs(steps=2))
def test_zero_gradient_moves_nothing_and_grads_are_not_modified(run: Run) -> None:
    for p in run.model.parameters():
        p.grad[...] = 0.0
    before = run.values()
    Adam(0.1).step(run.model)
    for name, value in run.values().items():
        np.testing.assert_array_equal(value, before[name])
    run.step(Adam(0.1), 1)
    for p in run.model.parameters():
        np.testing.assert_array_equal(p.grad, run.grads[1][p.name])


@pytest.mark.spec("ADAM-MOMENTS", "ADAM-BIAS")
def test_state_and_step_count_are_per_parameter() -> None:
    """Two layers with the same keys never share moments, and a parameter that first appears
    later gets its own t = 1 bias correction (a first step of size lr)."""
    one, two = _two_layers(1.0, -1.0)
    opt = Adam(0.1, eps=1e-12)
    w1 = one.params["W"].copy()
    opt.step(one)
    opt.step(one)
    np.testing.assert_allclose(one.params["W"], w1 - 0.2, atol=1e-12)  # constant g: lr per step
    w2 = two.params["W"].copy()
    opt.step(two)  # the optimizer's third step, this array's first
    np.testing.assert_allclose(two.params["W"], w2 + 0.1, atol=1e-12)


@pytest.mark.spec("OPT-MOMENTUM", "ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@pytest.mark.parametrize("make", [lambda: Momentum(0.1, 0.9), lambda: Adam(0.1)])
def test_one_optimizer_stepping_two_models_is_one_optimizer_each(make: object) -> None:
    shared, alone = make(), [make(), make()]  # type: ignore[operator]
    models = [_two_layers(1.0, -2.0), _two_layers(1.0, -2.0)]
    for k in range(3):
        for layer, twin, opt in zip(models[0], models[1], alone, strict=True):
            for grads in (layer.grads, twin.grads):
                grads["W"] = np.full_like(grads["W"], k - 1.5)
            shared.step(layer)
            opt.step(twin)
    for layer, twin in zip(*models, strict=True):
        np.testing.assert_array_equal(layer.params["W"], twin.params["W"])


@pytest.mark.spec("ADAM-BIAS", "ADAM-STEP")
def test_adam_delta_closed_form_and_float32() -> None:
    M, V = np.array([[0.2, -0.1]]), np.array([[0.04, 0.01]])
    delta = adam_delta(M, V, 2, 0.5, 0.9, 0.99, 1e-8)
    expected = -0.5 * (M / (1 - 0.81)) / (np.sqrt(V / (1 - 0.9801)) + 1e-8)
    np.testing.assert_allclose(delta, expected, rtol=1e-15)
    # float32 moments give a float32 step (no silent upcast): W += delta would hide it
    delta32 = adam_delta(M.astype(np.float32), V.astype(np.float32), 2, 0.5, 0.9, 0.99, 1e-8)
    assert delta32.dtype == np.float32
    np.testing.assert_allclose(delta32, expected, rtol=1e-6)
    layer = Dense(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
    layer.grads = {k: np.ones_like(v) for k, v in layer.params.items()}
    opt = Adam(0.01)
    opt.step(layer)
    opt.step(layer)
    assert all(v.dtype == np.float32 for v in layer.params.values())


# --- bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Momentum(0.1, 1.0), ValueError, r"beta must be in \[0.0, 1.0\), got 1.0"),
        (lambda: GradientDescent(-1.0), ValueError, "lr must be"),
        (lambda: GradientDescent(0.0), ValueError, r"lr must be > 0, got 0\.0"),
        (lambda: GradientDescent(np.inf), ValueError, r"lr must be in \[0.0, inf\), got inf"),
        (lambda: GradientDescent(np.nan), ValueError, "lr must be in"),
        (lambda: GradientDescent("0.1"), TypeError, "lr must be a real number"),  # type: ignore[arg-type]
        (lambda: Adam(0.1, beta1=1.0), ValueError, r"beta1 must be in \[0.0, 1.0\)"),
        (lambda: Adam(0.1, beta2=1.0), ValueError, r"beta2 must be in \[0.0, 1.0\)"),
        (lambda: Adam(0.1, beta2=-0.1), ValueError, r"beta2 must be in \[0.0, 1.0\)"),
        (lambda: Adam(0.1, eps=0.0), ValueError, "eps must be > 0"),
        (lambda: Adam(0.1, eps=np.inf), ValueError, "eps must be in"),
        (lambda: Adam(0.1, eps=None), TypeError, "eps must be a real number"),  # type: ignore[arg-type]
        (lambda: Momentum(0.1, True), TypeError, "beta must be a real number, got True"),
    ],
)
def test_optimizer_arguments_are_checked(make: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()  # type: ignore[operator]


@pytest.mark.parametrize("model", [None, 3, "model", [Dense(2, 2, rng=np.random.default_rng(0))]])
def test_step_of_something_without_parameters_names_it(model: object) -> None:
    """Was "AttributeError: 'NoneType' object has no attribute 'parameters'"."""
    with pytest.raises(TypeError, match=r"model must be a refnn Sequential or Layer .* got \w+"):
        GradientDescent(0.1).step(model)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.ones((1, 3)), r"gradient of 1\.W must have shape \(1, 2\), got \(1, 3\)"),
        (np.full((1, 2), np.nan), r"gradient of 1\.W must be finite, got NaN or Inf"),
        (np.full((1, 2), -np.inf), r"gradient of 1\.W must be finite"),
        ([[1.0, 1.0]], r"gradient of 1\.W must have shape \(1, 2\), got list"),
    ],
)
@pytest.mark.parametrize("make", [lambda: GradientDescent(0.1), lambda: Adam(0.1)])
def test_a_bad_gradient_is_refused_before_any_parameter_changes(
    bad: object, message: str, make: object
) -> None:
    """Was: the first layer updated, then a ValueError on the second (or NaN written into it)."""
    rng = np.random.default_rng(0)
    model = Sequential([Dense(3, 2, rng=rng), Dense(2, 1, rng=rng)])
    for layer in model.layers:
        layer.grads = {k: np.ones_like(v) for k, v in layer.params.items()}
    model.layers[1].grads["W"] = bad  # type: ignore[assignment]
    before = [p.copy() for layer in model.layers for p in layer.params.values()]
    with pytest.raises(ValueError, match=message):
        make().step(model)  # type: ignore[operator]
    after = [p for layer in model.layers for p in layer.params.values()]
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)


# --- RMSprop, AdamW, Nesterov momentum (OPT-RMSPROP, OPT-ADAMW, OPT-NESTEROV) ---------------


def _trajectory(run: Run, opt: Optimizer, steps: int) -> None:
    for k in range(steps):
        run.step(opt, k)


@pytest.mark.spec("OPT-RMSPROP")
@given(run=runs(steps=5), lr=lrs, beta=betas, eps=st.floats(1e-10, 1e-2))
@settings(max_examples=15)
def test_rmsprop_matches_the_scalar_loop(run: Run, lr: float, beta: float, eps: float) -> None:
    start = run.values()
    _trajectory(run, RMSprop(lr, beta, eps), 5)
    for p in run.model.parameters():
        history = [g[p.name] for g in run.grads]
        expected = rmsprop_loop(start[p.name], history, lr, beta, eps)[-1]
        np.testing.assert_allclose(p.value, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.spec("OPT-RMSPROP")
@settings(max_examples=15)
@given(run=runs(grad_bound=1e3, min_grad=1e-3), lr=lrs, beta=betas)
def test_rmsprop_first_step_has_eps_outside_the_root_and_no_bias_correction(
    run: Run, lr: float, beta: float
) -> None:
    """s_1 = (1 - β) g², so Δθ = -α g / (sqrt(1 - β) |g| + ε): ε outside, no bias correction."""
    before = run.values()
    eps = 1e-8
    run.step(RMSprop(lr, beta, eps), 0)
    for p in run.model.parameters():
        g = run.grads[0][p.name]
        delta = p.value - before[p.name]
        expected = -lr * g / (np.sqrt(1 - beta) * np.abs(g) + eps)
        np.testing.assert_allclose(delta, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.spec("OPT-RMSPROP")
def test_rmsprop_eps_outside_the_root_by_hand() -> None:
    """g = 1e-4, β = 0.99: s = 1e-10, sqrt(s) = 1e-5; outside: g/(1e-5 + 1e-8); inside (TF's raw
    op) would be g/sqrt(1e-10 + 1e-8), ten times smaller."""
    layer = Dense(1, 1, rng=np.random.default_rng(0))
    layer.params["W"][...] = 0.0
    layer.grads = {k: np.full_like(v, 1e-4) for k, v in layer.params.items()}
    RMSprop(1.0, beta=0.99, eps=1e-8).step(layer)
    assert layer.params["W"][0, 0] == pytest.approx(-1e-4 / (1e-5 + 1e-8), rel=1e-14)
    assert layer.params["W"][0, 0] != pytest.approx(-1e-4 / np.sqrt(1e-10 + 1e-8), rel=0.5)


@pytest.mark.spec("OPT-ADAMW", "ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP")
@given(
    run=runs(steps=5),
    lr=lrs,
    beta1=betas,
    beta2=betas,
    eps=st.floats(1e-10, 1e-2),
    wd=st.floats(0.0, 0.5),
)
@settings(max_examples=15)
def test_adamw_matches_the_scalar_loop(
    run: Run, lr: float, beta1: float, beta2: float, eps: float, wd: float
) -> None:
    start = run.values()
    _trajectory(run, AdamW(lr, beta1, beta2, eps, weight_decay=wd), 5)
    for p in run.model.parameters():
        history = [g[p.name] for g in run.grads]
        expected = adam_loop(start[p.name], history, lr, beta1, beta2, eps, wd)[-1]
        np.testing.assert_allclose(p.value, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.spec("OPT-ADAMW", "ADAM-STEP")
@given(run=runs(steps=3), lr=lrs, wd=st.floats(1e-3, 0.5))
@settings(max_examples=15)
def test_adamw_without_decay_is_adam_and_decay_is_not_in_the_moments(
    run: Run, lr: float, wd: float
) -> None:
    start = run.values()
    _trajectory(run, AdamW(lr, weight_decay=0.0), 3)
    adamw = run.values()
    for p in run.model.parameters():
        p.value[...] = start[p.name]
    _trajectory(run, Adam(lr), 3)
    for name, value in run.values().items():
        np.testing.assert_array_equal(adamw[name], value)
    # with a zero gradient Adam moves nothing, so AdamW only decays: θ (1 - α λ)^t
    for p in run.model.parameters():
        p.value[...] = start[p.name]
        p.grad[...] = 0.0
    opt = AdamW(lr, weight_decay=wd)
    for _ in range(3):
        opt.step(run.model)
    for p in run.model.parameters():
        np.testing.assert_allclose(p.value, start[p.name] * (1 - lr * wd) ** 3, rtol=1e-13)


@pytest.mark.spec("OPT-NESTEROV")
@given(run=runs(steps=5), lr=lrs, mu=betas)
@settings(max_examples=15)
def test_nesterov_matches_the_scalar_loop(run: Run, lr: float, mu: float) -> None:
    start = run.values()
    _trajectory(run, Nesterov(lr, mu), 5)
    for p in run.model.parameters():
        history = [g[p.name] for g in run.grads]
        expected = nesterov_loop(start[p.name], history, lr, mu)[-1]
        np.testing.assert_allclose(p.value, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.spec("OPT-NESTEROV", "OPT-GD")
@given(run=runs(steps=3), lr=lrs)
@settings(max_examples=15)
def test_nesterov_with_zero_momentum_is_gd_and_its_first_step_is_one_plus_mu(
    run: Run, lr: float
) -> None:
    start = run.values()
    _trajectory(run, Nesterov(lr, 0.0), 3)
    nesterov = run.values()
    for p in run.model.parameters():
        p.value[...] = start[p.name]
    _trajectory(run, GradientDescent(lr), 3)
    for name, value in run.values().items():
        np.testing.assert_array_equal(nesterov[name], value)
    for p in run.model.parameters():  # b_1 = g: the first step is α (1 + μ) g
        p.value[...] = start[p.name]
    run.step(Nesterov(lr, 0.5), 0)
    for p in run.model.parameters():
        expected = start[p.name] - lr * 1.5 * run.grads[0][p.name]
        np.testing.assert_allclose(p.value, expected, rtol=1e-14, atol=1e-15)


@pytest.mark.spec("OPT-RMSPROP", "OPT-ADAMW", "OPT-NESTEROV")
@pytest.mark.parametrize(
    "make", [lambda: RMSprop(0.01), lambda: AdamW(0.01), lambda: Nesterov(0.01)]
)
def test_new_optimizers_keep_float32_and_state_per_parameter(make: Any) -> None:
    layer = Dense(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
    layer.grads = {k: np.ones_like(v) for k, v in layer.params.items()}
    opt = make()
    opt.step(layer)
    opt.step(layer)
    assert all(v.dtype == np.float32 for v in layer.params.values())
    shared, alone = make(), [make(), make()]
    models = [_two_layers(1.0, -2.0), _two_layers(1.0, -2.0)]
    for k in range(3):
        for layer_, twin, own in zip(models[0], models[1], alone, strict=True):
            for grads in (layer_.grads, twin.grads):
                grads["W"] = np.full_like(grads["W"], k - 1.5)
            shared.step(layer_)
            own.step(twin)
    for layer_, twin in zip(*models, strict=True):
        np.testing.assert_array_equal(layer_.params["W"], twin.params["W"])


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: RMSprop(0.1, beta=1.0), ValueError, r"beta must be in \[0.0, 1.0\), got 1.0"),
        (lambda: RMSprop(0.1, eps=0.0), ValueError, "eps must be > 0"),
        (lambda: RMSprop(0.1, eps="1e-8"), TypeError, "eps must be a real number"),  # type: ignore[arg-type]
        (lambda: RMSprop(0.0), ValueError, "lr must be > 0"),
        (lambda: AdamW(0.1, weight_decay=-0.1), ValueError, r"weight_decay must be in \[0.0"),
        (lambda: AdamW(0.1, weight_decay=np.nan), ValueError, "weight_decay must be in"),
        (lambda: AdamW(0.1, weight_decay=None), TypeError, "weight_decay must be a real number"),  # type: ignore[arg-type]
        (lambda: AdamW(0.1, eps=0.0), ValueError, "eps must be > 0"),
        (lambda: Nesterov(0.1, momentum=1.0), ValueError, r"momentum must be in \[0.0, 1.0\)"),
        (lambda: Nesterov(0.1, momentum=True), TypeError, "momentum must be a real number"),
        (lambda: Nesterov(np.inf), ValueError, "lr must be in"),
    ],
)
def test_new_optimizer_arguments_are_checked(make: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("make", [lambda: RMSprop(0.1), lambda: AdamW(0.1), lambda: Nesterov(0.1)])
def test_new_optimizers_refuse_a_bad_gradient_before_any_change(make: Any) -> None:
    rng = np.random.default_rng(0)
    model = Sequential([Dense(3, 2, rng=rng), Dense(2, 1, rng=rng)])
    for layer in model.layers:
        layer.grads = {k: np.ones_like(v) for k, v in layer.params.items()}
    model.layers[1].grads["W"] = np.full((1, 2), np.nan)
    before = [p.copy() for layer in model.layers for p in layer.params.values()]
    with pytest.raises(ValueError, match=r"gradient of 1\.W must be finite"):
        make().step(model)
    after = [p for layer in model.layers for p in layer.params.values()]
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.spec("OPT-ADAMW", "OPT-RMSPROP", "OPT-NESTEROV", "NOTE-CONTRACT")
@pytest.mark.parametrize(
    "make", [lambda: RMSprop(0.1), lambda: AdamW(0.1, weight_decay=0.5), lambda: Nesterov(0.1)]
)
def test_new_optimizers_never_touch_a_layers_buffers(make: Any) -> None:
    """BatchNorm's running statistics are buffers: AdamW's decay, applied to every parameter,
    must not shrink them (Layer.parameters() yields params only)."""
    from refnn import BatchNorm

    layer = BatchNorm(3)
    X = np.random.default_rng(0).standard_normal((3, 8)) + 2.0
    layer.backward(np.ones_like(layer.forward(X)))
    buffers = {k: v.copy() for k, v in layer.buffers.items()}
    params = {k: v.copy() for k, v in layer.params.items()}
    opt = make()
    for _ in range(3):
        opt.step(layer)
    for k, v in layer.buffers.items():
        np.testing.assert_array_equal(v, buffers[k])
    assert any(not np.array_equal(v, params[k]) for k, v in layer.params.items())
