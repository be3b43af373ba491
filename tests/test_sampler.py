"""Tests for the /proc thread sampler.

The live tests sample a real child process (tests/proc_scenario.py) running
under the interpreter that runs the tests. The classifier they rely on is
tested on recorded lines in test_syscalls.py.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from proc_scenario import EXPECTED, go, start_child  # noqa: E402

from playground.sandbox.memory_map import MemoryMap  # noqa: E402
from playground.sandbox.sampler import Sampler  # noqa: E402
from playground.sandbox.syscalls import STATES, proc_readable  # noqa: E402

# ---- no /proc needed -------------------------------------------------------------


def test_proc_readable_for_a_missing_process():
    ok, why = proc_readable(2**22 + 12345)  # above the kernel's pid_max limit
    assert not ok and why


def test_sampler_of_a_missing_process_ends_by_itself():
    batches = []
    sampler = Sampler(2**22 + 12345, batches.append)
    sampler.start()
    sampler._thread.join(30)
    assert not sampler._thread.is_alive()
    sampler.stop()
    sampler.stop()  # idempotent
    assert batches == []
    assert sampler.statistics()["errors"] == 0


def test_stop_before_start_is_harmless():
    sampler = Sampler(os.getpid(), lambda batch: None)
    sampler.stop()
    assert sampler.statistics()["samples"] == 0


def test_a_thread_that_ends_never_leaves_its_joiner_looking_stuck_alone():
    # Main waited 0.6 s in join() for a thread that ran all along, and that thread ends.
    # The supervisor asks all_stuck_since() from its own thread; closing the ended thread's
    # files releases the GIL, so it may ask right then (CI, a loaded server: a cpu-bound
    # run stopped as "deadlocked", MainThread alone). The answer must never be main's
    # old clock: either the ended thread is still there, or main's clock started over.
    sampler = Sampler(os.getpid(), lambda batch: None)
    asked = []
    main = SimpleNamespace(stuck_since=1_000, cpu=0, cpu0=None)
    ended = SimpleNamespace(stuck_since=None, cpu=5, cpu0=0, close=lambda: asked.append(sampler.all_stuck_since()))
    sampler._threads.update({1: main, 2: ended})
    sampler._gone(2, 600_000_000)
    assert asked == [None]
    assert sampler.all_stuck_since() is None and 2 not in sampler._threads


# ---- live: a real child process ---------------------------------------------------


@pytest.fixture
def scenario():
    """Run CHILD under this interpreter with a Sampler on it; yield (roles, events, sampler)."""
    child, roles = start_child()
    try:
        readable, why = proc_readable(child.pid)
        if not readable:
            pytest.skip(f"cannot sample threads here: {why}")
        batches = []
        sampler = Sampler(child.pid, batches.append)
        sampler.start()
        go(child)
        child.wait(60)
        sampler._thread.join(30)  # ends by itself once the process is gone
        assert not sampler._thread.is_alive()
        sampler.stop()
        yield roles, [e for batch in batches for e in batch], sampler
    finally:
        child.kill()
        child.wait()


def test_live_states_per_thread(scenario):
    roles, events, sampler = scenario
    states = collections.defaultdict(set)
    for _, tid, kind, data in events:
        if kind == "S":
            states[roles.get(tid, tid)].add(data)
    for role, expected in EXPECTED.items():
        assert expected <= states[role], (role, states[role])
    for role in set(EXPECTED) - {"reader", "main"}:  # main reads stdin first
        assert "io" not in states[role], (role, states[role])


def test_live_event_stream_shape(scenario):
    roles, events, sampler = scenario
    assert [e[0] for e in events] == sorted(e[0] for e in events)
    last = {}
    gone = set()
    cpu = collections.Counter()
    waits, cores = {}, []
    for _, tid, kind, data in events:
        assert tid not in gone, "event after gone"
        if kind == "S":
            assert data in STATES and last.get(tid) != data  # only changes are reported
            last[tid] = data
        elif kind == "cpu":
            assert isinstance(data, int) and data > 0
            cpu[roles[tid]] += data
        elif kind == "on":  # the futex of a lock wait: only while in "lock", None when it ends
            assert (data is not None) == (last.get(tid) == "lock") and waits.get(tid) != data
            waits[tid] = data
        elif kind == "cores":  # the process as a whole: no thread
            assert tid is None and 0 <= data <= os.cpu_count() + 0.5
            cores.append(data)
        else:
            assert kind == "gone" and data is None
            gone.add(tid)
    assert gone == set(roles)  # every thread ended with the process
    assert cores and max(cores) > 0.5  # the four spinners kept at least one core busy
    for role in ("spin0", "spin1", "spin2", "spin3"):
        assert cpu[role] > 0
    stats = sampler.statistics()
    assert stats["samples"] > 0 and stats["errors"] == 0 and stats["threads_seen"] == len(roles)


def test_live_exclude_and_failing_callback():
    child, roles = start_child()
    try:
        readable, why = proc_readable(child.pid)
        if not readable:
            pytest.skip(f"cannot sample threads here: {why}")
        by_role = {role: tid for tid, role in roles.items()}
        seen = []

        def on_events(batch):
            seen.extend(batch)
            raise RuntimeError("a bug in the caller")

        sampler = Sampler(child.pid, on_events, exclude_tids=[by_role["main"]])
        sampler.start()
        sampler.exclude(by_role["reader"])  # the first sample may report it: a race
        n = sampler.statistics()["samples"]
        while sampler.statistics()["samples"] < n + 2 and sampler._thread.is_alive():
            time.sleep(0.001)  # until a whole sample has run since exclude()
        go(child)
        child.wait(60)
        sampler.stop()
        tids = {e[1] for e in seen}
        assert by_role["main"] not in tids
        # the reader blocks in read() only after go(): never reported, nor its end
        assert not [e for e in seen if e[1] == by_role["reader"] and (e[3] == "io" or e[2] == "gone")]
        assert by_role["spin0"] in tids
        assert sampler.statistics()["errors"] > 0  # counted, not raised
    finally:
        child.kill()
        child.wait()


def test_live_maps_read_too_early_is_read_again():
    # As if maps had been read before the loader mapped libpython: the first
    # GIL futex then lies outside every known mapping, which re-reads maps.
    class EarlyMap(MemoryMap):
        def load(self, t):
            if self.reads == 0:
                self._t, self.reads = t, 1
            else:
                super().load(t)

    child, roles = start_child()
    try:
        readable, why = proc_readable(child.pid)
        if not readable:
            pytest.skip(f"cannot sample threads here: {why}")
        events = []
        sampler = Sampler(child.pid, events.extend)
        sampler._maps = EarlyMap(child.pid)
        sampler.start()
        go(child)
        child.wait(60)
        sampler.stop()
        assert sampler._maps.reads >= 2
        spin = {tid for tid, role in roles.items() if role.startswith("spin")}
        assert any(kind == "S" and data == "gil" and tid in spin for _, tid, kind, data in events)
    finally:
        child.kill()
        child.wait()


SHORT_LIVED = r"""
import sys, threading, time
sys.stdin.readline()
for _ in range(20):
    t = threading.Thread(target=time.sleep, args=(0.005,))
    t.start()
    t.join()
