"""A finite-difference gradient checker for any function of numpy arrays.

Depends on numpy and the standard library only (nothing else in refnn). See
``specs/gradcheck.md`` for the equations (GC-*) and how a gradient is judged.

>>> import numpy as np
>>> from refnn.gradcheck import check_grad
>>> x = np.array([0.5, -1.0, 2.0])
>>> check_grad(lambda x: float(np.sum(x**3)), lambda x: [3 * x**2], {"x": x}).passed
True
"""

from refnn.gradcheck._api import check_grad, check_hvp, check_vjp, numerical_grad
from refnn.gradcheck._extra import check_backward_contract, taylor_test
from refnn.gradcheck._report import (
    ArrayResult,
    ContractCheck,
    ContractResult,
    ElementDetails,
    GradcheckError,
    GradcheckResult,
    KinkCounts,
    TaylorDirection,
    TaylorResult,
)

__all__ = [
    "ArrayResult",
    "ContractCheck",
    "ContractResult",
    "ElementDetails",
    "GradcheckError",
    "GradcheckResult",
    "KinkCounts",
    "TaylorDirection",
    "TaylorResult",
    "check_backward_contract",
    "check_grad",
    "check_hvp",
    "check_vjp",
    "numerical_grad",
    "taylor_test",
]
