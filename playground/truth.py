"""The truth matrix: how often each experiment's claim holds, on each interpreter.

    python -m playground.truth [--runs K] [--only SLUG ...] [--write docs/truth.md]

Runs every experiment at its defaults (and its declared ``cases``) K times on every configured interpreter
(PLAYGROUND_PYTHONS, or the pyenv interpreters with --pyenv), through the same
pool, worker, limits and sampler the server uses, and prints a table:
experiment x interpreter, claims held / runs, and the median of the
experiment's first metrics. Nothing is hard-coded: the table is what ran.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from . import experiments
from .application import create_app


def pyenv_pythons() -> list[str]:
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin/python3")))
    return [p for p in found if os.access(p, os.X_OK)]


def cases(only: list[str] | None = None):
    """(experiment, params) for every experiment's defaults and its declared cases."""
    for experiment in experiments.CATALOG:
        if not only or experiment.slug in only:
            for case in ({}, *experiment.cases):
                yield experiment, case


def case_label(experiment, case: dict) -> str:
    return experiment.slug + ("?" + "&".join(f"{k}={v}" for k, v in case.items()) if case else "")


def run_matrix(pythons: list[str], runs: int, only: list[str] | None, progress=print) -> tuple[list, list]:
    """Returns (interpreters, rows); each row: (slug, {interpreter id: (held, total, medians)})."""
    folder = tempfile.mkdtemp(prefix="truth-")
    app = create_app({"DATABASE": os.path.join(folder, "truth.sqlite3"), "PYTHONS": pythons, "WORKERS": 1})
    services = app.extensions["playground"]
    interpreters = services.interpreters.usable()
    rows = []
    try:
        for experiment, case in cases(only):
            cells = {}
            for interpreter in interpreters:
                if interpreter.missing(experiment.requires):
                    cells[interpreter.id] = None
                    continue
                outcomes = []
                for _ in range(runs):
                    values = experiments.validate_or_raise(experiment.params, case)
                    run = services.runs.create(experiment.slug, {**values, "python": interpreter.id})
                    services.pool.submit(run)
                    while not run.state.finished:
                        time.sleep(0.02)
                    outcomes.append(run)
                # A verdict can come from the run (done) or the supervisor (deadlocked).
                held = sum(1 for r in outcomes if r.result and r.result.get("held"))
                first = [m.name for m in experiment.metrics[:2]]
                medians = {
                    name: statistics.median(r.result["metrics"][name] for r in outcomes if r.result)
                    for name in first
                    if any(r.result for r in outcomes)
                }
                cells[interpreter.id] = (held, len(outcomes), medians)
                progress(f"{case_label(experiment, case):40} {interpreter.id:8} held {held}/{len(outcomes)}")
            rows.append((case_label(experiment, case), cells))
    finally:
        services.pool.close()
    return interpreters, rows


def render(interpreters, rows, runs: int) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = "?"
    head = ["experiment"] + [f"{i.id} ({i.version}, GIL {'on' if i.gil_enabled else 'off'})" for i in interpreters]
    lines = [
        f"Truth matrix: {stamp}, rev {rev}, {os.cpu_count()} cores, {cpu}, Linux {platform.release()}.",
        f"Each cell: runs whose claim held / runs at the defaults ({runs} per cell), then medians of the first metrics.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + " --- |" * len(head),
    ]
    for slug, cells in rows:
        out = [f"`{slug}`"]  # slug plus the case's query string
        for interpreter in interpreters:
            cell = cells.get(interpreter.id)
            if cell is None:
                out.append("unavailable")
                continue
            held, total, medians = cell
            figures = ", ".join(f"{k} {v:g}" for k, v in medians.items())
            out.append(f"**{held}/{total}** {figures}")
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per experiment and interpreter (default 20)")
    parser.add_argument("--only", nargs="*", help="only these experiment slugs")
    parser.add_argument(
        "--pyenv", action="store_true", help="use every pyenv CPython 3.10+ instead of PLAYGROUND_PYTHONS"
    )
    parser.add_argument("--write", metavar="FILE", help="also write the table (markdown) to FILE")
    args = parser.parse_args(argv)
    pythons = pyenv_pythons() if args.pyenv else (os.environ.get("PLAYGROUND_PYTHONS", sys.executable).split(","))
    interpreters, rows = run_matrix(pythons, args.runs, args.only, progress=lambda line: print(line, file=sys.stderr))
    table = render(interpreters, rows, args.runs)
    print(table)
    if args.write:
        with open(args.write, "w") as f:
            f.write("# Truth matrix\n\nMade by `python -m playground.truth`; see that module for how.\n\n" + table)
    below = [(slug, i) for slug, cells in rows for i, c in cells.items() if c and c[0] < 0.95 * c[1]]
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
