"""When the sampler may stop waking: nothing in the watched process can change before a known time.

Why: a sampler that wakes 1,000 times a second changes the program it watches,
even reading nothing. On a 2-core machine a thread that wakes only on the
sampler's 1 ms schedule raised deadlock ``ordered``'s voluntary switches from
16 to 20 (2 ms: 17.6, 4 ms: 16.7, 10 ms: 16.4; bench/sampler_effect.py,
"ticked"): how soon woken threads reach the GIL depends on what the CPUs were
doing just before. So the sampler stops waking while a sample could not see
anything new.

That is when every sampled thread is either asleep until a deadline it wrote
down (``time.sleep`` on 3.11+: ``clock_nanosleep`` with an absolute
CLOCK_MONOTONIC time, read from its memory) or waiting on a lock with no
timeout. Only a running thread of the process can end such a wait, and none
runs, so nothing moves before the earliest deadline (a signal aside: the
worker gets one only at a deadlock, when no thread sleeps).

Sampling resumes one interval *after* that deadline. The wakes that disturb
are the ones just before threads wake together (deadlock ordered, sampler
alone, 30 runs each: resuming 1 ms before the deadline 1.185x the switches of
the plain program, 1.167x in a second batch; 0.5 ms after 1.033x; 1 ms
after 0.992x, and 1.074x in the second batch; 20 ms after 0.998x). The
cost: the first change after a sleep is seen at most one interval late,
where at 1 kHz it is seen within one interval anyway; what follows is
sampled as always.

Sampler thread only (sampler.py).
"""

from __future__ import annotations

import time

from .syscalls import TIMESPEC_SIZE, sleep_deadline_address, timespec_ns

AFTER_NS = 1_000_000  # resume this long after the earliest deadline: one sampling interval
MIN_NS = 1_000_000  # a pause shorter than one interval skips no sample


def deadline(memory, raw: bytes) -> int | None:
    """A sleeping thread's deadline (CLOCK_MONOTONIC ns) from its syscall line ``raw`` and
    its memory (a ProcessMemory; one 16-byte read), or None: none written, or no memory."""
    address = sleep_deadline_address(raw.decode("ascii", "replace"))
    timespec = memory.read(address, TIMESPEC_SIZE) if address and memory is not None else None
    return timespec_ns(timespec) if timespec else None


def quiet_until(threads, untracked: bool) -> int | None:
    """From what the last sample read: when sampling must resume (CLOCK_MONOTONIC ns), or None.

    ``threads``: the sampler's Tasks; ``untracked``: some threads are not sampled
    (then nothing is known about them, and no pause is safe).
    """
    if untracked or not threads:
        return None
    earliest = None
    for th in threads:
        if th.state == "sleep" and th.wakes_at is not None:
            earliest = th.wakes_at if earliest is None else min(earliest, th.wakes_at)
        elif not (th.state == "lock" and th.untimed):
            return None  # running, waiting for the GIL or for I/O, or a wait that times out
    if earliest is None:
        return None  # all wait on locks: a deadlock, which the supervisor must see at once
    until = earliest + AFTER_NS
    return until if until - time.monotonic_ns() > MIN_NS else None


def confirmed(threads, thread_count, listed: int) -> bool:
    """Read every thread again: none ran or left its call since the sample read it,
    and none was born since the sampler listed them.

    The sample reads threads one after another; one that ran between two reads
    could have woken one read before it. A thread that is still where it was at
    both reads was blocked all along, from the last first read to the first
    second read, so at that moment all were blocked and none had been woken.
    A thread born after the listing is not among them, yet runs (main waits in
    ``Thread.start()`` for it to start, which looks like any untimed wait): the
    process's count of threads, ``thread_count()``, must still be ``listed``.
    Read after the threads, since a blocked thread creates none.
    """
    try:
        return all(th.still() for th in threads) and thread_count() == listed
    except (OSError, ValueError, IndexError):  # one ended meanwhile
        return False
