"""Side-by-side speed report: refnn against its GEMM bound and PyTorch CPU (``make compare``).

For each core operation (forward + backward of one layer at a fixed shape and dtype) this times,
in one process and in turn (A B C A B C ...):

* refnn, through the layer API a user calls (input checks included);
* the bound: the bare matrix products the operation cannot avoid, at the same shapes (Dense:
  W X, dZ X^T, W^T dZ; Conv2D: the same three products on the im2col matrix);
* PyTorch CPU at the same shapes and dtype (autograd forward + backward), when installed, with
  ``torch.set_num_threads`` equal to numpy's BLAS thread count.

It prints medians, ratios and the project's bars (PASS / MISS), and the Conv2D peak memory
(tracemalloc sees numpy's allocations) relative to one im2col buffer. It is a report: the exit
status is 0 even when a bar is missed.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import math
import os
import re
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from refnn import Conv2D, Dense
from refnn.types import FloatArray

BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
CONV_K = 3

# --------------------------------------------------------------------------------------------
# Pure helpers (tested in tests/test_benchmarks.py)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """A target: ``value <= limit`` passes. ``what`` names the quantity (e.g. "refnn/bound")."""

    what: str
    value: float
    limit: float

    @property
    def passed(self) -> bool:
        return self.value <= self.limit

    def format(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        return f"{verdict} {self.what} {self.value:.3f} <= {self.limit:g}"


@dataclass
class Row:
    """One operation's samples (seconds per call, one per round, taken in turn) and its bars.

    Times are reported as medians; ratios as the median of the per-round ratios, since the two
    calls of a round ran back to back and share the machine's state (load, frequency).
    """

    op: str
    dtype: Literal["float64", "float32"]
    shape: str
    refnn: list[float]
    bound: list[float]
    torch: list[float] | None
    bars: list[Bar] = field(default_factory=list)
    bound_products: str = ""

    @property
    def refnn_ms(self) -> float:
        return median_ms(self.refnn)

    @property
    def bound_ms(self) -> float:
        return median_ms(self.bound)

    @property
    def torch_ms(self) -> float | None:
        return None if self.torch is None else median_ms(self.torch)

    @property
    def to_bound(self) -> float:
        return paired_ratio(self.refnn, self.bound)

    @property
    def to_torch(self) -> float | None:
        return None if self.torch is None else paired_ratio(self.refnn, self.torch)


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[i] / b[i] (samples of the same round ran back to back)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def interleaved_times(
    fns: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 1,
    pause: Mapping[str, float] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, list[float]]:
    """Time each function once per round, in turn (A B C A B C ...), after ``warmup`` rounds.

    Interleaving spreads slow drifts of the machine (frequency, other processes) over every
    contender instead of charging them to whichever ran last. ``pause[name]`` seconds are slept
    (untimed) before each call of ``name``: long enough, the other library's idle worker threads
    stop spinning and park, so they do not steal cores from this call. Returns seconds per call.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    pause = pause or {}
    out: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(warmup + rounds):
        for name, fn in fns.items():
            if pause.get(name, 0.0) > 0:
                sleep(pause[name])
            t0 = clock()
            fn()
            t1 = clock()
            if r >= warmup:
                out[name].append(t1 - t0)
    return out


def rounds_for(seconds_per_round: float, budget: float, *, low: int = 5, high: int = 30) -> int:
    """How many rounds fit in ``budget`` seconds, clamped to [low, high]."""
    if seconds_per_round <= 0:
        return high
    return max(low, min(high, math.floor(budget / seconds_per_round)))


def median_ms(samples: Sequence[float]) -> float:
    """Median of samples given in seconds, in milliseconds."""
    return 1e3 * statistics.median(samples)


