"""The dispatcher's in-memory view made from what the store holds: at start-up, and again
after a failed commit.

At start-up (``load_from_store``) every sweep, run and worker is read, and each active run
gets a fresh lease: its holder must reconnect and renew it.

After a failed commit (``restore_from_store``): the dispatcher changes its objects and writes
them in the same transaction; when the commit fails (a full disk, an I/O error) the database
keeps nothing of it, and this makes memory agree again, so that nothing is acknowledged,
counted or skipped on the strength of a change that was never stored. A resend of the failed
message is then applied as if it were new.

Objects are updated in place rather than replaced: servicers (WatchSweep, a worker's stream)
and the caller still unwinding from the failure hold references to them.

What is reloaded: every sweep row and every worker (a few rows each), and the runs the failed
transaction wrote or tried to write (each run is changed only right before it is written, so
these are the runs it changed), with what is derived from them. Reloading every run instead
would cost seconds per failure with a sweep of 100,000 runs, and a full disk fails every
request. When what was touched is not known (an exception that was not a write's), every run
is reloaded.

What lives only in memory is kept: connected sessions and their streams, watches, live logs,
heartbeat times, and lease renewals of runs the failed transaction did not touch.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from .config import parse_config
from .errors import SweepdError

if TYPE_CHECKING:
    from .database import Touched
    from .dispatcher.state import State
    from .dispatcher.views import SweepView
    from .domain import Run

log = logging.getLogger("sweepd.coordinator")

# Fields of a WorkerInfo the store does not own: its connection, as this process sees it.
_LIVE_WORKER_FIELDS = frozenset({"connected", "last_heartbeat"})


def _copy_fields(dst: Any, src: Any, *, keep: frozenset[str] = frozenset()) -> None:
    for f in dataclasses.fields(dst):
        if f.name not in keep:
            setattr(dst, f.name, getattr(src, f.name))


def load_from_store(d: State, grace_s: float) -> None:
    """Fills ``d``'s empty tables from the store. A sweep whose config this version refuses
    is left out, with its runs (and logged); every active run's lease ends ``grace_s`` from
    now: workers and ask/tell clients come back and renew it, and as their clocks and ours may
    differ, no stored lease survives a restart as is."""
    # Imported here: the dispatcher package imports this module while it initialises.
    from .dispatcher.views import SweepView

    now = d.clock()
    for sweep in d.store.load_sweeps():
        try:
            config = parse_config(sweep.config_text)
        except SweepdError as exc:  # a config this version refuses: keep it visible
            log.error("sweep %s has a config this version refuses: %s", sweep.id, exc)
            continue
        d.sweeps[sweep.id] = SweepView(sweep=sweep, config=config)
    for run in d.store.load_runs():
        view = d.sweeps.get(run.sweep_id)
        if view is None:
            continue
        view.runs[run.id] = run
        d.runs[run.id] = run
        view.run_saved(run)
        if run.state.is_active:
            run.lease_expires_at = now + grace_s
        _load_history(d, view, run)
    for w in d.store.load_workers():
        d.workers[w.id] = w


def _load_history(d: State, view: SweepView, run: Run) -> None:
    """The run's logged values of the sweep metric, for stopping rules (ended runs need none)."""
    if view.metric_name and not run.state.is_ended:
        view.histories[run.id] = [rec.values[view.metric_name]
                                  for rec in d.store.metric_history(run.id, run.attempt)
                                  if view.metric_name in rec.values]
    else:
        view.histories.pop(run.id, None)


def restore_from_store(d: State, grace_s: float, touched: Touched | None) -> None:
    """Makes every sweep and worker of ``d``, and the runs ``touched`` names (every run if
    None), equal their stored rows again.

    ``grace_s``: a run whose change was rolled back gets at least this long before its lease
    can expire, as after a restart: its worker must reconnect and resend the change.
    """
    started = time.monotonic()
    stored_sweeps = {s.id: s for s in d.store.load_sweeps()}
    for sweep_id in [i for i in d.sweeps if i not in stored_sweeps]:
        for run_id in d.sweeps.pop(sweep_id).runs:  # created in the failed transaction
            d.runs.pop(run_id, None)
    for view in d.sweeps.values():
        _copy_fields(view.sweep, stored_sweeps[view.sweep.id])

    if touched is None:
        run_ids = set(d.runs)
        stored_runs = {r.id: r for r in d.store.load_runs() if r.sweep_id in d.sweeps}
        run_ids |= set(stored_runs)
    else:
        run_ids = set(touched.run_ids)
        stored_runs = {r.id: r for r in d.store.load_runs_by_id(sorted(run_ids))
                       if r.sweep_id in d.sweeps}
    changed: dict[str, SweepView] = {}
    for run_id in run_ids:
        owner = _restore_run(d, run_id, stored_runs.get(run_id), grace_s)
        if owner is not None:
            changed[owner.sweep.id] = owner
    for owner in changed.values():
        owner.version += 1  # search must not reuse a suggestion prepared from the lost view
        owner.prepared = None

    stored_workers = {w.id: w for w in d.store.load_workers()}
    for worker_id in [i for i in d.workers if i not in stored_workers]:
        del d.workers[worker_id]
    for worker_id, info in d.workers.items():
        _copy_fields(info, stored_workers[worker_id], keep=_LIVE_WORKER_FIELDS)
    for session in d.sessions.values():
        worker_id = session.info.id
        if worker_id in stored_workers and session.info is not d.workers.get(worker_id):
            _copy_fields(session.info, stored_workers[worker_id], keep=_LIVE_WORKER_FIELDS)
        for run_id in run_ids:
            run = d.runs.get(run_id)
            if run is not None and run.worker_id == worker_id and run.state.is_active:
                session.active_runs.add(run_id)
            else:
                session.active_runs.discard(run_id)
    log.warning("a database write failed: %d run(s), every sweep and worker restored from the"
                " store (%.0f ms)", len(run_ids), (time.monotonic() - started) * 1000)


def _restore_run(d: State, run_id: str, stored: Run | None,
                 grace_s: float) -> SweepView | None:
    """Puts one run (and what is derived from it) back as stored; returns its sweep's view."""
    run = d.runs.get(run_id)
    if stored is None:
        if run is None:
            return None
        del d.runs[run_id]  # created in the failed transaction
        view = d.sweeps.get(run.sweep_id)
        if view is not None:
            view.runs.pop(run_id, None)
            view.trials.pop(run_id, None)
            view.stale_trials.discard(run_id)
            view.histories.pop(run_id, None)
            view.active.discard(run_id)
            view.pending.discard(run_id)
        return view
    view = d.sweeps[stored.sweep_id]
    if run is None:
        run = d.runs[run_id] = view.runs[run_id] = stored
    else:
        untouched = (run.state is stored.state and run.attempt == stored.attempt
                     and run.worker_id == stored.worker_id)
        # Heartbeats renew leases in memory only: a run still held as stored keeps its renewal.
        lease = run.lease_expires_at if untouched else stored.lease_expires_at
        _copy_fields(run, stored)
        if stored.state.is_active and lease is not None:
            lease = max(lease, d.clock() + grace_s)
        run.lease_expires_at = lease
    view.run_saved(run)
    _load_history(d, view, run)
    return view
