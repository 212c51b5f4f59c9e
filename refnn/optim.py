"""Optimizers (OPT-*): update rules applied to each parameter in place.

State (velocities, moments) is kept per parameter array, keyed by the array itself, so two
layers never share state, whatever their parameters are called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from refnn._types import FloatArray
from refnn._validate import float_in
from refnn.layer import Parameter


class HasParameters(Protocol):
    """Anything that yields its parameters with their gradients (a Layer or a Sequential)."""

    def parameters(self) -> Iterable[Parameter]: ...


class Optimizer(ABC):
    """Base class: ``step(model)`` updates every parameter of ``model`` in place."""

    def __init__(self, lr: float) -> None:
        self.lr = float_in(lr, "lr", 0.0, np.inf, closed_high=False)
        self._state: dict[int, tuple[FloatArray, dict[str, Any]]] = {}
        self.t = 0

    def step(self, model: HasParameters) -> None:
        """Apply one update to every parameter of ``model`` from its current gradient."""
        self.t += 1
        for p in model.parameters():
            if p.grad.shape != p.value.shape:
                raise ValueError(
                    f"gradient of {p.name} must have shape {p.value.shape}, got {p.grad.shape}"
                )
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


class GradientDescent(Optimizer):
    """Plain gradient descent.

    Notes
    -----
    Spec: OPT-GD

    θ := θ - α dθ.
    """

    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None:
        W -= self.lr * dW


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

    def __init__(self, lr: float, beta: float = 0.9) -> None:
        super().__init__(lr)
        self.beta = float_in(beta, "beta", 0.0, 1.0, closed_high=False)

    def _update(self, W: FloatArray, dW: FloatArray, state: dict[str, Any]) -> None:
        v: FloatArray = state.setdefault("v", np.zeros_like(W))
        v *= self.beta
        v += (1.0 - self.beta) * dW
        W -= self.lr * v
