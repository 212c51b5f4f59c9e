"""Run a check over hypothesis examples, record it, report the implementation's errors."""

from __future__ import annotations

import numbers
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable, UnsatisfiedAssumption

from refnn._validate import resolve_dtype
from refnn.testing._layouts import LAYOUTS
from refnn.testing._record import CHECKS, DEFAULTS, Check
from refnn.testing._tolerance import Example, MismatchError
from refnn.types import DTypeLike

T = TypeVar("T")

#: Default limit, in seconds, on one call of the implementation (constructor, forward, ...).
TIME_LIMIT = 30.0


def run_examples(
    kind: str,
    name: str,
    detail: str,
    specs: tuple[str, ...],
    strategy: st.SearchStrategy[T],
    body: Callable[[T], None],
    *,
    max_examples: object,
    seed: object,
    explain: Callable[[str], str] | None = None,
    worker: Worker | None = None,
) -> None:
    """Run ``body`` on ``max_examples`` draws of ``strategy``; hypothesis shrinks a failure.

    The failure is re-raised as a fresh MismatchError carrying only the kit's message (no
    hypothesis explanation, no frames from inside the kit), completed by ``explain(message)``
    (a diagnosis worked out once, on the minimal example, not on every shrinking step).
    """
    __tracebackhide__ = True
    n = DEFAULTS.examples if max_examples is None else check_int(max_examples, "max_examples")
    if n < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples!r}")
    chosen = DEFAULTS.seed if seed is None else check_int(seed, "seed")
    config = settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        # no "explain" phase: its lines add nothing to the kit's message, and it costs time
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )
    test = hypothesis_seed(chosen)(config(given(strategy)(body)))
    start = time.perf_counter()
    outcome = ""
    try:
        test()
    except Hung as exc:
        outcome = f"implementation rejected (MismatchError: {_first(exc)})"
        raise MismatchError(str(exc)) from None
    except MismatchError as exc:
        outcome = f"implementation rejected (MismatchError: {_first(exc)})"
        message = str(exc)
        extra = explain(message) if explain else ""
        cut = message.find("\n  rerun it") if "\n  rerun it" in message else len(message)
        raise MismatchError(message[:cut] + extra + message[cut:]) from None
    except Unsatisfiable:
        outcome = "stopped by ValueError: nothing could be drawn"
        raise ValueError(
            f"{name}: nothing could be drawn: the configs given (or an assume() in make_impl) "
            "rule out every configuration the kit draws; relax them"
        ) from None
    except BaseException as exc:
        outcome = f"stopped by {type(exc).__name__}: {_first(exc)}"
        raise
    finally:
        if worker is not None:
            worker.close()
        seconds = time.perf_counter() - start
        CHECKS.append(Check(kind, name, detail, specs, n, seconds, not outcome, outcome))


def _first(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


class Hung(BaseException):
    """A call of the implementation did not return in time: the check stops at once."""


class Worker:
    """One thread that runs every call of the implementation under test, so that a call that
    hangs is reported after ``limit`` seconds instead of hanging the check, and so that the
    implementation's forward and backward run in one thread (as a refnn layer requires)."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self._jobs: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any] | None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.hung = ""

    def _loop(self) -> None:
        while True:
            job, out = self._jobs.get()
            if out is None:  # close(): the check is over
                return
            try:
                out.put((True, job()))
            except BaseException as exc:  # handed to the caller's thread
                out.put((False, exc))

    def close(self) -> None:
        """End the worker's thread (a hung one is left to its call: it is a daemon)."""
        if self._thread is not None and not self.hung:
            self._jobs.put((lambda: None, None))
            self._thread.join()
        self._thread = None

    def run(self, example: Example, what: str, job: Callable[[], T]) -> T:
        """``job()`` in the worker; its exception becomes a MismatchError naming ``what``.

        A call that hangs ends the check at once (:class:`Hung` passes through hypothesis, which
        neither shrinks nor replays it: the worker is still busy with the call).
        """
        __tracebackhide__ = True
        if self.limit is None:
            return call(example, what, job)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="refnn-kit")
            self._thread.start()
        out: queue.Queue[Any] = queue.Queue()
        self._jobs.put((job, out))
        try:
            ok, value = out.get(timeout=self.limit)
        except queue.Empty:
            self.hung = (
                f"{example.name}: the implementation's {what} did not return within "
                f"{self.limit:g} s (time_limit): it hangs or is far too slow (no later call was "
                f"made)\n{example.describe()}{example.snippet()}"
            )
            raise Hung(self.hung) from None
        if ok:
            result: T = value
            return result
        return call(example, what, _raiser(value))


def _raiser(exc: BaseException) -> Callable[[], Any]:
    def job() -> Any:
        raise exc

    return job


def call(example: Example, what: str, job: Callable[[], T]) -> T:
    """``job()``, its exception turned into a MismatchError naming the implementation's step;
    hypothesis's ``assume`` (UnsatisfiedAssumption) passes through: the example is skipped."""
    try:
        return job()
    except (MismatchError, UnsatisfiedAssumption):
        raise
    except Exception as exc:
        raise MismatchError(
            f"{example.name}: the implementation's {what} raised "
            f"{type(exc).__name__}: {exc}\n{example.describe()}{example.snippet()}"
        ) from exc


def check_int(value: object, name: str) -> int:
    """An integer argument: int or numpy integer, never bool, float or str."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def check_time_limit(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise ValueError(f"time_limit must be a positive number of seconds or None, got {value!r}")
    return float(value)


def check_tolerance(value: object) -> float:
    """A caller-given tolerance: 0 (refnn's only) or a positive finite number."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"tolerance must be a number, got {type(value).__name__} {value!r}")
    if not (np.isfinite(float(value)) and float(value) >= 0):
        raise ValueError(f"tolerance must be finite and >= 0, got {value!r}")
    return float(value)


def check_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """The dtype under test: float64 or float32 (NOTE-DTYPE)."""
    return resolve_dtype(dtype)


def check_layout(layout: object) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    return str(layout)


def check_name(name: object, known: dict[str, Any], what: str) -> str:
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"{what} must be one of {sorted(known)}, got {name!r}")
    return name


def check_conventions(
    given: object, known: dict[str, tuple[str, ...]], name: str
) -> dict[str, str]:
    """The conventions a user declares: each a known one of the component, with a known value."""
    if given is None:
        return {k: v[0] for k, v in known.items()}
    if not isinstance(given, dict):
        raise TypeError(f"conventions must be a dict, got {type(given).__name__}")
    out = {k: v[0] for k, v in known.items()}
    for key, value in given.items():
        if key not in known:
            listed = ", ".join(f"{k} ({'/'.join(v)})" for k, v in known.items()) or "none"
            raise ValueError(f"{name} has no convention {key!r}; it has: {listed}")
        if value not in known[key]:
            raise ValueError(
                f"{name}'s convention {key!r} must be one of {known[key]}, got {value!r}"
            )
        out[key] = value
    return out
