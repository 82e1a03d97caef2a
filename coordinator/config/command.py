"""The ``command`` argv template: validation at create time, rendering per run.

W&B's agent replaces an item only when the whole item is a macro (starts with ``${`` and ends
with ``}``), except ``${envvar:NAME}``, which may sit inside an item. W&B silently drops unknown
whole-item macros and passes embedded ones (``--lr=${lr}``) literally; sweepd refuses both at
create time, naming the macro, because either way the program would not get the value.

Rendering happens in two places. The coordinator renders ``${program}`` and every ``${args*}``
macro (:func:`render_argv`), once per run, when the run is created (:func:`run_command`; the
run keeps it as its ``command``); the worker resolves the machine-dependent ones
(:data:`WORKER_MACROS` and ``${envvar:NAME}``, see ``sweepd.common.macros``) in the items that
came from the template, and only there: the items ``${args*}`` rendered carry parameter values,
and a value is data, never a macro (``--v=${envvar:HOME}`` reaches the program as written,
as the value does in ``run.config``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Point, SweepConfig
from .parameters import Collector
from .points import nest

DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")
PROGRAM_MACRO = "${program}"
WORKER_MACROS = frozenset({"${env}", "${interpreter}", "${args_json_file}"})
ENVVAR = re.compile(r"\$\{envvar:([^}]*)\}")
_ANY_MACRO = re.compile(r"\$\{[^}]*\}")


def _pairs(prefix: str) -> Callable[[Mapping[str, Any]], list[str]]:
    return lambda args: [f"{prefix}{k}={v}" for k, v in args.items()]


def _no_equals(args: Mapping[str, Any]) -> list[str]:
    return [item for k, v in args.items() for item in (f"--{k}", str(v))]


def _no_boolean_flags(args: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in args.items():
        if v is True:
            out.append(f"--{k}")
        elif v is not False:
            out.append(f"--{k}={v}")
    return out


def _json(args: Mapping[str, Any]) -> list[str]:
    return [json.dumps(dict(args))]


# Each args macro expands to argv items from the run's top-level config; f-strings render values
# with str(), as W&B's agent does (True, None, 1e-05, {'lr': 0.1}).
ARGS_MACROS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "${args}": _pairs("--"),
    "${args_no_equals}": _no_equals,
    "${args_no_hyphens}": _pairs(""),
    "${args_append_hydra}": _pairs("+"),
    "${args_override_hydra}": _pairs("++"),
    "${args_no_boolean_flags}": _no_boolean_flags,
    "${args_json}": _json,
}
# Macros that hand the values to the program (``${args_json_file}`` is resolved by the worker).
VALUE_MACROS = frozenset(ARGS_MACROS) | {"${args_json_file}"}
KNOWN_MACROS = frozenset(ARGS_MACROS) | WORKER_MACROS | {PROGRAM_MACRO}


def is_macro(item: str) -> bool:
    return item.startswith("${") and item.endswith("}")


def parse_command(raw: Any, out: Collector) -> tuple[str, ...]:
    """The command template, every item a string, every macro one sweepd can expand."""
    if not isinstance(raw, list) or not raw:
        out.error(
            "command",
            f"command must be a non-empty list of argv items, got {type(raw).__name__}",
            "write one item per line: `- ${env}`, `- ${interpreter}`, `- ${program}`, `- ${args}`",
        )
        return DEFAULT_COMMAND
    items: list[str] = []
    converted: list[int] = []
    for i, item in enumerate(raw):
        where = f"command[{i}]"
        if isinstance(item, (list, dict)):
            out.error(where, f"command item {i} is a {type(item).__name__}, not a string")
            continue
        if not isinstance(item, str):
            converted.append(i)
            item = str(item)
        _check_macros(item, where, out)
        items.append(item)
    if converted:
        out.notice(
            f"command: items {', '.join(map(str, converted))} are not strings; each is passed "
            "as str() of its value (write them quoted to be explicit)"
        )
    return tuple(items)


def _check_macros(item: str, where: str, out: Collector) -> None:
    if ENVVAR.fullmatch(item) or item in KNOWN_MACROS:
        return
    for match in _ANY_MACRO.finditer(item):
        macro = match.group(0)
        if ENVVAR.fullmatch(macro):
            continue
        if macro in KNOWN_MACROS:
            out.error(
                where,
                f"macro {macro} must be a whole command item; inside {item!r} W&B passes it "
                "literally",
                f"put {macro} on its own line",
            )
            continue
        name = macro[2:-1]
        fix = (
            f"per-parameter macros do not exist; pass values with ${{args}} (--{name}=...) "
            "or read them from run.config"
        )
        if name.isupper():
            fix = f"for an environment variable write ${{envvar:{name}}}"
        out.error(where, f"unknown macro {macro} in command item {item!r}", fix)


@dataclass(frozen=True)
class RenderedArgv:
    """A run's argv as the coordinator renders it, and which of its items carry values."""

    argv: list[str]
    # Indexes of the items an ``${args*}`` macro rendered: the worker must not resolve macros
    # in them (workers.proto, Assign.literal_argv).
    literal: tuple[int, ...]


def render_argv(config: SweepConfig, params: Point) -> RenderedArgv:
    """The argv for one run, with worker-side macros left for the worker in template items.

    ``${program}`` becomes ``config.program`` (omitted when there is none: such a sweep only runs
    through ``agent(function=...)``, and parsing said so); every ``${args*}`` macro expands from
    the run's nested config in W&B's order, and its items are marked literal.
    """
    args = nest(params)
    argv: list[str] = []
    literal: list[int] = []
    for item in config.command:
        if item == PROGRAM_MACRO:
            if config.program is not None:
                argv.append(config.program)
        elif item in ARGS_MACROS:
            rendered = ARGS_MACROS[item](args)
            literal.extend(range(len(argv), len(argv) + len(rendered)))
            argv.extend(rendered)
        else:
            argv.append(item)
    return RenderedArgv(argv, tuple(literal))


def runs_on_workers(config: SweepConfig) -> bool:
    """Whether a `worker join` daemon can run the sweep: it has a program, or a command of its
    own. A sweep without either is for agent() and ask/tell clients only; a worker would run
    the bare interpreter with the arguments and fail every run."""
    return config.program is not None or "command" in config.raw


def run_command(config: SweepConfig, params: Point) -> RenderedArgv:
    """What a worker runs for the point ``params``: rendered once, when the run is created
    (and kept with it). Empty for a sweep no worker runs (:func:`runs_on_workers`): the
    template would render to a bare interpreter with arguments, which is nobody's command."""
    if not runs_on_workers(config):
        return RenderedArgv([], ())
    return render_argv(config, params)


def render_command(config: SweepConfig, params: Point) -> list[str]:
    """The argv of :func:`render_argv`, without the marks."""
    return render_argv(config, params).argv


def uses_value_macro(command: Sequence[str]) -> bool:
    return any(item in VALUE_MACROS for item in command)
