"""How clients and workers reach a coordinator: its address, the channel, the state dir.

Shared by the client, the worker and the coordinator (which reads ``default_state_dir``):
the one small module that the daemons truly share, so that they agree on defaults.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
ADDRESS_ENV = "SWEEPD_COORDINATOR"
STATE_DIR_ENV = "SWEEPD_STATE_DIR"
# Keepalive pings every 60 s keep NAT and cloud load balancers (some cut idle TCP connections
# after 4 minutes) from silently dropping a quiet worker stream, and detect a dead peer.
KEEPALIVE_TIME_MS = 60_000
KEEPALIVE_TIMEOUT_MS = 20_000
# Config texts and metric batches are small, but a long grid's ListRuns is not: 64 MiB.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def coordinator_address(explicit: str | None = None) -> str:
    """``--coordinator`` if given, else ``$SWEEPD_COORDINATOR``, else 127.0.0.1:50051."""
    return explicit or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def default_state_dir() -> Path:
    """The per-user data directory where the coordinator keeps its database."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "sweepd"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "sweepd"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sweepd"


def open_channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


def open_aio_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
