"""Naive temporal affine and temporal softmax cross-entropy, one step and one example at a time,
straight from specs/temporal.md (scalar math: math.exp, math.log; no refnn)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from refnn.types import FloatArray


def temporal_affine_naive(
    X: FloatArray, W: FloatArray, b: FloatArray, dZ: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Z and (dX, dW, db) by loops over steps, examples and units (TAFFINE-*)."""
    n_in, T, m = X.shape
    n_out = W.shape[0]
    Z = np.zeros((n_out, T, m))
    dX, dW, db = np.zeros_like(X), np.zeros_like(W), np.zeros_like(b)
    for t in range(T):
        for i in range(m):
            for u in range(n_out):
                Z[u, t, i] = b[u, 0] + sum(W[u, j] * X[j, t, i] for j in range(n_in))
                db[u, 0] += dZ[u, t, i]
                for j in range(n_in):
                    dW[u, j] += dZ[u, t, i] * X[j, t, i]
                    dX[j, t, i] += W[u, j] * dZ[u, t, i]
    return Z, dX, dW, db


def temporal_softmax_ce_naive(
    Z: FloatArray,
    y: npt.NDArray[np.integer],
    counted: npt.NDArray[np.bool_],
    per_token: bool,
) -> tuple[float, FloatArray]:
    """J and dZ token by token (TSCE-COST, TSCE-GRAD); ``counted`` is μ."""
    k, T, m = Z.shape
    N = int(counted.sum()) if per_token else m
    J = 0.0
    dZ = np.zeros_like(Z)
    if N == 0:
        return J, dZ
    for t in range(T):
        for i in range(m):
            if not counted[t, i]:
                continue
            c = max(Z[:, t, i])
            total = sum(math.exp(Z[j, t, i] - c) for j in range(k))
            J += (math.log(total) - (Z[y[t, i], t, i] - c)) / N
            for j in range(k):
                p = math.exp(Z[j, t, i] - c) / total
                dZ[j, t, i] = (p - (1.0 if j == y[t, i] else 0.0)) / N
    return J, dZ