def im2col_bytes(c_in: int, k: int, h_out: int, w_out: int, m: int, itemsize: int) -> int:
    """Bytes of one im2col matrix: (C_in k k) rows x (H_out W_out m) columns."""
    return c_in * k * k * h_out * w_out * m * itemsize


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: Sequence[Row]) -> str:
    """The report table: one line per row, bars verdicts in the last column."""
    header = (
        "operation",
        "dtype",
        "shape",
        "refnn ms",
        "bound ms",
        "x bound",
        "torch ms",
        "x torch",
        "bar",
    )
    lines = [
        (
            r.op,
            r.dtype,
            r.shape,
            _fmt(r.refnn_ms, ".3f"),
            _fmt(r.bound_ms, ".3f"),
            _fmt(r.to_bound, ".2f"),
            _fmt(r.torch_ms, ".3f"),
            _fmt(r.to_torch, ".2f"),
            "; ".join(b.format() for b in r.bars) or "-",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    right = {3, 4, 5, 6, 7}

    def render(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(line) for line in lines)])


@dataclass(frozen=True)
class MemoryRow:
    """Peak traced bytes of one Conv2D forward + backward, against one im2col buffer."""

    dtype: Literal["float64", "float32"]
    shape: str
    im2col: int
    peak: int
    outputs: int

    @property
    def ratio(self) -> float:
        """Peak traced bytes over one im2col buffer."""
        return self.peak / self.im2col

    @property
    def work_ratio(self) -> float:
        """Peak minus the results every implementation must hand back (Z, dX, dW, db), over one
        im2col buffer: how many im2col-sized working buffers were live at the peak."""
        return (self.peak - self.outputs) / self.im2col

    @property
    def bar(self) -> Bar:
        """At most two im2col-sized buffers; 5 % of one more for small temporaries (db, caches)."""
        return Bar("(peak-outputs)/im2col", self.work_ratio, 2.05)


def format_memory(rows: Sequence[MemoryRow]) -> str:
    """The Conv2D memory table: peak traced bytes against one im2col buffer."""
    mib = 2.0**20
    header = (
        "Conv2D fwd+bwd",
        "dtype",
        "im2col MiB",
        "peak MiB",
        "outputs MiB",
        "peak/im2col",
        "(peak-outputs)/im2col",
        "bar",
    )
    lines = [
        (
            r.shape,
            r.dtype,
            f"{r.im2col / mib:.1f}",
            f"{r.peak / mib:.1f}",
            f"{r.outputs / mib:.1f}",
            f"{r.ratio:.2f}",
            f"{r.work_ratio:.3f}",
            r.bar.format(),
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=True)]

    def render(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if 2 <= i <= 6 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(line) for line in lines)])


# --------------------------------------------------------------------------------------------
# Environment: which BLAS, how many threads, the OpenBLAS variables
# --------------------------------------------------------------------------------------------


def _openblas_lib() -> ctypes.CDLL | None:
    """numpy's loaded OpenBLAS shared library (Linux: found in /proc/self/maps), or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted(set(re.findall(r"\S*openblas\S*\.so\S*", maps.read())))
    except OSError:
        return None
    for path in paths:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _openblas_call(lib: ctypes.CDLL, names: Sequence[str], restype: Any) -> Any:
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            return fn()
    return None


def blas_threads() -> int:
    """The number of threads numpy's BLAS uses (threadpoolctl, else OpenBLAS itself, else 1)."""
    try:
        threadpoolctl: Any = importlib.import_module("threadpoolctl")
    except ImportError:
        pass
    else:
        info: list[dict[str, Any]] = threadpoolctl.threadpool_info()
        for pool in info:
            if pool.get("user_api") == "blas" and "numpy" in str(pool.get("filepath", "")):
                return int(pool["num_threads"])
    lib = _openblas_lib()
    if lib is not None:
        n = _openblas_call(
            lib,
            (
                "scipy_openblas_get_num_threads64_",
                "openblas_get_num_threads64_",
                "openblas_get_num_threads",
            ),
            ctypes.c_int,
        )
        if isinstance(n, int) and n > 0:
            return n
    return 1


