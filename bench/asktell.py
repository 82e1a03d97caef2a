"""Ask/tell benchmark (issue #13): trials through sweepd's gRPC API beside Optuna's stores.

Throughput (default): P client processes run trials against a real ``coordinator serve``
process (temp state dir, free port, its token) through the real API, each trial
``SuggestRun`` -> ``ReportMetrics`` (one record) -> ``FinishRun`` (or, with the ``records``
field of ``FinishRunRequest``, ``SuggestRun`` -> ``FinishRun`` carrying the record: one ask and
one tell), random search over a 10-parameter mixed space. Beside it, with the same P processes
and space, Optuna's JournalFile store and its SQLite ``RDBStorage``, each trial ``ask`` ->
``report`` (one intermediate value) -> ``tell`` with the RandomSampler. Then the coordinator is
killed (SIGKILL) and started again on its state dir, and every run it lists is checked: each
trial a client saw acknowledged must be stored FINISHED with its metric (exit status 1 if not).

Bayes under concurrency (``--bayes``): a bayes sweep (minimise, 8 mixed parameters, a cheap
synthetic objective) is filled to ``--prefill`` finished runs through the API, then C
concurrent clients (asyncio ``grpc.aio`` channels, one per client, in a few processes) loop
SuggestRun -> tell for ``--seconds``; every SuggestRun's latency is measured.

The coordinator's CPU (utime+stime from /proc, as a share of one core) is measured over the
timed window, with its busiest threads, and so is the client processes' CPU. The header says
which coordinator code ran: the working tree, or with ``--coordinator-ref`` a commit exported
to a temp dir (so that "before" can be measured while the tree changes), and the time of one
fsync on this disk (Optuna's stores fsync every write; sweepd's WAL store does not).

    bench/.venv/bin/python bench/asktell.py                      # 4 clients, 10 s, all stores
    bench/.venv/bin/python bench/asktell.py --only sweepd         # quick iteration
    bench/.venv/bin/python bench/asktell.py --bayes --prefill 1000 --clients 8
    bench/.venv/bin/python bench/asktell.py --bayes --prefill 1000 --clients 200
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per process (numpy in Optuna's clients): processes are the
# parallelism here, and oversubscribed BLAS threads distort timings on a small machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import grpc  # noqa: E402
from sweepd.common.transport import CHANNEL_OPTIONS  # noqa: E402
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc  # noqa: E402

# The 10-parameter mixed space of the throughput runs (W&B syntax; Optuna gets the same
# distributions through bench/methods.py's converter).
SPACE: dict[str, dict[str, Any]] = {
    "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
    "weight_decay": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1e-2},
    "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
    "momentum": {"distribution": "uniform", "min": 0.8, "max": 0.99},
    "warmup": {"distribution": "uniform", "min": 0.0, "max": 0.2},
    "layers": {"distribution": "int_uniform", "min": 1, "max": 8},
    "width": {"distribution": "int_uniform", "min": 16, "max": 512},
    "batch_size": {"values": [16, 32, 64, 128, 256]},
    "optimizer": {"values": ["adam", "sgd", "rmsprop"]},
    "activation": {"values": ["relu", "gelu", "tanh", "silu"]},
}
# The bayes sweep's 8 of them: 2 log floats, 2 floats, 2 ints, 2 categoricals.
BAYES_PARAMS = ("lr", "weight_decay", "dropout", "momentum", "layers", "width", "batch_size",
                "optimizer")
METRIC = "loss"
# Far beyond what any phase finishes, so that the cap never ends a sweep mid-measurement.
RUN_CAP = 100_000_000
# A run the coordinator answered "none now" for (should not happen here) is asked again
# after this pause rather than in a hot loop.
RETRY_PAUSE_S = 0.02
# Time the coordinator gets to start, and the clients to import and connect.
START_TIMEOUT_S = 120.0
STORES = ("sweepd", "journal", "sqlite")


def objective(p: Mapping[str, Any]) -> float:
    """A cheap synthetic loss with its optimum inside the space (microseconds)."""
    v = (math.log10(p.get("lr", 1e-3)) + 3.0) ** 2
    v += 0.3 * (math.log10(p.get("weight_decay", 1e-4)) + 4.0) ** 2
    v += 4.0 * (p.get("dropout", 0.1) - 0.1) ** 2 + 10.0 * (p.get("momentum", 0.9) - 0.9) ** 2
    v += 2.0 * (p.get("warmup", 0.05) - 0.05) ** 2
    v += 0.05 * (p.get("layers", 4) - 4) ** 2 + ((p.get("width", 256) - 256) / 256.0) ** 2
    v += 0.1 * abs(math.log2(p.get("batch_size", 64) / 64))
    v += {"adam": 0.0, "sgd": 0.3, "rmsprop": 0.15}[p.get("optimizer", "adam")]
    v += {"relu": 0.0, "gelu": -0.05, "tanh": 0.2, "silu": -0.02}[p.get("activation", "relu")]
    return v


def sweep_config(method: str, params: Sequence[str]) -> str:
    return json.dumps({
        "program": "train.py", "method": method,
        "metric": {"name": METRIC, "goal": "minimize"}, "run_cap": RUN_CAP,
        "parameters": {name: SPACE[name] for name in params},
    })


def _value(v: common_pb2.ParamValue) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "map_value":
        return {k: _value(x) for k, x in v.map_value.fields.items()}
    if kind == "list_value":
        return [_value(x) for x in v.list_value.items]
    if kind is None or kind == "null_value":
        return None
    return getattr(v, kind)


def params_of(run: common_pb2.Run) -> dict[str, Any]:
    return {k: _value(x) for k, x in run.params.fields.items()}


def finish_has_records() -> bool:
    return "records" in sweeps_pb2.FinishRunRequest.DESCRIPTOR.fields_by_name


def fsync_ms(n: int = 20) -> float:
    """The median time of one small append + fsync in the temp dir, where every store here
    writes: the price of a durable write on this disk now. Optuna's JournalFile fsyncs each
    append and its SQLite store each commit; sweepd's store (SQLite WAL, synchronous=NORMAL)
    does not fsync per commit, so this moves the competitors' figures more than sweepd's."""
    fd, path = tempfile.mkstemp(prefix="asktell-fsync-")
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 200)
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    return 1000 * statistics.median(times)


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _pct(xs: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of sorted ``xs``; NaN when empty."""
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


