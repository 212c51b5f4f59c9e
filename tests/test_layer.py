"""The layer contract owned by refnn.layer (NOTE-CONTRACT, NOTE-STALE, NOTE-THREADS) and the
registry every component is found in (NOTE-REGISTRY), tested on every registered layer."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refnn
from refnn import Layer, Sequential
from refnn._validate import FloatRangeError
from refnn.gradcheck import check_grad
from refnn.layer import FINGERPRINT_SAMPLES, Example, Input, fingerprint
from refnn.losses import BinaryCrossEntropyWithLogits
from refnn.optim import GradientDescent
from refnn.registry import component, components, register
from refnn.train import TrainingDivergedError, fit
from refnn.types import FloatArray
from refnn.verify.builders import example_input, example_maker
from refnn.verify.problems import layer_problem

LAYERS = components("layer")


def _build(cls: type[Layer[Any]], seed: int = 0) -> tuple[Layer[Any], FloatArray]:
    """A layer from its first make-check example, with a non-zero bias, and an input for it."""
    example = cls.examples()[0]
    layer = example_maker(cls, example)(np.random.default_rng(seed), np.float64)
    for p in layer.params.values():
        p += 0.1 * np.random.default_rng(seed + 1).standard_normal(p.shape)
    if isinstance(layer, refnn.Dropout):
        layer.freeze_mask()  # one mask for every forward: results comparable across calls
    X = example_input(layer, "normal", example.shape, seed + 2)  # an Embedding's: indices
    return layer, X


def _pair(layer: Layer[Any], X: FloatArray, dA: FloatArray) -> list[FloatArray]:
    """Y, dX and every gradient of one forward/backward pair."""
    Y = layer.forward(X)
    dX = layer.backward(dA)
    return [Y, dX, *(g.copy() for g in layer.grads.values())]


# --- NOTE-THREADS -------------------------------------------------------------------------


@pytest.mark.spec("NOTE-THREADS")
@pytest.mark.parametrize("name", ["Dense", "Conv2D", "LSTM", "MaxPool2D"])
def test_a_layer_shared_by_interleaved_threads_refuses_instead_of_mixing_results(
    name: str,
) -> None:
    """Thread A runs forward; thread B runs forward; A's backward must not pair with B's cache.
    The interleaving is forced with events, so the test is deterministic."""
    layer, X = _build(LAYERS[name])
    Y = layer.forward(X)
    dA = np.ones_like(Y)
    a_done, b_done = threading.Event(), threading.Event()
    errors: dict[str, BaseException] = {}

    def thread_a() -> None:
        layer.forward(X)
        a_done.set()
        b_done.wait(10)
        try:
            layer.backward(dA)
        except RuntimeError as err:
            errors["a"] = err

    def thread_b() -> None:
        a_done.wait(10)
        layer.forward(2.0 * X)
        b_done.set()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert "a" in errors, "thread A's backward paired with thread B's forward silently"
    assert "made by forward() in another thread" in str(errors["a"])
    assert "give each thread its own" in str(errors["a"])


@pytest.mark.spec("NOTE-THREADS")
def test_a_forward_during_a_backward_in_another_thread_is_refused() -> None:
    """B's forward lands while A's backward runs: A must not publish gradients of a cache that
    is no longer the layer's (the caller would read B's gradients or A's as B's)."""
    cls = LAYERS["Dense"]

    class Slow(cls):  # type: ignore[valid-type, misc]
        started, proceed = threading.Event(), threading.Event()

        def _backward(self, dY: Any, cache: Any) -> Any:
            Slow.started.set()
            Slow.proceed.wait(10)
            return super()._backward(dY, cache)

    layer = Slow(3, 2, rng=np.random.default_rng(0))
    X = np.ones((3, 4))
    errors: list[BaseException] = []

    def thread_a() -> None:
        Y = layer.forward(X)
        try:
            layer.backward(np.ones_like(Y))
        except RuntimeError as err:
            errors.append(err)

    a = threading.Thread(target=thread_a)
    a.start()
    assert Slow.started.wait(10)
    layer.forward(2.0 * X)  # this thread's forward replaces the cache mid-backward
    Slow.proceed.set()
    a.join(20)
    assert errors and "another forward() ran while this backward() was running" in str(errors[0])
    assert layer.grads == {}  # nothing published


@pytest.mark.spec("NOTE-THREADS")
@pytest.mark.parametrize("name", ["Dense", "Conv2D", "LSTM"])
def test_one_layer_per_thread_and_shared_inference_match_single_threaded_bitwise(
    name: str,
) -> None:
    import copy

    layer, X = _build(LAYERS[name])
    dA = np.random.default_rng(5).standard_normal(layer.forward(X).shape)
    expected = _pair(copy.deepcopy(layer), X, dA)
    inference = layer.forward(X, training=False)
    results: list[list[FloatArray]] = []
    shared: list[FloatArray] = []

    def work() -> None:
        mine = copy.deepcopy(layer)
        for _ in range(5):
            results.append(_pair(mine, X, dA))
            shared.append(layer.forward(X, training=False))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 20 and len(shared) == 20
    for got in results:
        for a, b in zip(got, expected, strict=True):
            assert a.tobytes() == b.tobytes()
    for a in shared:
        assert a.tobytes() == inference.tobytes()


# --- NOTE-STALE ---------------------------------------------------------------------------


@pytest.mark.spec("NOTE-STALE")
@given(
    size=st.sampled_from([FINGERPRINT_SAMPLES + 1, 3 * FINGERPRINT_SAMPLES + 7, 50_000]),
    position=st.integers(0, 10**9),
    delta=st.sampled_from([1e-300, 5e-324, 1e-12, 1.0, -3.5]),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_any_single_element_change_to_a_large_array_is_seen(
    size: int, position: int, delta: float, dtype: Any
) -> None:
    a = np.linspace(-1.0, 1.0, size).astype(dtype)
    before = fingerprint(a)
    i = position % size
    old = a[i]
    a[i] = a[i] + dtype(delta) if a[i] + dtype(delta) != a[i] else np.nextafter(a[i], dtype(2))
    assert a[i] != old
    assert fingerprint(a) != before


@pytest.mark.spec("NOTE-STALE")
@pytest.mark.parametrize("name", ["Dense", "LSTM"])
def test_the_changes_people_make_to_large_arrays_are_refused(name: str) -> None:
    """An optimizer step on a large W, and a new batch written into a reused input buffer."""
    cls = LAYERS[name]
    args = (100, 60) if name == "Dense" else (40, 30)
    layer = cls(*args, rng=np.random.default_rng(0))
    shape = (100, 64) if name == "Dense" else (40, 3, 64)
    X = np.random.default_rng(1).standard_normal(shape)
    assert X.size > FINGERPRINT_SAMPLES and layer.params["W"].size > FINGERPRINT_SAMPLES
    Y = layer.forward(X)
    layer.params["W"] -= 1e-3 * np.random.default_rng(2).standard_normal(layer.params["W"].shape)
    with pytest.raises(RuntimeError, match="W was modified after forward"):
        layer.backward(np.ones_like(Y))
    Y = layer.forward(X)
    X[...] = np.random.default_rng(3).standard_normal(shape)  # the next batch, same buffer
    with pytest.raises(RuntimeError, match="X was modified after forward"):
        layer.backward(np.ones_like(Y))


@pytest.mark.spec("NOTE-STALE")
def test_what_the_fingerprint_does_not_see_a_swap_of_two_unsampled_elements() -> None:
    """The documented blind spot: a permutation among unsampled elements keeps both the bit sum
    and the sample. Dense then computes the gradient of the swapped X without noticing."""
    n = 4 * FINGERPRINT_SAMPLES
    a = np.arange(n, dtype=np.float64)
    positions = set(np.linspace(0, n - 1, FINGERPRINT_SAMPLES).astype(np.intp).tolist())
    i = next(k for k in range(1, n) if k not in positions and k + 1 not in positions)
    j = i + 1
    before = fingerprint(a)
    a[i], a[j] = a[j], a[i]
    assert fingerprint(a) == before


# --- NOTE-CONTRACT ------------------------------------------------------------------------


@pytest.mark.spec("NOTE-CONTRACT")
@pytest.mark.parametrize("name", list(LAYERS))
def test_inputs_in_any_memory_order_give_the_same_bits(name: str) -> None:
    """A Fortran-ordered or strided X holding the same values gives bit-identical Y and dX
    (AvgPool2D once differed in the last bit)."""
    layer, X = _build(LAYERS[name])
    dA = np.random.default_rng(9).standard_normal(layer.forward(X).shape)
    expected = _pair(layer, X, dA)
    padded = np.zeros((*X.shape[:-1], 2 * X.shape[-1]), dtype=X.dtype)
    padded[..., ::2] = X
    for other in (np.asfortranarray(X), padded[..., ::2]):
        assert not other.flags.c_contiguous or X.size == X.shape[-1]
        for a, b in zip(_pair(layer, other, dA), expected, strict=True):
            assert a.tobytes() == b.tobytes(), name


#: The layers whose gradients the contract tests for overflow (the others declare they cannot).
OVERFLOWING = [
    n for n, c in LAYERS.items() if c.grads_can_overflow or c.grads_reveal_nonfinite_upstream
]


@pytest.mark.spec("NOTE-CONTRACT")
@pytest.mark.parametrize("name", [n for n in LAYERS if n not in OVERFLOWING])
def test_a_layer_declaring_bounded_gradients_keeps_them_finite_at_the_top_of_the_range(
    name: str,
) -> None:
    """What ``grads_can_overflow = False`` claims: dA at the largest float gives a finite dX."""
    layer, X = _build(LAYERS[name])
    Y = layer.forward(X)
    big = np.finfo(Y.dtype).max * np.where(np.arange(Y.size).reshape(Y.shape) % 2, 1.0, -1.0)
    assert np.isfinite(layer.backward(big)).all()


@pytest.mark.spec("NOTE-CONTRACT")
@pytest.mark.parametrize("name", OVERFLOWING)
def test_every_layer_reports_an_overflow_as_a_divergence_in_fit(name: str) -> None:
    """The one convention: whichever layer's result overflows, it raises FloatRangeError (a
    FloatingPointError), which fit reports as TrainingDivergedError. The overflow is seeded in
    the layer's backward (its own math, scaled past the range), checked by the base class."""
    cls = LAYERS[name]

    class Exploding(cls):  # type: ignore[valid-type, misc]
        def _backward(self, dY: Any, cache: Any) -> Any:
            dX, grads, inputs = super()._backward(dY, cache)
            big = np.finfo(dX.dtype).max
            return dX + big * np.sign(dX + 0.5) * 2.0, grads, inputs

    layer, X = _build(cls)
    exploding = Exploding(*cls.examples()[0].args, **_ctor_kwargs(cls))
    for key, p in layer.params.items():
        exploding.params[key][...] = p
    Y = exploding.forward(X)
    with pytest.raises(FloatRangeError, match=r"Exploding.backward: dX \(.*\) overflows"):
        with np.errstate(over="ignore"):
            exploding.backward(np.ones_like(Y))
    labels = np.zeros(Y.shape)
    model = Sequential([exploding])
    with pytest.raises(TrainingDivergedError, match=r"diverged at epoch 1, batch 0 .*overflows"):
        fit(model, BinaryCrossEntropyWithLogits(), GradientDescent(0.1), X, labels, epochs=1)


