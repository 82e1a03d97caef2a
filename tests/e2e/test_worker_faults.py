"""A real worker process against what goes wrong around a run (issue #11): bad metrics lines,
`--count 1` under CPU load, `kill -9` of the worker, runs sent SIGTERM that exit 0, and ids
from the wire that would be paths."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from sweepd.v1 import common_pb2, workers_pb2, workers_pb2_grpc

from .harness import DEFAULT_TIMEOUT_S, Cluster, Process, alive, wait_for

pytestmark = pytest.mark.e2e


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


# -- item 3: one bad metrics line never hangs a run ------------------------------------------

BAD_LINES = textwrap.dedent('''
    import os, time
    lines = [
        '{"loss": 0.5, "_step": 0}',
        '{"loss": 0.4, "_timestamp": 1732000000000}',
        '{"loss": 0.3, "_step": 100000000000000000000}',
        '{"loss": %s}' % ("9" * 400),
        'not json at all',
        '{"loss": 0.2, "_step": 1}',
        '{"loss": 0.1, "_step": 2}',
    ]
    with open(os.environ["SWEEPD_METRICS_FILE"], "a") as f:
        for line in lines:
            f.write(line + "\\n")
            f.flush()
            time.sleep(0.05)
''')


def test_bad_metrics_lines_are_counted_and_reported_and_the_run_ends(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "bad.py").write_text(BAD_LINES)
    sweep_id = cluster.create(write(tmp_path, "s.yaml", """
        program: bad.py
        method: grid
        metric: {name: loss, goal: minimize}
        parameters:
          a: {values: [1]}
    """))
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir)
    assert worker.wait(DEFAULT_TIMEOUT_S) == 0, worker.output()  # the sweep ended: no hang
    (run,) = cluster.runs(sweep_id)
    assert run["state"] == "FINISHED", run
    assert run["reason"].startswith("4 metrics line(s) could not be used (first: line 2:"), run
    assert "milliseconds" in run["reason"], run
    detail = cluster.sweep_json("show", run["id"])
    assert [h["loss"] for h in detail["history"]] == [0.5, 0.2, 0.1]
    assert [h["step"] for h in detail["history"]] == [0, 1, 2]
    assert any("could not be used" in e["reason"] for e in detail["events"]), detail["events"]
    shown = cluster.sweep("show", run["id"]).stdout
    assert "4 metrics line(s) could not be used" in shown, shown
    logs = cluster.sweep("logs", run["id"]).stdout
    for n, why in [(2, "milliseconds"), (3, "_step"), (4, "400-digit"), (5, "not JSON")]:
        assert any(f"line {n} ignored" in line and why in line
                   for line in logs.splitlines()), (n, logs)


# -- item 4: --count 1 never loses its only run ----------------------------------------------

LOOPS = 20
LANES = 4  # workers joining at once; LOOPS // LANES one after another in each lane


def test_count_one_never_loses_its_run_under_cpu_load(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "quick.py").write_text("from sweepd.client import run\nrun.log({'x': 1})\n")
    sweep_id = cluster.create(write(tmp_path, "s.yaml", f"""
        program: quick.py
        method: grid
        parameters:
          a: {{values: {list(range(LOOPS))}}}
    """))
    # A busy loop per core: the race needs the event loop to be slow to come back.
    for i in range(os.cpu_count() or 1):
        cluster.processes.append(Process([sys.executable, "-c", "while True: pass"],
                                         tmp_path / f"busy-{i}.log"))
    started = time.monotonic()
    failures: list[str] = []

    def lane(n: int) -> None:
        for k in range(LOOPS // LANES):
            w = cluster.start_worker("--sweep", sweep_id, "--count", "1",
                                     "--worker-id", f"w{n}-{k}", workdir=workdir)
            code = w.wait(DEFAULT_TIMEOUT_S)
            if code != 0:
                failures.append(f"w{n}-{k} exited {code}:\n{w.output()}")

    threads = [threading.Thread(target=lane, args=(n,)) for n in range(LANES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert not failures, failures
    runs = cluster.runs(sweep_id)
    assert len(runs) == LOOPS
    # None lost: every run ran once, on its first attempt, and no point was left ASSIGNED.
    assert all(r["state"] == "FINISHED" and r["attempt"] == 1 for r in runs), [
        (r["id"], r["state"], r["attempt"], r["reason"]) for r in runs]
    assert len({r["worker_id"] for r in runs}) == LOOPS
    print(f"{LOOPS} --count 1 workers under load in {elapsed:.1f} s")


# -- item 5: the whole run goes with its worker ----------------------------------------------

FORKS = textwrap.dedent('''
    import os, subprocess, time
    child = subprocess.Popen(["sleep", "40"])
    with open(os.path.join(os.environ["SWEEPD_RUN_DIR"], "pids"), "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(40)
''')


def test_kill_9_of_the_worker_takes_the_runs_children(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "forks.py").write_text(FORKS)
    sweep_id = cluster.create(write(tmp_path, "s.yaml", """
        program: forks.py
        method: grid
        parameters:
          a: {values: [1, 2]}
    """))
    worker = cluster.start_worker("--sweep", sweep_id, "--slots", "2", workdir=workdir)
    pid_files = wait_for(lambda: [p for p in workdir.glob(".sweepd/runs/*/pids")
                                  if p.read_text()] if len(list(
                                      workdir.glob(".sweepd/runs/*/pids"))) == 2 else [],
                         what="two runs to start their child")
    pids = [int(pid) for p in pid_files for pid in p.read_text().split()]
    assert len(pids) == 4 and all(alive(pid) for pid in pids)
    os.kill(worker.pid, signal.SIGKILL)  # the worker only, as the OOM killer would
    killed = time.monotonic()
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, 0.05,
             "the runs and their children to die")
    print(f"run processes and children gone {time.monotonic() - killed:.2f} s after kill -9")


# -- item 16: SIGTERM then exit 0 is STOPPED, not a result -----------------------------------

TRAP = textwrap.dedent('''
    import os, signal, sys, time
    from sweepd.client import run
    run_dir = os.environ["SWEEPD_RUN_DIR"]
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # checkpoint, clean exit
    run.log({"loss": 0.001})
    open(os.path.join(run_dir, "started"), "w").close()
    time.sleep(120)
''')


def test_a_run_sent_sigterm_that_exits_0_ends_stopped_with_why(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "trap.py").write_text(TRAP)
    sweep_id = cluster.create(write(tmp_path, "s.yaml", """
        program: trap.py
        method: grid
        metric: {name: loss, goal: minimize}
        parameters:
          a: {values: [1, 2]}
    """))
    worker = cluster.start_worker("--sweep", sweep_id, workdir=workdir)
    wait_for(lambda: list(workdir.glob(".sweepd/runs/*/started")), what="the run to start")
    wait_for(lambda: any(r["summary"].get("loss") is not None
                         for r in cluster.runs(sweep_id)), what="its metric to arrive")
    # A run still going is no result yet either.
    assert cluster.sweep_json("show", sweep_id)["best_run"] is None
    worker.signal(signal.SIGINT)
    wait_for(lambda: "waiting for 1 run(s)" in worker.output(), what="the worker to drain")
    worker.signal(signal.SIGINT)  # the cascade's SIGTERM; the run exits 0
    assert worker.wait() == 130, worker.output()
    (run,) = cluster.runs(sweep_id)
    assert run["state"] == "STOPPED" and run["exit_code"] == 0, run
    assert "interrupted twice" in run["reason"] and "SIGTERM" in run["reason"], run
    # Its metric is kept, but a run that did not run to its end is no result: not the best.
    assert run["summary"].get("loss") == 0.001, run
    assert cluster.sweep_json("show", sweep_id)["best_run"] is None


# -- item 7, worker side: a refused --worker-id is explained once, then waited for ---------

SLOW = "import time\nfrom sweepd.client import run\nrun.log({'x': 1})\ntime.sleep(4)\n"


def test_a_worker_whose_id_is_taken_says_so_once_and_waits_for_it(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_coordinator()
    sweep_id = cluster.create(write(tmp_path, "s.yaml", """
        program: slow.py
        method: grid
        parameters:
          a: {values: [1, 2, 3]}
    """))
    dirs = []
    for name in ("first", "idle", "later"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "slow.py").write_text(SLOW)
        dirs.append(tmp_path / name)
    # The holder takes two runs (about 8 s), then leaves and frees the id.
    first = cluster.start_worker("--worker-id", "twin", "--count", "2", workdir=dirs[0])
    wait_for(lambda: any(r["state"] == "RUNNING" for r in cluster.runs(sweep_id)),
             what="the holder of the id to run")
    idle = cluster.start_worker("--worker-id", "twin", "--exit-when-idle", "2",
                                workdir=dirs[1])
    later = cluster.start_worker("--worker-id", "twin", "--count", "1", "--log-level", "debug",
                                 workdir=dirs[2])
    # Refused all along, --exit-when-idle still ends it: nothing ran there.
    assert idle.wait(60) == 0, idle.output()
    assert first.wait(120) == 0, first.output()
    # --count 1 waited for the id, then took the last run and left.
    assert later.wait(120) == 0, later.output()
    refused = "refused worker id 'twin' (ALREADY_EXISTS)"
    for proc in (idle, later):
        out = proc.output()
        assert out.count(refused) == 1, out  # said once, not at every retry
        line = next(line for line in out.splitlines() if refused in line)
        # The coordinator's own words: which host holds the id, and what to do about it.
        assert f"in use by a live worker on host {os.uname().nodename!r}" in line, line
        assert "--worker-id" in line, line
        assert "retrying quietly" in out, out
    assert later.output().count("still in use elsewhere; retrying") >= 1, later.output()
    assert "connected as twin: the id is free again" in later.output(), later.output()
    assert "the id is free again" not in idle.output(), idle.output()
    runs = cluster.runs(sweep_id)
    assert sorted((r["state"], r["attempt"], r["worker_id"]) for r in runs) == [
        ("FINISHED", 1, "twin")] * 3, runs
    assert not list(dirs[1].glob(".sweepd/runs/*"))
    assert len(list(dirs[0].glob(".sweepd/runs/*"))) == 2
    assert len(list(dirs[2].glob(".sweepd/runs/*"))) == 1


# -- item 18: ids from the wire are never used as paths unchecked ----------------------------

class FakeCoordinator(workers_pb2_grpc.WorkerServiceServicer):
    """Just enough of WorkerService.Connect to hand a worker chosen assignments: what a real
    coordinator never sends. Records every message the worker sends."""

    def __init__(self) -> None:
        self.outbox: queue.Queue[workers_pb2.CoordinatorMessage | None] = queue.Queue()
        self.received: list[workers_pb2.WorkerMessage] = []
        self.lock = threading.Lock()

    def Connect(self, request_iterator: Iterator[workers_pb2.WorkerMessage],
                context: Any) -> Iterator[workers_pb2.CoordinatorMessage]:
        first = next(request_iterator)
        assert first.WhichOneof("body") == "hello"
        yield workers_pb2.CoordinatorMessage(welcome=workers_pb2.Welcome(
            heartbeat_interval_s=1.0, lease_s=30.0))

        def read() -> None:
            with contextlib.suppress(grpc.RpcError):  # the stream ends with the worker
                for msg in request_iterator:
                    with self.lock:
                        self.received.append(msg)
                    if msg.seq:
                        self.outbox.put(workers_pb2.CoordinatorMessage(
                            ack=workers_pb2.Ack(seq=msg.seq)))

        threading.Thread(target=read, daemon=True).start()
        while context.is_active():
            try:
                order = self.outbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if order is None:
                return
            yield order

    def finished(self) -> dict[str, workers_pb2.RunFinished]:
        with self.lock:
            return {m.run_finished.run_id: m.run_finished for m in self.received
                    if m.WhichOneof("body") == "run_finished"}


def test_a_run_id_that_is_a_path_is_refused_and_the_worker_goes_on(tmp_path: Path) -> None:
    fake = FakeCoordinator()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    workers_pb2_grpc.add_WorkerServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    workdir = tmp_path / "deep" / "work"
    workdir.mkdir(parents=True)
    (workdir / "ok.py").write_text("print('ran')\n")
    cluster = Cluster(tmp_path)
    cluster.address = f"127.0.0.1:{port}"
    try:
        worker = cluster.start_worker(workdir=workdir)
        bad = ["../../../escaped", "/tmp/abs-escaped", "..", "x/../../../../escaped"]
        for run_id in bad:
            fake.outbox.put(workers_pb2.CoordinatorMessage(assign=workers_pb2.Assign(
                run_id=run_id, sweep_id="s", attempt=1,
                argv=[sys.executable, "ok.py"])))
        fake.outbox.put(workers_pb2.CoordinatorMessage(assign=workers_pb2.Assign(
            run_id="s-1", sweep_id="../s", attempt=1, argv=[sys.executable, "ok.py"])))
        fake.outbox.put(workers_pb2.CoordinatorMessage(assign=workers_pb2.Assign(
            run_id="s-2", sweep_id="s", attempt=-3, argv=[sys.executable, "ok.py"])))
        wait_for(lambda: len(fake.finished()) == len(bad) + 2, what="every refusal")
        for msg in fake.finished().values():
            assert msg.state == common_pb2.RUN_STATE_FAILED, msg
            assert "not a valid id" in msg.reason or "assign.attempt" in msg.reason, msg
        # The worker goes on: a good assignment runs.
        fake.outbox.put(workers_pb2.CoordinatorMessage(assign=workers_pb2.Assign(
            run_id="s-3", sweep_id="s", attempt=1, argv=[sys.executable, "ok.py"])))
        wait_for(lambda: "s-3" in fake.finished(), what="the good run to finish")
        assert fake.finished()["s-3"].state == common_pb2.RUN_STATE_FINISHED
        fake.outbox.put(workers_pb2.CoordinatorMessage(drain=workers_pb2.Drain(reason="done")))
        assert worker.wait() == 0, worker.output()
        # Nothing was written outside the workdir, nor any run directory but the good one's.
        outside = [p for p in tmp_path.rglob("*") if workdir not in p.parents
                   and p != workdir and not p.name.startswith("worker-")]
        assert sorted(p.relative_to(tmp_path).as_posix() for p in outside) == ["deep"], outside
        assert not list(Path("/tmp").glob("abs-escaped*"))
        assert [p.name for p in (workdir / ".sweepd" / "runs").iterdir()] == ["s-3.1"]
        assert "refusing an assignment" in worker.output()
    finally:
        cluster.close()
        server.stop(0)
