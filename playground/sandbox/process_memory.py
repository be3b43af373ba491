"""Reads of another process's memory through ``/proc/<pid>/mem``.

The supervisor's windows into the worker without running anything in it: an
RLock's owner, a Lock's locked byte (ownership.py), the probe's send state
(flush_requests.py). One file descriptor per run, opened once: the sampler
thread and the supervisor thread both ``pread()`` it (no shared offset).
"""

from __future__ import annotations

import os


class ProcessMemory:
    def __init__(self, pid: int):
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # not ours to read (permissions, no /proc): callers draw or ask less
            self._fd = None

    @property
    def readable(self) -> bool:
        return self._fd is not None

    def read(self, address: int, size: int) -> bytes | None:
        """``size`` bytes at ``address``, or None: unreadable, closed, or the process is gone."""
        fd = self._fd
        if fd is None:
            return None
        try:
            raw = os.pread(fd, size, address)
        except OSError:
            return None
        return raw if len(raw) == size else None

    def close(self) -> None:
        """Supervisor thread, once the sampler has stopped."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