def _ctor_kwargs(cls: type[Layer[Any]]) -> dict[str, Any]:
    example = cls.examples()[0]
    extra = {"rng": np.random.default_rng(0)} if "rng" in inspect.signature(cls).parameters else {}
    return {**example.kwargs, **extra}


@pytest.mark.spec("NOTE-CONTRACT")
def test_undeclared_inputs_and_misshapen_extra_inputs_are_refused_by_name() -> None:
    dense = refnn.Dense(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"Dense.forward\(\) got unexpected inputs \['h0'\] .*none"):
        dense.forward(np.ones((3, 4)), h0=np.ones((2, 4)))
    lstm = refnn.LSTM(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"h0 must have shape \(n_hidden, m\) = \(2, 5\) as X"):
        lstm.forward(np.ones((3, 4, 5)), h0=np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"c0 must be finite"):
        lstm.forward(np.ones((3, 4, 5)), c0=np.full((2, 5), np.nan))


# --- NOTE-REGISTRY ------------------------------------------------------------------------


class Scale(Layer[None]):
    """A user's own layer: Y = s X, registered like refnn's."""

    takes = Input(min_ndim=2, layout="n x m")
    specs = {"Y": ("USER-SCALE",), "dX": ("USER-SCALE",), "ds": ("USER-SCALE",)}

    def __init__(self, n: int, *, dtype: Any = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.n = n
        self.params = {"s": np.full((n, 1), 2.0, dtype=self.dtype)}

    @classmethod
    def param_shapes(cls, config: Any) -> dict[str, tuple[int, ...]]:
        return {"s": (config["n"], 1)}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("n=3 m=4", (3, 4), (3,)),)

    def _forward(self, X: FloatArray, training: bool, **inputs: FloatArray) -> Any:
        return self.params["s"] * X, X

    def _backward(self, dY: FloatArray, cache: Any) -> Any:
        return self.params["s"] * dY, {"s": (dY * cache).sum(axis=1, keepdims=True)}, {}

    def config(self) -> dict[str, Any]:
        return {"n": self.n, **super().config()}


