"""The cost of a gradient check (``refnn.gradcheck.check_grad``) on small layers and models.

Small sizes on purpose: the elementwise mode costs 4 evaluations of J per input element. The
problems come from ``refnn.verify.problems``, exactly as ``make check`` builds them. Modules newer
than the first commits benchmarked (gradcheck, conv) are imported in ``setup``: benchmarking an
older commit (``make bench-compare``) then fails only the benchmarks that need them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np

from refnn import BinaryCrossEntropy, Dense, mlp
from refnn.types import DTypeLike
from refnn.verify.problems import Objective, layer_problem, model_problem

from .common import CONV_KERNEL, DTYPES, Timed, normal


def _dense(dtype: DTypeLike) -> Objective:
    layer = Dense(16, 8, rng=np.random.default_rng(0), dtype=dtype)
    return layer_problem(layer, normal((16, 8), dtype, seed=1))


def _mlp(dtype: DTypeLike) -> Objective:
    model = mlp([16, 8, 1], rng=np.random.default_rng(0), dtype=dtype)
    Y = (np.random.default_rng(2).random((1, 8)) < 0.5).astype(dtype)
    return model_problem(model, BinaryCrossEntropy(dtype=dtype), normal((16, 8), dtype, 1), Y)


def _conv(dtype: DTypeLike) -> Objective:
    from refnn import Conv2D

    layer = Conv2D(2, 3, CONV_KERNEL, padding=1, rng=np.random.default_rng(0), dtype=dtype)
    return layer_problem(layer, normal((2, 6, 6, 2), dtype, seed=1))


PROBLEMS: dict[str, Callable[[DTypeLike], Objective]] = {
    "dense 16->8,m=8": _dense,
    "mlp 16-8-1+bce,m=8": _mlp,
    "conv2d 2->3,6x6,m=2": _conv,
}


class CheckGrad(Timed):
    """``check_grad`` end to end: finite differences plus the comparison and its report."""

    params: ClassVar[list[list[Any]]] = [DTYPES, list(PROBLEMS), ["elementwise", "fast"]]
    param_names: ClassVar[list[str]] = ["dtype", "problem", "mode"]

    def setup(self, dtype: DTypeLike, problem: str, mode: str) -> None:
        from refnn.gradcheck import check_grad

        self.check_grad = check_grad
        self.problem = PROBLEMS[problem](dtype)
        self.mode: Literal["elementwise", "fast"] = "fast" if mode == "fast" else "elementwise"

    def teardown(self, dtype: DTypeLike, problem: str, mode: str) -> None:
        self.problem.restore()

    def time_check_grad(self, dtype: DTypeLike, problem: str, mode: str) -> None:
        p = self.problem
        self.check_grad(
            p.f, p.grad, p.inputs, wrt=p.wrt, mode=self.mode, allow_float32=dtype != "float64"
        )
