"""refnn.gradcheck side by side with torch.autograd.gradcheck: verdicts and times, same cases.

Run from the repository root: ``python benchmarks/gradcheck_vs_torch.py [--quick]``.

1. The adversarial corpus of ``tests/test_gradcheck_corpus.py`` (right and wrong gradients of
   numpy functions), judged by both checkers. PyTorch runs the very same numpy function and
   gradient, wrapped in a ``torch.autograd.Function``; its defaults are eps=1e-6, atol=1e-5,
   rtol=1e-3. Counted per family: wrong gradients passed, false alarms, crashes, inconclusive.
2. The corpus of issue 23 (``tests/test_gradcheck_round2.py``: domain edges, jumps, a large input
   beside a small one, an f random now and then, loosened bounds, float32, f raising outside its
   domain, wrong gradients of large inputs, options). Counted per family as above, with a false
   alarm meaning a right gradient called WRONG (inconclusive is counted apart); for PyTorch a
   refused (raised) check counts as a crash.
3. Times on the same function and input size (100 to 10^4 elements): a scalar function (refnn in
   its default mode, which projects above 2000 elements, and forced elementwise), and a function
   with 10 outputs (PyTorch builds the Jacobian, refnn checks a VJP).
4. Wrong gradients of large inputs (issue 23, item 8): sum(x^3) at 10^6 elements with the
   gradient 1% off everywhere, the same right, 10^5 elements forced elementwise, and the VJP of
   inv(A) at 100 x 100 with one element 1% off; PyTorch in its fast mode (fast_mode=True), as
   its full Jacobian at 10^6 inputs would not finish.

Without torch installed, only refnn's columns are printed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refnn.gradcheck import check_grad, check_vjp
from tests import test_gradcheck_round2 as round2
from tests.test_gradcheck_corpus import Case, corpus, verdict

Arr = npt.NDArray[Any]

torch: Any
try:
    torch = importlib.import_module("torch")  # typed Any whether or not torch is installed
except ImportError:  # the script still reports refnn's columns
    torch = None


def _torch_scalar(f: Callable[..., Any], grad: Callable[..., Sequence[Arr]]) -> Any:
    """A torch function computing the numpy ``f``, with the numpy ``grad`` as its backward."""
    assert torch is not None

    def forward(ctx: Any, *tensors: Any) -> Any:
        ctx.save_for_backward(*tensors)
        value = f(*(t.detach().numpy() for t in tensors))
        return torch.tensor(float(value), dtype=tensors[0].dtype)

    def backward(ctx: Any, grad_out: Any) -> Any:
        arrays = [t.detach().numpy() for t in ctx.saved_tensors]
        gs = grad(*arrays)
        return tuple(
            grad_out * torch.from_numpy(np.array(g, dtype=a.dtype))
            for g, a in zip(gs, arrays, strict=True)
        )

    methods = {"forward": staticmethod(forward), "backward": staticmethod(backward)}
    wrapped: Any = type("Wrapped", (torch.autograd.Function,), methods)
    return wrapped.apply


def torch_verdict(case: Case) -> str:
    """passed / WRONG / crashed, as torch.autograd.gradcheck judges the case."""
    assert torch is not None
    fn = _torch_scalar(case.f, case.grad)
    tensors = [torch.from_numpy(np.array(a)).requires_grad_(True) for a in case.inputs.values()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = torch.autograd.gradcheck(fn, tensors, raise_exception=False)
    except Exception as error:  # a crash is a finding
        return f"crashed: {type(error).__name__}"
    return "passed" if ok else "WRONG"


def _count(cases: list[Case], verdicts: list[str]) -> tuple[int, int, int, int]:
    wrong_passed = sum(
        1 for c, v in zip(cases, verdicts, strict=True) if not c.right and v == "passed"
    )
    false_alarms = sum(1 for c, v in zip(cases, verdicts, strict=True) if c.right and v != "passed")
    crashes = sum(v.startswith("crashed") for v in verdicts)
    inconclusive = sum(v == "inconclusive" for v in verdicts)
    return wrong_passed, false_alarms, crashes, inconclusive


def corpus_table() -> None:
    """Per family: cases (right/wrong), and for each checker wrong passed / false alarms /
    crashes / inconclusive."""
    cases = corpus()
    ours = [verdict(c) for c in cases]
    theirs = [torch_verdict(c) for c in cases] if torch is not None else None
    families = sorted({c.family for c in cases}, key=[c.family for c in cases].index)
    head = f"{'family':14} {'right':>5} {'wrong':>5}  {'refnn wp/fa/cr/inc':>20}"
    print(head + (f"  {'torch wp/fa/cr':>16}" if theirs else ""))
    rows = [(fam, [i for i, c in enumerate(cases) if c.family == fam]) for fam in families]
    for name, idx in [*rows, ("TOTAL", list(range(len(cases))))]:
        sub = [cases[i] for i in idx]
        right = sum(c.right for c in sub)
        wp, fa, cr, inc = _count(sub, [ours[i] for i in idx])
        line = f"{name:14} {right:5d} {len(sub) - right:5d}  {f'{wp}/{fa}/{cr}/{inc}':>20}"
        if theirs:
            twp, tfa, tcr, _ = _count(sub, [theirs[i] for i in idx])
            line += f"  {f'{twp}/{tfa}/{tcr}':>16}"
        print(line)
    print(
        "wp: wrong gradients passed, fa: false alarms on right ones, cr: crashes, "
        "inc: said inconclusive"
    )


def _torch_vjp(f: Callable[..., Any], vjp: Callable[..., Sequence[Arr]]) -> Any:
    """A torch function computing the numpy array function ``f``, with ``vjp`` as backward."""
    assert torch is not None

    def forward(ctx: Any, *tensors: Any) -> Any:
        ctx.save_for_backward(*tensors)
        return torch.from_numpy(np.array(f(*(t.detach().numpy() for t in tensors))))

    def backward(ctx: Any, grad_out: Any) -> Any:
        arrays = [t.detach().numpy() for t in ctx.saved_tensors]
        gs = vjp(grad_out.detach().numpy().copy(), *arrays)
        return tuple(
            torch.from_numpy(np.array(g, dtype=a.dtype)) for g, a in zip(gs, arrays, strict=True)
        )

    methods = {"forward": staticmethod(forward), "backward": staticmethod(backward)}
    wrapped: Any = type("WrappedVjp", (torch.autograd.Function,), methods)
    return wrapped.apply


def torch_round2_verdict(case: round2.Case, fast: bool = False) -> str:
    """passed / WRONG / crashed, as torch.autograd.gradcheck judges a round-2 case."""
    assert torch is not None
    if case.vjp:
        fn = _torch_vjp(case.f, case.grad)
    else:
        fn = _torch_scalar(case.f, case.grad)
    tensors = [torch.from_numpy(np.array(a)).requires_grad_(True) for a in case.inputs.values()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = torch.autograd.gradcheck(fn, tensors, raise_exception=False, fast_mode=fast)
    except _OutOfTime:
        raise
    except Exception as error:  # a crash is a finding
        return f"crashed: {type(error).__name__}"
    return "passed" if ok else "WRONG"


def round2_table() -> None:
    """Issue 23's corpus per family: wrong passed / false alarms (right called WRONG) /
    crashes / inconclusive (refnn), and PyTorch's wrong passed / false alarms / crashes."""
    start = time.perf_counter()
    cases = round2.corpus()
    ours = [round2.verdict(c) for c in cases]
    t_ours = time.perf_counter() - start
    theirs = None
    if torch is not None:
        fresh = round2.corpus()  # fresh closures: the flaky f's draw anew
        start = time.perf_counter()
        theirs = [
            "skipped"
            if max(a.size for a in c.inputs.values()) > 50_000
            else torch_round2_verdict(c, fast=c.family == "8 large")
            for c in fresh
        ]
        t_theirs = time.perf_counter() - start
    families = sorted({c.family for c in cases}, key=[c.family for c in cases].index)
    head = f"{'family':22} {'right':>5} {'wrong':>5}  {'refnn wp/fa/cr/inc':>20}"
    print(head + (f"  {'torch wp/fa/cr':>16}" if theirs else ""))
    rows = [(fam, [i for i, c in enumerate(cases) if c.family == fam]) for fam in families]
    for name, idx in [*rows, ("TOTAL", list(range(len(cases))))]:
        sub = [cases[i] for i in idx]
        right = sum(c.right for c in sub)
        vs = [ours[i] for i in idx]
        wp = sum(1 for c, v in zip(sub, vs, strict=True) if not c.right and v == "passed")
        fa = sum(1 for c, v in zip(sub, vs, strict=True) if c.right and v == "WRONG")
        cr = sum(v.startswith("crashed") for v in vs)
        inc = sum(v in ("inconclusive", "refused") for v in vs)
        line = f"{name:22} {right:5d} {len(sub) - right:5d}  {f'{wp}/{fa}/{cr}/{inc}':>20}"
        if theirs:
            ts = [theirs[i] for i in idx]
            twp = sum(1 for c, v in zip(sub, ts, strict=True) if not c.right and v == "passed")
            tfa = sum(1 for c, v in zip(sub, ts, strict=True) if c.right and v == "WRONG")
            tcr = sum(v.startswith("crashed") for v in ts)
            line += f"  {f'{twp}/{tfa}/{tcr}':>16}"
        print(line)
    print(
        "fa: right gradients called WRONG; inc: inconclusive, or refused as not deterministic; "
        f"refnn {t_ours:.1f} s"
        + (f", torch {t_theirs:.1f} s (without the two 10^5-element cases)" if theirs else "")
    )


