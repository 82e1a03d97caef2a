"""The contract between a run and whatever started it (a worker, or the notebook agent).

A run finds its place through environment variables (``SWEEPD_*`` below) and reports metrics by
appending JSON lines to ``$SWEEPD_METRICS_FILE``: one object per line, ``{"loss": 0.3,
"epoch": 2}``, with optional ``_step`` and ``_timestamp`` keys. Any language can write it;
``sweepd.client.run`` does. This module owns the names and the format: the in-run API writes
it, and the worker and the agent read it with :class:`MetricsFollower`, so the three never
disagree about a line. Pure Python and light: a training script imports it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_RUN_ID = "SWEEPD_RUN_ID"
ENV_SWEEP_ID = "SWEEPD_SWEEP_ID"
ENV_ATTEMPT = "SWEEPD_ATTEMPT"
ENV_RUN_DIR = "SWEEPD_RUN_DIR"
ENV_CONFIG_FILE = "SWEEPD_CONFIG_FILE"
ENV_METRICS_FILE = "SWEEPD_METRICS_FILE"
ENV_STOP_FILE = "SWEEPD_STOP_FILE"

# Unusable metrics lines named in a run's output; the rest are only counted (a program that
# writes nothing but garbage would otherwise fill its output, and the disk, with our notes).
MAX_BAD_LINES_NOTED = 100


@dataclass(frozen=True)
class Record:
    index: int
    step: int
    time: float
    values: dict[str, float]


# What one line may hold. A record the coordinator would refuse costs the whole batch it
# travels in (up to MAX_RECORDS_PER_BATCH records), so a line over these is refused here, alone.
# They match coordinator/limits.py (MAX_METRIC_VALUES, MAX_NAME_LENGTH).
MAX_METRIC_VALUES = 1000
MAX_METRIC_NAME_LENGTH = 256
# Protobuf's int64 (a step) and Timestamp (0001-01-01 .. 9999-12-31) ranges: a value outside
# them cannot be put on the wire at all. Steps are counted from 0; a timestamp is seconds since
# the epoch (a milliseconds one is past year 9999 and is refused with a hint).
MAX_STEP = 2**63 - 1
MAX_TIMESTAMP_S = 253_402_300_799.0
MIN_TIMESTAMP_S = -62_135_596_800.0
# How much of a refused line is quoted back in the run's output.
QUOTE_CHARS = 120


class UnusableLine(ValueError):
    """A metrics line that cannot be used; ``str()`` says why, for the user to read."""


def _quote(text: str) -> str:
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def _describe(value: Any) -> str:
    if isinstance(value, int) and len(str(abs(value))) > 30:
        return f"a {len(str(abs(value)))}-digit integer"
    return _quote(repr(value))


class _TooLarge:
    """A JSON number written out past a double's range (``1e999``), which ``json`` would read
    as infinity: refused, as an integer too large is, so that only ``Infinity`` (what
    ``json.dumps`` writes for a diverged value) is stored as infinite."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _parse_float(text: str) -> float | _TooLarge:
    value = float(text)
    return _TooLarge(text) if math.isinf(value) else value