def environment_report() -> list[str]:
    """Lines describing numpy's BLAS, its threads, the OpenBLAS variables and PyTorch."""
    lines = [f"python {sys.version.split()[0]}, numpy {np.__version__}"]
    try:
        config: Any = np.show_config(mode="dicts")
        blas: dict[str, Any] = config["Build Dependencies"]["blas"]
        lines.append(f"numpy BLAS: {blas.get('name')} {blas.get('version')}")
    except (KeyError, TypeError, AttributeError):
        lines.append("numpy BLAS: unknown (np.show_config gave no 'blas' entry)")
    lib = _openblas_lib()
    if lib is not None:
        core = _openblas_call(
            lib, ("scipy_openblas_get_corename64_", "openblas_get_corename"), ctypes.c_char_p
        )
        if isinstance(core, bytes):
            lines.append(f"OpenBLAS kernel in use: {core.decode()}")
    lines.append(f"numpy BLAS threads: {blas_threads()} (cpus: {os.cpu_count()})")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        lines.append(f"load average (1, 5, 15 min): {load}  <- other processes skew timings")
    for var in BLAS_ENV_VARS:
        value = os.environ.get(var)
        note = "unset" if value is None else f"{value!r}  <- set: may slow numpy's BLAS"
        lines.append(f"{var}: {note}")
    return lines


# --------------------------------------------------------------------------------------------
# The operations
# --------------------------------------------------------------------------------------------


def _normal(shape: tuple[int, ...], dtype: Literal["float64", "float32"], seed: int) -> FloatArray:
    out: FloatArray = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return out


@dataclass(frozen=True)
class Product:
    """One unavoidable matrix product ``a @ b``, evaluated in its faster BLAS orientation.

    ``a @ b`` and ``(b.T @ a.T).T`` are the same numbers, but OpenBLAS may run them at very
    different speeds (Conv2D's dW = dZ col^T, 64 x 65536 times 65536 x 288, float32: 2.5-4x
    faster as (col dZ^T)^T on the 2-core test machine). The bound takes the faster one, so it is
    a bound, not a straw man.
    """

    name: str
    a: FloatArray
    b: FloatArray
    flipped: bool

    @classmethod
    def fastest(cls, name: str, a: FloatArray, b: FloatArray) -> Product:
        times = interleaved_times(
            {"direct": lambda: a @ b, "flipped": lambda: (b.T @ a.T).T}, rounds=3, warmup=1
        )
        flipped = statistics.median(times["flipped"]) < statistics.median(times["direct"])
        return cls(name, a, b, flipped)

    def __call__(self) -> FloatArray:
        out: FloatArray = (self.b.T @ self.a.T).T if self.flipped else self.a @ self.b
        return out

    def describe(self) -> str:
        return f"({self.name} flipped)" if self.flipped else self.name


def bound_of(products: Sequence[Product]) -> Callable[[], object]:
    """A function computing every product in turn: the operation's GEMM bound."""

    def run() -> object:
        return [p() for p in products]

    return run


#: Seconds slept (untimed) before each call when PyTorch takes part. numpy's OpenBLAS workers
#: spin for about 0.1 s after a call before they sleep; measured on 2 cores at Dense 1024 -> 1024,
#: m = 512, float64: torch alone 37 ms, right after numpy 96 ms, after a 0.1-0.2 s pause 37-42 ms.
PAUSE_S = 0.15


def _time_row(
    op: str,
    dtype: Literal["float64", "float32"],
    shape: str,
    fns: dict[str, Callable[[], object]],
    budget: float,
) -> Row:
    pause = dict.fromkeys(fns, PAUSE_S) if "torch" in fns else None
    probe = interleaved_times(fns, rounds=1, warmup=1, pause=pause)
    per_round = sum(s[0] for s in probe.values())
    times = interleaved_times(
        fns, rounds=rounds_for(per_round, budget, low=7), warmup=0, pause=pause
    )
    return Row(op, dtype, shape, times["refnn"], times["bound"], times.get("torch"))


