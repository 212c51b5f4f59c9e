"""Naive oracles for dilated, grouped and transposed convolutions: loops straight from
specs/conv.md (CONV-DILATION, CONV-GROUPS, CONVT-*).

Independent of refnn: the padding is materialised, every output of the convolution is one
explicit window sum over the filter's channel group, its dX is the gather form (each input
pixel sums the outputs whose window read it), and the transposed convolution is written as
the scatter of CONVT-FWD (each input pixel stamps its kernel onto the output), with its
gradients taken from the same loops. Slow by design.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from refnn.types import FloatArray

Pair = tuple[int, int]


def _geometry(
    H: int, Wd: int, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair
) -> tuple[int, int]:
    """CONV-SIZE with dilation."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    return (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (Wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def conv_naive(
    X: FloatArray,
    W: FloatArray,
    b: FloatArray,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    dZ: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(Z, dX, dW, db) of the grouped dilated convolution; the gradients for upstream dZ
    (zeros if not given)."""
    C, H, Wd, m = X.shape
    F, Cg, kh, kw = W.shape
    Fg = F // groups
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Ho, Wo = _geometry(H, Wd, (kh, kw), stride, padding, dilation)
    Xp = np.pad(X, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    Z = np.zeros((F, Ho, Wo, m))
    for f, y, x, n in product(range(F), range(Ho), range(Wo), range(m)):
        q = f // Fg
        total = float(b[f, 0])
        for c, i, j in product(range(Cg), range(kh), range(kw)):
            total += W[f, c, i, j] * Xp[q * Cg + c, sh * y + dh * i, sw * x + dw * j, n]
        Z[f, y, x, n] = total
    if dZ is None:
        dZ = np.zeros_like(Z)
    dW = np.zeros(W.shape)
    for f, c, i, j in product(range(F), range(Cg), range(kh), range(kw)):
        q = f // Fg
        dW[f, c, i, j] = sum(
            dZ[f, y, x, n] * Xp[q * Cg + c, sh * y + dh * i, sw * x + dw * j, n]
            for y, x, n in product(range(Ho), range(Wo), range(m))
        )
    db = dZ.sum(axis=(1, 2, 3)).reshape(F, 1)
    dX = np.zeros(X.shape)
    for c, h, w, n in product(range(C), range(H), range(Wd), range(m)):
        q, local = c // Cg, c % Cg
        total = 0.0
        for f, i, j in product(range(q * Fg, (q + 1) * Fg), range(kh), range(kw)):
            u, v = h + ph - dh * i, w + pw - dw * j  # the window position that read (h, w)
            if u % sh or v % sw:
                continue
            y, x = u // sh, v // sw
            if 0 <= y < Ho and 0 <= x < Wo:
                total += W[f, local, i, j] * dZ[f, y, x, n]
        dX[c, h, w, n] = total
    return Z, dX, dW, db


def conv_transpose_naive(
    X: FloatArray,
    W: FloatArray,
    b: FloatArray,
    stride: Pair,
    padding: Pair,
    output_padding: Pair,
    dilation: Pair,
    groups: int,
    dY: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(Y, dX, dW, db) of the transposed convolution, by the stamps of CONVT-FWD."""
    C_in, H, Wd, m = X.shape
    _, Cg_out, kh, kw = W.shape
    C_out = Cg_out * groups
    Cg_in = C_in // groups
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = stride, padding, output_padding, dilation
    Hy = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
    Wy = (Wd - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
    Yp = np.zeros((C_out, Hy + 2 * ph, Wy + 2 * pw, m))
    for f, y, x, n in product(range(C_in), range(H), range(Wd), range(m)):
        q = f // Cg_in
        for c, i, j in product(range(Cg_out), range(kh), range(kw)):
            u, v = sh * y + dh * i, sw * x + dw * j
            if u < Yp.shape[1] and v < Yp.shape[2]:
                Yp[q * Cg_out + c, u, v, n] += W[f, c, i, j] * X[f, y, x, n]
    Y = Yp[:, ph : ph + Hy, pw : pw + Wy, :] + b.reshape(-1, 1, 1, 1)
    if dY is None:
        dY = np.zeros_like(Y)
    dYp = np.zeros(Yp.shape)
    dYp[:, ph : ph + Hy, pw : pw + Wy, :] = dY
    dX = np.zeros(X.shape)
    dW = np.zeros(W.shape)
    for f, y, x, n in product(range(C_in), range(H), range(Wd), range(m)):
        q = f // Cg_in
        for c, i, j in product(range(Cg_out), range(kh), range(kw)):
            u, v = sh * y + dh * i, sw * x + dw * j
            if u < Yp.shape[1] and v < Yp.shape[2]:
                dX[f, y, x, n] += W[f, c, i, j] * dYp[q * Cg_out + c, u, v, n]
                dW[f, c, i, j] += X[f, y, x, n] * dYp[q * Cg_out + c, u, v, n]
    db = dY.sum(axis=(1, 2, 3)).reshape(C_out, 1)
    return Y, dX, dW, db
