"""refnn.gradcheck side by side with torch.autograd.gradcheck: verdicts and times, same cases.

Run from the repository root: ``python benchmarks/gradcheck_vs_torch.py [--quick]``.

1. The adversarial corpus of ``tests/test_gradcheck_corpus.py`` (right and wrong gradients of
   numpy functions), judged by both checkers. PyTorch runs the very same numpy function and
   gradient, wrapped in a ``torch.autograd.Function``; its defaults are eps=1e-6, atol=1e-5,
   rtol=1e-3. Counted per family: wrong gradients passed, false alarms, crashes, inconclusive.
2. Times on the same function and input size (100 to 10^4 elements): a scalar function (refnn in
   its default mode, which projects above 2000 elements, and forced elementwise), and a function
   with 10 outputs (PyTorch builds the Jacobian, refnn checks a VJP).

Without torch installed, only refnn's columns are printed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refnn.gradcheck import check_grad, check_vjp
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
    corpus_table()
    print()
    timing_table([100, 1000] if args.quick else [100, 1000, 10_000])


if __name__ == "__main__":
    main()