sys.stdout.write("done\n")
sys.stdout.flush()
time.sleep(60)
"""


def test_live_short_lived_threads_and_a_zombie():
    # 20 threads of ~5 ms, one after another: found by the thread count of the
    # leader's stat. Then the child exits and stays unreaped (a zombie): the
    # sampler must still notice the end by itself.
    child = subprocess.Popen([sys.executable, "-c", SHORT_LIVED], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        readable, why = proc_readable(child.pid)
        if not readable:
            pytest.skip(f"cannot sample threads here: {why}")
        events = []
        sampler = Sampler(child.pid, events.extend)
        sampler.start()
        child.stdin.write(b"\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"done\n"
        child.kill()  # and no wait(): a zombie until the finally clause reaps it
        sampler._thread.join(30)
        assert not sampler._thread.is_alive()
        short = {tid for _, tid, kind, _ in events if kind == "gone"} - {child.pid}
        assert len(short) >= 10, sampler.statistics()
        states = collections.defaultdict(list)
        for _, tid, kind, data in events:
            if kind == "S":
                states[tid].append(data)
        # most were caught in their sleep (under load a thread may be seen only starting up)
        assert sum("sleep" in states[tid] for tid in short) >= len(short) // 2
        assert sampler.statistics()["errors"] == 0
    finally:
        child.kill()
        child.wait()
