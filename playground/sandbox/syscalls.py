"""What one line of ``/proc/<pid>/task/<tid>/syscall`` says a thread is doing.

Pure functions and tables, standard library only: the supervisor's sampler
classifies with them, and the worker's primitives.py needs the futex number.
One function reads: ``proc_readable``, whether this server can read those lines
at all (the sampler starts only if so; /healthz says why not).

The kernel prints a syscall number in ``syscall`` only while the thread sleeps
in it; a thread on a CPU or runnable reads ``running``. So a number means
"blocked in this call" and the state follows from the call and its arguments.

Syscall numbers (x86_64 measured with CPython 3.10.13-3.13.0 and glibc 2.36;
aarch64 from the kernel's generic table, not measured):

=============================  ============  ===========  ======================
call                           x86_64        aarch64      state
=============================  ============  ===========  ======================
futex, a WAIT op               202           98           ``gil`` if the address
                                                          is in python's or
                                                          libpython's writable
                                                          data, else ``lock``
futex, WAKE/REQUEUE ops        202           98           ``running``
futex_waitv                    449           449          ``lock``
clock_nanosleep, nanosleep     230, 35       115, 101     ``sleep``
pselect6, select: nfds == 0    270, 23       72           ``sleep`` (else ``io``)
poll, ppoll: nfds == 0         7, 271        73           ``sleep`` (else ``io``)
sched_yield, mmap, mprotect,   24, 9, 10,    124, 222,    ``running`` (CPU work;
munmap, brk, mremap, madvise   11, 12, 25,   226, 215,    they wait only on mm
                               28            214,216,233  locks)
anything else, e.g. read 0, recvfrom 45, accept4 288,     ``io``
wait4 61, epoll_wait 232, rt_sigtimedwait 128
=============================  ============  ===========  ======================

What the interpreters did (tests/fixtures/proc/*.json): ``time.sleep`` is
``pselect6(0, ...)`` on 3.10 and ``clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME)`` on 3.11-3.13. A GIL wait is a futex in libpython's writable
data on all four: op 0x89 (WAIT_BITSET_PRIVATE) on the GIL condition, 0x80 on
its mutex, 0x189 on the forced-switch condition. A ``threading.Lock`` wait is
op 0x189 on a malloc'd semaphore in ``[heap]`` (3.13.0 too); on 3.13
``Thread.join`` parks in the parking lot, on a semaphore on the waiter's stack.
"""

from __future__ import annotations

import os
import re
import struct
import sys

STATES = ("running", "gil", "lock", "sleep", "io")

_FUTEX, _SELECT, _POLL = "futex", "select", "poll"  # states that need the arguments
_TABLES = {
    "x86_64": {
        202: _FUTEX, 449: "lock", 230: "sleep", 35: "sleep", 270: _SELECT, 23: _SELECT, 7: _POLL, 271: _POLL,
        24: "running", 9: "running", 10: "running", 11: "running", 12: "running", 25: "running", 28: "running",
    },
    "aarch64": {
        98: _FUTEX, 449: "lock", 115: "sleep", 101: "sleep", 72: _SELECT, 73: _POLL,
        124: "running", 222: "running", 226: "running", 215: "running", 214: "running", 216: "running",
        233: "running",
    },
}  # fmt: skip
_TABLES["arm64"] = _TABLES["aarch64"]
MACHINE = os.uname().machine if hasattr(os, "uname") else ""
_SYSCALLS = _TABLES.get(MACHINE, {})
# FUTEX_WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2: the op once
# FUTEX_PRIVATE_FLAG (0x80) and FUTEX_CLOCK_REALTIME (0x100) are masked off.
_FUTEX_WAITS = frozenset((0, 6, 9, 11, 13))
_LIBPYTHON = re.compile(r"libpython\d[\w.]*\.so")
FUTEX = next((number for number, kind in _SYSCALLS.items() if kind == _FUTEX), None)  # futex(2) here
KNOWN_MACHINE = MACHINE in _TABLES
# time.sleep on 3.11+: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL).
_CLOCK_NANOSLEEP = {"x86_64": 230, "aarch64": 115, "arm64": 115}.get(MACHINE)
_CLOCK_MONOTONIC, _TIMER_ABSTIME = 1, 1
_TIMESPEC = struct.Struct("@qq")  # tv_sec, tv_nsec: both 64-bit on the machines above
TIMESPEC_SIZE = _TIMESPEC.size


