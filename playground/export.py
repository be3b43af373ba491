"""A run as a Chrome trace (Perfetto, chrome://tracing), as CSV, and as an SVG chart.

Pure functions of a run's summary (``Run.summary()``) and its event list, so
the web routes, the CLI and the tests all share them.

Trace threads. Perfetto stacks a thread's slices by nesting and moves a slice
that overlaps another without nesting inside it to an overflow track. A lane
has two kinds of slices that obey different rules: OS states tile its
lifetime one after another, while labelled phases (B/E) nest among themselves
but straddle state changes. So each lane gets two trace threads:

    tid 2*lane + 1   "<thread>"          OS states, back to back, and marks (instants)
    tid 2*lane + 2   "<thread> phases"   labelled phases, strictly nested

(no tid 0, which some importers read as the idle task). ``thread_sort_index``
keeps each phases track under its thread. Phases come from ``with
probe.phase(...)`` so they nest; should an E close a phase while later ones
are still open, those end with it, and phases still open at the end of the
run end there, so every tid stays strictly nested.

Times: ``ts``/``dur`` are whole microseconds since the run's start. Slices are
complete events (``X``) whose end is ``ts + dur``; rounding each endpoint to an
integer keeps back-to-back states exactly back to back, where float
microseconds could overlap by a rounding error. CPU share is one counter per
lane, the share of a core over each sampler window (0..1, a window is the
time since the lane's previous one, about 20 ms), dropping to 0 across
windows the sampler skipped because the thread did not run.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import math
import os
import re
from collections import defaultdict
from xml.sax.saxutils import escape, quoteattr

from . import settings
from .textgantt import buckets, duration, lane_names, run_end, spans_by_lane

PID = 1
CPU_WINDOW_NS = 20_000_000  # the sampler's cpu_window_s; gantt.js assumes the same
STATE_TID, PHASE_TID = 1, 2


def _us(ns: float) -> int:
    return int(round(ns / 1000))


def _tid(lane: int, kind: int) -> int:
    return 2 * lane + kind


def trace(summary: dict, events: list) -> dict:
    """The run in the Chrome trace event format, as a JSON-ready dict."""
    names = lane_names(summary, events)
    ordered = sorted(events, key=lambda e: e[0])
    phases = _phases(ordered)
    meta = [_meta("process_name", 0, name=f"{summary['experiment']} {summary['id']}")]
    if any(e[2] == "cores" for e in ordered):  # lane -1's counter lives on tid 0: name it
        meta += [_meta("thread_name", 0, name="process (busy cores)")]
    for lane, name in names.items():
        meta += [_meta("thread_name", _tid(lane, STATE_TID), name=name)]
        meta += [_meta("thread_sort_index", _tid(lane, STATE_TID), sort_index=2 * lane)]
        if any(p["tid"] == _tid(lane, PHASE_TID) for p in phases):
            meta += [_meta("thread_name", _tid(lane, PHASE_TID), name=f"{name} phases")]
            meta += [_meta("thread_sort_index", _tid(lane, PHASE_TID), sort_index=2 * lane + 1)]
    states = []
    for lane, spans in spans_by_lane(events).items():
        for start, end, state in spans:
            ts, stop = _us(start), _us(end)
            if stop > ts:
                states.append(_slice(_tid(lane, STATE_TID), ts, stop - ts, state, "state"))
    marks = [
        _event("i", _tid(lane, STATE_TID), _us(t), str(data)[:80], s="t", cat="mark", args={"text": str(data)})
        for t, lane, kind, data in ordered
        if kind == "M"
    ]
    slices = sorted(states + phases, key=lambda e: (e["tid"], e["ts"], -e["dur"]))  # parents before children
    return {
        "traceEvents": meta + slices + marks + _counters(ordered, names),
        "displayTimeUnit": "ms",
        "metadata": {**summary, "source": "Threading Playground", "time_origin": "ts 0 is the run's start"},
    }


def _meta(what: str, tid: int, **args) -> dict:
    return {"ph": "M", "name": what, "pid": PID, "tid": tid, "args": args}


def _event(ph: str, tid: int, ts: int, name: str, **more) -> dict:
    return {"ph": ph, "name": name, "pid": PID, "tid": tid, "ts": ts, **more}


def _slice(tid: int, ts: int, dur: int, name: str, cat: str) -> dict:
    return _event("X", tid, ts, name, cat=cat, dur=dur)


def _phases(ordered: list) -> list[dict]:
    open_: dict[int, list] = defaultdict(list)  # lane -> [(label, start_ns)], innermost last
    out = []

    def close(lane, index, t):
        for label, start in open_[lane][index:]:
            out.append(_slice(_tid(lane, PHASE_TID), _us(start), _us(t) - _us(start), label, "phase"))
        del open_[lane][index:]

    for t, lane, kind, data in ordered:
        if kind == "B":
            open_[lane].append((str(data), t))
        elif kind == "E":
            labels = [label for label, _ in open_[lane]]
            if str(data) in labels:
                close(lane, len(labels) - 1 - labels[::-1].index(str(data)), t)
    for lane in list(open_):
        close(lane, 0, run_end(ordered))
    return out


def _counters(ordered: list, names: dict) -> list[dict]:
    out, last = [], {}  # last: lane -> end of its previous window (ns)

    def sample(lane, t, share):
        return _event("C", _tid(lane, STATE_TID), _us(t), f"cpu {lane}: {names.get(lane, lane)}", args=share)

    for t, lane, kind, data in ordered:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            continue
        if kind == "cores":  # the process as a whole: busy cores over the window ending at t
            out.append(_event("C", 0, _us(max(0, t - CPU_WINDOW_NS)), "busy cores", args={"cores": data}))
            continue
        if kind != "cpu":
            continue
        gap = t - last.get(lane, -math.inf)
        window = gap if gap < 1.5 * CPU_WINDOW_NS else CPU_WINDOW_NS  # back to back, or after a skip
        if window <= 0:
            continue
        if lane in last and window < gap:  # the sampler skipped idle windows: no CPU in between
            out.append(sample(lane, last[lane], {"share": 0}))
        # A thread's first window may reach back past the run's start: clamp at 0 (ts must not be negative).
        out.append(sample(lane, max(0, t - window), {"share": round(min(1.0, max(0.0, data / window)), 3)}))
        last[lane] = t
    out += [sample(lane, t, {"share": 0}) for lane, t in last.items()]
    return out


# -- CSV ------------------------------------------------------------------------


def _cell(value) -> str:
    """A value as a cell; text that a spreadsheet would run as a formula (a leading
    = + - @) gets a leading quote. Numbers are left alone: -1 is a number."""
    if not isinstance(value, str):
        return "" if value is None else json.dumps(value, separators=(",", ":"))
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv(header: tuple, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def events_csv(summary: dict, events: list) -> str:
    names = lane_names(summary, events)
    rows = (
        (f"{t / 1e6:.6f}", lane, _cell(names.get(lane, "")), _cell(kind), _cell(data))
        for t, lane, kind, data in sorted(events, key=lambda e: e[0])
    )
    return _csv(("t_ms", "lane", "thread", "kind", "data"), rows)


def metric_rows(summary: dict, metrics=()) -> list[tuple]:
    """(metric, value, unit, meaning) for the run's figures, declared ones first in their order."""
    result = summary.get("result") or {}
    values, declared = result.get("metrics") or {}, {m["name"]: m for m in metrics}
    order = [name for name in declared if name in values] + [name for name in values if name not in declared]
    rows = [(n, values[n], declared.get(n, {}).get("unit", ""), declared.get(n, {}).get("help", "")) for n in order]
    for key, value in (result.get("observed") or {}).items():
        unit = "ms" if key.endswith("_ms") else ""
        rows.append((f"observed.{key}", value, unit, "summed over all threads, as the OS sampler saw them"))
    return rows


