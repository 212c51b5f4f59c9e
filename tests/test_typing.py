"""The public types hold for a dependent project: mypy --strict on small consumer modules.

One module types its own layer the documented way (docs/typing.rst) and must pass; each other
module makes one mistake the types exist to catch and must fail with the expected error code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[1]

GOOD = '''
from dataclasses import dataclass

import numpy as np

import refnn
from refnn.types import DTypeLike, Float64Array, FloatArray


@dataclass
class ScaleCache:
    X: FloatArray


class Scale(refnn.Layer[ScaleCache]):
    """Y = factor X: a user's own layer, typed like refnn's."""

    def __init__(self, factor: float, *, dtype: DTypeLike = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.factor = factor

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, ScaleCache]:
        return X * self.factor, ScaleCache(X)

    def _backward(
        self, dY: FloatArray, cache: ScaleCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return dY * self.factor + 0.0 * cache.X, {}, {}


def weights64(layer: refnn.Dense) -> Float64Array:
    return np.asarray(layer.params["W"], dtype=np.float64)


model = refnn.Sequential([refnn.Dense(2, 3, rng=np.random.default_rng(0), dtype="float32"),
                          Scale(2.0, dtype=np.float32)])
'''

WRONG = {
    "dtype_float16": (
        "import numpy as np\nimport refnn\n"
        "refnn.Dense(2, 3, rng=np.random.default_rng(0), dtype='float16')\n",
        "arg-type",
    ),
    "dtype_numpy_float16": (
        "import numpy as np\nimport refnn\nrefnn.Tanh(dtype=np.float16)\n",
        "arg-type",
    ),
    "narrow_override": (
        "import numpy as np\nimport refnn\nfrom refnn.types import Float64Array, FloatArray\n"
        "class Half(refnn.Layer[FloatArray]):\n"
        "    def _forward(self, X: Float64Array, training: bool, **inputs: FloatArray\n"
        "                 ) -> tuple[FloatArray, FloatArray]:\n"
        "        return X / 2, X\n"
        "    def _backward(self, dY: FloatArray, cache: FloatArray\n"
        "                  ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:\n"
        "        return dY / 2, {}, {}\n",
        "override",
    ),
    "float64_from_params": (
        "import numpy as np\nimport refnn\nfrom refnn.types import Float64Array\n"
        "W: Float64Array = refnn.Dense(2, 3, rng=np.random.default_rng(0)).params['W']\n",
        "assignment",
    ),
}


#: numpy 1.x (the oldest supported, make test-oldest) types arrays less precisely
NUMPY_1 = int(np.__version__.split(".")[0]) < 2


def test_a_consumer_typed_as_documented_passes_and_each_mistake_fails(tmp_path: Path) -> None:
    (tmp_path / "none.ini").write_text("[mypy]\n")
    (tmp_path / "good.py").write_text(GOOD)
    for name, (source, _) in WRONG.items():
        (tmp_path / f"{name}.py").write_text(source)
    files = [str(tmp_path / "good.py"), *(str(tmp_path / f"{n}.py") for n in WRONG)]
    out, err, status = mypy_api.run(
        [
            "--strict",
            "--show-error-codes",
            "--no-error-summary",
            "--config-file",
            str(tmp_path / "none.ini"),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "consumer"),
            *files,
        ]
    )
    lines = (out + err).splitlines()
    assert status in (0, 1), out + err
    good = [line for line in lines if "good.py" in line]
    assert good == [], "\n".join(good)
    for name, (_, code) in WRONG.items():
        if name in ("narrow_override", "float64_from_params") and NUMPY_1:
            continue  # numpy 1.x's stubs do not tell float64 arrays from floating[Any] ones
        mine = [line for line in lines if f"{name}.py" in line]
        assert any(f"[{code}]" in line for line in mine), f"{name}: expected [{code}], got {mine}"
