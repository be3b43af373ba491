"""SQLite persistence of runs and their events.

One write connection, guarded by a lock, serves every writer thread (request
threads insert runs, supervisor threads finish them); readers open their own
short-lived connections, which WAL mode lets run beside the writer.

Events are stored as zlib-compressed JSON chunks, not a row per event: a
100,000-event run is a handful of rows of a few bytes per event, and loads
in one query. A run's end (status, result, events) is written in one
transaction with ``synchronous=FULL``, so a finished run survives a crash.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import zlib

from .runs import Run, RunState

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    interpreter TEXT NOT NULL DEFAULT '{}',
    observation TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    output TEXT NOT NULL DEFAULT '',
    lanes TEXT NOT NULL DEFAULT '{}',
    event_count INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    chunk INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, chunk)
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
"""

CHUNK_EVENTS = 20_000


class Store:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None

    def open(self) -> None:
        """Create the file and schema; mark runs left in flight by a previous server."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._writer = self._connect()
        with self._lock, self._writer:
            self._writer.executescript(SCHEMA)
            self._writer.execute(
                "UPDATE runs SET state = ?, reason = ?, finished_at = ? WHERE state IN (?, ?)",
                (
                    RunState.INTERRUPTED.value,
                    "the server stopped while this run was queued or running",
                    time.time(),
                    RunState.QUEUED.value,
                    RunState.RUNNING.value,
                ),
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # -- writes (request and supervisor threads) --------------------------------

    def insert_run(self, run: Run) -> None:
        with self._lock, self._writer:
            self._writer.execute(
                "INSERT INTO runs (id, experiment, params, state, created_at) VALUES (?, ?, ?, ?, ?)",
                (run.id, run.experiment, json.dumps(run.params), run.state.value, run.created_at),
            )

    def finish_run(self, run: Run) -> None:
        chunks = [
            zlib.compress(json.dumps(run.events[i : i + CHUNK_EVENTS], separators=(",", ":")).encode(), 6)
            for i in range(0, len(run.events), CHUNK_EVENTS)
        ]
        with self._lock:
            conn = self._writer
            conn.execute("PRAGMA synchronous=FULL")  # this transaction is fsync'd
            try:
                with conn:
                    conn.execute("DELETE FROM run_events WHERE run_id = ?", (run.id,))
                    conn.executemany(
                        "INSERT INTO run_events (run_id, chunk, data) VALUES (?, ?, ?)",
                        [(run.id, n, blob) for n, blob in enumerate(chunks)],
                    )
                    conn.execute(
                        """UPDATE runs SET state = ?, reason = ?, interpreter = ?, observation = ?, result = ?,
                           output = ?, lanes = ?, event_count = ?, started_at = ?, finished_at = ? WHERE id = ?""",
                        (
                            run.state.value,
                            run.reason,
                            json.dumps(run.interpreter),
                            json.dumps(run.observation),
                            json.dumps(run.result) if run.result is not None else None,
                            run.output,
                            json.dumps(run.lanes),
                            len(run.events),
                            run.started_at,
                            run.finished_at,
                            run.id,
                        ),
                    )
            finally:
                conn.execute("PRAGMA synchronous=NORMAL")

    # -- reads (any thread, own connection) -----------------------------------

    def load_run(self, run_id: str) -> Run | None:
        conn = self._connect()
        conn.row_factory = sqlite3.Row
        try:
            rec = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if rec is None:
                return None
            events: list = []
            for (blob,) in conn.execute("SELECT data FROM run_events WHERE run_id = ? ORDER BY chunk", (run_id,)):
                events.extend(json.loads(zlib.decompress(blob)))
        finally:
            conn.close()
        return Run.restored(
            id=rec["id"],
            experiment=rec["experiment"],
            params=json.loads(rec["params"]),
            created_at=rec["created_at"],
            state=RunState(rec["state"]),
            reason=rec["reason"],
            interpreter=json.loads(rec["interpreter"]),
            observation=json.loads(rec["observation"]),
            result=json.loads(rec["result"]) if rec["result"] else None,
            output=rec["output"],
            started_at=rec["started_at"],
            finished_at=rec["finished_at"],
            events=events,
            lanes={int(k): v for k, v in json.loads(rec["lanes"]).items()},
        )

    def recent_runs(self, limit: int = 20) -> list[dict]:
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT id, experiment, params, state, result, created_at FROM runs ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        finally:
            conn.close()
        return [
            {
                "id": r[0],
                "experiment": r[1],
                "params": json.loads(r[2]),
                "state": r[3],
                "held": (json.loads(r[4]) or {}).get("held") if r[4] else None,
                "created_at": r[5],
            }
            for r in rows
        ]
