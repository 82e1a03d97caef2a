"""What the notebook agent tells its user: a line per trial, a closing summary and, inside a
Jupyter kernel, a progress bar. Kept apart from ``agent``, which runs the trials."""

from __future__ import annotations

import math
import sys
from html import escape as html_escape
from typing import Any


class Tally:
    """The agent's account to the user: a line per trial, then a summary."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.metric = ""
        self.maximize = False
        self.count = 0
        self.failed = 0
        self.states: dict[str, int] = {}
        self.best: dict[str, Any] | None = None
        self.bar: NotebookProgress | None = None

    def add(self, r: dict[str, Any], seconds: float) -> None:
        self.count += 1
        self.failed += r["state"] == "FAILED"
        self.states[r["state"]] = self.states.get(r["state"], 0) + 1
        value = r["summary"].get(self.metric) if self.metric else None
        if isinstance(value, (int, float)) and not math.isnan(value) and (
                self.best is None or self._better(value)):
            self.best = r
        if self.quiet:
            return
        from .format import cell_text

        if self.bar is not None:
            self.bar.show(self.count, self.failed, self._best_text())
        if r.get("traceback"):
            print(f"agent: trial {r['id']} raised:\n{r['traceback'].rstrip()}",
                  file=sys.stderr, flush=True)
        result = f"{self.metric}={cell_text(value)}" if self.metric else ""
        print("  ".join(p for p in (
            f"agent: trial {r['id']}", cell_text(r["params"]) or "-", r["state"], result,
            f"{seconds:.1f}s", r["reason"]) if p), flush=True)

    def _better(self, value: float) -> bool:
        assert self.best is not None
        best = self.best["summary"][self.metric]
        return bool(value > best) if self.maximize else bool(value < best)

    def _best_text(self) -> str:
        from .format import cell_text

        if self.best is None:
            return ""
        value = cell_text(self.best["summary"][self.metric])
        return f"best {self.best['id']} {self.metric}={value}"

    def summary(self, sweep_id: str) -> None:
        if self.quiet:
            return
        from .format import cell_text

        if self.bar is not None:
            self.bar.show(self.count, self.failed, self._best_text(), done=True)

        counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(self.states.items()))
        line = f"agent: {self.count} trial(s) of sweep {sweep_id}" + (
            f": {counts}" if counts else "")
        if self.best is not None:
            line += (f"; best {self.best['id']} {self.metric}="
                     f"{cell_text(self.best['summary'][self.metric])}"
                     f" ({cell_text(self.best['params'])})")
        print(line, flush=True)


class NotebookProgress:
    """A progress bar in a Jupyter notebook (an HTML display updated in place), beside the
    agent's text lines; nothing outside a notebook kernel."""

    def __init__(self, sweep_id: str, total: int | None, handle: Any, html: Any) -> None:
        self.sweep_id = sweep_id
        self.total = total
        self._handle = handle
        self._html = html

    @classmethod
    def start(cls, sweep_id: str, total: int | None) -> NotebookProgress | None:
        shell = sys.modules.get("IPython")
        if shell is None:
            return None
        try:
            from IPython import get_ipython
            from IPython.display import HTML, display
        except ImportError:
            return None
        ipython = get_ipython()
        # Only a kernel that renders HTML (Jupyter, VS Code, Colab): a terminal IPython gets
        # the text lines alone.
        if ipython is None or type(ipython).__name__ != "ZMQInteractiveShell":
            return None
        bar = cls(sweep_id, total, None, HTML)
        bar._handle = display(HTML(bar._render(0, 0, "", False)), display_id=True)
        return bar

    def show(self, ran: int, failed: int, best: str, done: bool = False) -> None:
        if self._handle is not None:
            self._handle.update(self._html(self._render(ran, failed, best, done)))

    def _render(self, ran: int, failed: int, best: str, done: bool) -> str:
        total = self.total
        bar = (f'<progress value="{ran}" max="{total}" style="width:16em"></progress>'
               if total else "")
        of = f"{ran}/{total}" if total else f"{ran}"
        state = "done" if done else "running"
        parts = [f"sweep {self.sweep_id}", f"{of} trials", f"{failed} failed" if failed else "",
                 best, state]
        text = html_escape("  ·  ".join(p for p in parts if p))
        return f'<div class="sweepd-agent-progress">{bar} <span>{text}</span></div>'
