"""A bad-input pass over the whole public API (NOTE-INPUTS).

Every entry below is an input a careful user would expect refnn to refuse. Each must raise
``ValueError`` or ``TypeError`` from refnn's own code (the last frame of the traceback is in the
refnn package, not inside numpy or the standard library), with a message; an input that is
accepted silently, or an error raised from the wrong place, fails its test. The per-module
tests check the wording of the messages; this pass checks that nothing slips through.
"""

from __future__ import annotations

import importlib.util
import inspect
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import refnn
from refnn import gradcheck
from refnn.registry import components
from refnn.verify.builders import example_input, example_maker

Thunk = Callable[[], object]


def call(fn: Callable[..., object], *args: object, **kwargs: object) -> Thunk:
    """``fn(*args, **kwargs)``, later: bad arguments are the point, so they are not type-checked."""
    return lambda: fn(*args, **kwargs)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _X(*shape: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(1).standard_normal(shape)


#: Values that are not a positive size, and sizes that cannot be allocated.
BAD_SIZES: list[object] = [None, "3", 3.0, -1, 0, True, 2**63, [3]]
BAD_DTYPES: list[object] = [np.float16, "float16", int, np.int64, "x", np.complex128]
BAD_BOOLS: list[object] = ["False", "no", 1, None, np.array([1, 0])]
BAD_RATES: list[object] = [None, "0.1", -1.0, 0.0, float("nan"), float("inf"), True, 1j]


def _arrays(*shape: int) -> dict[str, object]:
    """Inputs that are not a valid float array of ``shape`` (examples last)."""
    good = _X(*shape)
    nan = good.copy()
    nan.flat[0] = np.nan
    inf = good.copy()
    inf.flat[-1] = np.inf
    return {
        "None": None,
        "list": good.tolist(),
        "0-d": np.array(1.0),
        "extra axis": good[..., None],
        "no examples": good[..., :0],
        "NaN": nan,
        "inf": inf,
        "complex": good.astype(np.complex128),
        "bool": good > 0,
        "timedelta": np.zeros(shape, dtype="timedelta64[s]"),
        "datetime": np.zeros(shape, dtype="datetime64[s]"),
        "object": good.astype(object),
        "str": good.astype(str),
        "masked": np.ma.masked_array(good),
    }


def _layers() -> dict[str, tuple[Callable[[], Any], tuple[int, ...]]]:
    """Each registered layer (NOTE-REGISTRY) with a factory and a valid input shape: its first
    make-check example."""
    out: dict[str, tuple[Callable[[], Any], tuple[int, ...]]] = {}
    for name, cls in components("layer").items():
        example = cls.examples()[0]
        make = example_maker(cls, example)
        out[name] = (partial(make, _rng(), np.float64), example.shape)
    return out


def _constructors() -> Iterator[tuple[str, Thunk]]:
    rng = _rng()
    for v in BAD_SIZES:
        yield f"Dense(n_in={v!r})", call(refnn.Dense, v, 2, rng=rng)
        yield f"Conv2D(in_channels={v!r})", call(refnn.Conv2D, v, 2, 3, rng=rng)
        yield f"Conv2D(kernel_size={v!r})", call(refnn.Conv2D, 1, 2, v, rng=rng)
        yield f"LSTM(n_hidden={v!r})", call(refnn.LSTM, 2, v, rng=rng)
        if v == 2**63:  # a stride past the input is one window, a kernel past it is refused
            big = _X(1, 3, 3, 1)  # by forward, which knows the input (CONV-SIZE)
            yield "MaxPool2D(2**63).forward", call(_forward, partial(refnn.MaxPool2D, v), big)
            yield (
                "Conv2D(kernel 2**63).forward",
                call(_forward, partial(refnn.Conv2D, 1, 1, (1, v), rng=rng), big),
            )
            continue
        yield f"Conv2D(stride={v!r})", call(refnn.Conv2D, 1, 2, 1, stride=v, rng=rng)
        yield f"MaxPool2D({v!r})", call(refnn.MaxPool2D, v)
        if v is not None:  # None is the default stride (the kernel size)
            yield f"AvgPool2D(2, stride={v!r})", call(refnn.AvgPool2D, 2, stride=v)
    yield "Dense(10**6, 10**6)", lambda: refnn.Dense(10**6, 10**6, rng=rng)
    yield "Conv2D(10**4, 10**4, 100)", lambda: refnn.Conv2D(10**4, 10**4, 100, rng=rng)
    yield "LSTM(10**6, 10**6)", lambda: refnn.LSTM(10**6, 10**6, rng=rng)
    yield "mlp([10**6, 10**6, 1])", lambda: refnn.mlp([10**6, 10**6, 1], rng=rng)
    yield "Conv2D(padding=-1)", lambda: refnn.Conv2D(1, 1, 3, padding=-1, rng=rng)
    yield "Conv2D(kernel_size=b'ab')", call(refnn.Conv2D, 1, 1, b"ab", rng=rng)
    yield "Conv2D(kernel_size=(3,))", call(refnn.Conv2D, 1, 1, (3,), rng=rng)
    for name, (make, _) in _layers().items():
        for d in BAD_DTYPES:
            yield f"{name}(dtype={d!r})", call(_with_dtype, make, d)
    for v in [None, 0, np.random.RandomState(0), "rng"]:
        yield f"Dense(rng={v!r})", call(refnn.Dense, 2, 2, rng=v)
        yield f"Dropout(rng={v!r})", call(refnn.Dropout, 0.5, rng=v)
    for v in [-0.1, 1.0, 1.5, "0.5", None, float("nan"), True]:
        yield f"Dropout(p_drop={v!r})", call(refnn.Dropout, v, rng=rng)
    for v in ["zeros", None, 1]:
        yield f"Dense(init={v!r})", call(refnn.Dense, 2, 2, rng=rng, init=v)
    for v in [None, "1", float("nan")]:
        yield f"LSTM(forget_bias={v!r})", call(refnn.LSTM, 2, 2, rng=rng, forget_bias=v)
    losses = [
        refnn.BinaryCrossEntropy,
        refnn.BinaryCrossEntropyWithLogits,
        refnn.CrossEntropy,
        refnn.SoftmaxCrossEntropy,
    ]
    for loss in losses:
        for v in BAD_BOOLS:
            yield f"{loss.__name__}(soft_labels={v!r})", call(loss, soft_labels=v)
        for d in BAD_DTYPES:
            yield f"{loss.__name__}(dtype={d!r})", call(loss, dtype=d)
    for v in BAD_RATES:
        yield f"GradientDescent({v!r})", call(refnn.GradientDescent, v)
        yield f"Adam(lr={v!r})", call(refnn.Adam, v)
    for v in [1.0, -0.1, "0.9", None, float("nan")]:
        yield f"Momentum(beta={v!r})", call(refnn.Momentum, 0.1, v)
        yield f"Adam(beta1={v!r})", call(refnn.Adam, 0.1, beta1=v)
        yield f"Adam(beta2={v!r})", call(refnn.Adam, 0.1, beta2=v)
    for v in [0.0, -1e-8, "1e-8", None]:
        yield f"Adam(eps={v!r})", call(refnn.Adam, 0.1, eps=v)
    for opt in (refnn.RMSprop, refnn.AdamW, refnn.Nesterov):  # issue 20's optimizers
        for v in BAD_RATES:
            yield f"{opt.__name__}(lr={v!r})", call(opt, v)
    for v in [1.0, -0.1, "0.9", None, float("nan")]:
        yield f"RMSprop(beta={v!r})", call(refnn.RMSprop, 0.1, beta=v)
        yield f"Nesterov(momentum={v!r})", call(refnn.Nesterov, 0.1, momentum=v)
        yield (
            f"AdamW(weight_decay={v if v != 1.0 else -1.0!r})",
            call(refnn.AdamW, 0.1, weight_decay=-1.0 if v == 1.0 else v),
        )
    for v in [0.0, -1.0, "1", None, float("nan"), float("inf")]:
        yield f"MulticlassHinge(margin={v!r})", call(refnn.MulticlassHinge, v)
    for loss_cls in (refnn.MeanSquaredError, refnn.MulticlassHinge):
        for d in BAD_DTYPES:
            yield f"{loss_cls.__name__}(dtype={d!r})", call(loss_cls, dtype=d)
    for v in ["mean", None, 1]:
        yield (
            f"SoftmaxCrossEntropy(weight_norm={v!r})",
            call(refnn.SoftmaxCrossEntropy, weight_norm=v),
        )
    for v in [None, 5, "abc", [None], [refnn.Dense], [refnn.Dense(2, 2, rng=rng), "relu"]]:
        yield f"Sequential({v!r})", call(refnn.Sequential, v)
    for v in [None, [], [3], [3, 0], [3, "4"], [3, 4.0], [3, True], "34", 5]:
        yield f"mlp({v!r})", call(refnn.mlp, v, rng=rng)
    for v in ["softmax!", None, 1]:
        yield f"mlp(output={v!r})", call(refnn.mlp, [2, 1], rng=rng, output=v)


def _with_dtype(make: Callable[[], Any], dtype: object) -> object:
    """Rebuild the layer ``make`` builds with ``dtype`` (the factories fix everything else)."""
    layer = make()
    config = {**layer.config(), "dtype": dtype}
    seeded = "rng" in inspect.signature(type(layer)).parameters  # any registered layer
    extra = {"rng": _rng()} if seeded else {}
    return type(layer)(**config, **extra)


def _layer_calls() -> Iterator[tuple[str, Thunk]]:
    for name, (make, shape) in _layers().items():
        any_rank = components("layer")[name].takes.ndim is None  # declared by the class
        for what, X in _arrays(*shape).items():
            if what == "extra axis" and any_rank:
                continue  # any rank >= its min_ndim is valid there
            yield f"{name}.forward(X {what})", call(_forward, make, X)
        for v in BAD_BOOLS:
            yield f"{name}.forward(training={v!r})", call(_forward, make, _X(*shape), training=v)
        yield f"{name}.backward before forward", call(_backward, make, None, _X(*shape))
        for what, dA in _upstream(make, shape).items():
            yield f"{name}.backward(dA {what})", call(_backward, make, shape, dA)
    yield "Dense.forward(batch-first X)", lambda: refnn.Dense(3, 2, rng=_rng()).forward(_X(4, 3))
    yield (
        "Conv2D.forward(N x C x H x W)",
        lambda: refnn.Conv2D(3, 2, 3, rng=_rng()).forward(_X(8, 3, 5, 5)),
    )
    yield "Softmax.forward(no classes)", lambda: refnn.Softmax().forward(np.zeros((0, 3)))
    yield "LastStep.forward(T = 0)", lambda: refnn.LastStep().forward(np.zeros((3, 0, 2)))
    yield "LSTM.forward(T = 0)", lambda: refnn.LSTM(3, 2, rng=_rng()).forward(np.zeros((3, 0, 2)))
    embedding = partial(refnn.Embedding, 3, 2, rng=_rng())
    for what, X in {"index 3 of 3 tokens": [[0, 3]], "index -1": [[-1, 0]]}.items():
        yield f"Embedding.forward({what})", call(_forward, embedding, np.array(X))
    yield "Embedding.forward(integral floats)", call(_forward, embedding, np.ones((2, 2)))
    yield (
        "Dropout.freeze_mask(int mask)",
        lambda: refnn.Dropout(0.5, rng=_rng()).freeze_mask(np.ones((3, 4), dtype=int)),
    )


def _upstream(make: Callable[[], Any], shape: tuple[int, ...]) -> dict[str, object]:
    layer = make()
    out_shape = layer.forward(example_input(layer, "normal", shape, 1)).shape
    good = _X(*out_shape)
    nan = good.copy()
    nan.flat[0] = np.nan
    return {
        "None": None,
        "list": good.tolist(),
        "wrong shape": good[..., :-1] if good.shape[-1] > 1 else good[..., None],
        "NaN": nan,
        "int": np.ones(out_shape, dtype=int),
        "complex": good.astype(np.complex128),
    }


def _forward(make: Callable[[], Any], X: object, **kwargs: object) -> object:
    return make().forward(X, **kwargs)


def _backward(make: Callable[[], Any], shape: tuple[int, ...] | None, dA: object) -> object:
    """backward(dA) after a forward of a valid input of ``shape`` (none when shape is None)."""
    layer = make()
    if shape is not None:
        layer.forward(example_input(layer, "normal", shape, 1))  # _X(*shape), or indices
    return layer.backward(dA)


def _loss_calls() -> Iterator[tuple[str, Thunk]]:
    P = np.full((2, 4), 0.5)
    Y = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]])
    bad_Y = {
        "None": None,
        "wrong shape": Y[:, :3],
        "NaN": np.where(Y == 1, np.nan, 0.0),
        "not 0/1": Y * 0.5,
        "bool": Y > 0,
        "no examples": Y[:, :0],
    }
    for loss in [refnn.BinaryCrossEntropy, refnn.CrossEntropy]:
        for what, y in bad_Y.items():
            yield f"{loss.__name__}.forward(P, Y {what})", call(_loss_forward, loss, P, y)
        for what, A in _arrays(2, 4).items():
            yield f"{loss.__name__}.forward(A {what})", call(_loss_forward, loss, A, Y)
        yield f"{loss.__name__}.forward(A > 1)", call(_loss_forward, loss, P * 3, Y)
        yield f"{loss.__name__}.backward before forward", call(_loss_backward, loss)
    yield (
        "CrossEntropy.forward(columns summing to 0.3)",
        lambda: refnn.CrossEntropy().forward(np.full((2, 4), 0.15), Y),
    )
    yield (
        "SoftmaxCrossEntropy(no classes)",
        lambda: refnn.SoftmaxCrossEntropy().forward(np.zeros((0, 3)), np.zeros((0, 3))),
    )
    yield (
        "CrossEntropy(one example, two hot)",
        lambda: refnn.CrossEntropy().forward(np.full((2, 1), 0.5), np.ones((2, 1))),
    )
    for what, A in _arrays(2, 4).items():  # issue 20's losses: real targets, hinge, weights
        yield (
            f"MeanSquaredError.forward(A {what})",
            call(_loss_forward, refnn.MeanSquaredError, A, Y),
        )
        yield f"MulticlassHinge.forward(A {what})", call(_loss_forward, refnn.MulticlassHinge, A, Y)
    for what, y_bad in _arrays(2, 4).items():
        if what != "extra axis":
            yield (
                f"MeanSquaredError.forward(Y {what})",
                call(_loss_forward, refnn.MeanSquaredError, P, y_bad),
            )
    yield "MulticlassHinge.forward(soft Y)", call(_loss_forward, refnn.MulticlassHinge, P, Y * 0.5)
    for what, w in {**_arrays(4), "negative": -np.ones(4), "m - 1": np.ones(3)}.items():
        if what == "None":
            continue  # weights=None: no weights
        for loss_cls in (refnn.SoftmaxCrossEntropy, refnn.BinaryCrossEntropyWithLogits):
            yield (
                f"{loss_cls.__name__}.forward(weights {what})",
                call(lambda c, w_: c().forward(P, Y, weights=w_), loss_cls, w),
            )
    yield (
        "MeanSquaredError.forward(weights=)",
        call(lambda: refnn.MeanSquaredError().forward(P, Y, weights=np.ones(4))),
    )


