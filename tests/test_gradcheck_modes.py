"""refnn.gradcheck fast mode, Taylor test and vector-Jacobian products.

GC-PROJ, GC-TAYLOR, GC-VJP.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from refnn.gradcheck import check_grad, check_vjp, taylor_test
from refnn.gradcheck._numeric import fit_slope

F64 = npt.NDArray[np.float64]


class Counted:
    """Wraps a scalar function and counts its calls (the test's own count, not the checker's)."""

    def __init__(self, f: Callable[[F64], float]) -> None:
        self.f = f
        self.calls = 0

    def __call__(self, x: F64) -> float:
        self.calls += 1
        return self.f(x)


def smooth(x: F64) -> float:
    return float(np.sum(np.sin(x) * x) + 0.1 * np.sum(x) ** 2)


def smooth_grad(x: F64) -> list[F64]:
    return [np.cos(x) * x + np.sin(x) + 0.2 * np.sum(x)]


# --- fast mode ----------------------------------------------------------------------------


@pytest.mark.spec("GC-PROJ")
def test_auto_uses_fast_mode_for_large_inputs_with_far_fewer_calls() -> None:
    x = np.random.default_rng(0).standard_normal(2500)
    counted = Counted(smooth)
    result = check_grad(counted, smooth_grad, {"x": x})
    a = result.arrays[0]
    assert result.passed and a.method == "fast" and not a.fell_back, result.format()
    # centre, its repeat, 12 noise probes, 4 per direction and 3 directions, centre after
    assert counted.calls == result.n_f_evals == 27
    small = Counted(smooth)
    assert check_grad(small, smooth_grad, {"x": x[:100]}).arrays[0].method == "elementwise"
    assert small.calls >= 200  # elementwise: at least 2 per element


@pytest.mark.spec("GC-PROJ")
@pytest.mark.parametrize("kind", ["scaled", "one element", "shifted half"])
def test_fast_mode_catches_a_wrong_gradient_and_names_the_worst_element(kind: str) -> None:
    x = np.random.default_rng(1).standard_normal(2100)

    def g_bad(x: F64) -> list[F64]:
        (g,) = smooth_grad(x)
        if kind == "scaled":
            return [1.01 * g]
        if kind == "one element":
            g = g.copy()
            g[1234] += 5.0
            return [g]
        return [np.concatenate([g[:1050], g[1050:] + 0.01])]

    result = check_grad(smooth, g_bad, {"x": x}, mode="fast")
    a = result.arrays[0]
    assert not result.passed and a.verdict == "WRONG" and a.fell_back
    assert a.method == "elementwise" and a.worst_index is not None
    assert "fast mode failed" in a.note
    if kind == "one element":
        assert a.worst_index == (1234,) and a.n_wrong == 1


@pytest.mark.spec("GC-PROJ", "GC-KINK")
def test_a_fast_mode_false_alarm_at_kinks_is_overruled_by_the_elementwise_check() -> None:
    x = np.random.default_rng(2).standard_normal(2050)
    x[::100] = 0.0  # ReLU kinks: the directional derivative there is one-sided

    def f(x: F64) -> float:
        return float(np.sum(np.maximum(x, 0.0) ** 1 * 2.0))

    result = check_grad(f, lambda x: [2.0 * (x > 0)], {"x": x})
    a = result.arrays[0]
    assert a.fell_back and result.passed, result.format()
    assert a.kinks.found == 21 and "false alarm" in a.note


@pytest.mark.spec("GC-PROJ")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_mode_does_not_pass_a_wrong_gradient_under_a_bound_inflated_by_kinks(
    seed: int,
) -> None:
    # 30 of 3000 ReLU inputs lie within a step of the kink: along a random direction the
    # directional difference straddles kinks, so its truncation estimate (and S T in the bound)
    # is large. That estimate must send the check to the elementwise mode, not excuse a 1% error.
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(2100), rng.standard_normal(2100)
    x[:30] = rng.uniform(-1.2e-5, 1.2e-5, 30)

    def f(x: F64) -> float:
        return float(np.sum(w * np.maximum(x, 0.0)))

    result = check_grad(f, lambda x: [1.01 * w * (x > 0)], {"x": x}, mode="fast", seed=seed)
    a = result.arrays[0]
    assert not result.passed and a.verdict == "WRONG" and a.fell_back, result.format()
    right = check_grad(f, lambda x: [w * (x > 0)], {"x": x}, mode="fast", seed=seed)
    assert right.passed, right.format()


@pytest.mark.spec("GC-PROJ")
@pytest.mark.parametrize("seed", range(4))
def test_fast_mode_passes_correct_gradients_of_several_inputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    W, X = rng.standard_normal((8, 30)), rng.standard_normal((30, 12))

    def f(W: F64, X: F64) -> float:
        return float(np.sum(np.tanh(W @ X) ** 2))

    def g(W: F64, X: F64) -> list[F64]:
        A = np.tanh(W @ X)
        dZ = 2 * A * (1 - A) * (1 + A)
        return [dZ @ X.T, W.T @ dZ]

    result = check_grad(f, g, {"W": W, "X": X}, mode="fast", seed=seed)
    assert result.passed and all(a.method == "fast" for a in result.arrays), result.format()
    # centre, repeat, 12 noise probes and 12 projection values per input, centre after
    assert result.n_f_evals == 2 + 2 * 12 + 2 * 12 + 1


@pytest.mark.spec("GC-PROJ")
def test_fast_mode_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    x = np.linspace(-1, 1, 2200)
    np.random.seed(7)
    state = json.dumps(np.random.get_state(legacy=False), default=str)
    first = check_grad(smooth, smooth_grad, {"x": x}, seed=3).to_dict()
    second = check_grad(smooth, smooth_grad, {"x": x}, seed=3).to_dict()
    assert first == second
    assert check_grad(smooth, smooth_grad, {"x": x}, seed=4).to_dict() != first
    assert json.dumps(np.random.get_state(legacy=False), default=str) == state


# --- Taylor test --------------------------------------------------------------------------


@pytest.mark.spec("GC-TAYLOR")
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_taylor_slope_is_2_for_a_correct_gradient_and_1_for_a_wrong_one(seed: int, n: int) -> None:
    x = np.random.default_rng(seed).standard_normal(n)
    good = taylor_test(smooth, smooth_grad, {"x": x}, seed=seed)
    assert good.passed, good.format()
    assert all(s is not None and 1.8 <= s <= 3.2 for s in good.slopes), good.format()

    def g_bad(x: F64) -> list[F64]:
        return [smooth_grad(x)[0] + 0.05 * np.cos(3 * x + 1)]

    bad = taylor_test(smooth, g_bad, {"x": x}, seed=seed)
    assert not bad.passed
    fitted = [s for s in bad.slopes if s is not None]
    # r = |h <e, v> + O(h^2)|: slope 1 where the error term dominates; where the two terms
    # cancel near some h the fitted slope can be lower, never near 2
    assert fitted and max(fitted) < 1.8 and min(fitted) < 1.25, bad.format()


@pytest.mark.spec("GC-TAYLOR")
def test_taylor_linear_function_passes_and_says_so_but_a_wrong_slope_fails() -> None:
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    a = np.array([[2.0, -1.0], [0.25, 4.0]])
    result = taylor_test(lambda x: float(np.sum(a * x)), lambda x: [a], {"x": x})
    assert result.passed and result.slopes == (None, None, None)
    assert all("linear" in d.note for d in result.directions)
    wrong = taylor_test(lambda x: float(np.sum(a * x)), lambda x: [a + 0.01], {"x": x})
    assert not wrong.passed and all(abs(s - 1) < 0.05 for s in wrong.slopes if s is not None)


@pytest.mark.spec("GC-TAYLOR")
def test_taylor_via_check_grad_and_fit_slope() -> None:
    assert fit_slope([1.0, 0.1, 0.01], [1.0, 0.01, 1e-4]) == pytest.approx(2.0)
    x = np.array([0.3, -0.4])
    result = check_grad(smooth, smooth_grad, {"x": x}, taylor=True)
    assert result.taylor is not None and result.taylor.passed and result.passed
    wrong = check_grad(smooth, lambda x: [smooth_grad(x)[0] * 1.5], {"x": x}, taylor=True)
    assert wrong.taylor is not None and not wrong.taylor.passed
    assert "Taylor test" in wrong.format()
    json.dumps(wrong.to_dict())


# --- vector-Jacobian products -----------------------------------------------------------------


def layer(W: F64, X: F64) -> F64:
    out: F64 = np.tanh(W @ X)
    return out


def layer_vjp(dY: F64, W: F64, X: F64) -> list[F64]:
    A = np.tanh(W @ X)
    dZ = dY * (1 - A) * (1 + A)
    return [dZ @ X.T, W.T @ dZ]


@pytest.mark.spec("GC-VJP")
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 4), (4, 3)])
def test_check_vjp_passes_a_correct_vjp_and_fails_a_transposed_one(
    seed: int, n: int, m: int
) -> None:
    rng = np.random.default_rng(seed)
    inputs = {"W": rng.standard_normal((n, n)), "X": rng.standard_normal((n, m))}
    result = check_vjp(layer, layer_vjp, inputs, seed=seed)
    assert result.passed, result.format()

    def transposed(dY: F64, W: F64, X: F64) -> list[F64]:
        dW, _ = layer_vjp(dY, W, X)
        A = np.tanh(W @ X)
        return [dW, W @ (dY * (1 - A) * (1 + A))]  # W instead of W.T

    if not np.allclose(inputs["W"], inputs["W"].T):
        bad = check_vjp(layer, transposed, inputs, seed=seed)
        assert not bad.passed and bad.arrays[1].verdict == "WRONG"


@pytest.mark.spec("GC-VJP")
def test_check_vjp_does_not_let_the_vjp_modify_the_upstream_gradient() -> None:
    inputs = {"W": np.eye(2) + 0.5, "X": np.ones((2, 3))}

    def mutating(dY: F64, W: F64, X: F64) -> list[F64]:
        dY *= 2  # the vjp owns a copy: the scalarization keeps its own dY
        return [g / 2 for g in layer_vjp(dY, W, X)]

    assert check_vjp(layer, mutating, inputs).passed
    with pytest.raises(TypeError, match="floating numpy array"):
        check_vjp(lambda W, X: 1.0, layer_vjp, inputs)
