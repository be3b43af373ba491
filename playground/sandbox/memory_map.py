"""What the watched process has mapped, and where in it the GIL lives: its
``/proc/<pid>/maps``, as the sampler needs it to tell a GIL wait from a lock wait.

A futex wait is a GIL wait when its address lies in the interpreter's own
writable data (``syscalls.parse_maps``). The map is read before the job, while
the worker waits for it (the supervisor thread), and again when a thread waits
on an address outside every mapping (a library loaded since), at most every
100 ms (the sampler thread). Each read holds the worker's mmap lock while the
kernel writes out every mapping, and a thread that maps memory meanwhile
waits: a read at the sampler's start, as the experiment created its threads
(each new stack is an mmap), made deadlock ``ordered``'s main thread block in
``Thread.start()`` once more per run (bench/RESULTS.md, (M)). So reads are
counted, and the first one is timed.
"""

from __future__ import annotations

import bisect
import os

from .syscalls import classify, parse_maps

RETRY_NS = 100_000_000


class MemoryMap:
    def __init__(self, pid: int, gil: bool = True):
        self.pid = pid
        # gil=False (a free-threaded interpreter running without its GIL): futex waits in
        # libpython's data are then its own internal locks, never a GIL.
        self.has_gil = gil
        self.gil: list = []  # (start, end) of the interpreter's writable data
        self._spans: list = []  # every mapping, to notice that maps has changed
        self._t = 0  # when it was last read
        self.reads = 0
        self.first_read: int | None = None  # when it was first read whole (clock ns)

    def load(self, t: int) -> None:
        self._t = t
        self.reads += 1
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
            with open(f"/proc/{self.pid}/maps") as f:
                gil_ranges, self._spans = parse_maps(f.read(), exe)
                self.gil = gil_ranges if self.has_gil else []
        except (FileNotFoundError, ProcessLookupError):
            return  # the process ended: the sampler's next read says so
        if self.first_read is None:
            self.first_read = t

    def load_before_job(self, t: int) -> MemoryMap:
        """Supervisor thread, before the job: read now if this process may; else the sampler
        reads at its start, and reports why it cannot."""
        try:
            self.load(t)
        except OSError:
            pass
        return self

    def classify(self, line: str, t: int) -> str:
        """A syscall line's state (syscalls.classify); a futex outside every mapping reads the map again first."""
        state = classify(line, self.gil)
        if state == "lock" and t - self._t >= RETRY_NS and not self._mapped(int(line.split()[1], 16)):
            self.load(t)
            state = classify(line, self.gil)
        return state

    def _mapped(self, addr: int) -> bool:
        i = bisect.bisect_right(self._spans, (addr, float("inf"))) - 1
        return i >= 0 and self._spans[i][0] <= addr < self._spans[i][1]
