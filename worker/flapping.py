"""The flapping guard, as W&B's agent has one: a pure rule, applied by the daemon.

Runs that fail within QUICK_FAILURE_S of their start, QUICK_FAILURES_TO_PAUSE of them in a row,
mean the node or the program is broken, not the parameters; the worker then takes no runs for
a while rather than burn through the sweep. The first pause lasts the worker's
``--failure-backoff``; each further one doubles, up to FAILURE_BACKOFF_MAX_S; a run that
succeeds (or fails later than QUICK_FAILURE_S) starts the count and the pause over. A STOPPED
run says nothing about the node and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

QUICK_FAILURE_S = 60.0
QUICK_FAILURES_TO_PAUSE = 3
DEFAULT_FAILURE_BACKOFF_S = 30.0
# The cap ``worker join --help`` promises for --failure-backoff ("up to 15 minutes").
FAILURE_BACKOFF_MAX_S = 15 * 60.0


@dataclass(frozen=True)
class FailureStreak:
    """What the guard remembers between runs."""

    next_pause_s: float  # how long the next pause lasts
    quick_failures: int = 0  # in a row, since the last pause or reset


@dataclass(frozen=True)
class Pause:
    seconds: float
    until: float  # on the clock ``after_run`` was given

    def message(self) -> str:
        return (f"{QUICK_FAILURES_TO_PAUSE} runs in a row failed within {QUICK_FAILURE_S:.0f} s"
                f" of starting; pausing for {self.seconds:g} s before taking runs again")


def after_run(streak: FailureStreak, *, state: str, started_at: float, ended_at: float,
              now: float, first_pause_s: float, may_pause: bool
              ) -> tuple[FailureStreak, Pause | None]:
    """The guard's state after a run ended in ``state`` ("FINISHED", "FAILED", "STOPPED"),
    and the pause it calls for, if any.

    1. A run that did not fail quickly (``ended_at - started_at`` at least QUICK_FAILURE_S,
       or any state but FAILED) resets the streak, unless it was STOPPED.
    2. A quick failure adds one to the streak.
    3. At QUICK_FAILURES_TO_PAUSE or more, and if the worker ``may_pause`` (it is neither
       paused already nor leaving), it pauses for ``next_pause_s`` from ``now``: the streak
       starts over and the next pause is twice as long, up to FAILURE_BACKOFF_MAX_S. A worker
       that may not pause keeps counting, so it pauses at the next quick failure it may.
    """
    quick = state == "FAILED" and ended_at - started_at < QUICK_FAILURE_S
    if not quick:
        if state == "STOPPED":
            return streak, None
        return FailureStreak(next_pause_s=first_pause_s), None
    count = streak.quick_failures + 1
    if count < QUICK_FAILURES_TO_PAUSE or not may_pause:
        return FailureStreak(next_pause_s=streak.next_pause_s, quick_failures=count), None
    pause = Pause(seconds=streak.next_pause_s, until=now + streak.next_pause_s)
    return FailureStreak(next_pause_s=min(streak.next_pause_s * 2, FAILURE_BACKOFF_MAX_S)), pause
