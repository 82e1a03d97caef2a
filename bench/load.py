"""Load benchmark: N simulated workers against one real coordinator.

Each simulated worker speaks the real worker protocol (one Connect stream, Hello, heartbeats
at the interval the coordinator grants, RunStarted/RunFinished as sequenced messages) and
runs zero-length runs: it reports a run finished as soon as it is assigned. The workers live
in a few processes (asyncio, one channel each, as real workers have).

Measured per N, over a phase of --seconds after all workers connected:
- the coordinator's CPU (utime+stime from /proc, as a share of one core) and RSS;
- round trip of a sequenced message to its ack (RunFinished -> Ack: one SQLite commit),
  p50/p99;
- runs completed per second;
- spurious lease expiries (runs that went LOST: every simulated worker heartbeats on time).

With --hold every worker keeps one run going for the whole phase (a fleet of long runs): the
round trip is then that of a no-op sequenced message sent with each heartbeat.

    python bench/load.py --workers 100 500 1000 --seconds 20
    python bench/load.py --workers 100 500 1000 --seconds 20 --hold
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from sweepd.common.transport import CHANNEL_OPTIONS
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc, workers_pb2, workers_pb2_grpc

# Client processes hosting the simulated workers: enough to spread their CPU, few enough to
# leave the coordinator a core on a small machine.
CLIENT_PROCESSES = 3
# What a real worker proposes (worker/daemon.py PROPOSED_HEARTBEAT_S).
HEARTBEAT_S = 2.0
# Between two simulated workers' connects within one client process.
RAMP_S = 0.005
CONFIG = ("method: random\nprogram: t.py\nrun_cap: 90000\n"
          "parameters:\n  x: {min: 0.0, max: 1.0}\n")


async def _sim_worker(address: str, token: str, wid: str, stop_at: float, measure_from: float,
                      rtts: list[float], done: list[int], hold: bool) -> None:
    md = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = workers_pb2_grpc.WorkerServiceStub(channel)
        queue: asyncio.Queue[workers_pb2.WorkerMessage | None] = asyncio.Queue()
        await queue.put(workers_pb2.WorkerMessage(hello=workers_pb2.Hello(
            worker_id=wid, incarnation=wid, host="bench", slots=1, queues=["default"],
            heartbeat_interval_s=HEARTBEAT_S)))

        async def requests() -> Any:
            while True:
                msg = await queue.get()
                if msg is None:
                    return
                yield msg

        call = stub.Connect(requests(), metadata=md)
        seq = 0
        sent: dict[int, float] = {}
        held: dict[str, int] = {}
        interval = HEARTBEAT_S

        async def heartbeats() -> None:
            nonlocal seq
            while True:
                await asyncio.sleep(interval)
                await queue.put(workers_pb2.WorkerMessage(heartbeat=workers_pb2.Heartbeat(
                    runs=[workers_pb2.HeldRun(run_id=r, attempt=a) for r, a in held.items()],
                    free_slots=1 - len(held))))
                if hold and held:
                    # A no-op sequenced message (RunStarted again: applied, acknowledged,
                    # changes nothing) per heartbeat, to time the round trip.
                    run_id, attempt = next(iter(held.items()))
                    seq += 1
                    sent[seq] = time.time()
                    await queue.put(workers_pb2.WorkerMessage(
                        seq=seq, run_started=workers_pb2.RunStarted(run_id=run_id,
                                                                    attempt=attempt)))

        hb = asyncio.create_task(heartbeats())

        async def leave() -> None:
            # Hold the connection (heartbeating, with a run held) a little after the phase:
            # a spurious expiry would show here too.
            await asyncio.sleep(max(0.0, stop_at + 2 * HEARTBEAT_S - time.time()))
            call.cancel()

        leaver = asyncio.create_task(leave())
        try:
            async for msg in call:
                kind = msg.WhichOneof("body")
                now = time.time()
                if kind == "welcome":
                    interval = msg.welcome.heartbeat_interval_s or HEARTBEAT_S
                elif kind == "assign":
                    a = msg.assign
                    if now >= stop_at:
                        continue  # the phase is over: hold it, heartbeating, until we leave
                    held[a.run_id] = a.attempt
                    if hold:
                        continue  # keeps it "running" for the whole phase
                    seq += 1
                    sent[seq] = now
                    await queue.put(workers_pb2.WorkerMessage(
                        seq=seq, run_finished=workers_pb2.RunFinished(
                            run_id=a.run_id, attempt=a.attempt, exit_code=0,
                            state=common_pb2.RUN_STATE_FINISHED)))
                elif kind == "ack":
                    t0 = sent.pop(msg.ack.seq, None)
                    if t0 is not None:
                        if t0 >= measure_from:
                            rtts.append(now - t0)
                            done[0] += 0 if hold else 1
                        if not hold:
                            held.clear()
        except asyncio.CancelledError:
            pass
        finally:
            leaver.cancel()
            hb.cancel()
            await queue.put(None)
            call.cancel()


def _client_process(address: str, token: str, ids: list[str], start_at: float,
                    measure_from: float, stop_at: float, out: Any, hold: bool) -> None:
    rtts: list[float] = []
    done = [0]

    async def main() -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        tasks = []
        for wid in ids:  # a ramp, as workers of a real fleet do not start in the same ms
            tasks.append(asyncio.create_task(
                _sim_worker(address, token, wid, stop_at, measure_from, rtts, done, hold)))
            await asyncio.sleep(RAMP_S)
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    out.put((rtts, done[0]))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def run_phase(n: int, seconds: float, connect_s: float, hold: bool) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="sweepd-load-"))
    coord = subprocess.Popen(
        [sys.executable, "-m", "sweepd.coordinator", "serve", "--port", "0", "--state-dir",
         str(state), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert coord.stdout is not None
        port = ""
        while not port:
            line = coord.stdout.readline()
            if not line:
                err = coord.stderr.read() if coord.stderr else ""
                raise SystemExit(f"coordinator exited: {err}")
            m = re.search(r"listening on \S+:(\d+)", line)
            port = m.group(1) if m else ""
        address = f"127.0.0.1:{port}"
        token = (state / "token").read_text().strip()
        with grpc.insecure_channel(address) as ch:
            stub = sweeps_pb2_grpc.SweepServiceStub(ch)
            sweep_id = stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=CONFIG),
                                        metadata=(("authorization", f"Bearer {token}"),)).sweep.id
        start_at = time.time() + 1.0
        measure_from = start_at + connect_s
        stop_at = measure_from + seconds
        # Spawned, not forked: this process has used gRPC by now, and a forked child of a
        # gRPC process can hang (a 500-worker phase after the 100-worker one once did).
        ctx = mp.get_context("spawn")
        out: Any = ctx.Queue()
        ids = [f"sim-{i}" for i in range(n)]
        procs = [ctx.Process(target=_client_process, args=(
            address, token, ids[k::CLIENT_PROCESSES], start_at, measure_from, stop_at, out,
            hold))
            for k in range(CLIENT_PROCESSES)]
        for p in procs:
            p.start()
        time.sleep(max(0.0, measure_from - time.time()))
        cpu0, t0 = _cpu_seconds(coord.pid), time.time()
        rss_peak = _rss_mib(coord.pid)
        while time.time() < stop_at:
            time.sleep(1.0)
            rss_peak = max(rss_peak, _rss_mib(coord.pid))
        cpu1, t1 = _cpu_seconds(coord.pid), time.time()
        # Hold the connections a little longer with no runs: expiry would show here too.
        rtts: list[float] = []
        done = 0
        for _ in procs:
            r, d = out.get(timeout=120)
            rtts += r
            done += d
        for p in procs:
            p.join(30)
        with grpc.insecure_channel(address) as ch:
            stub = sweeps_pb2_grpc.SweepServiceStub(ch)
            md = (("authorization", f"Bearer {token}"),)
            runs = stub.ListRuns(sweeps_pb2.ListRunsRequest(sweep_id=sweep_id), metadata=md).runs
            workers = stub.ListWorkers(sweeps_pb2.ListWorkersRequest(), metadata=md).workers
        lost = sum(1 for r in runs if r.state == common_pb2.RUN_STATE_LOST or r.attempt > 1)
        rtts.sort()
        return {
            "workers": n, "known_workers": len(workers),
            "cpu_core_share": (cpu1 - cpu0) / (t1 - t0), "rss_mib_peak": rss_peak,
            "ack_rtt_p50_ms": 1000 * statistics.median(rtts) if rtts else float("nan"),
            "ack_rtt_p99_ms": 1000 * rtts[int(0.99 * (len(rtts) - 1))] if rtts else float("nan"),
            "runs_per_s": done / seconds, "lost_or_retried_runs": lost,
        }
    finally:
        coord.terminate()
        try:
            coord.wait(10)
        except subprocess.TimeoutExpired:
            coord.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured phase per N")
    ap.add_argument("--connect-seconds", type=float, default=8.0,
                    help="time for the workers to connect before measuring")
    ap.add_argument("--hold", action="store_true",
                    help="workers keep their run going (heartbeats and one no-op sequenced"
                         " message per heartbeat) instead of finishing zero-length runs")
    args = ap.parse_args()
    print(f"{'N':>5} {'known':>6} {'cpu':>6} {'rss MiB':>8} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'runs/s':>8} {'lost':>5}")
    for n in args.workers:
        r = run_phase(n, args.seconds, args.connect_seconds, args.hold)
        print(f"{r['workers']:>5} {r['known_workers']:>6} {r['cpu_core_share']:>6.2f}"
              f" {r['rss_mib_peak']:>8.1f} {r['ack_rtt_p50_ms']:>8.1f} {r['ack_rtt_p99_ms']:>8.1f}"
              f" {r['runs_per_s']:>8.1f} {r['lost_or_retried_runs']:>5}", flush=True)


if __name__ == "__main__":
    main()
