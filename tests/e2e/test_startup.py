"""Start-up through the real CLI (issue #11 items 11-15): one coordinator per port and per state
dir, token and file permissions, a missing or damaged database, loud warnings for --no-auth and
--insecure, IPv6 hosts, and the standard health service's Watch."""

from __future__ import annotations

import re
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .harness import DEFAULT_TIMEOUT_S, Cluster, command

pytestmark = pytest.mark.e2e

# The documented exit codes of `coordinator serve` (coordinator/cli.py).
EXIT_STATE_DIR = 3
EXIT_ADDRESS = 4


def _serve_refused(cluster: Cluster, *args: str, state_dir: Path | None = None
                   ) -> subprocess.CompletedProcess[str]:
    """Runs ``coordinator serve`` that must refuse to start: it must exit by itself (a
    coordinator that starts listening instead is killed and the test fails)."""
    argv = command("coordinator") + ["serve", "--state-dir",
                                     str(state_dir or cluster.state_dir), *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cluster.env)
    try:
        out, err = proc.communicate(timeout=DEFAULT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"coordinator started instead of refusing:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _one_clear_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The refusal: exit ``code``, no traceback, one ``coordinator:`` line holding ``words``."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("coordinator:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# -- item 11: one coordinator per port, one per state dir -------------------------------------


def test_second_coordinator_on_the_same_port_is_refused(cluster: Cluster,
                                                        tmp_path: Path) -> None:
    first = cluster.start_coordinator()
    result = _serve_refused(cluster, "--port", str(cluster.port),
                            state_dir=tmp_path / "other-state")
    _one_clear_line(result, EXIT_ADDRESS, f"port {cluster.port}", f"pid {first.pid}")
    # The first one still answers, and is the only one on the port.
    assert cluster.sweep("list").returncode == 0


def test_second_coordinator_on_the_same_state_dir_is_refused(cluster: Cluster) -> None:
    first = cluster.start_coordinator()
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(cluster.state_dir), f"pid {first.pid}",
                    f"127.0.0.1:{cluster.port}")
    assert cluster.sweep("list").returncode == 0
    # The lock dies with its holder: a restart after kill -9 is not refused.
    first.kill()
    cluster.start_coordinator(port=cluster.port)
    assert cluster.sweep("list").returncode == 0


# -- item 12: token and file permissions ------------------------------------------------------


def test_an_empty_token_file_is_refused(cluster: Cluster) -> None:
    cluster.start_coordinator().kill()
    (cluster.state_dir / "token").write_text("\n")
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(cluster.state_dir / "token"), "empty")


def test_a_token_file_readable_by_others_is_narrowed_with_a_warning(cluster: Cluster) -> None:
    cluster.start_coordinator().kill()
    token_file = cluster.state_dir / "token"
    token = token_file.read_text()
    token_file.chmod(0o644)
    proc = cluster.start_coordinator()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert re.search(r"WARNING: the token file .* was mode 0644", proc.output()), proc.output()
    assert token_file.read_text() == token  # the same token: clients keep working
    assert cluster.sweep("list").returncode == 0


def test_state_dir_is_0700_and_the_database_files_0600(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    cluster.start_coordinator()
    # Writes, so that SQLite's -wal and -shm files exist.
    config = tmp_path / "sweep.yaml"
    config.write_text("program: train.py\nmethod: random\nparameters:\n  x: {values: [1, 2]}\n")
    cluster.create(config)
    assert stat.S_IMODE(cluster.state_dir.stat().st_mode) == 0o700
    names = {p.name for p in cluster.state_dir.iterdir()}
    assert {"sweepd.sqlite3", "sweepd.sqlite3-wal", "sweepd.sqlite3-shm", "token"} <= names
    for path in cluster.state_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # An existing state dir and database that others can read are narrowed at start.
    cluster.coordinator.kill()  # type: ignore[union-attr]
    cluster.state_dir.chmod(0o755)
    (cluster.state_dir / "sweepd.sqlite3").chmod(0o644)
    cluster.start_coordinator()
    assert stat.S_IMODE(cluster.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cluster.state_dir / "sweepd.sqlite3").stat().st_mode) == 0o600


# -- item 13: a missing, empty or damaged database --------------------------------------------


def _stop(cluster: Cluster) -> None:
    """SIGTERM and wait: the database is checkpointed and closed, the WAL folded in."""
    proc = cluster.coordinator
    assert proc is not None
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.output()
    for suffix in ("-wal", "-shm"):
        path = cluster.state_dir / f"sweepd.sqlite3{suffix}"
        if path.exists():  # an unclean stop leaves them; fold the WAL in by hand
            db = sqlite3.connect(cluster.state_dir / "sweepd.sqlite3")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            path.unlink(missing_ok=True)


