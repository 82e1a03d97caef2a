"""What Ctrl+C and SIGTERM do to a worker: a ladder, one step per signal received.

1. Take no new runs and wait for the running ones; SIGTERM (what a scheduler or systemd sends
   before it kills) also goes on to the runs, so that they can checkpoint.
2. SIGTERM the runs.
3. SIGKILL the runs.

A run the worker sends SIGTERM ends STOPPED with the step's reason even if it then exits 0: it
did not run to its end, so it is no result for the best run or the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass

HANDLED = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Step:
    drain_reason: str = ""  # take no new runs, for this reason
    terminate_reason: str = ""  # SIGTERM the running runs, ending them with this reason
    kill_reason: str = ""  # SIGKILL them
    say: str = ""  # for the person at the terminal


def step(interrupts: int, sig: signal.Signals, *, worker_id: str, running: int) -> Step:
    """The step for the ``interrupts``-th signal (counted from 1), ``sig`` being the latest,
    with ``running`` runs still running."""
    if interrupts == 1:
        return Step(
            drain_reason=f"received {sig.name}",
            terminate_reason=(f"worker {worker_id} received {sig.name}; the run was sent"
                              " SIGTERM") if sig is signal.SIGTERM else "",
            say=(f"worker: waiting for {running} run(s) to finish; press Ctrl+C again to stop"
                 " them") if running else "")
    if interrupts == 2:
        return Step(terminate_reason=f"worker {worker_id} was interrupted twice; the run was"
                                     " sent SIGTERM",
                    say="worker: sending SIGTERM to the runs; Ctrl+C again kills them")
    return Step(kill_reason=f"worker {worker_id} was interrupted three times",
                say="worker: killing the runs")


def install(loop: asyncio.AbstractEventLoop,
            handler: Callable[[signal.Signals], None]) -> None:
    for sig in HANDLED:
        # Not on every platform's event loop (Windows): the default handling then stays.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, handler, sig)