def read_metric_line(line: str) -> tuple[dict[str, float], int | None, float | None]:
    """(values, step, time) of one metrics line; raises ``UnusableLine`` saying why not.

    Non-numeric values (strings, lists, media) are skipped, as W&B's sweeps skip them; a line
    is refused only when what it says cannot be stored as it says it.
    """
    try:
        obj = json.loads(line, parse_float=_parse_float)
    except ValueError as exc:
        raise UnusableLine(f"not JSON ({exc})") from None
    except RecursionError:
        raise UnusableLine("not JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise UnusableLine(f"a JSON {type(obj).__name__}, not an object of metric values")
    step = obj.pop("_step", None)
    stamp = obj.pop("_timestamp", None)
    step_int: int | None = None
    if step is not None:
        if isinstance(step, float) and math.isfinite(step) and step.is_integer():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int):
            raise UnusableLine(f"_step is {_describe(step)}; write a whole number")
        if not 0 <= step <= MAX_STEP:
            raise UnusableLine(f"_step is {_describe(step)}, outside 0 .. 2**63-1")
        step_int = step
    time_f: float | None = None
    if stamp is not None:
        if isinstance(stamp, _TooLarge):
            raise UnusableLine(f"_timestamp is {_describe(stamp)}, not a time")
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
            raise UnusableLine(f"_timestamp is {_describe(stamp)}; write seconds since the"
                               " epoch")
        try:
            time_f = float(stamp)
        except OverflowError:
            time_f = math.inf
        if not (math.isfinite(time_f) and MIN_TIMESTAMP_S <= time_f <= MAX_TIMESTAMP_S):
            hint = (" (milliseconds? write seconds since the epoch)"
                    if math.isfinite(time_f) and time_f > MAX_TIMESTAMP_S else "")
            raise UnusableLine(f"_timestamp is {_describe(stamp)}, not a time{hint}")
    values: dict[str, float] = {}
    for key, value in obj.items():
        if isinstance(value, _TooLarge):
            raise UnusableLine(f"{_quote(key)!r} is {_describe(value)}, too large for a"
                               " double")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # strings, lists, media: not metrics the coordinator can compare
        if not key:
            raise UnusableLine("a metric with an empty name; name every metric")
        if len(key) > MAX_METRIC_NAME_LENGTH:
            raise UnusableLine(f"metric name {_quote(key)!r} is {len(key)} characters, over"
                               f" the limit of {MAX_METRIC_NAME_LENGTH}")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:  # JSON can escape a lone surrogate; protobuf cannot carry it
            raise UnusableLine(f"metric name {_quote(key)!r} is not valid Unicode (a lone"
                               " surrogate)") from None
        try:
            values[key] = float(value)
        except OverflowError:
            raise UnusableLine(f"{_quote(key)!r} is {_describe(value)}, too large for a"
                               " double") from None
    if len(values) > MAX_METRIC_VALUES:
        raise UnusableLine(f"{len(values)} metric values, over the limit of"
                           f" {MAX_METRIC_VALUES} per line")
    return values, step_int, time_f


def parse_metric_line(line: str) -> tuple[dict[str, float], int | None, float | None] | None:
    """(values, step, time) of one metrics line, or None if it cannot be used."""
    try:
        return read_metric_line(line)
    except UnusableLine:
        return None


@dataclass(frozen=True)
class BadLine:
    number: int  # 1-based line number in the metrics file
    why: str


class MetricsFollower:
    """Reads complete lines appended to a metrics file since the last read.

    A line that cannot be used is skipped and counted (``bad_lines``); ``take_bad()`` hands
    over the ones not yet reported, so that the run's output and events can say which and why.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._line_number = 0
        self.next_index = 0
        self.bad_lines = 0
        self.first_bad: BadLine | None = None
        self._new_bad: list[BadLine] = []

    def take_bad(self) -> list[BadLine]:
        bad, self._new_bad = self._new_bad, []
        return bad

    def read_new(self, final: bool = False) -> list[Record]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        # The last piece has no newline yet: the program is mid-write. Keep it for next time,
        # unless the program has exited and will write no more.
        self._partial = b"" if final else lines.pop()
        records = []
        now = time.time()
        for raw in lines:
            self._line_number += 1
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                values, step, stamp = read_metric_line(text)
            except UnusableLine as exc:
                self._note_bad(BadLine(self._line_number, str(exc)))
                continue
            except Exception as exc:  # a line must never end the follower
                self._note_bad(BadLine(self._line_number, f"{type(exc).__name__}: {exc}"))
                continue
            index = self.next_index
            self.next_index += 1
            records.append(Record(index=index, step=index if step is None else step,
                                  time=now if stamp is None else stamp, values=values))
        return records

    def _note_bad(self, bad: BadLine) -> None:
        self.bad_lines += 1
        if self.first_bad is None:
            self.first_bad = bad
        if self.bad_lines <= MAX_BAD_LINES_NOTED:
            self._new_bad.append(bad)
        elif self.bad_lines == MAX_BAD_LINES_NOTED + 1:
            self._new_bad.append(BadLine(bad.number, (
                f"{bad.why}; this and further unusable lines are counted, not listed (the"
                " count is in the run's end reason)")))
