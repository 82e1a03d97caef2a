"""In-place upgrades of an older database to the schema this sweepd writes (store.py).

Each upgrade runs when the store opens a database of the version before it, in one
transaction with the version bump: a crash or a failed write midway leaves the database as it
was, and the next start tries again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time

from . import names
from .config import RenderedArgv, parse_config, run_command
from .config.model import ParamPath, SweepConfig, Value
from .errors import SweepdError
from .store import command_to_json, point_from_json

log = logging.getLogger("sweepd.coordinator")


def upgrade_1_to_2(db: sqlite3.Connection) -> None:
    """Version 1 kept one ``argv_json`` for two things (the command rendered at create, then
    what the worker started) and the point twice (``point_json``, ``params_json``). Version 2
    keeps the command in ``command_json`` and only what was started in ``argv_json``; the
    nested params are derived from ``point_json`` when a run is loaded.

    Each run's command is rendered again from its sweep's config, as version 1 did on every
    assignment (which also gives the marks of the items that carry values, never stored).
    ``argv_json`` stays only where it says what a worker started: on a run that started and
    was not reset since, and that no ask/tell client held (version 1 copied the rendered
    command there when a client's first report started the run).
    """
    started = time.monotonic()
    (count,) = db.execute("SELECT count(*) FROM runs").fetchone()
    # Seconds for a few hundred thousand runs: say so before, not only after.
    log.warning("upgrading the database from schema version 1 to 2 (%d run(s))...", count)
    db.execute("BEGIN IMMEDIATE")
    try:
        configs = {row[0]: _config(row[0], row[1])
                   for row in db.execute("SELECT id, config_text FROM sweeps")}
        db.execute("ALTER TABLE runs ADD COLUMN command_json TEXT NOT NULL"
                   """ DEFAULT '{"argv": [], "literal": []}'""")
        rows = db.execute(
            "SELECT id, sweep_id, point_json, worker_id, argv_json, started_at FROM runs"
        ).fetchall()
        updates = []
        for run_id, sweep_id, point_json, worker_id, argv_json, started_at in rows:
            ran = started_at is not None and not names.is_client_worker(worker_id)
            old_argv = json.loads(argv_json)
            config = configs.get(sweep_id)
            if config is not None:
                command = run_command(config, _point(run_id, point_json))
            else:
                # A config this version refuses (its sweep is not loaded): before its run
                # started, the stored argv was the rendered command; the marks are unknown.
                command = RenderedArgv([] if ran else old_argv, ())
            updates.append((command_to_json(command), json.dumps(old_argv if ran else []),
                            run_id))
        db.executemany("UPDATE runs SET command_json=?, argv_json=? WHERE id=?", updates)
        db.execute("ALTER TABLE runs DROP COLUMN params_json")
        db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back by itself (a full disk)
            db.execute("ROLLBACK")
        raise
    log.warning("database upgraded from schema version 1 to 2: %d run(s) (%.0f ms)",
                len(rows), (time.monotonic() - started) * 1000)


def _point(run_id: str, text: str) -> dict[ParamPath, Value]:
    """A run's stored point, refused as damage (ValueError, which start-up reports as a
    damaged database) unless it is the list of [path, value] pairs version 1 wrote."""
    pairs = json.loads(text)
    if not isinstance(pairs, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], list)
            and pair[0] and all(isinstance(part, str) for part in pair[0])
            for pair in pairs):
        raise ValueError(f"run {run_id}: its stored point {text[:200]!r} is not a list of"
                         " [path, value] pairs")
    return point_from_json(text)


def _config(sweep_id: str, text: str) -> SweepConfig | None:
    try:
        return parse_config(text)
    except SweepdError as exc:
        log.error("sweep %s has a config this version refuses; its runs keep the argv"
                  " stored: %s", sweep_id, exc)
        return None
