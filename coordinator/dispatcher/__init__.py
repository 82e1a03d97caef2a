"""The dispatcher: the one owner of the coordinator's mutable state, in parts by concern.

It holds the in-memory view of every sweep, run and connected worker, applies every state
transition (committing it to the store first), matches free worker slots to runnable sweeps,
and emits orders (assign, stop, drain, ack) for the worker sessions to send.

Concurrency: every method runs on the coordinator's asyncio event loop, so no two
transitions interleave and no locks are needed. The only work that leaves the loop is search
for model-based methods, which runs in an executor and comes back through
``Suggestions``' ``on_prepared`` callback.

The modules, from the bottom up:

- ``messages``: what a worker session sends (hello, run events) and the welcome it gets.
- ``checks``: pure checks of requests against the limits, and ``read_config``.
- ``views``: the in-memory records (SweepView, WorkerSession, SweepWatch, LiveLog).
- ``outbox``, ``state``: the one ``State`` owning every table, and ``State.commit()``, the
  store transaction whose orders go out once it commits (restore.py undoes a failed one).
- ``transitions``: the run and sweep state machines (stored, with their events and orders).
- ``leases``: heartbeat and lease timing, and expiry.
- ``suggestions``: driving search, inline or prepared off the loop.
- ``scheduling``: free worker slots filled fairly across sweeps.
- ``sessions``: worker handshake, heartbeats, messages applied exactly once.
- ``asktell``: SuggestRun / ReportMetrics / FinishRun clients.
- ``sweeps``: the sweep lifecycle as users steer it, and watches.
- ``core``: ``Dispatcher``, the entry point: commands and queries.
"""

from .checks import check_record_order, check_records, read_config
from .core import Dispatcher
from .leases import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_LEASE_S,
    DEFAULT_MAX_RETRIES,
    LEASE_CHECK_INTERVAL_S,
    LEASE_HEARTBEATS,
    LIVE_SESSION_HEARTBEATS,
    MAX_HEARTBEAT_INTERVAL_S,
    MIN_HEARTBEAT_INTERVAL_S,
    MIN_LEASE_S,
    RECONNECT_GRACE_S,
    STALL_TOLERANCE_S,
)
from .messages import (
    Hello,
    MetricsEvent,
    RunFinishedEvent,
    RunStartedEvent,
    Welcome,
    WorkerEvent,
)
from .views import LiveLog, SweepView, SweepWatch, WorkerSession

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "DEFAULT_LEASE_S",
    "DEFAULT_MAX_RETRIES",
    "LEASE_CHECK_INTERVAL_S",
    "LEASE_HEARTBEATS",
    "LIVE_SESSION_HEARTBEATS",
    "MAX_HEARTBEAT_INTERVAL_S",
    "MIN_HEARTBEAT_INTERVAL_S",
    "MIN_LEASE_S",
    "RECONNECT_GRACE_S",
    "STALL_TOLERANCE_S",
    "Dispatcher",
    "Hello",
    "LiveLog",
    "MetricsEvent",
    "RunFinishedEvent",
    "RunStartedEvent",
    "SweepView",
    "SweepWatch",
    "Welcome",
    "WorkerEvent",
    "WorkerSession",
    "check_record_order",
    "check_records",
    "read_config",
]
