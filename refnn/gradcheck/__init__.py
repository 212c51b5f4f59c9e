"""A finite-difference gradient checker for any function of numpy arrays.

Depends on numpy and the standard library only (nothing else in refnn). See
``specs/gradcheck.md`` for the equations (GC-*) and how a gradient is judged.

>>> import numpy as np
>>> from refnn.gradcheck import check_grad
>>> x = np.array([0.5, -1.0, 2.0])
>>> check_grad(lambda x: float(np.sum(x**3)), lambda x: [3 * x**2], {"x": x}).passed
True
"""

from refnn.gradcheck._check import check_grad, check_vjp, numerical_grad
from refnn.gradcheck._contract import check_backward_contract
from refnn.gradcheck._report import (
    ArrayResult,
    ContractCheck,
    ContractResult,
    GradcheckError,
    GradcheckResult,
    KinkCounts,
    TaylorDirection,
    TaylorResult,
)
from refnn.gradcheck._taylor import taylor_test

__all__ = [
    "ArrayResult",
    "ContractCheck",
    "ContractResult",
    "GradcheckError",
    "GradcheckResult",
    "KinkCounts",
    "TaylorDirection",
    "TaylorResult",
    "check_backward_contract",
    "check_grad",
    "check_vjp",
    "numerical_grad",
    "taylor_test",
]
