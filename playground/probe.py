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
whoever sends (see "Who sends" below) calls :meth:`Probe.drain`. A ``deque``
carries events between them because ``append`` and ``popleft`` are atomic
without a lock, on GIL and free-threaded builds alike: a lock here would be
exactly the observer effect FACTS.md warns about.

Who sends. A thread that wakes up only to send would be a context switch of
its own and a GIL request in the observed process every time (bench/switches.py:
a flusher waking every 50 ms was nearly all of an observed run's extra
switches). So the recorders that run where a thread is awake anyway (a
thread's start and end, a phase, a printed line, a primitive's record) call
``nudge``: it sends at once, on that thread, when the last send is at least
``SEND_DUE_NS`` old; otherwise it notes the oldest unsent event in
``state[1]``. The supervisor reads ``state`` from outside (``/proc/<pid>/mem``,
the address is :meth:`Probe.state_address`) and asks the worker's flusher to
send only when something has been waiting too long (sandbox/flush_requests.py).
The hot ``emit`` does not nudge: the next nudge, or the flusher, takes its events.

Cost. Every event an experiment thread records is time taken from the
experiment, so the recording side does the least it can (bench/event_cost.py):
``emit`` and ``mark`` are closures over cached locals that append the raw clock
and the lane from a ``threading.local``; the flusher's ``drain`` does the rest
(run-relative times, the event cap) on its own time.

Standard library only.
"""

from __future__ import annotations

import array
import collections
import os
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
        "switch_interval_s": sys.getswitchinterval(),  # the GIL hand-off period the chart's stripes show
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
        self.probe.nudge()
        self._cpu0 = time.process_time_ns()
        self._wall0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_ns = time.perf_counter_ns() - self._wall0
        self.cpu_ns = time.process_time_ns() - self._cpu0
        self.probe.emit("E", self.label)
        self.probe.nudge()

    @property
    def wall_ms(self) -> float:
        return self.wall_ns / 1e6

    @property
    def cpu_ms(self) -> float:
        return self.cpu_ns / 1e6


# A recording thread sends by itself when the last send is this old: often enough
# that a burst leaves little behind, seldom enough that sending (~15 µs plus
# ~0.5 µs an event) stays ~1% of the thread's time (bench/event_cost.py).
SEND_DUE_NS = 1_000_000
# A thread's start is sent at once, whatever the time, for the first this many
# lanes: the page draws each lane as it starts, and a burst of starts would
# otherwise leave most of itself waiting for the flusher (a wake, so a context
# switch). Beyond it (too-many-threads) the ~15 µs a send costs
# would weigh on exactly what that experiment measures, so they wait their turn.
PROMPT_LANES = 64


get_ident = threading.get_ident


def _recorders(append, max_mark_chars: int, state, sender: list, clock=time.perf_counter_ns):
    """``emit``, ``emit_in``, ``mark``, ``nudge`` and ``send_now`` as closures: no
    ``self`` lookups, no method binding.

    Called from any experiment thread. ``emit`` appends ``(raw clock, thread
    ident, kind, data)`` and nothing else: the ident is one C call, where a
    ``threading.local`` lane costs ~20 ns more (bench/event_cost.py), and
    ``Probe.drain`` turns idents into lanes, makes the time run-relative and
    applies the cap. ``emit_in`` names the lane itself, stored as ``~lane``
    (<= 0; an ident never is). ``sender`` is empty until the worker attaches
    its send function.
    """

    def send_now() -> None:
        """Send what is queued now, if this process sends at all (else leave it waiting)."""
        if sender:
            sender[0]()
        elif not state[1]:
            state[1] = clock()

    def nudge() -> None:
        """After recording, outside critical sections: send now if due, else note what waits."""
        now = clock()
        if sender and now - state[0] >= SEND_DUE_NS:
            sender[0]()
        elif not state[1]:
            state[1] = now  # the oldest unsent event: the supervisor asks for it once it is stale

    def emit(kind: str, data=None) -> None:
        """Record an event in the calling thread's lane."""
        append((clock(), get_ident(), kind, data))

    def emit_in(lane: int, kind: str, data=None) -> None:
        """Record an event in ``lane`` (-1: the process), whichever thread calls."""
        append((clock(), ~lane, kind, data))

    def mark(text: str) -> None:
        """An instant mark in the calling thread's lane (what it printed); nudges, inline."""
        if len(text) > max_mark_chars:
            text = text[: max_mark_chars - 1] + "…"
        now = clock()
        append((now, get_ident(), "M", text))
        if sender and now - state[0] >= SEND_DUE_NS:
            sender[0]()
        elif not state[1]:
            state[1] = now

    return emit, emit_in, mark, nudge, send_now


