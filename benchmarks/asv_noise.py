"""asv results judged against their noise (``make bench``, ``make bench-compare``).

``show RESULTS.json``: each figure as asv's median ± half its interquartile range, and "noise
exceeds the figure" instead of a figure whose spread exceeds it (it is not a result).

``compare --base B1.json ... --head H1.json ...``: the rounds of ``make bench-compare`` (the parent
and HEAD benchmarked in turn, round after round). Per benchmark: the median over rounds of the
per-round ratio HEAD / parent, and its noise, the larger of half the range of those ratios and the
ratio's own spread within a round (the relative spreads of both sides add). A change the noise
could explain is reported as "noise > change", never as a regression.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A change smaller than this (10 %, asv compare's default factor) is reported as "same".
FACTOR = 1.1
#: A figure and its spread (half the interquartile range); None where the benchmark failed.
Figure = tuple[float | None, float | None]


def load(path: Path) -> dict[str, Figure]:
    """One figure per benchmark and parameter combination of an asv 0.6 results file."""
    data: dict[str, Any] = json.loads(Path(path).read_text())
    out: dict[str, Figure] = {}
    for name, row in data["results"].items():
        d = dict(zip(data["result_columns"], row, strict=False))
        combos = [f"({', '.join(c)})" for c in itertools.product(*d.get("params") or [])]
        n = len(combos) or 1
        values = d.get("result") or [None] * n
        q1, q3 = d.get("stats_q_25") or [None] * n, d.get("stats_q_75") or [None] * n
        for combo, v, a, b in zip(combos or [""], values, q1, q3, strict=True):
            spread = None if v is None or a is None or b is None else (b - a) / 2
            out[name + combo] = (v, spread)
    return out


def human(name: str, value: float, spread: float) -> str:
    """``value±spread`` in ms (times) or MiB (``peakmem_`` benchmarks: bytes)."""
    if ".peakmem_" in name:
        return f"{value / 2**20:.1f}±{spread / 2**20:.1f} MiB"
    return f"{value * 1e3:.3f}±{spread * 1e3:.3f} ms"


def show(figures: dict[str, Figure]) -> list[str]:
    """A line per figure: the figure, or why there is none."""
    width = max(map(len, figures), default=0)
    lines = []
    for name, (value, spread) in figures.items():
        if value is None:
            text = "failed"
        elif spread is None:
            text = f"{value:g} (no spread recorded)"
        elif spread > value:
            text = f"noise exceeds the figure ({human(name, value, spread)})"
        else:
            text = human(name, value, spread)
        lines.append(f"{name.ljust(width)}  {text}")
    return lines


@dataclass(frozen=True)
class Change:
    """HEAD / parent over the rounds, its noise, and what it is called."""

    ratio: float
    noise: float
    label: str


def half_range(values: Sequence[float]) -> float:
    """Half the range of ``values`` relative to their median."""
    return (max(values) - min(values)) / 2 / statistics.median(values)


def change(pairs: Sequence[tuple[Figure, Figure]], *, busy: bool = False) -> Change:
    """The change over the rounds' (parent, HEAD) figures, less the rounds where either failed.

    Its noise is the largest of: half the range of the per-round ratios; each side's half range
    over the rounds (the same code measured again: an A/A test); the median over rounds of the
    ratio's spread within a round. On a ``busy`` machine a regression or improvement gets a "?".
    """
    kept = [(b, sb or 0.0, h, sh or 0.0) for (b, sb), (h, sh) in pairs if b and h]
    if not kept:
        return Change(math.nan, math.nan, "failed")
    ratios = [h / b for b, _, h, _ in kept]
    within = [h / b * (sb / b + sh / h) for b, sb, h, sh in kept]
    r = statistics.median(ratios)
    aa = max(half_range([b for b, *_ in kept]), half_range([h for *_, h, _ in kept]))
    noise = max(half_range(ratios) * r, aa * r, statistics.median(within))
    if abs(r - 1) <= noise:
        label = "noise > change" if noise > FACTOR - 1 else "same"
    elif r > FACTOR:
        label = "REGRESSION"
    else:
        label = "improvement" if r < 1 / FACTOR else "same"
    return Change(
        r, noise, label + ("?" if busy and label in ("REGRESSION", "improvement") else "")
    )


def compare_rounds(
    base: Sequence[dict[str, Figure]], head: Sequence[dict[str, Figure]], *, busy: bool = False
) -> dict[str, Change]:
    """Each benchmark of the first HEAD round against the parent, round by round."""
    missing: Figure = (None, None)
    return {
        key: change(
            [(b.get(key, missing), h.get(key, missing)) for b, h in zip(base, head, strict=True)],
            busy=busy,
        )
        for key in head[0]
    }


def busy(load: Sequence[float], cpus: int) -> bool:
    """Other processes ran: the 5 or 15 min load average exceeds what the benchmarks alone
    make (their BLAS threads, at most one per cpu) by half the cpus."""
    return max(load[1:]) > 1.5 * cpus


def load_average() -> str:
    return "load average {:.2f}, {:.2f}, {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("show").add_argument("results", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("--base", type=Path, nargs="+", required=True)
    cmp.add_argument("--head", type=Path, nargs="+", required=True)
    cmp.add_argument("--strict", action="store_true", help="exit 1 on a regression")
    args = parser.parse_args(argv)

    print(f"== {load_average()}")
    if args.command == "show":
        print(*show(load(args.results)), sep="\n")
        return 0
    if len(args.base) != len(args.head):
        parser.error(f"--base has {len(args.base)} rounds, --head {len(args.head)}")
    cpus = os.cpu_count() or 1
    was_busy = busy(os.getloadavg(), cpus)
    changes = compare_rounds(
        [load(p) for p in args.base], [load(p) for p in args.head], busy=was_busy
    )
    width = max(map(len, changes), default=0)
    print(f"== HEAD / parent over {len(args.head)} rounds (median ratio ± noise)")
    worst_first = sorted(
        changes.items(), key=lambda kv: math.inf if kv[1].label == "failed" else -kv[1].ratio
    )
    for key, c in worst_first:
        print(f"{key.ljust(width)}  {c.ratio:6.2f} ± {c.noise:.2f}  {c.label}")
    counts = Counter(c.label for c in changes.values())
    print("== " + ", ".join(f"{n} {label}" for label, n in sorted(counts.items())))
    if was_busy:
        print(
            f"== WARNING: busy machine ({load_average()} on {cpus} cpus): other processes "
            "took turns with the benchmarks; the changes marked '?' may be theirs"
        )
    if counts["noise > change"]:
        print(
            f"== WARNING: for {counts['noise > change']} benchmarks the noise exceeds the change "
            "it would report: rerun on a quiet machine or with more rounds (ROUNDS=)"
        )
    return int(args.strict and counts["REGRESSION"] > 0)


if __name__ == "__main__":
    sys.exit(main())
