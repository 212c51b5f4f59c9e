"""The one catalogue of wrong backward functions: the checker must reject every one (as WRONG, at
the input that is wrong) and accept the correct ones, kinks included, with no false alarm.

Each mutant is a bug seen in real code. The layers are written here in plain numpy (dense,
tanh/sigmoid/ReLU, binary cross-entropy, a strided padded convolution), so the catalogue tests
the checker alone and does not depend on refnn's layer modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from refnn.gradcheck import GradcheckError, check_grad

Arr = np.ndarray


def _normal(seed: int, *shape: int, scale: float = 1.0) -> Arr:
    return scale * np.random.default_rng(seed).standard_normal(shape)


@dataclass(frozen=True)
class Candidate:
    """A scalar function of named arrays with a claimed gradient; ``wrong``: the bad input."""

    name: str
    f: Callable[..., float]
    grad: Callable[..., Sequence[Arr]]
    inputs: dict[str, Arr]
    wrong: str = ""


# --- a dense tanh layer with a squared loss: J = sum((tanh(W X + b) - Y)^2) / 2m -----------------


def _tanh_layer(bug: str, n: int = 3, m: int = 3, seed: int = 0) -> Candidate:
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((n, m))
    inputs = {
        "W": rng.standard_normal((n, n)),
        "b": rng.standard_normal((n, 1)),
        "X": rng.standard_normal((n, m)),
    }

    def f(W: Arr, b: Arr, X: Arr) -> float:
        return float(np.sum((np.tanh(W @ X + b) - Y) ** 2) / (2 * X.shape[1]))

    def grad(W: Arr, b: Arr, X: Arr) -> Sequence[Arr]:
        A = np.tanh(W @ X + b)
        dA = (A - Y) if bug == "missing 1/m" else (A - Y) / m
        dZ = dA * A * (1 - A) if bug == "sigmoid derivative for tanh" else dA * (1 - A) * (1 + A)
        dW, db, dX = dZ @ X.T, dZ.sum(axis=1, keepdims=True), W.T @ dZ
        bugged: dict[str, list[Arr]] = {
            "sign flip": [-dW, db, dX],
            "missing transpose": [dW, db, W @ dZ],
            "wrong axis in sum": [dW, dZ.sum(axis=0, keepdims=True).T, dX],
            "doubled 1/m": [dW / m, db, dX],
            "right only for m = 1": [dW, dZ[:, :1].copy(), dX],
        }
        out: list[Arr] = bugged.get(bug, [dW, db, dX])
        return out

    wrong = {
        "sign flip": "W",
        "missing transpose": "X",
        "wrong axis in sum": "b",
        "doubled 1/m": "W",
        "missing 1/m": "W",
        "right only for m = 1": "b",
        "sigmoid derivative for tanh": "W",
    }.get(bug, "")
    return Candidate(f"tanh layer: {bug or 'correct'}", f, grad, inputs, wrong)


# --- J = sum(U * (W X + b)): the claimed gradient from backward(dZ=U, X, W) ---------------------


def _linear(
    name: str,
    backward: Callable[[Arr, Arr, Arr], Sequence[Arr]],
    wrong: str,
    n: int = 3,
    m: int = 3,
    seed: int = 0,
) -> Candidate:
    U = _normal(seed + 3, n, m)

    def f(X: Arr, W: Arr, b: Arr) -> float:
        return float(np.sum(U * (W @ X + b)))

    inputs = {"X": _normal(seed, n, m), "W": _normal(seed + 1, n, n), "b": _normal(seed + 2, n, 1)}
    return Candidate(name, f, lambda X, W, b: backward(U, X, W), inputs, wrong)


def _right_linear(dZ: Arr, X: Arr, W: Arr) -> Sequence[Arr]:
    return [W.T @ dZ, dZ @ X.T, dZ.sum(1, keepdims=True)]


# --- binary cross-entropy on probabilities, J = -(1/m) sum(y log a + (1 - y) log(1 - a)) -------


def _bce(
    name: str, grad: Callable[[Arr, Arr], Arr], wrong: str, k: int = 2, m: int = 4, seed: int = 0
) -> Candidate:
    rng = np.random.default_rng(seed)
    Y = (rng.random((k, m)) < 0.5).astype(np.float64)

    def f(A: Arr) -> float:
        return float(-np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / A.shape[1])

    A = rng.uniform(0.05, 0.95, (k, m))
    return Candidate(name, f, lambda A: [grad(A, Y)], {"A": A}, wrong)


def _right_bce(A: Arr, Y: Arr) -> Arr:
    out: Arr = (A - Y) / (A * (1 - A)) / A.shape[1]
    return out


# --- the multiclass hinge (SVM) loss, J = (1/m) sum_i sum_{j != y_i} max(0, 1 + s_j - s_y) -------


def _hinge(name: str, grad: Callable[[Arr, Arr], Arr], wrong: str, seed: int = 0) -> Candidate:
    """Scores 3 N(0, 1) (4 classes, 5 examples), away from the kinks as make check draws them."""
    rng = np.random.default_rng(seed)
    Y = np.eye(4)[:, rng.integers(0, 4, 5)]

    def f(S: Arr) -> float:
        terms = 1.0 + S - (Y * S).sum(axis=0)
        return float(np.sum(np.maximum(terms, 0.0) * (Y == 0)) / S.shape[1])

    return Candidate(
        name, f, lambda S: [grad(S, Y)], {"S": 3.0 * rng.standard_normal((4, 5))}, wrong
    )


def _hinge_active(S: Arr, Y: Arr) -> Arr:
    out: Arr = ((1.0 + S - (Y * S).sum(axis=0)) > 0) & (Y == 0)
    return out.astype(np.float64)


def _sigmoid(z: Arr) -> Arr:
    out: Arr = 1.0 / (1.0 + np.exp(-z))
    return out


def _activation(
    name: str,
    fwd: Callable[[Arr], Arr],
    bwd: Callable[[Arr, Arr], Arr],
    Z: Arr,
    wrong: str,
    seed: int = 0,
) -> Candidate:
    U = _normal(seed + 5, *Z.shape)
    return Candidate(
        name, lambda Z_: float(np.sum(U * fwd(Z_))), lambda Z_: [bwd(U, Z_)], {"Z": Z}, wrong
    )


def _relu(z: Arr) -> Arr:
    out: Arr = np.maximum(z, 0.0)
    return out


# --- a strided, padded convolution: images C x H x W x m, filters F x C x kh x kw --------------


def _conv(X: Arr, W: Arr, b: Arr, s: int, p: int) -> Arr:
    F, _, kh, kw = W.shape
    Xp = np.pad(X, ((0, 0), (p, p), (p, p), (0, 0)))
    Ho, Wo = (Xp.shape[1] - kh) // s + 1, (Xp.shape[2] - kw) // s + 1
    Y = np.empty((F, Ho, Wo, X.shape[3]))
    for i in range(Ho):
        for j in range(Wo):
            patch = Xp[:, i * s : i * s + kh, j * s : j * s + kw, :]
            Y[:, i, j, :] = np.einsum("fcpq,cpqm->fm", W, patch) + b
    return Y


def _conv_dx(dY: Arr, W: Arr, shape: tuple[int, ...], s: int, p: int, crop: int) -> Arr:
    """dX by scattering W^T dY with stride ``s``, cropped at offset ``crop`` (right: the pad)."""
    C, H, Wd, m = shape
    kh, kw, margin = W.shape[2], W.shape[3], 2
    dXp = np.zeros((C, H + 2 * p + 2 * margin, Wd + 2 * p + 2 * margin, m))
    for i in range(dY.shape[1]):
        for j in range(dY.shape[2]):
            r, c = margin + i * s, margin + j * s
            dXp[:, r : r + kh, c : c + kw, :] += np.einsum("fcpq,fm->cpqm", W, dY[:, i, j, :])
    o = margin + crop
    out: Arr = dXp[:, o : o + H, o : o + Wd, :]
    return out


def _conv_candidate(name: str, scatter_stride: int, crop: int, seed: int = 0) -> Candidate:
    s, p = 2, 1
    X, W, b = _normal(seed, 2, 5, 5, 2), _normal(seed + 1, 3, 2, 3, 3), _normal(seed + 2, 3, 1)
    U = _normal(seed + 3, *_conv(X, W, b, s, p).shape)

    def grad(X_: Arr, W_: Arr, b_: Arr) -> Sequence[Arr]:
        Xp = np.pad(X_, ((0, 0), (p, p), (p, p), (0, 0)))
        dW = np.zeros_like(W_)
        for i in range(U.shape[1]):
            for j in range(U.shape[2]):
                patch = Xp[:, i * s : i * s + 3, j * s : j * s + 3, :]
                dW += np.einsum("fm,cpqm->fcpq", U[:, i, j, :], patch)
        dX = _conv_dx(U, W_, X_.shape, scatter_stride, p, crop)
        return [dX, dW, U.sum(axis=(1, 2, 3))[:, None]]

    f = lambda X_, W_, b_: float(np.sum(U * _conv(X_, W_, b_, s, p)))  # noqa: E731
    wrong = "" if (scatter_stride, crop) == (s, p) else "X"
    return Candidate(name, f, grad, {"X": X, "W": W, "b": b}, wrong)


def _batch_norm(
    name: str, simplified: bool, wrong: str, n: int = 3, m: int = 4, seed: int = 0
) -> Candidate:
    """J = sum(U * BN(X)), batch norm in training: each row of X standardised over the m
    examples, then gamma * xhat + beta. ``simplified``: the backward that treats the batch mean
    and variance as constants (dX = gamma dY / sqrt(var + eps)), wrong while training."""
    U, eps = _normal(seed + 3, n, m), 1e-5

    def parts(X: Arr) -> tuple[Arr, Arr]:
        mu = X.mean(axis=1, keepdims=True)
        inv = 1.0 / np.sqrt(((X - mu) ** 2).mean(axis=1, keepdims=True) + eps)
        return (X - mu) * inv, inv

    def f(X: Arr, gamma: Arr, beta: Arr) -> float:
        return float(np.sum(U * (gamma * parts(X)[0] + beta)))

    def grad(X: Arr, gamma: Arr, beta: Arr) -> Sequence[Arr]:
        xhat, inv = parts(X)
        d = gamma * U
        dX = d * inv
        if not simplified:
            dX = dX - inv * (
                d.mean(axis=1, keepdims=True) + xhat * (d * xhat).mean(1, keepdims=True)
            )
        return [dX, (U * xhat).sum(axis=1, keepdims=True), U.sum(axis=1, keepdims=True)]

    inputs = {
        "X": _normal(seed, n, m),
        "gamma": 1.0 + _normal(seed + 1, n, 1, scale=0.5),
        "beta": _normal(seed + 2, n, 1),
    }
    return Candidate(name, f, grad, inputs, wrong)


# --- one GRU step (PyTorch's equations) from h, J = sum(U * h'): the hidden map W_h, b_h -------


def _gru_step(bug: str, n: int = 3, m: int = 3, seed: int = 0) -> Candidate:
    """h' = (1 - z) n + z h, r, z = σ(p + q), n = tanh(p_n + r (W_hn h + b_hn)), q = W_h h + b_h;
    p (the input map) is fixed."""
    rng = np.random.default_rng(seed)
    p, U = rng.standard_normal((3 * n, m)), rng.standard_normal((n, m))
    inputs = {
        "Wh": rng.standard_normal((3 * n, n)) / np.sqrt(n),
        "bh": rng.standard_normal((3 * n, 1)),
        "h": np.tanh(rng.standard_normal((n, m))),
    }

    def step(Wh: Arr, bh: Arr, h: Arr) -> tuple[Arr, Arr, Arr, Arr, Arr]:
        q = Wh @ h + bh
        r, z = _sigmoid(p[:n] + q[:n]), _sigmoid(p[n : 2 * n] + q[n : 2 * n])
        new = np.tanh(p[2 * n :] + r * q[2 * n :])
        return (1 - z) * new + z * h, q, r, z, new

    def f(Wh: Arr, bh: Arr, h: Arr) -> float:
        return float(np.sum(U * step(Wh, bh, h)[0]))

    def grad(Wh: Arr, bh: Arr, h: Arr) -> Sequence[Arr]:
        _, q, r, z, new = step(Wh, bh, h)
        dn = U * (1 - z) * (1 - new**2)
        dz = U * (h - new) * z * (1 - z)
        dr = dn * q[2 * n :] * r * (1 - r)
        dq = np.vstack([dr, dz, dn * r])
        db = dq.sum(axis=1, keepdims=True)
        if bug == "reset gate outside the hidden bias":
            db[2 * n :] = dn.sum(axis=1, keepdims=True)
        dh = Wh.T @ dq + (0 if bug == "update gate's carry forgotten" else U * z)
        return [dq @ h.T, db, dh]

    wrong = {"reset gate outside the hidden bias": "bh", "update gate's carry forgotten": "h"}
    return Candidate(f"GRU step: {bug or 'correct'}", f, grad, inputs, wrong.get(bug, ""))


def mutants() -> list[Candidate]:
    """Every wrong backward the checker must reject."""
    m = 3  # square W and n == m (3): the wrong formulas still have the right shapes
    tanh_bugs = [
        "sign flip",
        "missing transpose",
        "wrong axis in sum",
        "doubled 1/m",
        "missing 1/m",
        "right only for m = 1",
        "sigmoid derivative for tanh",
    ]
    Z = _normal(0, 3, 4)
    return [
        *(_tanh_layer(bug) for bug in tanh_bugs),
        _linear(
            "sign flip in dW",
            lambda dZ, X, W: [W.T @ dZ, -(dZ @ X.T), dZ.sum(1, keepdims=True)],
            "W",
        ),
        _linear(
            "missing transpose in dX",
            lambda dZ, X, W: [W @ dZ, dZ @ X.T, dZ.sum(1, keepdims=True)],
            "X",
        ),
        _linear(
            "missing transpose in dW",
            lambda dZ, X, W: [W.T @ dZ, dZ @ X, dZ.sum(1, keepdims=True)],
            "W",
        ),
        _linear(
            "db over the wrong axis",
            lambda dZ, X, W: [W.T @ dZ, dZ @ X.T, dZ.sum(0, keepdims=True).T],
            "b",
        ),
        _linear(
            "mean, not sum, in dW",
            lambda dZ, X, W: [W.T @ dZ, dZ @ X.T / m, dZ.sum(1, keepdims=True)],
            "W",
        ),
        _linear(
            "first example only in dW",
            lambda dZ, X, W: [W.T @ dZ, dZ[:, :1] @ X[:, :1].T, dZ.sum(1, keepdims=True)],
            "W",
        ),
        _bce("BCE: lost 1/m", lambda A, Y: (A - Y) / (A * (1 - A)), "A"),
        _bce("BCE: doubled 1/m", lambda A, Y: (A - Y) / (A * (1 - A)) / 16, "A"),
        _bce("BCE: sign flip", lambda A, Y: (Y - A) / (A * (1 - A)) / 4, "A"),
        _bce("BCE: logits gradient for probabilities", lambda A, Y: (A - Y) / 4, "A"),
        _hinge(
            "hinge: the correct class's -count forgotten",
            lambda S, Y: _hinge_active(S, Y) / 5,
            "S",
        ),
        _hinge(
            "hinge: the correct class's term with the wrong sign",
            lambda S, Y: (_hinge_active(S, Y) + Y * _hinge_active(S, Y).sum(axis=0)) / 5,
            "S",
        ),
        _activation(
            "sigmoid with tanh's derivative",
            _sigmoid,
            lambda dA, Z: dA * (1 - _sigmoid(Z) ** 2),
            Z,
            "Z",
        ),
        _activation(
            "sigmoid derivative from Z, not A", _sigmoid, lambda dA, Z: dA * Z * (1 - Z), Z, "Z"
        ),
        _activation("ReLU passing the gradient everywhere", _relu, lambda dA, Z: dA, Z, "Z"),
        _activation("ReLU with the mask inverted", _relu, lambda dA, Z: dA * (Z < 0), Z, "Z"),
        _activation(
            "leaky ReLU's slope in a ReLU",
            _relu,
            lambda dA, Z: dA * np.where(Z > 0, 1.0, 0.01),
            Z,
            "Z",
        ),
        _conv_candidate("conv dX: stride off by one", 1, 1),
        _conv_candidate("conv dX: padding off by one", 2, 2),
        _conv_candidate("conv dX: padding forgotten", 2, 0),
        _batch_norm("batch norm: simplified backward (statistics as constants)", True, "X"),
        _gru_step("reset gate outside the hidden bias"),
        _gru_step("update gate's carry forgotten"),
    ]


def correct(seed: int, n: int, m: int) -> list[Candidate]:
    """The right backward functions, with ReLU inputs on and near the kink."""
    Z = _normal(seed, n, m)
    Z.flat[::2] = 0.0  # exact kinks
    Z.flat[1::3] = 1e-9  # within any sensible step of the kink
    return [
        _tanh_layer("", n, m, seed),
        _linear("linear", _right_linear, "", n, m, seed),
        _bce("bce", _right_bce, "", n, m, seed),
        _activation(
            "sigmoid",
            _sigmoid,
            lambda dA, Z_: dA * _sigmoid(Z_) * (1 - _sigmoid(Z_)),
            _normal(seed, n, m, scale=3.0),
            "",
            seed,
        ),
        _activation("relu", _relu, lambda dA, Z_: dA * (Z_ > 0), Z, "", seed),
        _batch_norm("batch norm", False, "", n, m, seed),
        _gru_step("", n, m, seed),
        _hinge(
            "hinge",
            lambda S, Y: (_hinge_active(S, Y) - Y * _hinge_active(S, Y).sum(0)) / 5,
            "",
            seed,
        ),
    ]


@pytest.mark.spec("GC-TOL")
@pytest.mark.parametrize("candidate", mutants(), ids=lambda c: c.name)
def test_every_mutant_is_rejected_as_wrong_at_the_wrong_input(candidate: Candidate) -> None:
    result = check_grad(candidate.f, candidate.grad, candidate.inputs)
    verdicts = {a.name: a.verdict for a in result.arrays}
    assert not result.passed, f"the checker accepted a wrong gradient: {candidate.name}"
    # WRONG, not merely 'inconclusive' (which a checker judging nothing would say)
    assert verdicts[candidate.wrong] == "WRONG", result.format()
    with pytest.raises(GradcheckError, match=f"input '{candidate.wrong}'"):
        result.raise_if_failed()


@pytest.mark.spec("GC-TOL", "GC-KINK")
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 3), (4, 4)])
def test_correct_gradients_raise_no_false_alarm(seed: int, n: int, m: int) -> None:
    for c in correct(seed, n, m):
        result = check_grad(c.f, c.grad, c.inputs)
        assert result.passed, f"false alarm on {c.name}:\n{result.format()}"


@pytest.mark.spec("GC-TOL")
@pytest.mark.parametrize("seed", range(3))
def test_the_correct_convolution_passes(seed: int) -> None:
    c = _conv_candidate("conv", 2, 1, seed)
    result = check_grad(c.f, c.grad, c.inputs)
    assert result.passed, result.format()


@pytest.mark.spec("GC-TOL")
def test_the_m_equals_1_bug_is_invisible_at_m_equals_1_which_is_why_m_must_exceed_1() -> None:
    c = _tanh_layer("right only for m = 1", 3, 1)
    assert check_grad(c.f, c.grad, c.inputs).passed
