"""Following one started run: its metrics and output as they are written, and its end.

The daemon decides which runs to start and what their ends mean for the worker; this module
turns what a running program writes into the reports the coordinator gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sweepd.common.hints import missing_metric_notice
from sweepd.common.outcome import with_bad_lines
from sweepd.common.rundir import RunFiles
from sweepd.common.runfile import MetricsFollower

from .messages import Event, MetricBatch, RunFinished, RunKey, RunOutput
from .runner import (
    LOG_TAIL_BYTES,
    MAX_RECORDS_PER_BATCH,
    METRICS_POLL_S,
    OUTPUT_POLL_S,
    Outcome,
    OutputFollower,
    RunningRun,
    read_tail,
)

log = logging.getLogger("sweepd.worker")

# A reason the worker sends stays well under the coordinator's text limit (4096): a report
# refused for its size would leave the run without an end.
MAX_REASON_CHARS = 1000


@dataclass
class HeldRun:
    """A run this worker started, kept until the coordinator acknowledged its end."""

    running: RunningRun
    follower: MetricsFollower
    output: OutputFollower
    done: bool = False  # its RunFinished is queued; kept until acknowledged
    # Every metric name the run logged, for the notice when the sweep's metric is not one.
    logged: set[str] = field(default_factory=set)

    @classmethod
    def following(cls, running: RunningRun) -> HeldRun:
        return cls(running=running, follower=MetricsFollower(running.files.metrics),
                   output=OutputFollower(running.files.output))

    @property
    def key(self) -> RunKey:
        return self.running.spec.run_id, self.running.spec.attempt


class Reporter:
    """Sends what runs write: metrics as events (kept until acknowledged), output best
    effort (the final tail travels with RunFinished)."""

    def __init__(self, send_event: Callable[[Event], None],
                 send_output: Callable[[RunOutput], None]) -> None:
        self.send_event = send_event
        self.send_output = send_output

    async def follow(self, held: HeldRun, exited: Awaitable[Outcome]) -> Outcome:
        """Reports metrics and output until ``exited`` is done, then the last of them."""
        waiter = asyncio.ensure_future(exited)
        try:
            loop = asyncio.get_running_loop()
            next_output = loop.time() + OUTPUT_POLL_S
            while not waiter.done():
                await asyncio.wait({waiter}, timeout=METRICS_POLL_S)
                self.metrics(held, final=False)
                if loop.time() >= next_output:
                    self.output(held)
                    next_output = loop.time() + OUTPUT_POLL_S
        except BaseException:
            waiter.cancel()
            raise
        self.metrics(held, final=True)
        self.output(held)
        return waiter.result()

    def output(self, held: HeldRun) -> None:
        data = held.output.read_new()
        if data:
            run_id, attempt = held.key
            self.send_output(RunOutput(run_id=run_id, attempt=attempt, data=data))

    def metrics(self, held: HeldRun, *, final: bool) -> None:
        records = held.follower.read_new(final=final)
        for record in records:
            held.logged.update(record.values)
        run_id, attempt = held.key
        bad = held.follower.take_bad()
        if bad:
            # Into the run's own output (so `sweep logs` shows it beside the program's lines)
            # and the worker's log; the count and the first one also go in its end reason.
            notes = [f"sweepd: {held.follower.path.name} line {b.number} ignored: {b.why}"
                     for b in bad]
            for note in notes:
                log.warning("run %s: %s", run_id, note.removeprefix("sweepd: "))
            with contextlib.suppress(OSError):  # a courtesy: never worth ending the run for
                append_output(held.running.run_dir, "\n".join(notes))
        for start in range(0, len(records), MAX_RECORDS_PER_BATCH):
            self.send_event(MetricBatch(run_id=run_id, attempt=attempt,
                                        records=records[start:start + MAX_RECORDS_PER_BATCH]))


def check_metric_logged(held: HeldRun) -> None:
    """A run that finished without logging the sweep's metric while it logged others: a
    notice (with "did you mean") in the worker's log and the run's output. The coordinator puts
    the same notice on the run and the sweep."""
    logged = sorted(k for k in held.logged if not k.startswith("_"))
    notice = missing_metric_notice(held.running.spec.metric_name, logged)
    if notice:
        log.warning("run %s: %s", held.key[0], notice)
        with contextlib.suppress(OSError):
            append_output(held.running.run_dir, f"sweepd: {notice}")


def end_reason(held: HeldRun, outcome: Outcome) -> str:
    """The outcome's reason, and how many metrics lines could not be used, if any."""
    return with_bad_lines(outcome.reason, held.follower)


def finished(held: HeldRun, outcome: Outcome, reason: str) -> RunFinished:
    run_id, attempt = held.key
    return RunFinished(run_id=run_id, attempt=attempt, state=outcome.state,
                       reason=clip(reason), time=outcome.time, exit_code=outcome.exit_code,
                       log_tail=read_tail(held.running.files.output, LOG_TAIL_BYTES))


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    text = text.encode("utf-8", errors="replace").decode("utf-8")  # no lone surrogates
    return text if len(text) <= limit else text[:limit - 3] + "..."


def append_output(run_dir: Path, text: str) -> None:
    # Appending beside the program is safe: both write with O_APPEND, a line at a time.
    with open(RunFiles(run_dir).output, "a", encoding="utf-8", errors="replace") as f:
        f.write(text + "\n")
