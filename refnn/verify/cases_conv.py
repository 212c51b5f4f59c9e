"""``make check`` cases for convolution, pooling, flatten and a small CNN end to end.

Max pooling is piecewise linear: its derivative jumps where two entries of a window tie. The
"distinct" cases draw inputs whose entries are all at least 0.02 apart (a shuffled grid), so no
finite-difference stencil straddles a tie; the "exact ties" case draws small integers, so many
windows hold several equal maxima and the checker's kink handling (GC-KINK) must move off them.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from refnn.activations import ReLU, Sigmoid
from refnn.conv import Conv2D
from refnn.dense import Dense
from refnn.flatten import Flatten
from refnn.losses import BinaryCrossEntropy
from refnn.model import Sequential
from refnn.pool import AvgPool2D, MaxPool2D
from refnn.types import FloatArray
from refnn.verify.cases import Case
from refnn.verify.problems import Problem, layer_problem, model_problem

CONV_IDS = ("CONV-SIZE", "CONV-COL", "CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
MAXPOOL_IDS = ("MAXPOOL-FWD", "MAXPOOL-BWD")
AVGPOOL_IDS = ("AVGPOOL-FWD", "AVGPOOL-BWD")
FLATTEN_IDS = ("FLATTEN-FWD", "FLATTEN-BWD")
CNN_IDS = (*CONV_IDS, *MAXPOOL_IDS, *FLATTEN_IDS, "CONV-INIT", "MODEL-FWD", "MODEL-BWD")

Pair = tuple[int, int]

#: (C, F, H, W, kernel, stride, padding, m, seed): square and non-square kernels, stride 1..3
#: (stride > kernel included), padding 0..2, a kernel equal to the input and one equal to the
#: padded input (1 x 1 outputs).
CONV_CONFIGS: tuple[tuple[int, int, int, int, Pair, Pair, Pair, int, int], ...] = (
    (2, 3, 5, 5, (3, 3), (1, 1), (0, 0), 2, 0),
    (3, 2, 4, 4, (3, 3), (1, 1), (1, 1), 2, 1),
    (2, 2, 6, 5, (3, 2), (2, 1), (1, 0), 2, 2),
    (1, 2, 7, 7, (2, 2), (3, 3), (0, 0), 3, 0),
    (2, 3, 5, 6, (1, 2), (2, 3), (2, 1), 2, 1),
    (2, 2, 4, 5, (4, 5), (1, 1), (0, 0), 3, 2),
    (1, 2, 3, 2, (5, 4), (1, 1), (1, 1), 2, 0),
    (1, 1, 1, 1, (1, 1), (1, 1), (0, 0), 1, 1),
)

#: (C, H, W, kernel, stride or None, m, seed): default stride, overlapping, gaps, non-square.
POOL_CONFIGS: tuple[tuple[int, int, int, Pair, Pair | None, int, int], ...] = (
    (2, 4, 4, (2, 2), None, 2, 0),
    (2, 5, 5, (3, 3), (1, 1), 2, 1),
    (1, 7, 6, (2, 2), (3, 2), 3, 2),
    (3, 5, 4, (2, 3), (1, 1), 2, 0),
)


def distinct_values(seed: int, shape: tuple[int, ...]) -> FloatArray:
    """Entries of a shuffled grid in [-2, 2): any two differ by at least 4 / size (>= 0.02 here)."""
    size = int(np.prod(shape))
    grid = -2.0 + 4.0 * np.arange(size) / size
    out: FloatArray = np.random.default_rng(seed).permutation(grid).reshape(shape)
    return out


def _conv(
    C: int, F: int, H: int, W: int, kernel: Pair, stride: Pair, padding: Pair, m: int, seed: int
) -> Problem:
    rng = np.random.default_rng(seed)
    layer = Conv2D(C, F, kernel, stride=stride, padding=padding, rng=rng)
    layer.params["b"][...] = rng.standard_normal((F, 1))  # non-zero bias: check db for real
    return layer_problem(layer, rng.standard_normal((C, H, W, m)), seed=seed)


def _maxpool(
    C: int, H: int, W: int, kernel: Pair, stride: Pair | None, m: int, seed: int
) -> Problem:
    X = distinct_values(seed, (C, H, W, m))
    return layer_problem(MaxPool2D(kernel, stride=stride), X, seed=seed)


def _maxpool_ties(seed: int) -> Problem:
    X = np.random.default_rng(seed).integers(0, 3, (2, 4, 4, 2)).astype(np.float64)
    return layer_problem(MaxPool2D(2, stride=1), X, seed=seed)


def _avgpool(
    C: int, H: int, W: int, kernel: Pair, stride: Pair | None, m: int, seed: int
) -> Problem:
    X = np.random.default_rng(seed).standard_normal((C, H, W, m))
    return layer_problem(AvgPool2D(kernel, stride=stride), X, seed=seed)


def _flatten(shape: tuple[int, ...], seed: int) -> Problem:
    return layer_problem(Flatten(), np.random.default_rng(seed).standard_normal(shape), seed=seed)


def _cnn(m: int, seed: int) -> Problem:
    """Conv2D(2->3, 3x3, pad 1) -> ReLU -> MaxPool2D(2) -> Flatten -> Dense(27->1) -> Sigmoid."""
    rng = np.random.default_rng(seed)
    conv = Conv2D(2, 3, 3, padding=1, rng=rng)
    conv.params["b"][...] = 0.1 * rng.standard_normal((3, 1))
    model = Sequential(
        [conv, ReLU(), MaxPool2D(2), Flatten(), Dense(3 * 3 * 3, 1, rng=rng), Sigmoid()]
    )
    X = rng.standard_normal((2, 6, 6, m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    return model_problem(model, BinaryCrossEntropy(), X, Y)


def cases() -> list[Case]:
    """Conv2D over stride/padding/kernel configurations, both pools, Flatten, and a CNN."""
    out: list[Case] = []
    for C, F, H, W, k, s, p, m, seed in CONV_CONFIGS:
        out.append(
            Case(
                "Conv2D",
                f"{C}->{F} {H}x{W} k={k[0]}x{k[1]} s={s[0]},{s[1]} p={p[0]},{p[1]} m={m}",
                CONV_IDS,
                partial(_conv, C, F, H, W, k, s, p, m, seed),
            )
        )
    for C, H, W, k, ps, m, seed in POOL_CONFIGS:
        stride = "default" if ps is None else f"{ps[0]},{ps[1]}"
        config = f"{C}x{H}x{W} k={k[0]}x{k[1]} s={stride} m={m}"
        out.append(
            Case(
                "MaxPool2D",
                config + " distinct",
                MAXPOOL_IDS,
                partial(_maxpool, C, H, W, k, ps, m, seed),
            )
        )
        out.append(
            Case("AvgPool2D", config, AVGPOOL_IDS, partial(_avgpool, C, H, W, k, ps, m, seed))
        )
    out.append(
        Case(
            "MaxPool2D", "2x4x4 k=2x2 s=1,1 m=2 exact ties", MAXPOOL_IDS, partial(_maxpool_ties, 3)
        )
    )
    out.append(Case("Flatten", "3x4x2 m=3", FLATTEN_IDS, partial(_flatten, (3, 4, 2, 3), 0)))
    out.append(Case("Flatten", "1x1x1 m=1", FLATTEN_IDS, partial(_flatten, (1, 1, 1, 1), 1)))
    for m, seed in ((4, 0), (3, 1)):
        out.append(
            Case(
                "cnn conv-relu-maxpool-flatten-dense-sigmoid",
                f"2x6x6 -> 1 m={m} seed={seed}",
                CNN_IDS,
                partial(_cnn, m, seed),
            )
        )
    return out
