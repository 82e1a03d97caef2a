"""Classic optimisation test functions, each expressed as a W&B sweep.

Every ``Problem`` holds a W&B ``parameters`` mapping (what a user writes in ``sweep.yaml``),
an objective over ``{name: value}`` (minimised), its known optimum ``f_min`` and, for the
noisy variants, a noise level. Implemented here from their published definitions (Surjanovic
& Bingham's Virtual Library of Simulation Experiments); the mixed ones are synthetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Objective = Callable[[Mapping[str, Any]], float]


@dataclass(frozen=True)
class Problem:
    name: str
    parameters: dict[str, dict[str, Any]]
    objective: Objective  # noise-free
    f_min: float
    noise_std: float = 0.0

    def observe(self, params: Mapping[str, Any], rng: np.random.Generator) -> float:
        """What a run reports: the objective plus Gaussian noise for the noisy variants."""
        value = self.objective(params)
        if self.noise_std:
            value += float(rng.normal(0.0, self.noise_std))
        return value


def _box(names: list[str], lo: float, hi: float) -> dict[str, dict[str, Any]]:
    return {n: {"distribution": "uniform", "min": lo, "max": hi} for n in names}


def _vec(p: Mapping[str, Any], d: int) -> np.ndarray:
    return np.array([float(p[f"x{i}"]) for i in range(d)])


def _names(d: int) -> list[str]:
    return [f"x{i}" for i in range(d)]


def branin(p: Mapping[str, Any]) -> float:
    x1, x2 = float(p["x0"]), float(p["x1"])
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def six_hump_camel(p: Mapping[str, Any]) -> float:
    x, y = float(p["x0"]), float(p["x1"])
    return (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2


def goldstein_price(p: Mapping[str, Any]) -> float:
    x, y = float(p["x0"]), float(p["x1"])
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    return a * b


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann3(p: Mapping[str, Any]) -> float:
    x = _vec(p, 3)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1))))


def hartmann6(p: Mapping[str, Any]) -> float:
    x = _vec(p, 6)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


def rosenbrock4(p: Mapping[str, Any]) -> float:
    x = _vec(p, 4)
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def ackley5(p: Mapping[str, Any]) -> float:
    x = _vec(p, 5)
    d = x.size
    return float(
        -20 * math.exp(-0.2 * math.sqrt(np.sum(x * x) / d))
        - math.exp(np.sum(np.cos(2 * math.pi * x)) / d)
        + 20
        + math.e
    )


def levy6(p: Mapping[str, Any]) -> float:
    x = _vec(p, 6)
    w = 1 + (x - 1) / 4
    head = math.sin(math.pi * w[0]) ** 2
    mid = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + mid + tail)


def rastrigin4(p: Mapping[str, Any]) -> float:
    x = _vec(p, 4)
    return float(10 * x.size + np.sum(x * x - 10 * np.cos(2 * math.pi * x)))


def styblinski_tang5(p: Mapping[str, Any]) -> float:
    x = _vec(p, 5)
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


def michalewicz5(p: Mapping[str, Any]) -> float:
    x = _vec(p, 5)
    i = np.arange(1, 6)
    return float(-np.sum(np.sin(x) * np.sin(i * x * x / math.pi) ** 20))


def int_styblinski(p: Mapping[str, Any]) -> float:
    """Styblinski-Tang over 3 integer and 2 continuous coordinates."""
    x = np.array([float(p["i0"]), float(p["i1"]), float(p["i2"]), float(p["x0"]), float(p["x1"])])
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


# Categorical "which optimiser" problem: each choice shifts the best learning rate and adds
# its own floor; the continuous part is a rotated quadratic bowl.
_OPTIMISERS = {
    "sgd": (-1.0, 0.6),
    "momentum": (-1.5, 0.3),
    "adam": (-3.0, 0.0),
    "rmsprop": (-2.5, 0.15),
}
_ACTIVATIONS = {"relu": 0.0, "tanh": 0.25, "sigmoid": 0.6, "gelu": -0.05}


def categorical_mix(p: Mapping[str, Any]) -> float:
    best_log_lr, floor = _OPTIMISERS[p["optimizer"]]
    u = math.log10(float(p["lr"])) - best_log_lr
    v = float(p["dropout"]) - 0.3
    return floor + _ACTIVATIONS[p["activation"]] + u * u + 4 * v * v + 1.5 * u * v


def lr_wd(p: Mapping[str, Any]) -> float:
    """A synthetic training curve's final loss over log-scaled lr/weight decay, an int width
    exponent and a batch size: a narrow valley in log(lr) whose floor depends on weight decay."""
    llr = math.log10(float(p["lr"]))
    lwd = math.log10(float(p["weight_decay"]))
    width = int(p["width_exp"])
    bs = float(p["batch_size"])
    lr_opt = -3.2 + 0.5 * math.log2(bs / 64) / 3  # bigger batches like bigger lr
    loss = 2.0 * (llr - lr_opt) ** 2 + 0.3 * (lwd + 4.5) ** 2 + 0.4 * (llr - lr_opt) * (lwd + 4.5)
    loss += 0.05 * (width - 8) ** 2
    diverged = llr > lr_opt + 1.2
    return 0.2 + loss + (3.0 if diverged else 0.0)


def lopsided_mlp(p: Mapping[str, Any]) -> float:
    """Parameters of very unequal weight, as in real sweeps: depth moves the loss by up to 25,
    the learning rate by about 1, dropout by at most 0.36. A model that decides the weak
    parameters do not matter stops optimising them once depth is right."""
    return (
        (int(p["layers"]) - 7) ** 2
        + 0.2 * (math.log10(float(p["lr"])) + 2.5) ** 2
        + (float(p["dropout"]) - 0.3) ** 2
    )


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        Problem(
            "branin",
            {"x0": _box(["x0"], -5, 10)["x0"], "x1": _box(["x1"], 0, 15)["x1"]},
            branin,
            0.397887,
        ),
        Problem(
            "six_hump_camel",
            {"x0": _box(["x0"], -3, 3)["x0"], "x1": _box(["x1"], -2, 2)["x1"]},
            six_hump_camel,
            -1.031628,
        ),
        Problem("goldstein_price", _box(_names(2), -2, 2), goldstein_price, 3.0),
        Problem("hartmann3", _box(_names(3), 0, 1), hartmann3, -3.86278),
        Problem("hartmann6", _box(_names(6), 0, 1), hartmann6, -3.32237),
        Problem("rosenbrock4", _box(_names(4), -5, 10), rosenbrock4, 0.0),
        Problem("ackley5", _box(_names(5), -5, 10), ackley5, 0.0),
        Problem("levy6", _box(_names(6), -10, 10), levy6, 0.0),
        Problem("rastrigin4", _box(_names(4), -4, 5.12), rastrigin4, 0.0),
        Problem("styblinski_tang5", _box(_names(5), -5, 5), styblinski_tang5, -39.16617 * 5),
        Problem("michalewicz5", _box(_names(5), 0, math.pi), michalewicz5, -4.687658),
        Problem(
            "noisy_branin",
            {"x0": _box(["x0"], -5, 10)["x0"], "x1": _box(["x1"], 0, 15)["x1"]},
            branin,
            0.397887,
            noise_std=2.0,
        ),
        Problem("noisy_hartmann6", _box(_names(6), 0, 1), hartmann6, -3.32237, noise_std=0.1),
        Problem(
            "int_styblinski",
            {
                **{f"i{k}": {"distribution": "int_uniform", "min": -5, "max": 5} for k in range(3)},
                **_box(["x0", "x1"], -5, 5),
            },
            int_styblinski,
            # per coordinate: f(-3) = -39 at the integer optimum, -39.166 at x = -2.9035
            0.5 * 3 * ((-3) ** 4 - 16 * 9 - 15) - 39.16617 * 2,
        ),
        Problem(
            "categorical_mix",
            {
                "optimizer": {"values": list(_OPTIMISERS)},
                "activation": {"values": list(_ACTIVATIONS)},
                "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
                "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.8},
            },
            categorical_mix,
            -0.05,
        ),
        Problem(
            "lr_wd",
            {
                "lr": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1.0},
                "weight_decay": {"distribution": "log_uniform_values", "min": 1e-8, "max": 1e-1},
                "width_exp": {"distribution": "int_uniform", "min": 4, "max": 12},
                "batch_size": {"values": [16, 32, 64, 128, 256]},
            },
            lr_wd,
            0.2,
        ),
        Problem(
            "lopsided_mlp",
            {
                "layers": {"distribution": "int_uniform", "min": 2, "max": 12},
                "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
                "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.9},
            },
            lopsided_mlp,
            0.0,
        ),
    ]
}