@pytest.mark.spec("NOTE-REGISTRY")
def test_a_users_layer_registers_then_saves_loads_and_is_checked_like_refnns(
    tmp_path: Path,
) -> None:
    register(Scale)
    register(Scale)  # registering the same class again is harmless
    assert component("Scale", "layer") is Scale
    layer = Scale(3)
    layer.params["s"][...] = [[1.5], [-2.0], [0.25]]
    refnn.save(Sequential([layer]), tmp_path / "m.npz")  # no layers= needed once registered
    loaded = refnn.load(tmp_path / "m.npz").layers[0]
    assert isinstance(loaded, Scale) and loaded.params["s"].tobytes() == layer.params["s"].tobytes()
    problem = layer_problem(layer, np.random.default_rng(0).standard_normal((3, 4)))
    assert check_grad(problem.f, problem.grad, problem.inputs, wrt=problem.wrt).passed

    class Impostor(Scale):
        pass

    Impostor.__name__ = "Scale"
    with pytest.raises(ValueError, match="a component named 'Scale' is already registered"):
        register(Impostor)
    with pytest.raises(TypeError, match="only subclasses of refnn's Layer, Loss or Optimizer"):
        register(int)
    with pytest.raises(ValueError, match=r"unknown layer 'Nope'; registered: .*Dense"):
        component("Nope", "layer")


@pytest.mark.spec("NOTE-REGISTRY")
def test_every_component_is_exported_registered_and_declares_its_specs() -> None:
    exported = {
        name: obj
        for name, obj in vars(refnn).items()
        if isinstance(obj, type) and getattr(obj, "component_kind", None) and not name[0] == "_"
    }
    concrete = {n: c for n, c in exported.items() if n not in ("Layer", "Loss", "Optimizer")}
    registered = components()
    for name, cls in concrete.items():
        assert registered.get(name) is cls, f"{name} is exported but not registered"
    for name, cls in components("layer").items():
        declared = {i for ids in cls.specs.values() for i in ids}
        assert declared, f"{name} declares no spec IDs"
    for name, cls in components("loss").items():
        assert {"J", "dA"} <= set(cls.specs), name
