"""refnn.gradcheck.check_backward_contract: linear, zero-preserving, deterministic, pure, typed.

GC-CONTRACT.
"""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest

from refnn.gradcheck import ContractResult, GradcheckError, check_backward_contract

F64 = npt.NDArray[np.float64]

RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 4))
X = RNG.standard_normal((4, 5))


def good(dY: F64) -> list[F64]:
    """The backward of Z = W X: dW = dY X^T, dX = W^T dY."""
    return [dY @ X.T, W.T @ dY]


def failed(result: ContractResult) -> set[str]:
    return {c.name for c in result.failures}


@pytest.mark.spec("GC-CONTRACT")
@pytest.mark.parametrize("seed", range(5))
def test_a_correct_backward_satisfies_the_contract(seed: int) -> None:
    watched = {"W": W, "X": X}
    before = {k: v.copy() for k, v in watched.items()}
    np.random.seed(3)
    state = json.dumps(np.random.get_state(legacy=False), default=str)
    result = check_backward_contract(
        good,
        (3, 5),
        seed=seed,
        expected_shapes=[(3, 4), (4, 5)],
        expected_dtypes=[np.float64, np.float64],
        inputs_to_watch=watched,
    )
    assert result.passed, result.format()
    names = {c.name for c in result.checks}
    assert {"homogeneous", "additive", "zero maps to zero", "deterministic"} <= names
    assert {"dY unchanged", "watched arrays unchanged", "shapes", "dtypes"} <= names
    assert all(np.array_equal(before[k], watched[k]) for k in watched)
    assert json.dumps(np.random.get_state(legacy=False), default=str) == state
    json.dumps(result.to_dict())
    result.raise_if_failed()


@pytest.mark.spec("GC-CONTRACT")
def test_a_single_array_output_is_accepted() -> None:
    assert check_backward_contract(lambda dY: W.T @ dY, (3, 5), expected_shapes=[(4, 5)]).passed


@pytest.mark.spec("GC-CONTRACT")
def test_a_backward_that_adds_a_constant_is_rejected() -> None:
    result = check_backward_contract(lambda dY: [W.T @ dY + 1e-3], (3, 5))
    assert failed(result) == {"zero maps to zero", "homogeneous", "additive"}
    with pytest.raises(GradcheckError, match="zero maps to zero"):
        result.raise_if_failed()


@pytest.mark.spec("GC-CONTRACT")
@pytest.mark.parametrize(
    ("name", "backward", "violated"),
    [
        ("abs", lambda dY: [W.T @ np.abs(dY)], "homogeneous"),
        ("square", lambda dY: [W.T @ dY**2], "homogeneous"),
        ("relu of dY", lambda dY: [W.T @ np.maximum(dY, 0)], "homogeneous"),
        ("clip", lambda dY: [W.T @ np.clip(dY, -0.5, 0.5)], "additive"),
    ],
)
def test_nonlinear_backwards_are_rejected(name: str, backward: object, violated: str) -> None:
    result = check_backward_contract(backward, (3, 5))  # type: ignore[arg-type]
    assert violated in failed(result), (name, result.format())


@pytest.mark.spec("GC-CONTRACT")
def test_a_nondeterministic_or_accumulating_backward_is_rejected() -> None:
    noisy_rng = np.random.default_rng(1)

    def noisy(dY: F64) -> list[F64]:
        return [W.T @ dY * (1 + 1e-15 * noisy_rng.standard_normal())]

    assert "deterministic" in failed(check_backward_contract(noisy, (3, 5)))

    accumulated = [np.zeros((4, 5))]

    def accumulating(dY: F64) -> list[F64]:
        accumulated[0] = accumulated[0] + W.T @ dY  # micrograd's classic: grads keep adding up
        return [accumulated[0]]

    assert "deterministic" in failed(check_backward_contract(accumulating, (3, 5)))


@pytest.mark.spec("GC-CONTRACT")
def test_mutating_dY_or_a_watched_array_is_rejected() -> None:
    def scales_dY(dY: F64) -> list[F64]:
        dY *= 2.0
        return [W.T @ dY / 2.0]

    result = check_backward_contract(scales_dY, (3, 5))
    assert failed(result) == {"dY unchanged"}, result.format()

    cache = {"A": np.ones((3, 5))}

    def mutates_cache(dY: F64) -> list[F64]:
        cache["A"][0, 0] = np.nextafter(cache["A"][0, 0], 2.0)  # one ulp, in place
        return [W.T @ dY]

    result = check_backward_contract(mutates_cache, (3, 5), inputs_to_watch=cache)
    assert failed(result) == {"watched arrays unchanged"}, result.format()


@pytest.mark.spec("GC-CONTRACT")
def test_wrong_shapes_dtypes_and_return_types_are_rejected() -> None:
    result = check_backward_contract(good, (3, 5), expected_shapes=[(4, 3), (4, 5)])
    assert failed(result) == {"shapes"}
    result = check_backward_contract(good, (3, 5), expected_shapes=[(3, 4)])
    assert failed(result) == {"shapes"}  # count differs
    as32 = check_backward_contract(
        lambda dY: [g.astype(np.float32) for g in good(dY)],
        (3, 5),
        expected_dtypes=[np.float64, np.float64],
    )
    assert failed(as32) == {"dtypes"}
    nothing = check_backward_contract(lambda dY: None, (3, 5))  # type: ignore[arg-type, return-value]
    assert "returns arrays" in failed(nothing)
    nan = check_backward_contract(lambda dY: [W.T @ dY * np.nan], (3, 5))
    assert "finite" in failed(nan)


@pytest.mark.spec("GC-CONTRACT")
def test_float32_backward_gets_a_float32_tolerance() -> None:
    W32 = W.astype(np.float32)
    result = check_backward_contract(
        lambda dY: [W32.T @ dY], (3, 5), dY_dtype=np.float32, expected_dtypes=[np.float32]
    )
    assert result.passed, result.format()


@pytest.mark.spec("GC-CONTRACT")
def test_a_backward_returning_a_varying_number_of_arrays_fails_additivity_without_crashing() -> (
    None
):
    calls = [0]

    def varying(dY: F64) -> list[F64]:
        calls[0] += 1
        return good(dY)[:1] if calls[0] == 5 else good(dY)  # the 5th call: backward(dY2)

    result = check_backward_contract(varying, (3, 5))
    assert "additive" in failed(result), result.format()
