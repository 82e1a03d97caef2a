"""Dashboard sessions and one-time login links, with an injected clock (no sleeps)."""

from __future__ import annotations

from sweepd.common.dashboard_link import LINK_TTL_S, login_link_query, sign_link
from sweepd.coordinator.dashboard.auth import MAX_SESSIONS, SESSION_TTL_S, Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _fields(query: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in query.split("&"))


def test_a_link_works_once_and_not_after_it_expires() -> None:
    clock = Clock()
    sessions = Sessions("secret", clock)
    link = _fields(login_link_query("secret", now=clock.now))
    assert "secret" not in "".join(link.values())
    assert sessions.link_matches(link["nonce"], link["expires"], link["sig"])
    assert not sessions.link_matches(link["nonce"], link["expires"], link["sig"])
    late = _fields(login_link_query("secret", now=clock.now))
    clock.now += LINK_TTL_S + 1
    assert not sessions.link_matches(late["nonce"], late["expires"], late["sig"])


def test_a_link_signed_with_another_token_or_forged_expiry_is_refused() -> None:
    clock = Clock()
    sessions = Sessions("secret", clock)
    other = _fields(login_link_query("other", now=clock.now))
    assert not sessions.link_matches(other["nonce"], other["expires"], other["sig"])
    # A far expiry, signed correctly, is still refused: links are short-lived by design.
    far = str(int(clock.now + 10 * LINK_TTL_S))
    assert not sessions.link_matches("n", far, sign_link("secret", "n", int(far)))
    assert not sessions.link_matches("n", "soon", "x")


def test_sessions_expire_and_are_bounded() -> None:
    clock = Clock()
    sessions = Sessions("secret", clock)
    sid = sessions.create()
    assert sessions.get(sid) is not None and sessions.get("nope") is None
    clock.now += SESSION_TTL_S + 1
    assert sessions.get(sid) is None
    first = sessions.create()
    for _ in range(MAX_SESSIONS):
        sessions.create()
    assert sessions.get(first) is None  # the oldest made room


def test_token_check() -> None:
    sessions = Sessions("secret")
    assert sessions.token_matches("secret")
    assert not sessions.token_matches("") and not sessions.token_matches("secre")
    assert Sessions(None).token_matches("") and not Sessions(None).required
