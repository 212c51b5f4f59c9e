"""``make check`` cases for the dense core: Dense, Sigmoid, ReLU, BCE, and whole L-layer models."""

from __future__ import annotations

from functools import partial

import numpy as np

from refnn.activations import ReLU, Sigmoid
from refnn.dense import Dense
from refnn.losses import BinaryCrossEntropy, BinaryCrossEntropyWithLogits
from refnn.model import mlp
from refnn.types import FloatArray
from refnn.verify.cases import Case
from refnn.verify.problems import Problem, layer_problem, loss_problem, model_problem

SEEDS = (0, 1, 2)


def _normal(seed: int, *shape: int) -> FloatArray:
    out: FloatArray = np.random.default_rng(seed).standard_normal(shape)
    return out


def _labels(seed: int, k: int, m: int) -> FloatArray:
    out: FloatArray = (np.random.default_rng(seed + 100).random((k, m)) < 0.5).astype(np.float64)
    return out


def _dense(n_in: int, n_out: int, m: int, seed: int) -> Problem:
    layer = Dense(n_in, n_out, rng=np.random.default_rng(seed))
    layer.params["b"][...] = _normal(seed + 7, n_out, 1)  # non-zero bias: check db for real
    return layer_problem(layer, _normal(seed, n_in, m), seed=seed)


def _sigmoid(n: int, m: int, seed: int) -> Problem:
    return layer_problem(Sigmoid(), 3 * _normal(seed, n, m), seed=seed)


def _relu(n: int, m: int, seed: int) -> Problem:
    Z = _normal(seed, n, m)
    Z.flat[:: max(1, Z.size // 4)] = 0.0  # exact kinks: the checker must not raise false alarms
    return layer_problem(ReLU(), Z, seed=seed)


def _bce(k: int, m: int, seed: int) -> Problem:
    A = np.random.default_rng(seed).uniform(0.2, 0.8, (k, m))  # away from the domain edges
    return loss_problem(BinaryCrossEntropy(), A, _labels(seed, k, m))


def _bce_logits(k: int, m: int, seed: int) -> Problem:
    return loss_problem(
        BinaryCrossEntropyWithLogits(), 3 * _normal(seed, k, m), _labels(seed, k, m)
    )


def _mlp(dims: tuple[int, ...], m: int, seed: int, logits: bool) -> Problem:
    model = mlp(dims, rng=np.random.default_rng(seed), output="linear" if logits else "sigmoid")
    loss = BinaryCrossEntropyWithLogits() if logits else BinaryCrossEntropy()
    return model_problem(model, loss, _normal(seed, dims[0], m), _labels(seed, dims[-1], m))


def cases() -> list[Case]:
    """Every dense-core component, for several shapes and seeds."""
    out: list[Case] = []
    dense_ids = ("DENSE-FWD", "DENSE-DW", "DENSE-DB", "DENSE-DX")
    for n_in, n_out, m in ((3, 4, 5), (1, 1, 1), (7, 2, 3)):
        for seed in SEEDS:
            out.append(
                Case(
                    "Dense",
                    f"{n_in}->{n_out} m={m} seed={seed}",
                    dense_ids,
                    partial(_dense, n_in, n_out, m, seed),
                )
            )
    for seed in SEEDS:
        out.append(
            Case(
                "Sigmoid",
                f"4x6 seed={seed}",
                ("SIGMOID-FWD", "SIGMOID-BWD"),
                partial(_sigmoid, 4, 6, seed),
            )
        )
        out.append(
            Case(
                "ReLU",
                f"4x6 with zeros seed={seed}",
                ("RELU-FWD", "RELU-BWD"),
                partial(_relu, 4, 6, seed),
            )
        )
        out.append(
            Case(
                "BinaryCrossEntropy",
                f"3x5 seed={seed}",
                ("BCE-COST", "BCE-GRAD", "BCE-CLIP"),
                partial(_bce, 3, 5, seed),
            )
        )
        out.append(
            Case(
                "BinaryCrossEntropyWithLogits",
                f"3x5 seed={seed}",
                ("BCE-LOGITS-COST", "BCE-LOGITS-GRAD"),
                partial(_bce_logits, 3, 5, seed),
            )
        )
    # large enough (W: 64 x 48 = 3072 elements) that the checker's fast mode (GC-PROJ) decides
    out.append(
        Case("Dense", "48->64 m=40 seed=0 (fast mode)", dense_ids, partial(_dense, 48, 64, 40, 0))
    )
    model_ids = ("MODEL-FWD", "MODEL-BWD", "INIT-HE")
    for dims, m, logits in (
        ((4, 5, 1), 6, False),
        ((3, 6, 4, 2), 5, False),
        ((5, 4, 4, 1), 4, True),
    ):
        for seed in SEEDS[:2]:
            name = "mlp " + "-".join(map(str, dims)) + (" logits" if logits else "")
            out.append(
                Case(
                    name,
                    f"m={m} seed={seed}",
                    model_ids,
                    partial(_mlp, dims, m, seed, logits),
                )
            )
    return out
