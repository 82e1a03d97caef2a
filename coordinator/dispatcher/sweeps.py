"""Sweeps: their lifecycle as users steer it (create, pause, resume, stop, cancel, retry),
and the watches that follow their changes."""

from __future__ import annotations

import logging
import math

from .. import names
from ..config import SweepConfig
from ..domain import (
    CANCEL_RULE,
    DEFAULT_QUEUE,
    Run,
    RunState,
    StopDecision,
    Sweep,
    SweepState,
    beats,
)
from ..errors import FailedPrecondition, InvalidArgument
from .checks import check_sweep_options, read_config
from .scheduling import Scheduler
from .state import State
from .transitions import Transitions
from .views import SweepView, SweepWatch

log = logging.getLogger("sweepd.coordinator")


class Sweeps:
    def __init__(self, state: State, transitions: Transitions, scheduler: Scheduler) -> None:
        self.s = state
        self.t = transitions
        self.scheduler = scheduler

    def create(self, config_text: str, source_name: str = "", *, queue: str = "",
               max_concurrent: int = 0, max_retries: int | None = None,
               config: SweepConfig | None = None) -> SweepView:
        """``config``: ``config_text`` already read by :func:`read_config` (the servicer does
        that off the event loop); read here when not given."""
        check_sweep_options(queue, max_concurrent, max_retries)
        if config is None:
            config = read_config(config_text, source_name)
        if max_retries is None:
            max_retries = config.max_retries
        now = self.s.clock()
        sweep_id = names.new_sweep_id()
        while sweep_id in self.s.sweeps:
            sweep_id = names.new_sweep_id()
        sweep = Sweep(
            id=sweep_id, config_text=config_text, state=SweepState.RUNNING, created_at=now,
            updated_at=now, name=config.name or "", state_reason="created",
            queue=queue or DEFAULT_QUEUE, max_concurrent=max_concurrent,
            max_retries=max_retries,
        )
        self.s.store.insert_sweep(sweep)
        view = SweepView(sweep=sweep, config=config)
        self.s.sweeps[sweep_id] = view
        log.info("sweep %s created (%s, %d parameters)", sweep_id, config.method,
                 len(config.parameters))
        self.scheduler.schedule()
        return view

    def pause(self, sweep_id: str) -> SweepView:
        view = self.s.sweep(sweep_id)
        if view.sweep.state is SweepState.PAUSED:
            return view
        if view.sweep.state is not SweepState.RUNNING:
            raise FailedPrecondition(
                f"sweep {sweep_id} is {view.sweep.state.value}; only a RUNNING sweep can pause"
            )
        self.t.set_sweep_state(view, SweepState.PAUSED, "paused by user")
        return view

    def resume(self, sweep_id: str) -> SweepView:
        view = self.s.sweep(sweep_id)
        state = view.sweep.state
        if state is SweepState.RUNNING:
            return view
        if state is SweepState.CANCELED:
            raise FailedPrecondition(
                f"sweep {sweep_id} was canceled and cannot resume; create a new sweep from its"
                " config instead"
            )
        # A finished or stopped sweep may resume: it goes on if it has points left, and
        # finishes again at once if not.
        view.sweep.exhausted_reason = ""
        self.t.set_sweep_state(view, SweepState.RUNNING, "resumed by user")
        self.scheduler.schedule()
        self.t.maybe_finish(view)
        return view

    def stop(self, sweep_id: str) -> SweepView:
        view = self.s.sweep(sweep_id)
        if view.sweep.state.is_ended:
            raise FailedPrecondition(
                f"sweep {sweep_id} is already {view.sweep.state.value}"
            )
        with self.s.commit():
            for run in view.pending_runs():
                self.t.end_run(run, RunState.CANCELED, "sweep stopped before the run started")
            self.t.set_sweep_state(view, SweepState.STOPPED, "stopped by user")
        self.t.drain_sweep_workers(view)
        return view

    def cancel(self, sweep_id: str) -> SweepView:
        view = self.s.sweep(sweep_id)
        if view.sweep.state.is_ended and view.sweep.state is not SweepState.STOPPED:
            raise FailedPrecondition(f"sweep {sweep_id} is already {view.sweep.state.value}")
        with self.s.commit():
            for run in view.pending_runs():
                self.t.end_run(run, RunState.CANCELED, "sweep canceled before the run started")
            for run in view.runs.values():
                if run.state.is_active and run.stop is None:
                    self.t.request_stop(run, StopDecision(run.id, "sweep canceled", CANCEL_RULE))
            self.t.set_sweep_state(view, SweepState.CANCELED, "canceled by user")
        self.t.drain_sweep_workers(view)
        return view

    def retry_runs(self, sweep_id: str, *, failed: bool, lost: bool) -> list[Run]:
        """Puts the sweep's FAILED and/or LOST runs back in the queue (PENDING, attempt kept:
        the next assignment counts it on); a FINISHED or STOPPED sweep runs again."""
        if not (failed or lost):
            raise InvalidArgument("say which runs to retry: failed and/or lost")
        view = self.s.sweep(sweep_id)
        if view.sweep.state is SweepState.CANCELED:
            raise FailedPrecondition(f"sweep {sweep_id} was canceled; its runs cannot be retried")
        wanted = {s for s, on in ((RunState.FAILED, failed), (RunState.LOST, lost)) if on}
        runs = [r for r in view.runs.values() if r.state in wanted]
        if not runs:
            return []
        now = self.s.clock()
        with self.s.commit():
            for run in runs:
                was = run.state.value
                run.requeue()
                view.histories.pop(run.id, None)
                self.s.save_run(run)
                self.s.store.record_event(run, now, f"queued for retry by user (was {was})")
            if view.sweep.state is not SweepState.RUNNING:
                self.t.set_sweep_state(view, SweepState.RUNNING,
                                       f"{len(runs)} run(s) retried by user")
            view.version += 1
        self.scheduler.schedule()
        return runs

    # -- watches --------------------------------------------------------------------------

    def watch(self, sweep_id: str) -> tuple[SweepView, SweepWatch]:
        """Starts following a sweep's changes; end with unwatch()."""
        view = self.s.sweep(sweep_id)
        watch = SweepWatch()
        view.watches.append(watch)
        return view, watch

    @staticmethod
    def unwatch(view: SweepView, watch: SweepWatch) -> None:
        if watch in view.watches:
            view.watches.remove(watch)


def watch_is_over(view: SweepView) -> bool:
    """Nothing more will happen to the sweep unless a user revives it."""
    return view.sweep.state.is_ended and view.active_count() == 0


def best_run(view: SweepView) -> Run | None:
    """The FINISHED run with the best finite value of the sweep's metric (the first of equals)."""
    metric = view.config.metric
    if metric is None:
        return None
    best: Run | None = None
    for run in view.runs.values():
        # Only a run that ran to its end is a result: a STOPPED one (sent SIGTERM, stopped
        # early) or one still going may hold a value it would not have ended with.
        if run.state is not RunState.FINISHED:
            continue
        value = run.summary.get(metric.name)
        if value is None or not math.isfinite(value):
            continue
        if best is None or beats(metric.goal, value, best.summary[metric.name]):
            best = run
    return best
