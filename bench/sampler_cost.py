"""The OS sampler's own cost at 1 kHz on a process with 64 threads.

    python bench/sampler_cost.py [--threads 64] [--spinning 4] [--seconds 5] [--repeat 3]

A child process starts ``--threads`` threads: most block (a lock, an Event,
sleeps of 1-50 ms, a pipe read) and ``--spinning`` of them run pure-Python
loops (so they hand the GIL around, as a real run does). This process runs the
project's ``Sampler`` on it, exactly as the supervisor does (1 ms interval, its
own thread), for ``--seconds``, and reads ``Sampler.statistics()``: mean cost
per sample, the sampler thread's CPU time / wall time (share of one core), and
the achieved interval. Median of ``--repeat`` runs. Target (issue 7): <= 10% of
one core, interval p50 <= 1.1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from common import load_average, record

from playground.sandbox.sampler import Sampler

CHILD = r"""
import os, sys, threading, time
n, spinning = int(sys.argv[1]), int(sys.argv[2])
threading.stack_size(512 * 1024)
lock = threading.Lock(); lock.acquire()
never = threading.Event()
r, w = os.pipe()
def spin():
    x = 0
    while True:
        for i in range(10000): x += i
def sleeper(ms):
    while True: time.sleep(ms / 1000)
kinds = []
for i in range(n - 1):
    if i < spinning: kinds.append((spin, ()))
    elif i % 4 == 0: kinds.append((lock.acquire, ()))
    elif i % 4 == 1: kinds.append((never.wait, ()))
    elif i % 4 == 2: kinds.append((sleeper, (1 + i % 50,)))
    else: kinds.append((os.read, (r, 1)))
for f, a in kinds: threading.Thread(target=f, args=a, daemon=True).start()
print(threading.active_count(), flush=True)
time.sleep(3600)
"""


def one(threads: int, spinning: int, seconds: float) -> dict:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(threads), str(spinning)], stdout=subprocess.PIPE, text=True
    )
    try:
        started = int(child.stdout.readline())
        events = []
        sampler = Sampler(child.pid, events.extend)
        sampler.start()
        time.sleep(seconds)
        sampler.stop()
        stats = sampler.statistics()
        stats["threads_alive"] = started
        stats["events"] = len(events)
        return stats
    finally:
        child.kill()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--spinning", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load0 = load_average()
    runs = [one(args.threads, args.spinning, args.seconds) for _ in range(args.repeat)]
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    rows = [
        (
            f"sampler at 1 kHz, {runs[0]['threads_alive']} threads ({args.spinning} spinning), {args.seconds:g} s, median of {args.repeat}",
            f"**{med('cpu_percent'):.1f}% of one core**, {med('cost_mean_us'):.0f} µs per sample, "
            f"interval p50 **{med('interval_p50_ms'):.2f} ms** / p95 {med('interval_p95_ms'):.2f} ms / mean {med('interval_mean_ms'):.2f} ms",
        ),
        (
            "each run: % of a core, µs/sample, p50 ms, samples, events",
            "; ".join(
                f"{r['cpu_percent']:.1f}%, {r['cost_mean_us']:.0f} µs, {r['interval_p50_ms']:.2f} ms, {r['samples']}, {r['events']}"
                for r in runs
            ),
        ),
        (
            "threads seen, errors, untracked",
            f"{runs[0]['threads_seen']}, {runs[0]['errors']}, {runs[0]['untracked_threads']}",
        ),
        ("load average before / after", f"{load0} / {load_average()}"),
    ]
    record(f"Sampler cost: {args.threads} threads at 1 kHz", rows)


if __name__ == "__main__":
    main()
