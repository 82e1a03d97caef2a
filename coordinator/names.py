"""Resource names: how sweep, run and worker identifiers look and how they are made.

A sweep id is 8 random lowercase base-36 characters (``k3x9a2bq``): short enough to type,
about 2.8e12 values so collisions are not a concern for one coordinator. A run id is
``<sweep_id>-<number>``, readable and globally unique. Ask/report clients hold runs under the
worker id ``client:<client_id>``.
"""

from __future__ import annotations

import secrets
import string

from . import limits
from .errors import InvalidArgument

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


def check_holder_id(field: str, value: str, *, worker: bool) -> str:
    """``value`` if it may name a run's holder (a worker id, or an ask/tell client id);
    else InvalidArgument naming ``field``.

    A worker id and ``client:<client_id>`` share one namespace (the run's holder), so a worker
    may not take the client prefix: it could finish a client's runs. Ids also land in logs,
    tables and the worker's directory names: printable, no path parts, bounded.
    """
    what = "worker id" if worker else "client id"
    # A worker's default id holds its host name, which may be long (a full DNS name).
    most = limits.MAX_NAME_LENGTH if worker else MAX_CLIENT_ID_LENGTH
    if not value:
        raise InvalidArgument(f"{field}: must not be empty; give a stable {what}")
    if len(value) > most:
        raise InvalidArgument(f"{field}: {len(value)} characters, at most {most}; give a"
                              f" shorter {what}")
    if not value.isprintable():
        raise InvalidArgument(f"{field}: {value[:80]!r} holds a control or non-printing"
                              f" character; use letters, digits and punctuation")
    if "/" in value or ".." in value:
        raise InvalidArgument(f"{field}: {value[:80]!r} holds '/' or '..'; a {what} may not"
                              " look like a path")
    if worker and value.startswith(CLIENT_PREFIX):
        raise InvalidArgument(f"{field}: {value[:80]!r} starts with {CLIENT_PREFIX!r}, which"
                              " is reserved for ask/tell clients; choose another --worker-id")
    return value
