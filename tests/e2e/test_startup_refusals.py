"""Start-up refusals found after issue #11 (the hostile tester's F4, F5 and small findings),
through the real CLI: a full disk is not damage, a host name whose addresses are partly taken
is not served, and token files and databases that are not what they should be are refused
with one line instead of a traceback or a silent change."""

from __future__ import annotations

import signal
import socket
import sqlite3
import stat
from pathlib import Path

import pytest

from .harness import Cluster, fill
from .test_startup import EXIT_ADDRESS, EXIT_STATE_DIR, _one_clear_line, _serve_refused

pytestmark = pytest.mark.e2e

SWEEP = "program: train.py\nmethod: random\nparameters:\n  x: {values: [1, 2]}\n"


def _stop(cluster: Cluster) -> None:
    proc = cluster.coordinator
    assert proc is not None
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.output()


def _tables(db: Path) -> set[str]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {r[0] for r in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


# -- F4: a full disk at start ------------------------------------------------------------------


def test_a_restart_on_a_full_disk_says_so_and_never_suggests_a_new_database(
        small_disk: Path, cluster: Cluster, tmp_path: Path) -> None:
    assert cluster.state_dir == small_disk
    cluster.start_coordinator()
    config = tmp_path / "sweep.yaml"
    config.write_text(SWEEP)
    sweep_id = cluster.create(config)
    _stop(cluster)
    filler = fill(small_disk)
    result = _serve_refused(cluster, "--port", "0")
    line = _one_clear_line(result, EXIT_STATE_DIR, "no space left", str(small_disk),
                           "free space")
    assert "--new-database" not in result.stderr and "is damaged" not in line, line
    # Space back, the same database serves its sweep again.
    filler.unlink()
    cluster.start_coordinator()
    assert [s["id"] for s in cluster.sweep_json("list")] == [sweep_id]


def test_a_first_start_on_a_full_disk_is_refused(small_disk: Path, cluster: Cluster) -> None:
    filler = fill(small_disk)
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, "no space left", str(small_disk))
    assert "cannot write" not in result.stderr.replace("cannot write the lock", ""), result.stderr
    assert not (small_disk / "sweepd.sqlite3").exists()
    assert not (small_disk / "token").exists()
    filler.unlink()
    cluster.start_coordinator()
    assert cluster.sweep("list").returncode == 0


# -- F5: a host name with several addresses, one of them taken ---------------------------------


def _can_listen_on_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("first", ["127.0.0.1", "::1"])
def test_localhost_is_refused_when_one_of_its_addresses_is_in_use(
        cluster: Cluster, tmp_path: Path, first: str) -> None:
    # gRPC resolves localhost to both loopbacks, whatever /etc/hosts says.
    if not _can_listen_on_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    proc = cluster.start_coordinator("--host", first)
    result = _serve_refused(cluster, "--host", "localhost", "--port", str(cluster.port),
                            "--dashboard-port", "0", state_dir=tmp_path / "other-state")
    taken = f"[{first}]:{cluster.port}" if ":" in first else f"{first}:{cluster.port}"
    _one_clear_line(result, EXIT_ADDRESS, taken, f"pid {proc.pid}")
    # Alone, localhost is served on both of its addresses.
    _stop(cluster)
    cluster.start_coordinator("--host", "localhost")
    for host in ("127.0.0.1", "::1"):
        with socket.create_connection((host, cluster.port), timeout=10):
            pass


# -- token files --------------------------------------------------------------------------------


def test_a_token_file_that_is_a_directory_is_one_clear_message(cluster: Cluster) -> None:
    cluster.start_coordinator().kill()
    token = cluster.state_dir / "token"
    token.unlink()
    token.mkdir()
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(token), "directory")


def test_a_short_token_is_refused(cluster: Cluster) -> None:
    cluster.start_coordinator().kill()
    token = cluster.state_dir / "token"
    token.write_text("a\n")
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(token), "at least 16")
    token.write_text("x" * 16 + "\n")
    cluster.start_coordinator()
    assert cluster.sweep("list").returncode == 0


def test_a_symlinked_token_file_is_read_but_its_target_left_alone(cluster: Cluster,
                                                                  tmp_path: Path) -> None:
    cluster.start_coordinator().kill()
    token = cluster.state_dir / "token"
    shared = tmp_path / "shared-token"
    shared.write_text(token.read_text())
    shared.chmod(0o644)
    token.unlink()
    token.symlink_to(shared)
    proc = cluster.start_coordinator()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644
    assert token.is_symlink()
    assert "WARNING" in proc.output() and str(shared) in proc.output(), proc.output()
    assert cluster.sweep("list").returncode == 0


# -- databases that are not (whole) sweepd databases ---------------------------------------------


def test_another_applications_database_is_refused_and_left_unchanged(cluster: Cluster) -> None:
    cluster.state_dir.mkdir(mode=0o700)
    db = cluster.state_dir / "sweepd.sqlite3"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE notes (x)")
    connection.execute("INSERT INTO notes VALUES ('hi')")
    connection.commit()
    connection.close()
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(db), "not a sweepd database", "notes")
    assert _tables(db) == {"notes"}
    assert not (cluster.state_dir / "token").exists()


def test_a_sweepd_database_missing_a_table_is_refused_and_left_unchanged(
        cluster: Cluster) -> None:
    cluster.start_coordinator()
    _stop(cluster)
    db = cluster.state_dir / "sweepd.sqlite3"
    connection = sqlite3.connect(db)
    connection.execute("DROP TABLE runs")
    connection.commit()
    connection.close()
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(db), "runs", "backup")
    assert "runs" not in _tables(db)


def test_a_database_without_tables_beside_a_token_is_refused(cluster: Cluster) -> None:
    cluster.start_coordinator()
    _stop(cluster)
    db = cluster.state_dir / "sweepd.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA user_version = 1")  # a valid SQLite file of one page
    connection.close()
    assert db.stat().st_size > 0
    result = _serve_refused(cluster, "--port", "0")
    _one_clear_line(result, EXIT_STATE_DIR, str(db), "no tables", "--new-database")
