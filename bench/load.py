"""Load at workshop scale and beyond: sockets held, fan-out latency, pages under a full pool.

    python bench/load.py [--server werkzeug|gunicorn|both] [--viewers 200] [--idle 1000] [--max-sockets 2000]

For each server (``python app.py``'s Werkzeug, gunicorn gthread -w 1):

1. Sockets held: idle WebSocket connections (handshaken, never read, on a run
   waiting in the queue) added 250 at a time up to ``--max-sockets`` or the
   first failure; the server's threads and memory, handshake and /healthz times.
2. Fan-out: ``--viewers`` viewers of one run, alone and beside ``--idle``
   sockets on the same run that never read (the run's messages wait in their
   kernel buffers). Event latency is a viewer's arrival time minus the event's own time
   (both CLOCK_MONOTONIC), offset so the fastest delivery of the run is 0: it
   includes the worker's and the server's batching (30 ms). Spread is the
   arrival at one viewer minus the first arrival of the same message at any.
3. Pages while the pool is saturated: ``--clients`` clients (one loopback
   address each) start runs at once; meanwhile pages are fetched 8 at a time.
4. A never-reading client: a run's wall time with and without it, and when it was dropped.

Everything goes to 127.0.0.1 (and 127.0.0.x for distinct clients); every loop is
bounded in count and time. Figures are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import tempfile
import time

import requests
from common import LiveServer, percentile, record, wait_done
from test_gunicorn import GunicornServer
from test_load import (
    BIG_RUN_ID,
    Viewer,
    big_stored_run,
    connect_many,
    hold_the_pool,
    post_run_from,
    raise_open_files_limit,
    read_until_end,
)

from playground.web.stream import SEND_TIMEOUT_S


def port_of(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def server_pid(server: LiveServer) -> int:
    """The process that holds the sockets: app.py itself, or gunicorn's one worker."""
    if isinstance(server, GunicornServer):
        children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
        return int(children[0])
    return server.proc.pid


def threads_and_rss(pid: int) -> tuple[int, float]:
    threads, rss = 0, 0.0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return threads, rss


def timed_get(url: str) -> float:
    t0 = time.perf_counter()
    requests.get(url, timeout=30).raise_for_status()
    return (time.perf_counter() - t0) * 1000


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.0f} ms, p99 {percentile(values, 99):.0f} ms, max {max(values):.0f} ms"


def start(kind: str, database: str, sockets: int) -> LiveServer:
    env = {"PLAYGROUND_WORKERS": "1"}
    if kind == "gunicorn":
        return GunicornServer(database, env=env, threads=sockets + 100).start()
    return LiveServer(database, env=env).start()


# 1 -------------------------------------------------------------------------------------


def sockets_held(kind: str, folder: str, max_sockets: int) -> list[tuple[str, str]]:
    server = start(kind, os.path.join(folder, f"capacity-{kind}.sqlite3"), max_sockets)
    held: list[Viewer] = []
    rows, failure = [], ""
    try:
        blocker = hold_the_pool(server)
        waiting = server.start_run("io-bound", threads=32, sleep_ms=500)  # queued behind it: its viewers idle
        path = f"/runs/{waiting['id']}/events"
        deadline = time.monotonic() + 120
        steps = []
        while len(held) < max_sockets and time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                held += connect_many(port_of(server), path, min(250, max_sockets - len(held)), timeout=10)
            except OSError as exc:
                failure = f"{type(exc).__name__}: {exc}"
                break
            step_s = time.perf_counter() - t0
            health_ms = timed_get(server.url + "/healthz")
            steps.append(f"{len(held)}: {step_s * 1000 / 250:.1f} ms/handshake, healthz {health_ms:.0f} ms")
        threads, rss = threads_and_rss(server_pid(server))
        rows.append(
            (
                f"{kind}: idle WebSockets held at once (asked for {max_sockets})",
                f"{len(held):,}"
                + (f", then {failure}" if failure else "")
                + f"; server {threads:,} threads, {rss:,.0f} MB RSS",
            )
        )
        rows.append((f"{kind}: per 250 sockets added", "; ".join(steps)))
        requests.post(f"{server.url}/runs/{waiting['id']}/cancel", json={}, timeout=30)
        requests.post(f"{server.url}/runs/{blocker['id']}/cancel", json={}, timeout=30)
    finally:
        for viewer in held:
            viewer.close()
        server.stop()
    return rows