def dense_row(
    n_in: int, n_out: int, m: int, dtype: Literal["float64", "float32"], torch: Any, budget: float
) -> Row:
    """Dense forward + backward: refnn layer, its three GEMMs, torch.nn.functional.linear."""
    layer = Dense(n_in, n_out, rng=np.random.default_rng(0), dtype=dtype)
    X = _normal((n_in, m), dtype, 1)
    dZ = _normal((n_out, m), dtype, 2)
    W = layer.params["W"]

    def run_refnn() -> object:
        layer.forward(X)
        return layer.backward(dZ)

    products = [
        Product.fastest("W@X", W, X),
        Product.fastest("dZ@X.T", dZ, X.T),
        Product.fastest("W.T@dZ", W.T, dZ),
    ]
    fns: dict[str, Callable[[], object]] = {"refnn": run_refnn, "bound": bound_of(products)}
    if torch is not None:
        tX = torch.from_numpy(np.ascontiguousarray(X.T)).requires_grad_(True)
        tW = torch.from_numpy(W.copy()).requires_grad_(True)
        tb = torch.zeros(n_out, dtype=tX.dtype, requires_grad=True)
        tdY = torch.from_numpy(np.ascontiguousarray(dZ.T))

        def run_torch() -> object:
            tX.grad = tW.grad = tb.grad = None
            torch.nn.functional.linear(tX, tW, tb).backward(tdY)
            return tX.grad

        fns["torch"] = run_torch
    row = _time_row("Dense fwd+bwd", dtype, f"{n_in}->{n_out}, m={m}", fns, budget)
    row.bound_products = ", ".join(p.describe() for p in products)
    return row


def dense_rows(torch: Any, budget: float) -> list[Row]:
    rows = []
    for dtype in ("float64", "float32"):
        for n, m, judged in ((256, 128, False), (1024, 512, True)):
            row = dense_row(n, n, m, dtype, torch, budget)
            if judged and dtype == "float64":
                row.bars.append(Bar("refnn/bound", row.to_bound, 1.05))
            rows.append(row)
    return rows


def _conv_setup(
    c_in: int, c_out: int, hw: int, m: int, dtype: Literal["float64", "float32"]
) -> tuple[Conv2D, FloatArray, FloatArray]:
    layer = Conv2D(
        c_in, c_out, CONV_K, padding=CONV_K // 2, rng=np.random.default_rng(0), dtype=dtype
    )
    return layer, _normal((c_in, hw, hw, m), dtype, 1), _normal((c_out, hw, hw, m), dtype, 2)


