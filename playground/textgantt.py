"""The Gantt chart in characters: one row per lane, one character per time bucket.

    MainThread |#LLLLLLLLLLLLLLLLLLLLLLLLLLLL#|
    hello-0    |.zzzzzzzzzzzzzzzzzzzzzzzzzz#.|
    hello-1    |..zzzzzzzzzzzzzzzzzzzzzzzzzz.|
                0                       124 ms
    # running  g gil  L lock  z sleep  i io  . not alive

A bucket shows the state its lane spent most of that bucket in, counting only
the time the lane was alive: a bucket where the thread lived at all is never
blank, so a thread shorter than one bucket still shows. The SVG export buckets
the same way at one bucket per pixel, which is why the reading of events into
lanes and buckets lives here and not in the CLI.
"""

from __future__ import annotations

import itertools

from .timeline import state_spans

# "alive" is no OS state: a lane's lifetime when the sampler saw nothing
# (PLAYGROUND_SAMPLER=off, no /proc), as the browser chart draws it too.
CHARS = {"running": "#", "gil": "g", "lock": "L", "sleep": "z", "io": "i", "alive": "=", None: "."}
NAMES = {"running": "running", "gil": "gil", "lock": "lock", "sleep": "sleep", "io": "io", None: "not alive"}
# Basic ANSI colours: every terminal has them; hues follow the chart's palette.
ANSI = {"running": "32", "gil": "31", "lock": "35", "sleep": "36", "io": "33", "alive": "34", None: "2"}


def printable(text: str) -> str:
    """Thread names and marks come from the worker: no escape sequences reach a terminal."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def run_end(events: list) -> int:
    return max((e[0] for e in events), default=0)


def lane_names(summary: dict, events: list) -> dict[int, str]:
    """lane -> thread name, in lane order, for every lane the summary or the events know."""
    names = {info["lane"]: info["name"] for info in summary.get("lanes", []) if info.get("name")}
    for _, lane, kind, data in events:
        if kind == "lane" and isinstance(data, dict) and data.get("name"):
            names.setdefault(lane, str(data["name"]))
    lanes = {*names, *(e[1] for e in events if e[1] >= 0)}  # lane -1 is the process as a whole (docs/events.md)
    return {lane: names.get(lane, f"thread {lane}") for lane in sorted(lanes)}


def spans_by_lane(events: list) -> dict[int, list[tuple[int, int, str]]]:
    """OS state spans per lane; a lane without any falls back to its lifetime as "alive".

    Spans stop at the lane's ``end``: the sampler often reports one more state
    after the probe's end hook (the thread's last microseconds of teardown),
    and ``state_spans`` would keep that one open to the end of the run.
    """
    end = run_end(events)
    born: dict[int, int] = {}
    died: dict[int, int] = {}
    for t, lane, kind, _ in events:
        if kind == "lane":
            born.setdefault(lane, t)
        elif kind == "end":
            died[lane] = t
    spans = {
        lane: [(s, min(e, died.get(lane, e)), state) for s, e, state in lane_spans if s < died.get(lane, end + 1)]
        for lane, lane_spans in state_spans(events).items()
    }
    for lane, start in born.items():
        if lane not in spans:
            spans[lane] = [(start, max(start, died.get(lane, end)), "alive")]
    return spans


def buckets(spans: list, start: float, end: float, n: int) -> list[str | None]:
    """The dominant state of each of ``n`` equal buckets of [start, end], or None (not alive)."""
    width = (end - start) / n if end > start else 1.0
    weights: list[dict | None] = [None] * n
    for s, e, state in spans:
        first = min(n - 1, max(0, int((s - start) / width)))
        last = min(n - 1, max(0, int((e - start) / width)))
        for c in range(first, last + 1):
            overlap = min(e, start + (c + 1) * width) - max(s, start + c * width)
            if overlap <= 0 and s != e:  # touches the bucket's edge only
                continue
            cell = weights[c] = weights[c] or {}
            cell[state] = cell.get(state, 0) + max(overlap, 0)
    return [max(cell, key=cell.get) if cell else None for cell in weights]


def duration(ns: float) -> str:
    """A readable length of time: 0, 4.2 ms, 124 ms, 1.25 s."""
    ms = ns / 1e6
    if ms == 0:
        return "0"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _paint(cells: list, color: bool) -> str:
    out = []
    for state, run in itertools.groupby(cells):
        text = CHARS.get(state, "?") * len(list(run))
        out.append(f"\x1b[{ANSI.get(state, '0')}m{text}\x1b[0m" if color else text)
    return "".join(out)


def legend(states: set, color: bool = False) -> str:
    """The key for the states drawn ("alive" only when some lane needed it)."""
    keys = ["running", "gil", "lock", "sleep", "io", *(["alive"] if "alive" in states else []), None]
    label = {**NAMES, "alive": "alive (no OS states)"}
    return "  ".join(f"{_paint([s], color)} {label[s]}" for s in keys)


def render(summary: dict, events: list, *, width: int = 60, color: bool = False) -> str:
    """Rows per lane, a time axis and a legend, as one string (no trailing newline)."""
    names = lane_names(summary, events)
    spans = spans_by_lane(events)
    end = run_end(events)
    label_width = min(24, max((len(printable(n)) for n in names.values()), default=6))
    rows, seen = [], set()
    for lane, name in names.items():
        cells = buckets(spans.get(lane, []), 0, end, width)
        seen.update(cells)
        rows.append(f"{printable(name)[:label_width]:<{label_width}} |{_paint(cells, color)}|")
    if not rows:
        return "(no threads were recorded)"
    right = duration(end)
    axis = " " * (label_width + 2) + "0" + right.rjust(width - 1)  # under the bar's first and last cells
    return "\n".join([*rows, axis, legend(seen, color)])