# --- the coordinator process ----------------------------------------------------------------

def _cpu_seconds(path: str) -> float:
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    out: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            out[int(task.name)] = (comm, _cpu_seconds(str(task / "stat")))
        except (OSError, ValueError, IndexError):
            pass  # the thread ended between the listing and the read
    return out


REPO = Path(__file__).resolve().parent.parent
# Where each top-level folder installs under the sweepd namespace (pyproject's package-dir).
PACKAGE_DIRS = {"coordinator": "coordinator", "common": "common", "client": "client",
                "worker": "worker", "v1": "protos/sweepd/v1"}


@dataclass
class CoordinatorCode:
    """Which coordinator code runs, with which interpreter."""

    python: str
    label: str
    env: dict[str, str]
    has_records: bool
    tmp: Path | None = None

    def cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _git(*argv: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True,
                          check=True).stdout.strip()


def _working_tree_label() -> str:
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", *PACKAGE_DIRS.values())
    except (OSError, subprocess.CalledProcessError):
        return "working tree"
    return f"working tree at {head}" + (" + uncommitted changes" if dirty else "")


def _proto_has_records(sweeps_proto: Path) -> bool:
    m = re.search(r"message FinishRunRequest \{(.*?)\n\}", sweeps_proto.read_text(), re.S)
    return bool(m and re.search(r"\bMetricRecord records\b", m.group(1)))


def coordinator_code(python: str | None, ref: str | None) -> CoordinatorCode:
    """The coordinator's code: this checkout's (installed editable), or with ``ref`` a
    commit exported with ``git archive`` into a temp dir and put first on the coordinator's
    PYTHONPATH as a regular ``sweepd`` package, so that "before" and "after" can be measured
    while the working tree changes.

    The interpreter: the bench venv is made for the search competitors and may lack the
    coordinator's own dependencies (aiohttp for its dashboard); then the ``python3`` on PATH
    (where sweepd is installed with all of them) runs it. It is resolved to the real
    executable, so that /proc shows the coordinator itself, not a launcher script."""
    env = dict(os.environ)
    tmp: Path | None = None
    label = _working_tree_label()
    has_records = finish_has_records()
    if ref:
        try:
            sha = _git("rev-parse", "--short", f"{ref}^{{commit}}")
        except subprocess.CalledProcessError as e:
            raise SystemExit(
                f"--coordinator-ref: {ref!r} is not a commit here: {e.stderr}") from None
        tmp = Path(tempfile.mkdtemp(prefix=f"sweepd-{sha}-"))
        tree = tmp / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", sha],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        pkg = tmp / "pkg" / "sweepd"
        pkg.mkdir(parents=True)
        # A regular package found on PYTHONPATH wins over the editable install's finder,
        # which only resolves the namespace package when nothing else does.
        (pkg / "__init__.py").write_text("")
        for name, rel in PACKAGE_DIRS.items():
            (pkg / name).symlink_to(tree / rel, target_is_directory=True)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(tmp / "pkg"), *filter(None, [os.environ.get("PYTHONPATH")])])
        label = f"commit {sha} (exported)"
        # Both sides must know the field: an old coordinator would drop the record unseen.
        has_records = has_records and _proto_has_records(tree / "protos/sweepd/v1/sweeps.proto")
    candidates = [python] if python else [sys.executable, shutil.which("python3"),
                                          shutil.which("python")]
    probe_code = ("import sys, sweepd.coordinator.cli as c;"
                  " print(sys.executable); print(c.__file__)")
    for exe in candidates:
        if not exe:
            continue
        probe = subprocess.run([exe, "-c", probe_code], capture_output=True, text=True,
                               env=env)
        if probe.returncode == 0:
            exe_path, cli_file = probe.stdout.strip().splitlines()[-2:]
            if tmp is not None and not cli_file.startswith(str(tmp)):
                raise SystemExit(f"--coordinator-ref: {exe_path} imports the coordinator from"
                                 f" {cli_file}, not from the exported commit")
            return CoordinatorCode(exe_path, label, env, has_records, tmp)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    raise SystemExit(
        f"no interpreter among {[c for c in candidates if c]} can import sweepd.coordinator.cli"
        " (pip install -e . in one); pass --coordinator-python PATH")