class Probe:
    def __init__(self, *, max_events: int = 500_000, max_mark_chars: int = 200):
        self.t0 = time.perf_counter_ns()
        self._events: collections.deque = collections.deque()
        self._lanes: dict[int, int] = {}  # threading.get_ident() -> lane, for code that knows only the ident
        self._drained_lanes: dict[int, int] = {}  # the same, as of the events drain has reached
        self._lane_lock = threading.Lock()  # taken once per thread start, never in a critical section
        self._next_lane = 0
        self._kept = 0  # events drain has handed out: the cap counts these
        self.max_events = max_events
        self.max_mark_chars = max_mark_chars
        self.dropped = 0
        self._original_bootstrap = None
        self.interpreter = interpreter_info()
        # [time of the last send, time of the oldest event not sent yet (0: none)],
        # raw perf_counter_ns (CLOCK_MONOTONIC, the supervisor's clock too). An
        # array, so its two words sit at a fixed address the supervisor can read;
        # never resized. Written by whichever thread records or sends.
        self.state = array.array("q", [self.t0, 0])
        self._sender: list = []
        # Instance attributes, so ``probe.emit(...)`` calls the closure directly.
        self.emit, self.emit_in, self.mark, self.nudge, self._send_now = _recorders(
            self._events.append, max_mark_chars, self.state, self._sender
        )

    # -- recording (any thread) ---------------------------------------------
    # ``emit(kind, data=None)``, ``emit_in(lane, kind, data=None)``, ``mark(text)``
    # and ``nudge()`` are set per instance in __init__ (see _recorders).

    def send_with(self, send) -> None:
        """The worker's main thread, before the run: ``send()`` sends what is queued (any thread)."""
        self._sender[:] = [send]
        # A child an experiment forks inherits the probe and the channel's fd, but not the
        # sender's threads or a consistent channel: it must not send (its events stay in it).
        os.register_at_fork(after_in_child=self._sender.clear)

    def state_address(self) -> int:
        """Where ``state`` lives in this process's memory, for the supervisor's reads."""
        return self.state.buffer_info()[0]

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
        # ident is what an RLock stores as its owner: the supervisor reads it from memory.
        # drain() maps this ident to this lane from this event on (idents are reused).
        info = {"name": thread.name, "tid": threading.get_native_id(), "ident": threading.get_ident()}
        self.emit_in(lane, "lane", info)
        self.lane_recorded(lane)
        return lane

    def lane_recorded(self, lane: int) -> None:
        """After a thread's ``lane``: send at once while lanes are few (PROMPT_LANES)."""
        if lane < PROMPT_LANES:
            self._send_now()
        else:
            self.nudge()

    def phase(self, label: str) -> Phase:
        """``with probe.phase("threads") as p:`` times a stretch of the run.

        Works on any thread: the span lands in the calling thread's lane. Never
        use it inside a critical section (it records on entry and exit).
        """
        return Phase(self, label)

    def count(self, name: str, value: float) -> None:
        """A counter sample (a queue's length, a semaphore's free slots) in the caller's lane."""
        self.emit("C", {"name": name, "value": value})
        self.nudge()

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
                probe.emit_in(lane, "end")
                # Not sent at once, unlike the start: threads that end together would each
                # hold the GIL to send, and the main thread's join() would wait for every one
                # of them in turn (bench/switches.py: io-bound's main thread +5 switches).
                probe.nudge()

        threading.Thread._bootstrap_inner = _bootstrap_inner

    def uninstall(self) -> None:
        if self._original_bootstrap is not None:
            threading.Thread._bootstrap_inner = self._original_bootstrap
            self._original_bootstrap = None

    # -- draining (whichever thread sends) -------------------------------------

    def drain(self, limit: int = 20_000) -> list:
        """Up to ``limit`` events ``[t_ns, lane, kind, data]``, times from the run's start.

        One consumer at a time: the worker's send function holds its own lock
        around this. The cap on events (``max_events``) is applied here rather
        than in ``emit``, which stays cheap: once reached, whatever is queued is
        dropped and counted in ``dropped``. It bounds what leaves the worker; the
        queue itself holds what is recorded between two sends.
        """
        events = self._events
        n = min(len(events), limit)  # appends meanwhile wait for the next call
        room = self.max_events - self._kept
        take = n if n <= room else max(room, 0)
        popleft, t0, lanes = events.popleft, self.t0, self._drained_lanes
        out = []
        add = out.append
        for _ in range(take):
            t, key, kind, data = popleft()
            if key > 0:  # a thread ident: its lane as of this event
                lane = lanes.get(key, -1)
            else:
                lane = ~key
                if kind == "lane":  # a thread's first event: its ident means this lane from here on
                    lanes[data["ident"]] = lane
            add([t - t0, lane, kind, data])
        self._kept += take
        if take < n:  # over the cap: drop what is queued, counting it
            excess = len(events)
            for _ in range(excess):
                popleft()
            self.dropped += excess
        return out


_get_ident = threading.get_ident  # LaneWriter.write calls it twice per print()


class LaneWriter:
    """A ``sys.stdout`` replacement: each printed line becomes a mark in the
    printing thread's lane, and is kept (bounded) for the run's output.

    Called from whichever experiment thread prints. Partial lines are kept per
    thread so two threads printing at once do not splice each other's text.

    ``print(x)`` writes ``str(x)`` and then ``"\n"`` in two calls: those two
    shapes take a fast path (no split, no join), since a printing loop is
    exactly where the recorder's cost shows (bench/event_cost.py).
    """

    encoding = "utf-8"

    def __init__(self, probe: Probe, *, max_chars: int = 64_000):
        self.probe = probe
        self.max_chars = max_chars
        self.kept: collections.deque = collections.deque()
        self._kept_chars = 0
        self.truncated = False
        self._partial: dict[int, str] = {}
        self._mark = probe.mark

    def write(self, text: str) -> int:
        ident = _get_ident()
        partial = self._partial
        if "\n" not in text:  # print's text: its end comes next
            if text:
                partial[ident] = partial[ident] + text if ident in partial else text
            return len(text)
        if text == "\n":  # print's end: the line is what this thread wrote before
            line = partial.pop(ident, "")
            self._mark(line)
            if self._kept_chars + len(line) <= self.max_chars:
                self._kept_chars += len(line) + 1
                self.kept.append(line)
            else:
                self.truncated = True  # as _keep does, without the call
            return 1
        buffered = partial.pop(ident, "") + text
        *lines, rest = buffered.split("\n")
        if rest:
            self._partial[ident] = rest
        for line in lines:
            self._mark(line)
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
