"""Classic optimisation test functions, each expressed as a W&B sweep.

Every ``Problem`` holds a W&B ``parameters`` mapping (what a user writes in ``sweep.yaml``),
an objective over ``{name: value}`` (minimised), its known optimum ``f_min`` and, for the
noisy variants, a noise level. Implemented here from their published definitions (Surjanovic
& Bingham's Virtual Library of Simulation Experiments); the mixed ones are synthetic.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Objective = Callable[[Mapping[str, Any]], float]


# Function families, for the per-family table in search_quality.py.
FAMILIES = (
    "smooth",  # few local minima, well scaled
    "multimodal",  # many local minima of similar size
    "rugged",  # minima at every scale, or a surface with kinks everywhere
    "plateau",  # flat steps: no gradient almost anywhere
    "boundary",  # the optimum on a face or corner of the box
    "conditioned",  # one direction matters 10^2-10^6 times more than another
    "noisy",  # the reported value carries Gaussian noise
    "mixed",  # ints and categoricals beside continuous parameters
)


@dataclass(frozen=True)
class Problem:
    name: str
    parameters: dict[str, dict[str, Any]]
    objective: Objective  # noise-free
    f_min: float
    noise_std: float = 0.0
    family: str = "smooth"

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


# ---------------------------------------------------------------------------------------
# d = 5 functions on [-5, 5]^5 in the style of the standard black-box suites: each is shifted
# so that its optimum is off the centre and off any grid a method might favour. Written from
# their textbook definitions (no rotations: axis-aligned variants).

D5 = 5


def _shift(name: str, d: int = D5, spread: float = 4.0) -> np.ndarray:
    """A fixed optimum location in [-spread, spread]^d, different for every function."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return rng.uniform(-spread, spread, d)


_SLOPE_SIGN = np.sign(_shift("linear_slope"))
_SLOPE_W = 10.0 ** (np.arange(D5) / (D5 - 1))


def linear_slope(p: Mapping[str, Any]) -> float:
    """A plane rising away from one corner of the box: the optimum is that corner."""
    x = _vec(p, D5)
    return float(np.sum(_SLOPE_W * (5.0 - _SLOPE_SIGN * x)))


# Three coordinates of the unconstrained optimum lie outside the box: the constrained one is on
# an edge, the distance to it is the floor of the function.
_FACE_O = np.array([6.5, -7.0, 1.2, -0.4, 5.8])
_FACE_W = np.array([1.0, 2.0, 1.0, 3.0, 1.0])


def boundary_sphere(p: Mapping[str, Any]) -> float:
    x = _vec(p, D5)
    return float(np.sum(_FACE_W * (x - _FACE_O) ** 2))


_STEP_O = _shift("step_ellipsoid")
_STEP_W = 10.0 ** (2.0 * np.arange(D5) / (D5 - 1))


def step_ellipsoid(p: Mapping[str, Any]) -> float:
    """An ellipsoid of plateaus: each coordinate counts only in whole steps of 0.5."""
    z = _vec(p, D5) - _STEP_O
    return float(np.sum(_STEP_W * (np.round(2.0 * z) / 2.0) ** 2))


_PLATEAU_O = _shift("plateau_sphere")


def plateau_sphere(p: Mapping[str, Any]) -> float:
    """A sphere cut into flat unit terraces."""
    z = _vec(p, D5) - _PLATEAU_O
    return float(math.floor(np.sum(z * z)))


_RIDGE_O = _shift("sharp_ridge")


def sharp_ridge(p: Mapping[str, Any]) -> float:
    """A ridge with a kink along its whole length: one coordinate smooth, the rest a cone 100×
    steeper."""
    z = _vec(p, D5) - _RIDGE_O
    return float(z[0] ** 2 + 100.0 * math.sqrt(float(np.sum(z[1:] ** 2))))


_SECTOR_O = _shift("attractive_sector")


def attractive_sector(p: Mapping[str, Any]) -> float:
    """Steep (100×) on the side of each coordinate facing away from the centre, gentle on the
    other: the optimum sits at the corner of a narrow sector."""
    z = _vec(p, D5) - _SECTOR_O
    s = np.where(z * _SECTOR_O > 0, 100.0, 1.0)
    return float(np.sum((s * z) ** 2) ** 0.9)


_ELL_O = _shift("ellipsoid")
_ELL_W = 10.0 ** (6.0 * np.arange(D5) / (D5 - 1))


