"""PNG plots of a run's cost and accuracy per epoch (matplotlib, Agg canvas, no pyplot).

matplotlib is optional (the ``demo`` extra): without it :func:`plot_run` returns None and the
demo says so. Figures are drawn on an Agg canvas directly, so no GUI backend is ever selected
and pyplot's global state is not touched.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from demo.training import RunResult


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_run(result: RunResult, path: Path) -> Path | None:
    """Write cost (left) and train/test accuracy (right) per epoch to ``path`` (PNG).

    Returns
    -------
    Path or None
        ``path``, or None when matplotlib is not installed or the run has no epochs.
    """
    if not result.records or not matplotlib_available():
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [r.epoch for r in result.records]
    fig: Any = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_cost, ax_acc = fig.subplots(1, 2)
    ax_cost.plot(epochs, result.costs, marker="o", markersize=3, color="tab:red")
    ax_cost.set_xlabel("epoch")
    ax_cost.set_ylabel("training cost J")
    ax_cost.set_yscale("log")
    ax_cost.set_title("cost (mean over the epoch's batches)")
    ax_cost.grid(True, which="both", alpha=0.3)
    train = [100 * r.train_accuracy for r in result.records]
    test = [100 * r.test_accuracy for r in result.records]
    ax_acc.plot(epochs, train, marker="o", markersize=3, label=f"train ({train[-1]:.1f}%)")
    ax_acc.plot(epochs, test, marker="s", markersize=3, label=f"test ({test[-1]:.1f}%)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy after each epoch")
    ax_acc.grid(True, alpha=0.3)
    ax_acc.legend(loc="lower right")
    for ax in (ax_cost, ax_acc):
        ax.set_xlim(0.5, max(epochs) + 0.5)
    fig.suptitle(
        f"refnn demo: {result.name}\n{textwrap.fill(result.description, 110)}", fontsize=10
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
