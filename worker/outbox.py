"""The worker's sequenced outbox: what the coordinator must receive exactly once.

Every event that changes state on the coordinator (a run started, a batch of metrics, a run
finished) gets the next sequence number and is kept here until the coordinator acknowledges
that number or a later one. After a reconnect the worker says in its hello which number was
acknowledged last and resends the rest in order; the coordinator skips what it had applied
already, so an event made while it was away arrives after it comes back, once.
"""

from __future__ import annotations

from collections import OrderedDict

from .messages import Event


class Outbox:
    def __init__(self) -> None:
        self._last_seq = 0
        self._acked_seq = 0
        self._unacked: OrderedDict[int, Event] = OrderedDict()

    @property
    def last_seq(self) -> int:
        """The number given to the latest event (0: none yet)."""
        return self._last_seq

    @property
    def acked_seq(self) -> int:
        """The highest number the coordinator acknowledged."""
        return self._acked_seq

    def __len__(self) -> int:
        return len(self._unacked)

    def add(self, event: Event) -> int:
        """Keeps ``event`` under the next number, which it returns."""
        self._last_seq += 1
        self._unacked[self._last_seq] = event
        return self._last_seq

    def get(self, seq: int) -> Event | None:
        return self._unacked.get(seq)

    def ack_up_to(self, seq: int) -> list[Event]:
        """Lets go of every event numbered up to ``seq``; returns them, oldest first. An
        acknowledgement never goes back: an older one (a late duplicate) changes nothing."""
        acked: list[Event] = []
        while self._unacked and next(iter(self._unacked)) <= seq:
            acked.append(self._unacked.popitem(last=False)[1])
        self._acked_seq = max(self._acked_seq, seq)
        return acked

    def drop(self, seq: int) -> None:
        """Gives up on an event that can never be sent (protobuf cannot hold one of its
        values): resent at every reconnect it would be refused for ever."""
        self._unacked.pop(seq, None)

    def unacked(self) -> list[tuple[int, Event]]:
        """What to resend after a reconnect, in order."""
        return list(self._unacked.items())
