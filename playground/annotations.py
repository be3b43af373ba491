"""What the chart shows, named from the measured data: a finished run's annotations.

Each annotation is ``{kind, title, text, t0, t1, lanes}``: ``t0``/``t1`` in ns from
the run's start (the chart's clock) mark the place to zoom to, ``lanes`` the lanes to
highlight. Nothing here is a script: an annotation appears only when the run's own
events or result show the effect, and its text quotes what was measured.

- ``gil-stripes``: lanes that alternate ``running`` / ``gil``; the median running
  stretch between two GIL waits, compared with ``sys.getswitchinterval()``.
- ``convoy``: a lane leaves ``io`` or ``sleep``, then waits in ``gil`` for at least
  ``CONVOY_MIN_NS`` before it runs.
- ``lost-updates``: two threads read the same counter value (``result["collisions"]``,
  kept by race-condition's ``widened`` variant).
- ``deadlock``: the wait-for cycle the supervisor found (``result["cycle"]``,
  docs/events.md).

Pure functions of (events, result, interpreter, params), plus ``for_run``: a small
cache so that a finished run is annotated once, not on every page view.
"""

from __future__ import annotations

import statistics
import threading
from collections import OrderedDict

from .timeline import state_spans

STRIPES_MIN = 4  # running stretches between GIL waits, over all lanes, before calling it a pattern
# Median turn / switch interval within this: "these stripes are the interval". A waiter asks for the
# GIL only after a whole interval without a hand-off, timed from when it began to wait (CPython's
# take_gil), so with several waiters a turn lasts one to two intervals, plus the hand-over.
STRIPES_NEAR = (0.5, 2.5)
STRIPES_SHOWN = 10  # the zoom shows about this many median stretches
CONVOY_MIN_NS = 1_000_000  # a GIL wait after waking shorter than this is not worth naming
COLLISIONS_SHOWN = 3  # lost-updates zooms to the first few collisions


def annotate(events: list, result: dict | None, interpreter: dict | None, params: dict | None = None) -> list[dict]:
    """Every annotation this run's data supports, in a fixed order of kinds."""
    result, interpreter, params = result or {}, interpreter or {}, params or {}
    spans = {lane: _merged(s) for lane, s in state_spans(events).items() if lane >= 0}
    names = lane_names(events)
    interval_ns = switch_interval_ns(interpreter, result, params)
    found = [
        gil_stripes(spans, interval_ns),
        convoy(spans, names),
        lost_updates(result, names),
        deadlock(result, events, names, spans),
    ]
    return [a for a in found if a is not None]


def lane_names(events: list) -> dict[int, str]:
    return {e[1]: str((e[3] or {}).get("name", f"lane {e[1]}")) for e in events if e[2] == "lane"}


def switch_interval_ns(interpreter: dict, result: dict, params: dict) -> int | None:
    """The switch interval in force during the run: one the experiment set (convoy's
    parameter, cpu-bound's metric), else the worker's ``sys.getswitchinterval()``."""
    metrics = result.get("metrics") or {}
    for ms in (params.get("switch_interval_ms"), metrics.get("switch_interval_ms")):
        if isinstance(ms, (int, float)) and ms > 0:
            return round(ms * 1e6)
    seconds = interpreter.get("switch_interval_s")
    return round(seconds * 1e9) if isinstance(seconds, (int, float)) and seconds > 0 else None


