"""Rendering of client results: aligned tables for people, JSON for programs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any


def to_json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False, default=str)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[cell_text(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def cell_text(value: Any) -> str:
    """One table cell. User values (parameters, reasons) are shown as text: a newline or an
    escape sequence in them must not break the table or drive the terminal."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ",".join(f"{k}={cell_text(v)}" for k, v in value.items())
    return printable(str(value))


def printable(text: str) -> str:
    """Control characters (newlines, ESC, ...) as their escapes, the rest unchanged."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def when(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: float | None, end: float | None) -> str:
    if start is None:
        return "-"
    seconds = (end if end is not None else dt.datetime.now().timestamp()) - start
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"