def large_table() -> None:
    """Issue 23 item 8: seconds to a verdict on large inputs, refnn and PyTorch (fast mode)."""
    rng = np.random.default_rng(0)
    x6 = rng.standard_normal(10**6)
    x5 = rng.standard_normal(10**5)
    A = np.random.default_rng(1).standard_normal((100, 100)) + 10 * np.eye(100)

    def cube(x: Arr) -> float:
        return float(np.sum(x**3))

    def inv_vjp(dy: Arr, A: Arr, k: float = 1.01) -> list[Arr]:
        Ai = np.linalg.inv(A)
        out: Arr = -Ai.T @ dy @ Ai.T
        out[3, 4] *= k
        return [out]

    rows: list[tuple[str, Callable[[], Any], round2.Case]] = [
        (
            "sum(x^3) 10^6, 1% off",
            lambda: check_grad(cube, lambda x: [3.03 * x**2], {"x": x6}),
            round2.Case("", "", cube, lambda x: [3.03 * x**2], {"x": x6}, False),
        ),
        (
            "sum(x^3) 10^6, right",
            lambda: check_grad(cube, lambda x: [3 * x**2], {"x": x6}),
            round2.Case("", "", cube, lambda x: [3 * x**2], {"x": x6}, True),
        ),
        (
            "10^5 elementwise, 1% off",
            lambda: check_grad(cube, lambda x: [3.03 * x**2], {"x": x5}, mode="elementwise"),
            round2.Case("", "", cube, lambda x: [3.03 * x**2], {"x": x5}, False),
        ),
        (
            "vjp inv(A) 100x100, 1 off",
            lambda: check_vjp(np.linalg.inv, inv_vjp, {"A": A}),
            round2.Case("", "", np.linalg.inv, inv_vjp, {"A": A}, False, vjp=True),
        ),
    ]
    print(f"{'check':26} {'refnn s':>8} {'verdict':>12}" + ("  torch s  verdict" if torch else ""))
    for name, ours, case in rows:
        start = time.perf_counter()
        result = ours()
        t = time.perf_counter() - start
        v = "passed" if result.passed else "/".join(a.verdict for a in result.arrays)
        line = f"{name:26} {t:8.2f} {v:>12}"
        if torch is not None:
            start = time.perf_counter()
            tv = _within(TORCH_LIMIT, partial(torch_round2_verdict, case, fast=True))
            line += f"  {time.perf_counter() - start:7.2f}  {tv}"
        print(line, flush=True)


