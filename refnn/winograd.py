"""Winograd convolution F(mo x mo, 3 x 3) (WINO-*): Conv2D's fast path for 3 x 3 kernels, stride 1.

Each mo x mo block ("tile") of the output is computed from the alpha x alpha block of the padded
input that it reads (alpha = mo + 2) with alpha^2 multiplications per channel pair instead of
9 mo^2: F(4x4, 3x3), the default, needs 36 instead of 144 (4x fewer); F(2x2, 3x3) 16 instead of
36. Over all tiles, channels and examples that is alpha^2 independent matrix products, one per
point xi of the transformed tile, between the transformed kernels U_xi (F x C) and the
transformed input tiles V_xi (C x tiles m). The backward is the adjoint of that linear map:
dW from dM_xi V_xi^T, dX from U_xi^T dM_xi scattered back onto the tiles.

Every transform is one matrix product too: the tiles are gathered into an alpha^2 x (C tiles m)
matrix D (one strided copy per position in the tile), and BT d B over every tile at once is
(BT kron BT) D, as AT M A is (AT kron AT) M. The Kronecker matrices are small and dense, so BLAS
does the transforms on all its threads, where elementwise numpy passes would run on one.
No Python loop runs over examples, channels or tiles. The intermediate arrays of a call live in
two scratch buffers per thread that outlive it (``refnn._windows.scratch``, freed by
``release_scratch``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from refnn._validate import IntPair, check_allocatable
from refnn._windows import release_scratch as release_scratch
from refnn._windows import reusable, scratch, valid_span
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

    @property
    def ones(self) -> int:
        """The point xi = (j, j) whose column j of AT is all ones (ValueError if none is):
        AT M A gives every output of a tile 1 x M_xi there, which is where the bias goes."""
        for j in range(self.alpha):
            if all(row[j] == 1 for row in self.AT):
                return j * self.alpha + j
        raise ValueError(f"AT has no column of ones, got AT = {self.AT}")

    def matrices(self, dtype: np.dtype[Any]) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(BT, G, AT) as arrays of ``dtype``, each rational rounded once."""
        BT, G, AT = (
            np.array([[float(v) for v in row] for row in M], dtype=dtype)
            for M in (self.BT, self.G, self.AT)
        )
        return BT, G, AT


