"""The one owner of the dispatcher's mutable state, and the one place it is committed.

Every component of the dispatcher changes state through the same ``State``: the sweeps and
runs (rebuilt from the store at start-up), the workers, the connected sessions, live logs.
``commit()`` is the only way a change is written: one store transaction whose orders go out
when it commits, and which on failure drops them and puts memory back as stored
(``restore.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from ..domain import Order, Run, WorkerInfo
from ..errors import NotFound
from ..restore import load_from_store, restore_from_store
from ..store import Store, Touched
from .leases import DEFAULT_LEASE_S, DEFAULT_MAX_RETRIES, RECONNECT_GRACE_S
from .outbox import Outbox
from .views import LiveLog, SweepView, WorkerSession


class State:
    """Sweeps, runs, workers and sessions as this process sees them; see the module text.

    A store.TransactionListener: a failed transaction's changes to memory are undone.
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 lease_s: float = DEFAULT_LEASE_S,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.store = store
        self.clock = clock
        self.lease_s = lease_s
        self.max_retries = max_retries
        self.sweeps: dict[str, SweepView] = {}
        self.runs: dict[str, Run] = {}
        self.workers: dict[str, WorkerInfo] = {}
        self.sessions: dict[str, WorkerSession] = {}
        # Output of live runs, for `sweep logs --follow`; in memory only (the final tail is
        # stored when the run ends).
        self.live_logs: dict[str, LiveLog] = {}
        # The worker that last lost each run awaiting retry: another free worker gets it first
        # (a worker that froze past its lease may freeze again).
        self.lost_by: dict[str, str] = {}
        self.outbox = Outbox(self.sessions)
        # Ending a sweep drains its workers inside the transaction (memory only): put back
        # if the transaction fails.
        self._draining_mark: dict[str, bool] = {}
        load_from_store(self, self.grace_s)
        store.add_listener(self)

    @property
    def grace_s(self) -> float:
        """How long a run whose holder must reconnect keeps its lease at least."""
        return max(self.lease_s, RECONNECT_GRACE_S)

    @contextlib.contextmanager
    def commit(self) -> Iterator[None]:
        """One store transaction; the orders sent inside it go out once it commits, and are
        dropped (with every change to memory, by ``transaction_failed``) if it does not.
        Nested uses join the outermost."""
        if self.outbox.holding:
            yield
            return
        self.outbox.holding = True
        try:
            with self.store.transaction():
                yield
        except BaseException:
            self.outbox.drop()
            raise
        self.outbox.release()

    def sweep(self, sweep_id: str) -> SweepView:
        view = self.sweeps.get(sweep_id)
        if view is None:
            raise NotFound(f"no sweep {sweep_id!r}; `sweep list` shows the sweeps there are")
        return view

    def run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}; `sweep runs SWEEP_ID` lists a sweep's runs")
        return run

    def send(self, worker_id: str, order: Order) -> None:
        self.outbox.send(worker_id, order)

    def save_run(self, run: Run) -> None:
        """Writes a changed run and keeps its sweep's derived sets current."""
        self.store.update_run(run)
        self.sweeps[run.sweep_id].run_saved(run)

    def lease_deadline(self) -> float:
        return self.clock() + self.lease_s

    def heard_recently(self, session: WorkerSession, within: float | None = None) -> bool:
        """Whether the session's worker sent a heartbeat within ``within`` seconds (default:
        a lease). One that did not is frozen or cut off: it gets no new runs until it does."""
        within = self.lease_s if within is None else within
        return self.clock() - session.info.last_heartbeat <= within

    # -- store.TransactionListener --------------------------------------------------------

    def transaction_began(self) -> None:
        self._draining_mark = {w: s.draining for w, s in self.sessions.items()}

    def transaction_failed(self, touched: Touched | None) -> None:
        """A transaction was rolled back: nothing it changed may stay in memory or go out."""
        self.outbox.drop()
        for worker_id, draining in self._draining_mark.items():
            session = self.sessions.get(worker_id)
            if session is not None:
                session.draining = draining
        restore_from_store(self, self.grace_s, touched)
