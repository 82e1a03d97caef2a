"""Ask/tell: programs without a worker daemon take runs (SuggestRun), report their metrics
(ReportMetrics) and their end (FinishRun) themselves.

Such a client holds its runs under the worker id ``client:<client_id>`` and the same leases
as a worker; each call renews the lease of the run it names. Every call may be retried after
a lost answer and is answered the same.

The writes go through ``State.commit_grouped()``: the caller answers after
``State.durable()``, and the writes of concurrent clients share one commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import names
from ..domain import MetricRecord, Run, RunState
from ..errors import FailedPrecondition, InvalidArgument, PermissionDenied
from .scheduling import Scheduler
from .sessions import held_run
from .state import State
from .suggestions import Suggestions
from .transitions import Transitions
from .views import SweepView


@dataclass
class Asking:
    """Serialises one client id's SuggestRun calls on one sweep: a call that waits for a
    suggestion being prepared must not let a concurrent call of the same client take a second
    run."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    callers: int = 0


class AskTell:
    def __init__(self, state: State, transitions: Transitions, scheduler: Scheduler,
                 suggestions: Suggestions) -> None:
        self.s = state
        self.t = transitions
        self.scheduler = scheduler
        self.suggestions = suggestions
        self.asking: dict[tuple[str, str], Asking] = {}

    async def suggest(self, sweep_id: str, client_id: str) -> tuple[Run | None, bool]:
        """(run, sweep_done). Idempotent per client id while the client's run is active, also
        for concurrent calls; each call renews the lease of the run it returns."""
        names.check_holder_id("client_id", client_id, worker=False)
        view = self.s.sweep(sweep_id)
        key = (sweep_id, client_id)
        asking = self.asking.setdefault(key, Asking())
        asking.callers += 1
        try:
            async with asking.lock:
                return await self._suggest(view, names.client_worker_id(client_id))
        finally:
            asking.callers -= 1
            if not asking.callers:
                del self.asking[key]

    async def _suggest(self, view: SweepView, worker_id: str) -> tuple[Run | None, bool]:
        for run_id in view.active:
            run = view.runs[run_id]
            if run.worker_id == worker_id:
                run.lease_expires_at = self.s.lease_deadline()
                return run, False
        if view.sweep.state.is_ended:
            return None, True
        if not view.sweep.state.creates_runs:
            return None, False
        if view.is_full():
            return None, False  # ask again later, as when paused
        while True:
            pending = view.pending_runs()
            if pending:
                with self.s.commit_grouped():
                    return self.scheduler.assign_existing(view, pending[0], worker_id), False
            suggestion = self.suggestions.next(view)
            if suggestion is not None:
                with self.s.commit_grouped():
                    return self.scheduler.create_run(view, suggestion, worker_id), False
            if view.sweep.exhausted_reason:
                self.t.maybe_finish(view)
                # Done only once the sweep ended: until then a run still going may be lost
                # and come back for retry, and this client may be the one to take it.
                return None, view.sweep.state.is_ended
            # Being prepared off the loop: wait in the sweep's line to be handed a point.
            suggestion = await self.suggestions.wait(view)
            if suggestion is None:
                if not view.sweep.state.creates_runs:
                    return None, view.sweep.state.is_ended
                continue  # search failed or ran out: the loop answers from the sweep
            if (not view.sweep.state.creates_runs or view.sweep.exhausted_reason
                    or view.is_full() or view.pending):
                # What changed while it waited comes first: the point goes to the next taker.
                self.suggestions.give_back(view, suggestion)
                if not view.sweep.state.creates_runs:
                    return None, view.sweep.state.is_ended
                if view.is_full() and not view.sweep.exhausted_reason:
                    return None, False  # ask again later, as when paused
                continue
            with self.s.commit_grouped():
                return self.scheduler.create_run(view, suggestion, worker_id), False

    def report(self, run_id: str, attempt: int, records: Sequence[MetricRecord],
               client_id: str = "") -> Run:
        """Stores a client's records (indexes already stored are skipped) and renews the run's
        lease. A resend of records already stored is accepted even once the run ended."""
        run = self.s.run(run_id)
        if (records and run.state.is_ended and _taken_by(run, client_id)
                and run.attempt == attempt
                and all(r.index < run.next_record_index for r in records)):
            return run  # a retry of a report whose answer was lost
        run = self._client_run(run_id, attempt, client_id)
        with self.s.commit_grouped():
            self.t.record_metrics(run, records)
        if run.state.is_active:
            run.lease_expires_at = self.s.lease_deadline()
        return run

    def finish(self, run_id: str, attempt: int, state: RunState, exit_code: int | None,
               reason: str, client_id: str = "",
               records: Sequence[MetricRecord] = ()) -> Run:
        """Ends the run, after storing ``records`` (its last metrics) in the same commit."""
        if state not in (RunState.FINISHED, RunState.FAILED, RunState.STOPPED):
            raise InvalidArgument("state: must be FINISHED, FAILED or STOPPED")
        run = self.s.run(run_id)
        if run.state.is_ended and _taken_by(run, client_id) and run.attempt == attempt:
            # A retried FinishRun whose first answer was lost: the same outcome is answered
            # again (a run we asked to stop ended STOPPED whatever it said). Its records were
            # stored with the end, in one commit.
            expected = RunState.STOPPED if run.stop is not None else state
            if (run.state is expected and run.exit_code == exit_code
                    and all(r.index < run.next_record_index for r in records)):
                return run
        run = self._client_run(run_id, attempt, client_id)
        with self.s.commit_grouped():
            if records:
                self.t.record_metrics(run, records)
            self.t.finish(run, state, exit_code, reason, self.s.clock())
        self.scheduler.schedule()
        return run

    def _client_run(self, run_id: str, attempt: int, client_id: str) -> Run:
        """The run, if ``client_id`` took its current attempt through SuggestRun."""
        run = self.s.run(run_id)
        if run.worker_id and not names.is_client_worker(run.worker_id):
            raise PermissionDenied(
                f"run {run_id} is held by worker {run.worker_id}; only runs from SuggestRun"
                " can be reported through ReportMetrics/FinishRun"
            )
        if not client_id:
            raise InvalidArgument(
                "client_id: must not be empty; send the client_id the run was taken with"
                " (SuggestRunRequest.client_id)"
            )
        names.check_holder_id("client_id", client_id, worker=False)
        if run.state in (RunState.PENDING, RunState.LOST) and attempt == run.attempt:
            # Nobody holds it: the holder's lease ran out (the run waits for a retry or
            # stays LOST). Tell the old holder why, whoever asks.
            raise FailedPrecondition(
                f"run {run_id} is {run.state.value}: the lease of attempt {attempt} expired"
                f" (no SuggestRun or ReportMetrics from its client within {self.s.lease_s:g} s);"
                " abandon this trial and ask for a new run"
            )
        return held_run(self.s, run_id, attempt, names.client_worker_id(client_id))


def _taken_by(run: Run, client_id: str) -> bool:
    return bool(client_id) and run.worker_id == names.client_worker_id(client_id)
