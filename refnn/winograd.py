"""Winograd convolution F(2x2, 3x3) (WINO-*): Conv2D's fast path for 3 x 3 kernels at stride 1.

Each 2 x 2 block ("tile") of the output is computed from the 4 x 4 block of the padded input that
it reads, with 16 multiplications per channel pair instead of 36 (2.25x fewer). Over all tiles,
channels and examples that is 16 independent matrix products, one per point xi of the
transformed tile, between the transformed kernels U_xi (F x C) and the transformed input tiles
V_xi (C x tiles m). The backward is the adjoint of that linear map (the same transforms,
transposed): dW from dM_xi V_xi^T, dX from U_xi^T dM_xi scattered back onto the tiles.

The tiles are processed in blocks of tile rows (about ``CHUNK`` columns each) so that a block's
transformed tiles stay in cache between the transform, the products and the inverse transform;
each transform is a few whole-block numpy passes (the matrices hold only 0, +-1 and +-1/2).
No Python loop runs over examples, channels or single tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from refnn._validate import IntPair, check_allocatable
from refnn.types import FloatArray

Rational = tuple[tuple[Fraction, ...], ...]


def _rational(rows: list[list[int | str]]) -> Rational:
    return tuple(tuple(Fraction(v) for v in row) for row in rows)


@dataclass(frozen=True)
class WinogradTransform:
    """The matrices of F(mo x mo, 3 x 3), as exact rationals (Lavin and Gray, 2016).

    ``BT`` (alpha x alpha) transforms an input tile, ``G`` (alpha x 3) a kernel, ``AT``
    (mo x alpha) maps a transformed tile back to mo x mo outputs; alpha = mo + 2.

    Notes
    -----
    Spec: WINO-1D

    y = AT [(G g) * (BT d)] is the valid correlation y_k = sum_i g_i d_{k+i} (k < mo) of any
    d in R^alpha with any g in R^3.
    """

    BT: Rational
    G: Rational
    AT: Rational

    @property
    def mo(self) -> int:
        return len(self.AT)

    @property
    def alpha(self) -> int:
        return len(self.BT)

    def matrices(self, dtype: np.dtype[Any]) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(BT, G, AT) as arrays of ``dtype``, each rational rounded once."""
        BT, G, AT = (
            np.array([[float(v) for v in row] for row in M], dtype=dtype)
            for M in (self.BT, self.G, self.AT)
        )
        return BT, G, AT


