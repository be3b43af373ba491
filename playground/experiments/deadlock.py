"""deadlock: threads that take two locks in opposite orders wait for each other forever."""

import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def take_in_my_order(first, second, hold_s, done):
    with first:
        time.sleep(hold_s)  # long enough for the neighbour to take its first lock too
        with second:
            done.append(threading.current_thread().name)


def take_in_global_order(first, second, hold_s, done, numbered):
    # Every thread agrees on one order: the lower-numbered lock first. (Sorting by
    # id() agrees too, but then who waits for whom depends on where the allocator
    # happened to put each lock, and changes from one process to the next.)
    first, second = sorted((first, second), key=numbered.index)
    with first:
        time.sleep(hold_s)
        with second:
            done.append(threading.current_thread().name)


def take_with_timeout(first, second, hold_s, done, retries):
    while True:
        with first:
            time.sleep(hold_s)
            if second.acquire(timeout=hold_s * 2):  # give up instead of waiting forever
                try:
                    done.append(threading.current_thread().name)
                    return
                finally:
                    second.release()
        retries.append(threading.current_thread().name)
        time.sleep(hold_s * (1 + len(retries) % 3))  # back off by different amounts, then retry


VARIANTS = {"naive": take_in_my_order, "ordered": take_in_global_order, "timeout": take_with_timeout}


def run(params, probe):
    count, hold_s, variant = params["threads"], params["hold_ms"] / 1000, params["variant"]
    locks = [threading.Lock() for _ in range(count)]
    done, retries = [], []
    threads = []
    extra = {"naive": (), "ordered": (locks,), "timeout": (retries,)}[variant]
    for n in range(count):
        # Thread n takes lock n, then lock n+1: around the ring, a cycle of `count` waits.
        args = (locks[n], locks[(n + 1) % count], hold_s, done) + extra
        threads.append(threading.Thread(target=VARIANTS[variant], args=args, name=f"takes-{n}-then-{(n + 1) % count}"))
    with probe.phase(variant):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return verdict(variant, count, done, retries)


def verdict(variant, count, done, retries):
    finished = len(done) == count
    if variant == "naive":
        claim = f"{count} threads taking their two locks in opposite orders deadlock."
        why = "Every thread finished: the sleeps did not line up this time." if finished else ""
        return Outcome(claim=claim, held=False, why=why, metrics={"finished": len(done), "retries": 0})
    claim = {
        "ordered": f"When all {count} threads take the locks in one global order, none deadlocks.",
        "timeout": f"When a thread gives up after a timeout and retries, all {count} finish.",
    }[variant]
    why = f"{len(done)} of {count} threads finished" + (
        f" after {len(retries)} retries." if variant == "timeout" else "."
    )
    return Outcome(claim=claim, held=finished, why=why, metrics={"finished": len(done), "retries": len(retries)})


def when_deadlocked(params, reason):
    """The supervisor's verdict when it found every thread blocked for good."""
    held = params["variant"] == "naive"
    claim = (
        f"{params['threads']} threads taking their two locks in opposite orders deadlock."
        if held
        else f"The {params['variant']} variant does not deadlock."
    )
    return Outcome(claim=claim, held=held, why=reason, metrics={"finished": 0, "retries": 0})


EXPERIMENT = Experiment(
    slug="deadlock",
    title="Deadlock: two locks, opposite orders",
    summary="Each thread holds one lock and waits for its neighbour's: nobody moves, ever.",
    lesson=(
        "Thread A holds lock 1 and waits for lock 2; thread B holds lock 2 and waits for lock 1. Neither can "
        "go on, and nothing will ever wake them. Two cures: take locks in one global order, or give up after "
        "a timeout and try again. The server spots the deadlock (every thread blocked on a lock with no "
        "timeout) and stops the run instead of waiting for its deadline."
    ),
    claim="naive: the threads deadlock (detected); ordered and timeout: every thread finishes.",
    params=(
        Param(
            "threads",
            int,
            2,
            "Threads in the ring: thread n takes lock n, then lock n+1.",
            label="Threads",
            min=2,
            max=8,
        ),
        Param(
            "hold_ms",
            int,
            50,
            "How long a thread holds its first lock before taking the second.",
            label="Hold (ms)",
            min=1,
            max=500,
        ),
        Param(
            "variant",
            str,
            "naive",
            "How the threads take their two locks.",
            label="Variant",
            choices=("naive", "ordered", "timeout"),
            choice_help={
                "naive": "each in its own order",
                "ordered": "one global order",
                "timeout": "give up and retry",
            },
        ),
    ),
    metrics=(
        Metric("finished", "threads", "Threads that got both locks and finished."),
        Metric("retries", "times", "Times a thread gave up its first lock after a timeout (timeout variant)."),
    ),
    code=(take_in_my_order, take_in_global_order, take_with_timeout, run, verdict),
    run=run,
    limits=Limits(wall_s=20, max_threads=8),
    cases=({"variant": "ordered"}, {"variant": "timeout"}, {"threads": 3}),
    on_deadlock=when_deadlocked,
)