class Coordinator:
    """One ``coordinator serve`` on loopback with a temp state dir; stopped by ``close``."""

    def __init__(self, code: CoordinatorCode) -> None:
        self.code = code
        self.python = code.python
        self.state = Path(tempfile.mkdtemp(prefix="sweepd-asktell-"))
        self.log_path = self.state / "coordinator.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.token = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        start_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            # Output goes to a file: a pipe nobody drains would block the coordinator once
            # it filled (warnings under load).
            self.proc = subprocess.Popen(
                [self.python, "-m", "sweepd.coordinator", "serve", "--port", "0",
                 "--dashboard-port", "0", "--state-dir", str(self.state),
                 "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, env=self.code.env)
        deadline = time.time() + START_TIMEOUT_S
        while True:
            text = self.log_path.read_bytes()[start_offset:].decode(errors="replace")
            m = re.search(r"listening on \S+:(\d+)", text)
            if m:
                self.address = f"127.0.0.1:{m.group(1)}"
                break
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"coordinator did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.token = (self.state / "token").read_text().strip()

    def kill(self) -> None:
        """SIGKILL, as a crash: what it acknowledged must be in its SQLite file by now."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.state, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def warnings(self) -> int:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(1 for line in text.splitlines() if "WARNING" in line or "ERROR" in line)

    def create_sweep(self, config_text: str) -> str:
        with grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS) as ch:
            stub = sweeps_pb2_grpc.SweepServiceStub(ch)
            return stub.CreateSweep(sweeps_pb2.CreateSweepRequest(config_text=config_text),
                                    metadata=_md(self.token)).sweep.id

    def list_runs(self, sweep_id: str) -> list[common_pb2.Run]:
        runs: list[common_pb2.Run] = []
        token = ""
        with grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS) as ch:
            stub = sweeps_pb2_grpc.SweepServiceStub(ch)
            while True:
                page = stub.ListRuns(sweeps_pb2.ListRunsRequest(
                    sweep_id=sweep_id, page_size=5000, page_token=token),
                    metadata=_md(self.token), timeout=120)
                runs.extend(page.runs)
                token = page.next_page_token
                if not token:
                    return runs


class CpuMeter:
    """The coordinator's CPU over a window: the process, and each of its threads."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.t0 = time.time()
        self.cpu0 = _cpu_seconds(f"/proc/{pid}/stat")
        self.threads0 = _thread_cpu(pid)
        self.share = float("nan")
        self.threads: list[tuple[str, float]] = []

    def stop(self) -> None:
        dt = time.time() - self.t0
        self.share = (_cpu_seconds(f"/proc/{self.pid}/stat") - self.cpu0) / dt
        shares = []
        for tid, (comm, cpu) in _thread_cpu(self.pid).items():
            before = self.threads0.get(tid, (comm, 0.0))[1]
            name = "main" if tid == self.pid else f"{comm}:{tid}"
            shares.append((name, (cpu - before) / dt))
        self.threads = sorted(shares, key=lambda x: -x[1])

    def describe(self, top: int = 5) -> str:
        busy = [f"{n} {s:.2f}" for n, s in self.threads[:top] if s >= 0.005]
        return (f"coordinator CPU {self.share:.2f} of a core; busiest threads: "
                + (", ".join(busy) or "none"))


class Profiler:
    """py-spy sampling the coordinator over the timed window (--profile), non-blocking."""

    def __init__(self, pid: int, seconds: float, out: Path, native: bool) -> None:
        exe = shutil.which("py-spy")
        if exe is None:
            raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
        self.out = out
        self.err = out.with_suffix(".err")
        # Native unwinding needs the process paused while sampled (py-spy refuses
        # --nonblocking with --native): that profile slows the coordinator more.
        mode = ["--native"] if native else ["--nonblocking"]
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
                 "--rate", "100", *mode, "--format", "raw", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=err)

    def report(self, top: int = 15) -> str:
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "profile: py-spy did not finish"
        if not self.out.exists():
            return ("profile: py-spy wrote nothing: "
                    + self.err.read_text(errors="replace").strip()[-500:])
        own: Counter[str] = Counter()
        total = 0
        inclusive: Counter[str] = Counter()
        for line in self.out.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_frame(f) for f in stack.split(";")]
            own[frames[-1]] += n
            for f in set(frames):
                inclusive[f] += n
        if not total:
            return "profile: no samples"
        lines = [f"profile of the coordinator: {total} samples (py-spy, 100 Hz, busy threads)",
                 "  self time:"]
        lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
        lines.append("  inclusive (sweepd frames):")
        ours = [(f, n) for f, n in inclusive.most_common() if "sweepd/" in f or "/work/" in f]
        lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in ours[:top]]
        return "\n".join(lines)


