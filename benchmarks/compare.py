"""Side-by-side speed report (``make compare``): refnn against its bound and PyTorch CPU.

Each row is one operation, forward + backward of one layer at a fixed shape and dtype, timed
three ways in one process:

* refnn, through the layer API a user calls (input checks included);
* the bound, what the operation cannot avoid at the same shapes: the matrix products for Dense,
  Conv2D (on the im2col matrix; for its Winograd path, one batched product per point of the
  transformed tile) and LSTM (input products hoisted out of the time loop), one copy of the
  input for pooling (forward reads X, backward writes dX);
* PyTorch CPU autograd at the same shapes and dtype, on as many threads as numpy's BLAS.

Timing the sides in strict alternation (A B A B) charges each first call after the other side's
with page faults and cold caches (up to +45 % for PyTorch on 2 cores). So each side runs in
blocks: an untimed pause (the other library's worker threads park), one untimed warm-up call,
then timed calls; the blocks go A B C A B C, so a drift of the machine reaches every side. A
figure is the median of its calls and its spread half their interquartile range (asv's ±); a
figure whose spread exceeds it is printed as noise. ``--sides torch`` times one side alone, to
check that it agrees with the table. Rows print as they are measured; ``--strict`` (``make
compare STRICT=1``) exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

from refnn import (
    GRU,
    LSTM,
    RNN,
    AdamW,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Embedding,
    MaxPool2D,
    MeanSquaredError,
    MulticlassHinge,
    MultiHeadAttention,
    Nesterov,
    RMSprop,
    SoftmaxCrossEntropy,
)
from refnn.layer import Layer
from refnn.types import FloatArray
from refnn.winograd import F4x4, release_scratch

Fn = Callable[[], object]
DType = Literal["float64", "float32"]
DTYPES: tuple[DType, DType] = ("float64", "float32")
#: Untimed seconds before each block: numpy's OpenBLAS workers spin about 0.1 s after a call.
PAUSE_S = 0.15
#: Bars: (side, limit) means refnn / side <= limit.
Bars = tuple[tuple[str, float], ...]


# --------------------------------------------------------------------------------------------
# Measuring and judging (pure; tested in tests/test_benchmarks.py)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one side, one sample per call."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Half the interquartile range (asv's ±); 0 for fewer than two samples."""
        if len(self.samples) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return (q3 - q1) / 2

    @property
    def noisy(self) -> bool:
        """A figure whose spread exceeds it is not a result."""
        return self.spread > self.median


def reps_for(seconds_per_call: float, budget: float, *, low: int = 3, high: int = 50) -> int:
    """How many calls fit in ``budget`` seconds, clamped to [low, high]."""
    if seconds_per_call <= 0:
        return high
    return max(low, min(high, int(budget / seconds_per_call)))


