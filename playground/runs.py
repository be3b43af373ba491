"""A run's lifecycle, its event log, and the live fan-out to its viewers.

Actors and the threads they run on:

- the web request thread creates a Run (``Runs.create``) and hands it to the pool;
- the pool's dispatcher thread moves it through QUEUED (with a position);
- one supervisor thread per run (``run-<id>``) calls ``set_running``,
  ``add_events`` and, once, ``finish``; the sampler thread calls ``add_events`` too;
- any number of WebSocket handler threads call ``follow`` to read along.

Fan-out without per-viewer queues: the Run keeps one append-only event list
and a Condition. Each viewer keeps its own cursor into the list and sleeps on
the Condition, so a late joiner starts at cursor 0 and gets everything so far,
a slow viewer only lags behind (it never blocks the run or the others), and
the writer never waits for a viewer.

Durable first, then live: ``finish`` writes the run to the store before any
viewer is told the run ended, so a replay of ``/runs/<id>`` always has it.
"""

from __future__ import annotations

import collections
import enum
import secrets
import threading
import time
from dataclasses import dataclass, field


class RunState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # the experiment returned a verdict
    FAILED = "failed"  # the experiment raised, or the worker died
    TIMED_OUT = "timed_out"  # killed at the wall-clock deadline
    DEADLOCKED = "deadlocked"  # every thread blocked on a lock for good: killed early
    CANCELLED = "cancelled"  # stopped by a user
    INTERRUPTED = "interrupted"  # the server stopped while the run was in flight

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.RUNNING)


# Crockford-style alphabet: no 0/o, 1/l/i confusion; ids never end in "_" or "-".
_ID_ALPHABET = "abcdefghjkmnpqrstvwxyz23456789"


def new_run_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


