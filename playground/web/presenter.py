"""What the templates need, computed in one place: form fields with their
values and errors, the highlighted code, the state legend."""

from __future__ import annotations

import functools

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

STATE_LEGEND = (
    ("running", "running", "on a CPU; on a GIL build, holding the GIL"),
    ("gil", "waiting for the GIL", "runnable, but another thread holds the GIL"),
    ("lock", "blocked on a lock", "waiting on a Lock, RLock, Condition, Semaphore, Event or Queue"),
    ("sleep", "sleeping", "in time.sleep"),
    ("io", "in I/O", "blocked on a socket, pipe, file, select or poll"),
)


@functools.lru_cache(maxsize=64)
def highlighted(source: str) -> str:
    return highlight(source, PythonLexer(), HtmlFormatter(cssclass="code", linenos="table"))


def form_fields(params: tuple, raw: dict, errors: list) -> tuple[list[dict], list[str]]:
    """One dict per parameter (declaration, value to show, errors), and errors
    that belong to no field (unknown names)."""
    by_field = {}
    for error in errors:
        by_field.setdefault(error.field, []).append(error.message)
    fields = []
    for param in params:
        value = raw.get(param.name, param.default)
        fields.append({"param": param, "value": value, "errors": by_field.pop(param.name, [])})
    return fields, [m for messages in by_field.values() for m in messages]


def limit_rows(limits) -> list[tuple[str, str, str]]:
    """Each sandbox limit of a run, with why it is there (shown on the experiment page)."""
    return [
        ("wall clock", f"{limits.wall_s:g} s", "Then the whole process group is killed: a hang ends its own run."),
        ("CPU time", f"{limits.cpu_s} s", "RLIMIT_CPU: a spinning run dies even if the clock is cheated."),
        (
            "memory",
            f"{limits.memory_mb} MiB",
            "Address space (and a cgroup where the host allows): a memory bomb fails alone.",
        ),
        (
            "threads",
            f"{limits.max_threads}",
            "The parameter bounds, and a pids cap: a thread or fork bomb stops there.",
        ),
        ("open files", f"{limits.open_files}", "RLIMIT_NOFILE: a descriptor leak cannot starve the host."),
        ("files written", "16 MiB", "RLIMIT_FSIZE: no filling the disk."),
        ("events and output", "500,000 events, 64 KB of printed text", "Beyond that they are counted, not kept."),
        ("network", "loopback only", "A network namespace where the host allows (GET /healthz says)."),
    ]


def experiment_page_context(experiment, params: tuple, raw: dict, errors: list) -> dict:
    fields, other_errors = form_fields(params, raw, errors)
    return {
        "limits": limit_rows(experiment.limits),
        "experiment": experiment,
        "fields": fields,
        "other_errors": other_errors,
        "code_html": highlighted(experiment.source()),
    }
