"""The corpus's checks: each implementation with the arguments a user of that style passes and
what the kit must answer (issue 22's table)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.kit_corpus import course, cs231n, numpyml, torchlike

#: Course code: one int stride and padding, no dilation or groups.
SQUARE = {
    "stride": lambda s: s[0] == s[1],
    "padding": lambda p: p[0] == p[1],
    "dilation": 1,
    "groups": 1,
}
#: Convolutions written without dilation or groups.
PLAIN = {"configs": {"dilation": 1, "groups": 1}}


@dataclass(frozen=True)
class Entry:
    """One check: ``check`` ("layer", "loss", "optimizer") of refnn's ``component`` against
    ``make_impl`` with ``kwargs``; ``bug`` says what is wrong ("" for a correct one) and
    ``expect`` a phrase the rejection must contain (pointing at the bug)."""

    source: str
    component: str
    check: str
    make_impl: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    bug: str = ""
    expect: str = ""


CS = "CS231n-style functions"
CO = "course notebooks (channels-last)"
NM = "numpy-ml-style classes"
TL = "numpy, PyTorch conventions"

BF = {"layout": "batch_first"}
CS_LSTM = BF | {
    "conventions": {"state": "h0", "gates": "ifog", "weights": "in_out", "bias": "flat"}
}
CS_DENSE = BF | {"conventions": {"weights": "in_out", "bias": "flat"}}

ENTRIES: list[Entry] = [
    Entry(CS, "Dense", "layer", cs231n.Affine, CS_DENSE),
    Entry(
        CS,
        "Dense",
        "layer",
        lambda c, p: cs231n.Affine(c, p, bug=True),
        CS_DENSE,
        "db summed over the wrong axis",
        "db disagrees with refnn (spec DENSE-DB)",
    ),
    Entry(CS, "ReLU", "layer", cs231n.Relu, BF),
    Entry(
        CS,
        "ReLU",
        "layer",
        cs231n.ReluInPlace,
        BF,
        "forward clamps the caller's x in place",
        "wrote into the X it was given",
    ),
    Entry(CS, "Conv2D", "layer", cs231n.Conv, BF | PLAIN | {"conventions": {"bias": "flat"}}),
    Entry(
        CS,
        "Conv2D",
        "layer",
        cs231n.ConvStrideBug,
        BF | PLAIN | {"conventions": {"bias": "flat"}},
        "backward ignores the stride",
        "dX disagrees with refnn (spec CONV-DX)",
    ),
    Entry(CS, "MaxPool2D", "layer", cs231n.MaxPool, BF),
    Entry(
        CS,
        "MaxPool2D",
        "layer",
        cs231n.MaxPoolMask,
        BF,
        "gradient to every tied maximum",
        "dX disagrees with refnn (spec MAXPOOL-BWD)",
    ),
    Entry(CS, "LSTM", "layer", cs231n.Lstm, CS_LSTM),
    Entry(
        CS,
        "LSTM",
        "layer",
        cs231n.LstmForgetBug,
        CS_LSTM,
        "forget gate's gradient uses i instead of c_{t-1}",
        "forget gate f",
    ),
    Entry(CS, "SoftmaxCrossEntropy", "loss", cs231n.SoftmaxLoss, BF),
    Entry(
        CO,
        "Conv2D",
        "layer",
        course.Conv,
        {
            "layout": "channels_last",
            "configs": SQUARE,
            "conventions": {"weights": "hwcf", "bias": "flat"},
        },
    ),
    Entry(
        CO,
        "MaxPool2D",
        "layer",
        course.MaxPool,
        {"layout": "channels_last"},
        "create_mask_from_window: every tied maximum gets the gradient",
        "dX disagrees with refnn (spec MAXPOOL-BWD)",
    ),
    Entry(CO, "MaxPool2D", "layer", course.MaxPoolFixed, {"layout": "channels_last"}),
    Entry(CO, "BinaryCrossEntropy", "loss", course.Cost, {"tolerance": 1e-4}),
    Entry(
        CO,
        "BinaryCrossEntropy",
        "loss",
        course.Cost,
        {},
        "1e-7 inside the log, not declared",
        "cost disagrees with refnn (spec BCE-COST, BCE-CLIP)",
    ),
    Entry(
        NM,
        "Dense",
        "layer",
        numpyml.Dense,
        BF | {"conventions": {"weights": "in_out", "bias": "row"}},
    ),
    Entry(
        NM,
        "Dense",
        "layer",
        numpyml.DenseTransposedGrad,
        BF | {"conventions": {"weights": "in_out", "bias": "row"}},
        "dW transposed when W is square",
        "dW disagrees with refnn (spec DENSE-DW)",
    ),
    Entry(
        NM, "SoftmaxCrossEntropy", "loss", numpyml.Loss, BF | {"conventions": {"reduction": "sum"}}
    ),
    Entry(
        NM,
        "SoftmaxCrossEntropy",
        "loss",
        numpyml.Loss,
        BF,
        "summed over the examples, not declared",
        "declare conventions={'reduction': 'sum'}",
    ),
    Entry(NM, "Momentum", "optimizer", numpyml.momentum, {"conventions": {"momentum": "pytorch"}}),
    Entry(
        NM,
        "Momentum",
        "optimizer",
        numpyml.momentum,
        {},
        "PyTorch's momentum, not declared",
        "declare conventions={'momentum': 'pytorch'}",
    ),
    Entry(NM, "Adam", "optimizer", numpyml.adam),
    Entry(
        NM,
        "Adam",
        "optimizer",
        numpyml.adam_wrong_bias,
        {},
        "bias correction counts the steps of all parameters",
        "b (after step 1 of",
    ),
    Entry(TL, "Dense", "layer", torchlike.Linear, BF | {"conventions": {"bias": "flat"}}),
    Entry(
        TL,
        "Dense",
        "layer",
        torchlike.Linear,
        {"conventions": {"bias": "flat"}},
        "batch-first code, layout not given",
        "seems to expect layout='batch_first'",
    ),
    Entry(
        TL,
        "Dense",
        "layer",
        torchlike.LinearExtraKey,
        BF | {"conventions": {"bias": "flat"}},
        "an extra gradient key",
        "backward returned gradients for ['x']",
    ),
    Entry(
        TL,
        "Dense",
        "layer",
        torchlike.LinearComplex,
        BF | {"conventions": {"bias": "flat"}},
        "a complex Y",
        "Y is a complex array",
    ),
    Entry(
        TL,
        "Dense",
        "layer",
        torchlike.LinearHangs,
        BF | {"conventions": {"bias": "flat"}, "time_limit": 1.0},
        "backward hangs",
        "did not return within 1 s",
    ),
    Entry(TL, "Conv2D", "layer", torchlike.Conv2d, BF | PLAIN | {"conventions": {"bias": "flat"}}),
    Entry(TL, "LSTM", "layer", torchlike.LSTM, {"layout": "time_major"}),
    Entry(
        TL,
        "LSTM",
        "layer",
        torchlike.LSTMTanhOutput,
        {"layout": "time_major"},
        "output gate through tanh",
        "disagrees with refnn",
    ),
    Entry(
        TL,
        "LSTM",
        "layer",
        torchlike.LSTMZeroState,
        {"layout": "time_major", "conventions": {"state": "zero"}},
    ),
    Entry(
        TL,
        "LSTM",
        "layer",
        torchlike.LSTMZeroState,
        {"layout": "time_major"},
        "zero initial state, not declared",
        "declare conventions={'state': 'zero'}",
    ),
]