F2x2 = WinogradTransform(
    BT=_rational([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
    G=_rational([[1, 0, 0], ["1/2", "1/2", "1/2"], ["1/2", "-1/2", "1/2"], [0, 0, 1]]),
    AT=_rational([[1, 1, 1, 0], [0, 1, -1, -1]]),
)


@dataclass(frozen=True)
class WinogradCache:
    """What the Winograd backward needs: the transformed input tiles V (a new array, not a
    reference to the caller's input), alpha^2 x C x (T_h T_w m), and the sizes."""

    V: FloatArray
    transform: WinogradTransform
    shape: tuple[int, int, int, int]
    padding: IntPair

    def output_shape(self, F: int) -> tuple[int, int, int, int]:
        _, H, W, m = self.shape
        return F, H + 2 * self.padding[0] - 2, W + 2 * self.padding[1] - 2, m


def _mix(
    M: FloatArray, sources: list[FloatArray], outs: list[FloatArray], *, add: bool = False
) -> None:
    """outs[a] = sum_r M[a, r] sources[r] (``+=`` with ``add``): one numpy pass per nonzero.

    Two leading coefficients of +-1 (all of F(2x2, 3x3)'s rows) take one pass together.
    """
    for a, out in enumerate(outs):
        terms = [(sources[r], c) for r, c in enumerate(M[a]) if c != 0]
        if not add:
            (x, cx), rest = terms[0], terms[1:]
            if rest and abs(cx) == 1 and abs(rest[0][1]) == 1:
                (y, cy), rest = rest[0], rest[1:]
                if cx == cy:
                    np.add(x, y, out=out)
                else:
                    np.subtract(x, y, out=out) if cx == 1 else np.subtract(y, x, out=out)
                if cx == cy == -1:
                    np.negative(out, out=out)
            else:
                np.multiply(x, cx, out=out)
            terms = rest
        for x, c in terms:
            if c == 1:
                np.add(out, x, out=out)
            elif c == -1:
                np.subtract(out, x, out=out)
            else:
                out += c * x


def _rows(A: FloatArray, start: int, step: int, n: int) -> FloatArray:
    return A[:, start : start + step * (n - 1) + 1 : step]


def _cols(A: FloatArray, start: int, step: int, n: int) -> FloatArray:
    return A[:, :, start : start + step * (n - 1) + 1 : step]


CHUNK = 2048  # columns (tiles x examples) per block: keeps the block's tiles in cache


def _blocks(Th: int, Tw: int, m: int) -> list[tuple[int, int]]:
    step = max(1, CHUNK // (Tw * m))
    return [(t0, min(Th, t0 + step)) for t0 in range(0, Th, step)]


def transform_kernel(W: FloatArray, G: FloatArray) -> FloatArray:
    """U_xi[f, c] = (G W[f, c] G^T)[a, b] for xi = (a, b): shape (alpha^2, F, C).

    Notes
    -----
    Spec: WINO-FWD
    """
    F, C = W.shape[:2]
    return np.ascontiguousarray(np.einsum("ai,bj,fcij->abfc", G, G, W).reshape(-1, F, C))


def winograd_forward(
    X: FloatArray,
    W: FloatArray,
    b: FloatArray,
    *,
    padding: IntPair = (0, 0),
    transform: WinogradTransform = F2x2,
) -> tuple[FloatArray, WinogradCache]:
    """3 x 3, stride-1 convolution (CONV-FWD) by Winograd's minimal filtering.

    Parameters
    ----------
    X : ndarray, shape (C, H, W, m)
    W : ndarray, shape (F, C, 3, 3)
    b : ndarray, shape (F, 1)
    padding : (int, int)
    transform : WinogradTransform, default F(2x2, 3x3)

    Returns
    -------
    Z : ndarray, shape (F, H + 2 p_h - 2, W + 2 p_w - 2, m), equal to CONV-FWD up to rounding
    cache : WinogradCache

    Notes
    -----
    Spec: WINO-FWD

    With the output cut into mo x mo tiles (the last ones zero-extended) and d the alpha x alpha
    block of X_p read by a tile: V_xi = (BT d B)_xi, U_xi = (G W G^T)_xi, M_xi = U_xi V_xi over
    channels, and the tile is AT M A, plus b.
    """
    t = transform
    C, H, Wd, m = X.shape
    F = W.shape[0]
    ph, pw = padding
    H_out, W_out = H + 2 * ph - 2, Wd + 2 * pw - 2
    mo, al = t.mo, t.alpha
    BT, G, AT = t.matrices(X.dtype)
    Th, Tw = -(-H_out // mo), -(-W_out // mo)
    check_allocatable((al * al, C, Th * Tw * m), X.dtype, "the transformed tiles V")
    Xp = np.zeros((C, Th * mo + 2, Tw * mo + 2, m), dtype=X.dtype)
    Xp[:, ph : ph + H, pw : pw + Wd] = X
    U = transform_kernel(W, G)
    V = np.empty((al * al, C, Th * Tw * m), dtype=X.dtype)
    Zp = np.empty((F, Th * mo, Tw * mo, m), dtype=X.dtype)
    for t0, t1 in _blocks(Th, Tw, m):
        n = t1 - t0
        R = np.empty((al, C, n, Tw * mo + 2, m), dtype=X.dtype)
        _mix(BT, [_rows(Xp, t0 * mo + r, mo, n) for r in range(al)], list(R))
        Vc = V[:, :, t0 * Tw * m : t1 * Tw * m].reshape(al, al, C, n, Tw, m)
        for a in range(al):
            _mix(BT, [_cols(R[a], s, mo, Tw) for s in range(al)], list(Vc[a]))
        Mc = np.matmul(U, V[:, :, t0 * Tw * m : t1 * Tw * m]).reshape(al, al, F, n, Tw, m)
        S = np.empty((mo, al, F, n, Tw, m), dtype=X.dtype)
        for bb in range(al):
            _mix(AT, list(Mc[:, bb]), list(S[:, bb]))
        Zc = Zp[:, t0 * mo : t1 * mo]
        for a in range(mo):
            _mix(AT, list(S[a]), [_cols(_rows(Zc, a, mo, n), c, mo, Tw) for c in range(mo)])
    Z = Zp if (Th * mo, Tw * mo) == (H_out, W_out) else np.ascontiguousarray(Zp[:, :H_out, :W_out])
    Z += b.reshape(F, 1, 1, 1)
    return Z, WinogradCache(V, t, (C, H, Wd, m), padding)


def winograd_backward(
    dZ: FloatArray, W: FloatArray, cache: WinogradCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The adjoint of :func:`winograd_forward`: (dX, dW, db).

    Notes
    -----
    Spec: WINO-DW, WINO-DX, CONV-DB

    dM_xi = (A dY AT)_xi for each mo x mo tile dY of dZ;  dW[f, c] = G^T (sum over tiles and
    examples of dM_xi V_xi^T) G;  dV_xi = U_xi^T dM_xi, and each tile's B dV BT is added back
    onto the alpha x alpha block of dX_p it was read from (padding then dropped).
    """
    t = cache.transform
    C, H, Wd, m = cache.shape
    F = W.shape[0]
    ph, pw = cache.padding
    H_out, W_out = dZ.shape[1:3]
    mo, al = t.mo, t.alpha
    BT, G, AT = t.matrices(dZ.dtype)
    Th, Tw = -(-H_out // mo), -(-W_out // mo)
    if (Th * mo, Tw * mo) != (H_out, W_out):
        dY = np.zeros((F, Th * mo, Tw * mo, m), dtype=dZ.dtype)
        dY[:, :H_out, :W_out] = dZ
    else:
        dY = dZ
    UT = transform_kernel(W, G).transpose(0, 2, 1)
    dU = np.zeros((al * al, F, C), dtype=dZ.dtype)
    dXp = np.zeros((C, Th * mo + 2, Tw * mo + 2, m), dtype=dZ.dtype)
    for t0, t1 in _blocks(Th, Tw, m):
        n = t1 - t0
        dYc = dY[:, t0 * mo : t1 * mo]
        S = np.empty((mo, al, F, n, Tw, m), dtype=dZ.dtype)
        for a in range(mo):
            _mix(AT.T, [_cols(_rows(dYc, a, mo, n), c, mo, Tw) for c in range(mo)], list(S[a]))
        dM = np.empty((al, al, F, n, Tw, m), dtype=dZ.dtype)
        for bb in range(al):
            _mix(AT.T, list(S[:, bb]), list(dM[:, bb]))
        dMc = dM.reshape(al * al, F, -1)
        Vc = cache.V[:, :, t0 * Tw * m : t1 * Tw * m]
        dU += np.matmul(dMc, Vc.transpose(0, 2, 1))
        dV = np.matmul(UT, dMc).reshape(al, al, C, n, Tw, m)
        R = np.empty((al, al, C, n, Tw, m), dtype=dZ.dtype)
        for a in range(al):
            _mix(BT.T, list(dV[a]), list(R[a]))
        dXc = dXp[:, t0 * mo :]
        for s in range(al):
            _mix(
                BT.T,
                list(R[:, s]),
                [_cols(_rows(dXc, r, mo, n), s, mo, Tw) for r in range(al)],
                add=True,
            )
    dW = np.einsum("ai,bj,abfc->fcij", G, G, dU.reshape(al, al, F, C))
    db = dZ.reshape(F, -1).sum(axis=1, keepdims=True)
    dX = np.ascontiguousarray(dXp[:, ph : ph + H, pw : pw + Wd])
    return dX, dW, db