def time_blocks(
    fns: Mapping[str, Fn],
    *,
    budget: float,
    passes: int = 2,
    pause: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, Timing]:
    """Time each function in blocks, ``passes`` times in turn (A B C A B C).

    A block: ``pause`` seconds of sleep, one untimed warm-up call (whose duration sizes the
    block), then as many timed calls as fit in ``budget / (passes * len(fns))`` seconds.
    ``pause`` defaults to ``PAUSE_S``.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    per_block = budget / (passes * max(1, len(fns)))
    for _ in range(passes):
        for name, fn in fns.items():
            sleep(PAUSE_S if pause is None else pause)
            t0 = clock()
            fn()
            for _ in range(reps_for(clock() - t0, per_block)):
                t0 = clock()
                fn()
                samples[name].append(clock() - t0)
    return {name: Timing(tuple(s)) for name, s in samples.items()}


def ratio(a: Timing, b: Timing) -> tuple[float, float]:
    """a / b of the medians and its spread (the relative spreads add)."""
    r = a.median / b.median
    return r, r * (a.spread / a.median + b.spread / b.median)


def verdict(value: float, spread: float, limit: float) -> str:
    """PASS or MISS of ``value <= limit``; "?" when the limit lies within the spread."""
    word = "PASS" if value <= limit else "MISS"
    return word + ("?" if abs(value - limit) <= spread else "")


def figure(value: float, spread: float) -> str:
    """``value±spread`` to three significant digits of the value."""
    decimals = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 3
    return f"{value:.{decimals}f}±{spread:.{decimals}f}"


def cell(t: Timing | None) -> str:
    """A time in ms with its spread, "noise" when the spread exceeds it, "-" when not timed."""
    if t is None:
        return "-"
    return "noise" if t.noisy else figure(1e3 * t.median, 1e3 * t.spread)


def ratio_cell(a: Timing, b: Timing | None) -> str:
    if b is None:
        return "-"
    if a.noisy or b.noisy:
        return "noise"
    return figure(*ratio(a, b))


COLUMNS: tuple[tuple[str, int], ...] = (
    *(("operation", 10), ("dtype", 7), ("shape", 25), ("refnn ms", 12), ("bound ms", 12)),
    *(("x bound", 10), ("torch ms", 12), ("x torch", 10), ("bars", 0)),
)


def line(cells: Sequence[str]) -> str:
    """One table line; the columns are fixed so that rows print as they are measured."""
    parts = [
        c.rjust(w) if 3 <= i <= 7 else c.ljust(w)
        for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))
    ]
    return "  ".join(parts).rstrip()


def judge(times: Mapping[str, Timing], bars: Bars) -> list[str]:
    """The verdict of each bar refnn / side <= limit whose side was timed."""
    out = []
    for side, limit in bars:
        if "refnn" not in times or side not in times:
            continue
        a, b = times["refnn"], times[side]
        r, s = ratio(a, b)
        out.append(f"{verdict(r, s, limit)} refnn/{side} {r:.2f} <= {limit:g}")
    return out


def exit_status(verdicts: Sequence[str], strict: bool) -> int:
    """1 when ``strict`` and any verdict is a MISS, else 0."""
    return int(strict and any(v.startswith("MISS") for v in verdicts))


# --------------------------------------------------------------------------------------------
# The operations: each builder returns the sides' callables for one dtype
# --------------------------------------------------------------------------------------------


def normal(shape: tuple[int, ...], dtype: DType, seed: int) -> FloatArray:
    out: FloatArray = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return out


def fwd_bwd(layer: Layer[Any], X: FloatArray, dZ: FloatArray) -> Fn:
    def run() -> object:
        layer.forward(X)
        return layer.backward(dZ)

    return run


def fastest(a: FloatArray, b: FloatArray) -> Fn:
    """``a @ b`` in its faster BLAS orientation: ``(b.T @ a.T).T`` is the same numbers but may
    run 2.5-4x faster (Conv2D's dW in float32), so the bound is a bound, not a straw man."""
    direct, flipped = (lambda: a @ b), (lambda: (b.T @ a.T).T)
    t = time_blocks({"d": direct, "f": flipped}, budget=0.2, passes=1, pause=0.0)
    return direct if t["d"].median <= t["f"].median else flipped


def gemms(*products: tuple[int, FloatArray, FloatArray]) -> Fn:
    """Each product ``a @ b`` run ``count`` times, in its faster orientation."""
    plan = [(count, fastest(a, b)) for count, a, b in products]

    def run() -> object:
        return [fn() for count, fn in plan for _ in range(count)]

    return run


def autograd(torch: Any, forward: Callable[[], Any], leaves: Sequence[Any], dY: Any) -> Fn:
    """PyTorch forward + backward: ``forward().backward(dY)`` with fresh gradients."""

    def run() -> object:
        for t in leaves:
            t.grad = None
        forward().backward(dY)
        return leaves[0].grad

    return run


def tensor(torch: Any, a: FloatArray, *axes: int) -> Any:
    """A contiguous copy of ``a`` (axes transposed, examples first) as a leaf tensor."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(axes) if axes else a))


def dense(n_in: int, n_out: int, m: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    layer = Dense(n_in, n_out, rng=np.random.default_rng(0), dtype=dtype)
    X, dZ, W = normal((n_in, m), dtype, 1), normal((n_out, m), dtype, 2), layer.params["W"]
    sides = {
        "refnn": fwd_bwd(layer, X, dZ),
        "bound": gemms((1, W, X), (1, dZ, X.T), (1, W.T, dZ)),
    }
    if torch is not None:
        tX, tW = tensor(torch, X, 1, 0).requires_grad_(), tensor(torch, W).requires_grad_()
        tb = torch.zeros(n_out, dtype=tX.dtype, requires_grad=True)
        F = torch.nn.functional
        run = partial(F.linear, tX, tW, tb)
        sides["torch"] = autograd(torch, run, [tX, tW, tb], tensor(torch, dZ, 1, 0))
    return sides


def conv_layer(c_in: int, c_out: int, dtype: DType, algorithm: str) -> Conv2D:
    return Conv2D(
        c_in, c_out, 3, padding=1, rng=np.random.default_rng(0), dtype=dtype, algorithm=algorithm
    )


def conv(
    c_in: int, c_out: int, hw: int, m: int, dtype: DType, torch: Any, algorithm: str = "direct"
) -> dict[str, Fn]:
    layer = conv_layer(c_in, c_out, dtype, algorithm)
    X, dZ = normal((c_in, hw, hw, m), dtype, 1), normal((c_out, hw, hw, m), dtype, 2)
    W = layer.params["W"]
    if algorithm == "winograd":  # one product per point of the transformed tile
        tiles, points = -(-hw // F4x4.mo), F4x4.alpha**2
        n = tiles * tiles * m
        U, V = normal((points, c_out, c_in), dtype, 3), normal((points, c_in, n), dtype, 4)
        dM = normal((points, c_out, n), dtype, 5)
        V_T, U_T = V.transpose(0, 2, 1), U.transpose(0, 2, 1)
        bound: Fn = lambda: (U @ V, dM @ V_T, U_T @ dM)  # noqa: E731
    else:
        cols = normal((c_in * 9, hw * hw * m), dtype, 3)
        W_mat, dZ_mat = W.reshape(c_out, -1), dZ.reshape(c_out, -1)
        bound = gemms((1, W_mat, cols), (1, dZ_mat, cols.T), (1, W_mat.T, dZ_mat))
    sides = {"refnn": fwd_bwd(layer, X, dZ), "bound": bound}
    if torch is not None:
        tX, tW = tensor(torch, X, 3, 0, 1, 2).requires_grad_(), tensor(torch, W).requires_grad_()
        tb = torch.zeros(c_out, dtype=tX.dtype, requires_grad=True)
        run = partial(torch.nn.functional.conv2d, tX, tW, tb, padding=1)
        sides["torch"] = autograd(torch, run, [tX, tW, tb], tensor(torch, dZ, 3, 0, 1, 2))
    return sides


def depthwise(c: int, hw: int, m: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    """A 3 x 3 depthwise convolution (groups = channels, CONV-GROUPS), padding 1; the bound is
    the three batched products of the grouped im2col path."""
    layer = Conv2D(c, c, 3, padding=1, groups=c, rng=np.random.default_rng(0), dtype=dtype)
    X, dZ = normal((c, hw, hw, m), dtype, 1), normal((c, hw, hw, m), dtype, 2)
    W = layer.params["W"]
    n = hw * hw * m
    cols, W_g, dZ_g = normal((c, 9, n), dtype, 3), W.reshape(c, 1, 9), dZ.reshape(c, 1, n)
    cols_T, W_gT = cols.transpose(0, 2, 1), W_g.transpose(0, 2, 1)
    bound: Fn = lambda: (W_g @ cols, dZ_g @ cols_T, W_gT @ dZ_g)  # noqa: E731
    sides = {"refnn": fwd_bwd(layer, X, dZ), "bound": bound}
    if torch is not None:
        tX, tW = tensor(torch, X, 3, 0, 1, 2).requires_grad_(), tensor(torch, W).requires_grad_()
        tb = torch.zeros(c, dtype=tX.dtype, requires_grad=True)
        run = partial(torch.nn.functional.conv2d, tX, tW, tb, padding=1, groups=c)
        sides["torch"] = autograd(torch, run, [tX, tW, tb], tensor(torch, dZ, 3, 0, 1, 2))
    return sides


def conv_transpose(
    c_in: int, c_out: int, hw: int, m: int, dtype: DType, torch: Any
) -> dict[str, Fn]:
    """A 4 x 4 stride-2 transposed convolution, padding 1 (a 2x upsampling, as in decoders);
    the bound is its three products: W^T X, W col(dY), X col(dY)^T."""
    layer = ConvTranspose2D(
        c_in, c_out, 4, stride=2, padding=1, rng=np.random.default_rng(0), dtype=dtype
    )
    X, dY = normal((c_in, hw, hw, m), dtype, 1), normal((c_out, 2 * hw, 2 * hw, m), dtype, 2)
    W_mat = layer.params["W"].reshape(c_in, -1)
    X_mat, cols = X.reshape(c_in, -1), normal((c_out * 16, hw * hw * m), dtype, 3)
    bound = gemms((1, W_mat.T, X_mat), (1, W_mat, cols), (1, X_mat, cols.T))
    sides = {"refnn": fwd_bwd(layer, X, dY), "bound": bound}
    if torch is not None:
        tX = tensor(torch, X, 3, 0, 1, 2).requires_grad_()
        tW = tensor(torch, layer.params["W"]).requires_grad_()
        tb = torch.zeros(c_out, dtype=tX.dtype, requires_grad=True)
        F = torch.nn.functional
        run = partial(F.conv_transpose2d, tX, tW, tb, stride=2, padding=1)
        sides["torch"] = autograd(torch, run, [tX, tW, tb], tensor(torch, dY, 3, 0, 1, 2))
    return sides


def lstm(n_in: int, n_h: int, T: int, m: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    layer = LSTM(n_in, n_h, rng=np.random.default_rng(0), dtype=dtype)
    X, dH = normal((n_in, T, m), dtype, 1), normal((n_h, T, m), dtype, 2)
    W = layer.params["W"]
    Wx, Wh = W[:, :n_in], W[:, n_in:]
    XH, dZ = normal((n_in + n_h, T * m), dtype, 3), normal((4 * n_h, T * m), dtype, 4)
    h, dz = XH[n_in:, :m], dZ[:, :m]
    # Forward: Wx X for all steps at once, then Wh h_{t-1} per step; backward: dW over all
    # steps at once, dX = Wx^T dZ at once, dh_{t-1} = Wh^T dz_t per step.
    products = ((1, Wx, XH[:n_in]), (T, Wh, h), (1, dZ, XH.T), (1, Wx.T, dZ), (T, Wh.T, dz))
    sides = {"refnn": fwd_bwd(layer, X, dH), "bound": gemms(*products)}
    if torch is not None:
        net = torch.nn.LSTM(n_in, n_h).to(getattr(torch, dtype))
        tX = tensor(torch, X, 1, 2, 0).requires_grad_()  # T x m x n_in
        sides["torch"] = autograd(
            torch, lambda: net(tX)[0], [tX, *net.parameters()], tensor(torch, dH, 1, 2, 0)
        )
    return sides


def recurrent(
    kind: str, n_in: int, n_h: int, T: int, m: int, dtype: DType, torch: Any
) -> dict[str, Fn]:
    """A GRU (3 gates) or a tanh RNN (1), forward + backward; the bound is the LSTM's products
    with its number of gate rows."""
    gates = 3 if kind == "GRU" else 1
    layer = (GRU if kind == "GRU" else RNN)(n_in, n_h, rng=np.random.default_rng(0), dtype=dtype)
    X, dH = normal((n_in, T, m), dtype, 1), normal((n_h, T, m), dtype, 2)
    W = layer.params["W"]
    Wx, Wh = W[:, :n_in], W[:, n_in:]
    XH, dZ = normal((n_in + n_h, T * m), dtype, 3), normal((gates * n_h, T * m), dtype, 4)
    h, dz = XH[n_in:, :m], dZ[:, :m]
    products = ((1, Wx, XH[:n_in]), (T, Wh, h), (1, dZ, XH.T), (1, Wx.T, dZ), (T, Wh.T, dz))
    sides = {"refnn": fwd_bwd(layer, X, dH), "bound": gemms(*products)}
    if torch is not None:
        net = (torch.nn.GRU if kind == "GRU" else torch.nn.RNN)(n_in, n_h)
        net = net.to(getattr(torch, dtype))
        tX = tensor(torch, X, 1, 2, 0).requires_grad_()  # T x m x n_in
        sides["torch"] = autograd(
            torch, lambda: net(tX)[0], [tX, *net.parameters()], tensor(torch, dH, 1, 2, 0)
        )
    return sides


def embedding(V: int, d: int, T: int, m: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    """Embedding lookup and scatter-add backward on (T, m) tokens; the bound copies Y once."""
    layer = Embedding(V, d, rng=np.random.default_rng(0), dtype=dtype)
    X: Any = np.random.default_rng(1).integers(0, V, (T, m))  # token indices, not floats
    dY = normal((d, T, m), dtype, 2)
    out = np.empty_like(dY)
    sides: dict[str, Fn] = {"refnn": fwd_bwd(layer, X, dY), "bound": partial(np.copyto, out, dY)}
    if torch is not None:
        tW = tensor(torch, layer.params["W"].T).requires_grad_()  # V x d
        tX = torch.from_numpy(X)
        run = partial(torch.nn.functional.embedding, tX, tW)
        sides["torch"] = autograd(torch, run, [tW], tensor(torch, dY, 1, 2, 0))
    return sides


def pool(kind: str, c: int, hw: int, m: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    layer = (MaxPool2D if kind == "max" else AvgPool2D)(2, dtype=dtype)
    X, dA = normal((c, hw, hw, m), dtype, 1), normal((c, hw // 2, hw // 2, m), dtype, 2)
    out = np.empty_like(X)
    sides: dict[str, Fn] = {"refnn": fwd_bwd(layer, X, dA), "bound": partial(np.copyto, out, X)}
    if torch is not None:
        tX = tensor(torch, X, 3, 0, 1, 2).requires_grad_()
        F = torch.nn.functional
        run = partial(F.max_pool2d if kind == "max" else F.avg_pool2d, tX, 2)
        sides["torch"] = autograd(torch, run, [tX], tensor(torch, dA, 3, 0, 1, 2))
    return sides


def loss(name: str, k: int, m: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    """A loss's forward + backward (J and dA) on k x m scores; the bound is one copy of A (the
    backward writes dA). PyTorch's losses with reduction="sum" / m, refnn's convention."""
    Z, idx = normal((k, m), dtype, 1), np.random.default_rng(2).integers(0, k, m)
    Y = normal((k, m), dtype, 3) if name == "MeanSquaredError" else np.eye(k, dtype=dtype)[:, idx]
    made = {"SoftmaxCrossEntropy": SoftmaxCrossEntropy, "MulticlassHinge": MulticlassHinge}
    ours = made.get(name, MeanSquaredError)(dtype=dtype)

    def run() -> object:
        ours.forward(Z, Y)
        return ours.backward()

    out = np.empty_like(Z)
    sides: dict[str, Fn] = {"refnn": run, "bound": partial(np.copyto, out, Z)}
    if torch is not None:
        tZ = tensor(torch, Z, 1, 0).requires_grad_()
        F, t_idx, tY = torch.nn.functional, torch.from_numpy(idx), tensor(torch, Y, 1, 0)
        cost = {
            "SoftmaxCrossEntropy": partial(F.cross_entropy, tZ, t_idx, reduction="sum"),
            "MulticlassHinge": partial(F.multi_margin_loss, tZ, t_idx, reduction="sum"),
            "MeanSquaredError": partial(F.mse_loss, tZ, tY, reduction="sum"),
        }[name]
        sides["torch"] = autograd(
            torch, lambda: cost() / m, [tZ], torch.tensor(1.0, dtype=tZ.dtype)
        )
    return sides


def optimizer(name: str, n: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    """One optimizer step on an n x n parameter; the bound is one copy of it. PyTorch's
    torch.optim at the same hyper-parameters, its default (foreach) implementation."""
    W, g = normal((n, n), dtype, 1), normal((n, n), dtype, 2)
    made = {"RMSprop": RMSprop(1e-3), "AdamW": AdamW(1e-3), "Nesterov": Nesterov(1e-3)}
    layer = Dense(n, n, rng=np.random.default_rng(0), dtype=dtype)
    layer.params = {"W": W.copy()}
    layer.grads = {"W": g}
    opt = made[name]
    out = np.empty_like(W)
    sides: dict[str, Fn] = {"refnn": partial(opt.step, layer), "bound": partial(np.copyto, out, W)}
    if torch is not None:
        tW = tensor(torch, W.copy()).requires_grad_()
        tW.grad = tensor(torch, g)
        theirs = {
            "RMSprop": lambda: torch.optim.RMSprop([tW], lr=1e-3, alpha=0.99, eps=1e-8),
            "AdamW": lambda: torch.optim.AdamW([tW], lr=1e-3),
            "Nesterov": lambda: torch.optim.SGD([tW], lr=1e-3, momentum=0.9, nesterov=True),
        }[name]()
        sides["torch"] = theirs.step
    return sides


def attention(E: int, h: int, T: int, m: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    """MultiHeadAttention, self-attention, forward + backward. The bound is its matrix products:
    the q, k, v and output projections and their gradients (2-D), and per example and head the
    scores, the output and their four gradients (batched T x T by T x d_h)."""
    layer = MultiHeadAttention(E, h, rng=np.random.default_rng(0), dtype=dtype)
    X, dY = normal((E, T, m), dtype, 1), normal((E, T, m), dtype, 2)
    W_in, W_out = layer.params["W_in"], layer.params["W_out"]
    X2, dY2, dQKV = X.reshape(E, T * m), dY.reshape(E, T * m), normal((3 * E, T * m), dtype, 3)
    projections = gemms(
        (1, W_in, X2),
        (1, W_out, dY2),
        (1, dY2, dY2.T),
        (1, W_out.T, dY2),
        (1, dQKV, X2.T),
        (1, W_in.T, dQKV),
    )  # MHA-PROJ, MHA-OUT, MHA-DOUT, MHA-DPROJ
    q, P = normal((m, h, T, E // h), dtype, 4), normal((m, h, T, T), dtype, 5)
    qT, PT = q.transpose(0, 1, 3, 2), P.transpose(0, 1, 3, 2)

    def bound() -> object:
        return projections(), q @ qT, P @ q, PT @ q, q @ qT, P @ q, PT @ q

    sides: dict[str, Fn] = {"refnn": fwd_bwd(layer, X, dY), "bound": bound}
    if torch is not None:
        net = torch.nn.MultiheadAttention(E, h, dtype=getattr(torch, dtype))
        tX = tensor(torch, X, 1, 2, 0).requires_grad_()  # T x m x E
        sides["torch"] = autograd(
            torch,
            lambda: net(tX, tX, tX, need_weights=False)[0],
            [tX, *net.parameters()],
            tensor(torch, dY, 1, 2, 0),
        )
    return sides


def batch_norm(n: int, rest: tuple[int, ...], m: int, dtype: DType, torch: Any) -> dict[str, Fn]:
    """BatchNorm in training, forward + backward through the batch statistics, on n x rest x m;
    the bound is two copies (the forward writes Y from X, the backward dX from dY). PyTorch's
    BatchNorm2d (images) or BatchNorm1d (dense) on the examples-first copy."""
    layer = BatchNorm(n, dtype=dtype)
    X, dY = normal((n, *rest, m), dtype, 1), normal((n, *rest, m), dtype, 2)
    Y, dX = np.empty_like(X), np.empty_like(X)

    def bound() -> object:
        np.copyto(Y, X)
        np.copyto(dX, dY)
        return dX

    sides: dict[str, Fn] = {"refnn": fwd_bwd(layer, X, dY), "bound": bound}
    if torch is not None:
        axes = (len(rest) + 1, 0, *range(1, len(rest) + 1))  # examples first
        tX = tensor(torch, X, *axes).requires_grad_()
        module = (torch.nn.BatchNorm2d if rest else torch.nn.BatchNorm1d)(n)
        module = module.to(getattr(torch, dtype))
        sides["torch"] = autograd(
            torch, partial(module, tX), [tX, *module.parameters()], tensor(torch, dY, *axes)
        )
    return sides


#: (operation, shape, builder, bars in float64, bars in float32): the issue's goals.
ROWS: tuple[tuple[str, str, Callable[[DType, Any], dict[str, Fn]], Bars, Bars], ...] = (
    ("Dense", "256->256, m=128", partial(dense, 256, 256, 128), (), ()),
    ("Dense", "1024->1024, m=512", partial(dense, 1024, 1024, 512), (("bound", 1.05),), ()),
    ("Conv2D", "16->32, 16x16, m=32", partial(conv, 16, 32, 16, 32), (), ()),
    ("Conv2D", "32->64, 32x32, m=64", partial(conv, 32, 64, 32, 64), (("bound", 1.35),), ()),
    (
        "Conv2D",
        "32->64, 32x32, m=64, wino",
        partial(conv, 32, 64, 32, 64, algorithm="winograd"),
        (("torch", 0.6),),
        (("torch", 1.0),),
    ),
    (
        "Conv2D",
        "64 depthwise 3x3, 32x32, m=32",
        partial(depthwise, 64, 32, 32),
        (("torch", 1.0),),
        (),
    ),
    (
        "ConvTranspose2D",
        "64->32, 4x4 s=2, 16x16, m=32",
        partial(conv_transpose, 64, 32, 16, 32),
        (),
        (),
    ),
    ("LSTM", "64->128, T=50, m=64", partial(lstm, 64, 128, 50, 64), (("torch", 1.0),), ()),
    (
        "GRU",
        "64->128, T=50, m=64",
        partial(recurrent, "GRU", 64, 128, 50, 64),
        (("torch", 1.0),),
        (),
    ),
    ("RNN", "64->128, T=50, m=64", partial(recurrent, "RNN", 64, 128, 50, 64), (), ()),
    ("Embedding", "V=10000, d=128, T=50, m=64", partial(embedding, 10000, 128, 50, 64), (), ()),
    (
        "BatchNorm",
        "64 channels, 32x32, m=64",
        partial(batch_norm, 64, (32, 32), 64),
        (("torch", 1.0),),
        (),
    ),
    (
        "BatchNorm",
        "1024 features, m=512",
        partial(batch_norm, 1024, (), 512),
        (("torch", 1.0),),
        (),
    ),
    (
        "MultiHeadAttention",
        "E=512, 8 heads (d=64), T=128, m=32",
        partial(attention, 512, 8, 128, 32),
        (("torch", 1.0),),
        (),
    ),
    ("MaxPool2D", "2x2, 64x32x32, m=64", partial(pool, "max", 64, 32, 64), (("torch", 1.0),), ()),
    ("AvgPool2D", "2x2, 64x32x32, m=64", partial(pool, "avg", 64, 32, 64), (("torch", 1.0),), ()),
    *(
        (name, "k=1000, m=512", partial(loss, name, 1000, 512), (), ())
        for name in ("SoftmaxCrossEntropy", "MulticlassHinge", "MeanSquaredError")
    ),
    *(
        (name, "1024x1024 step", partial(optimizer, name, 1024), (), ())
        for name in ("RMSprop", "AdamW", "Nesterov")
    ),
)


def conv_memory(
    c_in: int, c_out: int, hw: int, m: int, dtype: DType, algorithm: str
) -> tuple[float, str]:
    """Peak traced bytes of one Conv2D forward + backward minus its outputs (Z, dX, dW, db), in
    im2col buffers ((C_in 9) x (H W m)), and its verdict: at most two, 5 % for small temporaries.
    Winograd's scratch buffers are released first, so that their allocation is counted."""
    layer = conv_layer(c_in, c_out, dtype, algorithm)
    X, dZ = normal((c_in, hw, hw, m), dtype, 1), normal((c_out, hw, hw, m), dtype, 2)
    release_scratch()  # the Winograd scratch it keeps between calls counts too
    tracemalloc.start()
    try:
        Z, dX = layer.forward(X), layer.backward(dZ)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    outputs = Z.nbytes + dX.nbytes + sum(g.nbytes for g in layer.grads.values())
    buffers = (peak - outputs) / (c_in * 9 * hw * hw * m * np.dtype(dtype).itemsize)
    return buffers, f"{verdict(buffers, 0.0, 2.05)} (peak-outputs)/im2col {buffers:.3f} <= 2.05"


