"""The measuring logic of benchmarks/compare.py and benchmarks/asv_noise.py (no timing asserted)."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import asv_noise
import compare


class FakeClock:
    """A clock that advances only when a fake function runs; logs who ran and what was slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def fn(self, name: str, cost: float) -> compare.Fn:
        def run() -> None:
            self.log.append(name)
            self.now += cost

        return run


def test_time_blocks_runs_each_side_in_blocks_after_an_untimed_warmup() -> None:
    clock = FakeClock()
    fns = {"a": clock.fn("a", 0.125), "b": clock.fn("b", 0.5)}
    out = compare.time_blocks(fns, budget=4.0, passes=2, clock=clock, sleep=clock.slept.append)
    # Each block has 1 s: a warm-up, then 8 calls of a, or 3 of b (the floor), twice over.
    assert clock.log == ["a"] * 9 + ["b"] * 4 + ["a"] * 9 + ["b"] * 4
    assert out["a"].samples == (0.125,) * 16
    assert out["b"].samples == (0.5,) * 6
    assert clock.slept == [compare.PAUSE_S] * 4


@pytest.mark.parametrize(
    ("per_call", "budget", "expected"),
    [(0.1, 3.0, 30), (0.01, 3.0, 50), (2.0, 3.0, 3), (0.0, 3.0, 50)],
)
def test_reps_for_clamps(per_call: float, budget: float, expected: int) -> None:
    assert compare.reps_for(per_call, budget) == expected


def test_spread_is_half_the_interquartile_range_and_a_larger_one_is_noise() -> None:
    t = compare.Timing((1.0, 2.0, 3.0, 4.0, 5.0))
    assert (t.median, t.spread) == (3.0, 1.0)
    assert not t.noisy
    assert compare.cell(t) == "3000±1000"
    # The case: a median of 1.5 ms whose spread is 20 ms is not a result.
    wild = compare.Timing((0.0015, 0.0014, 0.0016, 0.08, 0.09))
    assert wild.noisy
    assert compare.cell(wild) == "noise"
    assert compare.ratio_cell(t, wild) == "noise"
    assert compare.cell(None) == "-"
    assert compare.Timing((0.5,)).spread == 0.0


def test_ratio_adds_relative_spreads_and_verdict_marks_a_limit_within_noise() -> None:
    a, b = compare.Timing((1.8, 2.0, 2.2)), compare.Timing((0.9, 1.0, 1.1))
    r, s = compare.ratio(a, b)
    assert r == pytest.approx(2.0)
    assert s == pytest.approx(2.0 * (0.1 / 2.0 + 0.05 / 1.0))
    assert compare.ratio_cell(a, b) == "2.00±0.20"
    assert compare.verdict(0.9, 0.05, 1.0) == "PASS"
    assert compare.verdict(0.97, 0.05, 1.0) == "PASS?"
    assert compare.verdict(1.2, 0.05, 1.0) == "MISS"
    assert compare.verdict(1.04, 0.05, 1.0) == "MISS?"


def test_judge_and_strict_exit_status() -> None:
    times = {"refnn": compare.Timing((2.0,)), "bound": compare.Timing((1.0,))}
    got = compare.judge(times, (("bound", 1.05), ("bound", 3.0), ("torch", 1.0)))
    assert got == ["MISS refnn/bound 2.00 <= 1.05", "PASS refnn/bound 2.00 <= 3"]
    assert compare.exit_status(got, strict=True) == 1
    assert compare.exit_status(got, strict=False) == 0
    assert compare.exit_status(got[1:], strict=True) == 0


def test_main_prints_rows_and_exits_1_on_a_miss_only_when_strict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def build(dtype: compare.DType, torch: Any) -> dict[str, compare.Fn]:
        return {"refnn": lambda: sum(range(100)), "bound": lambda: None}

    rows = (("Fake", "n=1", build, (("bound", 0.0),), (("bound", float("inf")),)),)
    monkeypatch.setattr(compare, "ROWS", rows)
    monkeypatch.setattr(compare, "PAUSE_S", 0.0)
    argv = ["--budget", "0", "--rows", "Fake", "--sides", "refnn", "bound"]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    assert "load average" in out.split("operation")[0] and "after: load average" in out
    assert "MISS refnn/bound" in out and "PASS refnn/bound" in out
    assert "1 PASS, 1 MISS" in out
    assert compare.main([*argv, "--strict"]) == 1


def test_fastest_orientation_gives_the_same_numbers() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((5, 4))
    np.testing.assert_allclose(np.asarray(compare.fastest(a, b)()), a @ b, rtol=1e-14)


@pytest.mark.parametrize("use_torch", [False, True])
def test_every_row_builds_and_runs_at_a_tiny_shape(use_torch: bool) -> None:
    torch = pytest.importorskip("torch", reason="torch not installed") if use_torch else None
    builders = [
        partial(compare.dense, 3, 2, 4),
        partial(compare.conv, 2, 3, 4, 2),
        partial(compare.conv, 2, 3, 4, 2, algorithm="winograd"),
        partial(compare.lstm, 3, 2, 4, 2),
        partial(compare.recurrent, "GRU", 3, 2, 4, 2),
        partial(compare.recurrent, "RNN", 3, 2, 4, 2),
        partial(compare.embedding, 5, 3, 4, 2),
        partial(compare.pool, "max", 2, 4, 2),
        partial(compare.pool, "avg", 2, 4, 2),
    ]
    for build in builders:
        for dtype in compare.DTYPES:
            sides = build(dtype, torch)
            assert set(sides) == ({"refnn", "bound", "torch"} if use_torch else {"refnn", "bound"})
            for run in sides.values():
                run()


