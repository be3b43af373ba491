"""What the /proc sampler alone does to a program's context switches.

    python bench/sampler_effect.py [--runs 15] [--only SLUG]

perturbation.py compares the whole observed run (worker, recorder, sampler)
with the plain program. This script leaves the worker out: the plain program
(perturbation.py's plain side) runs twice per round, once alone and once
watched by the server's own ``Sampler`` from this process, started before the
program's run begins (the child waits for a line on stdin). Medians and
quartiles of the child's voluntary context switches over its run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import case_label, load_average, quartiles, record
from perturbation import CASES, plain_code

from playground.sandbox.sampler import Sampler


def child_code(slug: str, params: dict) -> str:
    code = plain_code(slug, params, start="immediate")
    return code.replace("u0 = resource.getrusage", "sys.stdin.readline(); u0 = resource.getrusage")


def one(code: str, sampled: bool) -> int:
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    child = subprocess.Popen(
        [sys.executable, "-s", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    time.sleep(0.4)  # its imports are done; it waits for the line
    sampler = Sampler(child.pid, lambda batch: None) if sampled else None
    if sampler is not None:
        sampler.start()
        time.sleep(0.05)
    child.stdin.write("\n")
    child.stdin.flush()
    out = child.stdout.read()
    child.wait()
    if sampler is not None:
        sampler.stop()
    return json.loads(out.strip().splitlines()[-1])["voluntary"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", help="run only the cases of this experiment slug")
    args = parser.parse_args()
    load0 = load_average()
    rows = []
    for slug, params, _ in CASES:
        if args.only and slug != args.only:
            continue
        code = child_code(slug, params)
        alone, watched = [], []
        for _ in range(args.runs):  # alternating, so machine noise hits both alike
            alone.append(one(code, False))
            watched.append(one(code, True))
        label = case_label(slug, params)
        ma, mw = statistics.median(alone), statistics.median(watched)
        rows.append(
            (
                f"{label}: voluntary switches, watched by the sampler / alone (median of {args.runs})",
                f"{mw:g} / {ma:g} = **{mw / ma:.3f}x** (quartiles: watched {quartiles(watched)}, alone {quartiles(alone)})",
            )
        )
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    record("The /proc sampler alone: a plain program watched vs not", rows)


if __name__ == "__main__":
    main()