def _loss_forward(loss: Callable[[], Any], A: object, Y: object) -> object:
    return loss().forward(A, Y)


def _loss_backward(loss: Callable[[], Any]) -> object:
    return loss().backward()


def _training_calls(tmp: Path) -> Iterator[tuple[str, Thunk]]:
    v: object
    X, Y = _X(2, 6), (np.arange(6)[None, :] % 2).astype(float)

    def model() -> refnn.Sequential:
        return refnn.mlp([2, 3, 1], rng=_rng())

    def fit(**kw: Any) -> object:
        args = {"epochs": 2, **kw}
        return refnn.fit(
            model(), refnn.BinaryCrossEntropy(), refnn.GradientDescent(0.1), X, Y, **args
        )

    for v in [None, 0, -1, 1.5, True, "2"]:
        yield f"fit(epochs={v!r})", call(fit, epochs=v)
    for v in [0, -1, 1.5, True, "2"]:  # batch_size > m is documented as full batch (TRAIN-BATCHES)
        yield f"fit(batch_size={v!r})", call(fit, batch_size=v, rng=_rng())
    yield "fit(batch_size=2, rng=None)", call(fit, batch_size=2)
    for v in [-0.1, float("nan"), "0.1", None, True]:
        yield f"fit(l2={v!r})", call(fit, l2=v)
    for v in ["print", 5]:
        yield f"fit(on_epoch={v!r})", call(fit, on_epoch=v)
    loss, opt = refnn.BinaryCrossEntropy(), refnn.GradientDescent(0.1)
    yield "fit(model=list)", call(refnn.fit, [refnn.ReLU()], loss, opt, X, Y, epochs=1)
    yield "fit(loss=class)", call(refnn.fit, model(), type(loss), opt, X, Y, epochs=1)
    yield "fit(optimizer=None)", call(refnn.fit, model(), loss, None, X, Y, epochs=1)
    yield "fit(Y of another m)", call(refnn.fit, model(), loss, opt, X, Y[:, :5], epochs=1)
    for v in [float("nan"), float("inf"), "0.5", None]:
        yield f"predict(threshold={v!r})", call(refnn.predict, model(), X, threshold=v)
    yield "GradientDescent.step(None)", call(refnn.GradientDescent(0.1).step, None)
    yield "Adam.step(list)", call(refnn.Adam(0.1).step, [1, 2])
    saved = tmp / "ok.npz"
    refnn.save(model(), saved)
    paths: list[object] = ["", b"model.npz", str(tmp) + "/", None, 5, str(tmp / "missing" / "m")]
    for v in paths:
        yield f"save(path={v!r})", call(refnn.save, model(), v)
    yield "save(model=list)", call(refnn.save, [refnn.ReLU()], tmp / "x.npz")
    nan_model = model()
    nan_model.layers[0].params["W"][0, 0] = np.nan
    yield "save(NaN weights)", call(refnn.save, nan_model, tmp / "nan.npz")
    junk = tmp / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    names: list[object] = [None, 5, str(tmp), str(tmp / "absent.npz"), str(junk), ""]
    for v in names:
        yield f"load({v!r})", call(refnn.load, v)


