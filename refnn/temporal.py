"""Dense and softmax cross-entropy at every step of a sequence (TAFFINE-*, TSCE-*,
specs/temporal.md): the course's "temporal affine" layer and "temporal softmax loss".

``TemporalDense`` applies one Dense map (W, b) at every time step of X (n_in x T x m): the step
axis folds into the example axis, so the Dense equations apply to the (n_in, T m) matrix of X's
columns. ``TemporalSoftmaxCrossEntropy`` takes logits (k x T x m) and integer class labels
(T x m), counts only the tokens a mask keeps and whose label is not ``ignore_index``, and
divides by the number of sequences (``reduction="per_sequence"``) or of counted tokens
(``"per_token"``, PyTorch's ``CrossEntropyLoss(ignore_index=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from refnn._validate import (
    as_input,
    check_classes,
    refuse_overflow,
)
from refnn.activations import softmax
from refnn.dense import Dense, dense_backward, dense_forward
from refnn.kitspace import Ints, LayerSpace, LossSpace
from refnn.layer import Example, Input, watch
from refnn.losses import Loss, log_softmax
from refnn.registry import register
from refnn.sequence import STEPS
from refnn.types import DTypeLike, FloatArray

Reduction = Literal["per_sequence", "per_token"]
REDUCTIONS: tuple[Reduction, ...] = ("per_sequence", "per_token")


def temporal_affine_forward(X: FloatArray, W: FloatArray, b: FloatArray) -> FloatArray:
    """The Dense map at every step.

    Parameters
    ----------
    X : ndarray, shape (n_in, T, m), C-contiguous
    W : ndarray, shape (n_out, n_in)
    b : ndarray, shape (n_out, 1)

    Returns
    -------
    Z : ndarray, shape (n_out, T, m)

    Notes
    -----
    Spec: TAFFINE-FWD, DENSE-FWD

    Z_t = W x_t + b: DENSE-FWD on X read as the (n_in, T m) matrix of its columns.
    """
    n_in, T, m = X.shape
    return dense_forward(X.reshape(n_in, T * m), W, b).reshape(W.shape[0], T, m)


def temporal_affine_backward(
    dZ: FloatArray, W: FloatArray, X: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(dX, dW, db) through Z_t = W x_t + b, for dZ (n_out, T, m) carrying the 1/m.

    Notes
    -----
    Spec: TAFFINE-DW, TAFFINE-DB, TAFFINE-DX, DENSE-DW, DENSE-DB, DENSE-DX

    dW = Σ_t dZ_t x_t^T, db = Σ_t dZ_t 1_m, dx_t = W^T dZ_t: the Dense backward on the
    (·, T m) matrices.
    """
    n_in, T, m = X.shape
    dX, dW, db = dense_backward(
        np.ascontiguousarray(dZ).reshape(W.shape[0], T * m), W, X.reshape(n_in, T * m)
    )
    return dX.reshape(n_in, T, m), dW, db


