"""What Conv2D's paths (im2col, Winograd tiles) and the pools share: window geometry, index
arithmetic and scratch memory.

A window position y (an output of a strided kernel, or a Winograd tile) reads input row
s y + offset - p of an input padded by p; ``valid_span`` finds the positions that read a real
row. ``channel_blocks`` cuts the channel axis so that a copy which reads each input element
several times (kh kw taps, alpha^2 tile points) finds it in cache after the first read.
``scratch`` holds per-thread buffers for the temporaries of a call that outlive it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from refnn._validate import IntPair
from refnn.types import FloatArray


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a window sweep along one axis.

    Raises ValueError when the (dilated) kernel is larger than the padded input.

    Notes
    -----
    Spec: CONV-SIZE

    n_out = floor((n + 2 p - d (k - 1) - 1) / s) + 1, defined for d (k - 1) + 1 <= n + 2 p.
    """
    padded, extent = size + 2 * padding, dilation * (kernel - 1) + 1
    if extent > padded:
        spread = f" dilated by {dilation} spans {extent}" if dilation > 1 else ""
        raise ValueError(
            f"kernel size {kernel}{spread} is larger than the padded input size {padded} "
            f"(input {size} + 2 x padding {padding})"
        )
    return (padded - extent) // stride + 1


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one convolution: input C x H x W (x m), kernel, stride, padding, dilation,
    output."""

    C: int
    H: int
    W: int
    kh: int
    kw: int
    stride: IntPair
    padding: IntPair
    H_out: int
    W_out: int
    dilation: IntPair = (1, 1)

    @classmethod
    def of(
        cls,
        shape: tuple[int, ...],
        kernel: IntPair,
        stride: IntPair,
        padding: IntPair,
        dilation: IntPair = (1, 1),
    ) -> ConvGeometry:
        """The geometry of a C x H x W x m input (raises ValueError if the kernel does not fit)."""
        C, H, W = shape[0], shape[1], shape[2]
        kh, kw = kernel
        eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
        if eh > H + 2 * padding[0] or ew > W + 2 * padding[1]:
            spread = f" dilated by {dilation} spans ({eh}, {ew}) and" if dilation != (1, 1) else ""
            raise ValueError(
                f"kernel (kh, kw) = {kernel}{spread} is larger than the padded input "
                f"(H + 2 p_h, W + 2 p_w) = ({H + 2 * padding[0]}, {W + 2 * padding[1]}) "
                f"for input H x W = {H} x {W} and padding {padding}"
            )
        H_out = output_size(H, kh, stride[0], padding[0], dilation[0])
        W_out = output_size(W, kw, stride[1], padding[1], dilation[1])
        return cls(C, H, W, kh, kw, stride, padding, H_out, W_out, dilation)

    def col_shape(self, m: int) -> IntPair:
        """Shape of col(X): (C kh kw, H_out W_out m)."""
        return self.C * self.kh * self.kw, self.H_out * self.W_out * m


#: Input bytes per channel block: about one core's L2 cache (512 KiB on the machines measured).
CACHE_BYTES = 1 << 19


def valid_span(
    offset: int, stride: int, padding: int, size: int, n_out: int
) -> tuple[int, int, int]:
    """Positions y in [lo, hi) whose read row s y + offset - p lies in [0, size).

    Returns (lo, hi, first row read); lo == hi if none.
    """
    lo = max(0, -((offset - padding) // stride))  # ceil((p - offset) / s), at least 0
    hi = max(lo, min(n_out, (size - 1 + padding - offset) // stride + 1))
    return lo, hi, stride * lo + offset - padding


def reusable(
    a: FloatArray | None, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> TypeGuard[FloatArray]:
    """Whether ``a`` can hold a new result of ``shape`` and ``dtype`` in place: a writeable,
    C-contiguous array of exactly that shape and dtype (a reshape of it is then a view)."""
    return (
        a is not None
        and a.shape == shape
        and a.dtype == dtype
        and a.flags.c_contiguous
        and a.flags.writeable
    )


def fitting(out: FloatArray, shape: tuple[int, ...], dtype: np.dtype[Any], name: str) -> FloatArray:
    """``out`` if it is ``reusable`` for ``shape`` and ``dtype``, else ValueError naming both."""
    if reusable(out, shape, dtype):
        return out
    raise ValueError(
        f"{name} must be a writeable C-contiguous {dtype} array of shape {shape}, got {out.dtype} "
        f"{out.shape} (C-contiguous: {out.flags.c_contiguous}, writeable: {out.flags.writeable})"
    )


def channel_blocks(C: int, channel_bytes: int) -> list[slice]:
    """Slices of the C channels, each of at most ``CACHE_BYTES`` of input (and one channel)."""
    step = max(1, CACHE_BYTES // max(1, channel_bytes))
    return [slice(c, min(C, c + step)) for c in range(0, C, step)]


class _Scratch(threading.local):
    """Two flat buffers per thread, which the stages of a call take turns to use.

    Every fresh large array costs page faults on its first writes, measured here at 0.1-0.3 ns
    per byte, as much as the pass that writes it. So these buffers outlive a call and grow to
    the largest call seen. Nothing in them is read before the same call has written it, nothing
    from them is returned or cached, and each thread has its own: no call can see another's
    data. ``release_scratch`` frees the calling thread's buffers.
    """

    def __init__(self) -> None:
        self.buffers = [np.empty(0), np.empty(0)]

    def take(self, which: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> FloatArray:
        """The first prod(shape) elements of buffer ``which`` as a C-contiguous ``dtype`` array."""
        nbytes = math.prod(shape) * dtype.itemsize
        if self.buffers[which].nbytes < nbytes:
            self.buffers[which] = np.empty(-(-nbytes // 8))
        return self.buffers[which].view(np.uint8)[:nbytes].view(dtype).reshape(shape)


scratch = _Scratch()


def release_scratch() -> int:
    """Free the calling thread's scratch buffers (Conv2D's, both paths); returns the bytes
    released. They are reallocated by the next call that needs them."""
    held = sum(b.nbytes for b in scratch.buffers)
    scratch.buffers = [np.empty(0), np.empty(0)]
    return held
