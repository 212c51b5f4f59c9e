"""Dilated, grouped and depthwise Conv2D (CONV-DILATION, CONV-GROUPS) and ConvTranspose2D
(CONVT-*): naive-loop oracles, the adjoint identity, and bad configurations refused by name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refnn.conv
import refnn.conv_transpose
from refnn import Conv2D, ConvTranspose2D
from refnn.types import FloatArray
from refnn.verify.cases import component_cases
from refnn.verify.run import run_case
from tests.oracles.conv_variants import conv_naive, conv_transpose_naive

Pair = tuple[int, int]


@dataclass(frozen=True)
class Geometry:
    C: int
    F: int
    groups: int
    H: int
    W: int
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    m: int


@st.composite
def geometries(draw: st.DrawFn, *, transposed: bool = False) -> Geometry:
    """A grouped, dilated geometry whose (dilated) kernel fits the padded input; small sizes so
    the oracle stays fast, shrinking towards one group, no dilation, 1 x 1."""
    groups = draw(st.integers(1, 3))
    C = groups * draw(st.integers(1, 2))
    F = groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    extent = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    if transposed:  # the input is the convolution's output: any size
        H, W = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    else:
        H = draw(st.integers(max(1, extent[0] - 2 * padding[0]), 7))
        W = draw(st.integers(max(1, extent[1] - 2 * padding[1]), 7))
    return Geometry(C, F, groups, H, W, kernel, stride, padding, dilation, draw(st.integers(1, 2)))


def _values(data: st.DataObject, shape: tuple[int, ...]) -> FloatArray:
    elements = st.floats(-2.0, 2.0, allow_nan=False, allow_subnormal=False)
    out: FloatArray = data.draw(hnp.arrays(np.float64, shape, elements=elements))
    return out


def _conv(g: Geometry) -> Conv2D:
    """The Conv2D of geometry ``g`` (its parameters are set by the test)."""
    return Conv2D(
        g.C,
        g.F,
        g.kernel,
        stride=g.stride,
        padding=g.padding,
        dilation=g.dilation,
        groups=g.groups,
        rng=np.random.default_rng(0),
    )


def _gap(a: FloatArray, b: FloatArray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0) / max(1.0, float(np.max(np.abs(b), initial=0))))


@pytest.mark.spec("CONV-DILATION", "CONV-GROUPS", "CONV-FWD", "CONV-DW", "CONV-DB", "CONV-DX")
@given(g=geometries(), data=st.data())
def test_dilated_grouped_conv_equals_the_naive_loops(g: Geometry, data: st.DataObject) -> None:
    layer = _conv(g)
    W = _values(data, layer.params["W"].shape)
    b = _values(data, (g.F, 1))
    layer.params["W"][...], layer.params["b"][...] = W, b
    X = _values(data, (g.C, g.H, g.W, g.m))
    Z = layer.forward(X)
    dZ = _values(data, Z.shape)
    dX = layer.backward(dZ)
    Zn, dXn, dWn, dbn = conv_naive(X, W, b, g.stride, g.padding, g.dilation, g.groups, dZ)
    assert Z.shape == Zn.shape
    for got, want in ((Z, Zn), (dX, dXn), (layer.grads["W"], dWn), (layer.grads["b"], dbn)):
        assert _gap(got, want) <= 1e-12


@pytest.mark.spec("CONVT-SIZE", "CONVT-FWD", "CONVT-DX", "CONVT-DW", "CONVT-DB")
@given(g=geometries(transposed=True), data=st.data())
def test_conv_transpose_equals_the_naive_stamps(g: Geometry, data: st.DataObject) -> None:
    output_padding = (
        data.draw(st.integers(0, max(g.stride[0], g.dilation[0]) - 1)),
        data.draw(st.integers(0, max(g.stride[1], g.dilation[1]) - 1)),
    )
    try:
        layer = ConvTranspose2D(
            g.C,
            g.F,
            g.kernel,
            stride=g.stride,
            padding=g.padding,
            output_padding=output_padding,
            dilation=g.dilation,
            groups=g.groups,
            rng=np.random.default_rng(0),
        )
        X = _values(data, (g.C, g.H, g.W, g.m))
        Y = layer.forward(X)
    except ValueError as err:  # a padding that crops everything: refused by name
        assert "gives an empty output" in str(err)
        return
    W = _values(data, layer.params["W"].shape)
    b = _values(data, (g.F, 1))
    layer.params["W"][...], layer.params["b"][...] = W, b
    Y = layer.forward(X)
    dY = _values(data, Y.shape)
    dX = layer.backward(dY)
    Yn, dXn, dWn, dbn = conv_transpose_naive(
        X, W, b, g.stride, g.padding, output_padding, g.dilation, g.groups, dY
    )
    assert Y.shape == Yn.shape
    for got, want in ((Y, Yn), (dX, dXn), (layer.grads["W"], dWn), (layer.grads["b"], dbn)):
        assert _gap(got, want) <= 1e-12


@pytest.mark.spec("CONVT-ADJOINT")
@given(g=geometries(), data=st.data())
def test_the_transposed_convolution_is_the_adjoint_of_the_convolution(
    g: Geometry, data: st.DataObject
) -> None:
    """<conv_W(y), x> = <y, conv_W^T(x)> with one W: Conv2D from C = F_t channels into F = C_t
    filters, ConvTranspose2D from C_t = F into F_t = C, both bias-free (b = 0)."""
    conv = _conv(g)
    y = _values(data, (g.C, g.H, g.W, g.m))
    Z = conv.forward(y)
    # the output padding that makes conv_W^T's output the size of y
    op = tuple(
        size - ((z - 1) * s - 2 * p + d * (k - 1) + 1)
        for size, z, s, p, d, k in zip(
            (g.H, g.W), Z.shape[1:3], g.stride, g.padding, g.dilation, g.kernel, strict=True
        )
    )
    transpose = ConvTranspose2D(
        g.F,
        g.C,
        g.kernel,
        stride=g.stride,
        padding=g.padding,
        output_padding=(int(op[0]), int(op[1])),
        dilation=g.dilation,
        groups=g.groups,
        rng=np.random.default_rng(0),
    )
    transpose.params["W"][...] = conv.params["W"] = _values(data, conv.params["W"].shape)
    x = _values(data, Z.shape)
    left = float(np.sum(conv.forward(y) * x))
    right = float(np.sum(y * transpose.forward(x)))
    scale = float(np.sum(np.abs(conv.forward(y) * x))) + 1.0
    assert abs(left - right) <= 1e-12 * scale


@pytest.mark.spec("CONV-GROUPS")
def test_depthwise_is_one_independent_convolution_per_channel() -> None:
    rng = np.random.default_rng(0)
    C = 3
    depthwise = Conv2D(C, 2 * C, 3, padding=1, groups=C, rng=rng)
    X = rng.standard_normal((C, 5, 4, 2))
    Z = depthwise.forward(X)
    for c in range(C):
        single = Conv2D(1, 2, 3, padding=1, rng=rng)
        single.params["W"][...] = depthwise.params["W"][2 * c : 2 * c + 2]
        single.params["b"][...] = depthwise.params["b"][2 * c : 2 * c + 2]
        np.testing.assert_array_equal(single.forward(X[c : c + 1]), Z[2 * c : 2 * c + 2])


def _build(cls: type[Any], *args: Any, **kwargs: Any) -> None:
    cls(*args, rng=np.random.default_rng(0), **kwargs)


@pytest.mark.spec("CONV-GROUPS", "CONV-DILATION", "CONVT-SIZE")
def test_configurations_that_do_not_fit_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"groups must divide in_channels and out_channels, got "):
        _build(Conv2D, 4, 6, 3, groups=4)
    with pytest.raises(ValueError, match=r"groups must divide .* in_channels=3"):
        _build(ConvTranspose2D, 3, 6, 3, groups=2)
    with pytest.raises(TypeError, match=r"groups must be an int"):
        _build(Conv2D, 4, 4, 3, groups=2.0)
    with pytest.raises(ValueError, match=r"dilation must be"):
        _build(Conv2D, 1, 1, 3, dilation=0)
    with pytest.raises(ValueError, match=r"'winograd' needs .* dilation 1 and groups 1, got .*"):
        _build(Conv2D, 2, 2, 3, dilation=2, algorithm="winograd")
    with pytest.raises(ValueError, match=r"'winograd' needs .* groups 2"):
        _build(Conv2D, 2, 2, 3, groups=2, algorithm="winograd")
    auto = Conv2D(2, 2, 3, groups=2, algorithm="auto", rng=np.random.default_rng(0))
    assert auto.algorithm == "direct"
    dilated = Conv2D(1, 1, 3, dilation=3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"dilated by \(3, 3\) spans \(7, 7\) and is larger"):
        dilated.forward(np.ones((1, 6, 6, 1)))
    with pytest.raises(ValueError, match=r"output_padding must be below max\(stride, dilation\)"):
        _build(ConvTranspose2D, 1, 1, 3, stride=2, output_padding=2)
    cropped = ConvTranspose2D(1, 1, 1, padding=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"X of H x W = 1 x 1 gives an empty output"):
        cropped.forward(np.ones((1, 1, 1, 1)))


def _flipped_dW(dY: FloatArray, W: FloatArray, cache: Any) -> tuple[Any, Any, Any]:
    """The usual mistake: the kernel "flipped" in the weight gradient."""
    dX, dW, db = _right_transpose_backward(dY, W, cache)
    return dX, dW[:, :, ::-1, ::-1].copy(), db


def _groups_mixed(dZ: FloatArray, W: FloatArray, cache: Any) -> Any:
    """Groups that mix channels: dW's blocks taken in reverse group order."""
    dX, dW, db = _right_conv_backward(dZ, W, cache)
    if cache.groups > 1:
        g = cache.groups
        dW = dW.reshape(g, -1, *dW.shape[1:])[::-1].reshape(dW.shape).copy()
    return dX, dW, db


