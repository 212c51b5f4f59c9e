"""refnn.gradcheck on smooth float32 functions: no false "inconclusive", 1% errors still WRONG.

Regression of the make-check cases "BinaryCrossEntropy float32" and "mlp 3-6-4-2 float32": an
element whose stencil at h was loose (f curved on the scale of float32's large step) shrank to
h/16, where the measured float32 rounding dominated the bound, and was excluded although its
stencil there was smooth and its analytic value within tolerance. GC-KINK, GC-NOISE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

import refnn
from refnn.gradcheck import check_grad
from refnn.types import FloatArray
from refnn.verify.problems import Objective, loss_problem, model_problem

F32 = np.float32


def _bce(seed: int) -> Objective:
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.1, 0.9, (4, 5)).astype(F32)
    Y = (rng.random((4, 5)) < 0.5).astype(F32)
    return loss_problem(refnn.BinaryCrossEntropy(dtype=F32), A, Y)


def _mlp(seed: int) -> Objective:
    rng = np.random.default_rng(seed)
    model = refnn.mlp([3, 6, 4, 2], rng=rng, dtype=F32)
    X = rng.standard_normal((3, 5)).astype(F32)
    Y = (rng.random((2, 5)) < 0.5).astype(F32)
    return model_problem(model, refnn.BinaryCrossEntropy(dtype=F32), X, Y)


def _scaled(grad: Callable[..., Sequence[FloatArray]], k: float) -> Callable[..., list[FloatArray]]:
    def scaled(*args: FloatArray) -> list[FloatArray]:
        return [F32(k) * g for g in grad(*args)]

    return scaled


CASES = [(_bce, s) for s in range(4)] + [(_mlp, s) for s in range(4)]


@pytest.mark.spec("GC-KINK", "GC-NOISE", "GC-TOL")
@pytest.mark.parametrize(("build", "seed"), CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_correct_smooth_float32_gradient_passes(
    build: Callable[[int], Objective], seed: int
) -> None:
    o = build(seed)
    try:
        result = check_grad(o.f, o.grad, o.inputs, wrt=o.wrt, allow_float32=True)
    finally:
        o.restore()
    assert result.passed, result


@pytest.mark.spec("GC-KINK", "GC-TOL")
@pytest.mark.parametrize("k", [1.01, 0.99])
@pytest.mark.parametrize(("build", "seed"), CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_float32_gradient_1_percent_off_is_wrong(
    build: Callable[[int], Objective], seed: int, k: float
) -> None:
    o = build(seed)
    try:
        result = check_grad(o.f, _scaled(o.grad, k), o.inputs, wrt=o.wrt, allow_float32=True)
    finally:
        o.restore()
    assert any(a.verdict == "WRONG" for a in result.arrays), result
