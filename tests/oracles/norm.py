"""Naive normalisation oracle, one entry at a time, straight from specs/norm.md.

Independent of refnn: the sets S are dictionaries filled by walking every index of X; the
statistics are Python sums over each set; the backward is the staged chain rule through σ² and
μ as a textbook derives it (dσ², then dμ, then dx), not the compact NORM-DX form refnn uses.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable

import numpy as np

from refnn.types import FloatArray

Index = tuple[int, ...]
Grads = tuple[FloatArray, FloatArray, FloatArray]


def naive_norm(
    X: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    dY: FloatArray,
    set_of: Callable[[Index], Hashable],
    param_of: Callable[[Index], Index],
    eps: float,
) -> tuple[FloatArray, Grads, dict[Hashable, tuple[float, float]]]:
    """Y, (dX, dγ, dβ) and each set's (μ, biased σ²) for a normalisation whose set S of entry
    ``i`` is ``set_of(i)`` and whose γ, β entry is ``param_of(i)`` (NORM-STATS, NORM-AFFINE,
    NORM-DX, NORM-DGAMMA, NORM-DBETA)."""
    members: dict[Hashable, list[Index]] = defaultdict(list)
    for i in np.ndindex(*X.shape):
        members[set_of(i)].append(i)
    stats: dict[Hashable, tuple[float, float]] = {}
    Y = np.zeros_like(X)
    dX = np.zeros_like(X)
    dgamma = np.zeros_like(gamma)
    dbeta = np.zeros_like(beta)
    for key, entries in members.items():
        N = len(entries)
        mu = sum(float(X[i]) for i in entries) / N
        var = sum((float(X[i]) - mu) ** 2 for i in entries) / N
        stats[key] = (mu, var)
        std = math.sqrt(var + eps)
        dxhat: dict[Index, float] = {}
        for i in entries:
            p = param_of(i)
            xhat = (float(X[i]) - mu) / std
            Y[i] = gamma[p] * xhat + beta[p]
            dgamma[p] += dY[i] * xhat
            dbeta[p] += dY[i]
            dxhat[i] = float(gamma[p] * dY[i])
        # the chain rule in stages: x̂ = (x - μ)(σ² + ε)^(-1/2), σ² = mean((x - μ)²), μ = mean(x)
        dvar = sum(dxhat[i] * (float(X[i]) - mu) for i in entries) * -0.5 * (var + eps) ** -1.5
        dmu = (
            sum(-dxhat[i] / std for i in entries)
            + dvar * sum(-2.0 * (float(X[i]) - mu) for i in entries) / N
        )
        for i in entries:
            dX[i] = dxhat[i] / std + dvar * 2.0 * (float(X[i]) - mu) / N + dmu / N
    return Y, (dX, dgamma, dbeta), stats


def naive_batch_norm(
    X: FloatArray, gamma: FloatArray, beta: FloatArray, dY: FloatArray, eps: float
) -> tuple[FloatArray, Grads, dict[Hashable, tuple[float, float]]]:
    """Training BatchNorm: S(c) = feature c over every axis but the first (BN-FWD)."""
    return naive_norm(X, gamma, beta, dY, lambda i: i[0], lambda i: (i[0], 0), eps)


def naive_layer_norm(
    X: FloatArray, gamma: FloatArray, beta: FloatArray, dY: FloatArray, eps: float
) -> tuple[FloatArray, Grads, dict[Hashable, tuple[float, float]]]:
    """LayerNorm: S(i) = example i over every axis but the last; γ per entry (LN-FWD)."""
    return naive_norm(X, gamma, beta, dY, lambda i: i[-1], lambda i: (*i[:-1], 0), eps)


def naive_group_norm(
    X: FloatArray, gamma: FloatArray, beta: FloatArray, dY: FloatArray, groups: int, eps: float
) -> tuple[FloatArray, Grads, dict[Hashable, tuple[float, float]]]:
    """GroupNorm: S(g, i) = channels gK..(g+1)K - 1 of example i; γ per channel (GN-FWD)."""
    K = X.shape[0] // groups
    return naive_norm(X, gamma, beta, dY, lambda i: (i[0] // K, i[-1]), lambda i: (i[0], 0), eps)


def naive_batch_norm_inference(
    X: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    running_mean: FloatArray,
    running_var: FloatArray,
    dY: FloatArray,
    eps: float,
) -> tuple[FloatArray, Grads]:
    """Inference BatchNorm, entry by entry: Y (BN-INFER) and (dX, dγ, dβ) (BN-INFER-DX)."""
    Y = np.zeros_like(X)
    dX = np.zeros_like(X)
    dgamma = np.zeros_like(gamma)
    dbeta = np.zeros_like(beta)
    for i in np.ndindex(*X.shape):
        c = (i[0], 0)
        std = math.sqrt(float(running_var[c]) + eps)
        xhat = (float(X[i]) - float(running_mean[c])) / std
        Y[i] = gamma[c] * xhat + beta[c]
        dX[i] = gamma[c] / std * dY[i]
        dgamma[c] += dY[i] * xhat
        dbeta[c] += dY[i]
    return Y, (dX, dgamma, dbeta)


def naive_running(
    running_mean: FloatArray, running_var: FloatArray, X: FloatArray, momentum: float
) -> tuple[FloatArray, FloatArray]:
    """The running statistics after one training batch, with the unbiased variance (BN-RUNNING)."""
    new_mean = np.zeros_like(running_mean)
    new_var = np.zeros_like(running_var)
    for c in range(X.shape[0]):
        values = [float(v) for v in X[c].ravel()]
        N = len(values)
        mu = sum(values) / N
        unbiased = sum((v - mu) ** 2 for v in values) / (N - 1)
        new_mean[c, 0] = (1 - momentum) * running_mean[c, 0] + momentum * mu
        new_var[c, 0] = (1 - momentum) * running_var[c, 0] + momentum * unbiased
    return new_mean, new_var
