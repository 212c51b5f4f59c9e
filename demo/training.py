"""Train one demo run with per-epoch progress: cost, train and test accuracy, time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from demo.data import Split
from refnn.losses import Loss
from refnn.model import Sequential
from refnn.optim import Adam, Optimizer
from refnn.train import fit
from refnn.types import FloatArray


def accuracy(model: Sequential, X: FloatArray, Y: FloatArray, *, batch: int = 2048) -> float:
    """Fraction of examples classified right, at inference (``training=False``).

    One output row (binary): the model's output is a probability, class 1 when >= 0.5. Several
    rows (k classes, one-hot Y): the arg max of the output (logits or probabilities).
    """
    m: int = X.shape[-1]
    right = 0
    for start in range(0, m, batch):
        A = model.forward(X[..., start : start + batch], training=False)
        Y_b = Y[..., start : start + batch]
        if A.shape[0] == 1:
            right += int(np.sum((A >= 0.5) == (Y_b >= 0.5)))
        else:
            right += int(np.sum(np.argmax(A, axis=0) == np.argmax(Y_b, axis=0)))
    return right / m


@dataclass(frozen=True)
class EpochRecord:
    """One line of progress."""

    epoch: int
    cost: float
    train_accuracy: float
    test_accuracy: float
    seconds: float  # training time of this epoch (evaluation excluded)
    elapsed: float  # since the run started, evaluation included


@dataclass
class RunResult:
    """What a demo run reports; ``records`` has one entry per epoch."""

    name: str
    description: str
    epochs: int
    records: list[EpochRecord] = field(default_factory=list)
    wall_seconds: float = 0.0
    model: Sequential | None = None
    data: Split | None = None
    plot: Path | None = None
    saved: Path | None = None

    @property
    def costs(self) -> list[float]:
        return [r.cost for r in self.records]

    @property
    def train_accuracy(self) -> float:
        return self.records[-1].train_accuracy

    @property
    def test_accuracy(self) -> float:
        return self.records[-1].test_accuracy

    def numbers(self) -> list[tuple[int, float, float, float]]:
        """Everything that must repeat exactly between two runs (no times)."""
        return [(r.epoch, r.cost, r.train_accuracy, r.test_accuracy) for r in self.records]

    def summary(self) -> str:
        return (
            f"{self.name}: train accuracy {100 * self.train_accuracy:.2f}%, "
            f"test accuracy {100 * self.test_accuracy:.2f}%, {self.epochs} epochs, "
            f"{self.wall_seconds:.1f} s"
        )


def train_run(
    name: str,
    description: str,
    model: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    data: Split,
    *,
    epochs: int,
    batch_size: int | None,
    seed: int,
    out: TextIO,
    clock: Callable[[], float] = time.perf_counter,
) -> RunResult:
    """Train ``model`` on ``data`` with :func:`refnn.fit`, printing one line per epoch to ``out``.

    The mini-batch order comes from ``np.random.default_rng(seed)``: with the model's own seeded
    initialisation, the printed costs and accuracies repeat exactly from run to run.
    """
    result = RunResult(name, description, epochs, model=model, data=data)
    width = len(str(epochs))
    print(f"== {name}: {description}", file=out)
    print(
        f"   data: {data.name}, {data.m_train} train / {data.m_test} test examples; "
        f"{epochs} epochs, batch {batch_size or data.m_train}",
        file=out,
        flush=True,
    )
    start = clock()
    mark = start

    def on_epoch(epoch: int, cost: float) -> None:
        nonlocal mark
        trained = clock()
        record = EpochRecord(
            epoch=epoch,
            cost=cost,
            train_accuracy=accuracy(model, data.X_train, data.Y_train),
            test_accuracy=accuracy(model, data.X_test, data.Y_test),
            seconds=trained - mark,
            elapsed=clock() - start,
        )
        result.records.append(record)
        print(
            f"   epoch {epoch:>{width}}/{epochs}  cost {cost:.4f}  "
            f"train {100 * record.train_accuracy:6.2f}%  test {100 * record.test_accuracy:6.2f}%  "
            f"{record.seconds:5.2f} s  (total {record.elapsed:5.1f} s)",
            file=out,
            flush=True,
        )
        mark = clock()

    fit(
        model,
        loss,
        optimizer,
        data.X_train,
        data.Y_train,
        epochs=epochs,
        batch_size=batch_size,
        rng=np.random.default_rng(seed),
        on_epoch=on_epoch,
    )
    result.wall_seconds = clock() - start
    return result


@dataclass(frozen=True)
class Settings:
    """How long and how a run trains.

    ``limit_train`` / ``limit_test`` keep only the first examples of each split (quick runs);
    ``target`` is the test accuracy a full run must reach (None: no target).
    """

    epochs: int
    batch_size: int | None
    lr: float
    limit_train: int | None = None
    limit_test: int | None = None
    target: float | None = None


def train_adam(
    name: str,
    description: str,
    model: Sequential,
    loss: Loss,
    data: Split,
    settings: Settings,
    *,
    seed: int,
    out: TextIO,
) -> RunResult:
    """:func:`train_run` with ``Adam(settings.lr)`` for ``settings.epochs`` epochs in batches
    of ``settings.batch_size``: the way every demo run trains."""
    return train_run(
        name,
        description,
        model,
        loss,
        Adam(settings.lr),
        data,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        seed=seed,
        out=out,
    )
