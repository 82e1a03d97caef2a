"""Driving search: the next point of a sweep, from search's pure ``suggest()``.

Methods cheap enough for the event loop (INLINE_METHODS) are asked inline; model-based ones
run in the executor, prepared ahead of the next free slot, and come back through
``on_prepared`` (the dispatcher schedules again). A prepared suggestion is used only if the
sweep has not changed since (its ``version``): otherwise it could repeat a point.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np

from ..domain import Run, RunState, best_of
from ..search import rng_for, suggest
from ..search.base import Suggestion, Trial, TrialState
from .state import State
from .views import Prepared, SweepView

log = logging.getLogger("sweepd.coordinator")

# Methods cheap enough (microseconds to a few ms) to run on the event loop. Model-based
# methods run in the executor and are prepared ahead of the next free slot.
INLINE_METHODS = frozenset({"grid", "random"})
# How often an ask/report client waiting on a suggestion being prepared checks for it.
PREPARE_POLL_S = 0.005

_TRIAL_STATE: dict[RunState, TrialState] = {
    RunState.PENDING: "pending",
    RunState.ASSIGNED: "pending",
    RunState.RUNNING: "running",
    RunState.FINISHED: "finished",
    RunState.FAILED: "failed",
    RunState.STOPPED: "stopped",
    RunState.LOST: "failed",
    RunState.CANCELED: "failed",
}


class Suggestions:
    def __init__(self, state: State, executor: Executor | None,
                 on_prepared: Callable[[], None]) -> None:
        self.s = state
        self.executor = executor
        self._on_prepared = on_prepared

    def next(self, view: SweepView) -> Suggestion | None:
        """The next point, or None if there is none now (exhausted, or still being prepared:
        ``exhausted_reason`` tells which)."""
        if view.sweep.exhausted_reason:
            return None
        if view.config.method in INLINE_METHODS or self.executor is None:
            suggestion = suggest(view.config, self._trials(view), self._rng(view))
            if suggestion is None:
                self._mark_exhausted(view)
            else:
                self._show_search_notice(view, suggestion)
            return suggestion
        prepared = view.prepared
        if prepared is not None and prepared.version == view.version:
            view.prepared = None
            if prepared.suggestion is None:
                self._mark_exhausted(view)
            else:
                self._show_search_notice(view, prepared.suggestion)
            return prepared.suggestion
        self._prepare(view)
        return None

    async def prepare_now(self, view: SweepView) -> None:
        """Waits until the sweep's next suggestion is prepared (for ask/report clients)."""
        self._prepare(view)
        while view.preparing:
            await asyncio.sleep(PREPARE_POLL_S)

    def _trials(self, view: SweepView) -> list[Trial]:
        """Search's view of every run, in creation order; only runs saved since the last
        call are rebuilt."""
        stale, view.stale_trials = view.stale_trials, set()
        new = sorted((view.runs[run_id] for run_id in stale if run_id not in view.trials),
                     key=lambda r: r.number)
        for run_id in stale:
            if run_id in view.trials:
                view.trials[run_id] = _trial(view, view.runs[run_id])
        for run in new:  # created after every run already there: appending keeps the order
            view.trials[run.id] = _trial(view, run)
        return list(view.trials.values())

    def _rng(self, view: SweepView) -> np.random.Generator:
        # Seeded by the config's seed (else the sweep id) and the run count: reproducible, and
        # continues the same way after a coordinator restart.
        return rng_for(view.config, view.sweep.id, view.sweep.run_count)

    def _show_search_notice(self, view: SweepView, suggestion: Suggestion) -> None:
        """A notice from search (its method failed and the point is random) joins the sweep's
        notices, once per distinct text: ``sweep show`` and WatchSweep carry them."""
        if suggestion.notice and suggestion.notice not in view.config.notices:
            view.config = dataclasses.replace(
                view.config, notices=(*view.config.notices, suggestion.notice))

    def _mark_exhausted(self, view: SweepView) -> None:
        view.sweep.exhausted_reason = "search space exhausted"
        self.s.store.update_sweep(view.sweep)

    def _prepare(self, view: SweepView) -> None:
        """Computes the sweep's next suggestion off the event loop."""
        if view.preparing or self.executor is None:
            return
        view.preparing = True
        version = view.version
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self.executor, suggest, view.config, self._trials(view), self._rng(view)
        )

        def done(fut: asyncio.Future[Suggestion | None]) -> None:
            view.preparing = False
            try:
                suggestion = fut.result()
            except Exception as exc:
                # Search falls back to random when a method fails; this is random failing too.
                # Preparing again would fail again, and an ask/tell client would wait in that
                # loop until its deadline: the sweep ends with the reason instead.
                log.exception("search failed for sweep %s", view.sweep.id)
                view.sweep.exhausted_reason = f"search failed: {type(exc).__name__}: {exc}"
                self.s.store.update_sweep(view.sweep)
                self._on_prepared()
                return
            if version == view.version:
                view.prepared = Prepared(suggestion, version)
            self._on_prepared()

        future.add_done_callback(done)


def _trial(view: SweepView, run: Run) -> Trial:
    metric = view.config.metric
    value = run.summary.get(metric.name) if metric else None
    history = view.histories.get(run.id)
    best = None
    if history and metric is not None:
        finite = [v for v in history if math.isfinite(v)]
        if finite:
            best = best_of(metric.goal, finite)
    return Trial(params=run.point, state=_TRIAL_STATE[run.state], value=value,
                 best_value=best)