def classify(syscall_line: str, gil_ranges) -> str:
    """Pure function: one /proc/.../syscall line -> a state name. gil_ranges: list of (start, end) ints."""
    parts = syscall_line.split()
    if not parts or parts[0] == "running" or parts[0].startswith("-"):
        return "running"  # "-1 sp pc": blocked outside any syscall (page fault, stopped)
    try:
        kind = _SYSCALLS.get(int(parts[0]), "io")
        if kind == _FUTEX:
            if int(parts[2], 16) & 0x7F not in _FUTEX_WAITS:
                return "running"
            addr = int(parts[1], 16)
            return "gil" if any(lo <= addr < hi for lo, hi in gil_ranges) else "lock"
        if kind == _SELECT:  # select(nfds, ...): no descriptors is a plain sleep
            return "sleep" if int(parts[1], 16) == 0 else "io"
        if kind == _POLL:  # poll(fds, nfds, ...)
            return "sleep" if int(parts[2], 16) == 0 else "io"
        return kind
    except (ValueError, IndexError):
        return "io"


def untimed_wait(syscall_line: str) -> bool:
    """A futex wait with no timeout (4th argument NULL): only another thread can end it.

    A Lock.acquire() or Condition.wait() without a timeout; a GIL wait always
    has one (the switch interval), so does acquire(timeout=...).
    """
    parts = syscall_line.split()
    try:
        return (
            _SYSCALLS.get(int(parts[0])) == _FUTEX
            and int(parts[2], 16) & 0x7F in _FUTEX_WAITS
            and int(parts[4], 16) == 0
        )
    except (ValueError, IndexError):
        return False


def sleep_deadline_address(syscall_line: str) -> int | None:
    """Where a sleeping thread keeps the CLOCK_MONOTONIC time it wakes at, or None.

    Only an absolute sleep on the monotonic clock says when it ends (3.11+'s
    time.sleep); 3.10's pselect6 holds a relative timeout, and the kernel
    rewrites it, so a 3.10 sleep has no deadline to read.
    """
    parts = syscall_line.split()
    try:
        if (
            int(parts[0]) == _CLOCK_NANOSLEEP
            and int(parts[1], 16) == _CLOCK_MONOTONIC
            and int(parts[2], 16) & _TIMER_ABSTIME
        ):
            return int(parts[3], 16)
    except (ValueError, IndexError):
        pass
    return None


def timespec_ns(raw: bytes) -> int:
    """A struct timespec, as read from the sleeper's memory, in ns."""
    seconds, nanoseconds = _TIMESPEC.unpack(raw)
    return seconds * 1_000_000_000 + nanoseconds


def parse_maps(text: str, exe: str) -> tuple[list, list]:
    """/proc/<pid>/maps text -> (gil_ranges, every mapping), sorted lists of (start, end).

    gil_ranges: the writable mappings of ``exe`` or of libpython*.so, each with
    the anonymous writable mapping right after it (its .bss).
    """
    gil, spans, prev_end = [], [], None
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 5:
            continue
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        path = fields[5].strip() if len(fields) > 5 else ""
        spans.append((lo, hi))
        ours = bool(path) and (path == exe or bool(_LIBPYTHON.search(os.path.basename(path))))
        if fields[1][1:2] == "w" and (ours or (not path and lo == prev_end)):
            if gil and gil[-1][1] == lo:
                gil[-1] = (gil[-1][0], hi)
            else:
                gil.append((lo, hi))
        prev_end = hi if ours and fields[1][1:2] == "w" else None
    return sorted(gil), sorted(spans)


def proc_readable(pid: int) -> tuple[bool, str]:
    """Can this process read /proc/<pid>/task/*/syscall? (False, reason) when not (not Linux, permission, ...)."""
    if not sys.platform.startswith("linux"):
        return False, f"thread states need Linux /proc (this is {sys.platform})"
    if not KNOWN_MACHINE:
        return False, f"no syscall table for architecture {MACHINE!r}"
    name = "syscall"
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