def _frame(f: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)": lines split one function.
    m = re.match(r"(.*) \((.*?):\d+\)$", f)
    if not m:
        return f
    path = m.group(2)
    short = "/".join(path.split("/")[-2:])
    tag = "sweepd/" if "/work/" in path or "sweepd" in path else ""
    return f"{m.group(1)} ({tag}{short})"


# --- client processes -----------------------------------------------------------------------

@dataclass
class Window:
    start_at: float
    measure_from: float
    stop_at: float


@dataclass
class ClientResult:
    """What one client process saw. Latencies are of trials (throughput) or of SuggestRun
    calls (bayes) that fall in the timed window."""

    latencies: list[float] = field(default_factory=list)
    in_window: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    empty: int = 0
    acked: dict[str, float] = field(default_factory=dict)


def _tell(stub: Any, run: common_pb2.Run, client_id: str, md: Any, value: float,
          in_finish: bool, timeout: float) -> None:
    record = common_pb2.MetricRecord(index=0, step=0, values={METRIC: value})
    finish = sweeps_pb2.FinishRunRequest(
        run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED, exit_code=0,
        client_id=client_id)
    if in_finish:
        finish.records.append(record)
    else:
        stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
            run_id=run.id, attempt=run.attempt, records=[record], client_id=client_id),
            metadata=md, timeout=timeout)
    stub.FinishRun(finish, metadata=md, timeout=timeout)


def _wait_go(ready: Any, go: Any) -> Window:
    ready.put(os.getpid())
    w: Window = go.get(timeout=START_TIMEOUT_S * 2)
    time.sleep(max(0.0, w.start_at - time.time()))
    return w


def sweepd_client(address: str, token: str, sweep_id: str, k: int, in_finish: bool,
                  deadline: float, ready: Any, go: Any, out: Any,
                  one_call: bool = False) -> None:
    """One client process of the throughput run: sync channel, one trial after another."""
    md = _md(token)
    client_id = f"bench-{k}-{os.getpid()}"
    r = ClientResult()
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
        stub = sweeps_pb2_grpc.SweepServiceStub(ch)
        grpc.channel_ready_future(ch).result(timeout=START_TIMEOUT_S)
        w = _wait_go(ready, go)
        if one_call:
            _one_call_trials(stub, sweep_id, client_id, md, deadline, w, r)
            out.put(r)
            return
        while (t0 := time.time()) < w.stop_at:
            try:
                resp = stub.SuggestRun(sweeps_pb2.SuggestRunRequest(
                    sweep_id=sweep_id, client_id=client_id), metadata=md, timeout=deadline)
                if not resp.HasField("run"):
                    r.empty += 1
                    time.sleep(RETRY_PAUSE_S)
                    continue
                value = objective(params_of(resp.run))
                _tell(stub, resp.run, client_id, md, value, in_finish, deadline)
            except grpc.RpcError as e:
                r.errors[e.code().name] += 1
                time.sleep(RETRY_PAUSE_S)
                continue
            t1 = time.time()
            r.acked[resp.run.id] = value
            if w.measure_from <= t1 < w.stop_at:
                r.in_window += 1
                r.latencies.append(t1 - t0)
    out.put(r)


def _one_call_trials(stub: Any, sweep_id: str, client_id: str, md: Any, deadline: float,
                     w: Window, r: ClientResult) -> None:
    """Trials as one call each: SuggestRun carrying the previous run's finish (its record
    inside) answers the next run. A trial counts from the call that starts it to the call
    that acknowledges its end; the run held when the window closes is finished after it."""
    held: tuple[common_pb2.Run, float, float] | None = None  # run, value, when it started
    while time.time() < w.stop_at:
        request = sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id=client_id)
        if held is not None:
            run, value, _ = held
            request.finish.CopyFrom(sweeps_pb2.FinishRunRequest(
                run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED,
                exit_code=0, records=[common_pb2.MetricRecord(index=0, values={METRIC: value})]))
        try:
            resp = stub.SuggestRun(request, metadata=md, timeout=deadline)
        except grpc.RpcError as e:
            r.errors[e.code().name] += 1
            time.sleep(RETRY_PAUSE_S)
            continue
        t1 = time.time()
        if held is not None and resp.HasField("finished"):
            run, value, t0 = held
            r.acked[run.id] = value
            if w.measure_from <= t1 < w.stop_at:
                r.in_window += 1
                r.latencies.append(t1 - t0)
        held = None
        if not resp.HasField("run"):
            r.empty += 1
            time.sleep(RETRY_PAUSE_S)
            continue
        held = (resp.run, objective(params_of(resp.run)), t1)
    if held is not None:
        run, value, _ = held
        with contextlib.suppress(grpc.RpcError):
            stub.FinishRun(sweeps_pb2.FinishRunRequest(
                run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED,
                exit_code=0, client_id=client_id,
                records=[common_pb2.MetricRecord(index=0, values={METRIC: value})]),
                metadata=md, timeout=deadline)
            r.acked[run.id] = value


