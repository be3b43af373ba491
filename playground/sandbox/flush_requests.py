"""When to ask the worker to send events its threads left waiting.

The worker's recording threads send their own events when a send is due
(playground/probe.py, "Who sends"); what a burst leaves behind waits until the
next recording, or until someone asks. Asking wakes the worker's flusher thread:
a context switch and a GIL request in the observed process. So the supervisor
asks only when needed: it reads the probe's two-word ``state`` (last send,
oldest waiting event) from ``/proc/<pid>/mem`` and writes one byte to the
worker's stdin when an event has waited ``STALE_NS``.

Reading is not free for the worker: it holds the worker's mmap lock for a
moment, and a worker thread that maps memory meanwhile waits for it. Read just
after each message, as it was, the read landed as the worker went on from its
send, when a thread's start (sent at once) is followed by the next thread's
stack being mapped: deadlock ``ordered``'s main thread blocked once more per
run (bench/RESULTS.md, (M)). A send also leaves nothing that has waited: it
takes every event recorded before it, and whatever is recorded after it
waits from then on. So the state is read only once the worker has sent
nothing for ``QUIET_NS``, which delays no ask: a read then comes at most one
poll after the pipe went quiet, as before.

If the worker's memory cannot be read, it asks every ``STALE_NS`` instead: the
events still arrive, at the cost of the wakes (the page's footer says which).

Called from the run's supervisor thread only (``supervise``'s loop).
"""

from __future__ import annotations

import struct

from .process_memory import ProcessMemory

# As long as the live-latency target lets an event wait (issue 7: drawn within
# 150 ms of being recorded): 100 ms waiting, up to 20 ms until the supervisor's
# next read (POLL_S), the rest for the path to the page. The longer it is, the
# more often a burst's leftovers leave with the next recording on a thread that
# is awake anyway: at 30 ms, deadlock ``ordered`` woke the flusher in nearly
# every run (its threads end in bursts 50 ms apart), one context switch of ~19.
STALE_NS = 100_000_000
QUIET_NS = 20_000_000  # the supervisor's poll (supervisor.POLL_S)
_STATE = struct.Struct("=qq")


class FlushRequests:
    def __init__(
        self, memory: ProcessMemory, address: int | None, ask, stale_ns: int = STALE_NS, quiet_ns: int = QUIET_NS
    ):
        self.memory = memory  # the worker's; its owner closes it
        self.address = address
        self.ask = ask  # writes one byte to the worker; never blocks for long (a pipe with room)
        self.stale_ns, self.quiet_ns = stale_ns, quiet_ns
        self._heard = 0  # when the worker last sent (perf_counter_ns)
        self.asked = 0  # how many times we woke the worker
        self._asked_for = None  # the oldest-waiting time last asked about
        self._asked_at = 0
        self.blind = not (address and memory.readable)  # cannot see what waits: ask every stale_ns
        self.gone = False

    def heard(self, now: int) -> None:
        """The worker has just sent (messages came at ``now``, perf_counter_ns)."""
        self._heard = now

    def check(self, now: int) -> bool:
        """Ask if an event has waited too long; True if it asked. ``now``: perf_counter_ns."""
        if self.gone or now - self._heard < self.quiet_ns:
            return False  # gone, or it sent just now: nothing has waited since before that
        if self.blind:
            waiting_since = self._asked_at or now - self.stale_ns
        else:
            raw = self.memory.read(self.address, _STATE.size)
            if raw is None:  # the worker is gone: nothing more to ask for
                self.gone = True
                return False
            _last_send, waiting_since = _STATE.unpack(raw)
        if not waiting_since or now - waiting_since < self.stale_ns:
            return False
        if waiting_since == self._asked_for and now - self._asked_at < self.stale_ns:
            return False  # asked already; the flusher may be on its way
        self._asked_for, self._asked_at = waiting_since, now
        self.asked += 1
        self.ask()
        return True
