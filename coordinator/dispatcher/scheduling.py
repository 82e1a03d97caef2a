"""Scheduling: free worker slots filled with runs, fairly across sweeps.

A slot gets the oldest PENDING run of the chosen sweep (a retry, or one handed back), else a
new run from search. Ask/tell clients take runs through the same ``assign_existing`` and
``create_run``.
"""

from __future__ import annotations

import logging

from .. import limits, names
from ..config import run_command
from ..config import runs_on_workers as config_runs_on_workers
from ..domain import AssignOrder, Run, RunState
from ..errors import Unavailable
from ..search.base import Suggestion
from ..search.grid import grid_size
from .state import State
from .suggestions import Suggestions
from .transitions import Transitions
from .views import SweepView, WorkerSession

log = logging.getLogger("sweepd.coordinator")


class Scheduler:
    def __init__(self, state: State, transitions: Transitions,
                 suggestions: Suggestions) -> None:
        self.s = state
        self.t = transitions
        self.suggestions = suggestions
        # A scheduling pass was cut short by a failed write: the lease check runs another.
        self.reschedule = False

    def schedule(self) -> None:
        """Fills free worker slots with runs, fairly across sweeps."""
        # One pass over every session; later rounds only over those that took a run in the
        # previous one (a fleet of busy workers costs one cheap check each).
        hungry = [s for s in self.s.sessions.values()
                  if s.free_slots > 0 and self.s.heard_recently(s)]
        try:
            while hungry:
                fed = []
                for session in hungry:
                    if session.free_slots <= 0:
                        continue
                    for view in self._runnable_sweeps(session):
                        if self._assign_one(view, session):
                            fed.append(session)
                            break
                hungry = fed
        except Unavailable as exc:
            # What was committed stands; the lease check tries the rest again. The request
            # that led here was applied, so it must not fail for this.
            log.warning("scheduling interrupted, will retry: %s", exc)
            self.reschedule = True

    def _runnable_sweeps(self, session: WorkerSession) -> list[SweepView]:
        views = [
            v for v in self.s.sweeps.values()
            if v.sweep.state.creates_runs and session.takes_from(v) and not v.is_full()
            and runs_on_workers(v)
        ]
        # Fair share: the sweep with the fewest runs going gets the slot; ties go to the oldest.
        views.sort(key=lambda v: (v.active_count(), v.sweep.created_at))
        return views

    def _assign_one(self, view: SweepView, session: WorkerSession) -> bool:
        pending = view.pending_runs()
        if pending and self.s.lost_by:
            others = [r for r in pending if self.s.lost_by.get(r.id) != session.info.id]
            if len(others) < len(pending) and self._other_taker(view, session):
                pending = others  # the one that lost them gets something else, or nothing
        with self.s.commit():
            if pending:
                run = self.assign_existing(view, pending[0], session.info.id)
            else:
                suggestion = self.suggestions.next(view)
                if suggestion is None:
                    self.t.maybe_finish(view)
                    return False
                run = self.create_run(view, suggestion, session.info.id)
        session.active_runs.add(run.id)
        session.runs_assigned += 1
        self.s.send(session.info.id, _assign_order(view, run))
        return True

    def _other_taker(self, view: SweepView, session: WorkerSession) -> bool:
        """Whether a live worker other than ``session`` has a slot free for ``view``."""
        return any(other is not session and other.free_slots > 0
                   and self.s.heard_recently(other) and other.takes_from(view)
                   for other in self.s.sessions.values())

    def create_run(self, view: SweepView, suggestion: Suggestion, worker_id: str) -> Run:
        """A new run of ``suggestion``'s point, ASSIGNED to ``worker_id``."""
        sweep = view.sweep
        if sweep.run_count + 1 >= limits.MAX_RUNS_PER_SWEEP and not sweep.exhausted_reason:
            # This run is the last one: the in-memory view and the database stay bounded.
            sweep.exhausted_reason = (f"{limits.MAX_RUNS_PER_SWEEP} runs created"
                                      " (MAX_RUNS_PER_SWEEP)")
        sweep.run_count += 1
        now = self.s.clock()
        # W&B's canonical order (sorted names): the order ${args} renders and run.config shows.
        order = {p.path: i for i, p in enumerate(view.config.parameters)}
        point = dict(sorted(suggestion.params.items(),
                            key=lambda kv: order.get(kv[0], len(order))))
        run = Run(
            id=names.run_id(sweep.id, sweep.run_count), sweep_id=sweep.id,
            number=sweep.run_count, state=RunState.ASSIGNED, point=point,
            created_at=now, attempt=1, worker_id=worker_id,
            # Rendered here, once: every attempt, and every worker that takes one, gets this.
            command=run_command(view.config, point),
            predicted_mean=suggestion.predicted_mean, predicted_std=suggestion.predicted_std,
            lease_expires_at=self.s.lease_deadline(),
        )
        self.s.store.insert_run(run)
        self.s.store.update_sweep(sweep)
        self.s.store.record_event(run, now, f"assigned to {worker_id}")
        view.runs[run.id] = run
        self.s.runs[run.id] = run
        view.run_saved(run)
        view.version += 1
        cap = view.config.run_cap
        if cap is not None and sweep.run_count >= cap and not sweep.exhausted_reason:
            sweep.exhausted_reason = f"run_cap {cap} reached"
            self.s.store.update_sweep(sweep)
        elif (view.config.method == "grid" and not sweep.exhausted_reason
              and sweep.run_count >= _grid_size(view)):
            # The last point is out: the sweep finishes when its last run ends, even if no one
            # asks again (`agent(id, train, count=<grid size>)` never does).
            sweep.exhausted_reason = "search space exhausted"
            self.s.store.update_sweep(sweep)
        return run

    def assign_existing(self, view: SweepView, run: Run, worker_id: str) -> Run:
        """A PENDING run's next attempt, ASSIGNED to ``worker_id``."""
        self.s.lost_by.pop(run.id, None)
        run.assign(worker_id, self.s.lease_deadline())
        self.s.save_run(run)
        self.s.store.record_event(run, self.s.clock(), f"assigned to {worker_id}")
        view.version += 1
        return run


def runs_on_workers(view: SweepView) -> bool:
    """Whether a `worker join` daemon can run the sweep (config.command.runs_on_workers)."""
    return config_runs_on_workers(view.config)


def _grid_size(view: SweepView) -> int:
    try:
        return grid_size(view.config)
    except Exception:  # a grid that cannot be counted ends by asking, as before
        return limits.MAX_RUNS_PER_SWEEP


def _assign_order(view: SweepView, run: Run) -> AssignOrder:
    """The order for the run's current attempt: its stored command, never rendered again."""
    return AssignOrder(
        run_id=run.id, sweep_id=run.sweep_id, attempt=run.attempt, params=run.params,
        argv=list(run.command.argv), metric_name=view.metric_name,
        literal_argv=run.command.literal,
    )
