"""Every size limit the coordinator enforces on what clients and workers send, in one place.

Each bounds how much memory, disk or CPU one request can make the coordinator spend; a
request over a limit is refused with INVALID_ARGUMENT (malformed) or RESOURCE_EXHAUSTED (too
much), naming the limit, and the coordinator carries on unharmed.
"""

from __future__ import annotations

from typing import Literal

# The largest message on any channel, defined once where clients and workers read it too.
from sweepd.common.transport import MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES

from .errors import InvalidArgument

# The largest request the coordinator accepts. A sweep config, a metric batch or a run's log
# tail fit with room to spare; anything bigger is a mistake or an attack. (Answers may be
# larger, up to MAX_MESSAGE_BYTES: paged lists stay under MAX_PAGE_BYTES.)
MAX_REQUEST_BYTES = 8 * 1024 * 1024
# A sweep configuration's text: the largest real configs are a few KiB; 1 MiB leaves room for
# long generated value lists without letting one sweep fill the database.
MAX_CONFIG_BYTES = 1024 * 1024
# Parameters in one sweep: beyond this no search method is meaningful, and every run stores
# its point.
MAX_PARAMETERS = 1000
# Records in one metric batch (the worker sends at most 500: worker/runner.py).
MAX_METRIC_BATCH = 10_000
# Values in one metric record, and the length of a metric name.
MAX_METRIC_VALUES = 1000
MAX_NAME_LENGTH = 256
# Free text (reasons, source names, labels, ids) in one field.
MAX_TEXT_LENGTH = 4096
# A run's argv as its worker reports it: no exec() could have started a longer one (Linux's
# MAX_ARG_STRLEN is 128 KiB per item; ARG_MAX is 2 MiB with the default 8 MiB stack).
MAX_ARGV_ITEM_BYTES = 128 * 1024
MAX_ARGV_BYTES = 2 * 1024 * 1024
# Items of a run's argv: one per parameter (MAX_PARAMETERS) and a few around them, with room.
MAX_ARGV_ITEMS = 4096
# GPUs and queues one worker may name: more than any machine has or any operator writes.
MAX_WORKER_GPUS = 256
MAX_WORKER_QUEUES = 100
# ListRuns pages: the default and largest number of runs per answer, and the size at which an
# answer ends early whatever its count (runs with long argv or many parameters), well under
# MAX_MESSAGE_BYTES. A page of 1000 typical runs is about 0.5 MB.
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000
MAX_PAGE_BYTES = MAX_MESSAGE_BYTES // 4
# Runs one sweep may create: a grid this large is a mistake; it also bounds the in-memory view.
MAX_RUNS_PER_SWEEP = 100_000
# A per-sweep retry limit above this would retry a broken point forever in effect.
MAX_RETRIES_LIMIT = 100
# Slots one worker may offer: more than any machine has, and it bounds how many runs one
# hello can draw from the queue at once.
MAX_WORKER_SLOTS = 1024
# Labels one worker may carry.
MAX_LABELS = 100
# The largest integer accepted where the coordinator stores or counts from it (a message's
# seq, a metric record's index): SQLite's INTEGER is a signed 64-bit number, and the next
# expected index (index + 1) must fit too.
MAX_WIRE_INT = 2**63 - 2


# The limits the checks below take by name (the name goes into the error, so that a user can
# find it here): a name that is not one of these is a type error, not a lookup at run time.
TextLimit = Literal["MAX_TEXT_LENGTH", "MAX_NAME_LENGTH"]
CountLimit = Literal["MAX_ARGV_ITEMS", "MAX_WORKER_GPUS", "MAX_WORKER_QUEUES"]
_LIMITS: dict[TextLimit | CountLimit, int] = {
    "MAX_TEXT_LENGTH": MAX_TEXT_LENGTH,
    "MAX_NAME_LENGTH": MAX_NAME_LENGTH,
    "MAX_ARGV_ITEMS": MAX_ARGV_ITEMS,
    "MAX_WORKER_GPUS": MAX_WORKER_GPUS,
    "MAX_WORKER_QUEUES": MAX_WORKER_QUEUES,
}


def check_text(field: str, value: str, limit: TextLimit = "MAX_TEXT_LENGTH") -> str:
    """``value`` if it is within the length limit named ``limit``; else InvalidArgument naming
    the field and the limit (nothing is stored, the request is refused whole)."""
    most = _LIMITS[limit]
    if len(value) > most:
        raise InvalidArgument(f"{field}: {len(value)} characters, over the limit of {most}"
                              f" ({limit}); send a shorter one")
    return value


def check_count(field: str, count: int, limit: CountLimit) -> None:
    most = _LIMITS[limit]
    if count > most:
        raise InvalidArgument(f"{field}: {count} items, over the limit of {most} ({limit})")


def clip_text(value: str, limit: TextLimit = "MAX_TEXT_LENGTH") -> str:
    """``value`` cut to the named limit, saying so: for text that must not make its message
    refused (a worker's reason for a run's end: the end itself must be recorded)."""
    most = _LIMITS[limit]
    if len(value) <= most:
        return value
    mark = f"... ({len(value) - most} more characters cut, {limit})"
    return value[:max(most - len(mark), 0)] + mark
