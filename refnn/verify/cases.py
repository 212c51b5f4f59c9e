"""The one table of what ``make check`` verifies: a case is one component in one configuration.

The cases cover every code path of every backward: each layer in float64 and float32; dropout
while training (frozen mask), at inference and with p_drop = 0 (its identity paths); ReLU and
max pooling on their kinks (exact zeros, exact ties: the checker's kink handling GC-KINK must move
off them); the convolution's and pools' geometries (overlapping windows, gaps, 1 x 1 outputs);
sequences of 1 to 10 steps; every loss with hard and soft labels; whole models with and without
L2. Max pooling's "distinct" inputs have entries at least 0.02 apart, so no finite-difference
stencil straddles a tie. Optimizers have no derivative to check (``tests/test_optim*.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import product
from typing import Any

import numpy as np

from refnn import (
    LSTM,
    AvgPool2D,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LastStep,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)
from refnn.verify.builders import (
    InputKind,
    L2Kind,
    Make,
    ce_objective,
    cnn_objective,
    l2_objective,
    layer_objective,
    loss_objective,
    lstm_state_objective,
    mlp_objective,
    plain,
    seeded,
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
DENSE = ("DENSE-FWD", "DENSE-DW", "DENSE-DB", "DENSE-DX")
SIGMOID, RELU = ("SIGMOID-FWD", "SIGMOID-BWD"), ("RELU-FWD", "RELU-BWD")
TANH = ("TANH-FWD", "TANH-BWD")
SOFTMAX, DROPOUT = ("SOFTMAX-FWD", "SOFTMAX-BWD"), ("DROPOUT-FWD", "DROPOUT-BWD")
LAST, FLATTEN = ("SEQ-LAST-FWD", "SEQ-LAST-BWD"), ("FLATTEN-FWD", "FLATTEN-BWD")
LSTM_IDS = (
    "LSTM-GATES",
    "LSTM-CELL",
    "LSTM-HIDDEN",
    "LSTM-BPTT-H",
    "LSTM-BPTT-C",
    "LSTM-DGATES",
    "LSTM-DW",
    "LSTM-DB",
    "LSTM-DX",
)
CONV = ("CONV-SIZE", "CONV-COL", "CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
WINO = ("CONV-SIZE", "WINO-1D", "WINO-FWD", "WINO-DW", "WINO-DX", "CONV-DB")
MAXPOOL, AVGPOOL = ("MAXPOOL-FWD", "MAXPOOL-BWD"), ("AVGPOOL-FWD", "AVGPOOL-BWD")
BCE, BCE_LOGITS = ("BCE-COST", "BCE-GRAD", "BCE-CLIP"), ("BCE-LOGITS-COST", "BCE-LOGITS-GRAD")
CE, SOFTMAX_CE = ("CE-COST", "CE-GRAD"), ("SOFTMAX-CE-COST", "SOFTMAX-CE-GRAD")
MODEL = ("MODEL-FWD", "MODEL-BWD")
MLP = (*MODEL, "INIT-HE")
CNN = (*CONV, *MAXPOOL, *FLATTEN, "CONV-INIT", *MODEL)
L2 = ("L2-COST", "L2-GRAD", *MODEL)
LSTM_STATE = ("LSTM-STATE-INIT", "LSTM-DH0", "LSTM-DC0")

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
#: 3 x 3 stride 1 for the Winograd F(4x4, 3x3) tiles: 2 x 2 tiles with the last ones cut, a 1 x 1
#: output (15 of a tile's 16 outputs dropped), padding 2 on a 4 x 3 image.
WINO_CONFIGS: tuple[tuple[int, int, int, int, Pair, Pair, Pair, int, int], ...] = (
    (2, 3, 5, 6, (3, 3), (1, 1), (1, 1), 2, 1),
    (1, 2, 3, 3, (3, 3), (1, 1), (0, 0), 1, 2),
    (2, 2, 4, 3, (3, 3), (1, 1), (2, 2), 2, 0),
)
#: (C, H, W, kernel, stride or None, m, seed): default stride, overlapping, gaps, non-square.
POOL_CONFIGS: tuple[tuple[int, int, int, Pair, Pair | None, int, int], ...] = (
    (2, 4, 4, (2, 2), None, 2, 0),
    (2, 5, 5, (3, 3), (1, 1), 2, 1),
    (1, 7, 6, (2, 2), (3, 2), 3, 2),
    (3, 5, 4, (2, 3), (1, 1), 2, 0),
)
#: (n_in, n_hidden, T, m, seed): every T from 1 to 10, small sizes so the check stays fast.
LSTM_CONFIGS = (
    (1, 1, 1, 1, 0),
    (3, 2, 1, 4, 1),
    (2, 3, 2, 3, 2),
    (3, 4, 3, 2, 0),
    (1, 2, 4, 3, 1),
    (2, 2, 5, 2, 2),
    (4, 3, 6, 1, 0),
    (2, 3, 7, 2, 1),
    (3, 2, 8, 2, 2),
    (1, 3, 9, 2, 0),
    (2, 2, 10, 3, 1),
    (3, 3, 10, 2, 2),
)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def all_cases() -> list[Case]:
    """Every case ``make check`` runs, in report order."""
    out: list[Case] = []

    def layer(
        component: str,
        config: str,
        specs: tuple[str, ...],
        make: Make,
        shape: tuple[int, ...],
        seed: int = 0,
        **options: Any,
    ) -> None:
        """A layer's case: J = Σ U ⊙ layer(X) over X and every parameter (layer_problem)."""
        float32 = options.get("dtype") is F32
        component += " float32" if float32 else ""
        build = partial(layer_objective, make, shape, seed, **options)
        out.append(Case(component, config, specs, build, float32))

    def loss(component: str, config: str, specs: tuple[str, ...], *args: Any) -> None:
        """A loss's case: args are loss_objective's (loss, logits, labels, seed[, dtype])."""
        float32 = F32 in args
        component += " float32" if float32 else ""
        out.append(Case(component, config, specs, partial(loss_objective, *args), float32))

    for (n_in, n_out, m), seed in product(((3, 4, 5), (1, 1, 1), (7, 2, 3)), SEEDS):
        layer(
            "Dense",
            f"{n_in}->{n_out} m={m} seed={seed}",
            DENSE,
            seeded(Dense, n_in, n_out),
            (n_in, m),
            seed,
        )
    # large enough (W: 64 x 48 = 3072 elements) that the checker's fast mode (GC-PROJ) decides
    layer("Dense", "48->64 m=40 (fast mode)", DENSE, seeded(Dense, 48, 64), (48, 40))
    for seed in SEEDS:
        layer("Sigmoid", f"4x6 seed={seed}", SIGMOID, plain(Sigmoid), (4, 6), seed, scale=3.0)
        layer("ReLU", f"4x6 with zeros seed={seed}", RELU, plain(ReLU), (4, 6), seed, x="zeros")
        for s in ((4, 6), (2, 3, 4)):
            layer("Tanh", f"{_shape(s)} seed={seed}", TANH, plain(Tanh), s, seed, scale=2.0)
        for s in ((4, 6), (2, 1), (3, 2, 4)):  # k = 1 would make softmax the constant 1
            layer(
                "Softmax", f"{_shape(s)} seed={seed}", SOFTMAX, plain(Softmax), s, seed, scale=2.0
            )
        for p_drop, s in ((0.5, (4, 6)), (0.2, (3, 2, 5))):
            layer(
                "Dropout",
                f"p_drop={p_drop} {_shape(s)} frozen mask seed={seed}",
                DROPOUT,
                seeded(Dropout, p_drop),
                s,
                seed,
            )
    # Dropout's identity paths: at inference, and p_drop = 0 while training
    layer(
        "Dropout", "p_drop=0.5 4x6 inference", DROPOUT, seeded(Dropout, 0.5), (4, 6), training=False
    )
    layer(
        "Dropout",
        "p_drop=0.2 3x2x5 inference seed=1",
        DROPOUT,
        seeded(Dropout, 0.2),
        (3, 2, 5),
        1,
        training=False,
    )
    layer("Dropout", "p_drop=0 4x6 training", DROPOUT, seeded(Dropout, 0.0), (4, 6))
    for seed in SEEDS:
        loss(
            "BinaryCrossEntropy", f"4x5 seed={seed}", BCE, BinaryCrossEntropy, False, "binary", seed
        )
        loss(
            "BinaryCrossEntropy",
            f"4x5 soft labels seed={seed}",
            BCE,
            partial(BinaryCrossEntropy, soft_labels=True),
            False,
            "soft",
            seed,
        )
        loss(
            "BinaryCrossEntropyWithLogits",
            f"4x5 seed={seed}",
            BCE_LOGITS,
            BinaryCrossEntropyWithLogits,
            True,
            "binary",
            seed,
        )
        for labels in ("one-hot", "soft"):
            soft = labels == "soft"
            build = partial(ce_objective, soft, seed)
            out.append(Case("CrossEntropy", f"4x5 {labels} after softmax seed={seed}", CE, build))
            loss(
                "SoftmaxCrossEntropy",
                f"4x5 {labels} seed={seed}",
                SOFTMAX_CE,
                partial(SoftmaxCrossEntropy, soft_labels=soft),
                True,
                labels,
                seed,
            )
    for n_in, n_h, T, m, seed in LSTM_CONFIGS:
        layer(
            "LSTM",
            f"n_in={n_in} n_hidden={n_h} T={T} m={m} seed={seed}",
            LSTM_IDS,
            seeded(LSTM, n_in, n_h),
            (n_in, T, m),
            seed,
        )
    for n_in, n_h, T, m, seed in ((2, 3, 1, 2, 0), (3, 2, 5, 3, 1), (2, 3, 10, 2, 2)):
        build = partial(lstm_state_objective, n_in, n_h, T, m, seed)
        config = f"{n_in}->{n_h} T={T} m={m} from (h0, c0)"
        out.append(Case("LSTM", config, (*LSTM_IDS, *LSTM_STATE), build))
    for T, seed in ((1, 0), (4, 1), (7, 2)):
        layer("LastStep", f"n=3 T={T} m=2 seed={seed}", LAST, plain(LastStep), (3, T, 2), seed)
    for C, F, H, W, k, s, p, m, seed in (*CONV_CONFIGS, *WINO_CONFIGS):
        geometry = f"{C}->{F} {H}x{W} k={k[0]}x{k[1]} s={s[0]},{s[1]} p={p[0]},{p[1]} m={m}"
        # 3 x 3 at stride 1 takes the Winograd fast path by default; the direct path stays the
        # reference a user can select, and both are checked
        fast = k == (3, 3) and s == (1, 1)
        for algorithm in ("winograd", "direct") if fast else ("direct",):
            layer(
                "Conv2D",
                f"{C}->{F} {H}x{W} k=3x3 p={p[0]},{p[1]} m={m} {algorithm}" if fast else geometry,
                WINO if algorithm == "winograd" else CONV,
                seeded(Conv2D, C, F, k, stride=s, padding=p, algorithm=algorithm),
                (C, H, W, m),
                seed,
            )
    for C, H, W, k, ps, m, seed in POOL_CONFIGS:
        stride = "default" if ps is None else f"{ps[0]},{ps[1]}"
        config = f"{C}x{H}x{W} k={k[0]}x{k[1]} s={stride} m={m}"
        layer(
            "MaxPool2D",
            config + " distinct",
            MAXPOOL,
            plain(MaxPool2D, k, stride=ps),
            (C, H, W, m),
            seed,
            x="distinct",
        )
        layer("AvgPool2D", config, AVGPOOL, plain(AvgPool2D, k, stride=ps), (C, H, W, m), seed)
    layer(
        "MaxPool2D",
        "2x4x4 k=2x2 s=1,1 m=2 exact ties",
        MAXPOOL,
        plain(MaxPool2D, 2, stride=1),
        (2, 4, 4, 2),
        3,
        x="ties",
    )
    # layers reused across batch sizes (what they keep between calls must follow m)
    for name, specs, make, shape in (
        ("Conv2D", CONV, seeded(Conv2D, 2, 3, 3, padding=1), (2, 5, 4, 2)),
        ("MaxPool2D", MAXPOOL, plain(MaxPool2D, 2), (2, 4, 4, 2)),
        ("LSTM", LSTM_IDS, seeded(LSTM, 2, 3), (2, 3, 2)),
    ):
        x: InputKind = "distinct" if name == "MaxPool2D" else "normal"
        layer(
            name,
            f"{_shape(shape)} after a batch of m=3",
            specs,
            make,
            shape,
            x=x,
            after_other_batch=True,
        )
    layer("Flatten", "3x4x2 m=3", FLATTEN, plain(Flatten), (3, 4, 2, 3))
    layer("Flatten", "1x1x1 m=1 seed=1", FLATTEN, plain(Flatten), (1, 1, 1, 1), 1)
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
        ("tanh-softmax", ("TANH-BWD", "SOFTMAX-BWD", *CE)),
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
    # every layer, two losses and a model computing in float32 end to end (NOTE-DTYPE)
    f32 = partial(layer, dtype=F32)
    f32("Dense", "3->4 m=5", DENSE, seeded(Dense, 3, 4), (3, 5))
    f32("Sigmoid", "4x6", SIGMOID, plain(Sigmoid), (4, 6), scale=3.0)
    f32("ReLU", "4x6 with zeros", RELU, plain(ReLU), (4, 6), x="zeros")
    f32("Tanh", "4x6", TANH, plain(Tanh), (4, 6), scale=2.0)
    f32("Softmax", "4x6", SOFTMAX, plain(Softmax), (4, 6), scale=2.0)
    f32("Dropout", "p_drop=0.5 4x6 frozen mask", DROPOUT, seeded(Dropout, 0.5), (4, 6))
    f32(
        "Dropout", "p_drop=0.5 4x6 inference", DROPOUT, seeded(Dropout, 0.5), (4, 6), training=False
    )
    f32("LastStep", "n=3 T=4 m=2", LAST, plain(LastStep), (3, 4, 2))
    f32("LSTM", "n_in=2 n_hidden=3 T=4 m=2", LSTM_IDS, seeded(LSTM, 2, 3), (2, 4, 2))
    f32(
        "Conv2D",
        "2->3 5x5 k=3x3 s=2,1 p=1,0 m=2",
        CONV,
        seeded(Conv2D, 2, 3, 3, stride=(2, 1), padding=(1, 0)),
        (2, 5, 5, 2),
    )
    pools: tuple[tuple[str, tuple[str, ...], Make, InputKind], ...] = (
        ("MaxPool2D", MAXPOOL, plain(MaxPool2D, 3, stride=1), "distinct"),
        ("AvgPool2D", AVGPOOL, plain(AvgPool2D, 3, stride=1), "normal"),
    )
    for name, pool_specs, make, x in pools:
        config = "2x5x5 k=3x3 s=1,1 m=2" + (" distinct" if x == "distinct" else "")
        f32(name, config, pool_specs, make, (2, 5, 5, 2), x=x)
    f32("Flatten", "3x4x2 m=3", FLATTEN, plain(Flatten), (3, 4, 2, 3))
    loss(
        "BinaryCrossEntropy",
        "4x5",
        BCE,
        partial(BinaryCrossEntropy, dtype=F32),
        False,
        "binary",
        0,
        F32,
    )
    loss(
        "SoftmaxCrossEntropy",
        "4x5 one-hot",
        SOFTMAX_CE,
        partial(SoftmaxCrossEntropy, dtype=F32),
        True,
        "one-hot",
        0,
        F32,
    )
    build = partial(mlp_objective, (3, 6, 4, 2), 5, 0, False, F32)
    out.append(Case("mlp 3-6-4-2 float32", "m=5 seed=0", MLP, build, float32=True))
    return out
