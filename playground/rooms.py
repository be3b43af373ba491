"""Workshop rooms: an instructor's runs shown live on every learner's screen,
and the learners' own runs gathered in one table.

A room has a short code to read aloud (``new_room_code``), and a secret key
that only its creator holds (the store keeps its hash). Two kinds of runs
belong to a room, both ordinary runs in the ``runs`` table:

- room runs: started with the key; the latest is the room's ``current_run``,
  which every learner's page follows;
- class runs: anyone's, with the name they typed (``who``): the class view.

The tables live in the run store's SQLite file and go through its one write
connection and lock, as series do (store.py); reads open their own connection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass

from .store import StoreError

ROOMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    code TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    current_run TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS room_runs (
    room TEXT NOT NULL REFERENCES rooms(code) ON DELETE CASCADE,
    run_id TEXT NOT NULL,
    role TEXT NOT NULL,  -- "instructor" (a room run) or "learner" (the class view)
    who TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    PRIMARY KEY (room, run_id)
);
CREATE INDEX IF NOT EXISTS room_runs_room ON room_runs(room, created_at);
"""

# Read aloud and typed from a projector: no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V.
ROOM_ALPHABET = "ACDEFGHJKMNPQRTWXY34679"
ROOM_CODE_LENGTH = 6
WHO_MAX = 40  # characters of a learner's name


def new_room_code() -> str:
    return "".join(secrets.choice(ROOM_ALPHABET) for _ in range(ROOM_CODE_LENGTH))


def is_room_code(value: str) -> bool:
    return len(value) == ROOM_CODE_LENGTH and set(value) <= set(ROOM_ALPHABET)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Room:
    code: str
    key_hash: str
    current_run: str | None
    created_at: float

    def opens_with(self, key: str | None) -> bool:
        """Whether ``key`` is this room's secret (in constant time)."""
        return bool(key) and hmac.compare_digest(_digest(key), self.key_hash)


class RoomBook:
    """Rooms and their runs, in the run store's database."""

    def __init__(self, store):
        self.store = store

    def open(self) -> None:
        with self.store._lock, self.store._writer:
            self.store._writer.executescript(ROOMS_SCHEMA)

    def _write(self, sql: str, args: tuple) -> int:
        """One statement on the store's write connection; IntegrityError passes (a code clash)."""
        try:
            with self.store._lock, self.store._writer:
                return self.store._writer.execute(sql, args).rowcount
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreError(f"the run store ({self.store.path}) failed: {exc}") from exc

    def _read(self, sql: str, args: tuple) -> list:
        conn = self.store._connect()
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"the run store ({self.store.path}) failed: {exc}") from exc
        finally:
            conn.close()

    def create(self) -> tuple[Room, str]:
        """A new room and its secret key (returned once, stored only as a hash)."""
        key = secrets.token_urlsafe(18)
        for _ in range(20):  # 23^6 codes: a clash is rare; try another
            room = Room(new_room_code(), _digest(key), None, time.time())
            try:
                self._write(
                    "INSERT INTO rooms (code, key_hash, created_at) VALUES (?, ?, ?)",
                    (room.code, room.key_hash, room.created_at),
                )
                return room, key
            except sqlite3.IntegrityError:
                continue
        raise RuntimeError("no free room code after 20 tries")

    def get(self, code: str) -> Room | None:
        if not is_room_code(code):
            return None
        rows = self._read("SELECT code, key_hash, current_run, created_at FROM rooms WHERE code = ?", (code,))
        return Room(*rows[0]) if rows else None

    def add_run(self, code: str, run_id: str, *, role: str, who: str = "") -> None:
        """Record a run of the room; a room run becomes the one every learner follows."""
        self._write(
            "INSERT INTO room_runs (room, run_id, role, who, created_at) VALUES (?, ?, ?, ?, ?)",
            (code, run_id, role, who[:WHO_MAX], time.time()),
        )
        if role == "instructor":
            self._write("UPDATE rooms SET current_run = ? WHERE code = ?", (run_id, code))

    def runs(self, code: str, role: str, limit: int = 200) -> list[dict]:
        """The room's runs of one role, newest first, with their experiment, state and result.
        A deleted run drops out (the join finds no row)."""
        rows = self._read(
            "SELECT rr.run_id, rr.who, rr.created_at, r.experiment, r.params, r.state, r.result"
            " FROM room_runs rr JOIN runs r ON r.id = rr.run_id"
            " WHERE rr.room = ? AND rr.role = ? ORDER BY rr.created_at DESC LIMIT ?",
            (code, role, limit),
        )
        return [
            {
                "run": r[0],
                "who": r[1],
                "created_at": r[2],
                "experiment": r[3],
                "params": json.loads(r[4]),
                "state": r[5],
                "result": json.loads(r[6]) if r[6] else None,
            }
            for r in rows
        ]
