"""Leases: how long a worker or an ask/tell client holds a run without a word.

A run's holder renews its lease with every heartbeat (a worker) or call (an ask/tell client);
a run whose lease runs out is LOST, and tried again while its sweep's retries last. The
heartbeat interval is the worker's proposal, clamped so that LEASE_HEARTBEATS fit in a lease.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .. import names

if TYPE_CHECKING:
    from .state import State
    from .transitions import Transitions

# Heartbeats: the worker proposes an interval and the coordinator clamps it. Below 0.2 s the
# heartbeats themselves become load; above 60 s a dead worker would hold its runs too long.
MIN_HEARTBEAT_INTERVAL_S = 0.2
MAX_HEARTBEAT_INTERVAL_S = 60.0
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
# A lease survives this many missed heartbeats: one lost packet or a GC pause must not make a
# run LOST, but a dead node should give its runs back within about half a minute. The lease is
# --lease-seconds exactly; the heartbeat interval is shortened to fit this many into it.
LEASE_HEARTBEATS = 6
DEFAULT_LEASE_S = DEFAULT_HEARTBEAT_INTERVAL_S * LEASE_HEARTBEATS
# The shortest lease that still fits LEASE_HEARTBEATS heartbeats at the fastest rate
# (MIN_HEARTBEAT_INTERVAL_S * LEASE_HEARTBEATS, written out: the product is not exact).
MIN_LEASE_S = 1.2
# After a restart, workers get at least this long to reconnect and claim their runs before a
# lease can expire: their reconnect backoff is capped at 5 s (worker/daemon.py), so two full
# backoffs fit, whatever --lease-seconds is.
RECONNECT_GRACE_S = 10.0
# A worker session heard from within this many heartbeat intervals is live: another process
# claiming its worker id is refused. Three missed beats: a process that died with its stream
# half open (a rebooted node) frees its id within seconds, a busy live one keeps it.
LIVE_SESSION_HEARTBEATS = 3
# How often leases are checked: well under a heartbeat interval, cheap (an in-memory scan).
LEASE_CHECK_INTERVAL_S = 0.5
# A LOST run is tried again this many times before it stays LOST.
DEFAULT_MAX_RETRIES = 2
# A lease check that comes this much later than LEASE_CHECK_INTERVAL_S after the previous one
# means the coordinator itself stood still (SIGSTOP, swapped out, a blocked event loop):
# nobody could be heard meanwhile, so that time does not count against any lease. Well above
# the scheduling jitter of a loaded machine, well below any lease (MIN_LEASE_S).
STALL_TOLERANCE_S = 1.0


def heartbeat_interval(proposed: float, lease_s: float) -> float:
    """The worker's proposal, clamped, and short enough that LEASE_HEARTBEATS fit in the
    lease: the lease is what --lease-seconds says, whatever the worker proposes."""
    if not math.isfinite(proposed) or proposed <= 0:
        proposed = DEFAULT_HEARTBEAT_INTERVAL_S
    interval = min(proposed, MAX_HEARTBEAT_INTERVAL_S, lease_s / LEASE_HEARTBEATS)
    return max(interval, MIN_HEARTBEAT_INTERVAL_S)


def expire_leases(state: State, transitions: Transitions) -> int:
    """Makes every run whose lease ran out LOST (retried if it may be). Returns how many."""
    now = state.clock()
    expired = [
        r for r in state.runs.values()
        if r.state.is_active and r.lease_expires_at is not None and r.lease_expires_at < now
    ]
    if not expired:
        return 0
    with state.commit():
        for run in expired:
            if names.is_client_worker(run.worker_id):
                why = (f"no SuggestRun or ReportMetrics from {run.worker_id} within the"
                       f" lease ({state.lease_s:g} s)")
            else:
                why = f"no heartbeat from {run.worker_id} within the lease ({state.lease_s:g} s)"
            transitions.lose_run(run, why)
    return len(expired)


def forgive_stall(state: State, stall_s: float) -> int:
    """The coordinator did not run for ``stall_s`` seconds: every lease and every session's
    last word move on by as much (never past a fresh lease), so that the heartbeats waiting
    in the sockets are read before anyone is judged silent. Returns how many runs it kept.

    Without this the first lease check after a SIGSTOP (or a long blocked loop) would make
    LOST every run whose worker was alive all along and whose heartbeats were queued.
    """
    if stall_s <= 0:
        return 0
    now = state.clock()
    kept = 0
    for run in state.runs.values():
        if run.state.is_active and run.lease_expires_at is not None:
            if run.lease_expires_at < now:
                kept += 1
            run.lease_expires_at = min(run.lease_expires_at + stall_s, now + state.lease_s)
    for session in state.sessions.values():
        session.info.last_heartbeat = min(session.info.last_heartbeat + stall_s, now)
    return kept
