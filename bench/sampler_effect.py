"""What the /proc sampler alone does to a program's context switches.

    python bench/sampler_effect.py [--runs 15] [--only SLUG] [--after-ms=1[,-1,...]] [--tick-ms=1[,10,...]]

perturbation.py compares the whole observed run (worker, recorder, sampler)
with the plain program. This script leaves the worker out: the plain program
(perturbation.py's plain side) runs twice per round, once alone and once
watched by the server's own ``Sampler`` from this process, started before the
program's run begins (the child waits for a line on stdin). Medians and
quartiles of the child's voluntary context switches over its run.

A third arm, ``ticked``, is a thread here that wakes on the sampler's 1 ms
schedule and reads nothing: what the sampler's wake-ups alone do to the
watched program (a core kept busy changes how soon a woken thread reaches the
GIL), apart from its reads of /proc. ``--tick-ms`` runs it once per interval.

``--after-ms`` runs the watched arm once per value: where the sampler resumes
after a pause, in ms after the earliest sleeper's deadline (quiet.AFTER_NS;
negative: before it). The default is what the server does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from common import case_label, load_average, mean_ratio, quartiles, record
from perturbation import CASES, plain_code

from playground.sandbox import quiet
from playground.sandbox.process_memory import ProcessMemory
from playground.sandbox.sampler import Sampler


def child_code(slug: str, params: dict) -> str:
    code = plain_code(slug, params, start="immediate")
    return code.replace("u0 = resource.getrusage", "sys.stdin.readline(); u0 = resource.getrusage")


class Ticker:
    """Wakes on the Sampler's schedule (1 ms deadlines, the same sleep) and reads nothing."""

    def __init__(self, pid: int, interval_s: float = 0.001):
        self._interval, self._stopping = int(interval_s * 1e9), False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._thread.join()

    def _run(self) -> None:
        start, k = time.perf_counter_ns(), 0
        while not self._stopping:
            now = time.perf_counter_ns()
            k = max(k + 1, (now - start) // self._interval + 1)
            time.sleep(min(max(start + k * self._interval - now, 0), self._interval) / 1e9)


def watched(pid: int) -> Sampler:
    # As the server builds it: with the worker's memory, where sleepers keep their deadlines (quiet.py).
    return Sampler(pid, lambda batch: None, memory=ProcessMemory(pid))


def one(code: str, watcher) -> tuple[int, int]:
    """One run of ``code`` -> (its voluntary switches, the sampler's pauses: 0 for the other arms)."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    child = subprocess.Popen(
        [sys.executable, "-s", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    time.sleep(0.4)  # its imports are done; it waits for the line
    sampler = watcher(child.pid) if watcher else None
    if sampler is not None:
        sampler.start()
        time.sleep(0.05)
    child.stdin.write("\n")
    child.stdin.flush()
    out = child.stdout.read()
    child.wait()
    if sampler is not None:
        sampler.stop()
    pauses = sampler.statistics()["pauses"] if isinstance(sampler, Sampler) else 0
    return json.loads(out.strip().splitlines()[-1])["voluntary"], pauses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", help="run only the cases of this experiment slug")
    parser.add_argument(
        "--after-ms",
        default=f"{quiet.AFTER_NS / 1e6:g}",
        help="comma-separated: resume this long after the earliest deadline (negative: before); one arm each",
    )
    parser.add_argument("--tick-ms", default="1", help="comma-separated: the ticked arm's intervals, one arm each")
    args = parser.parse_args()
    afters = [float(x) for x in args.after_ms.split(",")]
    arms = {"alone": (None, None)}
    for ms in (float(x) for x in args.tick_ms.split(",")):
        arms[f"ticked every {ms:g} ms"] = (lambda pid, s=ms / 1e3: Ticker(pid, s), None)
    arms.update({f"watched, resuming {a:+g} ms": (watched, a) for a in afters})
    load0 = load_average()
    rows = []
    for slug, params, _ in CASES:
        if args.only and slug != args.only:
            continue
        code = child_code(slug, params)
        counts, pauses = {name: [] for name in arms}, {name: [] for name in arms}
        for _ in range(args.runs):  # alternating, so machine noise hits every arm alike
            for name, (watcher, after_ms) in arms.items():
                if after_ms is not None:
                    quiet.AFTER_NS = int(after_ms * 1e6)
                switches, paused = one(code, watcher)
                counts[name].append(switches)
                pauses[name].append(paused)
        label = case_label(slug, params)
        alone = counts["alone"]
        for name in [n for n in arms if n != "alone"]:
            values = counts[name]
            mw, ma = statistics.median(values), statistics.median(alone)
            rows.append(
                (
                    f"{label}: voluntary switches, {name} / alone (median of {args.runs})",
                    f"{mw:g} / {ma:g} = **{mw / ma:.3f}x** (quartiles: {name} {quartiles(values)},"
                    f" alone {quartiles(alone)}); means **{mean_ratio(values, alone)}**"
                    + (
                        f"; it paused {statistics.median(pauses[name]):g} times a run"
                        if name.startswith("watched")
                        else ""
                    ),
                )
            )
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    record("The /proc sampler alone: a plain program watched vs not", rows)


if __name__ == "__main__":
    main()
