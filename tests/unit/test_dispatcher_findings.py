"""The hostile tester's findings on the dispatcher (FIX1: F1 stall, F2 incarnations, F6 ids,
small ones), with a controllable clock and a real Store. No test sleeps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sweepd.coordinator import names
from sweepd.coordinator.dispatcher import Dispatcher, Hello, MetricsEvent
from sweepd.coordinator.domain import MetricRecord, RunState
from sweepd.coordinator.errors import FailedPrecondition, InvalidArgument

LEASE_S = 3.0
ONE = "method: grid\nprogram: t.py\nparameters:\n  a: {values: [1]}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock) -> Dispatcher:
    from sweepd.coordinator.store import Store
    return Dispatcher(Store(tmp_path / "db.sqlite3"), clock=clock, lease_s=LEASE_S)


def hello(worker_id: str, incarnation: str = "i1", **kwargs: Any) -> Hello:
    return Hello(worker_id=worker_id, incarnation=incarnation, host="h", slots=1, labels={},
                 held_runs={}, sweep_id="", heartbeat_interval_s=0.5, max_runs=0,
                 runs_assigned=0, **kwargs)


# -- F1: the coordinator's own stall does not count against leases ---------------------------


def test_a_stall_of_the_coordinator_extends_every_lease_by_its_length(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    view = d.create_sweep(ONE)
    session, _ = d.attach_worker(hello("w1"))
    [run] = view.runs.values()
    assert run.state is RunState.ASSIGNED
    clock.now += 1.0
    d.heartbeat(session, {run.id: 1}, False)  # the lease now ends at +4 s
    # Frozen for 8 s: every lease ran out meanwhile, with heartbeats waiting in the socket.
    clock.now += 8.0
    assert d.forgive_stall(8.0) == 1
    assert d.expire_leases() == 0
    # What was left of it when the stall began (all of it: it was just renewed).
    assert run.lease_expires_at == pytest.approx(clock.now + LEASE_S)
    # The worker's next heartbeat (read right after) renews it as usual.
    d.heartbeat(session, {run.id: 1}, False)
    assert run.lease_expires_at == clock.now + LEASE_S
    # A worker that really went silent still loses its run a lease later.
    clock.now += LEASE_S + 0.1
    assert d.expire_leases() == 1


def test_a_stall_never_extends_a_lease_past_a_fresh_one(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    view = d.create_sweep(ONE)
    session, _ = d.attach_worker(hello("w1"))
    [run] = view.runs.values()
    clock.now += 100.0
    d.heartbeat(session, {run.id: 1}, False)  # read before the lease loop saw the stall
    d.forgive_stall(100.0)
    assert run.lease_expires_at == clock.now + LEASE_S
    assert session.info.last_heartbeat == clock.now


# -- F2: sequence numbers belong to an incarnation -------------------------------------------


def test_a_process_whose_id_another_process_took_is_refused_for_good(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    a, _ = d.attach_worker(hello("x", "i1"))
    d.detach_worker(a)
    clock.now += 60
    b, welcome = d.attach_worker(hello("x", "i2", last_acked_seq=0))
    assert welcome.applied_seq == 0
    d.detach_worker(b)
    clock.now += 60
    with pytest.raises(FailedPrecondition, match=r"hello.worker_id: 'x' was taken by another"):
        d.attach_worker(hello("x", "i1", last_acked_seq=2))


def test_a_worker_unknown_to_a_new_database_resumes_its_sequence(tmp_path: Path) -> None:
    clock = Clock()
    d = make(tmp_path, clock)
    view = d.create_sweep(ONE)
    session, welcome = d.attach_worker(hello("x", "i1", last_acked_seq=7))
    assert welcome.applied_seq == 7
    [run] = view.runs.values()
    # The next message is 8, not "8 skips ahead of 1".
    d.worker_message(session, 8, MetricsEvent(run.id, 1, [MetricRecord(0, 0, clock.now,
                                                                        {"a": 1.0})]))
    assert session.info.applied_seq == 8


# -- F6: worker and client ids ----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["client:c1", "a\x00b", "a\nb", "a/b", "..", "x" * 257, ""])
def test_a_worker_id_that_is_reserved_or_unsafe_is_refused(tmp_path: Path, bad: str) -> None:
    d = make(tmp_path, Clock())
    with pytest.raises(InvalidArgument, match=r"hello\.worker_id"):
        d.attach_worker(hello(bad))


@pytest.mark.parametrize("bad", ["a\x00b", "a\x1bb", "a/b", "x" * 201, ""])
def test_a_client_id_that_is_unsafe_is_refused(tmp_path: Path, bad: str) -> None:
    d = make(tmp_path, Clock())
    view = d.create_sweep(ONE)
    with pytest.raises(InvalidArgument, match="client_id"):
        asyncio.run(d.suggest_for_client(view.sweep.id, bad))


def test_ordinary_ids_stay_accepted() -> None:
    for ok in ["w1", "node-3.example.com-4411-ab12", "gpu_box:2", "agent-h-1-a1b2c3", "h" * 256]:
        names.check_holder_id("hello.worker_id", ok, worker=True)
    names.check_holder_id("client_id", "client:x", worker=False)


# -- small: an attempt past the current one is out of range, not stale ----------------------


def test_an_attempt_past_the_current_one_is_out_of_range(tmp_path: Path) -> None:
    d = make(tmp_path, Clock())
    view = d.create_sweep(ONE)
    run, _ = asyncio.run(d.suggest_for_client(view.sweep.id, "c1"))
    assert run is not None
    with pytest.raises(InvalidArgument, match=r"attempt: 9223372036854775807 is out of range"):
        d.finish_from_client(run.id, 2**63 - 1, RunState.FINISHED, 0, "", "c1")
    assert run.state is RunState.ASSIGNED
