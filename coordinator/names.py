"""Resource names: how sweep, run and worker identifiers look and how they are made.

A sweep id is 8 random lowercase base-36 characters (``k3x9a2bq``): short enough to type,
about 2.8e12 values so collisions are not a concern for one coordinator. A run id is
``<sweep_id>-<number>``, readable and globally unique. Ask/report clients hold runs under the
worker id ``client:<client_id>``.
"""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
SWEEP_ID_LENGTH = 8
CLIENT_PREFIX = "client:"
# Client-chosen identifiers travel in logs and tables: keep them printable and bounded.
MAX_CLIENT_ID_LENGTH = 200


def new_sweep_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(SWEEP_ID_LENGTH))


def run_id(sweep_id: str, number: int) -> str:
    return f"{sweep_id}-{number}"


def client_worker_id(client_id: str) -> str:
    return CLIENT_PREFIX + client_id


def is_client_worker(worker_id: str) -> bool:
    return worker_id.startswith(CLIENT_PREFIX)