# 2 -------------------------------------------------------------------------------------


def latencies(viewers: list[Viewer]) -> tuple[list[float], list[float]]:
    """(event latency ms, spread ms) over every event every viewer got."""
    arrivals = []  # (viewer, message index, arrival ns, [event t_ns])
    for n, viewer in enumerate(viewers):
        index = 0
        for arrived, message in viewer.messages:
            if message["type"] == "events":
                arrivals.append((n, index, arrived, [e[0] for e in message["events"]]))
                index += 1
    offset = min(arrived - t for _, _, arrived, ts in arrivals for t in ts)
    first: dict[int, int] = {}
    for _, index, arrived, _ in arrivals:
        first[index] = min(first.get(index, arrived), arrived)
    latency = [(arrived - t - offset) / 1e6 for _, _, arrived, ts in arrivals for t in ts]
    spread = [(arrived - first[index]) / 1e6 for _, index, arrived, _ in arrivals]
    return latency, spread


def fan_out(kind: str, folder: str, viewer_count: int, idle_count: int) -> list[tuple[str, str]]:
    server = start(kind, os.path.join(folder, f"fanout-{kind}.sqlite3"), viewer_count + idle_count)
    rows, everyone = [], []
    try:
        for count, idle in ((1, 0), (viewer_count, 0), (viewer_count, idle_count)):
            blocker = hold_the_pool(server)
            run = server.start_run("cpu-bound", threads=8, iterations=10_000_000)
            path = f"/runs/{run['id']}/events"
            everyone = connect_many(port_of(server), path, idle) if idle else []
            viewers = connect_many(port_of(server), path, count)
            everyone += viewers
            requests.post(f"{server.url}/runs/{blocker['id']}/cancel", json={}, timeout=30)
            read_until_end(viewers, timeout=120)
            stored = wait_done(server, run["id"])
            counts = {sum(len(m["events"]) for _, m in v.messages if m["type"] == "events") for v in viewers}
            latency, spread = latencies(viewers)
            label = f"{kind}: {count} viewer{'s' if count > 1 else ''}" + (
                f" + {idle} never-reading sockets" if idle else ""
            )
            rows.append(
                (
                    f"{label}, cpu-bound 8 threads, {stored['counts']['events']:,} events in "
                    f"{stored['finished_at'] - stored['started_at']:.1f} s ({stored['state']})",
                    f"event latency {ms(latency)}; spread {ms(spread)}; "
                    f"every viewer got {'all' if counts == {stored['counts']['events']} else counts} events",
                )
            )
            for viewer in everyone:
                viewer.close()
            everyone = []
    finally:
        for viewer in everyone:
            viewer.close()
        server.stop()
    return rows


# 3 -------------------------------------------------------------------------------------


