"""A series of runs of one experiment: a sweep over thread counts, or N repeats.

Actors and their threads:

- a request thread validates the whole plan (every parameter set) and calls
  ``SeriesBook.start``, which stores the series and starts its feeder;
- one feeder thread per series in flight (``series-<id>``) submits the planned
  runs one at a time, in order, and records each run id before it waits;
- request threads read a series (``SeriesBook.get``) and may cancel it.

One run at a time, through the ordinary path. A feeder submits its next run
only when the previous one has ended, with the requester's address as the
run's client. So a series holds one slot of that client's per-client share
(PLAYGROUND_PER_CLIENT) and never bypasses it: the person can still press Run
beside it, a 6-point sweep joins the back of the queue after each run like
anyone clicking Run again (it never takes the pool from other clients), and
the points of one speedup curve never compete with each other for the cores.
When the client's share or the queue is full, the feeder waits and retries.

A series in flight when the server stops ends ``interrupted`` at the next
start (Store.open), as its queued and running runs do; the finished points stay.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from .runs import new_run_id

RETRY_S = 0.5  # how often a feeder asks again for room in its client's share
WAIT_S = 1.0  # a feeder wakes this often while a run is in flight, to notice a cancel


class SeriesState(str, enum.Enum):
    RUNNING = "running"
    DONE = "done"  # every planned run ended (some may have failed: each point says so)
    CANCELLED = "cancelled"
    FAILED = "failed"  # the feeder itself broke (the reason says how)
    INTERRUPTED = "interrupted"  # the server stopped while the series was in flight

    @property
    def finished(self) -> bool:
        return self is not SeriesState.RUNNING


@dataclass
class Series:
    id: str
    kind: str  # "sweep" | "repeat"
    experiment: str
    params: dict  # the validated base parameters, as on the form
    plan: list[dict]  # one validated parameter set per run, in order
    options: dict = field(default_factory=dict)  # sweep: up_to; repeat: metric, companion
    run_ids: list[str] = field(default_factory=list)
    state: SeriesState = SeriesState.RUNNING
    reason: str = ""
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def __post_init__(self):
        self._lock = threading.Lock()  # the feeder writes, request threads read

    @classmethod
    def new(cls, kind: str, experiment: str, params: dict, plan: list[dict], **options) -> Series:
        return cls(id=new_run_id(), kind=kind, experiment=experiment, params=params, plan=plan, options=options)

    def add_run(self, run_id: str) -> None:
        with self._lock:
            self.run_ids.append(run_id)

    def note(self, reason: str) -> None:
        with self._lock:
            self.reason = reason

    def finish(self, state: SeriesState, reason: str = "") -> bool:
        with self._lock:
            if self.state.finished:
                return False
            self.state, self.reason, self.finished_at = state, reason, time.time()
            return True

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "id": self.id,
                "kind": self.kind,
                "experiment": self.experiment,
                "params": dict(self.params),
                "plan": list(self.plan),
                "options": dict(self.options),
                "run_ids": list(self.run_ids),
                "state": self.state.value,
                "reason": self.reason,
                "created_at": self.created_at,
                "finished_at": self.finished_at,
            }


class RunSource(Protocol):
    """What a feeder needs from the pool: the web layer's launch() behind a seam."""

    def submit(self, params: dict) -> str | None: ...  # a run id, or None: no room now, ask again
    def wait(self, run_id: str, timeout: float) -> bool: ...  # True once the run's end is durable
    def cancel(self, run_id: str) -> None: ...