#: F(2x2, 3x3): interpolation points 0, 1, -1 and infinity.
F2x2 = WinogradTransform(
    BT=_rational([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
    G=_rational([[1, 0, 0], ["1/2", "1/2", "1/2"], ["1/2", "-1/2", "1/2"], [0, 0, 1]]),
    AT=_rational([[1, 1, 1, 0], [0, 1, -1, -1]]),
)

#: F(4x4, 3x3): points 0, 1, -1, 2, -2 and infinity; Conv2D's transform.
F4x4 = WinogradTransform(
    BT=_rational(
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ]
    ),
    G=_rational(
        [
            ["1/4", 0, 0],
            ["-1/6", "-1/6", "-1/6"],
            ["-1/6", "1/6", "-1/6"],
            ["1/24", "1/12", "1/6"],
            ["1/24", "-1/12", "1/6"],
            [0, 0, 1],
        ]
    ),
    AT=_rational(
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    ),
)


@dataclass(frozen=True)
class WinogradCache:
    """What the Winograd backward needs: the transformed input tiles V (a new array, not a
    reference to the caller's input), alpha^2 x C x (T_h T_w m), the transform and the sizes."""

    V: FloatArray
    transform: WinogradTransform
    shape: tuple[int, int, int, int]
    padding: IntPair

    def output_shape(self, F: int) -> tuple[int, int, int, int]:
        _, H, W, m = self.shape
        return F, H + 2 * self.padding[0] - 2, W + 2 * self.padding[1] - 2, m


def _kron_apply(M: FloatArray, A: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """(M kron M) A.reshape(k^2, -1) for A of leading shape (k, k): one matrix product, into
    the C-contiguous ``out`` (returned in its own shape) if given."""
    K, A2 = np.kron(M, M), A.reshape(M.shape[1] ** 2, -1)
    if out is None:
        return K @ A2
    np.matmul(K, A2, out=out.reshape(K.shape[0], -1))
    return out


def transform_kernel(W: FloatArray, G: FloatArray) -> FloatArray:
    """U_xi[f, c] = (G W[f, c] G^T)[a, b] for xi = (a, b): shape (alpha^2, F, C).

    One matrix product, (G kron G) times the F C kernels as columns of 9.

    Notes
    -----
    Spec: WINO-FWD
    """
    F, C = W.shape[:2]
    return (np.kron(G, G) @ W.reshape(F * C, 9).T).reshape(-1, F, C)


def _tile_points(
    D_shape: tuple[int, ...], X_shape: tuple[int, ...], padding: IntPair, mo: int
) -> Iterator[tuple[int, int, tuple[slice, slice], tuple[slice, slice]]]:
    """(r, s, tiles, source) for each point (r, s) of the alpha x alpha tile: point (r, s) of
    tile (t, u) is X_p[:, mo t + r, mo u + s], X_p being X padded by ``padding``; for the tiles
    where that lies in X, D[r, s][:, *tiles] pairs with X[:, *source] (the rest is padding)."""
    al, _, _, Th, Tw, _ = D_shape
    for r in range(al):
        t0, t1, y = valid_span(r, mo, padding[0], X_shape[1], Th)
        for s in range(al):
            u0, u1, x = valid_span(s, mo, padding[1], X_shape[2], Tw)
            rows, cols = slice(y, y + mo * (t1 - t0), mo), slice(x, x + mo * (u1 - u0), mo)
            yield r, s, (slice(t0, t1), slice(u0, u1)), (rows, cols)


def _gather_tiles(X: FloatArray, D: FloatArray, padding: IntPair, mo: int) -> None:
    """D[r, s, :, t, u, :] = X_p[:, mo t + r, mo u + s, :]: every tile's alpha x alpha block
    of X_p (X zero-padded by ``padding``, and zero beyond)."""
    for r, s, (t, u), (rows, cols) in _tile_points(D.shape, X.shape, padding, mo):
        d = D[r, s]
        d[:, : t.start] = d[:, t.stop :] = d[:, t, : u.start] = d[:, t, u.stop :] = 0
        d[:, t, u] = X[:, rows, cols]


def _scatter_tiles(dD: FloatArray, dX: FloatArray, padding: IntPair, mo: int) -> None:
    """The adjoint of ``_gather_tiles``: add each tile's block dD[:, :, :, t, u, :] back onto
    the positions of X_p it was read from, into dX (padding dropped; dX is overwritten).

    The points r, s < mo of all tiles cover X_p's first mo T_h rows and mo T_w columns once, so
    they are copied (in row-major order, before any point that adds onto them); the rest of dX
    is zeroed first and the other points are added."""
    _, _, _, Th, Tw, _ = dD.shape
    dX[:, mo * Th - padding[0] :] = 0
    dX[:, :, mo * Tw - padding[1] :] = 0
    for r, s, (t, u), (rows, cols) in _tile_points(dD.shape, dX.shape, padding, mo):
        if r < mo and s < mo:
            dX[:, rows, cols] = dD[r, s][:, t, u]
        else:
            dX[:, rows, cols] += dD[r, s][:, t, u]


def winograd_forward(
    X: FloatArray,
    W: FloatArray,
    b: FloatArray,
    *,
    padding: IntPair = (0, 0),
    transform: WinogradTransform = F4x4,
    V: FloatArray | None = None,
) -> tuple[FloatArray, WinogradCache]:
    """3 x 3, stride-1 convolution (CONV-FWD) by Winograd's minimal filtering.

    Parameters
    ----------
    X : ndarray, shape (C, H, W, m)
    W : ndarray, shape (F, C, 3, 3)
    b : ndarray, shape (F, 1)
    padding : (int, int)
    transform : WinogradTransform, default F(4x4, 3x3)
    V : ndarray, optional
        Used to hold the transformed tiles if ``reusable`` for shape (alpha^2, C, T_h T_w m)
        (a writeable C-contiguous array of X's dtype; else a new one): ``Conv2D`` passes its
        previous cache's, which it drops first (it becomes invalid).

    Returns
    -------
    Z : ndarray, shape (F, H + 2 p_h - 2, W + 2 p_w - 2, m), equal to CONV-FWD up to rounding
    cache : WinogradCache

    Notes
    -----
    Spec: WINO-FWD

    With the output cut into mo x mo tiles (the last ones zero-extended) and d the alpha x alpha
    block of X_p read by a tile: V_xi = (BT d B)_xi, U_xi = (G W G^T)_xi, M_xi = U_xi V_xi over
    channels, and the tile is AT M A, plus b (added to M at the point ``transform.ones``).
    """
    t = transform
    C, H, Wd, m = X.shape
    F = W.shape[0]
    ph, pw = padding
    H_out, W_out = H + 2 * ph - 2, Wd + 2 * pw - 2
    mo, al = t.mo, t.alpha
    BT, G, AT = t.matrices(X.dtype)
    Th, Tw = -(-H_out // mo), -(-W_out // mo)
    check_allocatable((al * al, F, Th * Tw * m), X.dtype, "the transformed tiles")
    D_shape, M_shape = (al, al, C, Th, Tw, m), (al * al, F, Th * Tw * m)
    Y_shape = (mo, mo, F, Th, Tw, m)
    D = scratch.take(1, D_shape, X.dtype)
    _gather_tiles(X, D, padding, mo)
    V_shape = (al * al, C, Th * Tw * m)
    if not reusable(V, V_shape, X.dtype):
        V = np.empty(V_shape, dtype=X.dtype)
    _kron_apply(BT, D, out=V)  # the cache
    M = np.matmul(transform_kernel(W, G), V, out=scratch.take(0, M_shape, X.dtype))
    M[t.ones] += b  # every output of a tile is 1 x M at this point, so each gets + b
    Y = _kron_apply(AT, M, out=scratch.take(1, Y_shape, X.dtype))  # D's place
    Zp = np.empty((F, Th * mo, Tw * mo, m), dtype=X.dtype)
    np.copyto(Zp.reshape(F, Th, mo, Tw, mo, m), Y.transpose(2, 3, 0, 4, 1, 5))  # Zp in order
    Z = Zp if (Th * mo, Tw * mo) == (H_out, W_out) else np.ascontiguousarray(Zp[:, :H_out, :W_out])
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
    onto the alpha x alpha block of dX_p it was read from (padding then dropped). db is the
    sum of dM at the point ``transform.ones`` (there dM is the sum of each tile's dY).
    """
    t = cache.transform
    C, H, Wd, m = cache.shape
    F = W.shape[0]
    H_out, W_out = dZ.shape[1:3]
    mo, al = t.mo, t.alpha
    BT, G, AT = t.matrices(dZ.dtype)
    Th, Tw = -(-H_out // mo), -(-W_out // mo)
    dZp = dZ
    if (Th * mo, Tw * mo) != (H_out, W_out):
        dZp = np.zeros((F, Th * mo, Tw * mo, m), dtype=dZ.dtype)
        dZp[:, :H_out, :W_out] = dZ
    dY_shape, dM_shape = (mo, mo, F, Th, Tw, m), (al * al, F, Th * Tw * m)
    dV_shape, dD_shape = (al * al, C, Th * Tw * m), (al, al, C, Th, Tw, m)
    dY = scratch.take(0, dY_shape, dZ.dtype)
    np.copyto(dY, dZp.reshape(F, Th, mo, Tw, mo, m).transpose(2, 4, 0, 1, 3, 5))
    dM = _kron_apply(AT.T, dY, out=scratch.take(1, dM_shape, dZ.dtype))
    db = dM[t.ones].sum(axis=1, keepdims=True)  # the adjoint of adding b at that point
    dU = np.matmul(dM, cache.V.transpose(0, 2, 1))
    UT = transform_kernel(W, G).transpose(0, 2, 1)
    dV = np.matmul(UT, dM, out=scratch.take(0, dV_shape, dZ.dtype))  # dY's place
    dD = _kron_apply(BT.T, dV, out=scratch.take(1, dD_shape, dZ.dtype))  # dM's place
    dX = np.empty((C, H, Wd, m), dtype=dZ.dtype)
    _scatter_tiles(dD, dX, cache.padding, mo)
    dW = (dU.reshape(al * al, F * C).T @ np.kron(G, G)).reshape(F, C, 3, 3)
    return dX, dW, db
