"""The flapping guard (worker/flapping.py) as a pure rule: run ends and a clock in, the pause
out. No worker, no sleeps; tests/e2e/test_worker_flapping.py checks the daemon applies it."""

from __future__ import annotations

from sweepd.worker.flapping import (
    FAILURE_BACKOFF_MAX_S,
    QUICK_FAILURE_S,
    QUICK_FAILURES_TO_PAUSE,
    FailureStreak,
    Pause,
    after_run,
)

FIRST_PAUSE_S = 30.0


class Guard:
    """The rule driven as the daemon drives it, on a clock the test moves."""

    def __init__(self) -> None:
        self.streak = FailureStreak(next_pause_s=FIRST_PAUSE_S)
        self.now = 1000.0

    def end(self, state: str, lasted_s: float, *, may_pause: bool = True) -> Pause | None:
        self.streak, pause = after_run(
            self.streak, state=state, started_at=self.now, ended_at=self.now + lasted_s,
            now=self.now + lasted_s, first_pause_s=FIRST_PAUSE_S, may_pause=may_pause)
        self.now += lasted_s
        return pause


def test_three_quick_failures_in_a_row_pause_from_now() -> None:
    guard = Guard()
    for _ in range(QUICK_FAILURES_TO_PAUSE - 1):
        assert guard.end("FAILED", 1.0) is None
    pause = guard.end("FAILED", 1.0)
    assert pause == Pause(seconds=FIRST_PAUSE_S, until=guard.now + FIRST_PAUSE_S)
    assert "3 runs in a row failed within 60 s" in pause.message()
    assert "pausing for 30 s" in pause.message()


def test_each_further_pause_doubles_up_to_the_cap() -> None:
    guard = Guard()
    pauses = []
    for _ in range(8):
        for _ in range(QUICK_FAILURES_TO_PAUSE - 1):
            assert guard.end("FAILED", 0.5) is None  # the count starts over after a pause
        pause = guard.end("FAILED", 0.5)
        assert pause is not None
        pauses.append(pause.seconds)
    assert pauses == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0]
    assert FAILURE_BACKOFF_MAX_S == 900.0


def test_a_success_or_a_slow_failure_starts_over() -> None:
    for reset in [("FINISHED", 1.0), ("FAILED", QUICK_FAILURE_S)]:
        guard = Guard()
        for _ in range(QUICK_FAILURES_TO_PAUSE):
            guard.end("FAILED", 1.0)  # the first pause
        guard.end("FAILED", 1.0)
        guard.end("FAILED", 1.0)
        assert guard.end(*reset) is None
        assert guard.streak == FailureStreak(next_pause_s=FIRST_PAUSE_S)
        # Counted from zero again, and the next pause is the first one's length.
        assert guard.end("FAILED", 1.0) is None and guard.end("FAILED", 1.0) is None
        pause = guard.end("FAILED", 1.0)
        assert pause is not None and pause.seconds == FIRST_PAUSE_S


def test_just_under_the_limit_is_quick() -> None:
    guard = Guard()
    for _ in range(QUICK_FAILURES_TO_PAUSE - 1):
        guard.end("FAILED", QUICK_FAILURE_S - 0.001)
    assert guard.end("FAILED", QUICK_FAILURE_S - 0.001) is not None


def test_a_stopped_run_changes_nothing() -> None:
    guard = Guard()
    guard.end("FAILED", 1.0)
    guard.end("FAILED", 1.0)
    before = guard.streak
    assert guard.end("STOPPED", 1.0) is None
    assert guard.streak == before
    assert guard.end("FAILED", 1.0) is not None  # the third quick failure in a row


def test_a_worker_that_may_not_pause_keeps_counting() -> None:
    # Paused already (its other slots' runs still ending) or leaving: no second pause, but the
    # failures count, so the next quick failure after it may pause again pauses at once.
    guard = Guard()
    for _ in range(QUICK_FAILURES_TO_PAUSE + 1):
        assert guard.end("FAILED", 1.0, may_pause=False) is None
    assert guard.streak.quick_failures == QUICK_FAILURES_TO_PAUSE + 1
    assert guard.streak.next_pause_s == FIRST_PAUSE_S  # no pause was taken
    pause = guard.end("FAILED", 1.0)
    assert pause is not None and pause.seconds == FIRST_PAUSE_S


def test_a_zero_backoff_still_counts() -> None:
    streak = FailureStreak(next_pause_s=0.0)
    pause = None
    for _ in range(QUICK_FAILURES_TO_PAUSE):
        streak, pause = after_run(streak, state="FAILED", started_at=0.0, ended_at=1.0,
                                  now=5.0, first_pause_s=0.0, may_pause=True)
    assert pause == Pause(seconds=0.0, until=5.0)
