"""Naive oracles for attention, written straight from specs/attention.md with scalar loops.

Independent of refnn: one example, one query, one key at a time, in the examples-last layout
(Q d x T x m, K d x S x m, V d_v x S x m); the softmax without the max shift (moderate scores
only) and its Jacobian built entry by entry; multi-head attention by slicing rows per head and
projecting column by column; the positional encoding entry by entry with math.sin/math.cos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refnn.types import FloatArray

Bool = np.ndarray


def _allowed(mask: Bool | None, causal: bool, t: int, s: int, k: int) -> bool:
    ok = True
    if mask is not None:
        ok = bool(mask[t, s]) if mask.ndim == 2 else bool(mask[t, s, k])
    return ok and (not causal or s <= t)


def sdpa_loop(
    Q: FloatArray,
    K: FloatArray,
    V: FloatArray,
    *,
    mask: Bool | None = None,
    causal: bool = False,
    scale: float | None = None,
    keep: Bool | None = None,
    p: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """O (d_v x T x m) and the weights P (T x S x m) before dropout, one entry at a time."""
    d, T, m = Q.shape
    S, dv = K.shape[1], V.shape[0]
    alpha = 1.0 / math.sqrt(d) if scale is None else scale
    P = np.zeros((T, S, m))
    out = np.zeros((dv, T, m))
    for k in range(m):
        for t in range(T):
            e = [
                math.exp(alpha * sum(Q[i, t, k] * K[i, s, k] for i in range(d)))
                if _allowed(mask, causal, t, s, k)
                else 0.0
                for s in range(S)
            ]
            total = sum(e)
            for s in range(S):
                P[t, s, k] = e[s] / total if total > 0 else 0.0
            for j in range(dv):
                acc = 0.0
                for s in range(S):
                    w = P[t, s, k]
                    if keep is not None:
                        w = w * (1.0 / (1.0 - p)) if keep[t, s, k] else 0.0
                    acc += w * V[j, s, k]
                out[j, t, k] = acc
    return out, P


def sdpa_backward_loop(
    dO: FloatArray,
    Q: FloatArray,
    K: FloatArray,
    V: FloatArray,
    P: FloatArray,
    *,
    scale: float | None = None,
    keep: Bool | None = None,
    p: float = 0.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """dQ, dK, dV from dO, with the softmax Jacobian P_s (δ_ss' - P_s') built entry by entry."""
    d, T, m = Q.shape
    S, dv = K.shape[1], V.shape[0]
    alpha = 1.0 / math.sqrt(d) if scale is None else scale
    dQ, dK, dV = np.zeros(Q.shape), np.zeros(K.shape), np.zeros(V.shape)
    for k in range(m):
        for t in range(T):
            D = [
                (1.0 / (1.0 - p) if keep[t, s, k] else 0.0) if keep is not None else 1.0
                for s in range(S)
            ]
            for s in range(S):
                for j in range(dv):
                    dV[j, s, k] += P[t, s, k] * D[s] * dO[j, t, k]
            dP = [D[s] * sum(dO[j, t, k] * V[j, s, k] for j in range(dv)) for s in range(S)]
            dE = [
                sum(
                    dP[s2] * P[t, s2, k] * ((1.0 if s2 == s else 0.0) - P[t, s, k])
                    for s2 in range(S)
                )
                for s in range(S)
            ]
            for s in range(S):
                for i in range(d):
                    dQ[i, t, k] += alpha * dE[s] * K[i, s, k]
                    dK[i, s, k] += alpha * dE[s] * Q[i, t, k]
    return dQ, dK, dV


@dataclass(frozen=True)
class MHAPoint:
    """Multi-head attention parameters (refnn's layout, MHA-TORCH) and inputs."""

    W_in: FloatArray
    b_in: FloatArray
    W_out: FloatArray
    b_out: FloatArray
    X: FloatArray
    K: FloatArray
    V: FloatArray
    heads: int


def _affine(W: FloatArray, b: FloatArray, X: FloatArray) -> FloatArray:
    """W x + b for every column (t, k) of X, one column at a time."""
    out = np.zeros((W.shape[0], X.shape[1], X.shape[2]))
    for t in range(X.shape[1]):
        for k in range(X.shape[2]):
            out[:, t, k] = W @ X[:, t, k] + b[:, 0]
    return out


def mha_loop(
    pt: MHAPoint,
    *,
    mask: Bool | None = None,
    causal: bool = False,
    keep: Bool | None = None,
    p: float = 0.0,
) -> FloatArray:
    """Y (E x T x m): project, attend per head (rows j d_h .. (j+1) d_h), stack, project."""
    E = pt.X.shape[0]
    dh = E // pt.heads
    Qp = _affine(pt.W_in[:E], pt.b_in[:E], pt.X)
    Kp = _affine(pt.W_in[E : 2 * E], pt.b_in[E : 2 * E], pt.K)
    Vp = _affine(pt.W_in[2 * E :], pt.b_in[2 * E :], pt.V)
    out = np.zeros(pt.X.shape)
    for j in range(pt.heads):
        rows = slice(j * dh, (j + 1) * dh)
        out[rows], _ = sdpa_loop(
            Qp[rows],
            Kp[rows],
            Vp[rows],
            mask=mask,
            causal=causal,
            keep=None if keep is None else keep[j],
            p=p,
        )
    return _affine(pt.W_out, pt.b_out, out)


def positional_encoding_loop(E: int, T: int) -> FloatArray:
    """PE[2i, t] = sin(t / 10000^(2i/E)), PE[2i+1, t] = cos(t / 10000^(2i/E)), entry by entry."""
    PE = np.zeros((E, T))
    for t in range(T):
        for r in range(E):
            i2 = r - (r % 2)  # 2i for both rows of the pair
            angle = t / 10000.0 ** (i2 / E)
            PE[r, t] = math.sin(angle) if r % 2 == 0 else math.cos(angle)
    return PE