#: Seconds PyTorch is given per large-input check before the row says it gave no verdict.
TORCH_LIMIT = 120


class _OutOfTime(Exception):
    pass


def _within(seconds: int, check: Callable[[], str]) -> str:
    """``check()``, or "no verdict in <seconds> s" (SIGALRM; POSIX only)."""

    def expire(signum: int, frame: object) -> None:
        raise _OutOfTime

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        return check()
    except _OutOfTime:
        return f"no verdict in {seconds} s"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _scalar_problem(n: int) -> tuple[Callable[..., float], Callable[..., list[Arr]], Arr]:
    x = np.random.default_rng(n).standard_normal(n)

    def f(x: Arr) -> float:
        return float(np.sum(np.sin(x) * x) + 0.1 * np.sum(x) ** 2)

    def grad(x: Arr) -> list[Arr]:
        return [np.cos(x) * x + np.sin(x) + 0.2 * np.sum(x)]

    return f, grad, x


def _timed(run: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def timing_table(sizes: Sequence[int]) -> None:
    """Seconds per check (best of 3 below 10^4 elements, else 1 run)."""
    print(
        f"{'function':22} {'n':>6}  {'refnn s':>8} {'verdict':>8}"
        + (f"  {'torch s':>8} {'verdict':>8}  {'torch/refnn':>11}" if torch else "")
    )
    for n in sizes:
        for name, ours, theirs in _timing_cases(n):
            repeat = 3 if n < 10_000 else 1
            t_ours, ok = _timed(ours, repeat)
            line = f"{name:22} {n:6d}  {t_ours:8.3f} {'ok' if ok else 'FAIL':>8}"
            if torch is not None:
                t_theirs, tok = _timed(theirs, repeat)
                line += f"  {t_theirs:8.3f} {'ok' if tok else 'FAIL':>8}  {t_theirs / t_ours:11.2f}"
            print(line, flush=True)


def _timing_cases(n: int) -> list[tuple[str, Callable[[], bool], Callable[[], bool]]]:
    """(name, refnn's check, torch's check) on the same function and input of size n."""
    f, grad, x = _scalar_problem(n)
    A = np.random.default_rng(n + 1).standard_normal((10, n)) / np.sqrt(n)

    def vec(x: Arr) -> Arr:
        out: Arr = np.tanh(A @ x)
        return out

    def vjp(dy: Arr, x: Arr) -> list[Arr]:
        return [A.T @ (dy * (1 - np.tanh(A @ x) ** 2))]

    return [
        (
            "scalar sum(sin(x) x)",
            lambda: check_grad(f, grad, {"x": x}).passed,
            lambda: _torch_scalar_check(f, grad, x),
        ),
        (
            "  same, elementwise",
            lambda: check_grad(f, grad, {"x": x}, mode="elementwise").passed,
            lambda: _torch_scalar_check(f, grad, x),
        ),
        (
            "10 outputs tanh(A x)",
            lambda: check_vjp(vec, vjp, {"x": x}).passed,
            lambda: _torch_vector_check(A, x),
        ),
    ]


def _torch_scalar_check(f: Callable[..., float], grad: Callable[..., list[Arr]], x: Arr) -> bool:
    assert torch is not None
    fn = _torch_scalar(f, grad)
    ok: bool = torch.autograd.gradcheck(fn, [torch.from_numpy(x.copy()).requires_grad_(True)])
    return ok


def _torch_vector_check(A: Arr, x: Arr) -> bool:
    assert torch is not None
    At = torch.from_numpy(A)
    ok: bool = torch.autograd.gradcheck(
        lambda t: torch.tanh(At @ t), [torch.from_numpy(x.copy()).requires_grad_(True)]
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="timings up to 1000 elements only")
    parser.add_argument(
        "--issue23", action="store_true", help="only issue 23's corpus and large-input table"
    )
    args = parser.parse_args()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"CPU: {cpu}; {os.cpu_count()} cores; load average {os.getloadavg()}")
    print(f"numpy {np.__version__}; torch {torch.__version__ if torch else 'not installed'}\n")
    if not args.issue23:
        corpus_table()
        print()
    round2_table()
    print()
    if not args.issue23:
        timing_table([100, 1000] if args.quick else [100, 1000, 10_000])
        print()
    large_table()


if __name__ == "__main__":
    main()
