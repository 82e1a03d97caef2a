"""Every size limit the coordinator enforces on what clients and workers send, in one place.

Each bounds how much memory, disk or CPU one request can make the coordinator spend; a
request over a limit is refused with INVALID_ARGUMENT (malformed) or RESOURCE_EXHAUSTED (too
much), naming the limit, and the coordinator carries on unharmed.
"""

from __future__ import annotations

# The largest gRPC message the coordinator accepts. A sweep config, a metric batch or a run's
# log tail fit with room to spare; anything bigger is a mistake or an attack.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
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
# Runs one sweep may create: a grid this large is a mistake; it also bounds the in-memory view.
MAX_RUNS_PER_SWEEP = 100_000
# A per-sweep retry limit above this would retry a broken point forever in effect.
MAX_RETRIES_LIMIT = 100
# Slots one worker may offer: more than any machine has, and it bounds how many runs one
# hello can draw from the queue at once.
MAX_WORKER_SLOTS = 1024
# Labels one worker may carry.
MAX_LABELS = 100
