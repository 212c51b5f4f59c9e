"""Normalisation layers: BatchNorm, LayerNorm, GroupNorm (specs/norm.md: NORM-*, BN-*, LN-*, GN-*).

All three standardise X over a set S of its entries (NORM-STATS), then scale and shift per
feature or channel (NORM-AFFINE); they differ only in S. Each works on reshaped views of the
C-contiguous X (no copy): BatchNorm on (n, N) with S a row; LayerNorm on (D, m) with S a
column; GroupNorm on (groups, K, m) with S the middle axis, and on (C, rest) for γ and β.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from refnn._validate import float_in, positive_int, refuse_nonfinite
from refnn.kitspace import Choice, Ints, LayerSpace, Values
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.types import DTypeLike, FloatArray

# --- the shared math (NORM-*) ------------------------------------------------------------------


def _sum_of_products(a: FloatArray, b: FloatArray, axis: int) -> FloatArray:
    """Σ a ⊙ b over ``axis``, kept as a length-1 axis; no temporary of a's size."""
    letters = "abcdefgh"[: a.ndim]
    out = letters.replace(letters[axis], "")
    total: FloatArray = np.einsum(f"{letters},{letters}->{out}", a, b)
    return np.expand_dims(total, axis)


def standardize(
    X: FloatArray, axis: int, eps: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Standardise X over ``axis``: (x̂, 1/sqrt(σ² + ε), μ, σ²), the statistics keeping the axis.

    Parameters
    ----------
    X : ndarray
        A view of the layer's input in which ``axis`` runs over one set S.
    axis : int
    eps : float
        ε > 0.

    Returns
    -------
    xhat : ndarray, X's shape (a new array)
    inv_std, mean, var : ndarrays, X's shape with ``axis`` of length 1

    Notes
    -----
    Spec: NORM-STATS

    μ = (1/N) Σ_S x,  σ² = (1/N) Σ_S (x - μ)² (biased; two passes, no cancellation),
    x̂ = (x - μ) / sqrt(σ² + ε).
    """
    N = X.shape[axis]
    mean: FloatArray = X.mean(axis=axis, keepdims=True)
    xhat: FloatArray = X - mean
    var = _sum_of_products(xhat, xhat, axis) / N
    inv_std: FloatArray = 1.0 / np.sqrt(var + eps)
    xhat *= inv_std
    return xhat, inv_std, mean, var


def standardize_backward(
    dxhat: FloatArray, xhat: FloatArray, inv_std: FloatArray, axis: int
) -> FloatArray:
    """The full chain rule through x̂ = (x - μ)/sqrt(σ² + ε) over ``axis``: dX from dx̂.

    Parameters
    ----------
    dxhat : ndarray
        ∂J/∂x̂ (γ ⊙ dY), the shape of ``xhat``; not modified.
    xhat, inv_std : ndarrays
        From :func:`standardize` on the same view.
    axis : int

    Returns
    -------
    dX : ndarray, a new array of xhat's shape

    Notes
    -----
    Spec: NORM-DX

    dx = (1/sqrt(σ² + ε)) (dx̂ - mean_S(dx̂) - x̂ mean_S(dx̂ ⊙ x̂)): the direct path, the path
    through μ and the path through σ².
    """
    N = xhat.shape[axis]
    mean_d = dxhat.mean(axis=axis, keepdims=True)
    mean_dx = _sum_of_products(dxhat, xhat, axis) / N
    dX: FloatArray = xhat * mean_dx
    dX += mean_d
    np.subtract(dxhat, dX, out=dX)
    dX *= inv_std
    return dX


def scale_shift(xhat: FloatArray, gamma: FloatArray, beta: FloatArray) -> FloatArray:
    """Y = γ ⊙ x̂ + β on a (P, rest) view, γ and β of shape (P, 1).

    Notes
    -----
    Spec: NORM-AFFINE
    """
    Y: FloatArray = xhat * gamma
    Y += beta
    return Y


def scale_shift_grads(dY: FloatArray, xhat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(dγ, dβ), each (P, 1), from dY and x̂ on a (P, rest) view.

    Notes
    -----
    Spec: NORM-DGAMMA, NORM-DBETA

    dγ_c = Σ_rest dY ⊙ x̂,  dβ_c = Σ_rest dY.
    """
    return _sum_of_products(dY, xhat, 1), dY.sum(axis=1, keepdims=True)


# --- BatchNorm (BN-*) ----------------------------------------------------------------------


#: BatchNorm works through its (n, N) view a block of rows at a time, each block about this many
#: bytes, so that the several passes over a block (statistics, centring, output; or the sums
#: and the four element-wise steps of the backward) read it from the cache, not from memory.
#: Smaller blocks cost numpy calls: on a loaded 2-core EPYC, 128 KiB blocks made 1024 x 512
#: (4 MiB, in L3 anyway) about 1.4x slower than 1 MiB ones; 64 x 32 x 32 x 64 (32 MiB, rows of
#: 512 KiB) did not measurably change.
BLOCK_BYTES = 1 << 20


def row_blocks(n: int, N: int, itemsize: int) -> list[slice]:
    """Consecutive slices of the n rows, each of about ``BLOCK_BYTES`` (at least one row)."""
    rows = max(1, BLOCK_BYTES // max(1, N * itemsize))
    return [slice(i, min(i + rows, n)) for i in range(0, n, rows)]


def row_dots(a: FloatArray, b: FloatArray) -> FloatArray:
    """Σ_j a_ij b_ij for each row i of two (r, N) arrays, as (r, 1).

    One ``einsum`` pass, no temporary. Not BLAS: a dot per row wakes OpenBLAS's worker threads
    between numpy's other passes (measured 11 ms per 65536-element row on a loaded 2-core
    machine), and numpy 2.4's batched ``matmul`` of (r, 1, N) by (r, N, 1) measured 10-1000x
    slower than einsum for some r and N.
    """
    out: FloatArray = np.einsum("ij,ij->i", a, b)[:, None]
    return out


def batch_norm_forward(
    X: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    eps: float,
    xc: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Training forward on the (n, N) view: each row is one feature's set S.

    Parameters
    ----------
    X : ndarray (n, N)
    gamma, beta : ndarrays (n, 1)
    eps : float
    xc : ndarray (n, N), optional
        An array of X's shape and dtype to write X - μ into (a previous forward's, no longer
        needed); a new one otherwise.

    Returns
    -------
    Y : ndarray (n, N)
    xc : ndarray (n, N)
        X - μ (kept for the backward: x̂ = xc / sqrt(σ² + ε)).
    inv_std, mean, var : ndarrays (n, 1)
        1/sqrt(σ² + ε) and the batch statistics (biased σ²).

    Notes
    -----
    Spec: BN-FWD, NORM-STATS, NORM-AFFINE

    Per row: μ = mean(x), xc = x - μ, σ² = xc·xc / N (two passes: no cancellation),
    Y = xc (γ/sqrt(σ² + ε)) + β = γ x̂ + β (one pass fewer than forming x̂). Rows are processed
    in blocks (``row_blocks``); each row's numbers do not depend on the blocking.
    """
    n, N = X.shape
    xc = np.empty_like(X) if xc is None else xc
    Y = np.empty_like(X)
    mean = np.empty((n, 1), dtype=X.dtype)
    var = np.empty_like(mean)
    inv_std = np.empty_like(mean)
    for r in row_blocks(n, N, X.itemsize):
        mean[r] = X[r].mean(axis=1, keepdims=True)
        np.subtract(X[r], mean[r], out=xc[r])
        var[r] = row_dots(xc[r], xc[r]) / N
        inv_std[r] = 1.0 / np.sqrt(var[r] + eps)
        np.multiply(xc[r], gamma[r] * inv_std[r], out=Y[r])
        Y[r] += beta[r]
    return Y, xc, inv_std, mean, var


def batch_norm_backward(
    dY: FloatArray, xc: FloatArray, inv_std: FloatArray, gamma: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Training backward on the (n, N) view, through the batch statistics: (dX, dγ, dβ).

    dY is not modified; dX is a new array.

    Notes
    -----
    Spec: NORM-DX, NORM-DGAMMA, NORM-DBETA

    With γ constant on each row, mean_S(dx̂) = γ dβ/N and mean_S(dx̂ ⊙ x̂) = γ dγ/N, so
    NORM-DX reads dX = γ/sqrt(σ² + ε) (dY - dβ/N - x̂ dγ/N), x̂ = xc/sqrt(σ² + ε);
    dγ = Σ_row dY ⊙ x̂ = (Σ_row dY ⊙ xc)/sqrt(σ² + ε), dβ = Σ_row dY. Rows in blocks, as the
    forward.
    """
    n, N = dY.shape
    dX = np.empty_like(dY)
    dgamma = np.empty((n, 1), dtype=dY.dtype)
    dbeta = np.empty_like(dgamma)
    for r in row_blocks(n, N, dY.itemsize):
        dbeta[r] = dY[r].sum(axis=1, keepdims=True)
        dgamma[r] = row_dots(dY[r], xc[r]) * inv_std[r]
        np.multiply(xc[r], inv_std[r] * dgamma[r] / -N, out=dX[r])  # -x̂ dγ/N
        dX[r] -= dbeta[r] / N
        dX[r] += dY[r]
        dX[r] *= gamma[r] * inv_std[r]
    return dX, dgamma, dbeta


def batch_norm_running(
    running_mean: FloatArray,
    running_var: FloatArray,
    mean: FloatArray,
    var: FloatArray,
    N: int,
    momentum: float,
) -> tuple[FloatArray, FloatArray]:
    """The running statistics after one training batch (new arrays; N > 1 entries per row).

    Notes
    -----
    Spec: BN-RUNNING

    running_mean' = (1 - momentum) running_mean + momentum μ,
    running_var'  = (1 - momentum) running_var + momentum σ² N/(N - 1) (the unbiased estimate).
    """
    keep = 1.0 - momentum
    new_mean: FloatArray = keep * running_mean + momentum * mean
    new_var: FloatArray = keep * running_var + momentum * (var * (N / (N - 1)))
    return new_mean, new_var


def batch_norm_inference(
    X: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    running_mean: FloatArray,
    running_var: FloatArray,
    eps: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Inference forward on the (n, N) view: (Y, xc = X - running_mean, 1/sqrt(running_var + ε)).

    Notes
    -----
    Spec: BN-INFER

    Y = γ (X - running_mean)/sqrt(running_var + ε) + β: an affine map of each row.
    """
    inv_std: FloatArray = 1.0 / np.sqrt(running_var + eps)
    xc: FloatArray = X - running_mean
    Y: FloatArray = xc * (gamma * inv_std)
    Y += beta
    return Y, xc, inv_std


def batch_norm_inference_backward(
    dY: FloatArray, xc: FloatArray, inv_std: FloatArray, gamma: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Inference backward on the (n, N) view: (dX, dγ, dβ), the statistics held constant.

    Notes
    -----
    Spec: BN-INFER-DX, NORM-DGAMMA, NORM-DBETA

    dX = γ/sqrt(running_var + ε) ⊙ dY;  dγ = Σ_row dY ⊙ x̂ with x̂ = xc/sqrt(running_var + ε);
    dβ = Σ_row dY.
    """
    dX: FloatArray = dY * (gamma * inv_std)
    dgamma = row_dots(dY, xc) * inv_std
    return dX, dgamma, dY.sum(axis=1, keepdims=True)


# --- validation helpers -------------------------------------------------------------------


def _eps(eps: object) -> float:
    """ε in (0, 1]."""
    value = float_in(eps, "eps", 0.0, 1.0, closed_high=True)
    if value == 0.0:
        raise ValueError(
            f"eps must be in (0, 1] (> 0: it keeps 1/sqrt(σ² + ε) finite), got {eps!r}"
        )
    return value


def _shape(value: object) -> tuple[int, ...]:
    """LayerNorm's normalized_shape: an int or a non-empty tuple/list of ints >= 1."""
    if isinstance(value, tuple | list):
        if not value:
            raise ValueError("normalized_shape must hold at least one size, got an empty one")
        return tuple(positive_int(v, "normalized_shape") for v in value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"normalized_shape must be an int or a tuple of ints >= 1, got {value!r}")
    return (positive_int(value, "normalized_shape"),)


def _bounded(gamma: FloatArray, beta: FloatArray, N: int, dtype: np.dtype[Any]) -> bool:
    """Whether |γ| sqrt(N - 1) + |β|, which bounds a training output (NORM-STATS), is
    representable with room to spare: then Y cannot overflow and is not scanned."""
    with np.errstate(over="ignore", invalid="ignore"):
        bound = float(np.max(np.abs(gamma))) * math.sqrt(N) + float(np.max(np.abs(beta)))
    return bound < float(np.finfo(dtype).max) / 4


def _no_empty_axis(X: FloatArray) -> None:
    """Refuse an X with an empty axis between the first and the examples: no set to normalise."""
    if X.size == 0:
        raise ValueError(
            f"X must hold at least one entry per feature and example (no axis of size 0), "
            f"got shape {X.shape}"
        )


def _ones_zeros(shape: tuple[int, ...], dtype: np.dtype[Any]) -> dict[str, FloatArray]:
    return {"gamma": np.ones(shape, dtype=dtype), "beta": np.zeros(shape, dtype=dtype)}


# --- what the kit draws (TEST-SPACE) and its tolerance (TEST-TOL-TERMS) ---------------------

#: The kit draws γ and β in [-PARAM_BOUND, PARAM_BOUND] (LayerSpace.param_bound).
PARAM_BOUND = 2.0


def norm_terms(sets: FloatArray, dY_rows: FloatArray) -> dict[str, Any]:
    """TEST-TOL-TERMS scales of a normalisation: ``sets`` holds X with one set S per row,
    ``dY_rows`` dY with one γ entry per row. κ = 1 + max|x| / sqrt(σ² + ε) bounds |x̂| and
    carries the rounding of μ into x - μ; M_Y = B κ + B, M_dX = B max|dY| κ² / sqrt(σ² + ε),
    M_dγ = κ max_c Σ|dY|, M_dβ = max_c Σ|dY| (B = PARAM_BOUND, 1/sqrt(σ² + ε) its largest)."""
    inv_std = float(np.max(1.0 / np.sqrt(sets.var(axis=1) + 1e-5), initial=0.0))
    kappa = 1.0 + float(np.abs(sets).max(initial=0.0)) * inv_std
    row_sums = float(np.abs(dY_rows).sum(axis=1).max(initial=0.0))
    B = PARAM_BOUND
    dY_max = float(np.abs(dY_rows).max(initial=0.0))
    return {
        "Y": np.asarray(B * kappa + B),
        "dX": np.asarray(B * dY_max * kappa * kappa * inv_std),
        "dgamma": np.asarray(kappa * row_sums),
        "dbeta": np.asarray(row_sums),
    }


def _bn_shape(v: Values) -> tuple[int, ...]:
    return (v["n"], v["H"], v["W"], v["m"]) if v["images"] else (v["n"], v["m"])


def _bn_terms(v: Values, X: FloatArray, dY: FloatArray, ref: Any) -> dict[str, Any]:
    return norm_terms(X.reshape(v["n"], -1), dY.reshape(v["n"], -1))


def _gn_terms(v: Values, X: FloatArray, dY: FloatArray, ref: Any) -> dict[str, Any]:
    G, C, m = v["groups"], v["channels"], X.shape[-1]
    sets = X.reshape(G, -1, m).transpose(0, 2, 1).reshape(G * m, -1)
    return norm_terms(sets, dY.reshape(C, -1))


# --- the layers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchNormCache:
    """What BatchNorm's backward needs: X - μ on the (n, N) view (μ: the batch's in training,
    running_mean at inference), 1/sqrt(σ² + ε) (n, 1), X's shape, and the mode."""

    xc: FloatArray
    inv_std: FloatArray
    shape: tuple[int, ...]
    training: bool


#: Spec IDs of a BatchNorm training case and of an inference case.
BN_TRAINING_IDS = ("BN-FWD", "NORM-STATS", "NORM-AFFINE", "NORM-DX", "NORM-DGAMMA", "NORM-DBETA")
BN_INFERENCE_IDS = ("BN-INFER", "BN-INFER-DX", "NORM-DGAMMA", "NORM-DBETA")


@register
class BatchNorm(Layer[BatchNormCache]):
    """Batch normalisation over every axis but the first: features of a dense n x m batch,
    channels of C x H x W x m images (spatial batch norm is the same layer), any n x ... x m.

    Parameters
    ----------
    n : int
        Features (channels): the size of X's first axis.
    momentum : float in [0, 1]
        Weight of the batch in the running statistics, PyTorch's convention (BN-RUNNING):
        running = (1 - momentum) running + momentum batch. The course's momentum 0.9 (and its
        biased running variance) is refnn's 0.1 (with the unbiased one): see specs/norm.md.
    eps : float in (0, 1]
        ε in 1/sqrt(σ² + ε).
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "gamma" (n, 1), starting at 1, and "beta" (n, 1), starting at 0. L2 decays neither
        (it decays only the keys of ``refnn.regularization.DECAYED_KEYS``, "W").
    buffers : dict
        "running_mean" (n, 1), starting at 0, and "running_var" (n, 1), starting at 1: updated
        in place by each training forward, used at inference; saved and loaded by io; not
        parameters (no gradient, no optimizer, no L2).

    Notes
    -----
    Spec: BN-FWD, BN-RUNNING, BN-INFER

    ``forward(X, training=True)`` normalises with the batch's statistics (BN-FWD), updates the
    running ones (BN-RUNNING) and its backward is the full one through μ and σ² (NORM-DX). It
    needs N > 1 entries per feature (N = m for dense X, m H W for images): with one, it raises
    ValueError, as PyTorch does. ``forward(X, training=False)`` is the affine map of BN-INFER
    with the running statistics (any m, m = 1 included) and its backward BN-INFER-DX.
    """

    takes = Input(min_ndim=2, leading=("n",), layout="n x ... x m")
    specs = {
        "Y": ("BN-FWD", "NORM-STATS", "NORM-AFFINE", "BN-INFER"),
        "dX": ("NORM-DX", "BN-INFER-DX"),
        "dgamma": ("NORM-DGAMMA",),
        "dbeta": ("NORM-DBETA",),
    }
    can_overflow = False  # the layer checks what can overflow itself, before touching buffers
    output_reveals_nonfinite_input = True  # a non-finite X makes σ² (training) or Y non-finite
    grads_reveal_nonfinite_upstream = True  # dβ sums every element of dY (NORM-DBETA)
    kit = LayerSpace(
        draws={
            "n": Ints(1, 3),
            "images": Choice((False, True)),
            "H": Ints(1, 3),
            "W": Ints(1, 3),
            "m": Ints(1, 4),
        },
        input_shape=_bn_shape,
        # N = m (H W) entries per feature: the statistics sum N terms, dγ and dβ too
        sums=lambda v, s: dict.fromkeys(("Y", "dX", "dgamma", "dbeta"), 4 + math.prod(s["X"][1:])),
        scale="terms",
        terms=_bn_terms,
        param_bound=PARAM_BOUND,
        valid=lambda v: math.prod(_bn_shape(v)[1:]) > 1,  # training needs N > 1 (BN-FWD)
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        """Training mode: PyTorch's batch_norm with the batch statistics, examples first."""
        Y = torch.nn.functional.batch_norm(
            X.movedim(-1, 0),
            None,
            None,
            arrays["gamma"][:, 0],
            arrays["beta"][:, 0],
            training=True,
            eps=config["eps"],
        )
        return Y.movedim(0, -1)

    def __init__(
        self,
        n: int,
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.n = positive_int(n, "n")
        self.momentum = float_in(momentum, "momentum", 0.0, 1.0, closed_high=True)
        self.eps = _eps(eps)
        self.params = _ones_zeros((self.n, 1), self.dtype)
        self.buffers = {
            "running_mean": np.zeros((self.n, 1), dtype=self.dtype),
            "running_var": np.ones((self.n, 1), dtype=self.dtype),
        }

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        return {"gamma": (config["n"], 1), "beta": (config["n"], 1)}

    @classmethod
    def buffer_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (config["n"], 1), "running_var": (config["n"], 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Training (the full backward) on dense batches, images (m = 1 too: N = H W > 1) and
        sequences; inference (an affine map of the running statistics, which make check sets
        off their init by a training batch first) on dense batches (m = 1 too) and images;
        one reused across batch sizes; float32 in both modes."""
        train = BN_TRAINING_IDS
        infer = BN_INFERENCE_IDS
        return (
            *(
                Example(f"dense 3x5 training seed={seed}", (3, 5), (3,), seed=seed, specs=train)
                for seed in (0, 1, 2)
            ),
            Example("dense 4x2 training (m=2)", (4, 2), (4,), specs=train),
            Example("images 2x3x3x2 training", (2, 3, 3, 2), (2,), specs=train),
            Example("images 3x2x2x1 training (m=1, N=4)", (3, 2, 2, 1), (3,), seed=1, specs=train),
            Example("sequences 2x4x3 training", (2, 4, 3), (2,), seed=2, specs=train),
            Example(
                "dense 3x4 after a batch of m=5", (3, 4), (3,), after_other_batch=True, specs=train
            ),
            Example("dense 3x5 inference", (3, 5), (3,), training=False, specs=infer),
            Example("dense 3x1 inference (m=1)", (3, 1), (3,), seed=1, training=False, specs=infer),
            Example(
                "images 2x3x3x2 inference", (2, 3, 3, 2), (2,), seed=2, training=False, specs=infer
            ),
            Example("dense 3x5 training", (3, 5), (3,), float32=True, specs=train),
            Example("images 2x3x3x2 training", (2, 3, 3, 2), (2,), float32=True, specs=train),
            Example("dense 3x5 inference", (3, 5), (3,), training=False, float32=True, specs=infer),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, BatchNormCache]:
        _no_empty_axis(X)
        X2 = X.reshape(self.n, -1)  # a view: X is C-contiguous
        N = X2.shape[1]
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            Y, xc, inv_std = batch_norm_inference(X2, gamma, beta, rm, rv, self.eps)
            if not np.isfinite(Y).all():  # a non-finite X, else an overflow
                refuse_nonfinite(X, "X")
                self._overflow("forward", "Y", Y.dtype)
            return Y.reshape(X.shape), BatchNormCache(xc, inv_std, X.shape, False)
        if N == 1:
            raise ValueError(
                "BatchNorm.forward(training=True) needs more than one value per feature to "
                f"normalise over (N = m x the other axes > 1), got X of shape {X.shape} (N = 1); "
                "use training=False (the running statistics) for a single example"
            )
        old = self._reclaim()  # its X - μ array is written over if it fits (NOTE-THREADS)
        fits = old is not None and old.training and old.xc.shape == X2.shape
        reuse = old.xc if old is not None and fits and old.xc.dtype == X2.dtype else None
        Y, xc, inv_std, mean, var = batch_norm_forward(X2, gamma, beta, self.eps, reuse)
        if not np.isfinite(var).all():  # a non-finite entry makes its row's σ² NaN
            refuse_nonfinite(X, "X")
            self._overflow("forward", "Y", Y.dtype)
        if not (_bounded(gamma, beta, N, Y.dtype) or np.isfinite(Y).all()):
            self._overflow("forward", "Y", Y.dtype)
        rm, rv = batch_norm_running(
            self.buffers["running_mean"],
            self.buffers["running_var"],
            mean,
            var,
            N,
            self.momentum,
        )
        if not np.isfinite(rv).all():
            self._overflow("forward", "running_var", rv.dtype)
        self.buffers["running_mean"][...] = rm  # in place: io and the caller hold these arrays
        self.buffers["running_var"][...] = rv
        return Y.reshape(X.shape), BatchNormCache(xc, inv_std, X.shape, True)

    def _backward(
        self, dY: FloatArray, cache: BatchNormCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        dY2 = dY.reshape(self.n, -1)
        backward = batch_norm_backward if cache.training else batch_norm_inference_backward
        dX, dgamma, dbeta = backward(dY2, cache.xc, cache.inv_std, self.params["gamma"])
        return dX.reshape(cache.shape), {"gamma": dgamma, "beta": dbeta}, {}

    def config(self) -> dict[str, Any]:
        return {"n": self.n, "momentum": self.momentum, "eps": self.eps, **super().config()}


@dataclass(frozen=True)
class NormCache:
    """What LayerNorm's and GroupNorm's backward need: x̂ and 1/sqrt(σ² + ε) on the statistics
    view (S along ``axis``), and X's shape."""

    xhat: FloatArray
    inv_std: FloatArray
    shape: tuple[int, ...]


NORM_IDS = ("NORM-STATS", "NORM-AFFINE", "NORM-DX", "NORM-DGAMMA", "NORM-DBETA")


def _norm_forward(
    layer: Layer[NormCache], X: FloatArray, stats_shape: tuple[int, ...], P: int, eps: float
) -> tuple[FloatArray, NormCache]:
    """Standardise X over axis 1 of its ``stats_shape`` view, then scale and shift on its
    (P, rest) view with the layer's γ, β reshaped to (P, 1)."""
    xhat, inv_std, _, var = standardize(X.reshape(stats_shape), 1, eps)
    if not np.isfinite(var).all():
        layer._overflow("forward", "Y", X.dtype)
    gamma = layer.params["gamma"].reshape(P, 1)
    beta = layer.params["beta"].reshape(P, 1)
    Y = scale_shift(xhat.reshape(P, -1), gamma, beta)
    if not (_bounded(gamma, beta, xhat.shape[1], X.dtype) or np.isfinite(Y).all()):
        layer._overflow("forward", "Y", X.dtype)
    return Y.reshape(X.shape), NormCache(xhat, inv_std, X.shape)


def _norm_backward(
    layer: Layer[NormCache], dY: FloatArray, cache: NormCache, P: int
) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
    """(dX, {dγ, dβ}) for :func:`_norm_forward`'s cache."""
    gamma = layer.params["gamma"]
    dY2 = dY.reshape(P, -1)
    dgamma, dbeta = scale_shift_grads(dY2, cache.xhat.reshape(P, -1))
    dxhat = (dY2 * gamma.reshape(P, 1)).reshape(cache.xhat.shape)
    dX = standardize_backward(dxhat, cache.xhat, cache.inv_std, 1)
    grads = {"gamma": dgamma.reshape(gamma.shape), "beta": dbeta.reshape(gamma.shape)}
    return dX.reshape(cache.shape), grads, {}


@register
class LayerNorm(Layer[NormCache]):
    """Layer normalisation: each example standardised over all of its entries (every axis but
    the last), then scaled and shifted entry by entry (LN-FWD).

    Parameters
    ----------
    normalized_shape : int or tuple of ints
        The shape (d_1, ..., d_k) of one example: X is (d_1, ..., d_k, m).
    eps : float in (0, 1]
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "gamma" and "beta", each of shape (d_1, ..., d_k, 1) (the trailing 1 broadcasts over
        the examples), starting at 1 and 0. L2 decays neither.

    Notes
    -----
    Spec: LN-FWD

    The same in training and at inference (no running statistics). PyTorch's
    ``LayerNorm(normalized_shape)`` normalises the trailing axes of a batch-first tensor:
    refnn's X is its ``np.moveaxis(X, -1, 0)``, its weight ``gamma[..., 0]``.
    """

    takes = Input(min_ndim=2, layout="d_1 x ... x d_k x m")
    specs = {
        "Y": ("LN-FWD", "NORM-STATS", "NORM-AFFINE"),
        "dX": ("NORM-DX",),
        "dgamma": ("NORM-DGAMMA",),
        "dbeta": ("NORM-DBETA",),
    }
    can_overflow = False  # checked in _forward (NORM-STATS bounds the output)
    grads_reveal_nonfinite_upstream = True  # dβ sums every element of dY (NORM-DBETA)
    kit = LayerSpace(
        draws={"normalized_shape": Ints(1, 5), "m": Ints(1, 4)},
        input_shape=lambda v: (v["normalized_shape"], v["m"]),
        sums=lambda v, s: {
            "Y": 4 + s["X"][0],
            "dX": 4 + s["X"][0],
            "dgamma": s["X"][-1],
            "dbeta": s["X"][-1],
        },
        scale="terms",
        terms=lambda v, X, dY, ref: norm_terms(X.T, dY),
        param_bound=PARAM_BOUND,
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        """PyTorch's layer_norm over the trailing axes of the examples-first X."""
        shape = tuple(config["normalized_shape"])
        gamma, beta = arrays["gamma"][..., 0], arrays["beta"][..., 0]
        F = torch.nn.functional
        return F.layer_norm(X.movedim(-1, 0), shape, gamma, beta, config["eps"]).movedim(0, -1)

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        *,
        eps: float = 1e-5,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.normalized_shape = _shape(normalized_shape)
        self.eps = _eps(eps)
        self.size = math.prod(self.normalized_shape)
        self.params = _ones_zeros((*self.normalized_shape, 1), self.dtype)

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        shape = (*_shape(config["normalized_shape"]), 1)
        return {"gamma": shape, "beta": shape}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Dense columns, images (normalised over C, H, W), one-entry examples (Y = β, dX = 0),
        m = 1, inference (the same map), one reused across batch sizes, float32."""
        return (
            *(Example(f"dense 4x3 seed={seed}", (4, 3), (4,), seed=seed) for seed in (0, 1, 2)),
            Example("2x3 per example, m=2", (2, 3, 2), ((2, 3),)),
            Example("images 2x3x3x2", (2, 3, 3, 2), ((2, 3, 3),), seed=1),
            Example("dense 5x1 (m=1)", (5, 1), (5,), seed=2),
            Example("dense 1x3 (one entry: Y = beta)", (1, 3), (1,)),
            Example("dense 4x3 inference", (4, 3), (4,), training=False),
            Example("dense 4x3 after a batch of m=4", (4, 3), (4,), after_other_batch=True),
            Example("2x3 per example, m=2", (2, 3, 2), ((2, 3),), float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, NormCache]:
        if X.shape[:-1] != self.normalized_shape:
            sizes = ", ".join(map(str, self.normalized_shape))
            raise ValueError(
                f"X must have shape (*normalized_shape, m) = ({sizes}, m), examples last, "
                f"got {X.shape}"
            )
        return _norm_forward(self, X, (1, self.size, X.shape[-1]), self.size, self.eps)

    def _backward(
        self, dY: FloatArray, cache: NormCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return _norm_backward(self, dY, cache, self.size)

    def config(self) -> dict[str, Any]:
        return {
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            **super().config(),
        }


@register
class GroupNorm(Layer[NormCache]):
    """Group normalisation: each example's channels split into ``groups`` groups of
    K = channels/groups consecutive channels, each group standardised over its channels and
    spatial entries, then scaled and shifted per channel (GN-FWD).

    Parameters
    ----------
    groups : int
        Number of groups; must divide ``channels``.
    channels : int
        C, the size of X's first axis: images C x H x W x m (any C x ... x m works).
    eps : float in (0, 1]
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "gamma" (C, 1), starting at 1, and "beta" (C, 1), starting at 0. L2 decays neither.

    Notes
    -----
    Spec: GN-FWD

    The same in training and at inference. groups = 1 normalises each example over all of its
    entries; groups = C is instance normalisation. PyTorch's ``GroupNorm(groups, C)`` on
    ``np.moveaxis(X, -1, 0)`` groups the same channels.
    """

    takes = Input(min_ndim=2, leading=("channels",), layout="C x ... x m")
    specs = {
        "Y": ("GN-FWD", "NORM-STATS", "NORM-AFFINE"),
        "dX": ("NORM-DX",),
        "dgamma": ("NORM-DGAMMA",),
        "dbeta": ("NORM-DBETA",),
    }
    can_overflow = False  # checked in _forward (NORM-STATS bounds the output)
    grads_reveal_nonfinite_upstream = True  # dβ sums every element of dY (NORM-DBETA)
    kit = LayerSpace(
        draws={
            "groups": Ints(1, 3),
            "per_group": Ints(1, 2),
            "channels": Ints(
                lambda v: v["groups"] * v["per_group"], lambda v: v["groups"] * v["per_group"]
            ),
            "H": Ints(1, 3),
            "W": Ints(1, 3),
            "m": Ints(1, 3),
        },
        input_shape=lambda v: (v["channels"], v["H"], v["W"], v["m"]),
        sums=lambda v, s: {
            "Y": 4 + v["per_group"] * v["H"] * v["W"],
            "dX": 4 + v["per_group"] * v["H"] * v["W"],
            "dgamma": v["H"] * v["W"] * v["m"],
            "dbeta": v["H"] * v["W"] * v["m"],
        },
        scale="terms",
        terms=_gn_terms,
        param_bound=PARAM_BOUND,
        # PyTorch refuses one value per group when m = 1 (refnn gives Y = β there)
        valid=lambda v: v["per_group"] * v["H"] * v["W"] * v["m"] > 1,
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        """PyTorch's group_norm on the examples-first X, γ and β per channel."""
        F = torch.nn.functional
        gamma, beta = arrays["gamma"][:, 0], arrays["beta"][:, 0]
        Y = F.group_norm(X.movedim(-1, 0), config["groups"], gamma, beta, config["eps"])
        return Y.movedim(0, -1)

    def __init__(
        self, groups: int, channels: int, *, eps: float = 1e-5, dtype: DTypeLike = np.float64
    ) -> None:
        super().__init__(dtype=dtype)
        self.groups = positive_int(groups, "groups")
        self.channels = positive_int(channels, "channels")
        if self.channels % self.groups:
            raise ValueError(
                f"channels must be divisible by groups, got channels = {self.channels} and "
                f"groups = {self.groups}"
            )
        self.eps = _eps(eps)
        self.params = _ones_zeros((self.channels, 1), self.dtype)

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        return {"gamma": (config["channels"], 1), "beta": (config["channels"], 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Two groups of two channels; one group (over all of an example); one channel per group
        (instance norm); m = 1; inference; dense C x m; float32."""
        return (
            *(
                Example(f"groups=2 4x2x2x2 seed={seed}", (4, 2, 2, 2), (2, 4), seed=seed)
                for seed in (0, 1, 2)
            ),
            Example("groups=1 3x2x3x2", (3, 2, 3, 2), (1, 3)),
            Example("groups=3 3x2x2x2 (instance norm)", (3, 2, 2, 2), (3, 3), seed=1),
            Example("groups=2 6x2x2x1 (m=1)", (6, 2, 2, 1), (2, 6), seed=2),
            Example("groups=2 4x3 dense", (4, 3), (2, 4)),
            Example("groups=2 4x2x2x2 inference", (4, 2, 2, 2), (2, 4), training=False),
            Example("groups=2 4x2x2x2", (4, 2, 2, 2), (2, 4), float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, NormCache]:
        _no_empty_axis(X)
        K = X.size // (self.groups * X.shape[-1])  # entries of one group of one example
        return _norm_forward(self, X, (self.groups, K, X.shape[-1]), self.channels, self.eps)

    def _backward(
        self, dY: FloatArray, cache: NormCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return _norm_backward(self, dY, cache, self.channels)

    def config(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "channels": self.channels,
            "eps": self.eps,
            **super().config(),
        }