@register
class TemporalDense(Dense):
    """One Dense map at every time step: X (n_in, T, m) -> Z (n_out, T, m).

    A :class:`refnn.Dense` (the same constructor, parameters, initialisation and config) whose
    input has a time axis.

    Parameters
    ----------
    n_in, n_out : int
        Input and output sizes per step.
    rng : numpy.random.Generator
        The only source of randomness (NOTE-RNG).
    init : {"he", "xavier"}
        Weight initialisation (INIT-HE default); the bias starts at zero.
    dtype : float64 or float32

    Attributes
    ----------
    params : dict
        "W" (n_out, n_in) and "b" (n_out, 1), shared by every step (a Dense layer's; PyTorch's
        ``torch.nn.Linear`` applied to (m, T, n_in) input has weight = W, bias = b[:, 0]).

    Notes
    -----
    Implements TAFFINE-FWD, TAFFINE-DW, TAFFINE-DB and TAFFINE-DX; the cache is X, by
    reference. After an RNN, GRU or LSTM it gives each step's scores (many-to-many), for
    :class:`TemporalSoftmaxCrossEntropy`.
    """

    takes = Input(ndim=3, leading=("n_in",), layout="n_in x T x m", nonempty={1: STEPS})
    specs = {
        "Y": ("TAFFINE-FWD",),
        "dX": ("TAFFINE-DX",),
        "dW": ("TAFFINE-DW",),
        "db": ("TAFFINE-DB",),
    }
    kit = LayerSpace(
        draws={"n_in": Ints(1, 5), "n_out": Ints(1, 5), "T": Ints(1, 4), "m": Ints(1, 4)},
        input_shape=lambda v: (v["n_in"], v["T"], v["m"]),
        sums=lambda v, s: {
            "Y": v["n_in"] + 1,
            "dX": v["n_out"],
            "dW": v["T"] * v["m"],
            "db": v["T"] * v["m"],
        },
    )

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        Y = torch.nn.functional.linear(X.permute(2, 1, 0), arrays["W"], arrays["b"][:, 0])
        return Y.permute(2, 1, 0)  # (m, T, n_out) -> (n_out, T, m)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        sizes = ((3, 4, 1, 2, 0), (2, 3, 5, 3, 1), (1, 1, 1, 1, 2), (4, 2, 3, 1, 0))
        return (
            *(
                Example(
                    f"{n_in}->{n_out} T={T} m={m} seed={s}", (n_in, T, m), (n_in, n_out), seed=s
                )
                for n_in, n_out, T, m, s in sizes
            ),
            Example("3->2 T=4 m=2 after a batch of m=3", (3, 4, 2), (3, 2), after_other_batch=True),
            Example("3->4 T=3 m=2", (3, 3, 2), (3, 4), float32=True),
        )

    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        return temporal_affine_forward(X, self.params["W"], self.params["b"]), X

    def _backward(
        self, dY: FloatArray, cache: FloatArray
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        dX, dW, db = temporal_affine_backward(dY, self.params["W"], cache)
        return dX, {"W": dW, "b": db}, {}


# --- the loss -------------------------------------------------------------------------------


def _token_terms(A: FloatArray, Y: npt.NDArray[Any]) -> tuple[float, FloatArray]:
    """TEST-TOL-TERMS of the sequence loss: each token's log-sum-exp terms grow with its
    max |A|, as the softmax cross-entropy's (the kit counts every token, divides by m)."""
    m = A.shape[-1]
    big = np.abs(A).max(axis=0, keepdims=True)
    terms = np.abs(A) + big + np.log(A.shape[0]) + 1
    return float(terms.sum()) / m, np.broadcast_to((2 + big) / m, A.shape)


def token_targets(
    labels: npt.NDArray[np.integer[Any]],
    counted: npt.NDArray[np.bool_],
    k: int,
    reduction: Reduction,
    dtype: np.dtype[Any],
) -> FloatArray:
    """The weighted one-hot targets Y~ (k, T, m): column (t, i) is (μ_{t,i} / N) e_{y_{t,i}}.

    ``labels`` (T, m) are read only where ``counted`` (μ) holds; N = m (per_sequence) or
    Σ μ (per_token; 0 counted tokens give all-zero targets, hence J = 0 and dZ = 0).

    Notes
    -----
    Spec: TSCE-COST, TSCE-GRAD
    """
    T, m = labels.shape
    n = m if reduction == "per_sequence" else int(np.count_nonzero(counted))
    target = np.zeros((k, T, m), dtype=dtype)
    if n == 0:
        return target
    t_idx, i_idx = np.nonzero(counted)
    target[labels[t_idx, i_idx], t_idx, i_idx] = 1.0 / n
    return target


def temporal_softmax_ce_cost(Z: FloatArray, target: FloatArray) -> float:
    """J = -Σ Y~ ⊙ log softmax(Z) over classes, steps and examples (Y~ from token_targets).

    Notes
    -----
    Spec: TSCE-COST

    J = -(1/N) Σ_{t,i} μ_{t,i} log softmax(z_{t,i})_{y_{t,i}}, through log_softmax (exact for
    any finite logit); entries with Y~ = 0 add nothing. A cost beyond the dtype's range raises.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        J = np.sum(-target * log_softmax(Z), where=target != 0)  # +0.0 when nothing counts
    return float(refuse_overflow(np.asarray(J), "the temporal cross-entropy J"))


def temporal_softmax_ce_backward(Z: FloatArray, target: FloatArray) -> FloatArray:
    """dZ = softmax(Z) ⊙ w - Y~, with w = Σ_j Y~_j = μ / N per token.

    Notes
    -----
    Spec: TSCE-GRAD

    dZ_{:,t,i} = (μ_{t,i} / N) (softmax(z_{t,i}) - e_{y_{t,i}}): zero on uncounted tokens.
    """
    dZ = softmax(Z)
    dZ *= target.sum(axis=0, keepdims=True)
    dZ -= target
    return dZ


@register
class TemporalSoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy at every step, on logits Z (k x T x m) and integer labels (T x m).

    Parameters
    ----------
    ignore_index : int or None
        A label value marking tokens that do not count (padding), as PyTorch's; None (default):
        every label must be a class in 0..k-1.
    reduction : {"per_sequence", "per_token"}
        Divide the summed cost by m, the number of sequences (default: the course's temporal
        softmax loss, summed over time and averaged over the minibatch), or by the number of
        counted tokens (PyTorch's ``CrossEntropyLoss(reduction="mean")``).
    dtype : float64 or float32

    Notes
    -----
    ``forward(Z, Y, mask=None)``: Y (T, m) an integer array of class indices; ``mask`` (T, m)
    a bool array, True where the token counts (all by default). A token counts when the mask
    keeps it and its label is not ``ignore_index`` (TSCE-COST); ``backward()`` returns dZ,
    zero on the others (TSCE-GRAD). Labels of uncounted tokens are not read.
    """

    specs = {"J": ("TSCE-COST",), "dA": ("TSCE-GRAD",)}
    categorical = True
    kit = LossSpace("logits", classes=True, terms=lambda A, Y: _token_terms(A, Y), targets="tokens")

    @classmethod
    def torch_cost(cls, torch: Any, config: Mapping[str, Any], A: Any, Y: Any) -> Any:
        """PyTorch's cross_entropy on (m, k, T) logits and (m, T) labels, summed, then divided
        as the reduction says (per_token: by the counted tokens, as its "mean")."""
        F, ignore = torch.nn.functional, config.get("ignore_index")
        Z, labels = A.permute(2, 0, 1), Y.T.long()
        options = {} if ignore is None else {"ignore_index": ignore}
        if config.get("reduction", "per_sequence") == "per_token":
            return F.cross_entropy(Z, labels, reduction="mean", **options)
        return F.cross_entropy(Z, labels, reduction="sum", **options) / A.shape[-1]

    def __init__(
        self,
        *,
        ignore_index: int | None = None,
        reduction: Reduction = "per_sequence",
        dtype: DTypeLike = np.float64,
    ) -> None:
        super().__init__(dtype=dtype)
        if ignore_index is not None and (
            isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer)
        ):
            raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        if not isinstance(reduction, str) or reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be 'per_sequence' or 'per_token', got {reduction!r}")
        self.reduction: Reduction = reduction

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """make check's cases: logits k x T x m against labels with a mask (a quarter of the
        tokens masked), or with ignore_index, in both reductions; and float32."""
        return tuple(
            Example(
                f"{k}x{T}x{m} {reduction}{' ignore_index=-100' if ignore else ' mask'} seed={s}",
                (k, T, m),
                (),
                {"reduction": reduction, **({"ignore_index": -100} if ignore else {})},
                seed=s,
                float32=f32,
            )
            for k, T, m, s, f32 in ((4, 3, 2, 0, False), (3, 5, 3, 1, False), (4, 2, 2, 2, True))
            for reduction in REDUCTIONS
            for ignore in (False, True)
        )

    def forward(
        self,
        A: FloatArray,
        Y: npt.NDArray[Any],
        *,
        mask: npt.NDArray[np.bool_] | None = None,
        weights: FloatArray | None = None,
    ) -> float:
        """Return J of logits A (k, T, m) against integer labels Y (T, m), counting the tokens
        ``mask`` (T, m, bool) keeps whose label is not ``ignore_index`` (TSCE-COST)."""
        if weights is not None:
            raise TypeError(
                "TemporalSoftmaxCrossEntropy takes no per-example weights; "
                "pass mask= (T x m, bool) to choose the tokens that count"
            )
        Z = as_input(A, "Z", dtype=self.dtype, ndim=3, layout="k x T x m")
        check_classes(Z, "Z")
        k, T, m = Z.shape
        if not isinstance(Y, np.ndarray) or Y.dtype.kind not in "iu":
            got = Y.dtype if isinstance(Y, np.ndarray) else type(Y).__name__
            raise TypeError(
                f"Y must be an integer array of class indices (T x m), got {got}; "
                "one-hot labels: pass Y.argmax(axis=0)"
            )
        if Y.shape != (T, m):
            raise ValueError(f"Y must have shape (T, m) = {(T, m)} as Z's last axes, got {Y.shape}")
        counted = np.ones((T, m), dtype=bool)
        if mask is not None:
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
                got = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
                raise TypeError(f"mask must be a bool array (T x m), got {got}")
            if mask.shape != (T, m):
                raise ValueError(f"mask must have shape (T, m) = {(T, m)}, got {mask.shape}")
            counted &= mask
        if self.ignore_index is not None:
            counted &= Y != self.ignore_index
        bad = counted & ((Y < 0) | (Y >= k))
        if bad.any():
            t, i = (int(v[0]) for v in np.nonzero(bad))
            also = (
                f" and not {self.ignore_index} (ignore_index)"
                if self.ignore_index is not None
                else ""
            )
            raise ValueError(
                f"Y must hold class indices in 0..{k - 1}{also}, got {Y[t, i]} at (t, i) = "
                f"({t}, {i})"
            )
        target = token_targets(Y, counted, k, self.reduction, self.dtype)
        watched = watch(Z=Z, Y=Y, **({} if mask is None else {"mask": mask}))
        self._hold((Z, target), watched, Z.shape)
        return self._cost(Z, target)

    def backward(self) -> FloatArray:
        """Return dZ = ∂J/∂Z for the last forward (TSCE-GRAD; the 1/N is included here)."""
        Z, target = self._take().cache
        return temporal_softmax_ce_backward(Z, target)

    def config(self) -> dict[str, Any]:
        return {
            "ignore_index": self.ignore_index,
            "reduction": self.reduction,
            "dtype": self.dtype.name,
        }

    _cost = staticmethod(temporal_softmax_ce_cost)
    _grad = staticmethod(temporal_softmax_ce_backward)
