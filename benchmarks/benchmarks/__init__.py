"""asv benchmarks of refnn (run with ``make bench``; see ``benchmarks/asv.conf.json``).

The suite runs in the project's own environment (``asv run --python=same``), so ``import refnn``
resolves to whatever that environment sees. ``make bench-compare`` benchmarks the parent commit
from a temporary git worktree by putting it first on the path (``ASV_PYTHONPATH``) and sets
``REFNN_BENCH_EXPECT_ROOT`` to that worktree: if ``refnn`` were imported from anywhere else, the
import below fails loudly instead of silently benchmarking the wrong code.
"""

from __future__ import annotations

import os
from pathlib import Path

import refnn

_expected = os.environ.get("REFNN_BENCH_EXPECT_ROOT")
if _expected:
    _root = Path(_expected).resolve()
    _actual = Path(refnn.__file__).resolve()
    if _root not in _actual.parents:
        raise ImportError(
            f"benchmarks expected refnn from {_root}, but imported {_actual}; "
            "check ASV_PYTHONPATH (asv discards PYTHONPATH)"
        )
