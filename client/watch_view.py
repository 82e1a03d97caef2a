"""``sweep watch``: what the WatchSweep feed says, for a person at a terminal or for a log.

:class:`WatchState` folds the feed's updates (the sweep, then each run as it changes) into what
the view needs: the latest sweep, every run's latest state, and the last few events. Two ways
to show it read that one state:

- :func:`live_view`, on a terminal: a screen redrawn in place (rich): a progress bar of
  finished runs out of ``run_cap`` or the grid's size, the best run so far with its
  parameters, the running runs with their latest metric and step, counts by state, and the
  last events;
- plain lines (:meth:`WatchState.apply` returns them), when the output is a file or a pipe:
  one line per run state change and per new best run, nothing redrawn.

The grid's size comes from the coordinator's own config parser, through ``sweep validate``'s
module (the client's one allowed edge to the coordinator), so the total is the coordinator's
count, not a copy's.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .format import cell_text, duration, printable, when
from .validate import grid_size_of

# Events kept on the live screen: enough to see what just happened, few enough to fit.
LAST_EVENTS = 6
# Running runs listed on the live screen; more are summed up in one line.
MAX_RUNNING_SHOWN = 8
# Redraws per second: the elapsed times tick, and a burst of updates costs one redraw.
REFRESH_PER_S = 4
# How often the step of each running run is read (GetRun with its history): the feed carries
# metric values but not steps, and a step a second or two old is fine to look at.
STEP_POLL_S = 2.0
ENDED = ("FINISHED", "FAILED", "STOPPED", "CANCELED", "LOST")


class WatchState:
    """The sweep as the feed has told it so far."""

    def __init__(self, sweep_id: str) -> None:
        self.sweep_id = sweep_id
        self.sweep: dict[str, Any] | None = None
        self.runs: dict[str, dict[str, Any]] = {}
        self.steps: dict[str, int] = {}
        self.events: deque[str] = deque(maxlen=LAST_EVENTS)
        self.metric = ""
        self.maximize = False
        self.total: int | None = None
        self.best: dict[str, Any] | None = None
        self.lock = threading.Lock()  # the step poller writes steps while the feed is read

    def apply(self, update: dict[str, Any]) -> list[str]:
        """Takes one update of the feed; returns the plain lines it is worth (maybe none)."""
        with self.lock:
            if "sweep" in update:
                return self._sweep(update["sweep"])
            return self._run(update["run"])

    def _sweep(self, sweep: dict[str, Any]) -> list[str]:
        first = self.sweep is None
        self.sweep = sweep
        lines = []
        if first:
            metric = sweep["metric"] or {}
            self.metric = metric.get("name", "")
            self.maximize = metric.get("goal") == "maximize"
            self.total = sweep["run_cap"]
            lines.append(f"watching sweep {self.sweep_id} ({sweep['state']}); Ctrl+C to stop"
                         " watching (the sweep goes on)")
        return lines

    def _run(self, r: dict[str, Any]) -> list[str]:
        before = self.runs.get(r["id"])
        self.runs[r["id"]] = r
        lines = []
        if before is None or before["state"] != r["state"]:
            value = r["summary"].get(self.metric) if self.metric else None
            line = "  ".join(part for part in (
                when(r["ended_at"] or r["started_at"] or r["created_at"]), f"{r['id']:<12}",
                f"{r['state']:<9}", cell_text(r["params"]),
                f"{self.metric}={cell_text(value)}" if value is not None else "",
                printable(r["reason"])) if part)
            lines.append(line)
            self.events.append(line)
        if r["state"] == "FINISHED" and self._improves(r):
            self.best = r
            line = (f"{when(r['ended_at'])}  new best: {r['id']} {self.metric}="
                    f"{cell_text(r['summary'][self.metric])}  {cell_text(r['params'])}")
            lines.append(line)
            self.events.append(line)
        return lines

    def _improves(self, r: dict[str, Any]) -> bool:
        value = r["summary"].get(self.metric) if self.metric else None
        if not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if self.best is None:
            return True
        best = self.best["summary"][self.metric]
        return bool(value > best) if self.maximize else bool(value < best)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.runs.values():
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        return counts

    def running(self) -> list[dict[str, Any]]:
        return [r for r in self.runs.values() if r["state"] in ("ASSIGNED", "RUNNING")]

    def render(self) -> Any:
        """The live screen (a rich renderable), drawn from the state as it is now."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        if self.total is None and self.sweep is not None and self.sweep["method"] == "grid":
            # Here, in the drawing thread, not in apply(): parsing imports the coordinator's
            # config code (a second or more), and the feed must not wait for it.
            self.total = grid_size_of(self.sweep["config"]) or 0
        with self.lock:
            sweep = self.sweep or {}
            counts = self.counts()
            finished = sum(counts.get(s, 0) for s in ENDED)
            parts: list[Any] = []
            head = Text.assemble(
                ("sweep ", "bold"), (self.sweep_id, "bold cyan"), "  ",
                (sweep.get("state", "?"), "bold"), f"  {sweep.get('method', '')}",
                f"  metric {self.metric} ({'max' if self.maximize else 'min'})"
                if self.metric else "")
            parts.append(head)
            bar = Table.grid(padding=(0, 1))
            total = self.total
            label = f"{finished}/{total} done" if total else f"{finished} done (no fixed total)"
            bar.add_row(ProgressBar(total=float(total or max(finished, 1)),
                                    completed=float(finished), width=40), Text(label))
            parts.append(bar)
            if self.best is not None:
                parts.append(Text(
                    f"best   {self.best['id']}  {self.metric}="
                    f"{cell_text(self.best['summary'][self.metric])}"
                    f"  {cell_text(self.best['params'])}", style="green"))
            else:
                parts.append(Text("best   - (no finished run with the metric yet)"))
            parts.append(Text("runs   " + (", ".join(
                f"{state.lower()} {n}" for state, n in sorted(counts.items())) or "none yet")))
            running = sorted(self.running(), key=lambda r: r["number"])
            if running:
                table = Table(box=None, pad_edge=False, show_edge=False)
                for name in ("RUNNING", "STEP", self.metric or "METRIC", "PARAMS", "TIME"):
                    table.add_column(name, overflow="ellipsis", no_wrap=True)
                for r in running[:MAX_RUNNING_SHOWN]:
                    step = self.steps.get(r["id"])
                    value = r["summary"].get(self.metric) if self.metric else None
                    table.add_row(r["id"], "-" if step is None else str(step),
                                  cell_text(value), cell_text(r["params"]),
                                  duration(r["started_at"], None))
                parts.append(table)
                if len(running) > MAX_RUNNING_SHOWN:
                    parts.append(Text(f"... and {len(running) - MAX_RUNNING_SHOWN} more"))
            if self.events:
                parts.append(Text("last events", style="bold"))
                parts.extend(Text(line, no_wrap=True, overflow="ellipsis")
                             for line in self.events)
            return Group(*parts)


