"""Watch a worker process's threads from outside, through /proc, at ~1 kHz.

Runs in the supervisor on its own thread (``Sampler.start``); the worker needs
no instrumentation. Each sample re-reads, for every thread, the already-open
``/proc/<pid>/task/<tid>/syscall`` and ``schedstat`` files with ``os.pread``
(FACTS.md: ~15 us per sample for 6 threads, against ~55 us reopening 4 files).

The kernel prints a syscall number in ``syscall`` only while the thread sleeps
in it; a thread on a CPU or runnable reads ``running``. So a number means
"blocked here" and the state follows from the syscall and its arguments.

Syscall numbers (measured with CPython 3.10.13-3.13.0 on x86_64, glibc 2.36;
aarch64 from the kernel's generic table, not measured):

============================  ======  =======  ===================================
syscall                       x86_64  aarch64  state
============================  ======  =======  ===================================
futex, WAIT-type op           202     98       ``gil`` if the address is in the
                                               writable data of python/libpython,
                                               else ``lock``
futex, WAKE/REQUEUE op        202     98       ``running`` (never waits)
futex_waitv                   449     449      ``lock``
clock_nanosleep               230     115      ``sleep`` (time.sleep, 3.11+)
nanosleep                     35      101      ``sleep``
pselect6 / select, nfds == 0  270/23  72/-     ``sleep`` (time.sleep on 3.10)
poll / ppoll, nfds == 0       7/271   -/73     ``sleep``
the same with nfds > 0        ..      ..       ``io``
sched_yield, mmap, mprotect,  24, 9,  124,222, ``running`` (CPU work in the kernel;
munmap, brk, mremap, madvise  10, 11, 226,215, they sleep only on mm locks)
                              12, 25, 214,216,
                              28      233
anything else: read 0, recvfrom 45, accept4 288, wait4 61,     ``io``
epoll_wait 232, rt_sigtimedwait 128, ...
============================  ===================================================

What the interpreters did (see tests/fixtures/proc/*.json): GIL waits are
``futex(&_PyRuntime...gil, FUTEX_WAIT_BITSET_PRIVATE)`` (op 0x89) plus op 0x80
on the GIL mutex and 0x189 on the switch condition, all inside libpython's
writable data on every version. ``threading.Lock`` waits are op 0x189 on a
malloc'd semaphore in ``[heap]`` on 3.10-3.13.0; on 3.13 ``Thread.join`` parks
in the parking lot, whose semaphore is on the waiter's stack: ``lock`` too.
"""

from __future__ import annotations

import bisect
import os
import re
import sys
import threading
import time
from collections import deque

STATES = ("running", "gil", "lock", "sleep", "io")

_FUTEX, _SELECT, _POLL = "futex", "select", "poll"  # need the arguments
_TABLES = {
    "x86_64": {
        202: _FUTEX, 449: "lock", 230: "sleep", 35: "sleep",
        270: _SELECT, 23: _SELECT, 7: _POLL, 271: _POLL,
        24: "running", 9: "running", 10: "running", 11: "running",
        12: "running", 25: "running", 28: "running",
    },
    "aarch64": {
        98: _FUTEX, 449: "lock", 115: "sleep", 101: "sleep", 72: _SELECT, 73: _POLL,
        124: "running", 222: "running", 226: "running", 215: "running",
        214: "running", 216: "running", 233: "running",
    },
}  # fmt: skip
_TABLES["arm64"] = _TABLES["aarch64"]
MACHINE = os.uname().machine if hasattr(os, "uname") else ""
_SYSCALLS = _TABLES.get(MACHINE, {})
# FUTEX_WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2: the op after
# masking FUTEX_PRIVATE_FLAG (0x80) and FUTEX_CLOCK_REALTIME (0x100).
_FUTEX_WAITS = frozenset((0, 6, 9, 11, 13))
_LIBPYTHON = re.compile(r"libpython\d[\w.]*\.so")
_MAPS_RETRY_NS = 100_000_000


