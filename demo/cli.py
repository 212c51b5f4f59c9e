"""``python -m demo``: train the three demo models, print progress, plot, save, reload.

    python -m demo                 # all three runs (a minute or two on 2 cores)
    python -m demo --quick         # a few epochs on a subset (for tests)
    python -m demo --only cnn      # one run: mlp, cnn or lstm
    python -m demo --out DIR       # where plots and saved models go (default demo-output/)

Every run is seeded: the printed costs and accuracies repeat exactly from one run to the next
(only the times change).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from demo import cnn_run, lstm_run, mlp_run
from demo.data import INSTALL_HINT, DemoDependencyError, Split
from demo.plot import matplotlib_available, plot_run
from demo.training import RunResult, Settings
from refnn.io import load, save
from refnn.layer import Layer

DEFAULT_OUT = Path("demo-output")


@dataclass(frozen=True)
class Run:
    """One demo run: how to train it, its settings and the extra layer classes it saves."""

    name: str
    train: Callable[..., RunResult]
    full: Settings
    extra_layers: tuple[type[Layer[Any]], ...] = ()


RUNS: dict[str, Run] = {
    "mlp": Run("mlp", mlp_run.run, mlp_run.FULL),
    "cnn": Run("cnn", cnn_run.run, cnn_run.FULL, cnn_run.EXTRA_LAYERS),
    "lstm": Run("lstm", lstm_run.run, lstm_run.FULL, lstm_run.EXTRA_LAYERS),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="Train refnn models on scikit-learn's bundled data sets (nothing is "
        "downloaded): an MLP on breast cancer, a CNN and an LSTM on the 8x8 digits.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few epochs on a subset of the data (for tests)"
    )
    parser.add_argument(
        "--only", choices=sorted(RUNS), action="append", help="run only this one (repeatable)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"directory for the plots and saved models (default: {DEFAULT_OUT}/)",
    )
    parser.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads (default 1: these models' matrices are small, and more threads "
        "only contend on a busy machine)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[str]:
    """Limit the BLAS thread pool to ``n`` threads (threadpoolctl, a scikit-learn dependency)."""
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        yield "BLAS threads: not limited (threadpoolctl is not installed)"
        return
    with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
        yield f"BLAS threads: {n}"


def save_and_reload(result: RunResult, run: Run, out_dir: Path) -> str:
    """Save the trained model, load it back and compare test predictions bit for bit."""
    if result.model is None or result.data is None:
        return "nothing to save"
    path = out_dir / f"{result.name}.npz"
    save(result.model, path, layers=run.extra_layers)
    result.saved = path
    X = result.data.X_test
    before = result.model.forward(X, training=False)
    after = load(path, expect=result.model, layers=run.extra_layers).forward(X, training=False)
    same = before.dtype == after.dtype and np.array_equal(before, after)
    verdict = "identical" if same else "DIFFERENT"
    return f"saved {path}; reloaded: {verdict} predictions on the {X.shape[-1]} test examples"


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    data: dict[str, Split] | None = None,
) -> int:
    """Run the demo; return the exit status (0: every run done and every target met).

    ``data`` (run name -> Split) replaces a run's data set (tests use small synthetic data).
    """
    stream = out if out is not None else sys.stdout
    args = parse_args(argv)
    names = list(dict.fromkeys(args.only)) if args.only else list(RUNS)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = not args.no_plots
    if plots and not matplotlib_available():
        print(f"(matplotlib is not installed: no plots; {INSTALL_HINT})", file=stream)
        plots = False
    if args.threads < 1:
        print(f"--threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    mode = "quick (few epochs, data subsets)" if args.quick else "full"
    with blas_threads(args.threads) as threads:
        print(
            f"refnn demo, {mode}: {', '.join(names)}; output in {out_dir}/; {threads}",
            file=stream,
        )
        results, status = _run_all(names, args.quick, plots, out_dir, stream, data)
    print_summary(results, stream)
    return status


def _run_all(
    names: Sequence[str],
    quick: bool,
    plots: bool,
    out_dir: Path,
    stream: TextIO,
    data: dict[str, Split] | None,
) -> tuple[list[RunResult], int]:
    results: list[RunResult] = []
    status = 0
    for name in names:
        run = RUNS[name]
        given = (data or {}).get(name)
        try:
            result = run.train(quick=quick, out=stream, data=given)
        except DemoDependencyError as err:
            print(f"== {name}: cannot run: {err}", file=stream)
            status = 1
            continue
        if plots:
            result.plot = plot_run(result, out_dir / f"{name}.png")
        note = save_and_reload(result, run, out_dir)
        print(f"   {result.summary()}", file=stream)
        if result.plot is not None:
            print(f"   plot: {result.plot}", file=stream)
        print(f"   {note}", file=stream, flush=True)
        if not quick and run.full.target is not None and result.test_accuracy < run.full.target:
            print(
                f"   MISSED the target: test accuracy {100 * result.test_accuracy:.2f}% < "
                f"{100 * run.full.target:.0f}%",
                file=stream,
            )
            status = 1
        results.append(result)
    return results, status


def print_summary(results: Sequence[RunResult], out: TextIO) -> None:
    """One table line per run: epochs, accuracies, wall time, plot."""
    if not results:
        return
    print("== summary", file=out)
    print(
        f"   {'run':<5} {'epochs':>6} {'train acc':>10} {'test acc':>9} {'time':>8}  plot",
        file=out,
    )
    for r in results:
        plot = str(r.plot) if r.plot is not None else "-"
        print(
            f"   {r.name:<5} {r.epochs:>6} {100 * r.train_accuracy:>9.2f}% "
            f"{100 * r.test_accuracy:>8.2f}% {r.wall_seconds:>7.1f}s  {plot}",
            file=out,
        )