def gil_stripes(spans: dict, interval_ns: int | None) -> dict | None:
    stretches = {}  # lane -> [(start, end)] of running stretches with a GIL wait on both sides
    for lane, lane_spans in spans.items():
        found = [
            (cur[0], cur[1])
            for prev, cur, nxt in zip(lane_spans, lane_spans[1:], lane_spans[2:], strict=False)
            if prev[2] == "gil" and cur[2] == "running" and nxt[2] == "gil"
        ]
        if len(found) >= 2:  # a lane that alternates, not one that waited once
            stretches[lane] = found
    every = sorted(s for found in stretches.values() for s in found)
    if len(stretches) < 2 or len(every) < STRIPES_MIN:  # stripes: the GIL going round between threads
        return None
    median = statistics.median(e - s for s, e in every)
    lanes = sorted(stretches)
    t0 = every[len(every) // 2][0]  # the middle of the run: past the threads' staggered starts
    t1 = min(t0 + STRIPES_SHOWN * median, max(e for _, e in every))
    measured = (
        f"{len(lanes)} threads took turns holding the GIL: a typical turn (the median of {len(every)}) "
        f"lasted {_ms(median)} before the thread waited again"
    )
    if interval_ns is None:
        title = f"The GIL changes hands every ~{_ms(median)}"
        text = f"{measured}."
    elif STRIPES_NEAR[0] <= median / interval_ns <= STRIPES_NEAR[1]:
        title = f"The GIL changes hands every ~{_ms(median)}: the switch interval is {_ms(interval_ns)}"
        text = (
            f"These ~{_ms(median)} stripes are sys.getswitchinterval() = {_ms(interval_ns)} at work: a thread "
            f"waiting for the GIL asks for it after that long, so the GIL changes hands at most that often. "
            f"{measured}."
        )
        if median > 1.2 * interval_ns:
            text += (
                " A turn can outlast the interval: a waiting thread asks for the GIL only once a whole interval "
                "has passed without a hand-off, counted from when it began to wait, and the holder lets go at its "
                "next check point. States are also sampled about once a millisecond."
            )
        elif median < 0.8 * interval_ns:
            text += (
                " A turn ends sooner when the holder blocks (I/O, a sleep, a lock) and lets the GIL go itself. "
                "States are also sampled about once a millisecond."
            )
    else:
        shorter = median < interval_ns
        title = f"The GIL changes hands every ~{_ms(median)}, not every {_ms(interval_ns)}"
        text = (
            f"{measured}, {'shorter' if shorter else 'longer'} than sys.getswitchinterval() = {_ms(interval_ns)}. "
            + (
                "The threads gave the GIL up before the interval ran out (a blocking call, I/O or a lock ends a turn)."
                if shorter
                else "The holder gives the GIL up only at its next check point after the interval "
                "(a long call into C delays that), and each thread's state is sampled about once a millisecond."
            )
        )
    return _annotation("gil-stripes", title, text, t0, t1, lanes)


def convoy(spans: dict, names: dict) -> dict | None:
    waits = []  # (wait_ns, lane, woke_from, start, end)
    for lane, lane_spans in spans.items():
        # io/sleep, then gil, then anything: leaving ``gil`` means the lane got the GIL. Its
        # ``running`` may be too short for a 1 kHz sampler to see before it blocks again.
        for prev, cur, _ in zip(lane_spans, lane_spans[1:], lane_spans[2:], strict=False):
            if prev[2] in ("io", "sleep") and cur[2] == "gil" and cur[1] - cur[0] >= CONVOY_MIN_NS:
                waits.append((cur[1] - cur[0], lane, prev[2], cur[0], cur[1]))
    if not waits:
        return None
    wait_ns, lane, woke_from, t0, t1 = max(waits)
    woke = {"io": "I/O", "sleep": "a sleep"}[woke_from]
    times = "Once" if len(waits) == 1 else f"{len(waits)} times"
    text = (
        f"{times}, a thread whose I/O or sleep had ended then waited for the GIL, {_ms(CONVOY_MIN_NS)} or more "
        f"({_ms(sum(w[0] for w in waits))} in all): another thread held it. The longest: "
        f"{names.get(lane, f'lane {lane}')} stayed in gil for {_ms(wait_ns)} after {woke}. This is the convoy "
        "effect: a thread that blocks often pays a GIL wait after every block. States are sampled about once a "
        "millisecond, so I/O shorter than that between two waits goes unseen: one stretch may hold several waits."
    )
    lanes = sorted({w[1] for w in waits})
    return _annotation("convoy", f"Convoy: {_ms(wait_ns)} waiting for the GIL after {woke}", text, t0, t1, lanes)


def lost_updates(result: dict, names: dict) -> dict | None:
    collisions = [c for c in result.get("collisions") or () if len(c.get("reads") or ()) >= 2]
    if not collisions:
        return None
    lane_of = {name: lane for lane, name in names.items()}
    shown = collisions[:COLLISIONS_SHOWN]
    reads = [r for c in shown for r in c["reads"]]
    first = shown[0]
    a, b = first["reads"][:2]
    value = first["value"]
    metrics = result.get("metrics") or {}
    seen = metrics.get("read_collisions")
    text = (
        f"{a['thread']} read counter = {value:,} at {_ms(a['t_ns'])} and {b['thread']} read the same value at "
        f"{_ms(b['t_ns'])}: both then wrote {value + 1:,}, so one of the two increments was lost."
    )
    if isinstance(seen, int):
        text += f" {seen:,} reads collided like this among the reads kept"
        text += f" (the first {result['reads_kept']:,} of each thread)" if result.get("reads_kept") else ""
        text += "."
    if isinstance(metrics.get("lost_updates"), int):
        text += f" The run lost {metrics['lost_updates']:,} updates in all."
    lanes = sorted({lane_of[r["thread"]] for r in reads if r["thread"] in lane_of})
    t0, t1 = min(r["t_ns"] for r in reads), max(r["t_ns"] for r in reads)
    return _annotation("lost-updates", f"Lost update: two threads read {value:,}", text, t0, t1, lanes)


def deadlock(result: dict, events: list, names: dict, spans: dict) -> dict | None:
    cycle = [c for c in result.get("cycle") or () if isinstance(c, dict) and "lane" in c]
    if not cycle:
        return None
    primitives = {e[3].get("id"): e[3] for e in events if e[2] == "P" and isinstance(e[3], dict)}

    def thread(lane, entry=None):
        if lane is None:
            return "a thread the sampler could not name"
        return (entry or {}).get("thread") or names.get(lane, f"lane {lane}")

    def primitive(waits_for):
        known = primitives.get(waits_for.get("id"), {})
        return waits_for.get("name") or known.get("name") or f"{known.get('type', 'lock')} #{waits_for.get('id')}"

    parts = []
    starts = []
    for entry in cycle:
        waits_for = entry.get("waits_for") or {}
        holder = next((c for c in cycle if c["lane"] == entry.get("held_by")), None)
        parts.append(
            f"{thread(entry['lane'], entry)} waits for {primitive(waits_for)} held by {thread(entry.get('held_by'), holder)}"
        )
        starts.append(_wait_began(events, spans, entry["lane"], waits_for.get("id")))
    end = max((e[0] for e in events), default=0)
    known = [t for t in starts if t is not None]
    t0 = min(known) if known else 0
    text = "; ".join(parts) + ". Each waits for the next, around the cycle: none can ever go on."
    lanes = sorted({c["lane"] for c in cycle})
    return _annotation("deadlock", f"Deadlock: a cycle of {len(cycle)} threads", text, t0, max(end, t0), lanes)


def _wait_began(events: list, spans: dict, lane: int, primitive_id) -> int | None:
    """When ``lane`` last started waiting for ``primitive_id`` (a ``W``), else entered ``lock``."""
    waits = [e[0] for e in events if e[1] == lane and e[2] == "W" and (e[3] or {}).get("id") == primitive_id]
    if waits:
        return max(waits)
    locks = [s for s in spans.get(lane, []) if s[2] == "lock"]
    return locks[-1][0] if locks else None


def _merged(spans: list) -> list:
    """Touching spans of one state become one (the sampler may report a state twice)."""
    out = []
    for start, end, state in spans:
        if out and out[-1][2] == state and out[-1][1] >= start:
            out[-1] = (out[-1][0], max(end, out[-1][1]), state)
        else:
            out.append((start, end, state))
    return out


def _annotation(kind, title, text, t0, t1, lanes) -> dict:
    return {"kind": kind, "title": title, "text": text, "t0": int(t0), "t1": int(t1), "lanes": list(lanes)}


def _ms(ns) -> str:
    ms = ns / 1e6
    if ms >= 100:
        return f"{ms:,.0f} ms"
    if ms >= 1:
        return f"{ms:.3g} ms"
    return f"{ns / 1e3:.3g} µs"


# -- once per finished run ------------------------------------------------------------


class _Cache:
    """The last ``size`` runs' annotations, by run id; any request thread may call it."""

    def __init__(self, size: int = 64):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, compute):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()  # outside the lock: two first viewers may both compute, harmlessly
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


_cache = _Cache()


def for_run(run) -> list[dict]:
    """A run's annotations: none while it is going; computed once when it has finished."""
    if not run.state.finished:
        return []
    return _cache.get(
        (run.id, run.finished_at),
        lambda: annotate(run.events, run.result, run.interpreter, run.params),
    )
