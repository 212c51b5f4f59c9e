"""Where a failing ``make check`` quantity lives: its spec ID and the functions computing it.

This module is the one place that maps a case's checked input (a layer's ``X``, ``W``, ``b``; a
loss's ``A``; a model's ``0.W``) to the spec IDs of its derivative, and a spec ID to the refnn
functions whose docstrings cite it (``Spec: ID``). The IDs of a quantity come from the case's
own IDs first (the one ending in ``-D<NAME>``: ``WINO-DW`` for a Winograd Conv2D case), then
from the registry, the ``specs`` mapping each component class declares
(``Dense.specs["dW"] == ("DENSE-DW",)``), then from the case's backward IDs (``-BWD``,
``-GRAD``: a composite case's ``MODEL-BWD``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

import refnn
from refnn.verify.trace import PACKAGE, Trace, _scan

if TYPE_CHECKING:
    from refnn.verify.cases import Case

#: Modules whose citations are not implementations of the math (the kit and make check).
_NOT_MATH = ("refnn.testing.", "refnn.verify.")


def component_class(case: Case) -> str | None:
    """The refnn class a case checks alone (``"Dense"`` for "Dense float32"), None for a case
    checking several components together (a model, a network with L2)."""
    first = case.component.split()[0]
    return first if isinstance(getattr(refnn, first, None), type) else None


def size(case: Case, n_inputs: int, n_elements: int) -> tuple[int, int, int]:
    """Sort key, smallest first: one component before a composite case, then fewer inputs, then
    fewer elements (``Dense [1->1 m=1]`` before ``Dense [48->64 m=40]``)."""
    return (component_class(case) is None, n_inputs, n_elements)


def quantity_specs(case: Case, name: str) -> tuple[str, ...]:
    """The spec IDs of the derivative with respect to input ``name`` of ``case``.

    The case's own ID for it first (``WINO-DW`` for a Winograd Conv2D case, whose class
    declares ``CONV-DW``), then the IDs the component class declares for ``d<name>`` (its
    ``specs`` registry entry), then the case's backward IDs.
    """
    param = name.rsplit(".", 1)[-1]
    exact = tuple(i for i in case.specs if i.rsplit("-", 1)[-1] == "D" + param.upper())
    if exact:
        return exact
    cls = getattr(refnn, component_class(case) or "", None)
    declared = getattr(cls, "specs", None)
    if isinstance(declared, Mapping) and declared.get("d" + param):
        return tuple(declared["d" + param])
    return tuple(i for i in case.specs if i.endswith(("-BWD", "-GRAD")))


@cache
def _package_citations() -> dict[str, list[str]]:
    """ID -> functions citing it, scanned from the package's own sources (installed too)."""
    return _scan(PACKAGE.parent, PACKAGE.name, "doc")


def implementations(spec_id: str, trace: Trace | None = None) -> list[str]:
    """The functions of refnn's math whose docstrings cite ``spec_id`` (``refnn.dense.
    dense_backward`` for DENSE-DW); the trace's table when given, else the package's sources."""
    table = trace.implemented if trace is not None else _package_citations()
    return [f for f in table.get(spec_id, []) if not f.startswith(_NOT_MATH)]
