"""Turning a run's event list into per-lane state spans and totals.

The chart draws spans in the browser; the server needs the same reading for
the result panel ("time spent waiting for the GIL, summed over threads") and
for exports. One reading, here: a lane is in the state of its latest ``S``
event until the next ``S`` or its ``end``.
"""

from __future__ import annotations

from collections import defaultdict


def state_spans(events: list) -> dict[int, list[tuple[int, int, str]]]:
    """lane -> [(start_ns, end_ns, state)], open spans closed at the last event."""
    spans: dict[int, list] = defaultdict(list)
    current: dict[int, tuple[int, str]] = {}
    ended: set[int] = set()
    last_t = 0
    for t, lane, kind, data in sorted(events, key=lambda e: e[0]):
        last_t = max(last_t, t)
        if kind == "S" and lane in ended:
            continue  # the OS thread outlives the Python thread briefly: not part of the lesson
        if kind == "end":
            ended.add(lane)
        if kind == "S":
            if lane in current:
                start, state = current[lane]
                spans[lane].append((start, t, state))
            current[lane] = (t, data)
        elif kind == "end" and lane in current:
            start, state = current.pop(lane)
            spans[lane].append((start, t, state))
    for lane, (start, state) in current.items():
        spans[lane].append((start, last_t, state))
    return dict(spans)


def state_totals(events: list) -> dict:
    """Milliseconds per state summed over all threads, and GIL hand-offs seen."""
    totals: dict[str, float] = defaultdict(float)
    handoffs = 0
    for lane_spans in state_spans(events).values():
        previous = None
        for start, end, state in lane_spans:
            totals[state] += (end - start) / 1e6
            if previous == "gil" and state == "running":
                handoffs += 1
            previous = state
    out = {f"{state}_ms": round(ms, 2) for state, ms in sorted(totals.items())}
    out["gil_acquisitions_after_wait"] = handoffs
    return out
