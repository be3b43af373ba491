"""Storage: bytes per event in SQLite, and how long a 100,000-event run takes to load.

    python bench/storage.py [--events 100000] [--repeat 10] [--database FILE]

Writes runs straight through the project's ``Store`` (the server's own code
path: ``finish_run`` compresses JSON chunks) into a fresh SQLite file:

- "synthetic": 100 lanes of OS-state changes at sampler-like times (ns with
  jitter, as the sampler records them), cpu windows and a few marks;
- "round": the same count with round timestamps (what live_path.py stores),
  which compresses far better: the optimistic end.

Bytes per event = the chunk blobs' bytes / events (and the whole file / events).
Load = ``Store.load_run`` wall time, median of ``--repeat``. With ``--database``
it also reports bytes per event over the finished runs of an existing file (a
server's real runs). Targets (issue 7): <= 20 bytes per event; load <= 200 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time

from common import load_average, record

from playground.runs import Run, RunState
from playground.store import Store

STATES = ("running", "gil", "lock", "sleep", "io")


def synthetic_events(n: int, lanes: int = 100, jitter: bool = True) -> list:
    rnd = random.Random(7)
    events = [
        [
            rnd.randrange(100_000, 5_000_000) if jitter else 0,
            lane,
            "lane",
            {"name": f"worker-{lane}", "tid": 41_000 + lane},
        ]
        for lane in range(lanes)
    ]
    t = [e[0] for e in events]
    state = [0] * lanes
    while len(events) < n:
        lane = rnd.randrange(lanes)
        t[lane] += rnd.randrange(900_000, 6_000_000) if jitter else 1_000_000
        roll = rnd.random()
        if roll < 0.75:
            state[lane] = (state[lane] + rnd.randrange(1, 5)) % 5
            events.append([t[lane], lane, "S", STATES[state[lane]]])
        elif roll < 0.97:
            events.append([t[lane], lane, "cpu", rnd.randrange(0, 20_000_000) if jitter else 10_000_000])
        else:
            events.append([t[lane], lane, "M", f"step {len(events)}"])
    return events


def store_run(store: Store, run_id: str, events: list) -> None:
    run = Run(id=run_id, experiment="cpu-bound", params={"threads": 100, "iterations": 10_000})
    store.insert_run(run)
    run.add_events(events)
    run.finish(RunState.DONE, result={"held": True, "metrics": {}}, persist=store.finish_run)


def blob_bytes(path: str, run_id: str | None = None) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        if run_id:
            b = conn.execute(
                "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM run_events WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            n = conn.execute("SELECT event_count FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        else:
            b = conn.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM run_events").fetchone()[0]
            n = conn.execute("SELECT COALESCE(SUM(event_count), 0) FROM runs").fetchone()[0]
    finally:
        conn.close()
    return b, n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--database", help="also report bytes per event over the runs of this file")
    args = parser.parse_args()
    load0 = load_average()
    rows = []
    folder = tempfile.mkdtemp(prefix="bench-")
    for label, jitter in (("synthetic (ns jitter)", True), ("round timestamps", False)):
        path = os.path.join(folder, f"{'j' if jitter else 'r'}.sqlite3")
        store = Store(path)
        store.open()
        events = synthetic_events(args.events, jitter=jitter)
        t0 = time.perf_counter()
        store_run(store, "benchstore", events)
        write_ms = (time.perf_counter() - t0) * 1000
        blobs, n = blob_bytes(path, "benchstore")
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        file_bytes = os.path.getsize(path)
        loads = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            run = store.load_run("benchstore")
            loads.append((time.perf_counter() - t0) * 1000)
            assert len(run.events) == n
        store.close()
        rows.append(
            (
                f"{label}: {n:,} events, bytes per event",
                f"**{blobs / n:.1f} B** in event chunks ({file_bytes / n:.1f} B of the whole file); finish_run {write_ms:.0f} ms",
            )
        )
        rows.append(
            (
                f"{label}: Store.load_run, median of {args.repeat}",
                f"**{statistics.median(loads):.0f} ms** (min {min(loads):.0f}, max {max(loads):.0f})",
            )
        )
    if args.database:
        blobs, n = blob_bytes(args.database)
        if n:
            rows.append(
                (f"real runs in {os.path.basename(args.database)}", f"{n:,} events, {blobs / n:.1f} B per event")
            )
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    record("Storage: bytes per event, load time", rows)


if __name__ == "__main__":
    main()
