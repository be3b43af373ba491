"""How the worker's messages leave it: the protocol pipe (Channel) and the thread
that sends what recording threads leave waiting (Flusher).

Worker side (playground/sandbox/worker.py starts both); standard library only.
"""

from __future__ import annotations

import _thread
import json
import os
import select
import threading
import time

from playground.probe import Probe

# One send drains at most this many batches (of up to 20,000 events), so a flood
# cannot keep a recording thread or the flusher (and the GIL) for long: the rest
# stays pending for the next send.
SEND_BATCHES = 4
# This many events queued at a due send (1 ms after the last) is a flood: the
# flusher thread sends it (see Flusher). A lesson's bursts stay far below.
FLOOD_EVENTS = 64


def _write_keeping_the_gil():
    """libc ``write`` called without releasing the GIL (ctypes.PyDLL), or None.

    ``os.write`` releases the GIL around the system call. From a recording
    thread that is a hand-off: another thread takes the GIL, and the sender
    then waits to get it back, a context switch of its own that the plain
    program never makes (bench/switches.py: +2-3 for deadlock's main thread).
    A small write to a pipe with room takes a few µs, so keep the GIL.
    """
    try:
        import ctypes

        write = ctypes.PyDLL(None).write
    except (OSError, AttributeError):
        return None
    write.argtypes, write.restype = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t), ctypes.c_ssize_t
    return write


class Channel:
    """The protocol pipe to the supervisor; safe to call from any worker thread."""

    SMALL = 16 << 10  # at most this much is written keeping the GIL (the pipe holds 1 MiB)

    def __init__(self, fd: int):
        self.fd = fd
        self._lock = threading.Lock()
        self._write_keeping_the_gil = _write_keeping_the_gil()

    def send(self, message: dict, keep_gil: bool = False) -> None:
        """Write one message; ``keep_gil`` from a recording thread (see _write_keeping_the_gil)."""
        data = (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            view = memoryview(data)
            if keep_gil and self._write_keeping_the_gil and len(data) <= self.SMALL:
                view = view[max(self._write_keeping_the_gil(self.fd, data, len(data)), 0) :]
            while view:  # the rest, or all of it: the usual way, the GIL released
                view = view[os.write(self.fd, view) :]


class Flusher(threading.Thread):
    """Sends the probe's events: on the recording threads when due, here when asked.

    Which thread calls what: ``send`` is the probe's send function, called by
    any experiment thread from ``Probe.nudge`` (already awake, outside critical
    sections), by this thread when the supervisor asks, and by the main thread
    for the last events. ``run`` (this thread) sleeps in ``select()`` on
    ``wake_fd`` and its own flood pipe, and does nothing else: no timer, so a
    run whose threads send their own events never wakes it (playground/probe.py,
    "Who sends"). ``wait_heard`` returns once the supervisor has written on
    ``wake_fd``: the main thread starts the experiment then (worker.main()).

    A flood (FLOOD_EVENTS queued at a due send) is handed to this thread
    instead: a recording thread that sent a flood itself would stop recording
    for every write to the pipe, where this one writes with the GIL released
    while the recording goes on (bench/live_path.py: 196k -> 202k events/s).
    """

    def __init__(self, probe: Probe, channel: Channel, wake_fd: int):
        super().__init__(name="playground-flusher", daemon=True)
        self.probe = probe
        self.channel = channel
        self.wake_fd = wake_fd
        self._sending = threading.Lock()  # one sender at a time keeps batches in order; never waited for by a recorder
        self._flood_r, self._flood_w = os.pipe()
        self._handed = False  # a flood was handed over and this thread has not started on it yet
        # Held until the supervisor first writes on wake_fd. A lock that lives as long as the
        # process, not an Event: Event.wait() blocks on a lock made for that wait and freed
        # after it, whose address the experiment's first Lock may take, and the supervisor,
        # still holding main's last sampled wait on that address, named it a wait on that Lock.
        self._heard, self._heard_once = _thread.allocate_lock(), False
        self._heard.acquire()

    def run(self) -> None:
        try:
            while True:
                readable = select.select([self.wake_fd, self._flood_r], [], [])[0]
                if self._flood_r in readable:
                    os.read(self._flood_r, 64)
                if self.wake_fd in readable and not os.read(self.wake_fd, 64):
                    return  # the supervisor closed the pipe: the run is over
                self._handed = False  # from here on a recording thread may hand over again
                self.send(batches=SEND_BATCHES)
                self._hear()  # after the send: main then finds this thread back in select()
        except OSError:
            return
        finally:
            self._hear()  # never leave main waiting for a supervisor that has gone

    def _hear(self) -> None:
        if not self._heard_once:  # this thread only
            self._heard_once = True
            self._heard.release()

    def wait_heard(self, timeout: float) -> None:
        """Main thread: until the supervisor has first written on ``wake_fd``, or ``timeout``."""
        if self._heard.acquire(timeout=timeout):
            self._heard.release()

    def send(self, wait: bool = False, batches: int | None = SEND_BATCHES) -> int:
        """Drain and send what is queued (``batches=None``: all of it); ``wait`` only
        on the main thread, which must not leave events behind."""
        state = self.probe.state
        recorder = not wait and threading.get_ident() != self.ident  # an experiment thread sends
        if recorder and len(self.probe._events) >= FLOOD_EVENTS:
            state[0] = time.perf_counter_ns()  # counts as a send: the recorder's next nudges stay cheap
            if not self._handed:
                self._handed = True
                os.write(self._flood_w, b"f")
            return 0
        if not self._sending.acquire(wait):
            # Another thread is sending: it may have drained before our event came.
            if not state[1]:
                state[1] = time.perf_counter_ns()
            return 0
        try:
            state[1] = 0  # first: whatever is recorded from now on marks itself as waiting
            sent = n = 0
            while (batches is None or n < batches) and (batch := self.probe.drain()):
                self.channel.send({"type": "events", "events": batch}, keep_gil=recorder)
                sent += len(batch)
                n += 1
            if batches is not None and n == batches and not state[1]:
                state[1] = time.perf_counter_ns()  # left some behind: ask again
            state[0] = time.perf_counter_ns()
            return sent
        finally:
            self._sending.release()
