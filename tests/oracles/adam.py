"""Naive oracle for Adam, written straight from the spec: a scalar recurrence per element."""

from __future__ import annotations

import math

import numpy as np

from refnn.types import FloatArray


def adam_loop(
    theta: FloatArray,
    grads: list[FloatArray],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
) -> list[FloatArray]:
    """θ after each of len(grads) Adam steps, element by element (ADAM-MOMENTS/BIAS/STEP)."""
    flat = [float(x) for x in theta.ravel()]
    m1 = [0.0] * len(flat)
    m2 = [0.0] * len(flat)
    out: list[FloatArray] = []
    for t, g in enumerate(grads, start=1):
        gf = g.ravel()
        for e in range(len(flat)):
            m1[e] = beta1 * m1[e] + (1 - beta1) * gf[e]
            m2[e] = beta2 * m2[e] + (1 - beta2) * gf[e] * gf[e]
            m_hat = m1[e] / (1 - beta1**t)
            v_hat = m2[e] / (1 - beta2**t)
            flat[e] -= lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(np.array(flat).reshape(theta.shape))
    return out