def relative_errors(got: Mapping[str, FloatArray], want: Mapping[str, FloatArray]) -> str:
    """'Z 1.2e-15, dX ...': max |got - want| / max |want| for each quantity."""
    return ", ".join(
        f"{k} {np.abs(got[k] - w).max() / np.abs(w).max():.1e}" for k, w in want.items()
    )


def conv_run(layer: Conv2D, X: FloatArray, dZ: FloatArray) -> dict[str, FloatArray]:
    Z, dX = layer.forward(X), layer.backward(dZ)
    return {"Z": Z, "dX": dX, "dW": layer.grads["W"]}


def conv_accuracy(
    torch: Any, c_in: int, c_out: int, hw: int, m: int, dtype: DType, algorithm: str
) -> str:
    """Largest error of refnn's Conv2D in ``dtype`` against PyTorch's direct convolution in
    float64 on the same numbers, relative to the largest reference value, for Z, dX and dW."""
    layer = conv_layer(c_in, c_out, dtype, algorithm)
    X, dZ = normal((c_in, hw, hw, m), dtype, 1), normal((c_out, hw, hw, m), dtype, 2)
    got = conv_run(layer, X, dZ)
    tX = tensor(torch, X.astype(np.float64), 3, 0, 1, 2).requires_grad_()
    tW = tensor(torch, layer.params["W"].astype(np.float64)).requires_grad_()
    b = torch.from_numpy(layer.params["b"].astype(np.float64).ravel())
    torch.nn.functional.conv2d(tX, tW, b, padding=1).backward(
        tensor(torch, dZ, 3, 0, 1, 2).double()
    )
    with torch.no_grad():
        tZ = torch.nn.functional.conv2d(tX, tW, b, padding=1)
    want = {
        "Z": tZ.numpy().transpose(1, 2, 3, 0),
        "dX": tX.grad.numpy().transpose(1, 2, 3, 0),
        "dW": tW.grad.numpy(),
    }
    return f"max |refnn - torch float64| / max |torch float64|: {relative_errors(got, want)}"


