"""semaphore: N threads share K "connections"; a BoundedSemaphore lets at most K in at once."""

import math
import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


class Tally:
    """How many connections are in use now, and the most ever in use at once."""

    def __init__(self):
        self.lock = threading.Lock()  # a small lock of its own, held for two lines at a time
        self.in_use = 0
        self.peak = 0


def use_connection(pool, hold_s, tally):
    with pool:  # blocks while all K connections are taken
        # Counted after acquire() and uncounted before release(): whoever is counted holds a
        # connection, so the count can exceed K only if the semaphore let more than K in.
        with tally.lock:
            tally.in_use += 1
            tally.peak = max(tally.peak, tally.in_use)
        time.sleep(hold_s)  # works with the connection: a query, a download
        with tally.lock:
            tally.in_use -= 1


def run(params, probe):
    count, slots, hold_s = params["threads"], params["slots"], params["hold_ms"] / 1000
    pool = threading.BoundedSemaphore(slots)  # release() beyond K raises ValueError: a bug caught early
    tally = Tally()
    threads = [
        threading.Thread(target=use_connection, args=(pool, hold_s, tally), name=f"client-{n}") for n in range(count)
    ]
    with probe.phase(f"{count} threads, {slots} connections") as phase:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    waves = math.ceil(count / slots)
    expected_ms = waves * params["hold_ms"]
    ratio = phase.wall_ms / expected_ms
    # Never above K is the semaphore's promise; K reached shows the pool was really shared.
    held = tally.peak <= slots and tally.peak == min(count, slots) and tally.in_use == 0 and 0.95 <= ratio <= 1.5
    return Outcome(
        claim=(
            f"At most {slots} of {count} threads hold a connection at once, and they finish in about "
            f"{waves} rounds of {params['hold_ms']} ms (0.95x-1.5x of {expected_ms} ms)."
        ),
        held=held,
        why=(
            f"At most {tally.peak} connections were in use at once (limit {slots}); {tally.in_use} left in use at "
            f"the end. The {count} threads took {phase.wall_ms:.0f} ms, {ratio:.2f}x of {waves} x "
            f"{params['hold_ms']} ms: the others waited in acquire() for a free connection."
        ),
        metrics={
            "peak_in_use": tally.peak,
            "slots": slots,
            "left_in_use": tally.in_use,
            "elapsed_ms": round(phase.wall_ms, 2),
            "expected_ms": expected_ms,
            "ratio": round(ratio, 3),
        },
    )


EXPERIMENT = Experiment(
    slug="semaphore",
    title="A semaphore guards a pool of connections",
    summary="N threads share K connections: a BoundedSemaphore(K) lets K in and makes the rest wait.",
    lesson=(
        "A semaphore is a counter of free slots: acquire() takes one or waits until one is free, release() "
        "gives it back. N threads sharing K connections therefore work K at a time, in rounds; the chart's "
        "counter shows the connections in use. A BoundedSemaphore also refuses a release() it never gave out."
    ),
    claim="Never more than K threads inside at once; N threads finish in about ceil(N/K) rounds of the hold time.",
    params=(
        Param("threads", int, 8, "Threads that each need a connection once.", label="Threads", min=1, max=32),
        Param("slots", int, 3, "Connections in the pool: the semaphore's K.", label="Connections", min=1, max=16),
        Param("hold_ms", int, 100, "How long each thread keeps its connection.", label="Hold (ms)", min=20, max=500),
    ),
    metrics=(
        Metric("peak_in_use", "connections", "Most connections in use at the same moment."),
        Metric("slots", "connections", "The semaphore's limit K."),
        Metric("left_in_use", "connections", "Connections still counted in use after every thread ended (0)."),
        Metric("elapsed_ms", "ms", "Wall time from the first start() to the last join()."),
        Metric("expected_ms", "ms", "ceil(threads / slots) x hold_ms."),
        Metric("ratio", "x", "elapsed_ms / expected_ms."),
    ),
    code=(Tally, use_connection, run),
    run=run,
    limits=Limits(wall_s=60, max_threads=32),
    cases=({"threads": 5, "slots": 2}, {"threads": 3, "slots": 5, "hold_ms": 300}),
)