def _checker_calls() -> Iterator[tuple[str, Thunk]]:
    x = {"x": _X(4)}

    def f(x: Any) -> float:
        return float(np.sum(x**2))

    def grad(x: Any) -> list[Any]:
        return [2 * x]

    def identity(a: Any) -> Any:
        return a

    contract = gradcheck.check_backward_contract

    for v in ["a", 1j, -1.0, float("nan"), np.array([1e-5])]:
        yield f"check_grad(rtol={v!r})", call(gradcheck.check_grad, f, grad, x, rtol=v)
        yield f"check_grad(atol={v!r})", call(gradcheck.check_grad, f, grad, x, atol=v)
    for v in [-1, 1.5, "0", None]:
        yield f"check_grad(seed={v!r})", call(gradcheck.check_grad, f, grad, x, seed=v)
        yield f"taylor_test(seed={v!r})", call(gradcheck.taylor_test, f, grad, x, seed=v)
        yield f"check_backward_contract(seed={v!r})", call(contract, identity, (3,), seed=v)
    check = gradcheck.check_grad
    yield "check_grad(grad=None)", call(check, f, None, x)
    yield "check_grad(f=None)", call(check, None, grad, x)
    yield "check_grad(f returns True)", call(check, lambda x: True, grad, x)
    yield "check_grad(f returns an array)", call(check, identity, grad, x)
    yield "check_grad(inputs=None)", call(check, f, grad, None)
    yield "check_grad(inputs list)", call(check, f, grad, {"x": [1.0, 2.0]})
    yield "check_grad(complex input)", call(check, f, grad, {"x": _X(3).astype(complex)})
    yield "check_grad(wrt unknown)", call(check, f, grad, x, wrt=["y"])
    yield "check_grad(mode='slow')", call(check, f, grad, x, mode="slow")
    yield "check_grad(allow_float32='yes')", call(check, f, grad, x, allow_float32="yes")
    yield "check_backward_contract(b, 5)", call(contract, identity, 5)
    for shape in [(2.5,), (-1,), ("2",), (True,)]:
        yield f"check_backward_contract(dY_shape={shape!r})", call(contract, identity, shape)
    yield (
        "check_backward_contract(inputs_to_watch=[x])",
        call(contract, identity, (3,), inputs_to_watch=[_X(3)]),
    )


