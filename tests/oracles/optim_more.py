"""Naive oracles for RMSprop and Nesterov momentum, written straight from specs/optim.md
(OPT-RMSPROP, OPT-NESTEROV): a scalar recurrence per element, independent of refnn. AdamW's is
``tests.oracles.adam.adam_loop`` with ``weight_decay``."""

from __future__ import annotations

import math

import numpy as np

from refnn.types import FloatArray


def rmsprop_loop(
    theta: FloatArray, grads: list[FloatArray], lr: float, beta: float, eps: float
) -> list[FloatArray]:
    """θ after each step: s = β s + (1 - β) g², θ -= α g / (sqrt(s) + ε)."""
    flat = [float(x) for x in theta.ravel()]
    s = [0.0] * len(flat)
    out: list[FloatArray] = []
    for g in grads:
        gf = g.ravel()
        for e in range(len(flat)):
            s[e] = beta * s[e] + (1 - beta) * gf[e] * gf[e]
            flat[e] -= lr * gf[e] / (math.sqrt(s[e]) + eps)
        out.append(np.array(flat).reshape(theta.shape))
    return out


def nesterov_loop(
    theta: FloatArray, grads: list[FloatArray], lr: float, momentum: float
) -> list[FloatArray]:
    """θ after each step: b = μ b + g, θ -= α (g + μ b)."""
    flat = [float(x) for x in theta.ravel()]
    b = [0.0] * len(flat)
    out: list[FloatArray] = []
    for g in grads:
        gf = g.ravel()
        for e in range(len(flat)):
            b[e] = momentum * b[e] + gf[e]
            flat[e] -= lr * (gf[e] + momentum * b[e])
        out.append(np.array(flat).reshape(theta.shape))
    return out
