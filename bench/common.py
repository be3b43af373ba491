"""Shared by the benchmark scripts: machine description, a server to measure,
and appending figures to bench/RESULTS.md. Benchmarks are not tests: they
print figures and record them; nothing here passes or fails."""

from __future__ import annotations

import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from conftest import CHROMIUM_ARGS, LiveServer  # noqa: E402,F401  (the same server and browser the tests use)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}, Python {platform.python_version()}"


def revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def record(title: str, rows: list[tuple[str, str]]) -> None:
    """Print the figures and append them to bench/RESULTS.md."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n### {title}", f"{stamp} · rev {revision()} · {machine()}", "", "| what | figure |", "| --- | --- |"]
    lines += [f"| {what} | {figure} |" for what, figure in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
        f.write(text)


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages: other work on this shared machine skews every figure."""
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def wait_done(server: LiveServer, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = requests.get(f"{server.url}/api/runs/{run_id}", timeout=5).json()
        if run["state"] not in ("queued", "running"):
            return run
        time.sleep(0.05)
    raise TimeoutError(run_id)


def wait_idle(server: LiveServer, timeout: float = 10) -> None:
    """Until the pool has its warm workers again: a run's end starts a replacement worker
    (an interpreter's start, ~0.3 s of CPU), and a plain program run meanwhile shares the
    machine with it, where the observed run never does. Bounded: a slow refill only ends the wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool = requests.get(f"{server.url}/healthz", timeout=5).json()["pool"]
        if pool["warm"] >= pool["workers"] and not pool["busy"]:
            return
        time.sleep(0.05)


# The probe an experiment gets when nothing observes it: phases are timed, nothing is recorded.
# Pasted (str.format) into the child programs of perturbation.py and switches.py, after their
# imports of time and interpreter_info.
NULL_PROBE = """
class Phase:
    def __init__(self): self.wall_ns = self.cpu_ns = 0
    def __enter__(self):
        self.w, self.c = time.perf_counter_ns(), time.process_time_ns(); return self
    def __exit__(self, *a):
        self.wall_ns, self.cpu_ns = time.perf_counter_ns() - self.w, time.process_time_ns() - self.c
    wall_ms = property(lambda self: self.wall_ns / 1e6)
    cpu_ms = property(lambda self: self.cpu_ns / 1e6)

class NullProbe:
    interpreter = interpreter_info()
    t0 = time.perf_counter_ns()  # race-condition's widened variant dates its reads from it
    def phase(self, label): return Phase()
    def count(self, *a): pass
    def mark(self, *a): pass
"""


def quartiles(values) -> str:
    """``16.5-21.75``: the middle half of a figure's runs, beside its median in RESULTS.md."""
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:g}-{q[2]:g}"


def mean_ratio(observed, plain, rounds: int = 2000) -> str:
    """``1.042x (95%: 0.981-1.106)``: mean over mean, with a bootstrap interval.

    A median of ~19 switches moves in whole switches, 5% a step, so two batches of
    the same code read 1.000x and 1.105x. The mean is not stepped, and the interval
    (resampling each side's runs, fixed seed) says how far one batch can be trusted.
    """
    rng = random.Random(0)
    ratios = sorted(
        statistics.fmean(rng.choices(observed, k=len(observed))) / statistics.fmean(rng.choices(plain, k=len(plain)))
        for _ in range(rounds)
    )
    low, high = ratios[int(0.025 * rounds)], ratios[int(0.975 * rounds) - 1]
    return f"{statistics.fmean(observed) / statistics.fmean(plain):.3f}x (95%: {low:.3f}-{high:.3f})"


def case_label(slug: str, params: dict) -> str:
    """``deadlock?variant=ordered&threads=4``: how a case is named in RESULTS.md."""
    return slug + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def run_child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (as the pool's workers are set up) -> its last line, as JSON."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    out = subprocess.run([sys.executable, "-s", "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
