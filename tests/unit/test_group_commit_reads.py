"""Reads never show what a group commit then takes back: a reply built from memory waits for
the open group, and is built again if that group failed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sweepd.coordinator.dispatcher import Dispatcher
from sweepd.coordinator.domain import MetricRecord, RunState
from sweepd.coordinator.servicers.sweeps import SweepServicer
from sweepd.v1 import common_pb2, sweeps_pb2

from .test_group_commit import RANDOM, CountingStore


def test_a_read_during_a_failing_group_shows_what_is_stored(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "db.sqlite3")
    d = Dispatcher(store, clock=lambda: 1_000_000.0, lease_s=30.0)
    view = d.create_sweep(RANDOM)
    servicer = SweepServicer(d)
    context: Any = None

    async def main() -> None:
        run, _ = await d.suggest_for_client(view.sweep.id, "a")
        await d.durable()
        assert run is not None
        store.fail = {store.commits + 1}
        # The tell changes memory at once; its group fails to commit.
        d.finish_from_client(run.id, 1, RunState.FINISHED, 0, "", "a",
                             [MetricRecord(index=0, step=0, time=1.0, values={"loss": 2.0})])
        assert run.state is RunState.FINISHED  # in memory, not yet committed
        got, listed = await asyncio.gather(
            servicer.GetRun(sweeps_pb2.GetRunRequest(run_id=run.id, include_history=True),
                            context),
            servicer.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=view.sweep.id), context))
        assert got.run.state == common_pb2.RUN_STATE_ASSIGNED and not got.history
        assert [r.state for r in listed.runs] == [common_pb2.RUN_STATE_ASSIGNED]
        sweep = await servicer.GetSweep(sweeps_pb2.GetSweepRequest(sweep_id=view.sweep.id),
                                        context)
        assert "FINISHED" not in sweep.run_counts

    asyncio.run(main())
    store.close()
