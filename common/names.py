"""Names and defaults every sweepd process agrees on, and the rule for ids from the wire."""

from __future__ import annotations

import re

# The queue a sweep and a worker are on when none is named.
DEFAULT_QUEUE = "default"

# Ids from the coordinator become directory names (``<run-id>.<attempt>``) and environment
# values: letters, digits, '-' and '_' only (no '/', no '.', so no path can climb out of the
# workdir and the attempt suffix stays unambiguous), bounded in length.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
MAX_ID_LENGTH = 200
# Attempts count from 1; far more than any retry limit, far less than a path can be hurt by.
MAX_ATTEMPT = 10**6


def check_wire_ids(run_id: str, sweep_id: str, attempt: int, where: str = "assign") -> str:
    """Why a run's ids from the coordinator cannot be used as given ("" if they can);
    ``where`` names the message they came in."""
    for name, value in (("run_id", run_id), ("sweep_id", sweep_id)):
        if not value:
            return f"{where}.{name}: empty"
        if len(value) > MAX_ID_LENGTH or not _SAFE_ID.fullmatch(value):
            return (f"{where}.{name}: {_quoted(value)!r} is not a valid id (letters, digits,"
                    f" '-' and '_', at most {MAX_ID_LENGTH}); refused, as it would be used"
                    " as a path")
    if not 1 <= attempt <= MAX_ATTEMPT:
        return f"{where}.attempt: {attempt} is outside 1 .. {MAX_ATTEMPT}"
    return ""


# How much of a refused id is quoted back.
QUOTE_CHARS = 120


def _quoted(text: str) -> str:
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."
