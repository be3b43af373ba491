"""One thread of a watched process, as the sampler reads it: its two open /proc files
and what was read from them last. Sampler thread only (sampler.py).
"""

from __future__ import annotations

import os


class Task:
    __slots__ = (
        "cpu",
        "cpu0",
        "futex",
        "idle_since",
        "raw",
        "runs",
        "sched_fd",
        "slot",
        "state",
        "stuck_since",
        "sys_fd",
        "t0",
        "untimed",
        "wakes_at",
    )

    def __init__(self, sys_fd: int, sched_fd: int, slot: int):
        self.sys_fd, self.sched_fd = sys_fd, sched_fd
        self.raw, self.state = b"", None  # last syscall line read, last state reported
        self.futex = None  # the address it is blocked on while in "lock": which primitive (ownership.py)
        self.idle_since = None  # since when it has been blocked without running (sampler.IDLE_NS)
        self.slot = slot  # which of the samples reads it while idle: spreads the reads
        self.stuck_since = None  # since when it waits on a lock with no timeout (deadlock watch)
        self.untimed = False  # its current wait is on a lock, with no timeout
        self.wakes_at = None  # asleep until this CLOCK_MONOTONIC ns, read from its memory (sampler.py: quiet)
        self.cpu0, self.cpu, self.t0 = None, 0, 0  # on-CPU ns at window start, latest; window start
        self.runs = 0  # times put on a CPU, latest

    @classmethod
    def open(cls, task_dir: str, tid: int, slots: int) -> Task:
        """Open ``tid``'s files; OSError (closing what it opened) if it cannot."""
        fds: list[int] = []
        try:
            for name in ("syscall", "schedstat"):
                fds.append(os.open(f"{task_dir}/{tid}/{name}", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        return cls(fds[0], fds[1], fds[1] % slots)

    def close(self) -> None:
        os.close(self.sys_fd)
        os.close(self.sched_fd)

    def read_sched(self) -> tuple[int, int]:
        """(on-CPU ns, times put on a CPU): schedstat's first and third fields, ~0.8 us.

        Either moving means it ran: the time is brought up to date only at a tick
        (4 ms at HZ=250) or when it leaves the CPU, the count as it arrives on one.
        """
        fields = os.pread(self.sched_fd, 4096, 0).split()
        return int(fields[0]), int(fields[2])

    def moved(self, cpu: int, runs: int) -> bool:
        """Has it run since ``cpu`` and ``runs`` were last stored?"""
        return cpu != self.cpu or runs != self.runs

    def read_syscall(self) -> bytes:
        """Its ``syscall`` line, ~1.8 us: what it is blocked in, or ``running``."""
        return os.pread(self.sys_fd, 4096, 0)

    def still(self) -> bool:
        """Read again (~3 us): has it neither run nor left the call it was in since its last read?

        A woken thread reads ``running`` at once, before it gets a CPU, so a wake-up
        that happened since is seen here too.
        """
        return not self.moved(*self.read_sched()) and self.read_syscall() == self.raw
