"""The client's wait for a restarting coordinator (issue #11 item 21): an injected clock and
sleep, no real waiting."""

from __future__ import annotations

import grpc
import pytest
from sweepd.common.transport import (
    IDEMPOTENT_METHODS,
    RETRY_MAX_S,
    StillUnavailable,
    retry_while_unavailable,
)


class _Error(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"{self._code.name} from the fake"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def _calls(*outcomes: object, clock: _Clock, cost_s: float = 0.0) -> tuple[list[float], object]:
    deadlines: list[float] = []
    queue = list(outcomes)

    def attempt(deadline: float) -> object:
        deadlines.append(deadline)
        clock.now += cost_s
        result = queue.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    return deadlines, attempt


def test_retries_while_unavailable_then_answers() -> None:
    clock = _Clock()
    unavailable = _Error(grpc.StatusCode.UNAVAILABLE)
    deadlines, attempt = _calls(unavailable, unavailable, _Error(
        grpc.StatusCode.DEADLINE_EXCEEDED), "answer", clock=clock, cost_s=1.0)
    assert retry_while_unavailable(attempt, timeout=30, wait_s=60, sleep=clock.sleep,
                                   clock=clock) == "answer"
    assert len(deadlines) == 4 and deadlines[0] == 30
    assert all(0 <= s <= RETRY_MAX_S for s in clock.sleeps)


def test_other_failures_are_not_retried() -> None:
    clock = _Clock()
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                 grpc.StatusCode.DEADLINE_EXCEEDED):  # a slow coordinator, not a gone one
        deadlines, attempt = _calls(_Error(code), clock=clock)
        with pytest.raises(grpc.RpcError):
            retry_while_unavailable(attempt, timeout=30, sleep=clock.sleep, clock=clock)
        assert len(deadlines) == 1


def test_gives_up_after_the_wait_with_a_clear_error() -> None:
    clock = _Clock()
    unavailable = _Error(grpc.StatusCode.UNAVAILABLE)
    deadlines, attempt = _calls(*[unavailable] * 1000, clock=clock, cost_s=0.5)
    with pytest.raises(StillUnavailable) as err:
        retry_while_unavailable(attempt, timeout=30, wait_s=60, sleep=clock.sleep,
                                clock=clock)
    assert 60 <= err.value.waited_s <= 61 and "UNAVAILABLE" in err.value.details
    # No try is given a deadline past the end of the wait.
    assert all(d <= 60 for d in deadlines[1:])


def test_only_calls_safe_to_repeat_are_retried() -> None:
    assert {"SuggestRun", "ReportMetrics", "FinishRun", "ListRuns"} <= IDEMPOTENT_METHODS
    assert not {"CreateSweep", "RetryRuns", "SetSweepState"} & IDEMPOTENT_METHODS
