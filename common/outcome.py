"""How a run's end becomes its outcome: one rule for the worker daemon and the notebook agent.

``outcome(exit_code, ...)`` gives the state a run reports (FINISHED, FAILED or STOPPED) and the
reason a user reads, from how its process ended and what its starter did to it:

1. it never started: FAILED, with why (``start_error``);
2. its starter killed it outright (``kill_reason``) and it died of SIGKILL: FAILED, "killed
   by SIGKILL (<why>)";
3. it was asked to stop (``stop_reason``: a stop order, a shutdown, Ctrl+C): STOPPED with that
   reason, however it exited (a clean exit after a checkpoint included);
4. exit code 0: FINISHED;
5. killed by a signal nobody of ours sent (exit code -N, as ``subprocess`` and
   ``multiprocessing`` report it): FAILED, "killed by SIGSEGV";
6. any other code: FAILED, "exited with code 3".

``with_bad_lines`` adds to the reason how many metrics lines could not be used. Pure: no
process is touched here.
"""

from __future__ import annotations

import signal

from .runfile import MetricsFollower

FINISHED = "FINISHED"
FAILED = "FAILED"
STOPPED = "STOPPED"
# Windows' signal module has no SIGKILL; its number is POSIX's everywhere it exists.
SIGKILL = int(getattr(signal, "SIGKILL", 9))


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; the number itself for one this platform does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def outcome(exit_code: int | None, *, stop_reason: str = "", kill_reason: str = "",
            start_error: str = "") -> tuple[str, str]:
    """(state, reason) of a run whose process ended with ``exit_code`` (None: no code, e.g.
    never started). See the module docs for the rule, in order."""
    if start_error:
        return FAILED, start_error
    if kill_reason and exit_code == -SIGKILL:
        return FAILED, f"killed by SIGKILL ({kill_reason})"
    if stop_reason:
        return STOPPED, stop_reason
    if exit_code == 0:
        return FINISHED, ""
    if exit_code is None:
        return FAILED, "ended without an exit code"
    if exit_code < 0:
        return FAILED, f"killed by {signal_name(-exit_code)}"
    return FAILED, f"exited with code {exit_code}"


def with_bad_lines(reason: str, follower: MetricsFollower) -> str:
    """The end reason, with how many metrics lines could not be used and the first of them
    (the lines themselves were noted in the run's output as they came)."""
    first = follower.first_bad
    if not follower.bad_lines or first is None:
        return reason
    note = (f"{follower.bad_lines} metrics line(s) could not be used (first: line"
            f" {first.number}: {first.why})")
    return f"{reason}; {note}" if reason else note
