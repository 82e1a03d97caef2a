"""Real processes on loopback for end-to-end tests: coordinators, workers, the sweep CLI.

Every process started here is killed when its test ends, passing or failing, and every wait
is a poll with a deadline.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

BIN = Path(sys.executable).parent
T = TypeVar("T")
# Generous: CI has 2 cores shared by two xdist processes and several daemons.
DEFAULT_TIMEOUT_S = 60.0


def command(name: str) -> list[str]:
    """The console script if installed beside this Python, else ``python -m``."""
    script = BIN / name
    if script.exists():
        return [str(script)]
    module = {"coordinator": "sweepd.coordinator", "worker": "sweepd.worker",
              "sweep": "sweepd.client"}[name]
    return [sys.executable, "-m", module]


def wait_for(condition: Callable[[], T], timeout: float = DEFAULT_TIMEOUT_S,
             interval: float = 0.05, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead: its new parent may not
    have reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Process:
    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in kill()
        self.popen = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float = DEFAULT_TIMEOUT_S) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.argv[:3]} did not exit within {timeout:.0f} s; output:\n{self.output()}"
            ) from None

    def signal(self, sig: signal.Signals) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        """Kills the process and everything in its session (its runs included)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(10)
        self._log.close()


class Cluster:
    """A coordinator and workers for one test, all under ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state_dir = tmp / "state"
        self.processes: list[Process] = []
        self.coordinator: Process | None = None
        self.address = ""
        self.port = 0
        self.env = dict(os.environ)
        self.env.pop("SWEEPD_COORDINATOR", None)
        # Clients and workers find the coordinator's token in this test's own state dir, as
        # they would find a local coordinator's in the default one.
        self.env["SWEEPD_STATE_DIR"] = str(self.state_dir)
        for var in ("SWEEPD_TOKEN", "SWEEPD_TLS_CA", "SWEEPD_TLS_CERT", "SWEEPD_TLS_KEY"):
            self.env.pop(var, None)
        self.env["PYTHONUNBUFFERED"] = "1"

    def start_coordinator(self, *extra: str, port: int = 0) -> Process:
        log = self.tmp / f"coordinator-{len(self.processes)}.log"
        proc = Process(command("coordinator") + [
            "serve", "--port", str(port), "--state-dir", str(self.state_dir), *extra,
        ], log, env=self.env)
        self.processes.append(proc)
        match = wait_for(
            lambda: (proc.poll() is None and re.search(r"listening on (\S+):(\d+)", proc.output()))
            or (proc.poll() is not None and _raise(f"coordinator exited:\n{proc.output()}")),
            what="the coordinator to listen",
        )
        self.address = f"127.0.0.1:{match.group(2)}"
        self.port = int(match.group(2))
        self.coordinator = proc
        return proc

    @property
    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()

    def channel(self, *, token: str | None = None) -> Any:
        """A plain sync channel that sends ``authorization: Bearer <token>`` on every call
        (the coordinator's own token unless told otherwise; "" sends none)."""
        from sweepd.common.transport import Security, open_channel

        return open_channel(self.address, Security(
            token=self.token if token is None else token))

    def start_worker(self, *args: str, workdir: Path | None = None,
                     env: dict[str, str] | None = None) -> Process:
        n = len(self.processes)
        workdir = workdir or self.tmp / f"worker-{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        proc = Process(command("worker") + [
            "join", "--coordinator", self.address, "--workdir", str(workdir), *args,
        ], self.tmp / f"worker-{n}.log", env={**self.env, **(env or {})}, cwd=workdir)
        self.processes.append(proc)
        return proc

    def sweep(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            command("sweep") + [args[0], "--coordinator", self.address, *args[1:]],
            capture_output=True, text=True, env=self.env, timeout=DEFAULT_TIMEOUT_S,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"sweep {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def start_sweep(self, *args: str) -> Process:
        """A long-lived ``sweep`` command (``watch``, ``logs --follow``), stdout and stderr
        together in its log."""
        proc = Process(command("sweep") + [args[0], "--coordinator", self.address, *args[1:]],
                       self.tmp / f"sweep-{len(self.processes)}.log", env=self.env)
        self.processes.append(proc)
        return proc

    def sweep_json(self, *args: str) -> Any:
        return json.loads(self.sweep(*args, "--format", "json").stdout)

    def create(self, config_path: Path) -> str:
        out = self.sweep("create", str(config_path)).stdout.strip().splitlines()
        return out[0]

    def runs(self, sweep_id: str) -> list[dict[str, Any]]:
        return list(self.sweep_json("runs", sweep_id))

    def sweep_state(self, sweep_id: str) -> str:
        return str(self.sweep_json("show", sweep_id)["state"])

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.kill()

    def logs(self) -> Iterator[str]:
        for proc in self.processes:
            yield f"==== {' '.join(proc.argv[:3])} ({proc.log_path.name})\n{proc.output()}"


def _raise(message: str) -> Any:
    raise AssertionError(message)


def fill(disk: Path) -> Path:
    """Takes every free byte of ``disk``; returns the filler file."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        for size in (4096, 512, 1):  # the last partial blocks too
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler
