"""Worker-side command macros (interim): resolved on the worker, not the coordinator."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_ENVVAR = re.compile(r"\$\{envvar:([^}]*)\}")


def resolve_worker_macros(argv: list[str], *, interpreter: str, env: Mapping[str, str],
                          args_json_file: Callable[[], str]) -> list[str]:
    out: list[str] = []
    for token in argv:
        if token == "${env}":
            out.append("/usr/bin/env")
        elif token == "${interpreter}":
            out.append(interpreter)
        elif token == "${args_json_file}":
            out.append(args_json_file())
        else:
            out.append(_ENVVAR.sub(lambda m: env.get(m.group(1), m.group(1)), token))
    return out
