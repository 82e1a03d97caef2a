"""Stop decisions stored before they were typed (issue 17) load unchanged: a coordinator
restarted over a state dir whose runs hold stop_json rows in the old format serves their
figures as before."""

from __future__ import annotations

import json
import math
import signal
import sqlite3

import pytest
from sweepd.coordinator.store import DB_FILENAME
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster

pytestmark = pytest.mark.e2e

CONFIG = """
method: random
metric: {name: loss, goal: minimize}
parameters:
  x: {min: 0.0, max: 1.0}
"""
# As the dispatcher wrote them before: json.dumps of the dicts it built.
OLD_EARLY_STOP = json.dumps({"rule": "hyperband", "reason": "hyperband: loss=0.93 at iteration"
                             " 9 is worse than the band threshold 0.5 (top 1/3 of 12 runs)",
                             "band": 9, "threshold": 0.5, "value": 0.93})
OLD_CANCEL = json.dumps({"rule": "cancel", "reason": "sweep canceled"})


def test_old_stop_rows_are_served_after_a_restart(cluster: Cluster) -> None:
    cluster.start_coordinator()
    stub = sweeps_pb2_grpc.SweepServiceStub(cluster.channel())
    sweep = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG)).sweep
    run_ids = []
    for client_id in ("a", "b"):
        run = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep.id,
                                                           client_id=client_id)).run
        stub.FinishRun(sweeps_pb2.FinishRunRequest(
            run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_STOPPED,
            client_id=client_id))
        run_ids.append(run.id)
    assert cluster.coordinator is not None
    cluster.coordinator.signal(signal.SIGTERM)
    cluster.coordinator.wait(60)

    db = sqlite3.connect(cluster.state_dir / DB_FILENAME)
    with db:
        db.execute("UPDATE runs SET stop_json=? WHERE id=?", (OLD_EARLY_STOP, run_ids[0]))
        db.execute("UPDATE runs SET stop_json=? WHERE id=?", (OLD_CANCEL, run_ids[1]))
    db.close()

    cluster.start_coordinator()
    stub = sweeps_pb2_grpc.SweepServiceStub(cluster.channel())
    early = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=run_ids[0])).run.stop
    assert (early.rule, early.reason, early.band) == ("hyperband",
                                                      json.loads(OLD_EARLY_STOP)["reason"], 9)
    assert math.isclose(early.threshold, 0.5) and math.isclose(early.value, 0.93)
    cancel = stub.GetRun(sweeps_pb2.GetRunRequest(run_id=run_ids[1])).run
    assert cancel.HasField("stop")
    assert (cancel.stop.rule, cancel.stop.reason) == ("cancel", "sweep canceled")
    assert not any(cancel.stop.HasField(f) for f in ("band", "threshold", "value"))
