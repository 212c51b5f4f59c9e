"""Naive convolution, pooling and flatten oracles: Python loops straight from specs/conv.md.

Independent of refnn: the padding is materialised (np.pad), every output is one explicit window
sum, and dX is computed in the *gather* form of CONV-DX (the full correlation of the dilated dZ
with the flipped kernel), not by scattering patches back as refnn's col2im does. Max pooling
finds its arg-max by scanning the window in row-major order. Slow by design; tests keep the
sizes small.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
import numpy.typing as npt

from refnn.types import FloatArray

Pair = tuple[int, int]


def _pad(X: FloatArray, ph: int, pw: int) -> FloatArray:
    out: FloatArray = np.pad(X, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    return out


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1  # CONV-SIZE


def conv_forward_naive(
    X: FloatArray,
    W: FloatArray,
    b: FloatArray,
    stride: Pair,
    padding: Pair,
) -> FloatArray:
    """Z[f, y, x, n] = b_f + Σ_{c,i,j} W[f, c, i, j] X_p[c, s_h y + i, s_w x + j, n] (CONV-FWD)."""
    C, H, Wd, m = X.shape
    F, _, kh, kw = W.shape
    (sh, sw), (ph, pw) = stride, padding
    Xp = _pad(X, ph, pw)
    Ho, Wo = _out(H, kh, sh, ph), _out(Wd, kw, sw, pw)
    Z = np.zeros((F, Ho, Wo, m), dtype=X.dtype)
    for n, f, y, x in product(range(m), range(F), range(Ho), range(Wo)):
        total = b[f, 0]
        for c, i, j in product(range(C), range(kh), range(kw)):
            total += W[f, c, i, j] * Xp[c, sh * y + i, sw * x + j, n]
        Z[f, y, x, n] = total
    return Z


def conv_backward_naive(
    dZ: FloatArray,
    X: FloatArray,
    W: FloatArray,
    stride: Pair,
    padding: Pair,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(dX, dW, db) from CONV-DX (gather form), CONV-DW and CONV-DB, element by element."""
    C, H, Wd, m = X.shape
    F, _, kh, kw = W.shape
    _, Ho, Wo, _ = dZ.shape
    (sh, sw), (ph, pw) = stride, padding
    Xp = _pad(X, ph, pw)
    dW = np.zeros(W.shape, dtype=X.dtype)
    for f, c, i, j in product(range(F), range(C), range(kh), range(kw)):
        total = 0.0
        for y, x, n in product(range(Ho), range(Wo), range(m)):
            total += dZ[f, y, x, n] * Xp[c, sh * y + i, sw * x + j, n]
        dW[f, c, i, j] = total
    db = np.zeros((F, 1), dtype=X.dtype)
    for f in range(F):
        db[f, 0] = sum(dZ[f, y, x, n] for y in range(Ho) for x in range(Wo) for n in range(m))

    def dilated(f: int, u: int, v: int, n: int) -> float:
        """dZ~[f, u, v, n]: dZ spread out by the stride, zero between and outside."""
        if u % sh or v % sw:
            return 0.0
        y, x = u // sh, v // sw
        if 0 <= y < Ho and 0 <= x < Wo:
            return float(dZ[f, y, x, n])
        return 0.0

    dX = np.zeros(X.shape, dtype=X.dtype)
    for c, h, w, n in product(range(C), range(H), range(Wd), range(m)):
        total = 0.0
        for f, i, j in product(range(F), range(kh), range(kw)):
            total += W[f, c, i, j] * dilated(f, h + ph - i, w + pw - j, n)
        dX[c, h, w, n] = total
    return dX, dW, db


def _windows(
    H: int, Wd: int, kernel: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int, list[tuple[int, int]]]:
    kh, kw = kernel
    Ho, Wo = _out(H, kh, stride[0], 0), _out(Wd, kw, stride[1], 0)
    offsets = [(i, j) for i in range(kh) for j in range(kw)]  # row-major window order
    return Ho, Wo, offsets