def attention_accuracy(torch: Any, E: int, h: int, T: int, m: int, dtype: DType) -> str:
    """Largest error of refnn's MultiHeadAttention in ``dtype`` against nn.MultiheadAttention in
    float64 with the same parameters and numbers, relative to the largest reference value."""
    net = torch.nn.MultiheadAttention(E, h, dtype=torch.float64)
    layer = MultiHeadAttention(E, h, rng=np.random.default_rng(0), dtype=dtype)
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    layer.params["W_in"][...] = state["in_proj_weight"]
    layer.params["W_out"][...] = state["out_proj.weight"]
    X, dY = normal((E, T, m), dtype, 1), normal((E, T, m), dtype, 2)
    got = {"Y": layer.forward(X), "dX": layer.backward(dY), "dW_in": layer.grads["W_in"]}
    tX = tensor(torch, X.astype(np.float64), 1, 2, 0).requires_grad_()
    Y = net(tX, tX, tX, need_weights=False)[0]
    Y.backward(tensor(torch, dY.astype(np.float64), 1, 2, 0))
    want = {
        "Y": Y.detach().numpy().transpose(2, 0, 1),
        "dX": tX.grad.numpy().transpose(2, 0, 1),
        "dW_in": net.in_proj_weight.grad.numpy(),
    }
    return f"max |refnn - torch float64| / max |torch float64|: {relative_errors(got, want)}"