def optuna_storage(store: str, path: str) -> Any:
    import optuna

    if store == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(path))
    return optuna.storages.RDBStorage(f"sqlite:///{path}")


def optuna_client(store: str, path: str, study_name: str, k: int, ready: Any, go: Any,
                  out: Any) -> None:
    """One Optuna process: ask -> report (one intermediate value) -> tell, RandomSampler."""
    import optuna
    from methods import optuna_distributions

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=study_name, storage=optuna_storage(store, path),
                              sampler=optuna.samplers.RandomSampler(seed=k))
    dists = optuna_distributions(SPACE)
    r = ClientResult()
    w = _wait_go(ready, go)
    while (t0 := time.time()) < w.stop_at:
        try:
            trial = study.ask(dists)
            value = objective(trial.params)
            trial.report(value, 0)
            study.tell(trial, value)
        except Exception as e:  # a store's failure (e.g. database locked) counted, not fatal
            r.errors[type(e).__name__] += 1
            time.sleep(RETRY_PAUSE_S)
            continue
        t1 = time.time()
        r.acked[str(trial.number)] = value
        if w.measure_from <= t1 < w.stop_at:
            r.in_window += 1
            r.latencies.append(t1 - t0)
    out.put(r)


@dataclass
class Phase:
    results: list[ClientResult]
    meter: CpuMeter | None
    profile: str
    clients_cpu: float  # the client processes' CPU over the window, in cores


def run_processes(targets: list[tuple[Any, tuple[Any, ...]]], warmup: float, seconds: float,
                  meter_pid: int | None = None, profile: Path | None = None,
                  native: bool = False, drain_s: float = 0.0) -> Phase:
    """Starts the processes (spawned: a process forked after gRPC use can hang), lets them
    all connect, releases them at once, and measures the coordinator's CPU and the clients'
    over the window. Every process is ended on the way out, also on failure."""
    ctx = mp.get_context("spawn")
    ready: Any = ctx.Queue()
    go: Any = ctx.Queue()
    out: Any = ctx.Queue()
    procs = [ctx.Process(target=fn, args=(*args, ready, go, out), daemon=True)
             for fn, args in targets]
    meter: CpuMeter | None = None
    prof_text = ""
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=START_TIMEOUT_S)
        start_at = time.time() + 0.2
        w = Window(start_at, start_at + warmup, start_at + warmup + seconds)
        for _ in procs:
            go.put(w)
        time.sleep(max(0.0, w.measure_from - time.time()))
        stats = [f"/proc/{p.pid}/stat" for p in procs]
        c0, t0 = sum(_cpu_seconds(f) for f in stats), time.time()
        profiler = None
        if meter_pid is not None:
            meter = CpuMeter(meter_pid)
            if profile is not None:
                profiler = Profiler(meter_pid, seconds, profile, native)
        time.sleep(max(0.0, w.stop_at - time.time()))
        clients_cpu = (sum(_cpu_seconds(f) for f in stats) - c0) / (time.time() - t0)
        if meter is not None:
            meter.stop()
        results = [out.get(timeout=120 + drain_s) for _ in procs]
        if profiler is not None:
            prof_text = profiler.report()
        for p in procs:
            p.join(30)
        return Phase(results, meter, prof_text, clients_cpu)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)


# --- throughput -----------------------------------------------------------------------------

@dataclass
class Row:
    key: str
    store: str
    trials_per_s: float
    p50_ms: float
    p99_ms: float
    trials: int
    errors: Counter[str]
    server_cpu: float  # the coordinator's, in cores; NaN for Optuna (no server)
    clients_cpu: float
    load: str


def _row(key: str, store: str, phase: Phase, seconds: float, load0: float) -> Row:
    lat = sorted(x for r in phase.results for x in r.latencies)
    errors: Counter[str] = Counter()
    for r in phase.results:
        errors.update(r.errors)
    n = sum(r.in_window for r in phase.results)
    return Row(key, store, n / seconds, 1000 * _pct(lat, 0.5), 1000 * _pct(lat, 0.99), n, errors,
               phase.meter.share if phase.meter else float("nan"), phase.clients_cpu,
               f"{load0:.1f}->{os.getloadavg()[0]:.1f}")


def verify(coord: Coordinator, sweep_id: str, acked: Mapping[str, float]) -> int:
    """Kills the coordinator, starts it again on the same state dir and checks that every
    acknowledged trial is stored FINISHED with the metric value sent. Returns how many are
    missing (absent, not FINISHED, or without that value)."""
    coord.kill()
    coord.start()
    stored = {r.id: r for r in coord.list_runs(sweep_id)}
    ok = sum(1 for run_id, value in acked.items()
             if (run := stored.get(run_id)) is not None
             and run.state == common_pb2.RUN_STATE_FINISHED
             and run.summary.get(METRIC) == value)
    finished = sum(1 for r in stored.values() if r.state == common_pb2.RUN_STATE_FINISHED)
    print(f"stored FINISHED with metric: {ok} of {len(acked)} trials acknowledged"
          f" (checked after SIGKILL and restart; {finished} FINISHED of {len(stored)} runs"
          " stored)", flush=True)
    return len(acked) - ok


