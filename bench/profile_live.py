"""Where the live path spends its time: py-spy on the server (and its workers) during
a live event-flood run and during replays of a stored 100,000-event run.

    python bench/profile_live.py [--seconds 12]

Needs py-spy (``pip install py-spy``) and ptrace rights on the server. Prints,
per scenario and per process, the functions with the most samples (self, and
inclusive for the project's own functions). Not recorded in RESULTS.md: it is
the profile behind the figures of live_path.py.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

from common import LiveServer
from live_path import synthetic_run

PYSPY = os.path.join(os.path.dirname(sys.executable), "py-spy")


def summarize(raw: str, top: int = 14) -> None:
    per_proc: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    incl: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    totals: collections.Counter = collections.Counter()
    for line in open(raw):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        frames = stack.split(";")
        proc = frames[0].split(" (")[0][:60] if frames[0].startswith("process") else "process"
        n = int(n)
        totals[proc] += n
        leaf = frames[-1]
        per_proc[proc][leaf] += n
        seen = set()
        for f in frames[1:]:
            if ("/playground/" in f or "simple_websocket" in f or "json" in f) and f not in seen:
                seen.add(f)
                incl[proc][f] += n
    for proc, total in totals.most_common(4):
        print(f"\n== {proc}: {total} samples")
        print("  self:")
        for f, n in per_proc[proc].most_common(top):
            print(f"   {100 * n / total:5.1f}%  {f[:140]}")
        print("  inclusive (project, json, websocket):")
        for f, n in incl[proc].most_common(top):
            print(f"   {100 * n / total:5.1f}%  {f[:140]}")


def record_while(pid: int, seconds: float, out: str, action) -> None:
    spy = subprocess.Popen(
        [
            PYSPY,
            "record",
            "-p",
            str(pid),
            "--subprocesses",
            "--threads",
            "-r",
            "250",
            "-d",
            str(seconds),
            "-f",
            "raw",
            "-o",
            out,
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    action()
    spy.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-")
    database = os.path.join(folder, "runs.sqlite3")
    replay_id = synthetic_run(database)
    server = LiveServer(database, env={"PLAYGROUND_FAULTS": "1", "PLAYGROUND_PER_CLIENT": "0"}).start()
    try:
        server.run_to_end("hello-threads", threads=1, delay_ms=0)  # warm pool

        def flood():
            t0 = time.perf_counter()
            started = server.start_run("fault", kind="event-flood")
            n = sum(len(m["events"]) for m in server.read_socket(started["id"]) if m["type"] == "events")
            print(f"flood: {n:,} events to a Python client in {time.perf_counter() - t0:.1f} s")

        out = os.path.join(folder, "flood.txt")
        record_while(server.proc.pid, args.seconds, out, flood)
        print("\n##### live event-flood (server + worker)")
        summarize(out)

        def replays():
            t_end = time.monotonic() + args.seconds - 2
            k = 0
            while time.monotonic() < t_end:
                server.read_socket(replay_id)
                k += 1
            print(f"replays: {k}")

        out = os.path.join(folder, "replay.txt")
        record_while(server.proc.pid, args.seconds, out, replays)
        print("\n##### replay of 100,000 events to a Python client (server)")
        summarize(out)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