def result_csv(summary: dict, metrics=()) -> str:
    result = summary.get("result")
    rows = [("state", summary["state"], "", "how the run ended")]
    if summary.get("reason"):
        rows.append(("reason", summary["reason"], "", "why it ended so"))
    if result:
        rows.append(("claim", result["claim"], "", "what this run checked"))
        rows.append(("held", "true" if result["held"] else "false", "", "whether this run bore the claim out"))
        rows.append(("why", result["why"], "", "the figures behind the verdict"))
    rows += metric_rows(summary, metrics)
    return _csv(
        ("metric", "value", "unit", "meaning"), ((_cell(a), _cell(b), _cell(c), _cell(d)) for a, b, c, d in rows)
    )


# -- SVG ------------------------------------------------------------------------

CSS = os.path.join(settings.ROOT, "static", "css", "gantt.css")
# px. One bucket per pixel of PLOT: a 100,000-event run draws at most PLOT
# rectangles a lane, merged into one path per state, whatever its length.
GUTTER, PLOT, PAD, TOP, ROW, BAR = 170, 1000, 20, 50, 20, 14


@functools.lru_cache(maxsize=1)
def palette() -> dict[str, str]:
    """The chart's colours as gantt.css declares them: ``state-running`` -> ``#009E73``."""
    with open(CSS, encoding="utf-8") as f:
        return dict(re.findall(r"--([\w-]+)\s*:\s*(#[0-9A-Fa-f]{3,8})\b", f.read()))


