"""io-bound: threads that wait (here, sleep) overlap their waits; the GIL is released."""

import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def download(sleep_s):
    time.sleep(sleep_s)  # stands in for waiting on the network; releases the GIL


def one_after_another(count, sleep_s):
    for _ in range(count):
        download(sleep_s)


def all_at_once(count, sleep_s):
    threads = [threading.Thread(target=download, args=(sleep_s,), name=f"io-{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run(params, probe):
    count, sleep_s = params["threads"], params["sleep_ms"] / 1000
    with probe.phase("sequential") as sequential:
        one_after_another(count, sleep_s)
    with probe.phase("threads") as threaded:
        all_at_once(count, sleep_s)

    speedup = sequential.wall_ns / threaded.wall_ns
    needed = 0.6 * count
    return Outcome(
        claim=f"{count} threads that each wait {params['sleep_ms']} ms finish at least {needed:.1f}x faster than the same waits done one after another.",
        held=speedup >= needed,
        why=(
            f"One after another: {sequential.wall_ms:.0f} ms; in {count} threads: {threaded.wall_ms:.0f} ms, "
            f"a speedup of {speedup:.2f}x (ideal {count}x). time.sleep releases the GIL, so the waits overlap."
            + ("" if speedup >= needed else " Below the bar: the machine was busy, so threads woke late.")
        ),
        metrics={
            "sequential_ms": round(sequential.wall_ms, 2),
            "threaded_ms": round(threaded.wall_ms, 2),
            "speedup": round(speedup, 3),
            "threaded_cpu_ms": round(threaded.cpu_ms, 2),
        },
    )


EXPERIMENT = Experiment(
    slug="io-bound",
    title="I/O-bound work gains from threads",
    summary="Threads that wait for I/O overlap their waits: N waits take the time of one.",
    lesson=(
        "While a thread waits for the network, a disk or a timer, CPython releases the GIL, "
        "so other threads run. The same N waits are done twice in one run: one after another, "
        "then in N threads. The chart shows the threads asleep side by side."
    ),
    claim="N threads that each wait finish about N times faster than the same waits in sequence (at least 0.6 x N).",
    params=(
        Param(
            "threads", int, 8, "How many waits, and how many threads do them at once.", label="Threads", min=1, max=32
        ),
        Param("sleep_ms", int, 200, "How long each wait lasts.", label="Wait (ms)", min=1, max=500),
    ),
    metrics=(
        Metric("sequential_ms", "ms", "Wall time of the waits one after another (the baseline)."),
        Metric("threaded_ms", "ms", "Wall time of the same waits in threads."),
        Metric("speedup", "x", "sequential_ms / threaded_ms."),
        Metric("threaded_cpu_ms", "ms", "Process CPU time during the threaded phase: waiting costs almost none."),
    ),
    code=(download, one_after_another, all_at_once, run),
    run=run,
    limits=Limits(wall_s=30, max_threads=32),
)
