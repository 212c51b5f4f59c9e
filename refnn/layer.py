"""The layer base class: it owns the contract every layer keeps (NOTE-CONTRACT).

A layer holds ``params`` (name -> the layer's own array; writing into one changes the layer),
``grads`` (the same keys, filled by ``backward`` with dθ = ∂J/∂θ, NOTE-COST), ``buffers``
(state that is not a parameter: running statistics; saved by io, never touched by optimizers,
L2 or make check) and ``input_grads`` (∂J/∂ each extra input ``forward`` took by name, such as
an LSTM's initial state h0, c0).

``Layer.forward`` and ``Layer.backward`` are the one place that validates the input (from the
class's declared :class:`Input`), checks ``training``, runs the math, refuses a non-finite
result once (one convention: :class:`FloatRangeError`, which ``fit`` turns into a divergence),
keeps the cache, refuses a stale or foreign cache, and checks the upstream gradient. A layer
class supplies its math (``_forward``, ``_backward``), what it takes (``takes``,
``extra_inputs``), its parameter and buffer shapes as functions of its config, the spec IDs of
each quantity it computes (``specs``) and the configurations ``make check`` verifies it in
(``examples``). It registers itself with :func:`refnn.registry.register`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from refnn._validate import (
    FloatRangeError,
    as_bool,
    as_input,
    refuse_nonfinite,
    resolve_dtype,
    to_dtype,
)
from refnn.kitspace import LayerSpace
from refnn.types import DTypeLike, FloatArray

CacheT = TypeVar("CacheT")

#: Arrays up to this many elements are fingerprinted whole; larger ones by a checksum of every
#: element's bits plus the bytes of this many evenly spaced elements.
FINGERPRINT_SAMPLES = 4096


def fingerprint(a: npt.NDArray[Any]) -> bytes:
    """A fingerprint of an array's contents (NOTE-STALE).

    The bytes of every element for arrays of up to ``FINGERPRINT_SAMPLES`` elements. For larger
    ones: the sum, modulo 2^64, of every element's bit pattern read as an unsigned integer, and
    the bytes of ``FINGERPRINT_SAMPLES`` evenly spaced elements (first and last included). Any
    change to a single element changes the sum, so an optimizer step, a new batch written into
    a reused buffer, or ``X[i] = v`` is always seen; a change is missed only if it touches no
    sampled element and its bit-pattern differences cancel modulo 2^64 (a permutation of values
    among unsampled elements is the plain case). One pass over the array, no copy but the
    sample.
    """
    if a.size <= FINGERPRINT_SAMPLES:
        return a.tobytes()
    positions = np.linspace(0, a.size - 1, FINGERPRINT_SAMPLES).astype(np.intp)
    flat = np.ascontiguousarray(a).reshape(-1)
    bits = (
        flat.view(np.dtype(f"u{flat.dtype.itemsize}"))
        if flat.dtype.itemsize in (1, 2, 4, 8)
        else None
    )
    total = b"" if bits is None else np.sum(bits, dtype=np.uint64).tobytes()
    return total + bytes(a.flat[positions].tobytes())


Watched = list[tuple[str, npt.NDArray[Any], bytes]]


def watch(**arrays: npt.NDArray[Any]) -> Watched:
    """Fingerprint ``arrays`` (name -> array held by reference) to see later writes (NOTE-STALE)."""
    return [(name, a, fingerprint(a)) for name, a in arrays.items()]


def check_unchanged(owner: str, watched: Watched) -> None:
    """Raise RuntimeError naming the first watched array changed since `watch` (NOTE-STALE)."""
    for name, a, before in watched:
        if fingerprint(a) != before:
            raise RuntimeError(
                f"{owner}.backward(): {name} was modified after forward(); "
                "refnn keeps references, not copies, of what forward() used: call forward() "
                "again after changing it"
            )


#: Appended to the error for a non-finite upstream gradient.
DIVERGED = " (an upstream layer diverged?)"


@dataclass(frozen=True)
class Parameter:
    """One trainable array with its gradient, as an optimizer sees it.

    ``name`` (``"0.W"``: the layer's position in the model, then the key) is for messages and
    reports; optimizer state is keyed by the array itself.
    """

    name: str
    value: FloatArray
    grad: FloatArray


@dataclass(frozen=True)
class Input:
    """What a layer's ``forward`` takes as one input array (NOTE-AXES).

    ``ndim`` (or at least ``min_ndim``) axes, examples last; ``leading`` names the layer
    attributes that give the sizes of the leading axes (``("n_in",)`` for Dense);
    ``layout`` names the axes for messages (``"n_in x m"``); ``nonempty`` maps an axis that
    must hold at least one entry to what that means (``{1: "hold at least one time step
    (T >= 1)"}``).
    """

    ndim: int | None = None
    min_ndim: int = 1
    leading: tuple[str, ...] = ()
    layout: str = ""
    name: str = "X"
    nonempty: Mapping[int, str] = field(default_factory=dict)


#: How ``make check`` draws an example's input: see ``refnn.verify.builders.random_input``.
InputKind = Literal["normal", "zeros", "distinct", "ties"]
#: How ``make check`` draws a loss example's labels: see ``refnn.verify.builders.labels``.
LabelKind = Literal["binary", "one-hot", "soft"]


@dataclass(frozen=True)
class Example:
    """One configuration a component is verified in by ``make check`` (and the test tables).

    The layer is ``cls(*args, **kwargs)`` (plus ``rng=`` if its constructor takes one, and
    ``dtype=float32`` when ``float32``); its input has ``shape`` and is drawn as ``x`` with
    ``scale`` from ``seed``; ``inputs`` gives the shapes of extra forward inputs to draw and
    differentiate (an LSTM's h0, c0). ``specs``: the IDs the case verifies (default: all of the
    class's). ``after_other_batch``: run one batch with one more example first.
    """

    label: str
    shape: tuple[int, ...]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    x: InputKind = "normal"
    scale: float = 1.0
    training: bool = True
    inputs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    after_other_batch: bool = False
    float32: bool = False
    specs: tuple[str, ...] = ()
    labels: LabelKind = "binary"


@dataclass(frozen=True)
class _Held:
    """The forward cache with what it was made from: the watched arrays, the output's shape and
    the thread whose forward made it (NOTE-THREADS)."""

    cache: Any
    watched: Watched
    out_shape: tuple[int, ...]
    thread: int


#: Held for the few lines that swap a layer's cache or publish its gradients (NOTE-THREADS).
_LOCK = threading.Lock()


class Cached:
    """What layers and losses share: the last forward's cache, with the arrays it holds by
    reference fingerprinted (NOTE-STALE) and the thread that made it (NOTE-THREADS)."""

    _held: _Held | None = None

    def _hold(self, cache: object, watched: Watched, out_shape: tuple[int, ...]) -> None:
        """Keep ``cache`` as this thread's last forward's."""
        with _LOCK:
            self._held = _Held(cache, watched, out_shape, threading.get_ident())

    def _take(self) -> _Held:
        """The last forward's cache for a backward, refusing a missing one, one made in another
        thread, or one whose watched arrays changed since (RuntimeError naming what)."""
        held, name = self._held, type(self).__name__
        if held is None:
            raise RuntimeError(f"{name}.backward() called before forward()")
        if held.thread != threading.get_ident():
            raise RuntimeError(
                self._foreign("the cache backward() needs was made by forward() in another thread")
            )
        check_unchanged(name, held.watched)
        return held

    def _publish(self, held: _Held, **results: dict[str, FloatArray]) -> None:
        """Set ``results`` as attributes if no other forward ran since ``held`` was taken."""
        with _LOCK:
            if self._held is not held:
                raise RuntimeError(
                    self._foreign("another forward() ran while this backward() was running")
                )
            for key, value in results.items():
                setattr(self, key, value)

    def _foreign(self, what: str) -> str:
        return (
            f"{type(self).__name__}.backward(): {what}; one layer holds one forward's cache, "
            "so a layer shared between threads cannot pair each thread's backward() with its "
            "forward(): give each thread its own (copy.deepcopy), or share it for inference "
            "only"
        )


class Layer(Cached, ABC, Generic[CacheT]):
    """Base class of every refnn layer; ``CacheT`` is what ``_forward`` keeps for ``_backward``.

    Parameters
    ----------
    dtype : float64 or float32
        The dtype the layer computes in, end to end (NOTE-DTYPE).

    Notes
    -----
    Spec: NOTE-CONTRACT, NOTE-STALE, NOTE-THREADS
    """

    component_kind: ClassVar[str] = "layer"
    #: What ``forward`` takes.
    takes: ClassVar[Input] = Input()
    #: Extra inputs ``forward`` takes by name (optional; ∂J/∂ each in ``input_grads``).
    extra_inputs: ClassVar[Mapping[str, Input]] = {}
    #: Spec IDs of each quantity the layer computes: "Y", "dX", "dW", ..., "dh0".
    specs: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: What the cache holds by reference that the caller can still write to: "X", "Y" or the
    #: name of an extra input; watched, with the parameters, between forward and backward.
    keeps: ClassVar[tuple[str, ...]] = ()
    #: Whether the output can overflow (False: it is bounded by finite inputs).
    can_overflow: ClassVar[bool] = True
    #: Whether a gradient can overflow from a finite dA (False: dX copies, averages or scales
    #: dA by factors of at most 1, as a pool, a reshape or an element-wise activation does).
    grads_can_overflow: ClassVar[bool] = True
    #: The output is non-finite whenever the input is: X's finiteness is read off Y.
    output_reveals_nonfinite_input: ClassVar[bool] = False
    #: A gradient is non-finite whenever dA is (db sums it): dA's finiteness is read off them.
    grads_reveal_nonfinite_upstream: ClassVar[bool] = False
    #: What the kit (refnn.testing) draws for this layer (TEST-SPACE); None: not in the kit.
    kit: ClassVar[LayerSpace | None] = None

    def __init__(self, *, dtype: DTypeLike = np.float64) -> None:
        self.dtype: np.dtype[np.floating[Any]] = resolve_dtype(dtype)
        self.params: dict[str, FloatArray] = {}
        self.grads: dict[str, FloatArray] = {}
        self.buffers: dict[str, FloatArray] = {}
        self.input_grads: dict[str, FloatArray] = {}
        self._held: _Held | None = None

    # -- what a layer class supplies -------------------------------------------------------

    @abstractmethod
    def _forward(
        self, X: FloatArray, training: bool, **inputs: FloatArray
    ) -> tuple[FloatArray, CacheT]:
        """The math: (Y, cache) from the validated X (and the extra inputs given)."""

    @abstractmethod
    def _backward(
        self, dY: FloatArray, cache: CacheT
    ) -> tuple[FloatArray, dict[str, FloatArray], dict[str, FloatArray]]:
        """The math: (dX, parameter gradients, extra-input gradients) from the validated dY."""

    @classmethod
    def param_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter a config (``config()``) implies; none by default."""
        return {}

    @classmethod
    def buffer_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        """The shape of each buffer a config implies; none by default."""
        return {}

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """The configurations ``make check`` verifies this layer in; none by default."""
        return ()

    @classmethod
    def torch_forward(cls, torch: Any, config: Mapping[str, Any], X: Any, **arrays: Any) -> Any:
        """PyTorch's equivalent of the forward, for the kit's ``torch_impl`` (TEST-TORCH).

        ``torch`` is the torch module (imported by the kit, never by refnn); ``X`` and
        ``arrays`` (the parameters and extra inputs, under refnn's names) are tensors in
        refnn's layout and shapes, so autograd returns their gradients under refnn's names.
        Returns Y in refnn's layout. Raises NotImplementedError where PyTorch has none.
        """
        raise NotImplementedError(f"{cls.__name__} declares no PyTorch equivalent")

    # -- the contract ----------------------------------------------------------------------

    def forward(
        self, X: FloatArray, *, training: bool = True, **inputs: FloatArray | None
    ) -> FloatArray:
        """Compute the layer's output and keep what ``backward`` needs.

        Parameters
        ----------
        X : ndarray
            The input, of the layout the layer declares (``takes``), examples last.
        training : bool
            Matters only to layers that behave differently at inference (dropout, batch norm).
        **inputs : ndarray, optional
            The extra inputs the layer declares (``extra_inputs``), by name.
        """
        training = as_bool(training, "training")
        X = self._input(X)
        given = self._extra(inputs, X.shape[-1])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            Y, cache = self._forward(X, training, **given)
        reads_y = self.can_overflow or self.output_reveals_nonfinite_input  # X's test, if it is
        if reads_y and not np.isfinite(Y).all():
            if self.output_reveals_nonfinite_input:
                refuse_nonfinite(X, self.takes.name)
            self._overflow("forward", "Y", Y.dtype)
        kept = {"X": X, "output": Y, **given}  # "Y" is watched as the caller knows it
        names = ("output" if k == "Y" else k for k in self.keeps)
        watched = watch(**{k: kept[k] for k in names if k in kept}, **self.params)
        self._hold(cache, watched, Y.shape)
        self.input_grads = {}  # those of the last backward belong to another forward's inputs
        return Y

    def backward(self, dA: FloatArray) -> FloatArray:
        """Given dA = ∂J/∂(output), fill ``grads`` and ``input_grads`` and return dX = ∂J/∂X."""
        held = self._take()
        dY = self._check_upstream(dA, held.out_shape)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            dX, grads, input_grads = self._backward(dY, held.cache)
        results = {"dX": dX, **{"d" + k: g for k, g in grads.items()}}
        results.update({"d" + k: g for k, g in input_grads.items()})
        checked = results if self.grads_can_overflow or self.grads_reveal_nonfinite_upstream else {}
        for key, g in checked.items():
            if not np.isfinite(g).all():
                if self.grads_reveal_nonfinite_upstream:
                    refuse_nonfinite(dY, "dA", DIVERGED)
                self._overflow("backward", key, g.dtype)
        self._publish(held, grads=grads, input_grads=input_grads)
        return dX

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {"dtype": self.dtype.name}

    def parameters(self, prefix: str = "") -> Iterator[Parameter]:
        """Yield each parameter with its gradient (after ``backward``)."""
        for key, value in self.params.items():
            if key not in self.grads:
                raise RuntimeError(
                    f"{type(self).__name__}: no gradient for {key!r}; call backward() first"
                )
            yield Parameter(prefix + key, value, self.grads[key])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # -- helpers for the contract and for layer classes ------------------------------------

    def _reclaim(self) -> CacheT | None:
        """Drop the held cache and return it, if this thread's forward made it (else None):
        a forward may write its new cache into the old one's arrays (NOTE-THREADS)."""
        with _LOCK:
            held = self._held
            if held is None or held.thread != threading.get_ident():
                return None
            self._held = None
        out: CacheT = held.cache
        return out

    def _input(self, X: object) -> npt.NDArray[Any]:
        """X validated for ``_forward``: against ``takes``, in the layer's dtype. The one hook
        for a layer whose input is not real-valued (an Embedding's integer token indices): it
        overrides this to validate and return its own kind of array."""
        return self._validated(X, self.takes, finite=not self.output_reveals_nonfinite_input)

    def _validated(self, X: object, spec: Input, *, finite: bool = True) -> FloatArray:
        """X checked against ``spec`` and returned C-contiguous in the layer's dtype."""
        leading = tuple(getattr(self, attr) for attr in spec.leading)
        out = as_input(
            X,
            spec.name,
            ndim=spec.ndim,
            min_ndim=spec.min_ndim,
            dtype=self.dtype,
            leading=leading,
            layout=spec.layout,
            finite=finite,
        )
        for axis, what in spec.nonempty.items():
            if out.shape[axis] == 0:
                raise ValueError(f"{spec.name} must {what}, got shape {out.shape}")
        # one memory order: the same values give the same bits whatever order they came in
        return np.ascontiguousarray(out)

    def _extra(self, inputs: Mapping[str, object], m: int) -> dict[str, FloatArray]:
        """The extra inputs given (not None), each validated; an undeclared name is refused."""
        unknown = set(inputs) - set(self.extra_inputs)
        if unknown:
            takes = ", ".join(self.extra_inputs) or "none"
            raise TypeError(
                f"{type(self).__name__}.forward() got unexpected inputs {sorted(unknown)} "
                f"(it takes: {takes})"
            )
        out: dict[str, FloatArray] = {}
        for key, value in inputs.items():
            if value is None:
                continue
            spec = self.extra_inputs[key]
            a = self._validated(value, spec)
            expected = (*(getattr(self, attr) for attr in spec.leading), m)
            if a.shape != expected:
                raise ValueError(
                    f"{key} must have shape ({spec.layout.replace(' x ', ', ')}) = {expected} "
                    f"as X, got {a.shape}"
                )
            out[key] = a
        return out

    def _check_upstream(self, dA: object, expected: tuple[int, ...]) -> FloatArray:
        """The upstream gradient's type, shape, dtype and finiteness (the last read off the
        gradients instead where the class says they reveal it)."""
        if not isinstance(dA, np.ndarray):
            raise TypeError(f"dA must be a numpy array, got {type(dA).__name__}")
        if dA.shape != expected:
            raise ValueError(f"dA must have the output's shape {expected}, got {dA.shape}")
        if dA.dtype.kind != "f":
            raise TypeError(f"dA must be a float array, got dtype {dA.dtype}")
        if not self.grads_reveal_nonfinite_upstream:
            refuse_nonfinite(dA, "dA", DIVERGED)
        return to_dtype(dA, self.dtype, "dA")

    def _overflow(self, step: str, what: str, dtype: np.dtype[Any]) -> None:
        limit = float(np.finfo(dtype).max)
        ids = ", ".join(self.specs.get(what, ()))
        raise FloatRangeError(
            f"{type(self).__name__}.{step}: {what}{f' ({ids})' if ids else ''} overflows "
            f"{dtype} (|x| <= {limit:.4g}): "
            "the inputs or parameters are too large for it to be represented; scale them down"
        )
