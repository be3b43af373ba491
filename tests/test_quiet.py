"""The sampler's pauses (playground/sandbox/quiet.py): it stops waking only while
nothing in the watched process can change, and sees what happens after.

The rule is tested on its own with stand-in threads; the sampler, pausing and
resuming, against a real process.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from playground.sandbox import quiet  # noqa: E402
from playground.sandbox.process_memory import ProcessMemory  # noqa: E402
from playground.sandbox.sampler import Sampler  # noqa: E402
from playground.sandbox.syscalls import MACHINE, proc_readable  # noqa: E402

MS = 1_000_000


def thread(state, untimed=False, wakes_in_ms=None):
    wakes_at = None if wakes_in_ms is None else time.monotonic_ns() + wakes_in_ms * MS
    return SimpleNamespace(state=state, untimed=untimed, wakes_at=wakes_at)


def test_asleep_and_waiting_on_locks_pauses_until_just_after_the_first_deadline():
    sleeper, later = thread("sleep", wakes_in_ms=50), thread("sleep", wakes_in_ms=80)
    until = quiet.quiet_until([sleeper, later, thread("lock", untimed=True)], untracked=False)
    assert until == sleeper.wakes_at + quiet.AFTER_NS


@pytest.mark.parametrize(
    "other",
    [
        thread("running"),
        thread("gil"),  # someone holds the GIL and runs
        thread("io"),  # woken from outside, at any time
        thread("lock", untimed=False),  # acquire(timeout=...): ends by itself
        thread("sleep"),  # no deadline read: 3.10's pselect6, or memory unreadable
    ],
    ids=["running", "gil", "io", "timed-lock", "sleep-without-deadline"],
)
def test_any_thread_that_can_move_by_itself_forbids_a_pause(other):
    assert quiet.quiet_until([thread("sleep", wakes_in_ms=50), other], untracked=False) is None


def test_no_pause_at_a_deadlock_or_when_threads_go_unsampled_or_a_deadline_is_due():
    stuck = [thread("lock", untimed=True), thread("lock", untimed=True)]
    assert quiet.quiet_until(stuck, untracked=False) is None  # no deadline: the deadlock watch needs samples
    assert quiet.quiet_until([thread("sleep", wakes_in_ms=50)], untracked=True) is None
    assert quiet.quiet_until([], untracked=False) is None
    assert quiet.quiet_until([thread("sleep", wakes_in_ms=-1)], untracked=False) is None  # woke already


@pytest.mark.skipif(MACHINE != "x86_64", reason="the syscall number below is x86_64's")
def test_a_deadline_is_read_from_the_sleepers_memory_where_its_line_points():
    asked = []

    class Memory:  # ProcessMemory's interface
        def read(self, address, size):
            asked.append((address, size))
            return struct.pack("@qq", 7, 5)

    line = b"230 0x1 0x1 0x7f922e7fbab0 0x0 0x0 0x7f 0x7f 0x7f"
    assert quiet.deadline(Memory(), line) == 7_000_000_005 and asked == [(0x7F922E7FBAB0, 16)]
    assert quiet.deadline(None, line) is None  # memory not readable: no deadline, no pause
    assert quiet.deadline(Memory(), b"270 0x0 0x0 0x0 0x0 0x7f0eedf836b0 0x0 0x7f 0x7f") is None  # 3.10
    assert len(asked) == 1


def test_confirmed_only_if_every_thread_is_still_where_it_was_and_none_was_born():
    def task(still):
        def read():
            if isinstance(still, Exception):
                raise still
            return still

        return SimpleNamespace(still=read)

    def count(n):
        return lambda: n

    assert quiet.confirmed([task(True), task(True)], count(3), listed=3)
    assert not quiet.confirmed([task(True), task(False)], count(3), listed=3)
    assert not quiet.confirmed([task(True), task(ProcessLookupError())], count(3), listed=3)  # ended meanwhile
    # Main waits in Thread.start() for a thread born since the listing: it runs, unseen.
    assert not quiet.confirmed([task(True), task(True)], count(4), listed=3)
    assert not quiet.confirmed([task(True)], count(2), listed=3)  # one ended: list again first


# ---- against a real process ---------------------------------------------------------

# A Lock holder sleeps 0.3 s; a waiter is blocked on it with no timeout; main joins both.
# Nothing can change until the holder wakes; then the waiter takes the Lock and spins.
CHILD = r"""
import json, sys, threading, time
lock, held = threading.Lock(), threading.Event()
def holder():
    with lock:
        held.set()
        time.sleep(0.3)
