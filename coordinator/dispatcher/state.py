"""The one owner of the dispatcher's mutable state, and the one place it is committed.

Every component of the dispatcher changes state through the same ``State``: the sweeps and
runs (rebuilt from the store at start-up), the workers, the connected sessions, live logs.
``commit()`` is the only way a change is written: one store transaction whose orders go out
when it commits, and which on failure drops them and puts memory back as stored
(``restore.py``). ``commit_grouped()`` is the same for requests answered asynchronously (the
ask/tell calls): their transactions join one group committed once per turn of the event loop,
and each answers after ``await durable()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from ..database import Touched
from ..domain import Order, Run, WorkerInfo
from ..errors import NotFound, Unavailable
from ..restore import load_from_store, restore_from_store
from ..store import Store
from .leases import DEFAULT_LEASE_S, DEFAULT_MAX_RETRIES, RECONNECT_GRACE_S
from .outbox import Outbox
from .views import LiveLog, SweepView, WorkerSession


@dataclass
class _Group:
    """The parts of the open group transaction: the orders they decided, sent when it commits,
    and the event their requests wait on before they answer."""

    loop: asyncio.AbstractEventLoop
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: Unavailable | None = None
    orders: list[tuple[str, Order]] = field(default_factory=list)


class State:
    """Sweeps, runs, workers and sessions as this process sees them; see the module text.

    A database.TransactionListener: a failed transaction's changes to memory are undone.
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
        self._group: _Group | None = None
        # Runs saved inside the open commit: each written once, when it ends (a trial's
        # report and end change the same row three times in one commit).
        self._unwritten: dict[str, Run] = {}
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
        with self._transaction(defer_commit=False):
            yield
        self.outbox.release()

    @contextlib.contextmanager
    def commit_grouped(self) -> Iterator[None]:
        """Like ``commit()``, for a request that answers after ``await durable()``: its
        writes join the group transaction, committed with those of the other requests of
        this turn of the event loop (soon: a callback queued behind them); its orders wait for
        that commit. Nested in a ``commit()``, it joins that."""
        if self.outbox.holding:
            yield
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop (tests, tools): commit now
            with self.commit():
                yield
            return
        group = self._group
        if group is not None and group.loop is not loop:
            self._commit_group()  # a group a finished loop left behind
            group = None
        if group is None:
            group = self._group = _Group(loop)
            loop.call_soon(self._commit_group)
        with self._transaction(defer_commit=True):
            yield
        group.orders.extend(self.outbox.take_held())

    @contextlib.contextmanager
    def _transaction(self, *, defer_commit: bool) -> Iterator[None]:
        """The store transaction of ``commit()`` or a part of a group: orders held, runs
        saved inside written once at its end; on failure neither goes anywhere."""
        self.outbox.holding = True
        try:
            with self.store.transaction(defer_commit=defer_commit):
                yield
                self._write_saved_runs()
        except BaseException:
            self._unwritten.clear()
            self.outbox.drop()
            raise

    async def durable(self) -> None:
        """Returns once every change made so far is committed; raises the store's error if
        the group holding them failed (nothing of it was kept). Call it right after the
        request's ``commit_grouped()`` part, with no await between: the open group is then
        the one that holds the part (or a later one, if a commit in between flushed it)."""
        await self.durable_later()()

    def durable_later(self) -> Callable[[], Awaitable[None]]:
        """``durable()`` for the changes made so far, to await later (after other awaits)."""
        group = self._group

        async def wait() -> None:
            if group is None:
                return
            await group.done.wait()
            if group.error is not None:
                raise group.error

        return wait

    def _commit_group(self) -> None:
        try:
            self.store.commit_group()  # tells group_committed or transaction_failed
        except Unavailable:
            pass  # the group's requests raise it from durable()
        if self._group is not None:  # the group had no write: nothing was begun
            self.group_committed()

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
        """Writes a changed run (inside a commit: once, as the commit ends) and keeps its
        sweep's derived sets current."""
        if self.outbox.holding:
            # Counted as written now: if the commit fails, the run is restored from the store.
            self.store.will_write(sweep=run.sweep_id, run=run.id)
            self._unwritten[run.id] = run
        else:
            self.store.update_run(run)
        self.sweeps[run.sweep_id].run_saved(run)

    def _write_saved_runs(self) -> None:
        unwritten, self._unwritten = self._unwritten, {}
        for run in unwritten.values():
            self.store.update_run(run)

    def lease_deadline(self) -> float:
        return self.clock() + self.lease_s

    def heard_recently(self, session: WorkerSession, within: float | None = None) -> bool:
        """Whether the session's worker sent a heartbeat within ``within`` seconds (default:
        a lease). One that did not is frozen or cut off: it gets no new runs until it does."""
        within = self.lease_s if within is None else within
        return self.clock() - session.info.last_heartbeat <= within

    # -- database.TransactionListener-----------------------------------------------------

    def transaction_began(self) -> None:
        self._draining_mark = {w: s.draining for w, s in self.sessions.items()}

    def group_committed(self) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        for worker_id, order in group.orders:
            self.outbox.deliver(worker_id, order)
        group.done.set()

    def transaction_failed(self, touched: Touched | None) -> None:
        """A transaction was rolled back: nothing it changed may stay in memory or go out."""
        self.outbox.drop()
        group, self._group = self._group, None
        if group is not None:
            group.error = self.store.last_error or Unavailable(
                "the coordinator could not commit this request; nothing of it was kept:"
                " send it again")
            group.done.set()
        for worker_id, draining in self._draining_mark.items():
            session = self.sessions.get(worker_id)
            if session is not None:
                session.draining = draining
        restore_from_store(self, self.grace_s, touched)
