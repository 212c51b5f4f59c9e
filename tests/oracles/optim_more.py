"""Naive oracles for RMSprop, AdamW and Nesterov momentum, written straight from specs/optim.md
(OPT-RMSPROP, OPT-ADAMW, OPT-NESTEROV): a scalar recurrence per element, independent of refnn."""

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


def adamw_loop(
    theta: FloatArray,
    grads: list[FloatArray],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> list[FloatArray]:
    """θ after each step: θ -= α λ θ, then the Adam step from g (ADAM-MOMENTS/BIAS/STEP)."""
    flat = [float(x) for x in theta.ravel()]
    m1 = [0.0] * len(flat)
    m2 = [0.0] * len(flat)
    out: list[FloatArray] = []
    for t, g in enumerate(grads, start=1):
        gf = g.ravel()
        for e in range(len(flat)):
            flat[e] -= lr * weight_decay * flat[e]
            m1[e] = beta1 * m1[e] + (1 - beta1) * gf[e]
            m2[e] = beta2 * m2[e] + (1 - beta2) * gf[e] * gf[e]
            m_hat = m1[e] / (1 - beta1**t)
            v_hat = m2[e] / (1 - beta2**t)
            flat[e] -= lr * m_hat / (math.sqrt(v_hat) + eps)
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
