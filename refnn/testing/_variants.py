"""Other optimizer conventions in use, so check_optimizer can say which one an implementation
follows when it is not refnn's (OPT-MOMENTUM, ADAM-STEP), and so check_optimizer can hold an
implementation to the convention it declares. Each maps (config, params, steps) to the
parameters after each step, in float64; they are keyed by convention ("eps=inside"), never by
optimizer: an optimizer declares which it accepts (``kit.conventions``, TEST-SPACE).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from refnn.types import FloatArray

Steps = list[dict[str, FloatArray]]
Config = Mapping[str, float]
Update = Callable[[Config, FloatArray, FloatArray, dict[str, FloatArray], int], FloatArray]
Variant = Callable[[Config, Mapping[str, FloatArray], Steps], Steps]


def _variant(update: Update) -> Variant:
    def run(config: Config, params: Mapping[str, FloatArray], steps: Steps) -> Steps:
        theta: dict[str, FloatArray] = {k: v.astype(np.float64) for k, v in params.items()}
        state: dict[str, dict[str, FloatArray]] = {k: {} for k in params}
        out: Steps = []
        for t, grads in enumerate(steps, start=1):
            for k in theta:
                g = grads[k].astype(np.float64)
                theta[k] = update(config, theta[k], g, state[k], t)
            out.append({k: v.copy() for k, v in theta.items()})
        return out

    return run


def _ascent(
    c: Config, W: FloatArray, g: FloatArray, s: dict[str, FloatArray], t: int
) -> FloatArray:
    return W + c["lr"] * g


def _torch_momentum(
    c: Config, W: FloatArray, g: FloatArray, s: dict[str, FloatArray], t: int
) -> FloatArray:
    s["v"] = g.copy() if t == 1 else c["beta"] * s["v"] + g
    return W - c["lr"] * s["v"]


def _moments(c: Config, g: FloatArray, s: dict[str, FloatArray]) -> tuple[FloatArray, FloatArray]:
    s["m"] = c["beta1"] * s.get("m", np.zeros_like(g)) + (1 - c["beta1"]) * g
    s["v"] = c["beta2"] * s.get("v", np.zeros_like(g)) + (1 - c["beta2"]) * g * g
    return s["m"], s["v"]


def _eps_inside(
    c: Config, W: FloatArray, g: FloatArray, s: dict[str, FloatArray], t: int
) -> FloatArray:
    if "beta1" not in c:  # RMSprop (OPT-RMSPROP): s := β s + (1 - β) g², θ -= α g / sqrt(s + ε)
        s["s"] = c["beta"] * s.get("s", np.zeros_like(g)) + (1 - c["beta"]) * g * g
        return W - c["lr"] * g / np.sqrt(s["s"] + c["eps"])
    m, v = _moments(c, g, s)
    m_hat, v_hat = m / (1 - c["beta1"] ** t), v / (1 - c["beta2"] ** t)
    return W - c["lr"] * m_hat / np.sqrt(v_hat + c["eps"])


def _eps_hat(
    c: Config, W: FloatArray, g: FloatArray, s: dict[str, FloatArray], t: int
) -> FloatArray:
    m, v = _moments(c, g, s)
    lr_t = c["lr"] * np.sqrt(1 - c["beta2"] ** t) / (1 - c["beta1"] ** t)
    return W - lr_t * m / (np.sqrt(v) + c["eps"])


def _no_bias(
    c: Config, W: FloatArray, g: FloatArray, s: dict[str, FloatArray], t: int
) -> FloatArray:
    m, v = _moments(c, g, s)
    return W - c["lr"] * m / (np.sqrt(v) + c["eps"])


#: The update of each declared convention other than refnn's ("key=choice"), described; and
#: "ascent", a mistake any optimizer can make (the sign of the step).
VARIANTS: dict[str, tuple[str, Variant]] = {
    "ascent": ("gradient ascent θ := θ + α g (the sign of the step)", _variant(_ascent)),
    "momentum=pytorch": (
        "PyTorch's momentum v := β v + g, θ := θ - α v (refnn's OPT-MOMENTUM averages: "
        "v := β v + (1 - β) g; PyTorch's SGD equals it with lr = α (1 - β))",
        _variant(_torch_momentum),
    ),
    "eps=inside": (
        "ε inside the square root, θ := θ - α m̂ / sqrt(v̂ + ε) (refnn's ADAM-STEP: "
        "θ := θ - α m̂ / (sqrt(v̂) + ε), as PyTorch; RMSprop's likewise, OPT-RMSPROP)",
        _variant(_eps_inside),
    ),
    "eps=before-correction": (
        "ε added before the bias correction (Kingma and Ba's efficient form, as in Keras): "
        "θ := θ - α_t m / (sqrt(v) + ε) with α_t = α sqrt(1 - β2^t) / (1 - β1^t) "
        "(refnn's ADAM-STEP adds ε to sqrt(v̂))",
        _variant(_eps_hat),
    ),
    "bias=none": (
        "no bias correction, θ := θ - α m / (sqrt(v) + ε) (refnn's ADAM-BIAS divides by 1 - β^t)",
        _variant(_no_bias),
    ),
}
