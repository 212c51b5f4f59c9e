"""The kit's pytest plugin (TEST-PLUGIN) and what importing refnn pulls in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONSUMER = """
import numpy as np
from refnn.testing import check_layer

class Flat:
    def __init__(self, config, params):
        pass
    def forward(self, X):
        self.shape = X.shape
        return X.reshape(X.shape[0], -1)
    def backward(self, dY):
        return dY.reshape(self.shape), {}

def test_flatten():
    check_layer("Flatten", Flat, layout="batch_first")
"""


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_consumer.py").write_text(CONSUMER)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    # the plugin comes in through refnn's pytest11 entry point, as in a consumer's project
    command = [sys.executable, "-m", "pytest", "-q", *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)


@pytest.mark.spec("TEST-PLUGIN")
def test_the_plugin_sets_the_examples_and_summarises_the_specs(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--refnn-examples", "3", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "refnn conformance kit" in done.stdout
    assert "layer Flatten (batch_first, float64): 3 examples, passed" in done.stdout
    assert "specs FLATTEN-FWD, FLATTEN-BWD" in done.stdout


@pytest.mark.spec("TEST-PLUGIN")
def test_the_plugin_refuses_a_nonpositive_number_of_examples(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--refnn-examples", "0", "-p", "no:cacheprovider")
    assert done.returncode != 0
    assert "--refnn-examples must be >= 1, got 0" in done.stdout + done.stderr


def test_importing_refnn_and_the_plugin_imports_neither_hypothesis_nor_torch() -> None:
    code = (
        "import sys, refnn, refnn.gradcheck, refnn.testing, refnn.testing.plugin;"
        "from refnn.testing import to_batch_first;"
        "print(sorted(m for m in ('hypothesis', 'torch') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
