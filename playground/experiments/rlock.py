"""rlock: a re-entrant lock lets the thread that holds it take it again."""

import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def count_down(lock, depth, visits, hold_s):
    with lock:  # the second time round, this thread already holds the lock
        visits.append(depth)
        time.sleep(hold_s)  # long enough to see on the chart who holds the lock, and who waits
        if depth > 0:
            count_down(lock, depth - 1, visits, hold_s)


def run(params, probe):
    count, depth, kind, hold_s = params["threads"], params["depth"], params["lock"], params["hold_ms"] / 1000
    lock = threading.RLock() if kind == "rlock" else threading.Lock()
    visits = []
    threads = [
        threading.Thread(target=count_down, args=(lock, depth, visits, hold_s), name=f"recursive-{n}")
        for n in range(count)
    ]
    with probe.phase(kind):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    expected = count * (depth + 1)
    return Outcome(
        claim=f"With an RLock, {count} threads each re-enter the lock {depth} times and finish.",
        held=kind == "rlock" and len(visits) == expected,
        why=f"{len(visits)} of {expected} nested visits happened.",
        metrics={"visits": len(visits), "expected_visits": expected},
    )


def when_deadlocked(params, reason):
    """A plain Lock blocks its own holder at the second `with lock:`: detected by the supervisor."""
    held = params["lock"] == "lock"
    claim = (
        "With a plain Lock, a thread that takes the lock again waits for itself forever."
        if held
        else "With an RLock there is no deadlock."
    )
    return Outcome(claim=claim, held=held, why=reason, metrics={"visits": 0, "expected_visits": 0})


EXPERIMENT = Experiment(
    slug="rlock",
    title="RLock: a lock you can take twice",
    summary="A recursive function under a lock: RLock lets its holder re-enter, a plain Lock deadlocks.",
    lesson=(
        "A plain Lock does not know who holds it: if the holder asks for it again, it waits for itself, "
        "forever. An RLock counts how many times its owner took it and lets the owner back in; it is free "
        "again after as many releases. Recursive code under one lock needs an RLock."
    ),
    claim="rlock: every nested visit happens; lock: the thread deadlocks on itself (detected).",
    params=(
        Param("threads", int, 2, "Threads running the recursive function.", label="Threads", min=1, max=8),
        Param(
            "depth", int, 5, "How many times the function calls itself under the lock.", label="Depth", min=1, max=50
        ),
        Param("hold_ms", int, 20, "How long each visit holds the lock.", label="Hold (ms)", min=0, max=200),
        Param(
            "lock",
            str,
            "rlock",
            "Which lock guards the function.",
            label="Lock",
            choices=("rlock", "lock"),
            choice_help={"rlock": "threading.RLock()", "lock": "threading.Lock()"},
        ),
    ),
    metrics=(
        Metric("visits", "visits", "Nested calls that got the lock."),
        Metric("expected_visits", "visits", "threads x (depth + 1)."),
    ),
    code=(count_down, run),
    run=run,
    limits=Limits(wall_s=15, max_threads=8),
    cases=({"lock": "lock"},),
    on_deadlock=when_deadlocked,
)