def _database_with_content(cluster: Cluster, tmp_path: Path) -> bytes:
    cluster.start_coordinator()
    config = tmp_path / "sweep.yaml"
    config.write_text("program: train.py\nmethod: random\nparameters:\n"
                      + "".join(f"  p{i}: {{values: [{'x' * 200!r}, 2]}}\n" for i in range(200)))
    for _ in range(20):
        cluster.create(config)
    _stop(cluster)
    return (cluster.state_dir / "sweepd.sqlite3").read_bytes()


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_a_missing_or_empty_database_beside_a_token_is_refused(cluster: Cluster,
                                                               tmp_path: Path,
                                                               how: str) -> None:
    _database_with_content(cluster, tmp_path)
    db = cluster.state_dir / "sweepd.sqlite3"
    if how == "missing":
        db.unlink()
    else:
        db.write_bytes(b"")
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(db), how, "--new-database")
    assert db.exists() == (how == "empty")  # nothing was created
    # Asked for, it starts afresh with the old token.
    token = cluster.token
    cluster.start_coordinator("--new-database")
    assert cluster.sweep_json("list") == []
    assert cluster.token == token


@pytest.mark.parametrize("damage", ["half", "header", "middle"])
def test_a_damaged_database_is_one_clear_message_and_exit_3(cluster: Cluster, tmp_path: Path,
                                                            damage: str) -> None:
    data = _database_with_content(cluster, tmp_path)
    assert len(data) > 16 * 4096, len(data)
    db = cluster.state_dir / "sweepd.sqlite3"
    if damage == "half":
        db.write_bytes(data[: len(data) // 2])
    elif damage == "header":
        db.write_bytes(b"not a database!!" + data[16:])
    else:  # one page of garbage in the middle (SQLite's pages are 4 KiB here)
        middle = len(data) // 2 // 4096 * 4096
        garbage = bytes((i * 131 + 7) % 251 for i in range(4096))
        db.write_bytes(data[:middle] + garbage + data[middle + 4096:])
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(db), "damaged", "backup")


# -- item 14: loud warnings, IPv6, nothing created on a refusal -------------------------------


def test_no_auth_and_insecure_warn_loudly_on_stderr(cluster: Cluster) -> None:
    proc = cluster.start_coordinator("--no-auth")
    assert re.search(r"WARNING: --no-auth.*every worker", proc.output()), proc.output()
    proc.kill()
    proc = cluster.start_coordinator("--insecure", port=cluster.port)
    assert re.search(r"WARNING: --insecure.*every worker", proc.output()), proc.output()
    # On stderr, where a supervisor's log shows it, not only stdout.
    proc.kill()
    result = subprocess.Popen(
        command("coordinator") + ["serve", "--port", "0", "--state-dir", str(cluster.state_dir),
                                  "--no-auth"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cluster.env)
    try:
        deadline = time.monotonic() + DEFAULT_TIMEOUT_S
        seen = ""
        assert result.stderr is not None
        while "every worker" not in seen and time.monotonic() < deadline:
            line = result.stderr.readline()
            if not line:
                break
            seen += line
        assert "every worker" in seen, seen
    finally:
        result.kill()
        result.wait()


def test_ipv6_loopback_host_in_brackets(cluster: Cluster) -> None:
    result = subprocess.Popen(
        command("coordinator") + ["serve", "--host", "[::1]", "--port", "0",
                                  "--state-dir", str(cluster.state_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)
    try:
        assert result.stdout is not None
        line = ""
        deadline = time.monotonic() + DEFAULT_TIMEOUT_S
        while "listening on" not in line and time.monotonic() < deadline:
            line = result.stdout.readline()
            if not line:
                break
        if "listening on" not in line:  # a machine without IPv6: a clear refusal is fine
            result.wait(DEFAULT_TIMEOUT_S)
            err = result.stderr.read() if result.stderr else ""
            assert result.returncode == EXIT_ADDRESS and "Traceback" not in err, err
            return
        match = re.search(r"listening on \[::1\]:(\d+)", line)
        assert match, line
        with grpc.insecure_channel(f"[::1]:{match.group(1)}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                               timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        result.kill()
        result.wait()


def test_a_refused_non_loopback_bind_creates_nothing(cluster: Cluster) -> None:
    result = _serve_refused(cluster, "--host", "0.0.0.0", "--port", "0")
    assert result.returncode != 0 and "--insecure" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not cluster.state_dir.exists(), list(cluster.state_dir.iterdir())


# -- item 15: the standard health service's Watch ---------------------------------------------


@pytest.mark.parametrize("service", ["", "sweepd.v1.SweepService"])
def test_health_watch_answers_serving(cluster: Cluster, service: str) -> None:
    cluster.start_coordinator()
    with grpc.insecure_channel(cluster.address) as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=service), timeout=DEFAULT_TIMEOUT_S)
        first = next(stream)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        stream.cancel()
        # The malformed-request guard still guards it.
        raw = channel.unary_stream("/grpc.health.v1.Health/Watch",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as err:
            list(raw(b"\xff\xff\xff", timeout=DEFAULT_TIMEOUT_S))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    # Stopping the coordinator is announced on a watch before the port closes.
    with grpc.insecure_channel(cluster.address) as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=service), timeout=DEFAULT_TIMEOUT_S)
        assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
        cluster.coordinator.signal(signal.SIGTERM)  # type: ignore[union-attr]
        statuses = []
        try:
            for reply in stream:
                statuses.append(reply.status)
        except grpc.RpcError:
            pass
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses, statuses
