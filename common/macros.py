"""Worker-side command macros: the few a coordinator cannot resolve, because they depend on the
machine that runs the program.

The coordinator renders every ``${args*}`` macro and ``${program}``; the argv it sends may still
hold ``${env}``, ``${interpreter}``, ``${args_json_file}`` (whole items) and ``${envvar:NAME}``
(anywhere inside an item). This module resolves them, as W&B's agent does, with one deliberate
difference: ``${interpreter}`` is the worker's own Python rather than a literal ``python``, so
the program runs in the environment the worker was installed in.

Macros belong to the command template only. The items the coordinator rendered from parameter
values (``Assign.literal_argv``) pass unchanged: a parameter value ``${envvar:HOME}`` or
``${interpreter}`` is data, and the program gets it as written, as ``run.config`` shows it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Collection, Mapping

ENV_MACRO = "${env}"
INTERPRETER_MACRO = "${interpreter}"
ARGS_JSON_FILE_MACRO = "${args_json_file}"
# W&B's `env` launcher; Windows has none, so W&B drops the item there and so do we.
ENV_PROGRAM = "/usr/bin/env"
ENVVAR = re.compile(r"\$\{envvar:([^}]*)\}")


def resolve_worker_macros(
    argv: list[str],
    *,
    interpreter: str,
    env: Mapping[str, str],
    args_json_file: Callable[[], str],
    windows: bool | None = None,
    literal: Collection[int] = (),
) -> list[str]:
    """``argv`` with the worker-side macros replaced in every item but those at the indexes in
    ``literal`` (the items that carry parameter values), which are passed unchanged.

    ``args_json_file`` is called only when the macro occurs (it writes the file and returns its
    path). An unset ``${envvar:NAME}`` becomes ``NAME``, as in W&B. ``windows`` defaults to
    whether this process runs on Windows.
    """
    on_windows = sys.platform == "win32" if windows is None else windows
    literal = frozenset(literal)
    out: list[str] = []
    json_path: str | None = None
    for i, item in enumerate(argv):
        if i in literal:
            out.append(item)
        elif item == ENV_MACRO:
            if not on_windows:
                out.append(ENV_PROGRAM)
        elif item == INTERPRETER_MACRO:
            out.append(interpreter)
        elif item == ARGS_JSON_FILE_MACRO:
            if json_path is None:
                json_path = args_json_file()
            out.append(json_path)
        else:
            out.append(ENVVAR.sub(lambda m: env.get(m.group(1), m.group(1)), item))
    return out
