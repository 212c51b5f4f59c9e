"""The demo (python -m demo): data handling, progress, plots, save/reload.

The training machinery runs on small synthetic splits, so it is tested without scikit-learn;
the tests on the real (bundled) data sets skip when scikit-learn is not installed.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refnn
from demo import RunResult, accuracy, cnn_run, lstm_run, main, mlp_run
from demo import cli as demo_cli
from demo import plot as demo_plot
from demo.data import Split, one_hot, standardize, stratified_split

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def has_module(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


needs_sklearn = pytest.mark.skipif(
    not has_module("sklearn"), reason="scikit-learn not installed: pip install 'refnn[demo]'"
)
needs_matplotlib = pytest.mark.skipif(
    not has_module("matplotlib"), reason="matplotlib not installed: pip install 'refnn[demo]'"
)


# ---------------------------------------------------------------------------------------------
# synthetic splits: learnable in a few epochs, no download, no scikit-learn


def synthetic(kind: str, *, m_train: int = 96, m_test: int = 48, seed: int = 0) -> Split:
    """Class-dependent means plus noise, in the layout of each run."""
    rng = np.random.default_rng(seed)
    m = m_train + m_test
    k = 1 if kind == "mlp" else 3
    labels = rng.integers(0, 2 if k == 1 else k, size=m)
    shape = {"mlp": (5,), "cnn": (1, 8, 8), "lstm": (8, 8)}[kind]
    centers = rng.standard_normal((2 if k == 1 else k, *shape))
    X = centers[labels].transpose(*range(1, len(shape) + 1), 0)
    X = X + 0.5 * rng.standard_normal(X.shape)
    Y = labels[np.newaxis].astype(np.float64) if k == 1 else one_hot(labels, k)
    X = np.ascontiguousarray(X)
    return Split(
        f"synthetic {kind}",
        np.ascontiguousarray(X[..., :m_train]),
        np.ascontiguousarray(Y[:, :m_train]),
        np.ascontiguousarray(X[..., m_train:]),
        np.ascontiguousarray(Y[:, m_train:]),
    )


# ---------------------------------------------------------------------------------------------
# data handling


@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    frac=st.sampled_from([0.1, 0.2, 0.5]),
    seed=st.integers(0, 2**16),  # the split's own generator: an input of the function
)
def test_stratified_split_partitions_and_keeps_class_proportions(
    counts: list[int], frac: float, seed: int
) -> None:
    labels = np.repeat(np.arange(len(counts)), counts)
    train, test = stratified_split(labels, frac, np.random.default_rng(seed))
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(labels.size))
    for c, n in enumerate(counts):
        assert int(np.sum(labels[test] == c)) == round(frac * n)
    again = stratified_split(labels, frac, np.random.default_rng(seed))
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)


def test_standardize_fits_on_the_training_split_only() -> None:
    rng = np.random.default_rng(0)
    X_train = 3.0 * rng.standard_normal((4, 50)) + 7.0
    X_train[2] = 5.0  # a constant feature: only centred
    X_test = rng.standard_normal((4, 20))
    A_train, A_test = standardize(X_train, X_test)
    np.testing.assert_allclose(A_train.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(A_train[[0, 1, 3]].std(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(A_train[2], 0.0)
    # the test split does not influence the transform
    B_train, _ = standardize(X_train, X_test * 100.0)
    np.testing.assert_array_equal(A_train, B_train)
    mean, std = X_train.mean(axis=1, keepdims=True), X_train.std(axis=1, keepdims=True)
    std[2] = 1.0
    np.testing.assert_allclose(A_test, (X_test - mean) / std, rtol=1e-12)


def test_one_hot_and_accuracy() -> None:
    Y = one_hot(np.array([2, 0, 1, 2]), 3)
    np.testing.assert_array_equal(Y, [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]])
    rng = np.random.default_rng(0)
    model = refnn.Sequential([refnn.Dense(3, 3, rng=rng)])
    X = rng.standard_normal((3, 4))
    predicted = np.argmax(model.forward(X, training=False), axis=0)
    assert accuracy(model, X, one_hot(predicted, 3)) == 1.0
    assert accuracy(model, X, one_hot((predicted + 1) % 3, 3)) == 0.0
    assert accuracy(model, X, one_hot(predicted, 3), batch=3) == 1.0  # batched the same
    binary = refnn.mlp([3, 1], rng=rng)
    p = binary.forward(X, training=False)
    assert accuracy(binary, X, (p >= 0.5).astype(float)) == 1.0


# ---------------------------------------------------------------------------------------------
# the runs on synthetic data


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm"])
def test_a_quick_run_prints_progress_lowers_the_cost_and_repeats_exactly(name: str) -> None:
    module = {"mlp": mlp_run, "cnn": cnn_run, "lstm": lstm_run}[name]
    data = synthetic(name)
    results: list[RunResult] = []
    texts: list[str] = []
    for _ in range(2):
        out = io.StringIO()
        results.append(module.run(quick=True, out=out, data=data))
        texts.append(out.getvalue())
    first, second = results
    epochs = module.QUICK.epochs
    assert len(first.records) == first.epochs == epochs
    assert first.costs[-1] < first.costs[0]
    assert all(np.isfinite(first.costs))
    assert first.numbers() == second.numbers()  # the fixed seeds make the numbers repeat
    lines = [line for line in texts[0].splitlines() if line.strip().startswith("epoch")]
    assert len(lines) == epochs
    pattern = (
        rf"epoch +(\d+)/{epochs}  cost \d+\.\d{{4}}  train +\d+\.\d\d%  test +\d+\.\d\d%  "
        r"+\d+\.\d\d s  \(total +\d+\.\d s\)"
    )
    for i, line in enumerate(lines, start=1):
        match = re.search(pattern, line)
        assert match is not None, line
        assert int(match.group(1)) == i
    strip_times = [re.sub(r"\d+\.\d+ s", "T", t) for t in texts]
    assert strip_times[0] == strip_times[1]


def test_the_cli_trains_plots_saves_and_reloads(tmp_path: Path) -> None:
    out = io.StringIO()
    names = ["mlp", "cnn", "lstm"]
    argv = ["--quick", "--out", str(tmp_path)]
    for name in names:
        argv += ["--only", name]
    status = main(argv, out=out, data={name: synthetic(name) for name in names})
    text = out.getvalue()
    assert status == 0, text
    for name in names:
        saved = tmp_path / f"{name}.npz"
        assert f"saved {saved}; reloaded: identical predictions on the 48 test" in text
        extra: tuple[type[refnn.Layer[Any]], ...] = demo_cli.RUNS[name].extra_layers
        model = refnn.load(saved, layers=extra)
        assert isinstance(model, refnn.Sequential)
        if has_module("matplotlib"):
            png = tmp_path / f"{name}.png"
            assert f"plot: {png}" in text
            assert png.read_bytes()[:8] == PNG_MAGIC
    summary = text[text.index("== summary") :].splitlines()
    assert [line.split()[0] for line in summary[2:]] == names


@needs_matplotlib
def test_the_plot_is_a_png_of_the_right_size(tmp_path: Path) -> None:
    result = mlp_run.run(quick=True, out=io.StringIO(), data=synthetic("mlp"))
    path = demo_plot.plot_run(result, tmp_path / "sub" / "mlp.png")
    assert path == tmp_path / "sub" / "mlp.png"
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 400)
    empty = RunResult("x", "y", 0)
    assert demo_plot.plot_run(empty, tmp_path / "none.png") is None


def test_without_matplotlib_the_demo_runs_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_cli, "matplotlib_available", lambda: False)
    monkeypatch.setattr(demo_plot, "matplotlib_available", lambda: False)
    out = io.StringIO()
    status = main(
        ["--quick", "--only", "mlp", "--out", str(tmp_path)],
        out=out,
        data={"mlp": synthetic("mlp")},
    )
    assert status == 0
    assert "matplotlib is not installed: no plots; pip install 'refnn[demo]'" in out.getvalue()
    assert not list(tmp_path.glob("*.png"))
    out = io.StringIO()
    main(
        ["--quick", "--only", "mlp", "--no-plots", "--out", str(tmp_path)],
        out=out,
        data={"mlp": synthetic("mlp")},
    )
    assert "plot:" not in out.getvalue()


def test_bad_arguments_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--only", "gan"])
    assert info.value.code == 2
    assert "invalid choice: 'gan'" in capsys.readouterr().err


def test_blas_threads_are_limited_while_the_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--threads", "0"]) == 2
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err
    if not has_module("threadpoolctl"):
        with demo_cli.blas_threads(1) as note:
            assert "not limited (threadpoolctl is not installed)" in note
        return
    import importlib

    threadpoolctl = importlib.import_module("threadpoolctl")  # untyped: no py.typed

    def blas_threads() -> list[int]:
        return [
            int(pool["num_threads"])
            for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"
        ]

    before = blas_threads()
    with demo_cli.blas_threads(1) as note:
        assert note == "BLAS threads: 1"
        assert set(blas_threads()) <= {1}
    assert blas_threads() == before  # restored afterwards


def test_a_missing_dependency_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("No module named 'sklearn' (simulated)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    out = io.StringIO()
    status = main(["--quick", "--only", "mlp", "--out", str(tmp_path), "--no-plots"], out=out)
    assert status == 1
    assert "== mlp: cannot run: the demo's data sets come with scikit-learn" in out.getvalue()
    assert "pip install 'refnn[demo]'" in out.getvalue()


# ---------------------------------------------------------------------------------------------
# the real data sets (bundled with scikit-learn: nothing is downloaded)


@needs_sklearn
def test_the_bundled_data_sets_are_split_and_laid_out_examples_last() -> None:
    from demo.data import breast_cancer, digits

    bc = breast_cancer()
    assert bc.X_train.shape == (30, 456) and bc.X_test.shape == (30, 113)
    assert bc.Y_train.shape == (1, 456) and set(np.unique(bc.Y_train)) == {0.0, 1.0}
    np.testing.assert_allclose(bc.X_train.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(bc.X_train.std(axis=1), 1.0, rtol=1e-12)
    assert abs(bc.X_test.mean()) < 0.3  # standardized with the training statistics
    images, rows = digits("images"), digits("rows")
    assert images.X_train.shape == (1, 8, 8, images.m_train)
    assert rows.X_train.shape == (8, 8, rows.m_train)
    assert images.m_train + images.m_test == 1797 and images.m_test == 359
    np.testing.assert_array_equal(images.Y_test, rows.Y_test)  # the same held-out split
    # step t of a row sequence is image row t: X_rows[:, t, i] == X_images[0, t, :, i]
    np.testing.assert_array_equal(rows.X_train, images.X_train[0].transpose(1, 0, 2))
    assert images.X_train.min() == 0.0 and images.X_train.max() == 1.0
    np.testing.assert_array_equal(images.Y_train.sum(axis=0), 1.0)
    with pytest.raises(ValueError, match="layout must be"):
        digits("columns")  # type: ignore[arg-type]


@needs_sklearn
def test_python_m_demo_quick_on_the_real_data(tmp_path: Path) -> None:
    """The module entry point, in a fresh process, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "demo", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = proc.stdout
    assert proc.returncode == 0, text + proc.stderr
    for name in ["mlp", "cnn", "lstm"]:
        block = text[text.index(f"== {name}:") :]
        block = block[: block.index("\n== ")]
        costs = [float(c) for c in re.findall(r"  cost (\d+\.\d+)", block)]
        assert len(costs) >= 3 and costs[-1] < costs[0], (name, costs)
        assert (tmp_path / f"{name}.npz").exists()


def test_the_demo_is_an_application_outside_the_installed_package() -> None:
    """The wheel ships ``refnn*`` only: the demo lives in the checkout's top-level ``demo/``."""
    import demo

    assert Path(demo.__file__).resolve().parent == ROOT / "demo"
    assert not (Path(refnn.__file__).resolve().parent / "demo").exists()
