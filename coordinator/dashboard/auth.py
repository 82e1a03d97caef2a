"""Who may see the dashboard: the coordinator's token, typed once into a login form (or
carried by a one-time link from `sweep dashboard`), exchanged for a session cookie.

The token itself never reaches the browser's JavaScript or its history: the cookie is
HttpOnly, and a one-time link carries a signature made with the token, not the token. Each
session also has a CSRF secret, put into the pages, that every POST must send back as the
``X-Sweepd-CSRF`` header; SameSite=Strict alone leaves older browsers and same-site pages.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sweepd.common.dashboard_link import LINK_TTL_S, sign_link

# A login lasts a working day; after that the token is asked for again.
SESSION_TTL_S = 12 * 3600.0
# At most this many sessions at once: a script logging in in a loop cannot grow memory.
MAX_SESSIONS = 1000
SESSION_COOKIE = "sweepd_session"
CSRF_HEADER = "X-Sweepd-CSRF"


def same_secret(given: str, expected: str) -> bool:
    """Whether a non-empty ``given`` equals ``expected``, in constant time, as the gRPC port's
    check: no byte-by-byte guessing from timings."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Session:
    csrf: str
    expires_at: float


class Sessions:
    """The logged-in browsers of one coordinator (in memory: a restart logs everyone out,
    which costs one paste of the token)."""

    def __init__(self, token: str | None, clock: Callable[[], float] = time.time) -> None:
        # None: the coordinator runs with --no-auth, and so does its dashboard.
        self.token = token
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._used_nonces: dict[str, float] = {}

    @property
    def required(self) -> bool:
        return self.token is not None

    def token_matches(self, given: str) -> bool:
        if self.token is None:
            return True
        return same_secret(given, self.token)

    def link_matches(self, nonce: str, expires: str, sig: str) -> bool:
        """A one-time link's fields: signed with the token, not expired, never used before."""
        if self.token is None:
            return True
        now = self.clock()
        self._used_nonces = {n: t for n, t in self._used_nonces.items() if t > now}
        try:
            expires_at = int(expires)
        except ValueError:
            return False
        if not nonce or expires_at < now or expires_at > now + LINK_TTL_S + 60:
            return False
        if nonce in self._used_nonces:
            return False
        if not hmac.compare_digest(sig.encode(), sign_link(self.token, nonce, expires_at)
                                   .encode()):
            return False
        self._used_nonces[nonce] = float(expires_at)
        return True

    def create(self) -> str:
        now = self.clock()
        self._drop_expired(now)
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = Session(csrf=secrets.token_urlsafe(24),
                                      expires_at=now + SESSION_TTL_S)
        return sid

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None or session.expires_at <= self.clock():
            self._sessions.pop(sid, None)
            return None
        return session

    def end(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def _drop_expired(self, now: float) -> None:
        for sid in [s for s, v in self._sessions.items() if v.expires_at <= now]:
            del self._sessions[sid]
