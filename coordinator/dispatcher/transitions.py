"""The run and sweep state machines as the dispatcher applies them.

Each transition changes the objects (the run's own methods in ``domain.py`` say what a state
implies), writes them, records the event a user reads in `sweep show-run`, and decides the
orders that follow (stop a run, drain a sweep's workers). Callers hold ``State.commit()``
around them; the orders go out when it commits.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

from sweepd.common.hints import missing_metric_notice, nearest_name

from ..domain import (
    DrainOrder,
    MetricRecord,
    Run,
    RunState,
    StopDecision,
    StopOrder,
    SweepState,
    reaches,
)
from ..errors import FailedPrecondition
from ..stopping import rule_for
from .checks import check_record_order, check_records
from .state import State
from .views import SweepView

log = logging.getLogger("sweepd.coordinator")


class Transitions:
    def __init__(self, state: State) -> None:
        self.s = state

    # -- sweeps ---------------------------------------------------------------------------

    def set_sweep_state(self, view: SweepView, state: SweepState, reason: str) -> None:
        view.sweep.state = state
        view.sweep.state_reason = reason
        view.sweep.updated_at = self.s.clock()
        self.s.store.update_sweep(view.sweep)
        for watch in view.watches:
            watch.wake.set()
        log.info("sweep %s -> %s (%s)", view.sweep.id, state.value, reason)

    def maybe_finish(self, view: SweepView) -> None:
        """A sweep with nothing left to create finishes when its last run ends."""
        sweep = view.sweep
        if sweep.state.is_ended:
            return
        if not sweep.exhausted_reason:
            cap = view.config.run_cap
            if cap is not None and sweep.run_count >= cap:
                sweep.exhausted_reason = f"run_cap {cap} reached"
            else:
                return
        if view.active or view.pending:
            return
        self.set_sweep_state(view, SweepState.FINISHED, sweep.exhausted_reason)
        self.drain_sweep_workers(view)

    def drain_sweep_workers(self, view: SweepView) -> None:
        """Workers bound to a sweep that ended finish their runs and exit."""
        for session in self.s.sessions.values():
            if session.info.sweep_id == view.sweep.id and not session.draining:
                session.draining = True
                self.s.send(session.info.id, DrainOrder(
                    f"sweep {view.sweep.id} is {view.sweep.state.value}"
                    f" ({view.sweep.state_reason})"
                ))

    def retries_of(self, view: SweepView) -> int:
        """The sweep's retry limit: its own if it set one, else the coordinator's."""
        own = view.sweep.max_retries
        return self.s.max_retries if own is None else own

    # -- runs -----------------------------------------------------------------------------

    def mark_started(self, run: Run, argv: list[str], when: float) -> None:
        if run.state is RunState.RUNNING:
            return
        run.start(argv, when)
        self.s.save_run(run)
        self.s.store.record_event(run, when, "started")

    def record_metrics(self, run: Run, records: Sequence[MetricRecord]) -> None:
        """Stores the records not stored yet, keeps the run's summary and the sweep's metric
        history, and judges the run by the sweep's target and stopping rule."""
        check_records(records)
        fresh = check_record_order(run, records)
        if run.state is RunState.ASSIGNED:
            self.mark_started(run, run.argv, self.s.clock())
        if not fresh:
            return
        self.s.store.insert_metrics(run.id, run.attempt, fresh)
        view = self.s.sweeps[run.sweep_id]
        metric = view.config.metric
        history = view.histories.setdefault(run.id, [])
        for rec in fresh:
            for key, value in rec.values.items():
                if not math.isfinite(value) and math.isfinite(run.summary.get(key, 0.0)):
                    # Stored as sent (a diverged loss is a result); said once per change.
                    self.s.store.record_event(
                        run, self.s.clock(), f"notice: {key} = {value} at record {rec.index};"
                        " stored, but a value that is not finite never counts for the best"
                        " run, the search or metric.target")
                run.summary[key] = value
            if metric is not None and metric.name in rec.values:
                value = rec.values[metric.name]
                history.append(value)
                self._check_target(view, run, value)
        run.next_record_index = fresh[-1].index + 1
        self.s.save_run(run)
        if metric is not None and metric.impute_while_running:
            view.version += 1  # running runs' values feed the model only in this mode
        arrived = sum(1 for rec in fresh if metric is not None and metric.name in rec.values)
        if arrived:
            self._evaluate_stopping(view, run, arrived)

    def _check_target(self, view: SweepView, run: Run, value: float) -> None:
        metric = view.config.metric
        if metric is None or metric.target is None or view.sweep.exhausted_reason:
            return
        if not math.isfinite(value):  # -inf "beats" every minimize target
            return
        if reaches(metric.goal, value, metric.target):
            view.sweep.exhausted_reason = (
                f"metric.target {metric.target} reached by run {run.id} ({metric.name}={value})"
            )
            self.s.store.update_sweep(view.sweep)
            log.info("sweep %s: %s", view.sweep.id, view.sweep.exhausted_reason)

    def _evaluate_stopping(self, view: SweepView, run: Run, arrived: int) -> None:
        """Judges the run that just reported, on every report (not on a timer)."""
        settings = view.config.early_terminate
        metric = view.config.metric
        if settings is None or run.stop is not None or metric is None:
            return
        decision = rule_for(settings).should_stop_run(
            run.id, view.histories, metric.goal, arrived=arrived, metric=metric.name)
        if decision is not None:
            self.request_stop(run, decision)

    def request_stop(self, run: Run, stop: StopDecision) -> None:
        """Stores the decision with the run, then (after commit) sends the stop order."""
        run.request_stop(stop)
        self.s.save_run(run)
        self.s.store.record_event(run, self.s.clock(), f"stop requested: {run.reason}")
        if run.worker_id in self.s.sessions:
            self.s.send(run.worker_id, StopOrder(run.id, run.reason, run.attempt))

    def finish(self, run: Run, state: RunState, exit_code: int | None, reason: str,
               when: float) -> None:
        """The run's program ended (as its worker or ask/tell client reports)."""
        if run.stop is not None:
            # A run we asked to stop ends STOPPED however it exited (a clean exit after
            # checkpointing included); its reason is our decision.
            state, reason = RunState.STOPPED, run.reason
        run.exit_code = exit_code
        self.end_run(run, state, reason, when=when)
        view = self.s.sweeps[run.sweep_id]
        view.version += 1
        self.maybe_finish(view)

    def end_run(self, run: Run, state: RunState, reason: str, when: float | None = None) -> None:
        live = self.s.live_logs.pop(run.id, None)
        if live is not None:
            live.ended = True  # followers holding it read what is left, then stop
        ended_at = self.s.clock() if when is None else when
        if state is RunState.FINISHED and not reason:
            reason = self._missing_metric(run)
        run.end(state, reason, ended_at)
        self.s.save_run(run)
        self.s.store.record_event(run, ended_at, reason or state.value.lower())
        log.info("run %s -> %s%s", run.id, state.value, f" ({reason})" if reason else "")

    def _missing_metric(self, run: Run) -> str:
        """A notice for a run that finished without ever logging the sweep's metric while it
        logged others (a misspelt name), also added once to the sweep's notices; else ""."""
        view = self.s.sweeps.get(run.sweep_id)
        metric = view.config.metric if view is not None else None
        logged = sorted(k for k in run.summary if not k.startswith("_"))
        if view is None or metric is None:
            return ""
        notice = missing_metric_notice(metric.name, logged)
        if not notice:
            return ""
        hint = nearest_name(metric.name, logged)
        sweep_notice = (f"metric {metric.name!r}: run {run.id} finished without logging it"
                        + (f"; did you mean {hint!r}? (the program logs it under that name)"
                           if hint else f" (it logged {', '.join(logged[:8])})"))
        if not any(n.startswith(f"metric {metric.name!r}: run ") for n in view.config.notices):
            view.config = dataclasses.replace(
                view.config, notices=(*view.config.notices, sweep_notice))
        log.warning("run %s: %s", run.id, notice)
        return notice

    def release(self, run: Run, why: str) -> None:
        """A worker handed back a run it never started: queue it again, attempt unspent."""
        if run.state is not RunState.ASSIGNED:
            raise FailedPrecondition(f"run {run.id} is {run.state.value}; only an ASSIGNED run"
                                     " can be handed back")
        run.hand_back()
        self.s.save_run(run)
        self.s.store.record_event(run, self.s.clock(), why)
        self.s.sweeps[run.sweep_id].version += 1

    def lose_run(self, run: Run, why: str) -> None:
        """The run's worker is gone: record LOST, then retry the point if retries remain."""
        session = self.s.sessions.get(run.worker_id)
        if session is not None:
            session.active_runs.discard(run.id)
        now = self.s.clock()
        run.lose(why)
        self.s.store.record_event(run, now, f"lost: {why}")
        view = self.s.sweeps[run.sweep_id]
        view.histories.pop(run.id, None)
        if run.attempt <= self.retries_of(view) and not view.sweep.state.is_ended:
            self.s.lost_by[run.id] = run.worker_id
            run.requeue(reason=why)
            self.s.save_run(run)
            self.s.store.record_event(run, now, "queued for retry")
            log.warning("run %s lost (%s); retrying (attempt %d of %d)", run.id, why,
                        run.attempt + 1, self.retries_of(view) + 1)
        else:
            self.end_run(run, RunState.LOST, f"lost: {why}")
            self.maybe_finish(view)
        view.version += 1

