"""Server memory: RSS when idle, and whether it stays flat over 1,000 runs.

    python bench/memory.py [--runs 1000] [--batch 50]

Starts ``python app.py`` (PLAYGROUND_PER_CLIENT=0, so one client may queue a
whole batch), reads its RSS from /proc/<pid>/status when idle (after a first
warm-up run, so the worker pool exists), then starts hello-threads
(threads=1, delay_ms=0) runs ``--batch`` at a time, waits for each batch to
finish, and samples RSS every 100 runs. The workers are separate processes:
this is the server's own memory only. Targets (issue 7): <= 120 MB idle,
flat after 1,000 runs. "Flat" here: RSS over the last 500 runs grows by less
than 1% (the sample 500 runs before the end to the last one; with
``--runs 1000`` that is runs 500 to 1,000, after the warm-up).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import tempfile
import time

import requests
from common import LiveServer, load_average, record, wait_done


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    load0 = load_average()
    database = os.path.join(tempfile.mkdtemp(prefix="bench-"), "runs.sqlite3")
    server = LiveServer(database, env={"PLAYGROUND_PER_CLIENT": "0"}).start()
    pid = server.proc.pid
    rows = []
    try:
        time.sleep(1)
        rss_start = rss_mb(pid)
        wait_done(server, server.start_run("hello-threads", threads=1, delay_ms=0)["id"])
        time.sleep(1)
        idle = rss_mb(pid)
        samples = [(0, idle)]
        done, failed = 0, 0
        t0 = time.perf_counter()
        session = requests.Session()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            while done < args.runs:
                n = min(args.batch, args.runs - done)

                def start(_):
                    r = session.post(
                        f"{server.url}/runs",
                        json={"experiment": "hello-threads", "params": {"threads": 1, "delay_ms": 0}},
                        timeout=30,
                    )
                    r.raise_for_status()
                    return r.json()["id"]

                ids = list(pool.map(start, range(n)))
                for run_id in ids:
                    if wait_done(server, run_id, timeout=300)["state"] != "done":
                        failed += 1
                before = done
                done += n
                if done // 100 > before // 100:
                    samples.append((done, rss_mb(pid)))
                    print(f"{done} runs: {samples[-1][1]:.1f} MB", flush=True)
        seconds = time.perf_counter() - t0
        time.sleep(2)
        final = rss_mb(pid)
        by_runs = dict(samples)
        mark = max((n for n in by_runs if n <= args.runs - 500), default=0)
        last500 = samples[-1][1] - by_runs[mark]
        rows.append(("server RSS at start / idle after one run (warm pool)", f"{rss_start:.1f} / **{idle:.1f} MB**"))
        rows.append(
            (
                f"RSS every 100 runs ({args.runs} hello-threads runs, {args.batch} at a time, {failed} not done, {seconds:.0f} s)",
                ", ".join(f"{m:.1f}" for _, m in samples) + " MB",
            )
        )
        rows.append(
            (
                f"growth: idle to after all runs (2 s later); runs {mark:,} to {samples[-1][0]:,} (flat: < 1%)",
                f"**{final - idle:+.1f} MB** ({final:.1f} MB); **{last500:+.1f} MB ({100 * last500 / by_runs[mark]:+.1f}%)**",
            )
        )
        rows.append(("load average before / after", f"{load0} / {load_average()}"))
    finally:
        server.stop()
    record("Server memory: idle RSS and over 1,000 runs", rows)


if __name__ == "__main__":
    main()
