"""Naive oracles for MSE, the multiclass hinge and the weighted cross-entropies, written straight
from specs/losses.md (MSE-*, HINGE-*, LOSS-WEIGHTS) with scalar loops; independent of refnn."""

from __future__ import annotations

import math

import numpy as np

from refnn.types import FloatArray


def mse_loop(A: FloatArray, Y: FloatArray) -> tuple[float, FloatArray]:
    """J = (1/m) Σ_ij (a - y)² and dA = (2/m)(a - y), entry by entry."""
    k, m = A.shape
    total, dA = 0.0, np.zeros((k, m))
    for i in range(m):
        for j in range(k):
            d = float(A[j, i]) - float(Y[j, i])
            total += d * d
            dA[j, i] = 2.0 * d / m
    return total / m, dA


def hinge_loop(Z: FloatArray, Y: FloatArray, margin: float = 1.0) -> tuple[float, FloatArray]:
    """J = (1/m) Σ_i Σ_{j != y_i} max(0, Δ + s_j - s_y) and its subgradient (0 at a kink)."""
    k, m = Z.shape
    total, dZ = 0.0, np.zeros((k, m))
    for i in range(m):
        y = next(j for j in range(k) if Y[j, i] == 1.0)
        for j in range(k):
            if j == y:
                continue
            term = margin + float(Z[j, i]) - float(Z[y, i])
            if term > 0:
                total += term
                dZ[j, i] += 1.0 / m
                dZ[y, i] -= 1.0 / m
    return total / m, dZ


def _coefficients(w: list[float], norm: str) -> list[float]:
    total = float(len(w)) if norm == "m" else math.fsum(w)
    return [x / total for x in w]


def weighted_bce_logits_loop(
    Z: FloatArray, Y: FloatArray, w: list[float], norm: str
) -> tuple[float, FloatArray]:
    """J = Σ_i c_i Σ_j L(z_ji, y_ji) with L the BCE of σ(z), and dZ = c_i (σ(z) - y)."""
    k, m = Z.shape
    c = _coefficients(w, norm)
    total, dZ = 0.0, np.zeros((k, m))
    for i in range(m):
        for j in range(k):
            z, y = float(Z[j, i]), float(Y[j, i])
            total += c[i] * (max(z, 0.0) - z * y + math.log1p(math.exp(-abs(z))))
            dZ[j, i] = c[i] * (1.0 / (1.0 + math.exp(-z)) - y)
    return total, dZ


def weighted_softmax_ce_loop(
    Z: FloatArray, Y: FloatArray, w: list[float], norm: str
) -> tuple[float, FloatArray]:
    """J = -Σ_i c_i Σ_j y_ji log softmax(z_i)_j, and dZ = c_i (softmax(z_i) - y_i)."""
    k, m = Z.shape
    c = _coefficients(w, norm)
    total, dZ = 0.0, np.zeros((k, m))
    for i in range(m):
        top = max(float(Z[j, i]) for j in range(k))
        lse = top + math.log(math.fsum(math.exp(float(Z[j, i]) - top) for j in range(k)))
        for j in range(k):
            log_a = float(Z[j, i]) - lse
            if Y[j, i] != 0:
                total -= c[i] * float(Y[j, i]) * log_a
            dZ[j, i] = c[i] * (math.exp(log_a) - float(Y[j, i]))
    return total, dZ
