"""The attention gallery: wrong attention forwards the kit must reject (forward_only checks),
next to a correct one written independently from specs/attention.md, which it accepts: scale by
1/d instead of 1/sqrt(d), softmax over the queries, the causal mask applied after the softmax,
heads split along the wrong axis. Each rejection's message is printed (``pytest -s``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from refnn.testing import MismatchError, check_layer
from refnn.types import FloatArray

MISTAKES = ("scale 1/d", "softmax over queries", "mask after softmax", "heads on the wrong axis")


class NumpyAttention:
    """Self-attention forward in numpy, examples last, heads batched as (m, h, T, d_h);
    ``mistake`` (a class attribute) makes it wrong in one of the gallery's ways."""

    mistake = ""

    def __init__(self, config: dict[str, Any], params: dict[str, FloatArray]) -> None:
        self.config, self.params = config, params

    def attend(self, q: FloatArray, k: FloatArray, v: FloatArray) -> FloatArray:
        d, T = q.shape[-1], q.shape[-2]
        scale = self.config.get("scale")
        if scale is None:
            scale = 1.0 / d if self.mistake == "scale 1/d" else 1.0 / math.sqrt(d)
        E = q @ np.swapaxes(k, -1, -2) * scale
        allowed = np.tril(np.ones((T, T), bool)) if self.config.get("causal") else None
        if allowed is not None and self.mistake != "mask after softmax":
            E = np.where(allowed, E, -np.inf)
        axis = -2 if self.mistake == "softmax over queries" else -1
        P = np.exp(E - E.max(axis=axis, keepdims=True))
        P /= P.sum(axis=axis, keepdims=True)
        if allowed is not None and self.mistake == "mask after softmax":
            P = P * allowed  # zeroed after normalising: the rows no longer sum to 1
        out: FloatArray = P @ v
        return out

    def split(self, A: FloatArray, h: int) -> FloatArray:
        """(E, T, m) -> (m, h, T, d_h): head j = rows j d_h .. (j+1) d_h - 1."""
        E, T, m = A.shape
        if self.mistake == "heads on the wrong axis":  # head j = rows j, j + h, j + 2h, ...
            return A.reshape(E // h, h, T, m).transpose(3, 1, 2, 0)
        return A.reshape(h, E // h, T, m).transpose(3, 0, 2, 1)

    def merge(self, a: FloatArray) -> FloatArray:
        m, h, T, dh = a.shape
        if self.mistake == "heads on the wrong axis":
            return a.transpose(3, 1, 2, 0).reshape(h * dh, T, m)
        return a.transpose(1, 3, 2, 0).reshape(h * dh, T, m)

    def forward(self, X: FloatArray) -> FloatArray:
        if "num_heads" not in self.config:  # ScaledDotProductAttention: one head, Q = K = V = X
            q = X.transpose(2, 1, 0)
            return self.attend(q, q, q).transpose(2, 1, 0)
        p, h, E = self.params, self.config["num_heads"], X.shape[0]
        QKV = np.einsum("ij,jtk->itk", p["W_in"], X) + p["b_in"][:, :, None]
        q, k, v = (self.split(QKV[i * E : (i + 1) * E], h) for i in range(3))
        heads = self.merge(self.attend(q, k, v))
        Y: FloatArray = np.einsum("ij,jtk->itk", p["W_out"], heads) + p["b_out"][:, :, None]
        return Y

    def backward(self, dY: FloatArray) -> tuple[FloatArray, dict[str, FloatArray]]:
        raise NotImplementedError("forward_only checks")


def _impl(mistake: str) -> type[NumpyAttention]:
    return type("Wrong" + mistake.title().replace(" ", ""), (NumpyAttention,), {"mistake": mistake})


@pytest.mark.spec("ATTN-SCORES", "ATTN-SOFTMAX", "ATTN-MASK", "ATTN-OUT", "MHA-HEADS")
@pytest.mark.parametrize("name", ["ScaledDotProductAttention", "MultiHeadAttention"])
def test_the_correct_forward_passes(name: str) -> None:
    check_layer(name, NumpyAttention, forward_only=True, max_examples=10)


@pytest.mark.spec("ATTN-SCORES", "ATTN-SOFTMAX", "ATTN-MASK", "MHA-HEADS")
@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_rejected_with_its_message(mistake: str) -> None:
    name = (
        "MultiHeadAttention"
        if mistake == "heads on the wrong axis"
        else "ScaledDotProductAttention"
    )
    # heads: two of two features each, where splitting by blocks and by strides differ
    configs = (
        {"num_heads": 2, "embed_dim": 4, "T": 2, "m": 1} if name == "MultiHeadAttention" else None
    )
    with pytest.raises(MismatchError) as info:
        check_layer(name, _impl(mistake), forward_only=True, max_examples=40, configs=configs)
    message = str(info.value)
    print(f"\n[gallery] {name}, {mistake}:\n{message}")
    assert name in message and "Y" in message