def winograd_vs_direct(c_in: int, c_out: int, hw: int, m: int, dtype: DType) -> str:
    """The same for the Winograd path in ``dtype`` against refnn's direct path in float64."""
    layer = conv_layer(c_in, c_out, dtype, "winograd")
    X, dZ = normal((c_in, hw, hw, m), dtype, 1), normal((c_out, hw, hw, m), dtype, 2)
    got = conv_run(layer, X, dZ)
    direct = conv_layer(c_in, c_out, "float64", "direct")
    for name, value in layer.params.items():
        direct.params[name][...] = value
    want = conv_run(direct, X.astype(np.float64), dZ.astype(np.float64))
    return f"max |winograd - direct float64| / max |direct float64|: {relative_errors(got, want)}"


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def threads() -> tuple[int, list[str]]:
    """numpy's BLAS thread count and a line per thread pool (threadpoolctl, when installed)."""
    try:
        threadpoolctl: Any = importlib.import_module("threadpoolctl")
    except ImportError:
        n = int(os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count() or 1)
        return n, [f"thread pools: unknown (no threadpoolctl); numpy BLAS threads assumed {n}"]
    pools: list[dict[str, Any]] = threadpoolctl.threadpool_info()
    n = next((p["num_threads"] for p in pools if "numpy" in p["filepath"]), os.cpu_count() or 1)
    return int(n), [
        f"thread pool {p['internal_api']} {p.get('version')}: {p['num_threads']} threads "
        f"({os.path.basename(p['filepath'])})"
        for p in pools
    ]


