"""race-condition: a shared counter, three ways (plain, widened window, locked)."""

import os
import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param

counter = 0
lock = threading.Lock()
KEEP_READS = 10_000  # widened: how many reads each thread keeps (bounded memory, enough for the first collisions)


def increment_plain(times):
    global counter
    for _ in range(times):
        counter += 1  # read, add, write: three steps, not one


def increment_widened(times, reads):
    global counter
    for n in range(times):
        value = counter
        if n < KEEP_READS:  # keep what this thread read, and when: find_collisions shows the lost updates
            reads.append((value, time.perf_counter_ns()))
        os.sched_yield()  # a system call: the GIL is released between the read and the write
        counter = value + 1


def increment_locked(times):
    global counter
    for _ in range(times):
        with lock:  # only one thread at a time between the read and the write
            counter += 1


VARIANTS = {"plain": increment_plain, "widened": increment_widened, "locked": increment_locked}


def run(params, probe):
    global counter
    counter = 0
    count, times, variant = params["threads"], params["increments"], params["variant"]
    reads = {f"{variant}-{n}": [] for n in range(count)}  # thread name -> what it read (widened only)
    threads = [
        threading.Thread(
            target=VARIANTS[variant], args=(times, reads[name]) if variant == "widened" else (times,), name=name
        )
        for name in reads
    ]
    with probe.phase(variant) as phase:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    expected, actual = count * times, counter
    lost = expected - actual
    claim, held = expectation(variant, lost, probe.interpreter)
    metrics = {
        "expected": expected,
        "actual": actual,
        "lost_updates": lost,
        "lost_percent": round(100 * lost / expected, 3),
        "elapsed_ms": round(phase.wall_ms, 2),
    }
    extra = {}
    if variant == "widened":  # after the threads ended: nothing of this runs while they race
        collisions, metrics["read_collisions"] = find_collisions(reads, probe.t0)
        extra = {"collisions": collisions, "reads_kept": KEEP_READS}
    return Outcome(
        claim=claim,
        held=held,
        why=f"{count} threads x {times:,} increments: expected {expected:,}, counted {actual:,}, lost {lost:,} updates.",
        metrics=metrics,
        extra=extra,
    )


def find_collisions(reads, t0, first=5):
    """Values that two threads both read: both then wrote value + 1, so one increment was lost.

    ``reads``: thread name -> [(value, perf_counter_ns)]. Returns the first collisions in
    time (times in ns from the run's start ``t0``) and how many reads collided in all.
    """
    first_reader = {}  # value -> (thread, time) of the first thread that read it
    collisions, seen = [], 0
    for t, value, name in sorted((t, value, name) for name, kept in reads.items() for value, t in kept):
        earlier = first_reader.setdefault(value, (name, t))
        if earlier[0] != name:
            seen += 1
            if len(collisions) < first:
                collisions.append(
                    {
                        "value": value,
                        "reads": [{"thread": earlier[0], "t_ns": earlier[1] - t0}, {"thread": name, "t_ns": t - t0}],
                    }
                )
    return collisions, seen


def expectation(variant, lost, interpreter):
    """The claim for this variant on this interpreter, and whether it held."""
    if variant == "locked":
        return "With a lock around the update, no update is lost.", lost == 0
    if variant == "widened":
        return "With the GIL released between read and write, threads overwrite each other: updates are lost.", lost > 0
    if interpreter["gil_enabled"] and tuple(interpreter["version_info"][:2]) >= (3, 10):
        return (
            "On CPython 3.10+ with a GIL, a plain counter += 1 loses no update in practice "
            "(an implementation detail, not a guarantee).",
            lost == 0,
        )
    return "Without the GIL's 3.10+ switching rules, a plain counter += 1 loses updates.", lost > 0


EXPERIMENT = Experiment(
    slug="race-condition",
    title="Race conditions and the lock that fixes them",
    summary="Threads updating one counter: when updates get lost, and how a Lock prevents it.",
    lesson=(
        "counter += 1 is a read, an add and a write. If another thread writes between your read and "
        "your write, one update is lost. Compare the plain loop, a loop whose window is widened by a "
        "GIL-releasing call, and the same loop under a Lock."
    ),
    claim="plain: no lost update on CPython 3.10+ with a GIL; widened: updates are lost; locked: exact.",
    params=(
        Param("threads", int, 4, "How many threads increment the counter.", label="Threads", min=1, max=16),
        Param(
            "increments",
            int,
            100_000,
            "How many times each thread adds one.",
            label="Increments per thread",
            min=1,
            max=200_000,
        ),
        Param(
            "variant",
            str,
            "plain",
            "Which increment loop the threads run.",
            label="Variant",
            choices=("plain", "widened", "locked"),
            choice_help={
                "plain": "counter += 1",
                "widened": "read, os.sched_yield(), write",
                "locked": "with lock: counter += 1",
            },
        ),
    ),
    metrics=(
        Metric("expected", "updates", "threads x increments."),
        Metric("actual", "updates", "The counter's final value."),
        Metric("lost_updates", "updates", "expected - actual: updates overwritten by another thread."),
        Metric("lost_percent", "%", "lost_updates as a share of expected."),
        Metric("elapsed_ms", "ms", "Wall time of the threads' work."),
        Metric(
            "read_collisions",
            "reads",
            f"widened: reads of a value another thread had read too, among the first {KEEP_READS:,} of each thread.",
        ),
    ),
    code=(increment_plain, increment_widened, increment_locked, run, find_collisions, expectation),
    run=run,
    limits=Limits(wall_s=30, max_threads=16),
    cases=({"variant": "widened"}, {"variant": "locked"}),
    notes=(
        "Why does the plain loop lose nothing here? Since CPython 3.10 a thread only hands over the GIL "
        "at calls, at the ends of loops and at function entries, never between the read and the write of "
        "counter += 1 (CPython PR 18334). That is an implementation detail: CPython 3.9, free-threaded "
        "builds and other Pythons do lose updates, so shared state still needs a lock."
    ),
)