@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
def test_conv_memory_counts_working_buffers_in_im2col_units(algorithm: str) -> None:
    buffers, verdict = compare.conv_memory(2, 3, 4, 2, "float64", algorithm)
    assert buffers > 0
    assert verdict.endswith(f"(peak-outputs)/im2col {buffers:.3f} <= 2.05")


# --------------------------------------------------------------------------------------------
# asv_noise: make bench / make bench-compare
# --------------------------------------------------------------------------------------------


def results_file(path: Path, values: dict[str, list[float | None]], q: float) -> Path:
    """An asv 0.6 results file: each benchmark with one parameter (two values), its quartiles
    ``value -/+ q``."""
    columns = ["result", "params", "version", "started_at", "duration"]
    columns += ["stats_ci_99_a", "stats_ci_99_b", "stats_q_25", "stats_q_75"]
    results = {
        name: [
            vals,
            [["'float64'", "'float32'"]],
            "v",
            0,
            1.0,
            None,
            None,
            [None if v is None else v - q for v in vals],
            [None if v is None else v + q for v in vals],
        ]
        for name, vals in values.items()
    }
    path.write_text(json.dumps({"result_columns": columns, "results": results}))
    return path


def test_load_reads_one_figure_per_parameter_combination(tmp_path: Path) -> None:
    f = results_file(tmp_path / "r.json", {"bench_dense.DenseLayer.time_forward": [1.0, None]}, 0.1)
    got = asv_noise.load(f)
    assert got == {
        "bench_dense.DenseLayer.time_forward('float64')": (1.0, pytest.approx(0.1)),
        "bench_dense.DenseLayer.time_forward('float32')": (None, None),
    }


def test_show_prints_noise_instead_of_a_figure_whose_spread_exceeds_it(tmp_path: Path) -> None:
    good = asv_noise.show(
        asv_noise.load(results_file(tmp_path / "a.json", {"t": [0.5, 1e-3]}, 1e-4))
    )
    assert "500.000±0.100 ms" in good[0] and "1.000±0.100 ms" in good[1]
    bad = asv_noise.show(
        asv_noise.load(results_file(tmp_path / "b.json", {"t": [1.5e-3, None]}, 0.02))
    )
    assert bad[0].endswith("noise exceeds the figure (1.500±20.000 ms)")
    assert "failed" in bad[1]


CASES = {
    "steady 2x slower": ([1.0] * 3, [2.0] * 3, 0.01, 2.0, "REGRESSION"),
    "steady 2x faster": ([1.0] * 3, [0.5] * 3, 0.01, 0.5, "improvement"),
    "2 % is no change": ([1.0] * 3, [1.02] * 3, 0.01, 1.02, "same"),
    # The rounds disagree by more than the change they would report (the 4.4x).
    "rounds disagree": ([1.0, 4.4, 1.0], [4.4, 1.0, 1.5], 0.01, 1.5, "noise > change"),
    # Wide quartiles within every round.
    "wide quartiles": ([1.0] * 3, [1.5] * 3, 0.8, 1.5, "noise > change"),
    # Each side drifted over the rounds by as much as the change (the same code measured again).
    "A/A drift": ([1.0, 1.5, 1.0], [1.3, 1.95, 1.3], 0.01, 1.3, "noise > change"),
}


@pytest.mark.parametrize("case", CASES)
def test_compare_pairs_rounds_and_says_when_noise_exceeds_the_change(case: str) -> None:
    base, head, spread, ratio, label = CASES[case]
    got = asv_noise.change([((b, spread), (h, spread)) for b, h in zip(base, head, strict=True)])
    assert got.label == label
    assert got.ratio == pytest.approx(ratio)


def test_compare_rounds_keys_by_head_and_reports_failures() -> None:
    got = asv_noise.compare_rounds([{"t": (None, None)}], [{"t": (1.0, 0.01), "new": (1.0, 0.0)}])
    assert got["t"].label == got["new"].label == "failed"


def test_a_busy_machine_marks_regressions_and_improvements_as_doubtful() -> None:
    assert asv_noise.change([((1.0, 0.01), (2.0, 0.01))] * 3, busy=True).label == "REGRESSION?"
    assert asv_noise.change([((1.0, 0.01), (1.0, 0.01))] * 3, busy=True).label == "same"
    # 2 cpus: the benchmarks alone load them up to about 2; 9 is other processes.
    assert asv_noise.busy((9.0, 8.7, 5.2), cpus=2)
    assert not asv_noise.busy((2.1, 2.0, 1.2), cpus=2)


def test_conv_accuracy_lines_the_layouts_up_with_torch() -> None:
    torch = pytest.importorskip("torch", reason="torch not installed")
    line = compare.conv_accuracy(torch, 2, 3, 5, 2, "float64", "winograd")
    # A transposed or misaligned layout would give errors of order 1, not of order eps.
    errors = [float(part.split()[-1]) for part in line.split(": ")[1].split(", ")]
    assert len(errors) == 3 and max(errors) < 1e-13


def test_winograd_vs_direct_lines_up_and_sees_float32_rounding() -> None:
    errors = {}
    for dtype in ("float64", "float32"):
        line = compare.winograd_vs_direct(2, 3, 5, 2, dtype)
        errors[dtype] = [float(part.split()[-1]) for part in line.split(": ")[1].split(", ")]
    assert len(errors["float64"]) == 3 and max(errors["float64"]) < 1e-13
    assert 1e-9 < max(errors["float32"]) < 1e-4  # float32 rounding, not a misaligned layout
