"""Optimizers (OPT-*): update rules applied to each parameter in place.

State (velocities, moments) is kept per parameter array, keyed by the array itself, so two
layers never share state, whatever their parameters are called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from refnn._validate import float_in
from refnn.kitspace import Choice, OptimizerSpace
from refnn.layer import Parameter
from refnn.registry import register
from refnn.types import FloatArray


class HasParameters(Protocol):
    """Anything that yields its parameters with their gradients (a Layer or a Sequential)."""

    def parameters(self) -> Iterable[Parameter]: ...


class Optimizer(ABC):
    """Base class: ``step(model)`` updates every parameter of ``model`` in place (never a
    layer's buffers)."""

    component_kind: ClassVar[str] = "optimizer"
    #: How the kit (refnn.testing) draws the hyper-parameters (TEST-SPACE).
    kit: ClassVar[OptimizerSpace | None] = None

    @classmethod
    def torch_optimizer(cls, torch: Any, config: Mapping[str, Any], tensors: Sequence[Any]) -> Any:
        """PyTorch's equivalent (a ``torch.optim`` optimizer over ``tensors``) with refnn's
        conventions mapped onto it, for the kit's ``torch_impl`` (TEST-TORCH); torch is passed
        in, never imported by refnn. Raises NotImplementedError where PyTorch has none."""
        raise NotImplementedError(f"{cls.__name__} declares no PyTorch equivalent")

    def __init__(self, lr: float) -> None:
        self.lr = float_in(lr, "lr", 0.0, np.inf, closed_high=False)
        if self.lr == 0.0:
            raise ValueError("lr must be > 0, got 0.0 (a step of size zero never learns)")
        self._state: dict[int, tuple[FloatArray, dict[str, Any]]] = {}

    def step(self, model: HasParameters) -> None:
        """Apply one update to every parameter of ``model`` from its current gradient.

        Every gradient is checked (an array of the parameter's shape, finite) before any
        parameter is changed.
        """
        if not callable(getattr(model, "parameters", None)):
            raise TypeError(
                "model must be a refnn Sequential or Layer (anything with parameters()), "
                f"got {type(model).__name__}"
            )
        params = list(model.parameters())
        for p in params:
            if not isinstance(p.grad, np.ndarray) or p.grad.shape != p.value.shape:
                got = p.grad.shape if isinstance(p.grad, np.ndarray) else type(p.grad).__name__
                raise ValueError(f"gradient of {p.name} must have shape {p.value.shape}, got {got}")
            if not np.all(np.isfinite(p.grad)):
                raise ValueError(f"gradient of {p.name} must be finite, got NaN or Inf")
        for p in params:
            self._update(p.value, p.grad, self._state_of(p.value))

    def _state_of(self, value: FloatArray) -> dict[str, Any]:
        # Keep a reference to the array itself: its id cannot be reused while we hold it.
        entry = self._state.get(id(value))
        if entry is None or entry[0] is not value:
            entry = (value, {})
            self._state[id(value)] = entry
        return entry[1]

    @abstractmethod
    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None: ...


@register
class GradientDescent(Optimizer):
    """Plain gradient descent.

    Notes
    -----
    Spec: OPT-GD

    θ := θ - α dθ.
    """

    kit = OptimizerSpace({"lr": (1e-3, 1.0)}, ("OPT-GD",))

    @classmethod
    def torch_optimizer(cls, torch: Any, config: Mapping[str, Any], tensors: Sequence[Any]) -> Any:
        return torch.optim.SGD(tensors, lr=config["lr"])

    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None:
        W -= self.lr * dW


@register
class Momentum(Optimizer):
    """Gradient descent with momentum (exponentially averaged gradients).

    Parameters
    ----------
    lr : float
        Learning rate α > 0.
    beta : float
        Averaging factor in [0, 1); beta = 0 is plain gradient descent.

    Notes
    -----
    Spec: OPT-MOMENTUM

    v := β v + (1 - β) dθ  (v starts at 0),  θ := θ - α v.
    """

    kit = OptimizerSpace(
        {"lr": (1e-3, 1.0), "beta": (0.0, 0.99)},
        ("OPT-MOMENTUM",),
        {"momentum": ("average", "pytorch")},  # PyTorch's v := β v + g
    )

    @classmethod
    def torch_optimizer(cls, torch: Any, config: Mapping[str, Any], tensors: Sequence[Any]) -> Any:
        # PyTorch: b := β b + g, θ -= lr b; with lr = α (1 - β) it is refnn's average
        beta = config["beta"]
        return torch.optim.SGD(tensors, lr=config["lr"] * (1.0 - beta), momentum=beta)

    def __init__(self, lr: float, beta: float = 0.9) -> None:
        super().__init__(lr)
        self.beta = float_in(beta, "beta", 0.0, 1.0, closed_high=False)

    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None:
        v: FloatArray = state.setdefault("v", np.zeros_like(W))
        v *= self.beta
        v += (1.0 - self.beta) * dW
        W -= self.lr * v


def adam_moments(M: FloatArray, V: FloatArray, dW: FloatArray, beta1: float, beta2: float) -> None:
    """Update Adam's first and second moment estimates in place (they are optimizer state).

    Notes
    -----
    Spec: ADAM-MOMENTS

    m_t = β1 m_{t-1} + (1 - β1) dθ,   v_t = β2 v_{t-1} + (1 - β2) dθ ⊙ dθ.
    """
    M *= beta1
    M += (1.0 - beta1) * dW
    V *= beta2
    V += (1.0 - beta2) * (dW * dW)


def adam_delta(
    M: FloatArray, V: FloatArray, t: int, lr: float, beta1: float, beta2: float, eps: float
) -> FloatArray:
    """The Adam change of θ after t updates of the moments M, V.

    Notes
    -----
    Spec: ADAM-BIAS, ADAM-STEP

    m̂ = m_t / (1 - β1^t),  v̂ = v_t / (1 - β2^t),  Δθ = -α m̂ / (sqrt(v̂) + ε).
    """
    m_hat = M / (1.0 - beta1**t)
    v_hat = V / (1.0 - beta2**t)
    delta: FloatArray = -lr * m_hat / (np.sqrt(v_hat) + eps)
    return delta


@register
class Adam(Optimizer):
    """Adam: moment estimates with bias correction (Kingma and Ba, 2015).

    Parameters
    ----------
    lr : float
        Learning rate α > 0.
    beta1, beta2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float
        ε > 0 added to sqrt(v̂) in the denominator.

    Notes
    -----
    Spec: ADAM-MOMENTS, ADAM-BIAS, ADAM-STEP

    Per parameter array: m_t, v_t (ADAM-MOMENTS), m̂_t, v̂_t (ADAM-BIAS),
    θ := θ - α m̂_t / (sqrt(v̂_t) + ε) (ADAM-STEP). The t of the bias correction is the number of
    updates that array has received (kept in its state, as PyTorch does), so one optimizer may
    step several models.
    """

    kit = OptimizerSpace(
        {
            "lr": (1e-3, 1.0),
            "beta1": (0.0, 0.99),
            "beta2": (0.0, 0.999),
            "eps": Choice((1e-8, 1e-4, 1e-2, 1.0)),
        },
        ("ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP"),
        # ε outside the square root (refnn, PyTorch), inside it, or added before the bias
        # correction (Kingma and Ba's efficient form, Keras); with or without bias correction
        {"eps": ("outside", "inside", "before-correction"), "bias": ("corrected", "none")},
    )

    @classmethod
    def torch_optimizer(cls, torch: Any, config: Mapping[str, Any], tensors: Sequence[Any]) -> Any:
        betas = (config["beta1"], config["beta2"])
        return torch.optim.Adam(tensors, lr=config["lr"], betas=betas, eps=config["eps"])

    def __init__(
        self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(lr)
        self.beta1 = float_in(beta1, "beta1", 0.0, 1.0, closed_high=False)
        self.beta2 = float_in(beta2, "beta2", 0.0, 1.0, closed_high=False)
        self.eps = float_in(eps, "eps", 0.0, np.inf, closed_high=False)
        if self.eps == 0.0:
            raise ValueError("eps must be > 0 (it keeps the step finite where v̂ = 0), got 0.0")

    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None:
        M: FloatArray = state.setdefault("m", np.zeros_like(W))
        V: FloatArray = state.setdefault("v", np.zeros_like(W))
        t: int = state.get("t", 0) + 1
        state["t"] = t
        adam_moments(M, V, dW, self.beta1, self.beta2)
        W += adam_delta(M, V, t, self.lr, self.beta1, self.beta2, self.eps)


@register
class RMSprop(Optimizer):
    """RMSprop: each element's step divided by the root of its averaged squared gradients.

    Parameters
    ----------
    lr : float
        Learning rate α > 0.
    beta : float
        Averaging factor of the squared gradients, in [0, 1) (default 0.99; PyTorch's
        ``alpha``).
    eps : float
        ε > 0 added OUTSIDE the square root (default 1e-8).

    Notes
    -----
    Spec: OPT-RMSPROP

    s := β s + (1 - β) dθ ⊙ dθ (s starts at 0),  θ := θ - α dθ / (sqrt(s) + ε); no bias
    correction. PyTorch's ``RMSprop(lr=α, alpha=β, eps=ε)`` exactly; TensorFlow's raw op puts
    ε inside the root, sqrt(s + ε).
    """

    kit = OptimizerSpace(
        {"lr": (1e-3, 1.0), "beta": (0.0, 0.99), "eps": Choice((1e-8, 1e-4, 1e-2, 1.0))},
        ("OPT-RMSPROP",),
        {"eps": ("outside", "inside")},  # TensorFlow's raw op: sqrt(s + ε)
    )

    @classmethod
    def torch_optimizer(cls, torch: Any, config: Mapping[str, Any], tensors: Sequence[Any]) -> Any:
        return torch.optim.RMSprop(
            tensors, lr=config["lr"], alpha=config["beta"], eps=config["eps"]
        )

    def __init__(self, lr: float, beta: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta = float_in(beta, "beta", 0.0, 1.0, closed_high=False)
        self.eps = positive_eps(eps)

    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None:
        s: FloatArray = state.setdefault("s", np.zeros_like(W))
        step = dW * dW  # the one fresh array of the update: page faults cost more than the math
        step *= 1.0 - self.beta
        s *= self.beta
        s += step
        np.sqrt(s, out=step)
        step += self.eps
        np.divide(dW, step, out=step)
        step *= self.lr
        W -= step


def positive_eps(eps: object) -> float:
    """ε as a finite float > 0 (ValueError/TypeError naming what came)."""
    out = float_in(eps, "eps", 0.0, np.inf, closed_high=False)
    if out == 0.0:
        raise ValueError(
            "eps must be > 0 (it keeps the step finite where the average is 0), got 0.0"
        )
    return out


@register
class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (Loshchilov and Hutter, 2019), PyTorch's form.

    Parameters
    ----------
    lr, beta1, beta2, eps : float
        As for :class:`Adam`.
    weight_decay : float
        λ >= 0 (default 1e-2); λ = 0 is Adam exactly.

    Notes
    -----
    Spec: OPT-ADAMW, ADAM-MOMENTS, ADAM-BIAS, ADAM-STEP

    θ := θ - α λ θ first (from the weights before the step, every parameter, biases too), then
    the Adam step from dθ, which does not include the decay. PyTorch's ``AdamW(lr=α,
    betas=(β1, β2), eps=ε, weight_decay=λ)``. L2 regularization (``fit(l2=)``) instead adds the
    decay to the gradient, which Adam then rescales per element.
    """

    kit = OptimizerSpace(
        {
            "lr": (1e-3, 1.0),
            "beta1": (0.0, 0.99),
            "beta2": (0.0, 0.999),
            "eps": Choice((1e-8, 1e-4, 1e-2, 1.0)),
            "weight_decay": (0.0, 0.5),
        },
        ("OPT-ADAMW", "ADAM-MOMENTS", "ADAM-BIAS", "ADAM-STEP"),
    )

    @classmethod
    def torch_optimizer(cls, torch: Any, config: Mapping[str, Any], tensors: Sequence[Any]) -> Any:
        betas = (config["beta1"], config["beta2"])
        return torch.optim.AdamW(
            tensors,
            lr=config["lr"],
            betas=betas,
            eps=config["eps"],
            weight_decay=config["weight_decay"],
        )

    def __init__(
        self,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps)
        self.weight_decay = float_in(weight_decay, "weight_decay", 0.0, np.inf, closed_high=False)

    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None:
        if self.weight_decay:
            W *= 1.0 - self.lr * self.weight_decay  # θ - α λ θ, in place, as PyTorch computes it
        super()._update(W, dW, state)


@register
class Nesterov(Optimizer):
    """Nesterov momentum, in PyTorch's form (``SGD(momentum=μ, nesterov=True)``).

    Parameters
    ----------
    lr : float
        Learning rate α > 0.
    momentum : float
        μ in [0, 1) (default 0.9); μ = 0 is gradient descent exactly.

    Notes
    -----
    Spec: OPT-NESTEROV

    b := μ b + dθ (b starts at 0),  θ := θ - α (dθ + μ b). b is a running sum (dampening 0),
    not the average refnn's :class:`Momentum` keeps (v = (1 - μ) b): the course's look-ahead
    form v := μ v - α ∇J(θ + μ v) rewritten at the look-ahead point.
    """

    kit = OptimizerSpace({"lr": (1e-3, 1.0), "momentum": (0.0, 0.99)}, ("OPT-NESTEROV",))

    @classmethod
    def torch_optimizer(cls, torch: Any, config: Mapping[str, Any], tensors: Sequence[Any]) -> Any:
        mu = config["momentum"]  # PyTorch refuses nesterov=True without momentum: that is SGD
        return torch.optim.SGD(tensors, lr=config["lr"], momentum=mu, nesterov=mu > 0)

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = float_in(momentum, "momentum", 0.0, 1.0, closed_high=False)

    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None:
        b: FloatArray = state.setdefault("b", np.zeros_like(W))
        b *= self.momentum
        b += dW
        step = self.momentum * b
        step += dW
        step *= self.lr
        W -= step
