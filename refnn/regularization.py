"""L2 regularization (L2-*): the penalty (λ/(2m)) Σ ||W||_F² and its gradient (λ/m) W.

The strength λ is the argument ``l2``, as in ``refnn.train.fit(..., l2=λ)``.

Which parameters are decayed: every parameter array whose key is ``"W"`` (Dense weights, the
LSTM's stacked W). Biases (``"b"``) and any other key are never decayed. ``refnn.train.fit``
applies both functions when called with ``l2=λ`` (TRAIN-L2); for a custom loop call
:func:`l2_penalty` with the cost and :func:`add_l2_grads` between ``backward`` and the
optimizer's ``step``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from refnn._validate import float_in, positive_int, refuse_overflow
from refnn.layer import Layer
from refnn.model import Sequential, layers_of

#: The parameter keys L2 decays.
DECAYED_KEYS: tuple[str, ...] = ("W",)


def decayed_weights(model: Sequential | Layer[Any]) -> Iterator[tuple[Layer[Any], str]]:
    """Yield (layer, key) for every parameter L2 decays (key in ``DECAYED_KEYS``)."""
    for layer in layers_of(model):
        for key in layer.params:
            if key in DECAYED_KEYS:
                yield layer, key


def _check(l2: float, m: int) -> tuple[float, int]:
    return float_in(l2, "l2", 0.0, float("inf"), closed_high=False), positive_int(m, "m")


def l2_penalty(model: Sequential | Layer[Any], l2: float, m: int) -> float:
    """The L2 penalty of ``model``'s weights.

    Parameters
    ----------
    model : Sequential or Layer
    l2 : float
        The strength λ >= 0.
    m : int
        Number of training examples (the whole training set's, also in mini-batch training).

    Notes
    -----
    Spec: L2-COST

    (λ / (2m)) Σ_l ||W^[l]||_F² over every parameter keyed "W"; biases are not included.
    """
    lam, m = _check(l2, m)
    if lam == 0.0:
        return 0.0
    total = np.float64(0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        for layer, key in decayed_weights(model):
            W = layer.params[key].astype(np.float64, copy=False)
            total += np.vdot(W, W) * (lam / (2.0 * m))  # Σ w² over every entry, scaled first
    return float(refuse_overflow(np.asarray(total), "the L2 penalty"))


def add_l2_grads(model: Sequential | Layer[Any], l2: float, m: int) -> None:
    """Add the penalty's gradient to every decayed weight's gradient (after ``backward``).

    Each ``layer.grads[key]`` is replaced by a new array dW + (λ/m) W; the old gradient array
    is not modified. Call it once per backward: calling it twice adds the decay twice.

    Notes
    -----
    Spec: L2-GRAD

    dW^[l] := dW^[l] + (λ / m) W^[l] for every parameter keyed "W"; db and the rest unchanged.
    """
    lam, m = _check(l2, m)
    if lam == 0.0:
        return
    for layer, key in decayed_weights(model):
        if key not in layer.grads:
            raise RuntimeError(
                f"{type(layer).__name__}: no gradient for {key!r}; call backward() before "
                "add_l2_grads()"
            )
        W = layer.params[key]
        decay = W.dtype.type(lam / m)
        with np.errstate(over="ignore", invalid="ignore"):
            new = layer.grads[key] + decay * W
        layer.grads[key] = refuse_overflow(new, f"add_l2_grads: d{key} + (l2/m) {key}")
