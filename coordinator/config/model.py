"""Typed sweep configuration: what a W&B ``sweep.yaml`` means once parsed and validated.

Everything downstream (search, stopping, the dispatcher, command rendering) reads these frozen
dataclasses and never the raw mapping. Parameters are *flattened*: a nested parameter
``optimizer: {parameters: {lr: ...}}`` becomes one ``Parameter`` whose ``path`` is
``("optimizer", "lr")``. Paths are tuples, not dotted strings, because W&B allows dots inside
names (``model.lr`` is one Hydra-style name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .early_terminate import EarlyTerminate

# A parameter value as a run receives it: JSON-like. Lists and dicts occur as categorical
# choices (``values: [[2, 2], [3, 3]]``) and as constants.
Value: TypeAlias = Any
ParamPath: TypeAlias = tuple[str, ...]
# A point of the search space, keyed by flattened path.
Point: TypeAlias = Mapping[ParamPath, Value]

Distribution = Literal[
    "constant",
    "categorical",
    "categorical_w_probabilities",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
]

Goal = Literal["minimize", "maximize"]
Impute = Literal["latest", "best", "worst"]


@dataclass(frozen=True)
class Parameter:
    """One searchable (or constant) parameter, its distribution resolved.

    Only the fields that the distribution uses are set; the others stay ``None``.
    ``q`` keeps its YAML type: an ``int`` q makes quantised samples ints (W&B semantics).
    """

    path: ParamPath
    distribution: Distribution
    value: Value = None  # constant
    values: tuple[Value, ...] | None = None  # categorical, categorical_w_probabilities
    probabilities: tuple[float, ...] | None = None
    min: float | int | None = None
    max: float | int | None = None
    q: float | int | None = None
    mu: float | None = None
    sigma: float | None = None
    a: float | None = None
    b: float | None = None

    @property
    def name(self) -> str:
        """Human-readable dotted path, for messages and tables only (not a key)."""
        return ".".join(self.path)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    goal: Goal = "minimize"
    target: float | None = None
    impute: Impute = "worst"
    impute_while_running: Impute | None = None


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep configuration.

    ``parameters`` are in W&B's canonical order (sorted by flattened name), which is the
    order grid search walks and the order ``${args}`` renders.
    ``early_terminate`` holds the validated early-termination settings (one frozen dataclass
    per rule type, ``config.early_terminate``; ``stopping.rule_for`` builds the rule) or
    ``None``. ``raw`` is the configuration exactly as the user wrote it, stored with the
    sweep; ``notices`` are the non-fatal remarks shown back to the user.
    """

    method: str
    parameters: tuple[Parameter, ...]
    metric: MetricSpec | None = None
    early_terminate: EarlyTerminate | None = None
    program: str | None = None
    command: tuple[str, ...] = ("${env}", "${interpreter}", "${program}", "${args}")
    run_cap: int | None = None
    # sweepd's own key: retries of a LOST run's point (None: the coordinator's default).
    max_retries: int | None = None
    # sweepd's own key: seeds search, so that the same config, seed and history give the same
    # suggestions (None: seeded by the sweep's id, which differs between sweeps).
    seed: int | None = None
    name: str | None = None
    description: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
