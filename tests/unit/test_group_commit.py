"""Group commit of ask/tell calls: the writes of concurrent clients share one commit, each
call answered only after it; a failed group loses every part and answers each with the error,
and memory is put back as stored.

The clients here are coroutines on one event loop driving the dispatcher as the servicers do
(the call, then ``await durable()``), and retrying a failed call as the Python client does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sweepd.coordinator.dispatcher import Dispatcher
from sweepd.coordinator.domain import MetricRecord, Run, RunState
from sweepd.coordinator.errors import InvalidArgument, Unavailable
from sweepd.coordinator.store import Store

from .test_store_failures import FlakyStore

RANDOM = ("method: random\nmetric: {name: loss, goal: minimize}\nrun_cap: 100000\n"
          "parameters:\n  a: {min: 0.0, max: 1.0}\n  b: {values: [1, 2, 3]}\n")
GRID = ("method: grid\nprogram: train.py\nmetric: {name: loss, goal: minimize}\n"
        "parameters:\n  a: {values: [1, 2, 3, 4]}\n")


# Counts commits and fails those whose number (from 1) is in ``fail``, as a full disk does.
CountingStore = FlakyStore


def loss_of(run: Run) -> float:
    return float(run.number) / 7.0


async def client(d: Dispatcher, sweep_id: str, name: str, trials: int,
                 acknowledged: dict[str, float], *, one_call: bool) -> None:
    """``trials`` trials, each ask, then the result and the end (one call or two); a call that
    fails UNAVAILABLE is sent again, as the client library does."""

    async def call(fn, *args):  # type: ignore[no-untyped-def]
        for _ in range(50):
            try:
                result = fn(*args)
                await d.durable()
                return result
            except Unavailable:
                await asyncio.sleep(0)
        raise AssertionError("never answered")

    async def ask() -> Run:
        for _ in range(50):
            try:
                run, _ = await d.suggest_for_client(sweep_id, name)
                await d.durable()
                assert run is not None
                return run
            except Unavailable:
                await asyncio.sleep(0)
        raise AssertionError("never answered")

    for _ in range(trials):
        run = await ask()
        record = [MetricRecord(index=0, step=0, time=1.0, values={"loss": loss_of(run)})]
        if one_call:
            await call(d.finish_from_client, run.id, run.attempt, RunState.FINISHED, 0, "",
                       name, record)
        else:
            await call(d.report_from_client, run.id, run.attempt, record, name)
            await call(d.finish_from_client, run.id, run.attempt, RunState.FINISHED, 0, "",
                       name)
        acknowledged[run.id] = loss_of(run)


def run_clients(tmp_path: Path, fail: set[int], *, clients: int = 4, trials: int = 5,
                one_call: bool = True) -> tuple[CountingStore, Dispatcher, dict[str, float]]:
    store = CountingStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0, lease_s=30.0)
    view = d.create_sweep(RANDOM)
    store.commits = 0
    store.fail = fail
    acknowledged: dict[str, float] = {}

    async def main() -> None:
        await asyncio.gather(*(client(d, view.sweep.id, f"c{k}", trials, acknowledged,
                                      one_call=one_call) for k in range(clients)))

    asyncio.run(main())
    return store, d, acknowledged


def check_stored(store: CountingStore, d: Dispatcher, acknowledged: dict[str, float]) -> None:
    for run_id, loss in acknowledged.items():
        run = d.runs[run_id]
        assert run.state is RunState.FINISHED and run.summary == {"loss": loss}, run
        assert [r.values["loss"] for r in d.history(run)] == [loss]
    # Memory agrees with what a restarted coordinator reads, run by run.
    fresh = Dispatcher(Store(store.path), clock=lambda: 1_000_000.0)
    assert set(fresh.runs) == set(d.runs)
    for run in d.runs.values():
        again = fresh.runs[run.id]
        assert (again.state, again.attempt, again.next_record_index, again.summary,
                again.worker_id) == (run.state, run.attempt, run.next_record_index,
                                     run.summary, run.worker_id), run.id
    assert (fresh.sweeps[next(iter(d.sweeps))].sweep.run_count
            == d.sweeps[next(iter(d.sweeps))].sweep.run_count)
    fresh.store.close()


@pytest.mark.parametrize("one_call", [True, False], ids=["tell-in-finish", "report-then-finish"])
def test_concurrent_clients_share_commits_and_lose_nothing(tmp_path: Path,
                                                           one_call: bool) -> None:
    store, d, acknowledged = run_clients(tmp_path, set(), clients=8, trials=10,
                                         one_call=one_call)
    assert len(acknowledged) == 80
    check_stored(store, d, acknowledged)
    calls = 80 * (2 if one_call else 3)
    # Eight clients each with a call in flight: their writes share commits.
    assert store.commits <= calls / 3, (store.commits, calls)
    store.close()


def test_every_acknowledged_trial_is_stored_whichever_group_commit_fails(
        tmp_path: Path) -> None:
    clean, _, _ = run_clients(tmp_path / "clean", set())
    total = clean.commits
    clean.close()
    assert total >= 5
    for n in range(1, total + 1):
        for fail in ({n}, {n, n + 1, n + 2}):
            where = tmp_path / f"fail-{n}-{len(fail)}"
            where.mkdir()
            store, d, acknowledged = run_clients(where, fail)
            assert store.failed >= 1, n
            assert len(acknowledged) == 20
            check_stored(store, d, acknowledged)
            store.close()


def test_a_refused_call_leaves_the_other_calls_of_its_group_alone(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0, lease_s=30.0)
    view = d.create_sweep(RANDOM)

    async def main() -> None:
        a, _ = await d.suggest_for_client(view.sweep.id, "a")
        b, _ = await d.suggest_for_client(view.sweep.id, "b")
        await d.durable()
        assert a is not None and b is not None
        d.finish_from_client(a.id, a.attempt, RunState.FINISHED, 0, "", "a",
                             [MetricRecord(index=0, step=0, time=1.0, values={"loss": 1.0})])
        with pytest.raises(InvalidArgument, match="index"):  # a gap: refused whole
            d.finish_from_client(b.id, b.attempt, RunState.FINISHED, 0, "", "b",
                                 [MetricRecord(index=3, step=3, time=1.0, values={"x": 1.0})])
        await d.durable()
        assert a.state is RunState.FINISHED and b.state is RunState.ASSIGNED

    commits = store.commits
    asyncio.run(main())
    assert store.commits == commits + 2
    fresh = Dispatcher(Store(store.path), clock=lambda: 1_000_000.0)
    assert [r.state for r in sorted(fresh.runs.values(), key=lambda r: r.number)] == [
        RunState.FINISHED, RunState.ASSIGNED]
    fresh.store.close()
    store.close()


def test_a_failed_group_answers_every_call_in_it_with_the_error(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0, lease_s=30.0)
    view = d.create_sweep(RANDOM)
    answers: list[object] = []

    async def ask(name: str) -> None:
        try:
            run, _ = await d.suggest_for_client(view.sweep.id, name)
            await d.durable()
            answers.append(run)
        except Unavailable as exc:
            answers.append(exc)

    async def main() -> None:
        store.fail = {store.commits + 1}
        await asyncio.gather(ask("a"), ask("b"), ask("c"))

    asyncio.run(main())
    assert len(answers) == 3 and all(isinstance(a, Unavailable) for a in answers), answers
    assert "full disk" in str(answers[0])
    assert d.runs == {} and view.sweep.run_count == 0
    # Asked again, each gets a run; the numbers start at 1 as if nothing had happened.
    answers.clear()

    async def again() -> None:
        await asyncio.gather(ask("a"), ask("b"), ask("c"))

    asyncio.run(again())
    assert sorted(a.number for a in answers if isinstance(a, Run)) == [1, 2, 3]
    store.close()


def test_an_ordinary_commit_during_an_open_group_commits_the_group_first(
        tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0, lease_s=30.0)
    view = d.create_sweep(RANDOM)

    async def main() -> None:
        run, _ = await d.suggest_for_client(view.sweep.id, "a")
        assert run is not None and store.group_open
        d.pause(view.sweep.id)  # an ordinary commit
        assert not store.group_open
        await d.durable()  # already durable: returns at once

    asyncio.run(main())
    fresh = Dispatcher(Store(store.path), clock=lambda: 1_000_000.0)
    assert len(fresh.runs) == 1 and fresh.sweeps[view.sweep.id].sweep.state.value == "PAUSED"
    fresh.store.close()
    store.close()


def test_a_retried_finish_with_records_is_answered_the_same(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0, lease_s=30.0)
    view = d.create_sweep(RANDOM)
    records = [MetricRecord(index=i, step=i, time=1.0, values={"loss": 3.0 - i})
               for i in range(3)]

    async def main() -> Run:
        run, _ = await d.suggest_for_client(view.sweep.id, "a")
        assert run is not None
        d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "a", records)
        await d.durable()
        return run

    run = asyncio.run(main())
    commits = store.commits
    again = d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "a", records)
    assert again is run and store.commits == commits
    assert [r.index for r in d.history(run)] == [0, 1, 2] and run.summary == {"loss": 1.0}
    store.close()


def test_workers_assigned_from_a_group_get_their_orders_after_it_commits(
        tmp_path: Path) -> None:
    """A FinishRun (grouped) that frees a sweep's slot schedules a worker's run with an
    ordinary commit: the group is committed first, and the worker's Assign goes out."""
    from sweepd.coordinator.dispatcher import Hello
    from sweepd.coordinator.domain import AssignOrder

    store = CountingStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0, lease_s=30.0)
    view = d.create_sweep(GRID)

    async def main() -> None:
        run, _ = await d.suggest_for_client(view.sweep.id, "a")
        assert run is not None
        session, _ = d.attach_worker(Hello(
            worker_id="w1", incarnation="i1", host="h", slots=1, labels={}, held_runs={},
            sweep_id="", heartbeat_interval_s=1.0, max_runs=0, runs_assigned=0))
        d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "a",
                             [MetricRecord(index=0, step=0, time=1.0, values={"loss": 1.0})])
        await d.durable()
        orders = []
        while not session.outbox.empty():
            orders.append(session.outbox.get_nowait())
        assert any(isinstance(o, AssignOrder) for o in orders), orders

    asyncio.run(main())
    store.close()


def test_the_token_scheme_is_read_in_any_case() -> None:
    from sweepd.coordinator.security import GuardedServer

    class Context:
        def __init__(self, value: str) -> None:
            self.value = value

        def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
            return (("authorization", self.value),)

    guard = GuardedServer(None, "t" * 20, "hint")  # type: ignore[arg-type]
    for good in ("Bearer " + "t" * 20, "bearer " + "t" * 20, "BEARER " + "t" * 20):
        assert guard.refusal(Context(good)) == ""  # type: ignore[arg-type]
    for bad in ("Bearer " + "t" * 19, "Basic " + "t" * 20, "t" * 20, "Bearer"):
        assert "wrong token" in guard.refusal(Context(bad))  # type: ignore[arg-type]
