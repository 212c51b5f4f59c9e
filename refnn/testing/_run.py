"""Run a check over hypothesis examples, record it, report the implementation's errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from refnn._validate import resolve_dtype
from refnn.testing._record import CHECKS, DEFAULTS, Check
from refnn.testing._tolerance import Example, MismatchError
from refnn.types import DTypeLike

T = TypeVar("T")


def run_examples(
    kind: str,
    name: str,
    detail: str,
    specs: tuple[str, ...],
    strategy: st.SearchStrategy[T],
    body: Callable[[T], None],
    *,
    max_examples: int | None,
    seed: int | None,
) -> None:
    """Run ``body`` on ``max_examples`` draws of ``strategy``; hypothesis shrinks a failure."""
    n = DEFAULTS.examples if max_examples is None else int(max_examples)
    if n < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples!r}")
    chosen = DEFAULTS.seed if seed is None else int(seed)
    config = settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    test = hypothesis_seed(chosen)(config(given(strategy)(body)))
    start = time.perf_counter()
    outcome = ""
    try:
        test()
    except BaseException as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        mismatch = isinstance(exc, MismatchError)
        outcome = f"implementation rejected ({what})" if mismatch else f"stopped by {what}"
        raise
    finally:
        seconds = time.perf_counter() - start
        CHECKS.append(Check(kind, name, detail, specs, n, seconds, not outcome, outcome))


@contextmanager
def calling(example: Example, what: str) -> Iterator[None]:
    """Turn an exception raised by the implementation under test into a MismatchError."""
    try:
        yield
    except MismatchError:
        raise
    except Exception as exc:
        raise MismatchError(
            f"{example.name}: the implementation's {what} raised "
            f"{type(exc).__name__}: {exc}\n{example.describe()}"
        ) from exc


def check_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """The dtype under test: float64 or float32 (NOTE-DTYPE)."""
    return resolve_dtype(dtype)


def check_layout(layout: object) -> str:
    if layout not in ("batch_last", "batch_first"):
        raise ValueError(f"layout must be 'batch_last' or 'batch_first', got {layout!r}")
    return str(layout)


def check_name(name: object, known: dict[str, Any], what: str) -> str:
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"{what} must be one of {sorted(known)}, got {name!r}")
    return name
