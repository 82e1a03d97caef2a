"""Driving search: the next points of a sweep, from search's pure ``suggest``/``suggest_batch``.

Methods cheap enough for the event loop (INLINE_METHODS) are asked inline. Model-based ones
run in the executor, one fit at a time per sweep, for every taker waiting at that moment:

1. A taker that finds no prepared point waits: an ask/tell client in the sweep's line
   (``view.waiters``: first come first served, each a future, nobody polls), a worker slot
   until the scheduler's next pass.
2. If no fit is running one starts on the loop's next turn (takers arriving together count
   together) for k = the clients in line + the sweep's free worker slots + its ask/tell clients
   holding a run (they come back soon) (<= ``MAX_BATCH``): ``suggest_batch``, k distinct points
   from one model fit. Points handed out and not yet run (``view.in_hand``) or kept
   (``view.prepared``) are pending runs to it: no fit repeats one. One client asking in turn
   gets k = 1, each point from a fit on every result (sequential use is unchanged).
3. Each point, as soon as it is chosen, goes to the first client in line (woken), else is kept
   and the scheduler runs for waiting slots. Clients that came during the fit get the next,
   started at once. A fit is never thrown away for what changed while it ran.
4. Kept points are handed out while fewer than 2k results arrived since their fit started
   (``_stamp``): k takers running at once each miss up to k results anyway; with k, every
   taker waited for a fit each round (8 clients: p50 31 -> 25 ms). Then they are dropped and
   the next fit's hyperparameter search starts where the last one ended (``warm``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np

from .. import names
from ..domain import Run, RunState, best_of
from ..search import Batch, needs_history, rng_for, suggest, suggest_batch
from ..search.base import Suggestion, Trial, TrialState
from .state import State
from .views import Prepared, SweepView

log = logging.getLogger("sweepd.coordinator")

# Methods cheap enough (microseconds to a few ms) to run on the event loop.
INLINE_METHODS = frozenset({"grid", "random"})
# Most points one fit prepares: past the first each costs ~0.5 ms (bayes, n = 2000), but a
# larger batch spreads over the space less carefully, and points not taken go stale.
MAX_BATCH = 32

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
        """The next point for a taker not in line (a worker slot, a client before it queues),
        or None for none now (exhausted or being prepared: see ``exhausted_reason``)."""
        if view.sweep.exhausted_reason:
            return None
        if view.config.method in INLINE_METHODS or self.executor is None:
            trials = self._trials(view) if needs_history(view.config) else []  # O(runs)
            suggestion = suggest(view.config, trials, self._rng(view))
            if suggestion is None:
                self._mark_exhausted(view)
            else:
                self._show_search_notice(view, suggestion)
            return suggestion
        if not _live_waiters(view):  # first come first served: none jumps the line
            suggestion = self._pop_prepared(view)
            if suggestion is not None:
                self._show_search_notice(view, suggestion)
                return suggestion
        self._prepare(view)
        return None

    async def wait(self, view: SweepView) -> Suggestion | None:
        """For an ask/tell client that ``next`` gave nothing: waits in the sweep's line until
        a fit hands it a point (None: the sweep stopped creating runs, or search failed or ran
        out). The caller runs the point before it awaits anything, or hands it back with
        ``give_back``; until then it is in ``view.in_hand``, pending to later fits."""
        future: asyncio.Future[Suggestion | None] = asyncio.get_running_loop().create_future()
        view.waiters.append(future)
        self._prepare(view)
        try:
            suggestion = await future
        except asyncio.CancelledError:
            # The client went away (deadline, disconnect): out of the line, and a point it was
            # handed meanwhile goes to the next taker.
            handed = future.result() if future.done() and not future.cancelled() else None
            if handed is not None:
                self.give_back(view, handed)
            elif future in view.waiters:
                view.waiters.remove(future)
            raise
        if suggestion is not None:
            _remove_in_hand(view, suggestion)
            self._show_search_notice(view, suggestion)
        return suggestion

    def give_back(self, view: SweepView, suggestion: Suggestion) -> None:
        """A point handed out and not run: the next client in line gets it, else the next."""
        _remove_in_hand(view, suggestion)
        prepared = self._valid_prepared(view)
        if prepared is None:
            prepared = view.prepared = Prepared(deque(), _stamp(view), 1)
        prepared.suggestions.appendleft(suggestion)
        self._serve(view)

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

    def _mark_exhausted(self, view: SweepView, reason: str = "search space exhausted") -> None:
        view.sweep.exhausted_reason = reason
        self.s.store.update_sweep(view.sweep)

    def _end(self, view: SweepView, reason: str) -> None:
        """No more points (search failed, or ran out): the clients in line are told."""
        try:
            self._mark_exhausted(view, reason)
        finally:
            self._wake_all(view)
            self._on_prepared()

    def _valid_prepared(self, view: SweepView) -> Prepared | None:
        """The kept points, if the sweep's results are still those they were kept for."""
        prepared = view.prepared
        if prepared is not None and (_stamp(view) - prepared.stamp >= prepared.tolerance
                                     or not prepared.suggestions):
            view.prepared = prepared = None
        return prepared

    def _pop_prepared(self, view: SweepView) -> Suggestion | None:
        prepared = self._valid_prepared(view)  # an emptied one is dropped on the next call
        return prepared.suggestions.popleft() if prepared is not None else None

    def _serve(self, view: SweepView) -> None:
        """Hands kept points to the clients in line, first come first served."""
        while view.waiters:
            future = view.waiters[0]
            if future.done():  # cancelled: its client is gone
                view.waiters.popleft()
                continue
            suggestion = self._pop_prepared(view)
            if suggestion is None:
                return
            view.waiters.popleft()
            view.in_hand.append(suggestion)
            future.set_result(suggestion)

    def _wake_all(self, view: SweepView) -> None:
        """Wakes every client in line without a point (they read why from the sweep)."""
        while view.waiters:
            future = view.waiters.popleft()
            if not future.done():
                future.set_result(None)

    def _prepare(self, view: SweepView) -> None:
        """Starts a fit for the sweep on the loop's next turn, unless one is under way."""
        if view.preparing or self.executor is None:
            return
        view.preparing = True
        asyncio.get_running_loop().call_soon(self._start_fit, view)

    def _start_fit(self, view: SweepView) -> None:
        sweep = view.sweep
        if sweep.exhausted_reason or not sweep.state.creates_runs:
            view.preparing = False
            self._wake_all(view)
            return
        kept = self._valid_prepared(view)
        ahead = [*view.in_hand, *(kept.suggestions if kept is not None else ())]
        demand = _live_waiters(view) + self._slot_demand(view) + _client_runs(view)
        k = min(MAX_BATCH, max(1, demand - len(ahead)))
        if sweep.max_concurrent:  # points past the sweep's concurrency could not run now
            k = min(k, max(1, sweep.max_concurrent - view.active_count() - len(ahead)))
        if view.config.run_cap is not None:
            k = min(k, max(1, view.config.run_cap - sweep.run_count - len(ahead)))
        trials = self._trials(view)
        trials += [Trial(params=s.params, state="pending") for s in ahead]
        loop = asyncio.get_running_loop()
        kept_for = Prepared(deque(), _stamp(view), 2 * k)

        def arrived(suggestion: Suggestion) -> None:  # called in the executor's thread
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                loop.call_soon_threadsafe(self._arrived, view, kept_for, suggestion)

        assert self.executor is not None
        future = loop.run_in_executor(self.executor, suggest_batch, view.config, trials,
                                      self._rng(view), k, view.warm if k > 1 else None, arrived)
        future.add_done_callback(functools.partial(self._fitted, view))

    def _arrived(self, view: SweepView, kept_for: Prepared, suggestion: Suggestion) -> None:
        """A point of the fit under way, for the takers it was computed for whatever changed
        meanwhile: a fit thrown away under load is one they wait for again."""
        prepared = self._valid_prepared(view)
        if prepared is None:
            prepared = view.prepared = dataclasses.replace(kept_for, suggestions=deque())
        prepared.stamp, prepared.tolerance = kept_for.stamp, kept_for.tolerance
        prepared.suggestions.append(suggestion)
        self._serve(view)
        if view.prepared is not None:
            self._on_prepared()

    def _fitted(self, view: SweepView, future: asyncio.Future[Batch]) -> None:
        """The fit is over (its points arrived before this, in order)."""
        view.preparing = False
        try:
            batch = future.result()
        except Exception as exc:
            # Random failing too (search falls back to it): preparing again would fail again,
            # and clients would wait until their deadline. The sweep ends with the reason.
            log.exception("search failed for sweep %s", view.sweep.id)
            self._end(view, f"search failed: {type(exc).__name__}: {exc}")
            return
        view.warm = batch.warm
        if not batch.suggestions:
            self._end(view, "search space exhausted")
            return
        if _live_waiters(view):  # they came while it ran
            self._prepare(view)
        self._on_prepared()

    def _slot_demand(self, view: SweepView) -> int:
        """Free slots of live workers that may run the sweep (some may go to other sweeps)."""
        from .scheduling import runs_on_workers  # scheduling imports this module

        if not runs_on_workers(view):
            return 0
        return sum(s.free_slots for s in self.s.sessions.values()
                   if s.free_slots > 0 and s.takes_from(view) and self.s.heard_recently(s))


def _stamp(view: SweepView) -> int:
    """Counts the changes search reads in the sweep other than runs created (which bump the
    run count and the version alike): the results that arrived, roughly."""
    return view.version - view.sweep.run_count


def _client_runs(view: SweepView) -> int:
    return sum(1 for run_id in view.active if names.is_client_worker(view.runs[run_id].worker_id))


def _live_waiters(view: SweepView) -> int:
    return sum(1 for f in view.waiters if not f.done())


def _remove_in_hand(view: SweepView, suggestion: Suggestion) -> None:
    view.in_hand = [held for held in view.in_hand if held is not suggestion]


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
