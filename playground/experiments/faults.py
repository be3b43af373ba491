"""fault: experiments that misbehave on purpose, to prove the sandbox holds.

Hidden from the catalog unless the server runs with PLAYGROUND_FAULTS=1 (the
fault tests do). Each kind is one classic way a run goes wrong; the sandbox
must end that run with a reason and keep everything else serving.
"""

import ctypes
import os
import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def crash():
    raise RuntimeError("this experiment crashes on purpose")


def segfault():
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def infinite_loop():
    while True:
        pass


def deadlock():
    first, second = threading.Lock(), threading.Lock()

    def one():
        with first:
            time.sleep(0.05)
            with second:
                pass

    def two():
        with second:
            time.sleep(0.05)
            with first:
                pass

    threads = [threading.Thread(target=one, name="takes-1-then-2"), threading.Thread(target=two, name="takes-2-then-1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def memory_bomb():
    hoard = []
    while True:
        hoard.append(bytearray(64 << 20))


def thread_bomb():
    stop = threading.Event()
    for n in range(10_000):
        threading.Thread(target=stop.wait, name=f"bomb-{n}", daemon=True).start()


def fork_bomb():
    while True:
        os.fork()


def print_flood():
    for n in range(3_000_000):
        print(f"line {n}")


def event_flood():
    for n in range(3_000_000):
        print("x", end="\n" if n % 2 else "")


def mark_flood(probe):
    # The recorder as fast as it goes (~0.15 µs a mark, against ~2 µs for print()):
    # what the worker-to-browser path carries when the experiment is not the bound.
    for _ in range(3_000_000):
        probe.mark("x")


def connect_out():
    import socket

    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never a real host. The test runs this only
    # inside the worker's network namespace, where there is no route at all, so
    # the attempt fails on this machine and no packet leaves it.
    socket.create_connection(("192.0.2.1", 80), timeout=2).close()


def sleep_forever():
    time.sleep(3600)  # the test kills the worker from outside meanwhile


KINDS = {
    f.__name__.replace("_", "-"): f
    for f in (
        crash,
        segfault,
        infinite_loop,
        deadlock,
        memory_bomb,
        thread_bomb,
        fork_bomb,
        print_flood,
        event_flood,
        mark_flood,
        connect_out,
        sleep_forever,
    )
}


def run(params, probe):
    fault = KINDS[params["kind"]]
    if fault is mark_flood:
        fault(probe)
    else:
        fault()
    return Outcome(claim="The fault ran to its end.", held=True, why="It returned normally.", metrics={})


EXPERIMENT = Experiment(
    slug="fault",
    title="Faults (for the sandbox tests)",
    summary="Experiments that misbehave on purpose.",
    lesson="Each kind crashes, hangs, or exhausts a resource; the sandbox must end the run with a reason.",
    claim="The sandbox ends the run with a reason and the server keeps serving.",
    params=(
        Param("kind", str, "crash", "Which fault.", choices=tuple(KINDS)),
        Param("threads", int, 1, "Unused; every experiment has it.", min=1, max=1),
    ),
    metrics=(Metric("none", "", "Faults measure nothing."),),
    code=(run, *KINDS.values()),
    run=run,
    limits=Limits(wall_s=10, cpu_s=5, memory_mb=512, max_threads=200, open_files=64),
)