def waiter():
    held.wait()
    with lock:
        end = time.perf_counter() + 0.03
        while time.perf_counter() < end:
            pass
threads = [threading.Thread(target=holder, name="holder"), threading.Thread(target=waiter, name="waiter")]
sys.stdin.readline()
t0 = time.monotonic_ns()
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.monotonic_ns() - t0
print(json.dumps({"names": {t.native_id: t.name for t in threads}, "wall_ns": wall}), flush=True)
"""

needs_proc = pytest.mark.skipif(
    not proc_readable(os.getpid())[0], reason=proc_readable(os.getpid())[1] or "no /proc thread states"
)


def watch(with_memory: bool):
    """Run CHILD under a Sampler -> (its statistics, {role: [(t, state)]}, the child's wall ns)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    events: list = []
    sampler = Sampler(child.pid, events.extend, memory=ProcessMemory(child.pid) if with_memory else None)
    sampler.start()
    time.sleep(0.05)  # sampling before anything happens
    child.stdin.write("\n")
    child.stdin.flush()
    report = json.loads(child.stdout.readline())
    child.wait(timeout=10)
    sampler.stop()
    names = {int(tid): name for tid, name in report["names"].items()}
    states: dict = {}
    for t, tid, kind, data in events:
        if kind == "S" and tid in names:
            states.setdefault(names[tid], []).append((t, data))
    return sampler.statistics(), states, report["wall_ns"]


@needs_proc
@pytest.mark.skipif(sys.version_info < (3, 11), reason="time.sleep writes no deadline before 3.11 (pselect6)")
def test_the_sampler_pauses_while_nothing_can_change_and_sees_the_hand_off_after():
    stats, states, wall_ns = watch(with_memory=True)
    assert stats["pauses"] >= 1 and stats["errors"] == 0
    assert stats["paused_ms"] * MS > 0.5 * wall_ns  # most of the 0.3 s sleep went unsampled (ideal: ~0.9)
    holder, waiter = [[s for _, s in states.get(name, [])] for name in ("holder", "waiter")]
    assert "sleep" in holder
    # The waiter was seen blocked on the Lock, then running once the holder let go: the pause
    # ended in time to see the hand-off, and on a CPU, not still "lock".
    assert "lock" in waiter and "running" in waiter[waiter.index("lock") :], waiter


@needs_proc
def test_without_the_processs_memory_the_sampler_never_pauses():
    stats, states, _ = watch(with_memory=False)
    assert stats["pauses"] == 0 and stats["paused_ms"] == 0
    assert "lock" in [s for _, s in states.get("waiter", [])]


@needs_proc
@pytest.mark.skipif(sys.version_info < (3, 11), reason="time.sleep writes no deadline before 3.11 (pselect6)")
def test_a_run_whose_threads_all_sleep_or_wait_pauses_the_servers_sampler_and_its_footer_says_so(live):
    # deadlock ordered: three threads sleep holding a Lock while the fourth and main wait on Locks.
    started, _ = live.run_to_end("deadlock", threads=4, variant="ordered", hold_ms=40)
    run = requests.get(f"{live.url}/api/runs/{started['id']}", timeout=10).json()
    assert run["state"] == "done" and run["result"]["held"]
    sampler = run["observation"]["sampler"]
    assert sampler["pauses"] >= 1 and sampler["errors"] == 0, sampler
    page = requests.get(started["url"], timeout=10).text
    assert f'data-cost="pauses">{sampler["pauses"]}<' in page
    assert 'data-cost="begin">waiting for the observer<' in page  # the phase on lane 0, explained