class StepPoller:
    """Reads the latest step of each running run every ``STEP_POLL_S`` in a thread, for the
    live screen; stops with the view."""

    def __init__(self, state: WatchState, get_run: Callable[[str], dict[str, Any]]) -> None:
        self.state = state
        self.get_run = get_run
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="sweepd-watch-steps",
                                       daemon=True)

    def __enter__(self) -> StepPoller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()

    def _loop(self) -> None:
        while not self.done.wait(STEP_POLL_S):
            with self.state.lock:
                ids = [r["id"] for r in self.state.running()][:MAX_RUNNING_SHOWN]
            for run_id in ids:
                try:
                    history = self.get_run(run_id).get("history") or []
                except Exception:  # a restart, a run gone: the next poll tries again
                    continue
                if history:
                    with self.state.lock:
                        self.state.steps[run_id] = int(history[-1]["step"])


def live_view(state: WatchState, updates: Any, get_run: Callable[[str], dict[str, Any]],
              console: Any) -> None:
    """Draws ``state`` in place while ``updates`` (the feed) lasts."""
    from rich.live import Live

    with Live(get_renderable=state.render, console=console, refresh_per_second=REFRESH_PER_S,
              transient=False, redirect_stdout=False, redirect_stderr=False
              ) as live, StepPoller(state, get_run):
        for update in updates:
            state.apply(update)
        live.refresh()  # the final state, left on the screen
