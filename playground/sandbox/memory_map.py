"""What the watched process has mapped, and where in it the GIL lives: its
``/proc/<pid>/maps``, as the sampler needs it to tell a GIL wait from a lock wait.

A futex wait is a GIL wait when its address lies in the interpreter's own
writable data (``syscalls.parse_maps``). The map is read when sampling starts,
and again when a thread waits on an address outside every mapping (a library
loaded since), at most every 100 ms: each read takes the worker's mmap lock for
a moment, so they are counted. Sampler thread only.
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
        self._has_gil = gil
        self.gil: list = []  # (start, end) of the interpreter's writable data
        self._spans: list = []  # every mapping, to notice that maps has changed
        self._t = 0  # when it was last read
        self.reads = 0

    def load(self, t: int) -> None:
        self._t = t
        self.reads += 1
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
            with open(f"/proc/{self.pid}/maps") as f:
                gil_ranges, self._spans = parse_maps(f.read(), exe)
                self.gil = gil_ranges if self._has_gil else []
        except (FileNotFoundError, ProcessLookupError):
            pass  # the process ended: the sampler's next read says so

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
