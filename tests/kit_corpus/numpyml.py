"""numpy-ml-style classes: a layer object with ``forward(X)`` (batch-first, n_ex x n_in),
``backward(dLdy)`` returning dX and keeping ``self.gradients``; W is n_in x n_out and b is
1 x n_out; a cross-entropy summed over the examples; optimizers with ``update(param,
param_grad, param_name)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


class FullyConnected:
    def __init__(self, W: Array, b: Array, transposed_bug: bool = False):
        self.parameters = {"W": W, "b": b}
        self.gradients: dict[str, Array] = {}
        self.bug = transposed_bug

    def forward(self, X: Array) -> Array:
        self.X = X
        return X @ self.parameters["W"] + self.parameters["b"]

    def backward(self, dLdy: Array) -> Array:
        W, X = self.parameters["W"], self.X
        dW = X.T @ dLdy
        self.gradients = {"W": dW.T if self.bug and dW.shape[0] == dW.shape[1] else dW}
        self.gradients["b"] = dLdy.sum(axis=0, keepdims=True)
        return dLdy @ W.T


class SoftmaxCrossEntropy:
    """loss = -Σ y log softmax(z) over every example (summed, not averaged); grad = p - y."""

    def loss(self, y: Array, z: Array) -> float:
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-(y * log_p).sum())

    def grad(self, y: Array, z: Array) -> Array:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True) - y


class SGD:
    """update = momentum * cache + lr * grad; param -= update (PyTorch's momentum, lr inside)."""

    def __init__(self, lr: float, momentum: float):
        self.lr, self.momentum = lr, momentum
        self.cache: dict[str, Array] = {}

    def update(self, param: Array, param_grad: Array, param_name: str) -> Array:
        prev = self.cache.get(param_name, np.zeros_like(param_grad))
        self.cache[param_name] = self.momentum * prev + self.lr * param_grad
        return param - self.cache[param_name]


class Adam:
    """The bias-corrected Adam, ε added to sqrt(v̂) (refnn's form)."""

    def __init__(self, lr: float, decay1: float, decay2: float, eps: float):
        self.lr, self.d1, self.d2, self.eps = lr, decay1, decay2, eps
        self.cache: dict[str, dict[str, Any]] = {}

    def update(self, param: Array, param_grad: Array, param_name: str) -> Array:
        c = self.cache.setdefault(
            param_name, {"t": 0, "mean": np.zeros_like(param), "var": np.zeros_like(param)}
        )
        c["t"] += 1
        c["mean"] = self.d1 * c["mean"] + (1 - self.d1) * param_grad
        c["var"] = self.d2 * c["var"] + (1 - self.d2) * param_grad**2
        m_hat = c["mean"] / (1 - self.d1 ** c["t"])
        v_hat = c["var"] / (1 - self.d2 ** c["t"])
        return param - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamWrongBias(Adam):
    """Bug: bias correction with the step count of all parameters together (t counted per
    call, shared by W and b), so b is corrected as if it were at step 2 t."""

    def update(self, param: Array, param_grad: Array, param_name: str) -> Array:
        shared = self.cache.setdefault("shared", {"t": 0})
        shared["t"] += 1
        c = self.cache.setdefault(
            param_name, {"t": 0, "mean": np.zeros_like(param), "var": np.zeros_like(param)}
        )
        c["t"] = shared["t"]
        c["mean"] = self.d1 * c["mean"] + (1 - self.d1) * param_grad
        c["var"] = self.d2 * c["var"] + (1 - self.d2) * param_grad**2
        m_hat = c["mean"] / (1 - self.d1 ** c["t"])
        v_hat = c["var"] / (1 - self.d2 ** c["t"])
        return param - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


# -- adapters ---------------------------------------------------------------------------------


class Dense:
    bug = False

    def __init__(self, config: dict[str, Any], params: dict[str, Array]):
        self.layer = FullyConnected(params["W"], params["b"], self.bug)

    def forward(self, X: Array) -> Array:
        return self.layer.forward(X)

    def backward(self, dY: Array) -> tuple[Array, dict[str, Array]]:
        dX = self.layer.backward(dY)
        return dX, self.layer.gradients


class DenseTransposedGrad(Dense):
    bug = True


class Loss:
    def __init__(self, config: dict[str, Any]):
        self.impl = SoftmaxCrossEntropy()

    def forward(self, z: Array, y: Array) -> float:
        self.z, self.y = z, y
        return self.impl.loss(y, z)

    def backward(self) -> Array:
        return self.impl.grad(self.y, self.z)


class Optim:
    def __init__(self, config: dict[str, Any], params: dict[str, Array], opt: Any):
        self.params, self.opt = dict(params), opt

    def step(self, grads: Mapping[str, Array]) -> dict[str, Array]:
        for k in self.params:
            self.params[k] = self.opt.update(self.params[k], grads[k], k)
        return self.params


def momentum(config: dict[str, Any], params: dict[str, Array]) -> Optim:
    return Optim(config, params, SGD(config["lr"], config["beta"]))


def adam(config: dict[str, Any], params: dict[str, Array]) -> Optim:
    c = config
    return Optim(config, params, Adam(c["lr"], c["beta1"], c["beta2"], c["eps"]))


def adam_wrong_bias(config: dict[str, Any], params: dict[str, Array]) -> Optim:
    c = config
    return Optim(config, params, AdamWrongBias(c["lr"], c["beta1"], c["beta2"], c["eps"]))
