"""The command line: run an experiment without the server, or list the catalog.

    python -m playground list
    python -m playground run SLUG [--threads 8] [--PARAM VALUE ...] [--python ID] [--json]

``run`` takes the page's path: ``launch()`` validates with the one validator
(``check``) and the app's own pool, worker, limits and sampler run the
experiment. Nothing is served; the PLAYGROUND_* settings apply. The run is
stored in --database, or in a temporary file that goes away at exit.

Exit status: 0 the claim held, 1 it did not, 2 bad input, 3 the run gave no
verdict (failed, timed out, cancelled), 130 interrupted (the run is cancelled).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from . import experiments, textgantt
from .export import metric_rows

EXIT_HELD, EXIT_NOT_HELD, EXIT_BAD_INPUT, EXIT_NO_VERDICT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m playground",
        description="Run the Threading Playground's experiments in the terminal.",
        epilog=__doc__.split("\n\n", 3)[3],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="{run,list}")
    commands.add_parser("list", help="the experiments and their parameters", allow_abbrev=False)
    run = commands.add_parser(
        "run",
        help="run one experiment and show its result and chart",
        # allow_abbrev off: an experiment's --data must not be read as --database
        allow_abbrev=False,
        epilog="Experiment parameters go as --NAME VALUE (or --NAME=VALUE); `list` shows them.",
    )
    run.add_argument("slug", help="the experiment, e.g. hello-threads")
    run.add_argument("--python", help="interpreter id (PLAYGROUND_PYTHONS), e.g. 3.12")
    run.add_argument("--json", action="store_true", help="print the run as JSON (the /api/runs/<id> shape)")
    run.add_argument("--database", help="keep the run in this SQLite file (default: a temporary one)")
    run.add_argument("--width", type=int, default=60, help="characters of the text Gantt's time axis (default 60)")
    return top


def main(argv: list[str] | None = None) -> int:
    args, extras = parser().parse_known_args(argv)
    if args.command == "list":
        if extras:
            return _bad([f"list takes no arguments: {' '.join(extras)}"])
        _emit(catalog())
        return 0
    raw, problems = parse_params(extras)
    if args.python is not None:
        raw["python"] = args.python
    if problems or args.width < 10:
        return _bad(problems or ["--width must be at least 10"])
    return run(args, raw)


def parse_params(tokens: list[str]) -> tuple[dict, list[str]]:
    """``--name value`` / ``--name=value`` pairs as raw strings; the validator judges them."""
    raw, problems, i = {}, [], 0
    while i < len(tokens):
        name, eq, value = tokens[i].removeprefix("--").partition("=")
        if not tokens[i].startswith("--") or not name:
            problems.append(f"unexpected argument {tokens[i]!r}: parameters go as --name value")
        elif not eq and i + 1 >= len(tokens):
            problems.append(f"--{name} needs a value")
        else:
            if not eq:
                i, value = i + 1, tokens[i + 1]
            raw[name.replace("-", "_")] = value  # --delay-ms reads as delay_ms
        i += 1
    return raw, problems


def _bad(messages: list[str]) -> int:
    for message in messages:
        print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def catalog() -> str:
    lines = []
    for experiment in experiments.CATALOG:
        lines.append(f"{experiment.slug:<22} {experiment.summary}")
        for p in experiment.params:
            bounds = (
                "|".join(p.choices) if p.choices else f"{_num(p.min)}..{_num(p.max)}" if p.kind in (int, float) else ""
            )
            lines.append(f"    --{p.name} {p.default}" + (f"  ({bounds})" if bounds else "") + f"  {p.help}")
    return "\n".join(lines)


def _num(value) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def run(args, raw: dict) -> int:
    from .application import create_app  # Flask and the pool only for the command that runs
    from .web.launch import UnknownExperiment, launch

    with tempfile.TemporaryDirectory(prefix="playground-") as folder:
        database = args.database or os.path.join(folder, "runs.sqlite3")
        app = create_app({"DATABASE": database, "WORKERS": 1, "PER_CLIENT": 0})
        services = app.extensions["playground"]
        try:
            try:
                started, errors = launch(services, args.slug, raw)
            except UnknownExperiment:
                known = ", ".join(e.slug for e in experiments.CATALOG)
                return _bad([f"no experiment named {args.slug!r} (known: {known})"])
            if errors:
                return _bad([error.message for error in errors])
            if sys.stderr.isatty():
                print(f"running {args.slug} (run {started.id})...", file=sys.stderr, flush=True)
            try:
                _wait(started)
            except KeyboardInterrupt:
                services.pool.cancel(started)
                _wait(started, limit_s=10)
                print("interrupted: the run was cancelled", file=sys.stderr)
                return EXIT_INTERRUPTED
            summary = started.summary()
            code = exit_status(summary)
            if args.json:
                _emit(json.dumps(summary, indent=2))
            else:
                color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
                _emit(report(summary, list(started.events), width=args.width, color=color))
            return code
        finally:
            services.pool.close()
            services.store.close()


def _emit(text: str) -> None:
    """Print; a reader that went away (``| head``) is no failure of the run."""
    try:
        print(text, flush=True)
    except BrokenPipeError:  # point stdout at /dev/null, or the flush at exit fails again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _wait(run, limit_s: float | None = None) -> None:
    """Until the run's end is durable; ``follow`` is the viewers' own wait."""
    cursor, version, waited = 0, -1, 0.0
    while limit_s is None or waited < limit_s:
        new, _, version, finished = run.follow(cursor, version, timeout=0.5)
        cursor, waited = cursor + len(new), waited + 0.5
        if finished:
            return


def exit_status(summary: dict) -> int:
    result = summary.get("result")
    if not result:
        return EXIT_NO_VERDICT
    return EXIT_HELD if result["held"] else EXIT_NOT_HELD


def report(summary: dict, events: list, *, width: int = 60, color: bool = False) -> str:
    """What the result panel says, then the text Gantt."""
    info = summary.get("interpreter") or {}
    python = f"Python {info['version']} (GIL {'on' if info.get('gil_enabled', True) else 'off'})" if info else ""
    lines = [" · ".join(x for x in (summary["experiment"], f"run {summary['id']}", python, summary["state"]) if x)]
    result = summary.get("result")
    if result:
        lines += [
            f"claim: {result['claim']}",
            f"held:  {'true' if result['held'] else 'false'}",
            f"why:   {result['why']}",
        ]
        found = experiments.get(summary["experiment"], hidden=True)
        rows = metric_rows(summary, found.schema()["metrics"] if found else ())
        lines += ["", *_table(("metric", "value", "unit", "meaning"), rows)]
    else:
        lines.append(f"The run ended as {summary['state'].replace('_', ' ')}: {summary['reason']}")
        if summary.get("output"):
            lines += ["", "output (last lines):", *summary["output"].rstrip().splitlines()[-15:]]
    lines += ["", textgantt.render(summary, events, width=width, color=color)]
    return "\n".join(lines)


def _table(header: tuple, rows: list) -> list[str]:
    cells = [header] + [tuple(textgantt.printable(_text(v)) for v in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip() for row in cells
    ]


def _text(value) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)
