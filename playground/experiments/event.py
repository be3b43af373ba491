"""event: workers wait for one start signal (an Event, a Condition or a Barrier), then run together."""

import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def make_signal(kind, count):
    if kind == "barrier":
        start = threading.Barrier(count + 1)  # the workers and the main thread
    elif kind == "condition":
        start = threading.Condition()
        start.signalled = False  # what the waiters check: a notify_all() before they wait would be lost
    else:
        start = threading.Event()
    return start


def wait_for_signal(kind, start):
    if kind == "condition":
        with start:
            start.wait_for(lambda: start.signalled)  # releases the condition's lock while it waits
    else:
        start.wait()  # Event: until start.set(); Barrier: until every party has arrived


def give_signal(kind, start):
    if kind == "event":
        start.set()
    elif kind == "condition":
        with start:
            start.signalled = True
            start.notify_all()
    else:
        start.wait()  # the main thread is the Barrier's last party: its arrival releases everyone


def worker(number, kind, start, waiting, resumed, work_s):
    waiting[number] = time.perf_counter_ns()
    wait_for_signal(kind, start)
    resumed[number] = time.perf_counter_ns()  # the first thing it does once released
    time.sleep(work_s)  # then the workers run together


def run(params, probe):
    count, delay_s, work_s = params["threads"], params["delay_ms"] / 1000, params["work_ms"] / 1000
    kind = params["signal"]
    start = make_signal(kind, count)
    waiting, resumed = [None] * count, [None] * count  # one slot per worker: no lock needed
    threads = [
        threading.Thread(target=worker, args=(n, kind, start, waiting, resumed, work_s), name=f"worker-{n}")
        for n in range(count)
    ]
    with probe.phase("before the signal"):
        for thread in threads:
            thread.start()
        time.sleep(delay_s)  # the workers sit in wait() meanwhile
    signalled = time.perf_counter_ns()  # taken before the signal, so nobody can resume before it
    give_signal(kind, start)
    with probe.phase("after the signal"):
        for thread in threads:
            thread.join()
    for number, at in enumerate(resumed):
        probe.mark(f"worker {number} resumed {(at - signalled) / 1000:.0f} µs after set()")
    return verdict(waiting, resumed, signalled)


def verdict(waiting, resumed, signalled):
    count = len(resumed)
    early = sum(at < signalled for at in resumed)  # resumed before set(): would be a broken Event
    late = sum(at > signalled for at in waiting)  # reached wait() after set(): did not really wait
    shortest_wait_ms = (signalled - max(waiting)) / 1e6  # how long the last worker to arrive waited
    latencies_ms = [(at - signalled) / 1e6 for at in resumed]
    slowest_ms = max(latencies_ms)
    # A ratio, not a fixed time: everyone resumed within a fifth of the time they had waited. Usually it
    # takes well under a millisecond; on a machine overloaded by other programs, tens of milliseconds.
    held = early == 0 and late == 0 and slowest_ms <= 0.2 * shortest_wait_ms
    return Outcome(
        claim=f"No worker resumed before set(), and all {count} resumed within a fifth of the time they had waited.",
        held=held,
        why=(
            f"{count - late} of {count} workers were waiting when set() came, after at least {shortest_wait_ms:.0f} ms; "
            f"{early} resumed before it. They resumed {min(latencies_ms) * 1000:.0f}-{slowest_ms * 1000:.0f} µs "
            f"after set(), the slowest {slowest_ms / shortest_wait_ms:.4f} of the wait."
        ),
        metrics={
            "waited_ms": round(shortest_wait_ms, 2),
            "resumed_early": early,
            "arrived_late": late,
            "first_resume_us": round(min(latencies_ms) * 1000, 1),
            "last_resume_us": round(slowest_ms * 1000, 1),
            "spread_us": round((slowest_ms - min(latencies_ms)) * 1000, 1),
            "last_resume_ratio": round(slowest_ms / shortest_wait_ms, 5),
        },
    )


EXPERIMENT = Experiment(
    slug="event",
    title="An Event: one signal, many waiters",
    summary="Workers wait() on a threading.Event until the main thread calls set(), then all run at once.",
    lesson=(
        "A threading.Event is a flag threads can wait for: wait() blocks until another thread calls set(), "
        "then every waiter is released at once, and later wait() calls return immediately. It is the simplest "
        "way to start many threads together, or to tell them all to stop. A Condition does the same with a flag "
        "of your own and notify_all(); a Barrier releases its parties when the last one arrives."
    ),
    claim="No worker goes past wait() before set(); after set(), all resume within a small fraction of their wait.",
    params=(
        Param("threads", int, 6, "Worker threads waiting for the signal.", label="Threads", min=1, max=32),
        Param(
            "signal",
            str,
            "event",
            "What the workers wait on.",
            label="Signal",
            choices=("event", "condition", "barrier"),
            choice_help={
                "event": "threading.Event: set() releases every waiter",
                "condition": "threading.Condition: a flag, then notify_all()",
                "barrier": "threading.Barrier(threads + 1): the main thread arrives last",
            },
        ),
        Param(
            "delay_ms", int, 500, "How long the main thread waits before set().", label="Delay (ms)", min=50, max=2000
        ),
        Param(
            "work_ms", int, 100, "What each worker does after the signal (a sleep).", label="Work (ms)", min=0, max=1000
        ),
    ),
    metrics=(
        Metric("waited_ms", "ms", "Time from the last worker reaching wait() to set()."),
        Metric("resumed_early", "threads", "Workers that resumed before set() (should be 0)."),
        Metric("arrived_late", "threads", "Workers that reached wait() only after set() (should be 0)."),
        Metric("first_resume_us", "µs", "Time from set() to the first worker resuming."),
        Metric("last_resume_us", "µs", "Time from set() to the last worker resuming."),
        Metric("spread_us", "µs", "last_resume_us - first_resume_us."),
        Metric("last_resume_ratio", "", "last_resume_us / waited_ms: the bound is 0.2."),
    ),
    code=(make_signal, wait_for_signal, give_signal, worker, run, verdict),
    run=run,
    limits=Limits(wall_s=30, max_threads=32),
    cases=({"threads": 16, "work_ms": 0}, {"signal": "condition"}, {"signal": "barrier"}),
)
