"""Run every benchmark in turn; each prints its figures and appends them to bench/RESULTS.md.

    python bench/run_all.py [--quick] [--skip NAME ...]

The machine is shared: each script notes the load average beside its figures.
``--quick`` uses fewer repeats (a smoke run, not figures to quote). Order: the
cheap in-process ones first, the server and browser ones after, load last.
profile_live.py (py-spy) is not part of it: run it by hand to see where time goes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

BENCHMARKS = [
    ("event_cost", [], ["--repeat", "3"]),
    ("storage", [], ["--repeat", "3"]),
    ("sampler_cost", [], ["--repeat", "1", "--seconds", "2"]),
    ("perturbation", ["--runs", "10"], ["--runs", "3"]),
    ("switches", ["--runs", "7"], ["--runs", "2"]),
    ("gantt_render", [], ["--repeat", "2"]),
    ("live_path", [], ["--clicks", "5", "--latency-runs", "1", "--floods", "1"]),
    ("memory", [], ["--runs", "200"]),
    (
        "load",
        ["--server", "werkzeug"],
        ["--server", "werkzeug", "--max-sockets", "500", "--viewers", "50", "--idle", "100"],
    ),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args()
    failed = []
    for name, full, quick in BENCHMARKS:
        if name in args.skip:
            continue
        cmd = [sys.executable, os.path.join(HERE, f"{name}.py"), *(quick if args.quick else full)]
        print(f"\n=== {name}: {' '.join(cmd[1:])}  (load {open('/proc/loadavg').read().split()[0]})", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(cmd, cwd=os.path.dirname(HERE))
        print(f"=== {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