def classify(syscall_line: str, gil_ranges) -> str:
    """Pure function: one /proc/.../syscall line -> a state name. gil_ranges: list of (start, end) ints."""
    parts = syscall_line.split()
    if not parts or parts[0] == "running" or parts[0].startswith("-"):
        return "running"  # "-1 sp pc": blocked outside a syscall (page fault, stop)
    try:
        kind = _SYSCALLS.get(int(parts[0]), "io")
        if kind == _FUTEX:
            if int(parts[2], 16) & 0x7F not in _FUTEX_WAITS:
                return "running"
            addr = int(parts[1], 16)
            return "gil" if any(s <= addr < e for s, e in gil_ranges) else "lock"
        if kind == _SELECT:  # select(nfds, ...): no descriptors is a pure sleep
            return "sleep" if int(parts[1], 16) == 0 else "io"
        if kind == _POLL:  # poll(fds, nfds, ...)
            return "sleep" if int(parts[2], 16) == 0 else "io"
        return kind
    except (ValueError, IndexError):
        return "io"


def parse_maps(text: str, exe: str) -> tuple[list, list]:
    """/proc/<pid>/maps text -> (gil_ranges, every mapping as (start, end)), both sorted.

    gil_ranges: writable mappings of the executable or libpython*.so, each with
    the anonymous writable mapping right after it (their .bss).
    """
    gil, spans, prev_end = [], [], None
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 5:
            continue
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        path = fields[5].strip() if len(fields) > 5 else ""
        spans.append((lo, hi))
        writable = fields[1][1:2] == "w"
        ours = bool(path) and (path == exe or _LIBPYTHON.search(os.path.basename(path)))
        if writable and (ours or (not path and lo == prev_end)):
            if gil and gil[-1][1] == lo:
                gil[-1] = (gil[-1][0], hi)
            else:
                gil.append((lo, hi))
            prev_end = hi if ours else None
        else:
            prev_end = None
    return sorted(gil), sorted(spans)


def proc_readable(pid: int) -> tuple[bool, str]:
    """Can this process read /proc/<pid>/task/*/syscall? (False, reason) when not (not Linux, permission, ...)."""
    if not sys.platform.startswith("linux"):
        return False, f"thread states need Linux /proc (this is {sys.platform})"
    if MACHINE not in _TABLES:
        return False, f"no syscall table for architecture {MACHINE!r}"
    try:
        for name in ("syscall", "schedstat"):
            with open(f"/proc/{pid}/task/{pid}/{name}", "rb") as f:
                f.read(4096)
    except PermissionError:
        return False, f"no ptrace access to /proc/{pid}/task/{pid}/{name}"
    except FileNotFoundError:
        if os.path.isdir(f"/proc/{pid}"):
            return False, f"this kernel has no /proc/<pid>/task/<tid>/{name}"
        return False, f"no process {pid}"
    except OSError as e:
        return False, f"cannot read /proc/{pid}: {e.strerror}"
    return True, ""


class _Thread:
    __slots__ = ("cpu", "cpu0", "raw", "sched_fd", "state", "sys_fd", "t0")

    def __init__(self, sys_fd, sched_fd):
        self.sys_fd, self.sched_fd = sys_fd, sched_fd
        self.raw, self.state, self.cpu0, self.cpu, self.t0 = b"", None, None, 0, 0


