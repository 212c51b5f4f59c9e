"""Naive oracles for softmax and cross-entropy, written straight from the specs.

Independent of refnn: scalar loops over classes and examples (softmax without the max shift,
so only for moderate logits) and the softmax Jacobian built entry by entry.
"""

from __future__ import annotations

import math

import numpy as np

from refnn.types import FloatArray


def softmax_loop(Z: FloatArray) -> FloatArray:
    """a_j = e^{z_j} / Σ_l e^{z_l} per column of a k x m array (|z| must stay moderate)."""
    k, m = Z.shape
    A = np.zeros((k, m))
    for i in range(m):
        total = sum(math.exp(Z[j, i]) for j in range(k))
        for j in range(k):
            A[j, i] = math.exp(Z[j, i]) / total
    return A


def softmax_vjp_loop(dA: FloatArray, A: FloatArray) -> FloatArray:
    """dZ = J^T dA with the Jacobian J_jl = ∂a_j/∂z_l = a_j (δ_jl - a_l), built per column."""
    k, m = A.shape
    dZ = np.zeros((k, m))
    for i in range(m):
        for l_ in range(k):
            dZ[l_, i] = sum(
                dA[j, i] * A[j, i] * ((1.0 if j == l_ else 0.0) - A[l_, i]) for j in range(k)
            )
    return dZ


def cross_entropy_loop(A: FloatArray, Y: FloatArray) -> float:
    """J = -(1/m) Σ_ij y_ij log a_ij (no clip: A must be > 0 wherever y > 0)."""
    k, m = A.shape
    total = 0.0
    for i in range(m):
        for j in range(k):
            if Y[j, i] != 0.0:
                total -= Y[j, i] * math.log(A[j, i])
    return float(total / m)