def ellipsoid(p: Mapping[str, Any]) -> float:
    """Condition number 10^6 along the axes."""
    z = _vec(p, D5) - _ELL_O
    return float(np.sum(_ELL_W * z * z))


_SCHAFFER_O = _shift("schaffer7")


def schaffer7(p: Mapping[str, Any]) -> float:
    """Schaffer's F7: concentric ripples whose frequency grows towards the optimum."""
    z = _vec(p, D5) - _SCHAFFER_O
    s = np.sqrt(z[:-1] ** 2 + z[1:] ** 2)
    terms = np.sqrt(s) + np.sqrt(s) * np.sin(50.0 * s**0.2) ** 2
    return float(np.mean(terms) ** 2)


_KATSUURA_O = _shift("katsuura")
_KATSUURA_J = 2.0 ** np.arange(1, 21)


def katsuura(p: Mapping[str, Any]) -> float:
    """Katsuura's function: a product of sawtooth sums, continuous and nowhere smooth."""
    z = _vec(p, D5) - _KATSUURA_O
    prod = 1.0
    for i in range(D5):
        t = _KATSUURA_J * z[i]
        saw = float(np.sum(np.abs(t - np.round(t)) / _KATSUURA_J))
        prod *= (1.0 + (i + 1) * saw) ** (10.0 / D5**1.2)
    return 10.0 / D5**2 * (prod - 1.0)


def _gallagher_peaks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(b"gallagher"))
    n = 21
    centres = rng.uniform(-4.0, 4.0, (n, D5))
    heights = np.concatenate([[10.0], 1.1 + 8.0 * np.arange(n - 1) / (n - 2)])
    # Each peak is an axis-aligned ellipsoid of condition up to 1000 (the global one 10^1.5).
    cond = np.concatenate([[10**1.5], 10 ** rng.uniform(0, 3, n - 1)])
    widths = np.array([rng.permutation(c ** (np.arange(D5) / (D5 - 1) - 0.5)) for c in cond])
    return centres, heights, widths


_GAL_C, _GAL_H, _GAL_W = _gallagher_peaks()


def gallagher(p: Mapping[str, Any]) -> float:
    """Gallagher's Gaussian peaks: 21 local optima of random position, height and shape."""
    x = _vec(p, D5)
    q = np.sum(_GAL_W * (x - _GAL_C) ** 2, axis=1) / (2.0 * D5)
    return float((10.0 - np.max(_GAL_H * np.exp(-q))) ** 2)


def schwefel(p: Mapping[str, Any]) -> float:
    """Schwefel's function: the best minimum lies near the edge, far from the second best."""
    x = _vec(p, D5)
    return float(418.9828872724338 * D5 - np.sum(x * np.sin(np.sqrt(np.abs(x)))))


def int_quadratic(p: Mapping[str, Any]) -> float:
    """Issue #12's stuck problem: a bowl over one continuous and one integer parameter."""
    return (float(p["x"]) - 0.3) ** 2 + (int(p["y"]) - 2) ** 2


# Each architecture has its own best depth, learning rate and width, and its own floor.
_ARCH = {
    "mlp": (3, -2.5, 7.0, 0.3),
    "cnn": (8, -3.0, 6.0, 0.0),
    "rnn": (5, -3.5, 8.0, 0.45),
    "transformer": (11, -3.8, 9.0, 0.1),
}