class Sampler:
    """Samples every thread of process ``pid``; see the module docstring.

    ``start``, ``exclude``, ``stop`` and ``statistics`` are called from any
    supervisor thread; everything else, including ``on_events``, runs on the
    sampler's own thread.
    """

    def __init__(
        self,
        pid: int,
        on_events,
        *,
        interval_s=0.001,
        batch_s=0.025,
        cpu_window_s=0.020,
        exclude_tids=(),
        clock=time.perf_counter_ns,
    ):
        self.pid, self._on_events, self._clock = pid, on_events, clock
        self._interval = int(interval_s * 1e9)
        self._batch, self._window = int(batch_s * 1e9), int(cpu_window_s * 1e9)
        self._excluded = set(exclude_tids)  # set.add/in are atomic: shared safely
        self._task_dir = f"/proc/{pid}/task"
        self._threads: dict[int, _Thread] = {}
        self._stat_fd = None  # the leader's stat, read every sample
        self._relist, self._ntasks = True, -1
        self._events: list = []
        self._gil: list = []
        self._spans: list = []  # every mapping, to notice a stale maps parse
        self._maps_t = None
        self._thread = None
        self._stopping = False
        self._intervals: deque = deque(maxlen=100_000)
        self._samples = self._cost_ns = self._errors = 0
        self._cpu_ns = self._wall_ns = 0
        self._seen: set = set()
        self.last_error = ""

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sampler-{self.pid}", daemon=True)
            self._thread.start()

    def exclude(self, tid: int) -> None:
        # The sampler thread drops it, without a "gone" event, at its next sample.
        self._excluded.add(tid)
        self._relist = True

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def statistics(self) -> dict:
        iv = sorted(self._intervals)  # copying a deque is atomic under the GIL
        n = len(iv)

        def ms(x):
            return round(x / 1e6, 4) if n else None

        return {
            "samples": self._samples,
            "interval_mean_ms": ms(sum(iv) / n) if n else None,
            "interval_p50_ms": ms(iv[n // 2]) if n else None,
            "interval_p95_ms": ms(iv[min(n - 1, n * 95 // 100)]) if n else None,
            "cost_mean_us": round(self._cost_ns / max(self._samples, 1) / 1e3, 2),
            "cpu_percent": round(100 * self._cpu_ns / max(self._wall_ns, 1), 2),
            "threads_seen": len(self._seen),
            "errors": self._errors,
        }

    # ---- everything below runs on the sampler thread ----

    def _error(self, exc):
        self._errors += 1
        self.last_error = repr(exc)

    def _run(self):
        cpu0, wall0 = time.thread_time_ns(), time.perf_counter_ns()
        try:
            flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
            self._stat_fd = os.open(f"{self._task_dir}/{self.pid}/stat", flags)
            self._load_maps(self._clock())
            self._loop(cpu0, wall0)
        except (FileNotFoundError, ProcessLookupError):
            pass  # the process had already gone
        except Exception as e:  # never raise out of this thread
            self._error(e)
        finally:
            for th in self._threads.values():
                self._close(th)
            if self._stat_fd is not None:
                os.close(self._stat_fd)
            self._threads.clear()
            self._flush()
            self._account(cpu0, wall0)

    def _account(self, cpu0, wall0):
        # thread_time_ns() must be read on this thread: it is this thread's CPU.
        self._cpu_ns = time.thread_time_ns() - cpu0
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
            if not alive:
                return
            if t - last_flush >= self._batch:
                last_flush = t
                self._flush()
                self._account(cpu0, wall0)
            # Deadline schedule: tick k is start + k*interval; missed ticks are skipped.
            now = self._clock()
            k = max(k + 1, (now - start) // self._interval + 1)
            time.sleep(min(max(start + k * self._interval - now, 0), self._interval) / 1e9)

    def _flush(self):
        if self._events:
            batch, self._events = self._events, []
            try:
                self._on_events(batch)
            except Exception as e:  # a bug in the caller must not stop sampling
                self._error(e)

    def _load_maps(self, t):
        self._maps_t = t
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
            with open(f"/proc/{self.pid}/maps") as f:
                self._gil, self._spans = parse_maps(f.read(), exe)
        except OSError as e:
            if not isinstance(e, (FileNotFoundError, ProcessLookupError)):
                self._error(e)

    def _mapped(self, addr):
        i = bisect.bisect_right(self._spans, (addr, float("inf"))) - 1
        return i >= 0 and self._spans[i][0] <= addr < self._spans[i][1]

    def _open(self, tid):
        base = f"{self._task_dir}/{tid}/"
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(base + "syscall", flags)
        except OSError as e:
            return self._open_failed(tid, e)
        try:
            return _Thread(fd, os.open(base + "schedstat", flags))
        except OSError as e:
            os.close(fd)
            return self._open_failed(tid, e)

    def _open_failed(self, tid, e):
        if not isinstance(e, (FileNotFoundError, ProcessLookupError)):
            self._error(e)  # e.g. permission: count it once, then leave the tid alone
            self._excluded.add(tid)

    def _close(self, th):
        os.close(th.sys_fd)
        os.close(th.sched_fd)

    def _gone(self, tid, t, report=True):
        th = self._threads.pop(tid)
        self._close(th)
        if report:
            if th.cpu0 is not None and th.cpu > th.cpu0:  # the last, partial window
                self._events.append([t, tid, "cpu", th.cpu - th.cpu0])
            self._events.append([t, tid, "gone", None])

    def _sample(self, t) -> bool:
        """One sample of every thread; False once the process is gone."""
        try:  # the leader's stat: process state and thread count, ~3 us
            stat = os.pread(self._stat_fd, 1024, 0).rpartition(b")")[2].split()
            count = int(stat[17])
            dead = stat[0] in b"ZX" and count <= 1  # exited, not yet reaped
        except (OSError, ValueError, IndexError):
            dead, count = True, -1
        if dead:
            for tid in list(self._threads):
                self._gone(tid, t)
            return False
        # Listing the task directory costs ~10 us (6 threads) to ~40 us (64), so
        # list only when the thread count moved or a thread vanished: a thread
        # started since the last sample always does one or the other.
        if self._relist or count != self._ntasks:
            self._list_tasks(t)
        events, window = self._events, self._window
        for tid, th in list(self._threads.items()):
            try:
                raw = os.pread(th.sys_fd, 4096, 0)
                # schedstat only moves while a thread runs: skip it for a thread
                # still blocked at the same spot, except at its window's end.
                due = t - th.t0 >= window or th.cpu0 is None
                if due or raw != th.raw or raw[:1] == b"r":
                    th.cpu = int(os.pread(th.sched_fd, 4096, 0).split(None, 1)[0])
            except (OSError, ValueError, IndexError):  # exited: ESRCH
                self._gone(tid, t)
                self._relist = True
                continue
            if raw != th.raw:  # same line (it has sp and pc) -> same state
                th.raw = raw
                line = raw.decode("ascii", "replace")
                state = classify(line, self._gil)
                if state == "lock" and t - self._maps_t >= _MAPS_RETRY_NS:
                    # A futex outside every mapping: a library loaded, or an
                    # exec, since maps was read.
                    if not self._mapped(int(line.split()[1], 16)):
                        self._load_maps(t)
                        state = classify(line, self._gil)
                if state != th.state:
                    th.state = state
                    events.append([t, tid, "S", state])
            if th.cpu0 is None:
                th.cpu0, th.t0 = th.cpu, t
            elif due:
                if th.cpu > th.cpu0:
                    events.append([t, tid, "cpu", th.cpu - th.cpu0])
                th.cpu0, th.t0 = th.cpu, t
        return True

    def _list_tasks(self, t):
        self._relist = False  # first: an exclude() from now on asks again
        try:  # any other error (permission) ends the sampler: see _run
            tids = {int(n) for n in os.listdir(self._task_dir)}
        except (FileNotFoundError, ProcessLookupError):
            tids = set()  # the process is gone: the next stat read says so
        self._ntasks = len(tids)
        for tid in [tid for tid in self._threads if tid not in tids]:
            self._gone(tid, t)
        for tid in [tid for tid in self._threads if tid in self._excluded]:
            self._gone(tid, t, report=False)
        for tid in tids - self._threads.keys() - self._excluded:
            th = self._open(tid)  # None if it exited since the listing
            if th is not None:
                if self._samples:  # born since the last sample: count all its CPU
                    th.cpu0, th.t0 = 0, t
                self._threads[tid] = th
                self._seen.add(tid)
