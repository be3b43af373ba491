"""Watch a worker process's threads from outside, through /proc, at ~1 kHz.

Runs in the supervisor on its own thread (``Sampler.start``); the worker needs
no instrumentation. Files stay open and are re-read with ``os.pread``: per
sample the leader's ``stat`` (process state, thread count), then each thread's
``schedstat`` and, when it ran, its ``syscall``. Measured here:
~22 us per sample with 6 threads, ~110 us with 64 (3% / 11% of a core at 1 kHz).

What a ``syscall`` line means (which state), and whether this server can read
them at all (``proc_readable``), is ``syscalls.py``'s business. While every
thread sleeps until a known time or waits on another, the sampler does not wake
at all (``quiet.py``: 1,000 wakes a second change the program watched).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from . import quiet
from .memory_map import MemoryMap
from .syscalls import untimed_wait
from .task import Task

# A thread blocked (lock, sleep, I/O) without running for IDLE_NS is read every
# IDLE_EVERY-th sample only: with 64 mostly blocked threads, reading them all at
# 1 kHz was most of the sampler's cost (bench/RESULTS.md). Its wake-up is then
# seen up to IDLE_EVERY ms late, once, after a long wait; busy threads keep 1 ms.
IDLE_NS, IDLE_EVERY = 20_000_000, 4
_IDLE_STATES = frozenset(("lock", "sleep", "io"))
_GONE = (FileNotFoundError, ProcessLookupError)  # ENOENT, ESRCH: the task exited


class Sampler:
    """Samples every thread of process ``pid``; see the module docstring.

    ``start``, ``exclude``, ``stop`` and ``statistics`` are called from any
    supervisor thread; everything else, ``on_events`` included, runs on the
    sampler thread. ``last_error`` holds the last error counted.
    """

    def __init__(self, pid: int, on_events, *, interval_s=0.001, batch_s=0.025, cpu_window_s=0.020,
                 exclude_tids=(), clock=time.perf_counter_ns, gil=True, max_threads=512, watch=None,
                 always_read=frozenset(), memory=None, maps=None):  # fmt: skip
        self.pid, self._on_events, self._clock = pid, on_events, clock
        # watch(ran, since_read): extra reads at each sample (RLock owners, Locks held, from memory),
        # given the tids that ran since the last sample or were not read in it, and since_read()
        # for what ran after they were read -> [(key, kind, data)] events.
        # always_read: tids never left unread while idle (a Lock's holder), updated by on_events.
        self._watch, self._always_read = watch, always_read
        self._memory = memory  # ProcessMemory: where sleepers keep their deadlines; None: no pause (quiet.py)
        self._pause_until = None  # CLOCK_MONOTONIC ns: set by a sample that found the process quiet
        self._wake = threading.Event()  # ends a pause early: stop()
        self.has_read = threading.Event()  # the process was read once (or never will be): the run may begin
        self._pauses = self._paused_ns = 0
        self._flushed_t = 0  # the last sample on_events has had: always_read is current up to it
        self._maps = maps or MemoryMap(pid, gil)  # where the GIL lives; passed in: read before the job
        self.max_threads = max_threads
        self._untracked: set = set()
        self._interval, self._batch = int(interval_s * 1e9), int(batch_s * 1e9)
        self._window = int(cpu_window_s * 1e9)
        self._excluded = set(exclude_tids)  # shared: set.add and `in` are atomic
        self._task_dir = f"/proc/{pid}/task"
        self._threads: dict[int, Task] = {}
        self._stat_fd = None
        self._relist, self._ntasks = True, -1
        self._events: list = []
        self._vanished: list = []  # tids that ended since the last watch(ran)
        self._thread = None
        self._stopping = False
        self._intervals: deque = deque(maxlen=100_000)
        self._samples = self._cost_ns = self._errors = self._cpu_ns = self._wall_ns = 0
        self._gone_cpu = 0  # on-CPU ns of threads that have exited, for the busy-cores line
        self._cores_t = self._cores_cpu = None  # start of the current busy-cores window, CPU then
        self._seen: set = set()
        self.last_error = ""

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sampler-{self.pid}", daemon=True)
            self._thread.start()

    def exclude(self, tid: int) -> None:
        # The sampler thread drops it at its next sample, without a "gone" event.
        self._excluded.add(tid)
        self._relist = True

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def statistics(self) -> dict:
        iv = sorted(self._intervals)  # copying a deque is atomic under the GIL
        n = len(iv)

        def ms(ns):
            return round(ns / 1e6, 4) if n else None

        return {
            "samples": self._samples,
            "interval_mean_ms": ms(sum(iv) / max(n, 1)),
            "interval_p50_ms": ms(iv[n // 2] if n else 0),
            "interval_p95_ms": ms(iv[min(n - 1, n * 95 // 100)] if n else 0),
            "cost_mean_us": round(self._cost_ns / max(self._samples, 1) / 1e3, 2),
            "cpu_percent": round(100 * self._cpu_ns / max(self._wall_ns, 1), 2),  # of one core
            "threads_seen": len(self._seen),
            "errors": self._errors,
            "untracked_threads": len(self._untracked),
            "maps_reads": self._maps.reads,
            "pauses": self._pauses,  # quiet.py: stretches with no sample, nothing being able to change
            "paused_ms": round(self._paused_ns / 1e6, 1),
        }

    def all_stuck_since(self) -> int | None:
        """If every sampled thread waits on a lock with no timeout, since when (clock ns).

        Called from the supervisor thread. Nothing in the process can wake such
        threads, so after a while it is a deadlock; None while any thread can
        still move (or some threads are not sampled at all).
        """
        threads = list(self._threads.values())  # one C-level copy: safe against the sampler thread
        if not threads or self._untracked:
            return None
        since = [th.stuck_since for th in threads]
        return None if None in since else max(since)

    def stuck(self) -> dict[int, int]:
        """tid -> since when (clock ns) it waits on a lock with no timeout; any thread may call it."""
        return {tid: th.stuck_since for tid, th in list(self._threads.items()) if th.stuck_since is not None}

    # ---- everything below runs on the sampler thread ----

    def _error(self, exc):
        self._errors += 1
        self.last_error = repr(exc)

    def _run(self):
        cpu0, wall0 = time.thread_time_ns(), time.perf_counter_ns()
        try:
            self._stat_fd = os.open(f"{self._task_dir}/{self.pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
            if self._maps.first_read is None:
                self._maps.load(self._clock())
            self._loop(cpu0, wall0)
        except _GONE:
            pass  # the process ended before the first sample
        except Exception as e:  # never raise out of this thread
            self._error(e)
        finally:
            self.has_read.set()
            for th in self._threads.values():
                th.close()
            self._threads.clear()
            if self._stat_fd is not None:
                os.close(self._stat_fd)
            self._flush()
            self._account(cpu0, wall0)

    def _account(self, cpu0, wall0):
        self._cpu_ns = time.thread_time_ns() - cpu0  # this thread's CPU: read it here
        self._wall_ns = time.perf_counter_ns() - wall0

    def _loop(self, cpu0, wall0):
        start = last_flush = self._clock()
        k, prev = 0, None
        while not self._stopping:
            t = self._clock()
            if prev is not None:
                self._intervals.append(t - prev)
            prev = t
            w0 = time.perf_counter_ns()
            alive = self._sample(t)
            self._cost_ns += time.perf_counter_ns() - w0
            self._samples += 1
            if self._samples == 1:  # once: Event.set() takes a lock, not for every sample
                self.has_read.set()
            if not alive:
                return
            if t - last_flush >= self._batch or self._pause_until is not None:
                last_flush = t
                self._flush()
                self._flushed_t = t
                self._account(cpu0, wall0)
            if self._pause_until is not None:
                self._pause()
                prev = None  # the pause is no sampling interval: leave it out of the statistics
                continue  # sample at once: the earliest sleeper woke one interval ago
            # Deadline schedule: tick k is at start + k * interval; missed ticks are skipped.
            now = self._clock()
            k = max(k + 1, (now - start) // self._interval + 1)
            time.sleep(min(max(start + k * self._interval - now, 0), self._interval) / 1e9)

    def _pause(self):
        p0 = time.monotonic_ns()
        until, self._pause_until = self._pause_until, None
        if until > p0:
            self._wake.wait((until - p0) / 1e9)
            self._pauses += 1
            self._paused_ns += time.monotonic_ns() - p0

    def _quiet(self, t):
        """After a sample: pause if nothing can change for a while (quiet.py), closing the CPU
        windows first, so that none spans the pause. Every thread is off a CPU, so their CPU
        times are exact and a window shorter than usual is still true."""
        threads = list(self._threads.values())
        until = quiet.quiet_until(threads, bool(self._untracked) or self._relist)
        if until is None or not quiet.confirmed(threads, lambda: self._leader()[1], self._ntasks):
            return
        for tid, th in self._threads.items():
            if th.cpu0 is not None:
                self._end_window(t, tid, th)
        self._busy_cores(t, close=True)
        self._pause_until = until

    def _end_window(self, t, tid, th):
        """A thread's CPU window ends at ``t``: its CPU time in it, if any, and the next begins."""
        if th.cpu > th.cpu0:
            self._events.append([t, tid, "cpu", th.cpu - th.cpu0])
        th.cpu0, th.t0 = th.cpu, t

    def _flush(self):
        if self._events:
            batch, self._events = self._events, []
            try:
                self._on_events(batch)
            except Exception as e:  # a bug in the caller must not stop sampling
                self._error(e)

    def _open(self, tid) -> Task | None:
        try:
            return Task.open(self._task_dir, tid, slots=IDLE_EVERY)
        except OSError as e:
            if not isinstance(e, _GONE):  # e.g. permission: count it once, then leave the tid alone
                self._error(e)
                self._excluded.add(tid)
            return None

    def _gone(self, tid, t, report=True):
        # A thread that ends wakes whoever joins it: the others' stuck clocks start over (seen
        # awake at their next read). First: close() releases the GIL, and the supervisor
        # (all_stuck_since) must not find the joiner alone then, stuck since its join().
        for other in self._threads.values():
            other.stuck_since = None
        th = self._threads.pop(tid)
        th.close()
        self._gone_cpu += th.cpu
        self._vanished.append(tid)  # it may have run (let a lock go) before it ended: for watch(ran)
        if report:
            if th.cpu0 is not None and th.cpu > th.cpu0:  # the last, partial window
                self._events.append([t, tid, "cpu", th.cpu - th.cpu0])
            self._events.append([t, tid, "gone", None])

    def _sample(self, t) -> bool:
        """One sample of every thread; False once the process is gone."""
        try:
            state, count = self._leader()
            dead = state in (b"Z", b"X") and count <= 1  # exited, maybe not reaped yet
        except (OSError, ValueError, IndexError):
            dead = True
        if dead:
            for tid in list(self._threads):
                self._gone(tid, t)
            return False
        # Listing task/ costs ~10 us (6 threads) to ~40 us (64): list only when
        # the thread count moved or a thread vanished. A thread born since the
        # last sample always causes one of the two, so none is missed.
        if self._relist or count != self._ntasks:
            self._list_tasks(t)
        events, window = self._events, self._window
        turn = self._samples % IDLE_EVERY
        ran = []  # threads that ran since the last sample, or may have (not read in this one, or ended)
        for tid, th in list(self._threads.items()):
            if (
                th.idle_since is not None
                and t - th.idle_since >= IDLE_NS
                and th.slot != turn
                and tid not in self._always_read
                and th.idle_since <= self._flushed_t  # on_events has seen it take what it holds
            ):
                ran.append(tid)
                continue
            try:
                # schedstat (0.8 us) every time; syscall (1.8 us, the dearer
                # read) only when the thread ran since the last sample or was
                # runnable: a thread that has not run cannot have left its
                # syscall. (A thread woken but not yet on a CPU shows its old
                # state until it runs, a few ms at most.) bench/RESULTS.md: this
                # halves the sampler's cost with 64 mostly blocked threads.
                cpu, runs = th.read_sched()
                moved = th.moved(cpu, runs)
                if moved:
                    ran.append(tid)
                if moved or not th.raw or th.raw[:1] == b"r":
                    raw = th.read_syscall()
                    th.idle_since = None
                    if moved:  # it ran since the last read: whatever it waits on now, it just began
                        th.stuck_since = None
                else:
                    raw = th.raw
                    if th.idle_since is None and th.state in _IDLE_STATES:
                        th.idle_since = t
                th.cpu, th.runs = cpu, runs
                due = t - th.t0 >= window or th.cpu0 is None
            except (OSError, ValueError, IndexError):  # ESRCH: exited since the listing
                self._gone(tid, t)
                self._relist = True
                continue
            changed = raw != th.raw
            if changed:  # an identical line (it has sp and pc) is the same state
                th.raw = raw
                line = raw.decode("ascii", "replace")
                state = self._maps.classify(line, t)
                if state != th.state:
                    th.state = state
                    events.append([t, tid, "S", state])
                futex = int(line.split()[1], 16) if state == "lock" else None
                th.untimed = state == "lock" and untimed_wait(line)
                if futex != th.futex:
                    th.futex = futex
                    # [futex, untimed?]: a thread that ends an untimed wait on a Lock has taken it
                    events.append([t, tid, "on", None if futex is None else [futex, th.untimed]])
            if changed or moved:  # a new call, or the same line again after it ran: a new deadline
                th.wakes_at = quiet.deadline(self._memory, raw) if th.state == "sleep" else None
            # Stuck: on a lock with no timeout since then, without running once (deadlock watch).
            th.stuck_since = (th.stuck_since or t) if th.untimed else None
            if th.cpu0 is None:
                th.cpu0, th.t0 = th.cpu, t
            elif due:
                self._end_window(t, tid, th)
        self._busy_cores(t)
        if self._watch is not None:
            ran += self._vanished
            events.extend([t, key, kind, data] for key, kind, data in self._watch(ran, self._ran_since_read))
        self._vanished.clear()
        self._quiet(t)
        return True

    def _leader(self) -> tuple[bytes, int]:
        """The process's state letter and thread count, from the leader's stat (~3 us)."""
        stat = os.pread(self._stat_fd, 1024, 0).rpartition(b")")[2].split()
        return stat[0], int(stat[17])

    def _ran_since_read(self) -> list[int]:
        """Sampler thread, from ``watch`` after it read memory that changed: the tids that ran
        since this sample read them, and 0 (no tid is 0) if a thread was born since the listing.

        The memory was read after the threads, so whoever changed it may have run in
        between; reading them again covers that gap (~1 us a thread, only on a change).
        """
        out = []
        for tid, th in list(self._threads.items()):
            try:
                if th.moved(*th.read_sched()):
                    out.append(tid)
            except (OSError, ValueError, IndexError):
                out.append(tid)  # ended meanwhile: it may have
        try:
            count = self._leader()[1]
        except (OSError, ValueError, IndexError):
            count = -1
        if count != self._ntasks:
            self._relist = True
            out.append(0)
        return out

    def _busy_cores(self, t, close=False):
        """Process-wide CPU over wall time, one ``cores`` event per CPU window (close: end it now)."""
        if self._cores_t is not None and t - self._cores_t < self._window and not (close and t > self._cores_t):
            return
        cpu = self._gone_cpu + sum(th.cpu for th in self._threads.values())
        if self._cores_t is not None:
            self._events.append([t, None, "cores", round((cpu - self._cores_cpu) / (t - self._cores_t), 3)])
        self._cores_t, self._cores_cpu = t, cpu

    def _list_tasks(self, t):
        self._relist = False  # first, so that an exclude() from now on asks again
        try:  # other errors (permission) end the sampler: see _run
            tids = {int(name) for name in os.listdir(self._task_dir)}
        except _GONE:
            tids = set()  # the next stat read ends the sampler
        self._ntasks = len(tids)
        for tid in [tid for tid in self._threads if tid not in tids or tid in self._excluded]:
            self._gone(tid, t, report=tid not in self._excluded)
        for tid in tids - self._threads.keys() - self._excluded:
            if len(self._threads) >= self.max_threads:
                # Two open files per thread live in the *server* process: a thread
                # bomb must not exhaust the server's descriptors. Later threads
                # are left unsampled (counted in statistics).
                self._untracked.add(tid)
                continue
            th = self._open(tid)  # None if it exited since the listing
            if th is not None:
                if self._samples:  # born since the last sample: count all its CPU
                    th.cpu0, th.t0 = 0, t
                self._threads[tid] = th
                self._seen.add(tid)