def pages_under_load(kind: str, folder: str, clients: int) -> list[tuple[str, str]]:
    server = start(kind, os.path.join(folder, f"pages-{kind}.sqlite3"), clients + 50)
    rows, viewers = [], []
    urls = ["/", "/experiments/cpu-bound?threads=4", "/api/experiments", "/healthz"]
    try:
        idle = [timed_get(server.url + urls[i % len(urls)]) for i in range(100)]
        rows.append((f"{kind}: page loads, pool idle (100, one at a time)", ms(idle)))

        def post(n):
            return post_run_from(
                f"127.0.{1 + n // 250}.{2 + n % 250}", port_of(server), "io-bound", {"threads": 4, "sleep_ms": 50}
            )

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(min(clients, 64)) as executor:
            answers = list(executor.map(post, range(clients)))
        post_s = time.perf_counter() - t0
        refused = [status for status, _ in answers if status != 201]
        ids = [body["id"] for status, body in answers if status == 201]
        viewers = [Viewer(port_of(server), f"/runs/{run_id}/events").handshake() for run_id in ids]
        loads = []
        deadline = time.monotonic() + 60
        with concurrent.futures.ThreadPoolExecutor(8) as executor:
            while len(loads) < 400 and time.monotonic() < deadline:
                loads += executor.map(timed_get, [server.url + u for u in urls] * 2)
        read_until_end(viewers, timeout=300)
        done_s = time.perf_counter() - t0
        states = [next(m for _, m in v.messages if m["type"] == "result")["state"] for v in viewers]
        places = [max((m["position"] or 0) for _, m in v.messages if m["type"] == "status") for v in viewers]
        rows.append(
            (
                f"{kind}: {clients} clients start runs at once",
                f"{len(ids)} accepted in {post_s * 1000:.0f} ms, {len(refused)} refused {sorted(set(refused))}; "
                f"{states.count('done')} done after {done_s:.1f} s; deepest place shown {max(places)}",
            )
        )
        rows.append((f"{kind}: page loads while they queue and run ({len(loads)}, 8 at a time)", ms(loads)))
    finally:
        for viewer in viewers:
            viewer.close()
        server.stop()
    return rows


# 4 -------------------------------------------------------------------------------------


def slow_reader(kind: str, folder: str) -> list[tuple[str, str]]:
    database = os.path.join(folder, f"slow-{kind}.sqlite3")
    big_stored_run(database)
    server = start(kind, database, 100)
    try:

        def watched(viewers: int) -> float:
            blocker = hold_the_pool(server)
            run = server.start_run("cpu-bound", threads=4, iterations=15_000_000)
            watching = connect_many(port_of(server), f"/runs/{run['id']}/events", viewers)
            requests.post(f"{server.url}/runs/{blocker['id']}/cancel", json={}, timeout=30)
            read_until_end(watching, timeout=120)
            for viewer in watching:
                viewer.close()
            stored = wait_done(server, run["id"])
            return stored["finished_at"] - stored["started_at"]

        alone = watched(20)
        slow = Viewer(port_of(server), f"/runs/{BIG_RUN_ID}/events", rcvbuf=4096).handshake()
        t0 = time.monotonic()
        beside = watched(20)
        while "dropped a viewer" not in open(database + ".log", errors="replace").read():
            if time.monotonic() - t0 > SEND_TIMEOUT_S + 30:
                break
            time.sleep(0.1)
        dropped_s = time.monotonic() - t0
        slow.close()
        return [
            (
                f"{kind}: run watched by 20, without / beside a never-reading client",
                f"{alone:.2f} s / {beside:.2f} s (ratio {beside / alone:.2f}); the client dropped after {dropped_s:.1f} s "
                f"(bound {SEND_TIMEOUT_S:g} s)",
            )
        ]
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=["werkzeug", "gunicorn", "both"], default="both")
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--max-sockets", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=60)
    args = parser.parse_args()
    limit = raise_open_files_limit(2 * args.max_sockets + 2 * args.viewers + 2 * args.idle + 500)
    folder = tempfile.mkdtemp(prefix="bench-load-")
    rows = [
        ("open files limit (this process and its servers)", f"{limit:,}"),
        ("load average when it started (other work on this machine skews every figure)", f"{os.getloadavg()[0]:.1f}"),
    ]
    for kind in ("werkzeug", "gunicorn") if args.server == "both" else (args.server,):
        if args.max_sockets:
            rows += sockets_held(kind, folder, args.max_sockets)
        rows += fan_out(kind, folder, args.viewers, args.idle)
        rows += pages_under_load(kind, folder, args.clients)
        rows += slow_reader(kind, folder)
    record("Load: sockets held, fan-out latency, pages under a full pool, a never-reading client", rows)


if __name__ == "__main__":
    main()
