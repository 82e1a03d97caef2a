"""Checks of what callers send, against the limits: pure functions, no state."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .. import limits
from ..config import SweepConfig, parse_config
from ..domain import MetricRecord, Run, WorkerInfo
from ..errors import FailedPrecondition, InvalidArgument, ResourceExhausted, SweepdError
from .messages import Hello

log = logging.getLogger("sweepd.coordinator")


def check_sweep_options(queue: str, max_concurrent: int, max_retries: int | None) -> None:
    """A new sweep's options beside its config (``max_retries``: None for the config's)."""
    if max_concurrent < 0:
        raise InvalidArgument(f"max_concurrent: {max_concurrent} is negative; 0 for no limit")
    limits.check_text("queue", queue, "MAX_NAME_LENGTH")
    if max_retries is not None and not 0 <= max_retries <= limits.MAX_RETRIES_LIMIT:
        raise InvalidArgument(f"max_retries: {max_retries} is not between 0 and"
                              f" {limits.MAX_RETRIES_LIMIT} (MAX_RETRIES_LIMIT)")


def check_record_order(run: Run, records: Sequence[MetricRecord]) -> list[MetricRecord]:
    """The records of a batch not stored yet, in index order; refuses a batch that would
    leave a hole in the run's history or that holds one index twice.

    A run's history is the records 0, 1, 2 ... with no gaps, so every index below
    ``next_record_index`` is stored: a record below it is a resend and is skipped (it was
    stored before, it is not dropped). A record beyond the next expected index is refused,
    with the whole batch, naming the index to send first: storing it would make the missing
    ones look like resends later.
    """
    seen: dict[int, int] = {}
    for i, rec in enumerate(records):
        if rec.index in seen:
            raise InvalidArgument(
                f"records[{i}].index: {rec.index} appears twice in this batch (also at"
                f" records[{seen[rec.index]}]); give each record its own index"
            )
        seen[rec.index] = i
    fresh = sorted((r for r in records if r.index >= run.next_record_index),
                   key=lambda r: r.index)
    expected = run.next_record_index
    for rec in fresh:
        if rec.index != expected:
            stored = (f"has records 0..{run.next_record_index - 1}"
                      if run.next_record_index else "has no records yet")
            raise InvalidArgument(
                f"records[{seen[rec.index]}].index: {rec.index} skips ahead: the batch has no"
                f" record {expected}; run {run.id} (attempt {run.attempt}) {stored} and accepts"
                f" {run.next_record_index} next: send a batch without gaps from"
                f" {run.next_record_index} on (nothing of this batch was stored)"
            )
        expected += 1
    return fresh


def check_records(records: Sequence[MetricRecord]) -> None:
    """Refuses a metric batch over the limits, naming the limit."""
    if len(records) > limits.MAX_METRIC_BATCH:
        raise ResourceExhausted(f"records: {len(records)} in one batch, over the limit of"
                                f" {limits.MAX_METRIC_BATCH} (MAX_METRIC_BATCH)")
    for i, rec in enumerate(records):
        if len(rec.values) > limits.MAX_METRIC_VALUES:
            raise ResourceExhausted(f"records[{i}].values: {len(rec.values)}, over the limit"
                                    f" of {limits.MAX_METRIC_VALUES} (MAX_METRIC_VALUES)")
        for key in rec.values:
            if len(key) > limits.MAX_NAME_LENGTH:
                raise InvalidArgument(f"records[{i}].values: a name of {len(key)} characters,"
                                      f" over the limit of {limits.MAX_NAME_LENGTH}"
                                      " (MAX_NAME_LENGTH)")


def read_config(config_text: str, source_name: str = "") -> SweepConfig:
    """A sweep's configuration text, checked against the limits and parsed.

    Pure and thread-safe: CPU-bound on a large config, so the servicer runs it in an executor
    and a config cannot stall the event loop (heartbeats, every other call).
    """
    size = len(config_text.encode("utf-8", "surrogatepass"))
    if size > limits.MAX_CONFIG_BYTES:
        raise ResourceExhausted(f"config_text: {size} bytes, over the limit of"
                                f" {limits.MAX_CONFIG_BYTES} (MAX_CONFIG_BYTES)")
    limits.check_text("source_name", source_name)
    try:
        config = parse_config(config_text, filename=source_name or None)
    except SweepdError:
        raise
    except Exception as exc:
        # The parser should report every problem itself; this keeps one it missed (a YAML
        # reader error on control characters, say) a refusal rather than a server fault.
        log.warning("config parser raised %s; refused as invalid", type(exc).__name__)
        raise InvalidArgument(f"config_text: cannot be read: {exc}") from None
    if len(config.parameters) > limits.MAX_PARAMETERS:
        raise InvalidArgument(f"parameters: {len(config.parameters)}, over the limit of"
                              f" {limits.MAX_PARAMETERS} (MAX_PARAMETERS)")
    return config


def refuse_taken_over(hello: Hello, known: WorkerInfo) -> None:
    """A process that had messages acknowledged under this worker id, returning after another
    process (another incarnation) took the id: its sequence numbers mean nothing here any
    more, and the runs it held were given away when the other one connected. Reconnecting
    cannot help, so the worker stops on this refusal."""
    raise FailedPrecondition(
        f"hello.worker_id: {hello.worker_id!r} was taken by another worker process (host"
        f" {known.host!r}) since this process last connected; the runs this process held"
        " were handed out again. Stop this worker, and give each worker its own --worker-id"
    )