@dataclass
class Run:
    id: str
    experiment: str
    params: dict
    created_at: float = field(default_factory=time.time)
    state: RunState = RunState.QUEUED
    position: int | None = None
    reason: str = ""
    interpreter: dict = field(default_factory=dict)
    observation: dict = field(default_factory=dict)  # how the run was observed (sampler on/off, why)
    result: dict | None = None
    output: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    events: list = field(default_factory=list)
    lanes: dict = field(default_factory=dict)  # lane -> {"name", "tid"}
    # Started from the page: the browser that will watch is loading on this very
    # machine, often. Wait (briefly) for its socket, so the page load does not
    # compete with the experiment's first phase for the CPU.
    await_viewer: bool = False
    client: str = ""  # who asked (their address): the pool's fairness key, not stored

    def __post_init__(self):
        self._cond = threading.Condition()
        self._status_version = 0
        self._ended = False  # set once the end is durable; viewers finish only then
        self.cancel_requested = threading.Event()
        self.viewer_joined = threading.Event()  # set by the first WebSocket handler

    @classmethod
    def restored(cls, **fields) -> Run:
        """A finished run read back from the store: its end is already durable."""
        run = cls(**fields)
        run._ended = True
        run._status_version = 1
        return run

    # -- writers (dispatcher, supervisor and sampler threads) -----------------

    def set_queued(self, position: int) -> None:
        with self._cond:
            if self.state is RunState.QUEUED and self.position != position:
                self.position = position
                self._bump()

    def set_running(self, interpreter: dict, observation: dict) -> None:
        with self._cond:
            self.state, self.position = RunState.RUNNING, None
            self.interpreter, self.observation = interpreter, observation
            self.started_at = time.time()
            self._bump()

    def add_events(self, batch: list) -> None:
        if not batch:
            return
        with self._cond:
            for event in batch:
                if event[2] == "lane":
                    self.lanes[event[1]] = event[3]
            self.events.extend(batch)
            self._cond.notify_all()

    def finish(
        self, state: RunState, *, result: dict | None = None, reason: str = "", output: str = "", persist=None
    ) -> bool:
        """End the run once; later calls are ignored (a kill racing a result)."""
        with self._cond:
            if self.state.finished:
                return False
            self.state, self.result, self.reason, self.output = state, result, reason, output
            self.position = None
            self.finished_at = time.time()
        if persist is not None:
            try:
                persist(self)  # durable first ...
            except Exception as exc:  # a full disk must not leave viewers waiting forever
                self.reason = (self.reason + "; " if self.reason else "") + f"not saved: {exc}"
        with self._cond:
            self._ended = True
            self._bump()  # ... then live
        return True

    def _bump(self) -> None:
        self._status_version += 1
        self._cond.notify_all()

    # -- readers (WebSocket and HTTP threads) ----------------------------------

    def status(self) -> dict:
        with self._cond:
            return {
                "type": "status",
                "state": self.state.value,
                "position": self.position,
                "reason": self.reason,
                "interpreter": self.interpreter,
                "observation": self.observation,
            }

    def follow(self, cursor: int, seen_version: int, timeout: float) -> tuple[list, dict | None, int, bool]:
        """Wait until there is something new for a viewer at ``cursor``.

        Returns (new events, new status or None, status version, finished).
        ``finished`` is true only once every event has been handed out and the
        run's end is durable.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: len(self.events) > cursor or self._status_version != seen_version,
                timeout=timeout,
            )
            new = self.events[cursor:]
            status = None
            if self._status_version != seen_version:
                status = self.status()
            return new, status, self._status_version, self._ended and not new

    def summary(self) -> dict:
        """The run as JSON (``/api/runs/<id>``): meta, status, result, counts."""
        with self._cond:
            return {
                "id": self.id,
                "experiment": self.experiment,
                "params": self.params,
                "state": self.state.value,
                "position": self.position,
                "reason": self.reason,
                "interpreter": self.interpreter,
                "observation": self.observation,
                "result": self.result,
                "output": self.output,
                "created_at": self.created_at,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "counts": {"events": len(self.events), "lanes": len(self.lanes)},
                "lanes": [{"lane": lane, **info} for lane, info in sorted(self.lanes.items())],
            }


class Runs:
    """Live runs in memory, finished ones from the store: one place to look a run up.

    Called from request threads (create, get) and supervisor threads (persist).
    """

    KEEP_FINISHED = 32  # finished runs kept in memory for fast replays
    # Runs read back from the store, most recent last. A replay loads its run
    # twice within milliseconds (the page, then its socket): this makes it once.
    # Small, because a big run is tens of MB as Python objects.
    KEEP_LOADED = 4

    def __init__(self, store):
        self.store = store
        self._live: dict[str, Run] = {}
        self._loaded: collections.OrderedDict[str, Run] = collections.OrderedDict()
        self._forgotten = 0  # bumped by forget: a load that began before a delete is not kept
        self._lock = threading.Lock()

    def create(self, experiment: str, params: dict, *, await_viewer: bool = False, client: str = "") -> Run:
        run = Run(id=new_run_id(), experiment=experiment, params=params, await_viewer=await_viewer, client=client)
        self.store.insert_run(run)
        with self._lock:
            self._live[run.id] = run
        return run

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            run = self._live.get(run_id) or self._loaded.get(run_id)
            if run is not None:
                if run_id in self._loaded:
                    self._loaded.move_to_end(run_id)
                return run
            forgotten = self._forgotten
        run = self.store.load_run(run_id)  # outside the lock: other lookups need not wait for SQLite
        if run is not None:
            with self._lock:
                if run_id in self._loaded:  # two threads loaded it at once: keep one
                    return self._loaded[run_id]
                if forgotten != self._forgotten:
                    return run
                self._loaded[run_id] = run
                while len(self._loaded) > self.KEEP_LOADED:
                    self._loaded.popitem(last=False)
        return run

    def persist(self, run: Run) -> None:
        """Called by ``Run.finish`` on the supervisor thread, before viewers hear of it."""
        self.store.finish_run(run)
        with self._lock:
            finished = [r for r in self._live.values() if r.state.finished]
            for old in sorted(finished, key=lambda r: r.finished_at or 0)[: max(0, len(finished) - self.KEEP_FINISHED)]:
                del self._live[old.id]

    def live(self) -> list[Run]:
        with self._lock:
            return [run for run in self._live.values() if not run.state.finished]

    def forget(self, run_id: str) -> None:
        """Drop a deleted run from memory (the store has already lost it)."""
        with self._lock:
            self._live.pop(run_id, None)
            self._loaded.pop(run_id, None)
            self._forgotten += 1