def _corpus(tmp: Path) -> dict[str, Thunk]:
    entries = [
        *_constructors(),
        *_layer_calls(),
        *_loss_calls(),
        *_training_calls(tmp),
        *_checker_calls(),
    ]
    corpus = dict(entries)
    assert len(corpus) == len(entries), "duplicate labels"
    return corpus


def expected(label: str) -> tuple[type[Exception], ...]:
    """The right errors: a state error for backward-before-forward, an OSError for a path the
    file system refuses, else ValueError/TypeError."""
    if label.endswith("before forward"):
        return (RuntimeError,)
    if label.startswith(("save(path=", "load(")):
        return (ValueError, TypeError, OSError)
    return (ValueError, TypeError)


def raised_in_refnn(err: BaseException) -> bool:
    """Whether the last Python frame of ``err``'s traceback runs code of the refnn package.

    Decided by the frame's module (its ``__name__`` is ``refnn`` or ``refnn.*``), never by its
    file's path: a checkout is itself a folder named ``refnn``, so every test file's path
    contains ``/refnn/``.
    """
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(module, str) and (module == "refnn" or module.startswith("refnn."))


def outcome(thunk: Thunk, right: tuple[type[Exception], ...] = (ValueError, TypeError)) -> str:
    """What a bad input gave: "clean", an error from the wrong place, or silent acceptance."""
    try:
        thunk()
    except right as err:
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = Path(frame.filename).as_posix()
        if raised_in_refnn(err) and len(str(err)) >= 10:
            return "clean"
        return f"wrong place: {type(err).__name__} at {where}:{frame.lineno}: {err}"
    except Exception as err:
        return f"wrong place: {type(err).__name__}: {err}"
    return "silent acceptance"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Thunk]:
    return _corpus(tmp_path_factory.mktemp("bad-inputs"))