def throughput(args: argparse.Namespace, code: CoordinatorCode | None, in_finish: bool) -> int:
    rows: list[Row] = []
    missing = 0
    if "sweepd" in args.only:
        assert code is not None
        coord = Coordinator(code)
        try:
            coord.start()
            print(f"coordinator: pid {coord.pid}, {coord.address}", flush=True)
            sweep_id = coord.create_sweep(sweep_config("random", list(SPACE)))
            load0 = os.getloadavg()[0]
            phase = run_processes(
                [(sweepd_client, (coord.address, coord.token, sweep_id, k, in_finish,
                                  args.deadline))
                 if not args.one_call else
                 (functools.partial(sweepd_client, one_call=True),
                  (coord.address, coord.token, sweep_id, k, in_finish, args.deadline))
                 for k in range(args.clients)],
                args.warmup, args.seconds, coord.pid,
                Path(coord.state / "profile.txt") if args.profile else None,
                args.profile_native)
            rows.append(_row("sweepd", "sweepd (gRPC)", phase, args.seconds, load0))
            if phase.meter is not None:
                print(phase.meter.describe(), flush=True)
            if phase.profile:
                print(phase.profile, flush=True)
            acked = {k: v for r in phase.results for k, v in r.acked.items()}
            missing = verify(coord, sweep_id, acked)
            if coord.warnings():
                print(f"coordinator log: {coord.warnings()} warning/error lines; last:\n"
                      f"{coord.log_tail(5)}")
        finally:
            coord.close()
    for store in ("journal", "sqlite"):
        if store not in args.only:
            continue
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        tmp = Path(tempfile.mkdtemp(prefix=f"optuna-{store}-"))
        try:
            path = str(tmp / ("journal.log" if store == "journal" else "optuna.db"))
            storage = optuna_storage(store, path)
            optuna.create_study(study_name="bench", storage=storage, direction="minimize")
            del storage
            load0 = os.getloadavg()[0]
            phase = run_processes(
                [(optuna_client, (store, path, "bench", k)) for k in range(args.clients)],
                args.warmup, args.seconds)
            name = ("Optuna JournalFile" if store == "journal" else "Optuna SQLite (RDB)")
            rows.append(_row(store, name, phase, args.seconds, load0))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"{args.clients} client processes, {args.seconds:g} s measured after"
          f" {args.warmup:g} s warm-up, random search over {len(SPACE)} mixed parameters")
    print("(cpu: cores used over the window by the coordinator and by the client processes;"
          " load: 1-min load average before -> after)")
    print(f"{'store':<22} {'trials/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'trials':>7}"
          f" {'errors':>6} {'server cpu':>10} {'clients cpu':>11}  load")
    for r in rows:
        errs = sum(r.errors.values())
        server = "-" if math.isnan(r.server_cpu) else f"{r.server_cpu:.2f}"
        print(f"{r.store:<22} {r.trials_per_s:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
              f" {r.trials:>7} {errs:>6} {server:>10} {r.clients_cpu:>11.2f}  {r.load}")
        if errs:
            print(f"{'':<22} errors: {dict(r.errors)}")
    by = {r.key: r for r in rows}
    if "sweepd" in by:
        for key, label in (("journal", "JournalFile"), ("sqlite", "SQLite")):
            if key in by and by[key].trials_per_s > 0:
                print(f"sweepd / {label}: {by['sweepd'].trials_per_s / by[key].trials_per_s:.2f}x")
    return 1 if missing else 0


# --- bayes under concurrency ----------------------------------------------------------------

async def _aio_client(address: str, token: str, sweep_id: str, client_id: str, in_finish: bool,
                      deadline: float, w: Window, r: ClientResult,
                      quota: Quota | None = None) -> None:
    md = _md(token)
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
        stub = sweeps_pb2_grpc.SweepServiceStub(ch)
        await asyncio.sleep(max(0.0, w.start_at - time.time()))
        while time.time() < w.stop_at and (quota is None or quota.take()):
            t0 = time.time()
            try:
                resp = await stub.SuggestRun(sweeps_pb2.SuggestRunRequest(
                    sweep_id=sweep_id, client_id=client_id), metadata=md, timeout=deadline)
            except grpc.aio.AioRpcError as e:
                r.errors[f"SuggestRun {e.code().name}"] += 1
                if quota is not None:
                    quota.give_back()
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            t1 = time.time()
            if t0 >= w.measure_from and t0 < w.stop_at:
                r.latencies.append(t1 - t0)
            if not resp.HasField("run"):
                r.empty += 1
                if quota is not None:
                    quota.give_back()
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            run = resp.run
            value = objective(params_of(run))
            record = common_pb2.MetricRecord(index=0, step=0, values={METRIC: value})
            finish = sweeps_pb2.FinishRunRequest(
                run_id=run.id, attempt=run.attempt, state=common_pb2.RUN_STATE_FINISHED,
                exit_code=0, client_id=client_id)
            try:
                if in_finish:
                    finish.records.append(record)
                else:
                    await stub.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
                        run_id=run.id, attempt=run.attempt, records=[record],
                        client_id=client_id), metadata=md, timeout=deadline)
                await stub.FinishRun(finish, metadata=md, timeout=deadline)
            except grpc.aio.AioRpcError as e:
                r.errors[f"tell {e.code().name}"] += 1
                if quota is not None:
                    quota.give_back()
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            r.acked[run.id] = value
            t2 = time.time()
            if w.measure_from <= t2 < w.stop_at:
                r.in_window += 1


