"""The one table of what ``make check`` verifies: a case is one component in one configuration.

Every registered component (NOTE-REGISTRY) brings its own cases: each example its class
declares (``examples()``, next to its math) becomes one, in float64 or float32 as the example
says. Together they cover every code path of every backward: each layer in float64 and float32;
dropout while training (frozen mask), at inference and with p_drop = 0 (its identity paths);
ReLU and max pooling on their kinks (exact zeros, exact ties: the checker's kink handling
GC-KINK must move off them); the convolution's and pools' geometries (overlapping windows, gaps,
1 x 1 outputs); sequences of 1 to 10 steps; every loss with hard and soft labels. This module
adds whole models with and without L2. Max pooling's "distinct" inputs have entries at least
0.02 apart, so no finite-difference stencil straddles a tie. Optimizers have no derivative to
check (``tests/test_optim*.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from refnn.conv import DIRECT_IDS
from refnn.flatten import Flatten
from refnn.losses import CrossEntropy, SoftmaxCrossEntropy
from refnn.pool import MaxPool2D
from refnn.registry import components
from refnn.verify.builders import (
    L2Kind,
    cnn_objective,
    example_objective,
    l2_objective,
    mlp_objective,
)
from refnn.verify.problems import Objective


@dataclass(frozen=True)
class Case:
    """One gradient check: ``build()`` returns the objective, called only when the case runs.

    ``specs`` are the IDs whose derivatives the case verifies; ``float32`` lets the checker judge
    float32 inputs (at float32's precision, GC-INPUTS).
    """

    component: str
    config: str
    specs: tuple[str, ...]
    build: Callable[[], Objective]
    float32: bool = False


F32 = np.float32
SEEDS = (0, 1, 2)


def _all_ids(specs: object) -> tuple[str, ...]:
    """Every spec ID a class declares, in order, once."""
    assert isinstance(specs, dict)
    return tuple(dict.fromkeys(i for ids in specs.values() for i in ids))


MODEL = ("MODEL-FWD", "MODEL-BWD")
MLP = (*MODEL, "INIT-HE")
CNN = (*DIRECT_IDS, *_all_ids(MaxPool2D.specs), *_all_ids(Flatten.specs), "CONV-INIT", *MODEL)
L2 = ("L2-COST", "L2-GRAD", *MODEL)
SOFTMAX_CE = _all_ids(SoftmaxCrossEntropy.specs)


def component_cases() -> list[Case]:
    """One case per example of every registered layer and loss, in registration order (the
    float32 ones last, as a group)."""
    out: list[Case] = []
    f32: list[Case] = []
    for name, cls in components().items():
        if cls.component_kind == "optimizer":
            continue
        for example in cls.examples():
            specs = example.specs or _all_ids(dict(cls.specs))
            if not specs:
                raise ValueError(f"{name} declares no spec IDs: make check would verify nothing")
            build = partial(example_objective, cls, example)
            case = Case(
                name + (" float32" if example.float32 else ""),
                example.label,
                specs,
                build,
                example.float32,
            )
            (f32 if example.float32 else out).append(case)
    return out + f32


def all_cases() -> list[Case]:
    """Every case ``make check`` runs, in report order."""
    out = component_cases()
    for dims, m, logits in (
        ((4, 5, 1), 6, False),
        ((3, 6, 4, 2), 5, False),
        ((5, 4, 4, 1), 4, True),
    ):
        name = "mlp " + "-".join(map(str, dims)) + (" logits" if logits else "")
        for seed in SEEDS[:2]:
            build = partial(mlp_objective, dims, m, seed, logits, np.float64)
            out.append(Case(name, f"m={m} seed={seed}", MLP, build))
    for m, seed in ((4, 0), (3, 1)):
        build = partial(cnn_objective, m, seed)
        out.append(Case("cnn conv-relu-maxpool-dense", f"2x6x6->1 m={m} seed={seed}", CNN, build))
    l2_models: tuple[tuple[L2Kind, tuple[str, ...]], ...] = (
        ("mlp", SOFTMAX_CE),
        ("tanh-softmax", ("TANH-BWD", "SOFTMAX-BWD", *_all_ids(CrossEntropy.specs))),
        ("dropout", ("DROPOUT-BWD", *SOFTMAX_CE)),
    )
    for kind, extra in l2_models:
        for seed in SEEDS[:2]:
            out.append(
                Case(
                    f"L2 model ({kind})",
                    f"lambda=0.7 m=5 seed={seed}",
                    (*L2, *extra),
                    partial(l2_objective, kind, 0.7, seed),
                )
            )
    # a model computing in float32 end to end (NOTE-DTYPE)
    build = partial(mlp_objective, (3, 6, 4, 2), 5, 0, False, F32)
    out.append(Case("mlp 3-6-4-2 float32", "m=5 seed=0", MLP, build, float32=True))
    return out