def maxpool_forward_naive(
    X: FloatArray, kernel: tuple[int, int], stride: tuple[int, int]
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """MAXPOOL-FWD: A and the input position (h, w) of each window's first maximum."""
    C, H, Wd, m = X.shape
    Ho, Wo, offsets = _windows(H, Wd, kernel, stride)
    sh, sw = stride
    A = np.zeros((C, Ho, Wo, m), dtype=X.dtype)
    arg = np.zeros((C, Ho, Wo, m, 2), dtype=np.int64)
    for c in range(C):
        for y in range(Ho):
            for x in range(Wo):
                for n in range(m):
                    best_value, best = None, (0, 0)
                    for i, j in offsets:
                        v = X[c, sh * y + i, sw * x + j, n]
                        if best_value is None or v > best_value:  # strict: first max wins ties
                            best_value, best = v, (sh * y + i, sw * x + j)
                    A[c, y, x, n] = best_value
                    arg[c, y, x, n] = best
    return A, arg


def maxpool_backward_naive(
    dA: FloatArray, X: FloatArray, kernel: tuple[int, int], stride: tuple[int, int]
) -> FloatArray:
    """MAXPOOL-BWD: each window's dA goes to its (first) arg-max."""
    _, arg = maxpool_forward_naive(X, kernel, stride)
    C, Ho, Wo, m = dA.shape
    dX = np.zeros(X.shape, dtype=X.dtype)
    for c in range(C):
        for y in range(Ho):
            for x in range(Wo):
                for n in range(m):
                    h, w = arg[c, y, x, n]
                    dX[c, h, w, n] += dA[c, y, x, n]
    return dX


def avgpool_forward_naive(
    X: FloatArray, kernel: tuple[int, int], stride: tuple[int, int]
) -> FloatArray:
    """AVGPOOL-FWD: the mean of each window."""
    C, H, Wd, m = X.shape
    Ho, Wo, offsets = _windows(H, Wd, kernel, stride)
    sh, sw = stride
    A = np.zeros((C, Ho, Wo, m), dtype=X.dtype)
    for c in range(C):
        for y in range(Ho):
            for x in range(Wo):
                for n in range(m):
                    total = 0.0
                    for i, j in offsets:
                        total += X[c, sh * y + i, sw * x + j, n]
                    A[c, y, x, n] = total / len(offsets)
    return A


def avgpool_backward_naive(
    dA: FloatArray, X_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int]
) -> FloatArray:
    """AVGPOOL-BWD: each window's dA spread evenly over its kh kw inputs."""
    C, H, Wd, m = X_shape
    Ho, Wo, offsets = _windows(H, Wd, kernel, stride)
    sh, sw = stride
    dX = np.zeros(X_shape, dtype=dA.dtype)
    for c in range(C):
        for y in range(Ho):
            for x in range(Wo):
                for n in range(m):
                    for i, j in offsets:
                        dX[c, sh * y + i, sw * x + j, n] += dA[c, y, x, n] / len(offsets)
    return dX


def flatten_naive(X: FloatArray) -> FloatArray:
    """FLATTEN-FWD element by element: A[c H W + h W + w, n] = X[c, h, w, n]."""
    C, H, Wd, m = X.shape
    A = np.zeros((C * H * Wd, m), dtype=X.dtype)
    for c in range(C):
        for h in range(H):
            for w in range(Wd):
                for n in range(m):
                    A[c * H * Wd + h * Wd + w, n] = X[c, h, w, n]
    return A


# --- comparison helpers ---------------------------------------------------------------------


def rel_diff(actual: FloatArray, expected: FloatArray) -> float:
    """max |actual - expected| / max |expected| (norm-wise; 0 when both are 0)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    gap = float(np.max(np.abs(actual - expected), initial=0.0))
    scale = float(np.max(np.abs(expected), initial=0.0))
    return gap / scale if scale > 0 else gap


@dataclass
class OracleStats:
    """How many hypothesis examples compared refnn with the oracle, and the worst difference."""

    examples: int = 0
    worst: float = 0.0
    worst_at: str = ""

    def record(self, label: str, diffs: dict[str, float]) -> None:
        self.examples += 1
        name, value = max(diffs.items(), key=lambda kv: kv[1])
        if value >= self.worst:
            self.worst, self.worst_at = value, f"{name} at {label}"
