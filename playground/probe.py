"""The in-worker recorder: thread lifecycle, names, phases and printed marks.

What a thread *does* (running, waiting for the GIL, blocked on a lock, asleep,
in I/O) is observed from outside by the supervisor's /proc sampler, so the
experiment's code is not perturbed. This recorder adds only what the OS cannot
see: which Python thread is which (name, lane), when it started and ended, the
phases an experiment marks (``with probe.phase("threads"):``) and what each
thread printed. Nothing here runs inside an experiment's critical section.

Events are lists ``[t_ns, lane, kind, data]`` with ``t_ns`` measured from the
run's start on ``time.perf_counter_ns`` (CLOCK_MONOTONIC on Linux, the clock
the supervisor's sampler reads too). Kinds: ``lane`` (data: name, tid),
``end``, ``B``/``E`` (data: label), ``M`` (data: text), ``C`` (data: name, value).

Threads: any experiment thread calls :meth:`Probe.emit` (through the hooks);
the worker's flusher thread calls :meth:`Probe.drain`. A ``deque`` carries
events between them because ``append`` and ``popleft`` are atomic without a
lock, on GIL and free-threaded builds alike: a lock here would be exactly the
observer effect FACTS.md warns about.

Standard library only.
"""

from __future__ import annotations

import collections
import platform
import sys
import sysconfig
import threading
import time


def interpreter_info() -> dict:
    """What this interpreter is, and whether the GIL is on *now*.

    The build flag is not enough: a free-threaded build re-enables the GIL when
    it imports an extension not marked safe for it, so ask the running state.
    """
    free_threaded_build = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return {
        "executable": sys.executable,
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "version_info": list(sys.version_info[:3]),
        "free_threaded_build": free_threaded_build,
        "gil_enabled": is_gil_enabled() if is_gil_enabled else True,
    }


class Phase:
    """Wall and process-CPU time of one labelled stretch of the main thread."""

    def __init__(self, probe: Probe, label: str):
        self.probe = probe
        self.label = label
        self.wall_ns = 0
        self.cpu_ns = 0

    def __enter__(self) -> Phase:
        self.probe.emit("B", self.label)
        self._cpu0 = time.process_time_ns()
        self._wall0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_ns = time.perf_counter_ns() - self._wall0
        self.cpu_ns = time.process_time_ns() - self._cpu0
        self.probe.emit("E", self.label)

    @property
    def wall_ms(self) -> float:
        return self.wall_ns / 1e6

    @property
    def cpu_ms(self) -> float:
        return self.cpu_ns / 1e6


class Probe:
    def __init__(self, *, max_events: int = 500_000, max_mark_chars: int = 200):
        self.t0 = time.perf_counter_ns()
        self._events: collections.deque = collections.deque()
        self._lanes: dict[int, int] = {}  # threading.get_ident() -> lane
        self._lane_lock = threading.Lock()  # taken once per thread start, never in a critical section
        self._next_lane = 0
        self._count = 0
        self.max_events = max_events
        self.max_mark_chars = max_mark_chars
        self.dropped = 0
        self._original_bootstrap = None
        self.interpreter = interpreter_info()

    # -- recording (any thread) ---------------------------------------------

    def emit(self, kind: str, data=None, lane: int | None = None) -> None:
        if lane is None:
            lane = self._lanes.get(threading.get_ident(), -1)
        # The count is a soft cap: an unlocked += may undercount under a race,
        # which only lets a few more events through; a lock would perturb.
        if self._count >= self.max_events:
            self.dropped += 1
            return
        self._count += 1
        self._events.append([time.perf_counter_ns() - self.t0, lane, kind, data])

    def register_current_thread(self, thread: threading.Thread | None = None) -> int:
        """Give the calling thread a lane and record its name and native id.

        ``thread`` is passed by the start hook, which runs before threading
        has registered the new thread (current_thread() would be a dummy).
        """
        thread = thread or threading.current_thread()
        with self._lane_lock:
            lane = self._next_lane
            self._next_lane += 1
            self._lanes[threading.get_ident()] = lane
        self.emit("lane", {"name": thread.name, "tid": threading.get_native_id()}, lane=lane)
        return lane

    def mark(self, text: str) -> None:
        """An instant mark in the calling thread's lane (what it printed)."""
        if len(text) > self.max_mark_chars:
            text = text[: self.max_mark_chars - 1] + "…"
        self.emit("M", text)

    def phase(self, label: str) -> Phase:
        """``with probe.phase("threads") as p:`` times a stretch of the run.

        Works on any thread: the span lands in the calling thread's lane. Never
        use it inside a critical section (it records on entry and exit).
        """
        return Phase(self, label)

    def count(self, name: str, value: float) -> None:
        """A counter sample (a queue's length, a semaphore's free slots) in the caller's lane."""
        self.emit("C", {"name": name, "value": value})

    @property
    def lanes(self) -> int:
        return self._next_lane

    # -- hooks (installed by the worker's main thread before the run) ----------

    def install(self) -> None:
        """Record every thread's start and end without touching experiment code.

        ``Thread._bootstrap_inner`` is the method every ``threading.Thread``
        runs first in its new OS thread (3.10 to 3.14). Wrapping it gives the
        lane, the name and the native tid at the moment the thread begins, and
        the end when ``run()`` returns or raises, at no cost in between.
        """
        probe = self
        original = threading.Thread._bootstrap_inner
        self._original_bootstrap = original

        def _bootstrap_inner(thread):
            lane = probe.register_current_thread(thread)
            try:
                original(thread)
            finally:
                probe.emit("end", None, lane=lane)

        threading.Thread._bootstrap_inner = _bootstrap_inner

    def uninstall(self) -> None:
        if self._original_bootstrap is not None:
            threading.Thread._bootstrap_inner = self._original_bootstrap
            self._original_bootstrap = None

    # -- draining (the worker's flusher thread) -------------------------------

    def drain(self, limit: int = 20_000) -> list:
        out = []
        popleft = self._events.popleft
        try:
            while len(out) < limit:
                out.append(popleft())
        except IndexError:
            pass
        return out


class LaneWriter:
    """A ``sys.stdout`` replacement: each printed line becomes a mark in the
    printing thread's lane, and is kept (bounded) for the run's output.

    Called from whichever experiment thread prints. Partial lines are kept per
    thread so two threads printing at once do not splice each other's text.
    """

    encoding = "utf-8"

    def __init__(self, probe: Probe, *, max_chars: int = 64_000):
        self.probe = probe
        self.max_chars = max_chars
        self.kept: collections.deque = collections.deque()
        self._kept_chars = 0
        self.truncated = False
        self._partial: dict[int, str] = {}

    def write(self, text: str) -> int:
        ident = threading.get_ident()
        buffered = self._partial.pop(ident, "") + text
        *lines, rest = buffered.split("\n")
        if rest:
            self._partial[ident] = rest
        for line in lines:
            self.probe.mark(line)
            self._keep(line)
        return len(text)

    def _keep(self, line: str) -> None:
        if self._kept_chars + len(line) > self.max_chars:
            self.truncated = True
            return
        self._kept_chars += len(line) + 1
        self.kept.append(line)

    def flush(self) -> None:
        """print(flush=True) calls this; marks are already live, nothing to do."""

    def close(self) -> None:
        """At the end of the run (worker's main thread): keep unterminated lines."""
        for ident in list(self._partial):
            line = self._partial.pop(ident, "")
            if line:
                self.probe.mark(line)
                self._keep(line)

    def isatty(self) -> bool:
        return False

    def output(self) -> str:
        return "\n".join(self.kept)
