"""Orders for worker sessions, held while the transaction that decided them is open.

Nothing leaves before it is stored: inside ``State.commit()`` an order waits, and goes out
once the transaction commits or is dropped with it; outside a transaction (a heartbeat's
stop order, an ack of a resend) it goes out at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..domain import Order
from .views import WorkerSession


class Outbox:
    def __init__(self, sessions: Mapping[str, WorkerSession]) -> None:
        self._sessions = sessions
        self._held: list[tuple[str, Order]] = []
        self.holding = False

    def send(self, worker_id: str, order: Order) -> None:
        """Delivers ``order`` to the worker's stream (dropped if it is not connected: it
        learns what it must at its next hello)."""
        if self.holding:
            self._held.append((worker_id, order))
        else:
            self.deliver(worker_id, order)

    def release(self) -> None:
        """The transaction committed: what it decided goes out, in order."""
        held, self._held = self._held, []
        self.holding = False
        for worker_id, order in held:
            self.deliver(worker_id, order)

    def take_held(self) -> list[tuple[str, Order]]:
        """The held orders, for a group commit to send (or drop) later; holding ends."""
        held, self._held = self._held, []
        self.holding = False
        return held

    def drop(self) -> None:
        """The transaction failed: nothing it decided goes out."""
        self._held = []
        self.holding = False

    def deliver(self, worker_id: str, order: Order) -> None:
        """Sends now, held or not: for orders whose transaction already committed."""
        session = self._sessions.get(worker_id)
        if session is not None:
            session.outbox.put_nowait(order)