def bayes_clients(address: str, token: str, sweep_id: str, ids: list[str], in_finish: bool,
                  deadline: float, ready: Any, go: Any, out: Any) -> None:
    """One process hosting several asyncio clients, each with its own channel."""
    r = ClientResult()

    async def main() -> None:
        ready.put(os.getpid())
        w: Window = await asyncio.to_thread(go.get, True, START_TIMEOUT_S * 2)
        await asyncio.gather(*(
            _aio_client(address, token, sweep_id, cid, in_finish, deadline, w, r)
            for cid in ids))

    asyncio.run(main())
    out.put(r)


class Quota:
    """Runs left to take, shared by the clients of one event loop (so no lock): a client
    takes a slot before it asks and gives it back when the ask or tell fails, so that
    exactly the quota of runs is finished."""

    def __init__(self, n: int) -> None:
        self.left = n

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    def give_back(self) -> None:
        self.left += 1


def prefill(coord: Coordinator, sweep_id: str, n: int, clients: int, in_finish: bool,
            deadline: float) -> float:
    """Fills the sweep to ``n`` finished runs through the API with ``clients`` concurrent
    asyncio clients; returns the seconds it took."""
    if n <= 0:
        return 0.0
    quota = Quota(n)
    r = ClientResult()
    now = time.time()
    w = Window(now, now, now + 24 * 3600)

    async def main() -> None:
        await asyncio.gather(*(
            _aio_client(coord.address, coord.token, sweep_id, f"prefill-{k}", in_finish,
                        deadline, w, r, quota)
            for k in range(clients)))

    asyncio.run(main())
    took = time.time() - now
    if r.errors or len(r.acked) != n:
        raise SystemExit(f"prefill: {len(r.acked)} of {n} runs finished; errors {dict(r.errors)}")
    return took


