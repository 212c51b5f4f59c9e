"""Attention (ATTN-*, MHA-*, POSENC-*): scaled dot-product attention as a function and a layer,
multi-head attention with PyTorch's parameter layout, dropout on the attention weights, and the
sinusoidal positional encoding.

Layout (specs/attention.md, NOTE-AXES): examples last everywhere a user sees an array. One head's
queries are Q (d x T x m), keys K (d x S x m), values V (d_v x S x m), the output O
(d_v x T x m); several heads stack on leading axes (h x d x T x m). The attention weights and a
mask are indexed [t, s] per example: (T, S, m) or, with heads, (h, T, S, m). The kernels
(:func:`attention_forward`, :func:`attention_backward`) run on batched matrices with the
examples and heads first (q: m x h x T x d), where numpy's matmul calls BLAS per matrix; the
public function and the layers transpose to and from them.

Masks are boolean with **True = may attend** (ATTN-MASK), as ``F.scaled_dot_product_attention``;
``nn.MultiheadAttention``'s boolean ``attn_mask`` is the negation. A query that may attend to no
key gets a zero row of weights (ATTN-EMPTY-ROW), never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refnn._validate import check_allocatable, check_rng, float_in, positive_int
from refnn.kitspace import Choice, Ints, LayerSpace, Values
from refnn.layer import Example, Input, Layer
from refnn.registry import register
from refnn.types import DTypeLike, FloatArray

BoolArray = npt.NDArray[np.bool_]


# --- the math ---------------------------------------------------------------------------------


def causal_mask(T: int, S: int) -> BoolArray:
    """The causal mask, aligned top-left: query t may attend to keys s <= t.

    Notes
    -----
    Spec: ATTN-MASK

    M[t, s] = (s <= t), shape (T, S), True = may attend (PyTorch's ``is_causal``).
    """
    out: BoolArray = np.arange(S)[None, :] <= np.arange(T)[:, None]
    return out


def attention_weights(
    q: FloatArray, k: FloatArray, scale: float, mask: BoolArray | None = None
) -> FloatArray:
    """The attention weights P = softmax over the keys of the scaled, masked scores.

    Parameters
    ----------
    q : ndarray, shape (..., T, d)
        Queries, batched matrices (examples and heads first).
    k : ndarray, shape (..., S, d)
        Keys.
    scale : float
        α (1/sqrt(d) by default in the callers).
    mask : bool ndarray broadcastable to (..., T, S), optional
        True = query t may attend to key s. None: every key.

    Returns
    -------
    P : ndarray, shape (..., T, S)
        Each row sums to 1 over its allowed keys; masked keys get exactly 0; a row with no
        allowed key is all 0.

    Notes
    -----
    Spec: ATTN-SCORES, ATTN-SOFTMAX, ATTN-EMPTY-ROW

    E[t, s] = α q_t · k_s;
    P[t, s] = M[t, s] exp(E[t, s] - μ_t) / Σ_s' M[t, s'] exp(E[t, s'] - μ_t),
    μ_t = max over the allowed s of E[t, s]; P[t, :] = 0 where no s is allowed.
    """
    E: FloatArray = q @ np.swapaxes(k, -1, -2)
    E *= q.dtype.type(scale)
    if mask is None:
        E -= E.max(axis=-1, keepdims=True)
        np.exp(E, out=E)
        E /= E.sum(axis=-1, keepdims=True)
        return E
    E = np.where(mask, E, -np.inf).astype(q.dtype, copy=False)
    empty = ~np.any(mask, axis=-1, keepdims=True)  # rows with no allowed key (ATTN-EMPTY-ROW)
    mu = E.max(axis=-1, keepdims=True)
    if empty.any():
        mu = np.where(empty, 0.0, mu).astype(q.dtype, copy=False)
    E -= mu
    np.exp(E, out=E)  # exp(-inf) = 0: masked keys
    total = E.sum(axis=-1, keepdims=True)
    if empty.any():
        total = np.where(empty, 1.0, total).astype(q.dtype, copy=False)
    E /= total
    return E


def attention_forward(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    scale: float,
    mask: BoolArray | None = None,
    D: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Scaled dot-product attention on batched matrices.

    Parameters
    ----------
    q : ndarray, shape (..., T, d)
    k : ndarray, shape (..., S, d)
    v : ndarray, shape (..., S, d_v)
    scale : float
        α.
    mask : bool ndarray broadcastable to (..., T, S), optional
        True = may attend.
    D : ndarray broadcastable to (..., T, S), optional
        The scaled dropout keep-mask keep / (1 - p); None: no dropout.

    Returns
    -------
    o : ndarray, shape (..., T, d_v)
    P : ndarray, shape (..., T, S)
        The weights before dropout (kept for the backward).

    Notes
    -----
    Spec: ATTN-DROPOUT, ATTN-OUT

    P~ = P ⊙ D (P~ = P without dropout);  o_t = Σ_s P~[t, s] v_s.
    """
    P = attention_weights(q, k, scale, mask)
    Pd = P if D is None else P * D
    o: FloatArray = Pd @ v
    return o, P


def attention_backward(
    do: FloatArray,
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    P: FloatArray,
    scale: float,
    D: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Chain rule through :func:`attention_forward`.

    Parameters
    ----------
    do : ndarray, shape (..., T, d_v)
        ∂J/∂o (it carries the 1/m of the cost, NOTE-COST).
    q, k, v, scale, D
        As given to the forward.
    P : ndarray, shape (..., T, S)
        The forward's weights before dropout.

    Returns
    -------
    dq, dk, dv : ndarrays of the shapes of q, k, v

    Notes
    -----
    Spec: ATTN-DV, ATTN-DSCORES, ATTN-DQ, ATTN-DK

    dv = P~^T do;  dP = D ⊙ (do v^T);  dE = P ⊙ (dP - rowsum(P ⊙ dP));
    dq = α dE k;  dk = α dE^T q.
    """
    Pd = P if D is None else P * D
    dv: FloatArray = np.swapaxes(Pd, -1, -2) @ do
    dP: FloatArray = do @ np.swapaxes(v, -1, -2)
    if D is not None:
        dP *= D
    dE = dP
    dE -= np.sum(dP * P, axis=-1, keepdims=True)
    dE *= P
    dE *= P.dtype.type(scale)
    dq: FloatArray = dE @ k
    dk: FloatArray = np.swapaxes(dE, -1, -2) @ q
    return dq, dk, dv


def _to_batch(A: FloatArray) -> FloatArray:
    """(*H, d, T, m) -> (m, *H, T, d), C-contiguous (BLAS-ready matrices)."""
    n = A.ndim
    return np.ascontiguousarray(A.transpose(n - 1, *range(n - 3), n - 2, n - 3))


def _from_batch(a: FloatArray) -> FloatArray:
    """(m, *H, T, d) -> (*H, d, T, m), C-contiguous: the inverse of :func:`_to_batch`."""
    n = a.ndim
    return np.ascontiguousarray(a.transpose(*range(1, n - 2), n - 1, n - 2, 0))


def _mask_to_batch(M: BoolArray | npt.NDArray[Any], heads: int) -> BoolArray:
    """A (T, S) or (T, S, m) mask in the batched layout, broadcastable to (m, *H, T, S)."""
    if M.ndim == 2:
        out: BoolArray = M
        return out
    moved: BoolArray = np.moveaxis(M, -1, 0)
    return moved.reshape(moved.shape[0], *(1,) * heads, *moved.shape[1:])


def _keep_to_batch(keep: BoolArray | npt.NDArray[Any]) -> BoolArray:
    """A keep-mask (*H, T, S, m) in the batched layout (m, *H, T, S) (a view)."""
    out: BoolArray = np.moveaxis(keep, -1, 0)
    return out


def _dropout_scale(keep: BoolArray, p: float, dtype: np.dtype[Any]) -> FloatArray:
    """D = keep / (1 - p) in ``dtype`` (ATTN-DROPOUT)."""
    D: FloatArray = keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))
    return D


def scaled_dot_product_attention(
    Q: FloatArray,
    K: FloatArray,
    V: FloatArray,
    mask: BoolArray | None = None,
    *,
    scale: float | None = None,
    causal: bool = False,
    keep: BoolArray | None = None,
    dropout: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Scaled dot-product attention, examples last (a pure function: no validation).

    Parameters
    ----------
    Q : ndarray, shape (*H, d, T, m)
        Queries: column (t, k) is query t of example k; leading axes (heads) optional.
    K : ndarray, shape (*H, d, S, m)
    V : ndarray, shape (*H, d_v, S, m)
    mask : bool ndarray, shape (T, S) or (T, S, m), optional
        True = query t may attend to key s (ATTN-MASK); shared by the heads.
    scale : float, optional
        α; default 1/sqrt(d).
    causal : bool
        AND the mask with the causal mask (query t sees keys s <= t).
    keep : bool ndarray, shape (*H, T, S, m), optional
        Dropout keep-mask (True = kept); with ``dropout`` = p, P~ = P ⊙ keep / (1 - p).
    dropout : float in [0, 1)
        p, used only with ``keep``.

    Returns
    -------
    O : ndarray, shape (*H, d_v, T, m)
    P : ndarray, shape (*H, T, S, m)
        The attention weights before dropout.

    Notes
    -----
    Spec: ATTN-MASK, ATTN-OUT
    """
    heads = Q.ndim - 3
    d, T, S = Q.shape[-3], Q.shape[-2], K.shape[-2]
    alpha = 1.0 / math.sqrt(d) if scale is None else scale
    M = None if mask is None else _mask_to_batch(mask, heads)
    if causal:
        M = causal_mask(T, S) if M is None else M & causal_mask(T, S)
    D = None if keep is None else _dropout_scale(_keep_to_batch(keep), dropout, Q.dtype)
    o, P = attention_forward(_to_batch(Q), _to_batch(K), _to_batch(V), alpha, M, D)
    return _from_batch(o), np.ascontiguousarray(np.moveaxis(P, 0, -1))


# --- validation shared by the attention layers -----------------------------------------------


def check_mask(mask: object, T: int, S: int, m: int) -> BoolArray:
    """Return ``mask`` if it is a plain bool array of shape (T, S) or (T, S, m), else raise.

    Notes
    -----
    Spec: ATTN-MASK
    """
    expected = f"a numpy bool array of shape (T, S) = {(T, S)} or (T, S, m) = {(T, S, m)}"
    if type(mask) is not np.ndarray:
        raise TypeError(f"mask must be {expected}, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(
            f"mask must be {expected} (True = may attend), got dtype {mask.dtype}; "
            "an additive float mask is not accepted"
        )
    if mask.shape not in ((T, S), (T, S, m)):
        raise ValueError(f"mask must be {expected}, got shape {mask.shape}")
    out: BoolArray = mask
    return out


def check_keep(keep: object, shape: tuple[int, ...], layout: str) -> BoolArray:
    """Return a copy of ``keep`` if it is a bool array of ``shape``, else raise."""
    if type(keep) is not np.ndarray or keep.dtype != np.bool_:
        got = type(keep).__name__ + (
            f" of dtype {keep.dtype}" if isinstance(keep, np.ndarray) else ""
        )
        raise TypeError(f"keep must be a numpy bool array ({layout}), got {got}")
    if keep.shape != shape:
        raise ValueError(f"keep must have shape ({layout}) = {shape}, got {keep.shape}")
    out: BoolArray = keep.copy()
    return out


@dataclass(frozen=True)
class AttentionCache:
    """What the backward needs: the batched q, k, v, the weights P, the dropout scale D and
    whether it was self-attention (K = V = X)."""

    q: FloatArray
    k: FloatArray
    v: FloatArray
    P: FloatArray
    D: FloatArray | None
    self_attention: bool


class _AttentionLayer(Layer[Any]):
    """What both attention layers share: a mask keyword, K and V as extra inputs of their own
    length S, a causal flag, and dropout on the weights with a frozen or drawn keep-mask."""

    #: The leading axes of a keep-mask before (T, S, m): () for one head, (h,) for MHA.
    heads_shape: tuple[int, ...] = ()

    def _init_attention(
        self, causal: bool, dropout: float, rng: np.random.Generator | None
    ) -> None:
        if not isinstance(causal, bool | np.bool_):
            raise TypeError(f"causal must be True or False, got {causal!r}")
        self.causal = bool(causal)
        self.dropout = float_in(dropout, "dropout", 0.0, 1.0, closed_high=False)
        if rng is None and self.dropout > 0.0:
            raise ValueError(
                f"dropout = {self.dropout} > 0 draws its keep-masks from rng: pass "
                "rng=np.random.default_rng(seed)"
            )
        self.rng = None if rng is None else check_rng(rng)
        self._frozen = False
        self._keep: BoolArray | None = None

    # -- the dropout mask ----------------------------------------------------------------

    @property
    def keep_mask(self) -> BoolArray | None:
        """A copy of the last keep-mask used in training ((*H, T, S, m), True = kept), or None."""
        return None if self._keep is None else self._keep.copy()

    def freeze_mask(self, keep: BoolArray | None = None) -> None:
        """Hold the dropout keep-mask fixed for every following training forward.

        Parameters
        ----------
        keep : bool ndarray, shape (*H, T, S, m), optional
            The mask to use (True = weight kept), copied; for ``MultiHeadAttention`` (h, T, S, m),
            PyTorch's drawn (m, h, T, S) mask transposed (MHA-TORCH). Default: the last
            training forward's, or the one the next training forward draws.
        """
        if keep is not None:
            if type(keep) is not np.ndarray or keep.dtype != np.bool_:
                got = type(keep).__name__
                if isinstance(keep, np.ndarray):
                    got += f" of dtype {keep.dtype}"
                raise TypeError(f"keep must be a numpy bool array, got {got}")
            want = len(self.heads_shape) + 3
            if keep.ndim != want or keep.shape[: want - 3] != self.heads_shape:
                layout = " x ".join([*(["h"] if self.heads_shape else []), "T", "S", "m"])
                raise ValueError(
                    f"keep must have shape ({layout}) with leading {self.heads_shape}, "
                    f"got {keep.shape}"
                )
            self._keep = keep.copy()
        self._frozen = True

    def unfreeze_mask(self) -> None:
        """Go back to drawing a fresh keep-mask at every training forward."""
        self._frozen = False

    def _dropout_D(self, training: bool, T: int, S: int, m: int) -> FloatArray | None:
        """The scaled keep-mask for this forward in the batched layout, or None (ATTN-DROPOUT)."""
        if not training or self.dropout == 0.0:
            return None
        shape = (*self.heads_shape, T, S, m)
        if self._frozen and self._keep is not None:
            if self._keep.shape != shape:
                raise ValueError(
                    f"the frozen keep-mask has shape {self._keep.shape}, this forward needs "
                    f"{shape}; call unfreeze_mask() or freeze_mask(keep) with a matching mask"
                )
        else:
            assert self.rng is not None  # dropout > 0 requires rng (constructor)
            self._keep = self.rng.random(shape) >= self.dropout
        return _dropout_scale(_keep_to_batch(self._keep), self.dropout, self.dtype)

    # -- inputs --------------------------------------------------------------------------

    def forward(
        self,
        X: FloatArray,
        *,
        training: bool = True,
        mask: npt.NDArray[Any] | None = None,
        **inputs: FloatArray | None,
    ) -> FloatArray:
        """Attend from the queries X over K, V (default: X itself, self-attention).

        Parameters
        ----------
        X : ndarray
            The queries, of the layout the layer declares (``takes``), examples last.
        training : bool
            Dropout on the weights is active only in training.
        mask : bool ndarray, shape (T, S) or (T, S, m), optional
            True = query t may attend to key s (ATTN-MASK); ANDed with the causal mask when
            the layer is ``causal``. Not differentiated.
        **inputs : ndarray, optional
            ``K`` and ``V``, both or neither.
        """
        given: dict[str, Any] = dict(inputs)
        if mask is not None:
            given["mask"] = mask
        return super().forward(X, training=training, **given)

    def _extra(self, inputs: Mapping[str, object], m: int) -> dict[str, Any]:
        """K and V validated (both or neither, the same S, m as X) and the mask's type and
        shape; the mask is checked against T in ``_forward``."""
        rest = {k: v for k, v in inputs.items() if k != "mask"}
        out: dict[str, Any] = super()._extra({k: None for k in rest}, m)
        given = {k: v for k, v in rest.items() if v is not None}
        if set(given) not in (set(), {"K", "V"}):
            raise ValueError(
                f"give both K and V (attention over another sequence) or neither "
                f"(self-attention), got only {sorted(given)}"
            )
        for key, value in given.items():
            spec = self.extra_inputs[key]
            a = self._validated(value, spec)
            if a.shape[-1] != m or a.shape[1] == 0:
                raise ValueError(
                    f"{key} must have shape ({spec.layout.replace(' x ', ', ')}) with m = {m} "
                    f"as X and S >= 1, got {a.shape}"
                )
            out[key] = a
        if given and out["K"].shape[1] != out["V"].shape[1]:
            raise ValueError(
                f"K and V must hold the same number of keys S (axis 1), got K {out['K'].shape} "
                f"and V {out['V'].shape}"
            )
        if "mask" in inputs and inputs["mask"] is not None:
            out["mask"] = inputs["mask"]
        return out

    def _mask(self, mask: object, T: int, S: int, m: int, heads: int) -> BoolArray | None:
        """The validated mask (ANDed with the causal one) in the batched layout, or None."""
        M = None if mask is None else _mask_to_batch(check_mask(mask, T, S, m), heads)
        if self.causal:
            M = causal_mask(T, S) if M is None else M & causal_mask(T, S)
        return M

    def _attention_config(self) -> dict[str, Any]:
        return {"causal": self.causal, "dropout": self.dropout}


SEQ = {1: "hold at least one position (T >= 1)"}


def _attention_terms(v: Values, X: FloatArray, dY: FloatArray, width: int) -> dict[str, Any]:
    """TEST-TOL-TERMS of self-attention: Y is a weighted mean of values bounded by
    ``width`` max |X| (the projections' rows, drawn in [-1, 1], sum ``width`` terms); a gradient
    by max |dY| T (width (1 + max |X|))^3 (the chain through v, the scores and q or k)."""
    x = 1.0 + float(np.abs(X).max(initial=0.0))
    big = float(np.abs(dY).max(initial=0.0)) * X.shape[1] * (width * x) ** 3
    return {"Y": np.asarray(width * x * width), "dX": np.asarray(big), "grads": big}


def _heads_times_dh(v: Values) -> int:
    """The kit's embed_dim: num_heads d_h, so that every draw is valid."""
    out: int = v["num_heads"] * v["d_h"]
    return out


def _mha_terms(v: Values, X: FloatArray, dY: FloatArray, ref: Any) -> dict[str, Any]:
    terms = _attention_terms(v, X, dY, v["embed_dim"] + 1)
    big = np.asarray(terms.pop("grads") * X.shape[1] * X.shape[2])
    return {**terms, **dict.fromkeys(("dW_in", "db_in", "dW_out", "db_out"), big)}


def _sdpa_terms(v: Values, X: FloatArray, dY: FloatArray, ref: Any) -> dict[str, Any]:
    terms = _attention_terms(v, X, dY, 1)
    terms.pop("grads")
    return terms


@register
class ScaledDotProductAttention(_AttentionLayer):
    """Scaled dot-product attention as a layer (no parameters): queries X, keys K, values V.

    Parameters
    ----------
    d : int
        Query and key size (axis 0 of X and K).
    d_v : int, optional
        Value size (axis 0 of V and of the output); default d.
    scale : float, optional
        α (ATTN-SCORES); default 1/sqrt(d).
    causal : bool
        Query t attends only to keys s <= t (ATTN-MASK).
    dropout : float in [0, 1)
        Probability of dropping an attention weight in training (ATTN-DROPOUT).
    rng : numpy.random.Generator, optional
        The source of the dropout keep-masks (required when dropout > 0, NOTE-RNG).
    dtype : float64 or float32

    Notes
    -----
    ``forward(X)`` is self-attention (Q = K = V = X, d_v = d; ATTN-SELF);
    ``forward(X, K=K, V=V)`` attends over K (d x S x m), V (d_v x S x m) and ``backward`` puts
    dK, dV in ``input_grads``. ``forward(..., mask=M)``: M bool, (T, S) or (T, S, m), True =
    may attend. A fully masked query row gives a zero output row (ATTN-EMPTY-ROW). The keep-mask
    is (T, S, m); :meth:`freeze_mask` holds it fixed (gradient checks, reproducing a run).
    """

    takes = Input(ndim=3, leading=("d",), layout="d x T x m", nonempty=SEQ)
    extra_inputs = {
        "K": Input(ndim=3, leading=("d",), layout="d x S x m", name="K"),
        "V": Input(ndim=3, leading=("d_v",), layout="d_v x S x m", name="V"),
    }
    specs = {
        "Y": ("ATTN-SCORES", "ATTN-MASK", "ATTN-SOFTMAX", "ATTN-DROPOUT", "ATTN-OUT"),
        "dX": ("ATTN-DQ", "ATTN-DSCORES", "ATTN-SELF"),
        "dK": ("ATTN-DK", "ATTN-DSCORES"),
        "dV": ("ATTN-DV",),
    }
    keeps = ("X", "K", "V")
    # the kit checks self-attention (K = V = X: "state" zero gives no K, V) without dropout
    kit = LayerSpace(
        draws={
            "d": Ints(1, 4),
            "T": Ints(1, 5),
            "m": Ints(1, 3),
            "causal": Choice((False, True)),
            "scale": Choice((None, 0.5)),
        },
        input_shape=lambda v: (v["d"], v["T"], v["m"]),
        sums=lambda v, s: dict.fromkeys(("Y", "dX"), 4 * v["T"] * (v["d"] + 2)),
        scale="terms",
        terms=_sdpa_terms,
        bound=2.0,
        conventions={"state": ("zero",)},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        """F.scaled_dot_product_attention over X (d, T, m) as (m, T, d), self-attention."""
        q = X.permute(2, 1, 0)
        Y = torch.nn.functional.scaled_dot_product_attention(
            q, q, q, is_causal=bool(config.get("causal", False)), scale=config.get("scale")
        )
        return Y.permute(2, 1, 0)

    def __init__(
        self,
        d: int,
        d_v: int | None = None,
        *,
        scale: float | None = None,
        causal: bool = False,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.d = positive_int(d, "d")
        self.d_v = self.d if d_v is None else positive_int(d_v, "d_v")
        self.scale = (
            None if scale is None else float_in(scale, "scale", 0.0, 1e300, closed_high=True)
        )
        self._init_attention(causal, dropout, rng)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Self-attention; over K, V of another length (dK, dV checked); causal; a causal mask
        with T > S (empty rows); a given scale; frozen dropout; float32."""
        kv = ("ATTN-DK", "ATTN-DV")
        return (
            Example("self d=3 T=4 m=2", (3, 4, 2), (3,), seed=0),
            Example("self d=2 T=3 m=3 seed=1", (2, 3, 3), (2,), seed=1),
            Example(
                "d=3 d_v=2 T=3 S=5 m=2 over K, V",
                (3, 3, 2),
                (3, 2),
                inputs={"K": (3, 5, 2), "V": (2, 5, 2)},
                specs=(*cls._all(), *kv),
            ),
            Example("causal self d=2 T=5 m=2", (2, 5, 2), (2,), {"causal": True}, seed=2),
            Example(
                "causal T=4 S=2 (empty rows) over K, V",
                (2, 4, 2),
                (2,),
                {"causal": True},
                seed=3,
                inputs={"K": (2, 2, 2), "V": (2, 2, 2)},
                specs=(*cls._all(), *kv, "ATTN-EMPTY-ROW"),
            ),
            Example("scale=0.7 self d=3 T=3 m=2", (3, 3, 2), (3,), {"scale": 0.7}, seed=4),
            Example("dropout=0.3 frozen mask T=4 m=3", (2, 4, 3), (2,), {"dropout": 0.3}, seed=5),
            Example("dropout=0.3 inference", (2, 4, 3), (2,), {"dropout": 0.3}, training=False),
            Example("self d=3 T=4 m=2", (3, 4, 2), (3,), float32=True),
        )

    @classmethod
    def _all(cls) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i for ids in cls.specs.values() for i in ids))

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, AttentionCache]:
        own = "K" not in inputs
        if own and self.d_v != self.d:
            raise ValueError(
                f"self-attention (no K, V given) needs d_v = d, got d = {self.d}, d_v = {self.d_v}"
            )
        T, m = X.shape[1], X.shape[2]
        q = _to_batch(X)
        k = q if own else _to_batch(inputs["K"])
        v = q if own else _to_batch(inputs["V"])
        S = k.shape[-2]
        M = self._mask(inputs.get("mask"), T, S, m, 0)
        D = self._dropout_D(training, T, S, m)
        alpha = 1.0 / math.sqrt(self.d) if self.scale is None else self.scale
        o, P = attention_forward(q, k, v, alpha, M, D)
        return _from_batch(o), AttentionCache(q, k, v, P, D, own)

    def _backward(
        self, dY: FloatArray, cache: AttentionCache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        alpha = 1.0 / math.sqrt(self.d) if self.scale is None else self.scale
        dq, dk, dv = attention_backward(
            _to_batch(dY), cache.q, cache.k, cache.v, cache.P, alpha, cache.D
        )
        if cache.self_attention:  # ATTN-SELF
            dq += dk
            dq += dv
            return _from_batch(dq), {}, {}
        return _from_batch(dq), {}, {"K": _from_batch(dk), "V": _from_batch(dv)}

    def config(self) -> dict[str, Any]:
        return {
            "d": self.d,
            "d_v": self.d_v,
            "scale": self.scale,
            **self._attention_config(),
            **super().config(),
        }


def mha_params_from_torch(
    in_proj_weight: FloatArray,
    in_proj_bias: FloatArray,
    out_proj_weight: FloatArray,
    out_proj_bias: FloatArray,
) -> dict[str, FloatArray]:
    """refnn's MultiHeadAttention parameters from PyTorch's ``nn.MultiheadAttention`` ones
    (numpy arrays, copied).

    Notes
    -----
    Spec: MHA-TORCH

    W_in = in_proj_weight (3E x E, rows q, k, v), b_in = in_proj_bias[:, None],
    W_out = out_proj.weight, b_out = out_proj.bias[:, None].
    """
    return {
        "W_in": np.array(in_proj_weight),
        "b_in": np.array(in_proj_bias).reshape(-1, 1),
        "W_out": np.array(out_proj_weight),
        "b_out": np.array(out_proj_bias).reshape(-1, 1),
    }


def mha_params_to_torch(params: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """PyTorch's ``nn.MultiheadAttention`` state-dict entries from refnn's parameters (copied).

    Notes
    -----
    Spec: MHA-TORCH

    The inverse of :func:`mha_params_from_torch`: keys ``in_proj_weight``, ``in_proj_bias``,
    ``out_proj.weight``, ``out_proj.bias``.
    """
    return {
        "in_proj_weight": np.array(params["W_in"]),
        "in_proj_bias": np.array(params["b_in"]).reshape(-1),
        "out_proj.weight": np.array(params["W_out"]),
        "out_proj.bias": np.array(params["b_out"]).reshape(-1),
    }


def mha_init(
    embed_dim: int, rng: np.random.Generator, dtype: np.dtype[Any]
) -> dict[str, FloatArray]:
    """Initial MultiHeadAttention parameters, as ``nn.MultiheadAttention``'s.

    Notes
    -----
    Spec: MHA-INIT

    W_in ~ U(-a, a), a = sqrt(6 / (E + 3E)) (Xavier-uniform over the 3E x E matrix);
    W_out ~ U(-1/sqrt(E), 1/sqrt(E)); b_in = 0, b_out = 0.
    """
    E = embed_dim
    a = math.sqrt(6.0 / (E + 3 * E))
    W_in = rng.uniform(-a, a, (3 * E, E)).astype(dtype)
    W_out = rng.uniform(-1.0 / math.sqrt(E), 1.0 / math.sqrt(E), (E, E)).astype(dtype)
    return {
        "W_in": W_in,
        "b_in": np.zeros((3 * E, 1), dtype=dtype),
        "W_out": W_out,
        "b_out": np.zeros((E, 1), dtype=dtype),
    }


def _project(W: FloatArray, b: FloatArray, X: FloatArray, heads: int) -> FloatArray:
    """W X + b for X (E, L, m), split into heads, batched: (n, m, h, L, d_h), C-contiguous,
    where W has n E rows (n = 3 projects q, k, v of self-attention in one product).

    Notes
    -----
    Spec: MHA-PROJ, MHA-HEADS

    X'[:, t, k] = W X[:, t, k] + b; head j of block i = rows i E + j d_h .. i E + (j+1) d_h - 1.
    """
    E, L, m = X.shape
    n = W.shape[0] // E
    P: FloatArray = W @ X.reshape(E, L * m)
    P += b
    split = P.reshape(n, heads, E // heads, L, m).transpose(0, 4, 1, 3, 2)
    return np.ascontiguousarray(split)


def _merge(a: FloatArray) -> FloatArray:
    """Heads (m, h, L, d_h) stacked back on the feature axis: (E, L * m), C-contiguous.

    Notes
    -----
    Spec: MHA-HEADS

    O = [O_0; ...; O_{h-1}] (the inverse of the split in :func:`_project`).
    """
    m, h, L, dh = a.shape
    return np.ascontiguousarray(a.transpose(1, 3, 2, 0)).reshape(h * dh, L * m)


def mha_output(W_out: FloatArray, b_out: FloatArray, merged: FloatArray) -> FloatArray:
    """The output projection of the stacked heads.

    Parameters
    ----------
    W_out : ndarray, shape (E, E)
    b_out : ndarray, shape (E, 1)
    merged : ndarray, shape (E, T * m)
        O, the heads stacked on the feature axis (:func:`_merge`).

    Returns
    -------
    Y : ndarray, shape (E, T * m)

    Notes
    -----
    Spec: MHA-OUT

    Y = W_out O + b_out, b_out broadcast over the columns.
    """
    Y: FloatArray = W_out @ merged
    Y += b_out
    return Y


@dataclass(frozen=True)
class MHACache:
    """The inputs (E, L*m views), the merged heads O (``merged``, E x T*m) and the attention
    cache."""

    X: FloatArray
    K: FloatArray
    V: FloatArray
    merged: FloatArray
    att: AttentionCache


@register
class MultiHeadAttention(_AttentionLayer):
    """Multi-head attention with PyTorch's ``nn.MultiheadAttention`` parameter layout.

    Parameters
    ----------
    embed_dim : int
        E: the size of X, K, V on axis 0 and of the output.
    num_heads : int
        h; it must divide E (each head has d_h = E / h features, scale 1/sqrt(d_h)).
    rng : numpy.random.Generator
        The source of the initial parameters (MHA-INIT) and of the dropout keep-masks.
    causal : bool
        Query t attends only to keys s <= t (ATTN-MASK).
    dropout : float in [0, 1)
        Probability of dropping an attention weight in training (PyTorch's ``dropout=``).
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "W_in" (3E, E) = [W_q; W_k; W_v], "b_in" (3E, 1), "W_out" (E, E), "b_out" (E, 1):
        PyTorch's in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias (MHA-TORCH;
        :func:`mha_params_from_torch`). L2 regularization decays keys "W" only, so not these.

    Notes
    -----
    X is (E, T, m), the queries; ``forward(X)`` is self-attention (ATTN-SELF);
    ``forward(X, K=K, V=V)`` attends over K, V (E, S, m) and ``backward`` puts dK, dV in
    ``input_grads``. ``mask=`` as in :class:`ScaledDotProductAttention` (True = may attend;
    PyTorch's ``attn_mask`` is its negation). The keep-mask is (h, T, S, m).
    """

    takes = Input(ndim=3, leading=("embed_dim",), layout="E x T x m", nonempty=SEQ)
    extra_inputs = {
        name: Input(ndim=3, leading=("embed_dim",), layout="E x S x m", name=name)
        for name in ("K", "V")
    }
    specs = {
        "Y": (
            "MHA-PROJ",
            "MHA-HEADS",
            "ATTN-SCORES",
            "ATTN-MASK",
            "ATTN-SOFTMAX",
            "ATTN-DROPOUT",
            "ATTN-OUT",
            "MHA-OUT",
        ),
        "dX": ("MHA-DPROJ", "ATTN-DQ", "ATTN-DK", "ATTN-DV", "ATTN-DSCORES", "ATTN-SELF"),
        "dW_in": ("MHA-DPROJ",),
        "db_in": ("MHA-DPROJ",),
        "dW_out": ("MHA-DOUT",),
        "db_out": ("MHA-DOUT",),
        "dK": ("MHA-DPROJ", "ATTN-DK"),
        "dV": ("MHA-DPROJ", "ATTN-DV"),
    }
    keeps = ("X", "K", "V")
    grads_reveal_nonfinite_upstream = True  # db_out sums every element of dY (MHA-DOUT)
    # the kit checks self-attention ("state" zero: no K, V given) without dropout
    kit = LayerSpace(
        draws={
            "num_heads": Ints(1, 3),
            "d_h": Ints(1, 3),  # a size: embed_dim = num_heads d_h
            "embed_dim": Ints(_heads_times_dh, _heads_times_dh),
            "T": Ints(1, 4),
            "m": Ints(1, 3),
            "causal": Choice((False, True)),
        },
        input_shape=lambda v: (v["embed_dim"], v["T"], v["m"]),
        sums=lambda v, s: dict.fromkeys(
            ("Y", "dX", "dW_in", "db_in", "dW_out", "db_out"),
            8 * v["T"] * v["m"] * (v["embed_dim"] + 2),
        ),
        scale="terms",
        terms=_mha_terms,
        bound=2.0,
        param_bound=1.0,
        conventions={"state": ("zero",)},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        """nn.MultiheadAttention with refnn's parameters (MHA-TORCH), X (E, T, m) as (T, m, E);
        causal as attn_mask True above the diagonal (PyTorch: True = not allowed)."""
        E, T = X.shape[0], X.shape[1]
        module = torch.nn.MultiheadAttention(E, config["num_heads"], dtype=X.dtype)
        weights = {
            "in_proj_weight": arrays["W_in"],
            "in_proj_bias": arrays["b_in"][:, 0],
            "out_proj.weight": arrays["W_out"],
            "out_proj.bias": arrays["b_out"][:, 0],
        }
        mask = None
        if config.get("causal", False):
            mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        x = X.permute(1, 2, 0)
        kwargs = {"need_weights": False, "attn_mask": mask}
        Y = torch.func.functional_call(module, weights, (x, x, x), kwargs)[0]
        return Y.permute(2, 0, 1)

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        rng: np.random.Generator,
        causal: bool = False,
        dropout: float = 0.0,
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        self.embed_dim = positive_int(embed_dim, "embed_dim")
        self.num_heads = positive_int(num_heads, "num_heads")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"num_heads must divide embed_dim (each head gets embed_dim / num_heads "
                f"features), got embed_dim = {self.embed_dim}, num_heads = {self.num_heads}"
            )
        self.heads_shape = (self.num_heads,)
        rng = check_rng(rng)
        self._init_attention(causal, dropout, rng)
        check_allocatable((4 * self.embed_dim, self.embed_dim), self.dtype, "W_in and W_out")
        self.params = mha_init(self.embed_dim, rng, self.dtype)

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        E = config["embed_dim"]
        return {"W_in": (3 * E, E), "b_in": (3 * E, 1), "W_out": (E, E), "b_out": (E, 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """Self-attention with 1 and 2 heads; over K, V of another length; causal; frozen
        dropout; inference; float32."""
        own = tuple(i for i in dict.fromkeys(sum(cls.specs.values(), ())) if i != "ATTN-DROPOUT")
        kv = {"K": (4, 5, 2), "V": (4, 5, 2)}
        return (
            Example("E=4 h=2 self T=3 m=2", (4, 3, 2), (4, 2), seed=0, specs=own),
            Example("E=3 h=1 self T=2 m=3 seed=1", (3, 2, 3), (3, 1), seed=1, specs=own),
            Example(
                "E=4 h=2 T=3 S=5 m=2 over K, V", (4, 3, 2), (4, 2), seed=2, inputs=kv, specs=own
            ),
            Example(
                "E=6 h=3 causal T=4 m=2", (6, 4, 2), (6, 3), {"causal": True}, seed=3, specs=own
            ),
            Example(
                "E=4 h=2 dropout=0.25 frozen mask", (4, 3, 2), (4, 2), {"dropout": 0.25}, seed=4
            ),
            Example(
                "E=4 h=2 dropout inference",
                (4, 3, 2),
                (4, 2),
                {"dropout": 0.25},
                training=False,
                specs=own,
            ),
            Example("E=4 h=2 self T=3 m=2", (4, 3, 2), (4, 2), float32=True, specs=own),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, MHACache]:
        E, T, m = X.shape
        h = self.num_heads
        own = "K" not in inputs
        Kin = X if own else inputs["K"]
        Vin = X if own else inputs["V"]
        S = Kin.shape[1]
        W, b = self.params["W_in"], self.params["b_in"]
        if own:  # one product for q, k and v
            q, k, v = _project(W, b, X, h)
        else:
            q = _project(W[:E], b[:E], X, h)[0]
            k = _project(W[E : 2 * E], b[E : 2 * E], Kin, h)[0]
            v = _project(W[2 * E :], b[2 * E :], Vin, h)[0]
        M = self._mask(inputs.get("mask"), T, S, m, 1)
        D = self._dropout_D(training, T, S, m)
        o, P = attention_forward(q, k, v, 1.0 / math.sqrt(E // h), M, D)
        merged = _merge(o)
        Y = mha_output(self.params["W_out"], self.params["b_out"], merged)
        cache = MHACache(
            X.reshape(E, T * m),
            Kin.reshape(E, S * m),
            Vin.reshape(E, S * m),
            merged,
            AttentionCache(q, k, v, P, D, own),
        )
        return Y.reshape(E, T, m), cache

    def _backward(
        self, dY: FloatArray, cache: MHACache
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return mha_backward(dY, self.params, cache, self.num_heads)

    def config(self) -> dict[str, Any]:
        return {
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            **self._attention_config(),
            **super().config(),
        }


def mha_backward(
    dY: FloatArray, params: Mapping[str, FloatArray], cache: MHACache, heads: int
) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
    """Chain rule through multi-head attention.

    Returns
    -------
    dX : ndarray, shape (E, T, m)
    grads : dict
        "W_in", "b_in", "W_out", "b_out".
    input_grads : dict
        "K", "V" (each (E, S, m)) when they were given; empty for self-attention.

    Notes
    -----
    Spec: MHA-DOUT, MHA-DPROJ, ATTN-SELF

    dW_out = dY O^T, db_out = Σ dY, dO = W_out^T dY; per head dq, dk, dv by ATTN-DQ/DK/DV;
    dW_in = [dQ' X^T; dK' K^T; dV' V^T], db_in = [Σ dQ'; Σ dK'; Σ dV'];
    dX = W_q^T dQ' (+ W_k^T dK' + W_v^T dV' for self-attention).
    """
    E, T, m = dY.shape
    S = cache.K.shape[1] // m
    dY2 = dY.reshape(E, T * m)
    W_in, W_out = params["W_in"], params["W_out"]
    dW_out = dY2 @ cache.merged.T
    db_out = dY2.sum(axis=1, keepdims=True)
    dO = W_out.T @ dY2
    do = np.ascontiguousarray(dO.reshape(heads, E // heads, T, m).transpose(3, 0, 2, 1))
    att = cache.att
    dq, dk, dv = attention_backward(
        do, att.q, att.k, att.v, att.P, 1.0 / math.sqrt(E // heads), att.D
    )
    if att.self_attention:  # ATTN-SELF: one product each for dW_in and dX
        dQKV = np.concatenate([_merge(dq), _merge(dk), _merge(dv)])
        dX: FloatArray = W_in.T @ dQKV
        grads = {
            "W_in": dQKV @ cache.X.T,
            "b_in": dQKV.sum(axis=1, keepdims=True),
            "W_out": dW_out,
            "b_out": db_out,
        }
        return dX.reshape(E, T, m), grads, {}
    dQ, dK, dV = _merge(dq), _merge(dk), _merge(dv)
    dW_in = np.vstack([dQ @ cache.X.T, dK @ cache.K.T, dV @ cache.V.T])
    db_in = np.vstack(
        [dQ.sum(1, keepdims=True), dK.sum(1, keepdims=True), dV.sum(1, keepdims=True)]
    )
    dX = W_in[:E].T @ dQ
    grads = {"W_in": dW_in, "b_in": db_in, "W_out": dW_out, "b_out": db_out}
    dKin: FloatArray = W_in[E : 2 * E].T @ dK
    dVin: FloatArray = W_in[2 * E :].T @ dV
    return dX.reshape(E, T, m), grads, {"K": dKin.reshape(E, S, m), "V": dVin.reshape(E, S, m)}


# --- positional encoding ----------------------------------------------------------------------


def positional_encoding(embed_dim: int, T: int, dtype: DTypeLike = np.float64) -> FloatArray:
    """The sinusoidal positional encoding PE (embed_dim x T), sin and cos interleaved.

    Notes
    -----
    Spec: POSENC-FWD

    PE[2i, t] = sin(t / 10000^{2i/E}), PE[2i+1, t] = cos(t / 10000^{2i/E}), t = 0..T-1
    (PyTorch's tutorial ``pe[:, 0::2] = sin``, ``pe[:, 1::2] = cos``); computed in float64,
    then rounded to ``dtype``.
    """
    E = embed_dim
    t = np.arange(T, dtype=np.float64)
    freq = np.exp(np.arange(0, E, 2, dtype=np.float64) * (-math.log(10000.0) / E))
    angle = freq[:, None] * t[None, :]
    PE = np.empty((E, T), dtype=np.float64)
    PE[0::2] = np.sin(angle)
    PE[1::2] = np.cos(angle[: E // 2])
    return PE.astype(dtype)


@register
class PositionalEncoding(Layer[None]):
    """Adds the sinusoidal positional encoding to X (embed_dim x T x m); no parameters.

    Parameters
    ----------
    embed_dim : int
        E, the size of axis 0 of X.
    dtype : float64 or float32

    Notes
    -----
    Spec: POSENC-BWD

    Y[:, t, k] = X[:, t, k] + PE[:, t] (POSENC-FWD, :func:`positional_encoding`); dX = dY.
    """

    takes = Input(ndim=3, leading=("embed_dim",), layout="E x T x m", nonempty=SEQ)
    specs = {"Y": ("POSENC-FWD",), "dX": ("POSENC-BWD",)}
    kit = LayerSpace(
        draws={"embed_dim": Ints(1, 6), "T": Ints(1, 6), "m": Ints(1, 3)},
        input_shape=lambda v: (v["embed_dim"], v["T"], v["m"]),
        sums=lambda v, s: {"Y": 2, "dX": 1},
        scale="terms",
        terms=lambda v, X, dY, ref: {"Y": 1.0 + np.abs(X), "dX": np.abs(dY)},
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        """X + PE, PE built as PyTorch's transformer tutorial builds it (0::2 sin, 1::2 cos)."""
        E, T = X.shape[0], X.shape[1]
        position = torch.arange(T, dtype=X.dtype)[:, None]
        div = torch.exp(torch.arange(0, E, 2, dtype=X.dtype) * (-math.log(10000.0) / E))
        pe = torch.zeros(T, E, dtype=X.dtype)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)[:, : E // 2]
        return X + pe.T[:, :, None]

    def __init__(self, embed_dim: int, *, dtype: DTypeLike = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.embed_dim = positive_int(embed_dim, "embed_dim")
        self._table: FloatArray = positional_encoding(self.embed_dim, 0, self.dtype)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example("E=4 T=5 m=2", (4, 5, 2), (4,)),
            Example("E=5 (odd) T=3 m=2 seed=1", (5, 3, 2), (5,), seed=1),
            Example("E=4 T=5 m=2", (4, 5, 2), (4,), float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, None]:
        T = X.shape[1]
        table = self._table
        if table.shape[1] < T:  # grown once per longer sequence, then sliced
            table = self._table = positional_encoding(self.embed_dim, T, self.dtype)
        Y: FloatArray = X + table[:, :T, None]
        return Y, None

    def _backward(
        self, dY: FloatArray, cache: None
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        return dY.copy(), {}, {}

    def config(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim, **super().config()}
