"""Who sends the worker's events (playground/probe.py, "Who sends"), with real processes.

A child interpreter plays the worker: a Probe, the worker's Flusher and Channel
on real pipes, and a thread that records two marks in a burst and then sleeps.
The first mark leaves on the recording thread (a send was due); the second
waits, since no thread is awake to send it. The parent plays the supervisor:
it reads the child's probe state from /proc/<pid>/mem with FlushRequests and
asks when the mark has waited. Order, not time, is asserted: the waiting mark
must arrive while the child still sleeps (before it prints "woke"), and must
not when nobody asks.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import time

import pytest

from playground.sandbox.flush_requests import FlushRequests
from playground.sandbox.process_memory import ProcessMemory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, os, sys, threading, time
sys.path.insert(0, {root!r})
from playground.probe import Probe
from playground.sandbox.channel import Channel, Flusher

channel_fd, wake_fd = int(sys.argv[1]), int(sys.argv[2])
probe = Probe()
probe.register_current_thread()
flusher = Flusher(probe, Channel(channel_fd), wake_fd)
flusher.start()
probe.send_with(flusher.send)
flusher.channel.send({{"type": "state", "address": probe.state_address()}})

def burst():
    probe.state[0] = 0  # the last send is long ago: the first mark is due
    probe.mark("first")
    probe.mark("second")  # within SEND_DUE_NS of the first: it waits
    time.sleep(1.5)
    flusher.channel.send({{"type": "woke"}})

thread = threading.Thread(target=burst)
thread.start()
thread.join()
"""


def run_child(ask: bool) -> list[str]:
    """What the parent received, in order: each mark's text, and "woke"."""
    channel_r, channel_w = os.pipe()
    wake_r, wake_w = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=ROOT), str(channel_w), str(wake_r)],
        pass_fds=(channel_w, wake_r),
    )
    os.close(channel_w)
    os.close(wake_r)
    received, buffered, requests, memory = [], b"", None, None
    try:
        with os.fdopen(channel_r, "rb", buffering=0) as channel:
            while "woke" not in received:
                if requests is not None:
                    requests.check(time.perf_counter_ns())
                if not select.select([channel], [], [], 0.01)[0]:
                    continue
                chunk = channel.read(65536)
                assert chunk, f"the child ended early: {received}"
                if requests is not None:  # as the supervisor does: it reads only once the child is quiet
                    requests.heard(time.perf_counter_ns())
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    if message["type"] == "state" and ask:
                        memory = ProcessMemory(child.pid)
                        requests = FlushRequests(memory, message["address"], lambda: os.write(wake_w, b"\n"))
                    elif message["type"] == "events":
                        received += [event[3] for event in message["events"] if event[2] == "M"]
                    elif message["type"] == "woke":
                        received.append("woke")
    finally:
        os.close(wake_w)
        child.wait(timeout=10)
        if memory is not None:
            memory.close()
    if requests is not None:
        assert not requests.blind, "the child's memory should be readable by its parent"
    return received


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs /proc")
def test_a_waiting_event_is_sent_when_the_supervisor_asks():
    assert run_child(ask=True) == ["first", "second", "woke"]


def test_without_asking_the_waiting_event_stays_until_someone_sends():
    # The control: proves the test above can fail (the second mark did wait).
    assert run_child(ask=False) == ["first", "woke"]


def test_the_state_is_read_only_once_the_worker_has_been_quiet():
    """A read right after a message would land as the worker goes on (flush_requests.py)."""

    class CountingMemory:  # the worker's memory: an event waiting since t=1,000 ns
        readable = True
        reads = 0

        def read(self, address, size):
            self.reads += 1
            return struct.pack("=qq", 0, 1_000)

    memory, asked = CountingMemory(), []
    requests = FlushRequests(memory, 0x1000, lambda: asked.append(True), stale_ns=100, quiet_ns=20)
    requests.heard(5_000)
    assert not requests.check(5_019) and memory.reads == 0  # it sent 19 ns ago
    assert requests.check(5_020) and memory.reads == 1 and asked == [True]


def test_a_forked_child_does_not_send_on_the_workers_channel():
    """A child an experiment forks inherits the probe: its prints must not reach the supervisor."""
    from playground.probe import Probe

    sent = []
    probe = Probe()
    probe.register_current_thread()
    probe.send_with(lambda: sent.append(os.getpid()))
    probe.state[0] = 0  # a send is due
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: record, as a print would, and report whether it sent
        try:
            probe.mark("from the child")
            os.write(write_end, b"sent" if sent else b"kept")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read_end, 16) == b"kept"
    probe.mark("from the parent")  # and the parent still sends
    assert sent == [os.getpid()]
