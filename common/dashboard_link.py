"""Where this machine's coordinator serves its dashboard, and one-time login links to it.

The coordinator writes its dashboard's URL into its state dir while it runs; a link signs a
fresh nonce and an expiry with the token (HMAC-SHA256), so that the token itself never lands
in a browser's history or a terminal's scrollback, and the coordinator accepts each link once.
Client and coordinator share this module so that both compute the signature alike. Light on
import (standard library only), as the rest of this package.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

# Written by the coordinator beside its token while the dashboard runs.
URL_FILENAME = "dashboard.json"
# A link is good for this long after it was printed: enough to click it, too short to matter
# if it stays in a terminal's scrollback.
LINK_TTL_S = 300.0


class NoDashboard(RuntimeError):
    """No dashboard runs for the coordinator of the state dir (the message says why)."""


def sign_link(token: str, nonce: str, expires: int) -> str:
    return hmac.new(token.encode(), f"login:{nonce}:{expires}".encode(),
                    hashlib.sha256).hexdigest()


def login_link_query(token: str, *, now: float | None = None) -> str:
    """``nonce=..&expires=..&sig=..`` for the dashboard's ``/login/link``."""
    nonce = secrets.token_urlsafe(16)
    expires = int((time.time() if now is None else now) + LINK_TTL_S)
    return f"nonce={nonce}&expires={expires}&sig={sign_link(token, nonce, expires)}"


def dashboard_url(state_dir: Path, coordinator: str | None = None) -> str:
    """The URL the coordinator of ``state_dir`` serves its dashboard on; with
    ``coordinator`` (HOST:PORT), only if that coordinator listens on that port."""
    path = state_dir / URL_FILENAME
    try:
        info = json.loads(path.read_text())
        url, pid = str(info["url"]), int(info["pid"])
        serves = str(info.get("coordinator", ""))
    except FileNotFoundError:
        raise NoDashboard(
            f"no dashboard for the coordinator of {state_dir}: it is not running on this"
            " machine, or it was started with --dashboard-port 0, or its default port was"
            " taken (its output says so)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NoDashboard(f"cannot read {path}: {exc}") from None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise NoDashboard(f"the coordinator that served {url} (pid {pid}) is gone; start"
                          " `coordinator serve` again") from None
    except PermissionError:
        pass  # alive, another user's
    if coordinator and serves and coordinator.rsplit(":", 1)[-1] != serves.rsplit(":", 1)[-1]:
        raise NoDashboard(
            f"the coordinator of {state_dir} listens on {serves}, not {coordinator}: pass"
            " --state-dir of the coordinator you mean (the dashboard URL of a coordinator on"
            " another machine is printed in its own output)")
    return url