def _ticks(end: float) -> list[float]:
    """Round steps (1, 2, 5 x 10^k ns), about eight of them over the run."""
    rough = max(end, 8) / 8
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    return [i * step for i in range(int(end // step) + 1)]


def svg(summary: dict, events: list, *, colours: dict | None = None) -> str:
    """The Gantt chart as a standalone SVG document: lanes, states, a time axis, a legend."""
    colours = colours or palette()
    fg, muted = colours.get("gantt-fg", "#222"), colours.get("gantt-muted", "#666")
    names, spans, end = lane_names(summary, events), spans_by_lane(events), max(run_end(events), 1)
    width, bottom = GUTTER + PLOT + PAD, TOP + ROW * len(names)
    heading = f"{summary['experiment']} · run {summary['id']} · {summary['state']} · {duration(end)}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bottom + 40}" '
        f'viewBox="0 0 {width} {bottom + 40}" font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(heading)}</title>",
        f'<rect width="100%" height="100%" fill="{colours.get("gantt-bg", "#fff")}"/>',
        f'<text x="8" y="18" font-weight="bold" fill="{fg}">{escape(heading)}</text>',
        f'<g class="axis" stroke="{colours.get("gantt-grid", "#ddd")}">',
    ]
    for t in _ticks(end):
        x = GUTTER + round(t / end * PLOT, 1)
        out.append(f'<line x1="{x}" y1="{TOP - 6}" x2="{x}" y2="{bottom}"/>')
        out.append(
            f'<text x="{x}" y="{TOP - 10}" text-anchor="middle" fill="{muted}" stroke="none">{duration(t)}</text>'
        )
    out.append("</g>")
    drawn = set()
    for row, (lane, name) in enumerate(names.items()):
        y = TOP + row * ROW
        out.append(f'<g class="lane" data-lane="{lane}" data-thread={quoteattr(name)}><title>{escape(name)}</title>')
        out.append(f'<text x="8" y="{y + BAR - 3}" fill="{fg}">{escape(name[:26])}</text>')
        paths, x = defaultdict(list), GUTTER
        for state, run in itertools.groupby(buckets(spans.get(lane, []), 0, end, PLOT)):
            n = len(list(run))
            if state is not None:
                paths[state].append(f"M{x} {y}h{n}v{BAR}h-{n}z")
            x += n
        for state, parts in paths.items():
            out.append(f'<path fill="{_colour(colours, state)}" d="{"".join(parts)}"><title>{state}</title></path>')
        drawn.update(paths)
        out.append("</g>")
    out.append(f'<g class="legend" fill="{fg}">')
    x = GUTTER
    for state in [s for s in ("running", "gil", "lock", "sleep", "io", "alive") if s in drawn]:
        out.append(f'<rect x="{x}" y="{bottom + 14}" width="14" height="10" fill="{_colour(colours, state)}"/>')
        out.append(f'<text x="{x + 18}" y="{bottom + 23}">{state}</text>')
        x += 30 + 7 * len(state)
    out += ["</g>", "</svg>"]
    return "\n".join(out) + "\n"


def _colour(colours: dict, state: str) -> str:
    return colours.get(f"state-{state}") or colours.get("gantt-alive", "#888888")