def bayes(args: argparse.Namespace, code: CoordinatorCode | None, in_finish: bool) -> int:
    assert code is not None
    coord = Coordinator(code)
    try:
        coord.start()
        print(f"coordinator: pid {coord.pid}, {coord.address}", flush=True)
        sweep_id = coord.create_sweep(sweep_config("bayes", BAYES_PARAMS))
        cpu0 = CpuMeter(coord.pid)
        took = prefill(coord, sweep_id, args.prefill, args.prefill_clients, in_finish,
                       args.deadline)
        cpu0.stop()
        if args.prefill:
            print(f"prefill: {args.prefill} finished runs in {took:.1f} s"
                  f" ({args.prefill / took:.1f} runs/s, {args.prefill_clients} clients;"
                  f" {cpu0.describe(3)})", flush=True)
        procs = max(1, min(args.procs, args.clients))
        ids = [f"bayes-{i}" for i in range(args.clients)]
        load0 = os.getloadavg()[0]
        phase = run_processes(
            [(bayes_clients, (coord.address, coord.token, sweep_id, ids[k::procs], in_finish,
                              args.deadline)) for k in range(procs)],
            args.warmup, args.seconds, coord.pid,
            Path(coord.state / "profile.txt") if args.profile else None,
            args.profile_native, drain_s=args.deadline)
        meter = phase.meter
        assert meter is not None
        load1 = os.getloadavg()[0]
        lat = sorted(x for r in phase.results for x in r.latencies)
        errors: Counter[str] = Counter()
        for r in phase.results:
            errors.update(r.errors)
        done = sum(r.in_window for r in phase.results)
        empty = sum(r.empty for r in phase.results)
        print()
        print(f"bayes, {len(BAYES_PARAMS)} mixed parameters, n = {args.prefill} finished before"
              f" the window; {args.clients} concurrent clients in {procs} processes;"
              f" {args.seconds:g} s measured after {args.warmup:g} s warm-up")
        print(f"{'clients':>7} {'asks':>6} {'p50 ms':>8} {'p99 ms':>9} {'max ms':>9}"
              f" {'errors':>6} {'empty':>6} {'runs/s':>7} {'server cpu':>10}"
              f" {'clients cpu':>11}  load")
        print(f"{args.clients:>7} {len(lat):>6} {1000 * _pct(lat, 0.5):>8.1f}"
              f" {1000 * _pct(lat, 0.99):>9.1f} {1000 * (lat[-1] if lat else math.nan):>9.1f}"
              f" {sum(errors.values()):>6} {empty:>6} {done / args.seconds:>7.1f}"
              f" {meter.share:>10.2f} {phase.clients_cpu:>11.2f}  {load0:.1f}->{load1:.1f}")
        if errors:
            print(f"errors by code: {dict(errors)}")
        if lat:
            print(f"SuggestRun latency: mean {1000 * statistics.fmean(lat):.1f} ms,"
                  f" p90 {1000 * _pct(lat, 0.9):.1f} ms")
        print(meter.describe())
        if phase.profile:
            print(phase.profile)
        if coord.warnings():
            print(f"coordinator log: {coord.warnings()} warning/error lines; last:\n"
                  f"{coord.log_tail(5)}")
        acked = {k: v for r in phase.results for k, v in r.acked.items()}
        missing = verify(coord, sweep_id, acked)
        return 1 if missing else 0
    finally:
        coord.close()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bayes", action="store_true",
                    help="bayes under concurrency instead of the throughput comparison")
    ap.add_argument("--clients", type=int, default=None,
                    help="client processes (throughput; default 4) or concurrent clients"
                         " (--bayes; default 8)")
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="length of the timed window (default %(default)s)")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds of load before the timed window starts (default %(default)s)")
    ap.add_argument("--only", default=",".join(STORES), metavar="STORES",
                    help="throughput: comma-separated stores to run (default %(default)s);"
                         " --only sweepd skips the competitors")
    ap.add_argument("--tell-in-finish", action=argparse.BooleanOptionalAction, default=None,
                    help="send the record inside FinishRun (one ask + one tell per trial)"
                         " instead of ReportMetrics then FinishRun; default: on when the"
                         " generated FinishRunRequest has a `records` field")
    ap.add_argument("--one-call", action="store_true",
                    help="throughput: tell and ask in one call, SuggestRun carrying the previous"
                         " run's finish with its record (SuggestRunRequest.finish)")
    ap.add_argument("--prefill", type=int, default=1000,
                    help="--bayes: finished runs put in the sweep before the window (default"
                         " %(default)s)")
    ap.add_argument("--prefill-clients", type=int, default=4,
                    help="--bayes: concurrent clients that fill the sweep (default %(default)s)")
    ap.add_argument("--procs", type=int, default=4,
                    help="--bayes: processes hosting the concurrent clients, asyncio, one channel"
                         " per client (default %(default)s)")
    ap.add_argument("--deadline", type=float, default=120.0,
                    help="gRPC deadline of every call, seconds (a call past it counts as a"
                         " DEADLINE_EXCEEDED error; default %(default)s)")
    ap.add_argument("--profile", action="store_true",
                    help="sample the coordinator with py-spy over the timed window and print"
                         " where its time goes (adds some load)")
    ap.add_argument("--profile-native", action="store_true",
                    help="--profile with native frames (py-spy --native): shows the time"
                         " inside gRPC's C/Cython core, but pauses the coordinator at each"
                         " sample, so that run's figures are far lower and not comparable")
    ap.add_argument("--coordinator-ref", default=None, metavar="REF",
                    help="run the coordinator from this git commit (exported to a temp dir"
                         " with git archive) instead of the working tree, e.g. 66cc85f for"
                         " the figures before #13; the clients keep this checkout's stubs")
    ap.add_argument("--coordinator-python", default=None, metavar="PATH",
                    help="interpreter that runs the coordinator; default: this one if it can"
                         " import sweepd.coordinator.cli, else python3 on PATH")
    args = ap.parse_args()
    args.profile = args.profile or args.profile_native
    if args.clients is None:
        args.clients = 8 if args.bayes else 4
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [s for s in args.only if s not in STORES]
    if bad:
        ap.error(f"--only: unknown store(s) {bad}; choose from {', '.join(STORES)}")
    if args.clients < 1 or args.seconds <= 0 or args.prefill < 0 or args.prefill_clients < 1:
        ap.error("--clients, --prefill-clients and --seconds must be > 0, --prefill >= 0")
    needs_coordinator = args.bayes or "sweepd" in args.only
    code = (coordinator_code(args.coordinator_python, args.coordinator_ref)
            if needs_coordinator else None)
    try:
        has_records = code.has_records if code is not None else finish_has_records()
        in_finish = has_records if args.tell_in_finish is None else args.tell_in_finish
        if in_finish and not has_records:
            ap.error("--tell-in-finish: FinishRunRequest has no `records` field here (in this"
                     " checkout's stubs or in --coordinator-ref's protos); drop the flag")
        protocol = ("SuggestRun -> FinishRun(records)" if in_finish
                    else "SuggestRun -> ReportMetrics -> FinishRun")
        if args.one_call:
            protocol = "SuggestRun(finish: the previous run, its record inside), one call"
        print(f"protocol: {protocol} (FinishRunRequest.records"
              f" {'present' if has_records else 'absent'});"
              f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())};"
              f" fsync {fsync_ms():.1f} ms", flush=True)
        if code is not None:
            print(f"coordinator code: {code.label}; interpreter {code.python}", flush=True)
        rc = bayes(args, code, in_finish) if args.bayes else throughput(args, code, in_finish)
    finally:
        if code is not None:
            code.cleanup()
    sys.exit(rc)

if __name__ == "__main__":
    main()