class SeriesBook:
    """Series in flight in memory (with their feeders), the rest from the store."""

    def __init__(self, store):
        self.store = store
        self._live: dict[str, tuple[Series, threading.Event, RunSource]] = {}
        self._lock = threading.Lock()

    def start(self, series: Series, source: RunSource) -> None:
        self.store.insert_series(series)
        stop = threading.Event()
        with self._lock:
            self._live[series.id] = (series, stop, source)
        threading.Thread(
            target=self._feed, args=(series, stop, source), name=f"series-{series.id}", daemon=True
        ).start()

    def get(self, series_id: str) -> Series | None:
        with self._lock:
            live = self._live.get(series_id)
        return live[0] if live else self.store.load_series(series_id)

    def cancel(self, series_id: str) -> None:
        with self._lock:
            live = self._live.get(series_id)
        if live is None:
            return
        series, stop, source = live
        stop.set()
        if series.finish(SeriesState.CANCELLED, "cancelled by a user"):
            for run_id in series.snapshot()["run_ids"]:
                source.cancel(run_id)  # a finished run ignores it
            self._end(series)

    def _end(self, series: Series) -> None:
        self.store.save_series(series)  # durable first, then out of memory
        with self._lock:
            self._live.pop(series.id, None)

    def _feed(self, series: Series, stop: threading.Event, source: RunSource) -> None:
        try:
            for index, params in enumerate(series.plan):
                run_id = None
                while run_id is None and not stop.is_set():
                    run_id = source.submit(params)
                    if run_id is None:
                        series.note(f"run {index + 1} waits for room in your share of the pool")
                        stop.wait(RETRY_S)
                if stop.is_set():
                    if run_id:
                        source.cancel(run_id)  # cancelled between the submit and here
                    return
                series.note("")
                series.add_run(run_id)
                self.store.save_series(series)
                while not source.wait(run_id, WAIT_S):
                    if stop.is_set():
                        return
            if series.finish(SeriesState.DONE):
                self._end(series)
        except Exception as exc:  # the series says why; the server goes on
            if series.finish(SeriesState.FAILED, f"{type(exc).__name__}: {exc}"):
                self._end(series)


# -- figures (pure functions of a series and its runs' rows) -------------------


def sweep_points(series: dict, rows: dict, own_metric: bool) -> list[dict]:
    """One point per planned thread count. ``rows``: run id -> {state, result}.

    Speedup: the experiment's own ``speedup`` metric when it declares one,
    else wall_ms of the 1-thread run / wall_ms of this run.
    """
    ids = series["run_ids"] + [None] * (len(series["plan"]) - len(series["run_ids"]))
    metrics = [((rows.get(i) or {}).get("result") or {}).get("metrics", {}) for i in ids]
    base = next((m.get("wall_ms") for p, m in zip(series["plan"], metrics, strict=True) if p["threads"] == 1), None)
    points = []
    for params, run_id, m in zip(series["plan"], ids, metrics, strict=True):
        row = rows.get(run_id) or {}
        if own_metric:
            speedup = m.get("speedup")
        else:
            speedup = base / m["wall_ms"] if base and m.get("wall_ms") else None
        state = row.get("state", "queued") if run_id else "planned"
        held = (row.get("result") or {}).get("held")
        points.append(
            {
                "threads": params["threads"],
                "run": run_id,
                "state": state,
                "held": held,
                "speedup": round(speedup, 3) if speedup else None,
                "wall_ms": m.get("wall_ms"),
            }
        )
    return points


def metric_values(series: dict, rows: dict, metric: str) -> list[float]:
    """The metric of each finished run that reported it, in run order."""
    out = []
    for run_id in series["run_ids"]:
        value = (((rows.get(run_id) or {}).get("result") or {}).get("metrics") or {}).get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(value)
    return out


def histogram(values: list[float], bins: int = 10) -> dict:
    """Bin edges and counts. Whole numbers in a narrow range get one bin per value
    (a locked counter's zeros stay one bar, "0"); otherwise ``bins`` equal bins
    (whole-number wide for whole numbers), the last one closed."""
    if not values:
        return {"edges": [], "counts": [], "integer": True}
    lo, hi = min(values), max(values)
    integer = all(float(v).is_integer() for v in values)
    if integer:
        lo, hi = int(lo), int(hi)
        width = max(1, math.ceil((hi - lo + 1) / bins))
        edges = [lo + i * width for i in range(math.ceil((hi - lo + 1) / width) + 1)]
    else:
        width = (hi - lo) / bins or 1.0
        edges = [lo + i * width for i in range(bins + 1)] if hi > lo else [lo, lo + 1.0]
    counts = [0] * (len(edges) - 1)
    for v in values:
        counts[min(len(counts) - 1, int((v - lo) // width))] += 1
    return {"edges": edges, "counts": counts, "integer": integer}
