"""``Dispatcher``: the dispatcher's one entry point, for the servicers and the server.

It wires the components around the one ``State`` and answers two kinds of calls: commands
(each a transition applied by a component, committed before it is acted on) and queries (what
the servicers read: sweeps, runs, workers, logs), so that no caller reads the state's fields.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor

from ..config import SweepConfig
from ..domain import MetricRecord, Run, RunEvent, RunState, WorkerInfo
from ..store import Store
from .asktell import Asking, AskTell
from .leases import DEFAULT_LEASE_S, DEFAULT_MAX_RETRIES, expire_leases, forgive_stall
from .messages import Hello, Welcome, WorkerEvent
from .scheduling import Scheduler
from .sessions import WorkerSessions
from .state import State
from .suggestions import Suggestions
from .sweeps import Sweeps, best_run, watch_is_over
from .transitions import Transitions
from .views import LiveLog, SweepView, SweepWatch, WorkerSession

log = logging.getLogger("sweepd.coordinator")


class Dispatcher:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self.state = State(store, clock=clock, lease_s=lease_s, max_retries=max_retries)
        self._transitions = Transitions(self.state)
        # A suggestion prepared off the loop may fill a slot that waited for it.
        self._suggestions = Suggestions(self.state, executor,
                                        on_prepared=lambda: self._scheduler.schedule())
        self._scheduler = Scheduler(self.state, self._transitions, self._suggestions)
        self._sweeps = Sweeps(self.state, self._transitions, self._scheduler)
        self._sessions = WorkerSessions(self.state, self._transitions, self._scheduler)
        self._asktell = AskTell(self.state, self._transitions, self._scheduler,
                                self._suggestions)

    # -- settings and the state's tables (tests and restore read these) --------------------

    @property
    def store(self) -> Store:
        return self.state.store

    @property
    def clock(self) -> Callable[[], float]:
        return self.state.clock

    @property
    def lease_s(self) -> float:
        return self.state.lease_s

    @property
    def sweeps(self) -> dict[str, SweepView]:
        return self.state.sweeps

    @property
    def runs(self) -> dict[str, Run]:
        return self.state.runs

    @property
    def workers(self) -> dict[str, WorkerInfo]:
        return self.state.workers

    @property
    def sessions(self) -> dict[str, WorkerSession]:
        return self.state.sessions

    @property
    def _asking(self) -> dict[tuple[str, str], Asking]:
        return self._asktell.asking

    # -- sweeps ---------------------------------------------------------------------------

    def create_sweep(self, config_text: str, source_name: str = "", *, queue: str = "",
                     max_concurrent: int = 0, max_retries: int | None = None,
                     config: SweepConfig | None = None) -> SweepView:
        return self._sweeps.create(config_text, source_name, queue=queue,
                                   max_concurrent=max_concurrent, max_retries=max_retries,
                                   config=config)

    def pause(self, sweep_id: str) -> SweepView:
        return self._sweeps.pause(sweep_id)

    def resume(self, sweep_id: str) -> SweepView:
        return self._sweeps.resume(sweep_id)

    def stop(self, sweep_id: str) -> SweepView:
        return self._sweeps.stop(sweep_id)

    def cancel(self, sweep_id: str) -> SweepView:
        return self._sweeps.cancel(sweep_id)

    def retry_runs(self, sweep_id: str, *, failed: bool, lost: bool) -> list[Run]:
        return self._sweeps.retry_runs(sweep_id, failed=failed, lost=lost)

    def watch(self, sweep_id: str) -> tuple[SweepView, SweepWatch]:
        return self._sweeps.watch(sweep_id)

    def unwatch(self, view: SweepView, watch: SweepWatch) -> None:
        self._sweeps.unwatch(view, watch)

    def watch_is_over(self, view: SweepView) -> bool:
        return watch_is_over(view)

    # -- workers --------------------------------------------------------------------------

    def attach_worker(self, hello: Hello) -> tuple[WorkerSession, Welcome]:
        return self._sessions.attach(hello)

    def detach_worker(self, session: WorkerSession) -> None:
        self._sessions.detach(session)

    def heartbeat(self, session: WorkerSession, held: dict[str, int], draining: bool,
                  paused: bool = False) -> None:
        self._sessions.heartbeat(session, held, draining, paused)

    def worker_message(self, session: WorkerSession, seq: int, event: WorkerEvent) -> None:
        self._sessions.worker_message(session, seq, event)

    def refuse_worker_message(self, session: WorkerSession, seq: int, reason: str) -> None:
        self._sessions.refuse_message(session, seq, reason)

    def run_output(self, session: WorkerSession, run_id: str, attempt: int, data: bytes) -> None:
        self._sessions.run_output(session, run_id, attempt, data)

    def expire_leases(self) -> int:
        """Makes every run whose lease ran out LOST (and finishes a scheduling pass a failed
        write cut short). Returns how many."""
        if self._scheduler.reschedule:
            self._scheduler.reschedule = False
            self._scheduler.schedule()
        expired = expire_leases(self.state, self._transitions)
        if expired:
            self._scheduler.schedule()
        return expired

    def forgive_stall(self, stall_s: float) -> int:
        """This process stood still ``stall_s`` seconds (the lease loop measured it): that
        time does not count against leases. Returns how many runs it saved from LOST."""
        kept = forgive_stall(self.state, stall_s)
        log.warning("the coordinator did not run for %.1f s (stopped, swapped out or"
                    " blocked); every lease is extended by as much%s", stall_s,
                    f" ({kept} run(s) would have been lost)" if kept else "")
        return kept

    # -- ask / report / finish (programs without a worker daemon) -------------------------

    async def suggest_for_client(self, sweep_id: str, client_id: str
                                 ) -> tuple[Run | None, bool]:
        return await self._asktell.suggest(sweep_id, client_id)

    def report_from_client(self, run_id: str, attempt: int, records: Sequence[MetricRecord],
                           client_id: str = "") -> Run:
        return self._asktell.report(run_id, attempt, records, client_id)

    def finish_from_client(self, run_id: str, attempt: int, state: RunState,
                           exit_code: int | None, reason: str, client_id: str = "",
                           records: Sequence[MetricRecord] = ()) -> Run:
        return self._asktell.finish(run_id, attempt, state, exit_code, reason, client_id,
                                    records)

    async def durable(self) -> None:
        """Waits until the changes of the calls above are committed (they share commits with
        concurrent calls): answer only after it returns. Raises the store's error if the
        commit failed; nothing of the call was kept then."""
        await self.state.durable()

    def durable_later(self) -> Callable[[], Awaitable[None]]:
        """``durable()`` for the changes made so far, to await after other awaits."""
        return self.state.durable_later()

    # -- queries: what servicers and the dashboard read -----------------------------------

    def now(self) -> float:
        return self.state.clock()

    def get_sweep(self, sweep_id: str) -> SweepView:
        return self.state.sweep(sweep_id)

    def list_sweeps(self) -> list[SweepView]:
        """Newest first."""
        return sorted(self.state.sweeps.values(), key=lambda v: v.sweep.created_at,
                      reverse=True)

    def get_run(self, run_id: str) -> Run:
        return self.state.run(run_id)

    def best_run(self, view: SweepView) -> Run | None:
        return best_run(view)

    def history(self, run: Run) -> list[MetricRecord]:
        """The run's metric records of its current attempt, in index order."""
        return self.state.store.metric_history(run.id, run.attempt)

    def events(self, run: Run) -> list[RunEvent]:
        return self.state.store.run_events(run.id)

    def live_log(self, run_id: str) -> LiveLog | None:
        return self.state.live_logs.get(run_id)

    def list_workers(self) -> list[tuple[WorkerInfo, list[str]]]:
        """Every worker known, connected ones first, each with the runs it holds now."""
        listing = []
        for info in sorted(self.state.workers.values(), key=lambda w: (not w.connected, w.id)):
            session = self.state.sessions.get(info.id)
            listing.append((info, list(session.active_runs) if session is not None else []))
        return listing