def test_bad_input_pass(corpus: dict[str, Thunk], capsys: pytest.CaptureFixture[str]) -> None:
    """Every bad input raises a clean ValueError/TypeError from refnn itself."""
    results = {label: outcome(thunk, expected(label)) for label, thunk in corpus.items()}
    bad = {label: r for label, r in results.items() if r != "clean"}
    wrong = sum(r.startswith("wrong place") for r in bad.values())
    silent = sum(r == "silent acceptance" for r in bad.values())
    with capsys.disabled():
        print(
            f"\n[bad inputs] tried {len(results)}, clean errors {len(results) - len(bad)}, "
            f"errors from the wrong place {wrong}, silent acceptances {silent}"
        )
    assert not bad, "\n".join(f"{label}: {r}" for label, r in sorted(bad.items()))


def test_the_classifier_bites() -> None:
    """The pass tells a clean refusal from numpy's error and from silent acceptance."""

    def numpy_error() -> object:
        return np.zeros(3).reshape(2, 2)

    def refnn_error() -> object:
        return refnn.Dense(0, 2, rng=_rng())

    assert outcome(refnn_error) == "clean"
    assert outcome(numpy_error).startswith("wrong place: ValueError at")
    assert outcome(lambda: None) == "silent acceptance"
    assert outcome(call(dict.__getitem__, {}, "k")).startswith("wrong place: KeyError")


def test_the_classifier_goes_by_module_not_by_path(tmp_path: Path) -> None:
    """An error raised by a file of a checkout folder named ``refnn`` (the folder ``git clone``
    creates) is not refnn's: the classifier reads the frame's module, not its path."""
    folder = tmp_path / "refnn" / "tests"
    folder.mkdir(parents=True)
    source = folder / "user_code.py"
    source.write_text(
        "def refuse():\n    raise ValueError('refused by code outside the package')\n",
        encoding="utf-8",
    )
    spec = importlib.util.spec_from_file_location("user_code_in_a_refnn_folder", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "/refnn/" in Path(module.__file__ or "").as_posix()
    result = outcome(module.refuse)
    assert result.startswith("wrong place: ValueError at"), result
    assert "/refnn/tests/user_code.py" in result
    # the same refusal raised from refnn's own code is clean, wherever the checkout lives
    assert outcome(call(refnn.Dense, 0, 2, rng=_rng())) == "clean"
