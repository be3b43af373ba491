"""The threads scenario the /proc tests watch: one thread in each state.

CHILD prints ``{tid: role}`` and waits for a line on stdin, so that whoever
watches is ready before anything happens. Used live by test_sampler.py and to
record the syscall fixtures test_syscalls.py replays.
"""

from __future__ import annotations

import json
import subprocess
import sys

# The scenario: prints {tid: role} and waits for a line on stdin, so that the
# sampler is running before anything happens. Main sleeps, then joins threads
# that are still spinning (on 3.13 join parks on a futex on main's stack).
CHILD = r"""
import json, os, sys, threading, time
r, w = os.pipe()
lock = threading.Lock()
go, held = threading.Event(), threading.Event()
def spin():
    go.wait()
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:
        pass
def holder():
    go.wait()
    with lock:
        held.set()
        time.sleep(0.3)
def waiter():
    held.wait()
    with lock:
        pass
def sleeper():
    go.wait()
    time.sleep(0.3)
def reader():
    go.wait()
    os.read(r, 1)
roles = {"spin0": spin, "spin1": spin, "spin2": spin, "spin3": spin, "holder": holder,
         "waiter": waiter, "sleep0": sleeper, "sleep1": sleeper, "reader": reader}
threads = [threading.Thread(target=f, name=n) for n, f in roles.items()]
for t in threads:
    t.start()
names = {t.native_id: t.name for t in threads}
names[threading.get_native_id()] = "main"
print(json.dumps(names), flush=True)
sys.stdin.readline()
go.set()
time.sleep(0.35)
os.write(w, b"x")
for t in threads:
    t.join()
"""

EXPECTED = {  # role -> states it must show
    "spin0": {"gil", "running"},
    "spin1": {"gil", "running"},
    "spin2": {"gil", "running"},
    "spin3": {"gil", "running"},
    "waiter": {"lock"},
    "holder": {"sleep"},
    "sleep0": {"sleep"},
    "sleep1": {"sleep"},
    "reader": {"io"},
    "main": {"sleep", "lock"},
}


def start_child(python=sys.executable):
    child = subprocess.Popen(
        [python, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, close_fds=True
    )
    roles = {int(tid): role for tid, role in json.loads(child.stdout.readline()).items()}
    return child, roles


def go(child):
    child.stdin.write("\n")
    child.stdin.flush()