def load(own: float) -> str:
    """The load average, flagged when it exceeds ``own`` (this process's threads) by 0.5."""
    one, five, fifteen = os.getloadavg()
    busy = "  <- other processes are running: figures are noisy" if one > own + 0.5 else ""
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min){busy}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    except OSError:
        names = []
    return f"{names[0] if names else 'unknown CPU'}, {os.cpu_count()} cpus"


def say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per row (default 3)")
    parser.add_argument(
        "--sides",
        nargs="+",
        default=["refnn", "bound", "torch"],
        choices=["refnn", "bound", "torch"],
        help="the sides to time",
    )
    parser.add_argument("--rows", nargs="+", default=[], help="only operations named so")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a bar is missed")
    args = parser.parse_args(argv)

    n_threads, pool_lines = threads()
    torch: Any = None
    if "torch" in args.sides:
        try:
            torch = importlib.import_module("torch")  # Any whether or not torch is installed
        except ImportError:
            pool_lines.append("torch: not installed (pip install torch==2.13.0): no torch column")
        else:
            torch.set_num_threads(n_threads)
            _, pool_lines = threads()
            pool_lines.append(f"torch {torch.__version__}: {torch.get_num_threads()} threads")
    say(f"== {cpu_model()}; python {sys.version.split()[0]}, numpy {np.__version__}")
    say(*(f"   {s}" for s in pool_lines))
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            say(f"   {var}={os.environ[var]!r}: may slow numpy's BLAS")
    say(f"   before: {load(0)}", "")
    say(line([name for name, _ in COLUMNS]), line(["-" * max(w, 4) for _, w in COLUMNS]))

    verdicts: list[str] = []
    for op, shape, build, bars64, bars32 in ROWS:
        if args.rows and op not in args.rows:
            continue
        dtypes: tuple[tuple[DType, Bars], ...] = (("float64", bars64), ("float32", bars32))
        for dtype, bars in dtypes:
            sides = {k: v for k, v in build(dtype, torch).items() if k in args.sides}
            times = time_blocks(sides, budget=args.budget)
            got = judge(times, bars)
            verdicts += [f"{v}: {op} {dtype} {shape}" for v in got]
            r, b, t = (times.get(k) for k in ("refnn", "bound", "torch"))
            rb = "-" if r is None else ratio_cell(r, b)
            rt = "-" if r is None else ratio_cell(r, t)
            say(line([op, dtype, shape, cell(r), cell(b), rb, cell(t), rt, "; ".join(got)]))

    if not args.rows or "Conv2D" in args.rows:
        say("", "== Conv2D 32->64, 32x32, m=64, forward + backward: peak traced memory, accuracy")
        for algorithm in ("direct", "winograd"):
            for dtype in DTYPES:
                _, v = conv_memory(32, 64, 32, 64, dtype, algorithm)
                verdicts.append(f"{v}: Conv2D {algorithm} memory {dtype}")
                say(f"   {algorithm} {dtype}: {v}")
                if torch is not None:
                    error = conv_accuracy(torch, 32, 64, 32, 64, dtype, algorithm)
                    say(f"   {algorithm} {dtype}: {error}")
                if algorithm == "winograd":
                    say(f"   winograd {dtype}: {winograd_vs_direct(32, 64, 32, 64, dtype)}")
    if torch is not None and (not args.rows or "MultiHeadAttention" in args.rows):
        say("", "== MultiHeadAttention E=512, 8 heads, T=128, m=32, forward + backward: accuracy")
        for dtype in DTYPES:
            say(f"   {dtype}: {attention_accuracy(torch, 512, 8, 128, 32, dtype)}")
    missed = [v for v in verdicts if v.startswith("MISS")]
    say("", f"   after: {load(n_threads)}")
    say(f"== bars: {len(verdicts) - len(missed)} PASS, {len(missed)} MISS ('?': within noise)")
    say(*(f"   {v}" for v in missed))
    return exit_status(verdicts, args.strict)


if __name__ == "__main__":
    sys.exit(main())
