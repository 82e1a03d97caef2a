"""A schema-version-1 database as sweepd wrote it before the command and the argv were two
fields (issue #17): the CREATE statements are copied from that version's store.py, so that the
upgrade is tested against what is really on disk, not against today's schema."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT NOT NULL DEFAULT '',
    config_text TEXT NOT NULL,
    run_count INTEGER NOT NULL DEFAULT 0,
    exhausted_reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    queue TEXT NOT NULL DEFAULT 'default',
    max_concurrent INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    sweep_id TEXT NOT NULL REFERENCES sweeps(id),
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    point_json TEXT NOT NULL,
    params_json TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT NOT NULL DEFAULT '',
    argv_json TEXT NOT NULL DEFAULT '[]',
    exit_code INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    summary_json TEXT NOT NULL DEFAULT '{}',
    next_record_index INTEGER NOT NULL DEFAULT 0,
    predicted_mean REAL,
    predicted_std REAL,
    lease_expires_at REAL,
    -- An early-stop or cancel decision, stored before the stop order goes out (JSON).
    stop_json TEXT,
    -- The last 64 KiB of the run's output, as its worker sent it when the run ended.
    log_tail TEXT NOT NULL DEFAULT '',
    UNIQUE (sweep_id, number)
);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs(state);
-- Every transition of a run, with its reason: the audit trail (LOST attempts included).
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    time REAL NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    worker_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS run_events_by_run ON run_events(run_id);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    step INTEGER NOT NULL,
    time REAL NOT NULL,
    values_json TEXT NOT NULL,
    PRIMARY KEY (run_id, attempt, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    incarnation TEXT NOT NULL,
    host TEXT NOT NULL,
    slots INTEGER NOT NULL,
    labels_json TEXT NOT NULL,
    sweep_id TEXT NOT NULL,
    applied_seq INTEGER NOT NULL,
    connected_at REAL NOT NULL,
    last_heartbeat REAL NOT NULL,
    gpus_json TEXT NOT NULL DEFAULT '[]',
    queues_json TEXT NOT NULL DEFAULT '["default"]'
);
"""

_SWEEP_DEFAULTS: dict[str, Any] = {
    "name": "", "state": "RUNNING", "state_reason": "", "run_count": 0, "exhausted_reason": "",
    "created_at": 1.0, "updated_at": 1.0, "queue": "default", "max_concurrent": 0,
    "max_retries": None,
}
_RUN_DEFAULTS: dict[str, Any] = {
    "state": "PENDING", "attempt": 0, "worker_id": "", "argv": [], "exit_code": None,
    "reason": "", "created_at": 2.0, "started_at": None, "ended_at": None, "summary": {},
    "next_record_index": 0, "predicted_mean": None, "predicted_std": None,
    "lease_expires_at": None, "stop": None, "log_tail": "",
}


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    db.execute(f"INSERT INTO {table}({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
               tuple(row.values()))


def write_v1_database(path: Path, sweeps: Sequence[dict[str, Any]],
                      runs: Sequence[dict[str, Any]]) -> None:
    """A version-1 database at ``path``. A sweep: ``id``, ``config_text`` and any column; a
    run: ``sweep_id``, ``number``, ``point`` ({path tuple: value}, in the order stored) and
    any column, ``argv``/``summary``/``stop`` as values. ``params_json`` is written nested from
    the point, as version 1 did."""
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.executescript("BEGIN;" + V1_SCHEMA + "COMMIT;")
        db.execute("BEGIN")
        db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', '1')")
        for sweep in sweeps:
            _insert(db, "sweeps", {**_SWEEP_DEFAULTS, **sweep})
        for spec in runs:
            run = {**_RUN_DEFAULTS, **spec}
            point = run.pop("point")
            nested: dict[str, Any] = {}
            for key, value in point.items():
                node = nested
                for part in key[:-1]:
                    node = node.setdefault(part, {})
                node[key[-1]] = value
            run["id"] = f"{run['sweep_id']}-{run['number']}"
            run["point_json"] = json.dumps([[list(k), v] for k, v in point.items()])
            run["params_json"] = json.dumps(nested)
            run["argv_json"] = json.dumps(run.pop("argv"))
            run["summary_json"] = json.dumps(run.pop("summary"))
            stop = run.pop("stop")
            run["stop_json"] = None if stop is None else json.dumps(stop)
            _insert(db, "runs", run)
        db.execute("COMMIT")
    finally:
        db.close()