def mixed_arch(p: Mapping[str, Any]) -> float:
    depth_opt, lr_opt, width_opt, floor = _ARCH[p["arch"]]
    return (
        floor
        + 0.05 * (int(p["depth"]) - depth_opt) ** 2
        + (math.log10(float(p["lr"])) - lr_opt) ** 2
        + 0.1 * (math.log2(int(p["width"])) - width_opt) ** 2
    )


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        Problem(
            "branin",
            {"x0": _box(["x0"], -5, 10)["x0"], "x1": _box(["x1"], 0, 15)["x1"]},
            branin,
            0.397887,
            family="smooth",
        ),
        Problem(
            "six_hump_camel",
            {"x0": _box(["x0"], -3, 3)["x0"], "x1": _box(["x1"], -2, 2)["x1"]},
            six_hump_camel,
            -1.031628,
            family="smooth",
        ),
        Problem(
            "goldstein_price", _box(_names(2), -2, 2), goldstein_price, 3.0, family="conditioned"
        ),
        Problem("hartmann3", _box(_names(3), 0, 1), hartmann3, -3.86278, family="smooth"),
        Problem("hartmann6", _box(_names(6), 0, 1), hartmann6, -3.32237, family="multimodal"),
        Problem("rosenbrock4", _box(_names(4), -5, 10), rosenbrock4, 0.0, family="conditioned"),
        Problem("ackley5", _box(_names(5), -5, 10), ackley5, 0.0, family="multimodal"),
        Problem("levy6", _box(_names(6), -10, 10), levy6, 0.0, family="multimodal"),
        Problem("rastrigin4", _box(_names(4), -4, 5.12), rastrigin4, 0.0, family="rugged"),
        Problem(
            "styblinski_tang5",
            _box(_names(5), -5, 5),
            styblinski_tang5,
            -39.16617 * 5,
            family="multimodal",
        ),
        Problem(
            "michalewicz5", _box(_names(5), 0, math.pi), michalewicz5, -4.687658, family="rugged"
        ),
        Problem(
            "noisy_branin",
            {"x0": _box(["x0"], -5, 10)["x0"], "x1": _box(["x1"], 0, 15)["x1"]},
            branin,
            0.397887,
            noise_std=2.0,
            family="noisy",
        ),
        Problem(
            "noisy_hartmann6",
            _box(_names(6), 0, 1),
            hartmann6,
            -3.32237,
            noise_std=0.1,
            family="noisy",
        ),
        Problem(
            "int_styblinski",
            {
                **{f"i{k}": {"distribution": "int_uniform", "min": -5, "max": 5} for k in range(3)},
                **_box(["x0", "x1"], -5, 5),
            },
            int_styblinski,
            # per coordinate: f(-3) = -39 at the integer optimum, -39.166 at x = -2.9035
            0.5 * 3 * ((-3) ** 4 - 16 * 9 - 15) - 39.16617 * 2,
            family="mixed",
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
            family="mixed",
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
            family="mixed",
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
            family="mixed",
        ),
        Problem("linear_slope", _box(_names(D5), -5, 5), linear_slope, 0.0, family="boundary"),
        Problem(
            "boundary_sphere",
            _box(_names(D5), -5, 5),
            boundary_sphere,
            float(np.sum(_FACE_W * (np.clip(_FACE_O, -5, 5) - _FACE_O) ** 2)),
            family="boundary",
        ),
        Problem("schwefel", _box(_names(D5), -500, 500), schwefel, 0.0, family="boundary"),
        Problem("step_ellipsoid", _box(_names(D5), -5, 5), step_ellipsoid, 0.0, family="plateau"),
        Problem("plateau_sphere", _box(_names(D5), -5, 5), plateau_sphere, 0.0, family="plateau"),
        Problem("ellipsoid", _box(_names(D5), -5, 5), ellipsoid, 0.0, family="conditioned"),
        Problem("sharp_ridge", _box(_names(D5), -5, 5), sharp_ridge, 0.0, family="conditioned"),
        Problem(
            "attractive_sector",
            _box(_names(D5), -5, 5),
            attractive_sector,
            0.0,
            family="conditioned",
        ),
        Problem("schaffer7", _box(_names(D5), -5, 5), schaffer7, 0.0, family="rugged"),
        Problem("katsuura", _box(_names(D5), -5, 5), katsuura, 0.0, family="rugged"),
        Problem("gallagher", _box(_names(D5), -5, 5), gallagher, 0.0, family="multimodal"),
        Problem(
            "noisy_ellipsoid",
            _box(_names(D5), -5, 5),
            ellipsoid,
            0.0,
            noise_std=10.0,
            family="noisy",
        ),
        Problem(
            "int_quadratic",
            {
                "x": {"distribution": "uniform", "min": -5.0, "max": 5.0},
                "y": {"distribution": "int_uniform", "min": -5, "max": 5},
            },
            int_quadratic,
            0.0,
            family="mixed",
        ),
        Problem(
            "mixed_arch",
            {
                "arch": {"values": list(_ARCH)},
                "depth": {"distribution": "int_uniform", "min": 1, "max": 16},
                "lr": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1e-1},
                "width": {"values": [16, 32, 64, 128, 256, 512, 1024]},
            },
            mixed_arch,
            0.0,
            family="mixed",
        ),
    ]
}
