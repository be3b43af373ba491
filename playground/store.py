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
from .series import Series, SeriesState

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

# Sweeps and repeats (series.py): the plan and the run ids as JSON; the runs are rows of their own.
SERIES_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    experiment TEXT NOT NULL,
    params TEXT NOT NULL,
    plan TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    run_ids TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    finished_at REAL
);
"""

CHUNK_EVENTS = 20_000
# The write connection lives as long as the server, and SQLite's default page cache
# (2,000 KiB) fills as the file grows: +2 MB of RSS over the first ~1,000 runs, one of
# the two things that kept bench/memory.py from being flat (issue 7; the other: see
# application.bound_native_memory). Writes touch a few B-tree pages each (the rest
# come from the OS's file cache in microseconds, beside the fsync of every finish),
# so a small bounded cache is full, and flat, after ~100 runs.
WRITER_CACHE_KIB = 256


class StoreError(Exception):
    """The database refused a write or read (locked, disk full, I/O error): the
    message says which, for a 503 or for the run's reason."""


def _guarded(method):
    """sqlite3 errors leave as StoreError with a sentence a user can act on."""

    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"the run store ({self.path}) failed: {exc}") from exc

    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


class Store:
    def __init__(self, path: str, *, timeout: float = 5.0):
        self.path = path
        self.timeout = timeout  # how long a write waits for a lock before it fails
        self._lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None

    def open(self) -> None:
        """Create the file and schema; mark runs left in flight by a previous server."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._writer = self._connect()
        self._writer.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
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
            self._writer.executescript(SERIES_SCHEMA)
            columns = {row[1] for row in self._writer.execute("PRAGMA table_info(runs)")}
            if "delete_hash" not in columns:  # databases from before deletion: the column comes empty
                self._writer.execute("ALTER TABLE runs ADD COLUMN delete_hash TEXT")
            self._writer.execute(  # no feeder survives a restart: say so, as for runs
                "UPDATE series SET state = ?, reason = ?, finished_at = ? WHERE state = ?",
                (
                    SeriesState.INTERRUPTED.value,
                    "the server stopped while this series was in flight",
                    time.time(),
                    SeriesState.RUNNING.value,
                ),
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None)
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

    @_guarded
    def insert_run(self, run: Run) -> None:
        with self._lock, self._writer:
            self._writer.execute(
                "INSERT INTO runs (id, experiment, params, state, created_at) VALUES (?, ?, ?, ?, ?)",
                (run.id, run.experiment, json.dumps(run.params), run.state.value, run.created_at),
            )

    @_guarded
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

    @_guarded
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

    @_guarded
    def recent_runs(self, limit: int = 20) -> list[dict]:
        return self.runs_page(limit, 0)[0]

    # -- series of runs (series.py) -------------------------------------------

    @_guarded
    def insert_series(self, series: Series) -> None:
        snap = series.snapshot()
        with self._lock, self._writer:
            self._writer.execute(
                "INSERT INTO series (id, kind, experiment, params, plan, options, run_ids, state, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    snap["id"],
                    snap["kind"],
                    snap["experiment"],
                    json.dumps(snap["params"]),
                    json.dumps(snap["plan"]),
                    json.dumps(snap["options"]),
                    json.dumps(snap["run_ids"]),
                    snap["state"],
                    snap["created_at"],
                ),
            )

    @_guarded
    def save_series(self, series: Series) -> None:
        snap = series.snapshot()
        with self._lock, self._writer:
            self._writer.execute(
                "UPDATE series SET run_ids = ?, options = ?, state = ?, reason = ?, finished_at = ? WHERE id = ?",
                (
                    json.dumps(snap["run_ids"]),
                    json.dumps(snap["options"]),
                    snap["state"],
                    snap["reason"],
                    snap["finished_at"],
                    snap["id"],
                ),
            )

    @_guarded
    def load_series(self, series_id: str) -> Series | None:
        conn = self._connect()
        conn.row_factory = sqlite3.Row
        try:
            rec = conn.execute("SELECT * FROM series WHERE id = ?", (series_id,)).fetchone()
        finally:
            conn.close()
        if rec is None:
            return None
        return Series(
            id=rec["id"],
            kind=rec["kind"],
            experiment=rec["experiment"],
            params=json.loads(rec["params"]),
            plan=json.loads(rec["plan"]),
            options=json.loads(rec["options"]),
            run_ids=json.loads(rec["run_ids"]),
            state=SeriesState(rec["state"]),
            reason=rec["reason"],
            created_at=rec["created_at"],
            finished_at=rec["finished_at"],
        )

    @_guarded
    def run_rows(self, run_ids: list[str]) -> dict[str, dict]:
        """Params, state and result of many runs, without their events: cheap enough to poll."""
        if not run_ids:
            return {}
        conn = self._connect()
        try:
            marks = ",".join("?" * len(run_ids))
            rows = conn.execute(
                f"SELECT id, params, state, reason, result FROM runs WHERE id IN ({marks})", list(run_ids)
            ).fetchall()
        finally:
            conn.close()
        return {
            r[0]: {
                "id": r[0],
                "params": json.loads(r[1]),
                "state": r[2],
                "reason": r[3],
                "result": json.loads(r[4]) if r[4] else None,
            }
            for r in rows
        }

    @_guarded
    def recent_runs_of(self, experiment: str, limit: int = 10) -> list[dict]:
        """The latest runs of one experiment (the run page offers them to compare with)."""
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT id, params, state, created_at FROM runs WHERE experiment = ? ORDER BY created_at DESC LIMIT ?",
                (experiment, limit),
            ).fetchall()
        finally:
            conn.close()
        return [{"id": r[0], "params": json.loads(r[1]), "state": r[2], "created_at": r[3]} for r in rows]

    # -- deletion by the run's creator, and the paged list of runs -----------------

    @_guarded
    def set_delete_hash(self, run_id: str, digest: str) -> None:
        """The hash of the secret that lets whoever started the run delete it."""
        with self._lock, self._writer:
            self._writer.execute("UPDATE runs SET delete_hash = ? WHERE id = ?", (digest, run_id))

    @_guarded
    def delete_hash(self, run_id: str) -> str | None:
        conn = self._connect()
        try:
            row = conn.execute("SELECT delete_hash FROM runs WHERE id = ?", (run_id,)).fetchone()
        finally:
            conn.close()
        return row[0] if row else None

    @_guarded
    def delete_run(self, run_id: str) -> bool:
        """The run and its events (ON DELETE CASCADE), in one transaction."""
        with self._lock, self._writer:
            self._writer.execute("DELETE FROM run_events WHERE run_id = ?", (run_id,))
            return self._writer.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    @_guarded
    def runs_page(self, limit: int, offset: int) -> tuple[list[dict], int]:
        """One page of runs, newest first, as recent_runs shows them, and how many runs there are."""
        conn = self._connect()
        try:
            total = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            rows = conn.execute(
                "SELECT id, experiment, params, state, result, created_at FROM runs"
                " ORDER BY created_at DESC LIMIT ? OFFSET ?",
                (limit, offset),
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
        ], total