_right_transpose_backward = refnn.conv_transpose.conv_transpose_backward
_right_conv_backward = refnn.conv.conv_backward


@pytest.mark.spec("CONVT-DW", "CONV-GROUPS")
@pytest.mark.parametrize(
    ("component", "module", "name", "mutant", "fails"),
    [
        ("ConvTranspose2D", refnn.conv_transpose, "conv_transpose_backward", _flipped_dW, "k>1"),
        ("Conv2D", refnn.conv, "conv_backward", _groups_mixed, "groups>1"),
    ],
    ids=["transposed conv with a flipped dW", "grouped conv mixing the groups"],
)
def test_make_check_catches_a_seeded_wrong_backward_in_exactly_its_cases(
    monkeypatch: pytest.MonkeyPatch,
    component: str,
    module: Any,
    name: str,
    mutant: Any,
    fails: str,
) -> None:
    """The class's make-check cases reject the mutant at W in every case where the bug shows
    (a kernel of more than one tap along an axis; more than one group), and pass elsewhere."""
    cases = [c for c in component_cases() if c.component.split()[0] == component]
    monkeypatch.setattr(module, name, mutant)
    shows = {
        c
        for c in cases
        if (fails == "k>1" and not re.search(r"k=1x1", c.config))
        or (fails == "groups>1" and re.search(r"groups=[2-9]", c.config) is not None)
    }
    assert shows
    failed = set()
    for case in cases:
        outcome = run_case(case)
        if not outcome.passed:
            assert outcome.result is not None
            assert {a.name: a.verdict for a in outcome.result.arrays}["W"] == "WRONG"
            failed.add(case)
    assert failed == shows


@pytest.mark.spec("CONVT-INIT", "CONV-INIT")
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_he_initialisation_uses_the_fan_in_of_one_output_unit(groups: int) -> None:
    """W ~ N(0, 2 / fan_in) with fan_in = C kh kw / groups for Conv2D (its filters see C / groups
    channels) and C_out kh kw / groups for ConvTranspose2D (PyTorch's); b = 0."""
    rng = np.random.default_rng(0)
    conv = Conv2D(32, 64, 3, groups=groups, rng=rng)
    transpose = ConvTranspose2D(64, 32, 3, groups=groups, rng=rng)
    for layer, fan_in in ((conv, 32 // groups * 9), (transpose, 32 // groups * 9)):
        W = layer.params["W"]
        # 18,432 / groups draws: the sample variance is within 7% of 2 / fan_in (> 4 sigma)
        assert abs(float(W.var()) * fan_in / 2.0 - 1.0) < 0.07
        assert not layer.params["b"].any()