def conv_row(
    c_in: int,
    c_out: int,
    hw: int,
    m: int,
    dtype: Literal["float64", "float32"],
    torch: Any,
    budget: float,
) -> Row:
    """Conv2D forward + backward: refnn layer, the three im2col GEMMs, torch conv2d + autograd."""
    layer, X, dZ = _conv_setup(c_in, c_out, hw, m, dtype)
    kk = c_in * CONV_K * CONV_K
    cols = _normal((kk, hw * hw * m), dtype, 3)
    W_mat = np.ascontiguousarray(layer.params["W"].reshape(c_out, kk))
    dZ_mat = dZ.reshape(c_out, hw * hw * m)

    def run_refnn() -> object:
        layer.forward(X)
        return layer.backward(dZ)

    products = [
        Product.fastest("W@col", W_mat, cols),
        Product.fastest("dZ@col.T", dZ_mat, cols.T),
        Product.fastest("W.T@dZ", W_mat.T, dZ_mat),
    ]
    fns: dict[str, Callable[[], object]] = {"refnn": run_refnn, "bound": bound_of(products)}
    if torch is not None:
        tX = torch.from_numpy(np.ascontiguousarray(X.transpose(3, 0, 1, 2))).requires_grad_(True)
        tW = torch.from_numpy(layer.params["W"].copy()).requires_grad_(True)
        tb = torch.zeros(c_out, dtype=tX.dtype, requires_grad=True)
        tdY = torch.from_numpy(np.ascontiguousarray(dZ.transpose(3, 0, 1, 2)))

        def run_torch() -> object:
            tX.grad = tW.grad = tb.grad = None
            torch.nn.functional.conv2d(tX, tW, tb, padding=CONV_K // 2).backward(tdY)
            return tX.grad

        fns["torch"] = run_torch
    shape = f"{c_in}->{c_out}, {hw}x{hw}, m={m}"
    row = _time_row("Conv2D fwd+bwd", dtype, shape, fns, budget)
    row.bound_products = ", ".join(p.describe() for p in products)
    return row


def conv_memory(
    c_in: int, c_out: int, hw: int, m: int, dtype: Literal["float64", "float32"]
) -> MemoryRow:
    """Peak bytes numpy allocates during one forward + backward of a fresh layer (tracemalloc)."""
    layer, X, dZ = _conv_setup(c_in, c_out, hw, m, dtype)
    tracemalloc.start()
    try:
        Z = layer.forward(X)
        dX = layer.backward(dZ)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = Z.nbytes + dX.nbytes + sum(g.nbytes for g in layer.grads.values())
    itemsize = np.dtype(dtype).itemsize
    shape = f"{c_in}->{c_out}, {hw}x{hw}, m={m}"
    return MemoryRow(dtype, shape, im2col_bytes(c_in, CONV_K, hw, hw, m, itemsize), peak, outputs)


def conv_rows(torch: Any, budget: float) -> list[Row]:
    rows = []
    for dtype in ("float64", "float32"):
        for (c_in, c_out, hw, m), judged in (((16, 32, 16, 32), False), ((32, 64, 32, 64), True)):
            row = conv_row(c_in, c_out, hw, m, dtype, torch, budget)
            if judged and dtype == "float64":
                row.bars.append(Bar("refnn/bound", row.to_bound, 1.35))
            if judged and row.to_torch is not None:
                limit = 0.6 if dtype == "float64" else 1.0
                row.bars.append(Bar("refnn/torch", row.to_torch, limit))
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def _import_torch(threads: int) -> Any:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--budget", type=float, default=3.0, help="seconds of timing per row (default 3)"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
    args = parser.parse_args(argv)

    print("== environment")
    for line in environment_report():
        print("  " + line)
    threads = blas_threads()
    torch = None if args.no_torch else _import_torch(threads)
    if torch is None:
        print("  torch: not used (install the pinned extra: pip install torch==2.13.0)")
    else:
        print(f"  torch {torch.__version__}, threads set to {torch.get_num_threads()}")
    print()

    rows = [*dense_rows(torch, args.budget), *conv_rows(torch, args.budget)]
    print("== times: medians of interleaved runs (refnn, bound, torch in turn);")
    print("   ratios: medians of the per-round ratios")
    print(format_table(rows))
    print("  bound = the three products, each in its faster orientation:")
    for r in rows:
        print(f"    {r.op} {r.dtype} {r.shape}: {r.bound_products}")
    print()
    memory = [conv_memory(32, 64, 32, 64, dtype) for dtype in ("float64", "float32")]
    print("== Conv2D peak memory, one forward + backward of a fresh layer (tracemalloc; the")
    print("   inputs X, dZ are allocated before tracing; outputs = Z + dX + dW + db)")
    print(format_memory(memory))
    print()
    verdicts = [(f"{r.op} {r.dtype} {r.shape}", b) for r in rows for b in r.bars]
    verdicts += [(f"Conv2D memory {r.dtype} {r.shape}", r.bar) for r in memory]
    missed = [(what, bar) for what, bar in verdicts if not bar.passed]
    print(f"== bars: {len(verdicts) - len(missed)} PASS, {len(missed)} MISS")
    for what, bar in missed:
        print(f"  MISS: {what}: {bar.format()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
