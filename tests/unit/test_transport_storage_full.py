"""A safe-to-repeat call waits out a coordinator's full disk, but no other RESOURCE_EXHAUSTED
(hostile tester's finding F3 on issue #11): an injected clock, no real waiting."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest
from sweepd.common.transport import (
    STORAGE_FULL_MARK,
    StillUnavailable,
    retry_while_unavailable,
    storage_full,
)
from sweepd.coordinator.database import _store_error
from sweepd.coordinator.errors import StorageFull
from sweepd.coordinator.servicers.errors import status_of


class _Error(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def _coordinator_full_disk_message() -> str:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = 13  # type: ignore[attr-defined]  # SQLITE_FULL
    error = _store_error(Path("/state/sweepd.sqlite3"), exc)
    assert isinstance(error, StorageFull)
    assert status_of(error) is grpc.StatusCode.RESOURCE_EXHAUSTED
    return str(error)


def test_the_coordinators_full_disk_answer_is_recognised() -> None:
    # The client recognises the coordinator's words: they must not drift apart.
    message = _coordinator_full_disk_message()
    assert STORAGE_FULL_MARK in message
    assert storage_full(_Error(grpc.StatusCode.RESOURCE_EXHAUSTED, message))
    assert not storage_full(_Error(grpc.StatusCode.UNAVAILABLE, message))


def test_a_full_disk_is_waited_out_then_the_call_answers() -> None:
    clock = _Clock()
    full = _Error(grpc.StatusCode.RESOURCE_EXHAUSTED, _coordinator_full_disk_message())
    outcomes: list[object] = [full, full, full, "stored"]

    def attempt(deadline: float) -> object:
        clock.now += 0.5
        result = outcomes.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    assert retry_while_unavailable(attempt, timeout=30, wait_s=60, sleep=clock.sleep,
                                   clock=clock) == "stored"
    assert not outcomes


def test_a_disk_full_for_the_whole_wait_says_so() -> None:
    clock = _Clock()
    full = _Error(grpc.StatusCode.RESOURCE_EXHAUSTED, _coordinator_full_disk_message())

    def attempt(deadline: float) -> object:
        clock.now += 0.5
        raise full

    with pytest.raises(StillUnavailable) as err:
        retry_while_unavailable(attempt, timeout=30, wait_s=60, sleep=clock.sleep, clock=clock)
    assert err.value.storage_full and "full disk" in err.value.details


@pytest.mark.parametrize("details", [
    "Received message larger than max (70000000 vs. 67108864)",  # gRPC's own size limit
    "sweep 3f9c2a1b has 10000 runs, the limit of --max-runs-per-sweep",  # a configured limit
])
def test_other_resource_exhausted_answers_are_not_retried(details: str) -> None:
    clock = _Clock()
    tries: list[float] = []

    def attempt(deadline: float) -> object:
        tries.append(deadline)
        raise _Error(grpc.StatusCode.RESOURCE_EXHAUSTED, details)

    with pytest.raises(grpc.RpcError):
        retry_while_unavailable(attempt, timeout=30, wait_s=60, sleep=clock.sleep, clock=clock)
    assert len(tries) == 1


def test_a_call_cancelled_by_a_stopping_coordinator_is_tried_again() -> None:
    """A coordinator that stops (SIGTERM, a restart) cancels the calls in flight: a
    safe-to-repeat call waits for it to come back instead of failing CANCELLED."""
    clock = _Clock()
    answers: list[object] = [_Error(grpc.StatusCode.CANCELLED, "CANCELLED"),
                             _Error(grpc.StatusCode.UNAVAILABLE, "connection refused"),
                             "answer"]

    def attempt(timeout: float) -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry_while_unavailable(attempt, timeout=5.0, sleep=clock.sleep,
                                   clock=clock) == "answer"
