"""How the *plain* program's context switches depend on how its run begins.

    python bench/plain_start.py [--runs 15] [--only SLUG]

No observer anywhere: perturbation.py's plain side (the experiment's own
``run()`` with a do-nothing probe), started three ways, in alternating rounds:

- ``immediate``: runs straight after its imports (perturbation.py's plain side
  until 2026-11-25);
- ``pool``: as a pool worker gets its job: started at nice 19, says it is
  ready, idles, runs when a line comes on its stdin (perturbation.py now);
- ``immediate, other core busy``: as ``immediate``, while another process spins
  at nice 19.

Voluntary switches in these experiments are mostly GIL hand-offs after a
wake-up, and whether a woken thread finds the GIL still held depends on where
and how soon it runs: on what the CPUs were doing just before. The spread
between these rows is the noise any observer-effect figure must be read
against, and the reason the plain side now starts as the worker does.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from common import case_label, load_average, quartiles, record, run_child
from perturbation import CASES, plain_code, plain_run

SPINNER = "import os\nos.nice(19)\nwhile True: pass"


def busy_other_core(slug: str, params: dict) -> int:
    spinner = subprocess.Popen([sys.executable, "-c", SPINNER])
    try:
        return run_child(plain_code(slug, params, "immediate"))["voluntary"]
    finally:
        spinner.kill()
        spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", help="run only the cases of this experiment slug")
    args = parser.parse_args()
    load0 = load_average()
    starts = {
        "immediate": lambda slug, params: run_child(plain_code(slug, params, "immediate"))["voluntary"],
        "pool": lambda slug, params: plain_run(slug, params, "pool")["voluntary"],
        "immediate, other core busy": busy_other_core,
    }
    rows = []
    for slug, params, _ in CASES:
        if args.only and slug != args.only:
            continue
        counts = {name: [] for name in starts}
        for _ in range(args.runs):
            for name, start in starts.items():
                counts[name].append(start(slug, params))
        for name, values in counts.items():
            rows.append(
                (
                    f"{case_label(slug, params)}, plain, {name} (median of {args.runs})",
                    f"**{statistics.median(values):g}** voluntary switches (quartiles {quartiles(values)})",
                )
            )
    rows.append(("load average before / after", f"{load0} / {load_average()}"))
    record("The plain program alone, started three ways", rows)


if __name__ == "__main__":
    main()
