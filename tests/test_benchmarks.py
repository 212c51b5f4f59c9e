"""Smoke tests of benchmarks/compare.py's pure helpers (timing order, rounds, ratios, table)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import compare


class FakeClock:
    """A clock that advances by a fixed step per call to ``tick`` and logs who ran."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def run(self, name: str, cost: float) -> None:
        self.log.append(name)
        self.now += cost

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_interleaved_times_runs_contenders_in_turn_and_drops_warmup() -> None:
    clock = FakeClock()
    fns = {"a": lambda: clock.run("a", 0.002), "b": lambda: clock.run("b", 0.005)}
    out = compare.interleaved_times(fns, rounds=3, warmup=1, clock=clock, sleep=clock.sleep)
    assert clock.log == ["a", "b"] * 4
    assert out["a"] == pytest.approx([0.002] * 3)
    assert out["b"] == pytest.approx([0.005] * 3)
    assert clock.slept == []


def test_interleaved_times_pauses_untimed_before_each_call() -> None:
    clock = FakeClock()
    fns = {"a": lambda: clock.run("a", 0.001), "b": lambda: clock.run("b", 0.001)}
    out = compare.interleaved_times(
        fns, rounds=2, warmup=0, pause={"a": 0.5, "b": 0.25}, clock=clock, sleep=clock.sleep
    )
    assert clock.slept == [0.5, 0.25, 0.5, 0.25]
    assert out["a"] == pytest.approx([0.001, 0.001])


def test_interleaved_times_refuses_zero_rounds() -> None:
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        compare.interleaved_times({"a": lambda: None}, rounds=0)


@pytest.mark.parametrize(
    ("per_round", "budget", "expected"),
    [(0.1, 3.0, 30), (0.5, 3.0, 6), (2.0, 3.0, 5), (1e-6, 3.0, 30), (0.0, 3.0, 30)],
)
def test_rounds_for_clamps_to_bounds(per_round: float, budget: float, expected: int) -> None:
    assert compare.rounds_for(per_round, budget) == expected


def test_median_ms_converts_seconds() -> None:
    assert compare.median_ms([0.003, 0.001, 0.002]) == pytest.approx(2.0)


def test_im2col_bytes_of_the_large_conv() -> None:
    # 32 channels, 3 x 3 kernel, 32 x 32 output, 64 examples, float64: 288 x 65536 x 8 bytes.
    assert compare.im2col_bytes(32, 3, 32, 32, 64, 8) == 288 * 65536 * 8


def test_bar_pass_and_miss_are_printed() -> None:
    assert compare.Bar("refnn/bound", 1.04, 1.05).format().startswith("PASS")
    miss = compare.Bar("refnn/bound", 1.2, 1.05)
    assert not miss.passed
    assert miss.format() == "MISS refnn/bound 1.200 <= 1.05"


def test_format_table_has_ratios_and_dashes_for_missing_torch() -> None:
    rows = [
        compare.Row("Dense fwd+bwd", "float64", "4->4, m=2", [0.002], [0.001], [0.004]),
        compare.Row("Dense fwd+bwd", "float32", "4->4, m=2", [0.003], [0.002], None),
    ]
    rows[0].bars.append(compare.Bar("refnn/bound", rows[0].to_bound, 1.05))
    lines = compare.format_table(rows).splitlines()
    assert len(lines) == 4
    assert "x bound" in lines[0] and "x torch" in lines[0]
    assert "2.00" in lines[2] and "0.50" in lines[2] and "MISS refnn/bound 2.000" in lines[2]
    assert lines[3].split()[-3:] == ["-", "-", "-"]
    assert rows[1].to_torch is None
    assert rows[1].to_bound == pytest.approx(1.5)


def test_ratios_pair_samples_of_the_same_round() -> None:
    # The machine slowed down in round 2 for both contenders: the paired ratio stays 2.
    row = compare.Row("op", "float64", "s", [2.0, 20.0, 2.0], [1.0, 10.0, 1.0], [4.0, 40.0, 1.0])
    assert row.to_bound == pytest.approx(2.0)
    assert row.to_torch == pytest.approx(0.5)
    assert row.refnn_ms == pytest.approx(2000.0)
    with pytest.raises(ValueError):
        compare.paired_ratio([1.0], [1.0, 2.0])


def test_product_orientations_give_the_same_numbers() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((5, 4))
    for flipped in (False, True):
        np.testing.assert_allclose(compare.Product("a@b", a, b, flipped)(), a @ b, rtol=1e-14)
    assert compare.Product("a@b", a, b, True).describe() == "(a@b flipped)"
    assert compare.Product.fastest("a@b", a, b).name == "a@b"


def test_memory_row_counts_working_buffers_beyond_the_outputs() -> None:
    row = compare.MemoryRow("float64", "s", im2col=100, peak=260, outputs=60)
    assert row.ratio == pytest.approx(2.6)
    assert row.work_ratio == pytest.approx(2.0)
    assert row.bar.passed
    assert not compare.MemoryRow("float64", "s", im2col=100, peak=280, outputs=60).bar.passed
    assert "(peak-outputs)/im2col" in compare.format_memory([row]).splitlines()[0]
