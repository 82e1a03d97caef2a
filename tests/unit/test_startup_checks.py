"""Start-up checks that need no coordinator process: what counts as a disk problem rather
than damage, the addresses a host name is bound on, token files that are not files."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest
from sweepd.coordinator import statedir
from sweepd.coordinator.security import _read_token
from sweepd.coordinator.server import _addresses_of
from sweepd.coordinator.statedir import StateDirError


def _sqlite_error(code: int, message: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize("code", [10, 13, 4874, 3338])  # IOERR, FULL, IOERR_SHMSIZE, _WRITE
def test_disk_errors_are_not_called_damage(tmp_path: Path, code: int) -> None:
    message = statedir.database_error(tmp_path / "db", _sqlite_error(code, "disk I/O error"))
    assert "damaged" not in message.replace("not known to be damaged", "")
    assert "--new-database" not in message
    assert str(tmp_path) in message


def test_corruption_is_still_damage(tmp_path: Path) -> None:
    message = statedir.database_error(
        tmp_path / "db", sqlite3.DatabaseError("database disk image is malformed"))
    assert "is damaged" in message and "--new-database" in message


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EIO, errno.EROFS])
def test_os_errors_of_the_disk_say_so(tmp_path: Path, number: int) -> None:
    error = statedir.os_refusal(tmp_path, "write x", OSError(number, os.strerror(number)))
    assert str(tmp_path) in str(error) and "start again" in str(error)


def test_localhost_is_bound_on_both_loopbacks_and_an_address_as_given() -> None:
    assert {"127.0.0.1", "::1"} <= set(_addresses_of("localhost"))
    assert _addresses_of("127.0.0.1") == []
    assert _addresses_of("::1") == []


def test_a_fifo_token_file_is_refused_without_blocking(tmp_path: Path) -> None:
    token = tmp_path / "token"
    os.mkfifo(token, 0o600)
    with pytest.raises(StateDirError, match="not a regular file"):
        _read_token(token)


def test_a_dangling_token_link_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.symlink_to(tmp_path / "nowhere")
    with pytest.raises(StateDirError, match="does not exist"):
        _read_token(token)
