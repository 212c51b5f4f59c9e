"""Naive oracle for Adam and AdamW, written straight from the spec: a scalar recurrence per
element."""

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
    weight_decay: float = 0.0,
) -> list[FloatArray]:
    """θ after each of len(grads) Adam steps, element by element (ADAM-MOMENTS/BIAS/STEP);
    with ``weight_decay`` λ, AdamW's: θ -= α λ θ first, then the Adam step (OPT-ADAMW)."""
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
